"""True-colour composites on figures: display stretch, drawing, cropping."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

__all__ = ["NODATA_COLOUR", "STRETCH_PERCENTILES", "stretch_limits", "stretch_rgb"]

#: Default display stretch of true-colour composites: (low, high) percentiles.
STRETCH_PERCENTILES: tuple[float, float] = (1.0, 99.5)
#: Colour for areas with no valid observation.
NODATA_COLOUR = "#BDBDBD"


def stretch_limits(
    *images: np.ndarray | None,
    low_pct: float = STRETCH_PERCENTILES[0],
    high_pct: float = STRETCH_PERCENTILES[1],
) -> tuple[float, float]:
    """Robust display limits shared by several true-colour composites.

    One ``(low, high)`` pair over all three bands of all ``images`` (so hues are
    kept and a before/after pair is stretched identically: a change in the
    picture is a change on the ground, not in the stretch). NaNs are ignored.
    Falls back to ``(0, 0.3)`` (typical reflectance range) when nothing is valid.
    """
    values = [np.asarray(im, dtype="float32").ravel() for im in images if im is not None]
    if not values:
        return 0.0, 0.3
    flat = np.concatenate(values)
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 0.0, 0.3
    if flat.size > 2_000_000:  # a regular subsample is plenty for two percentiles
        flat = flat[:: flat.size // 1_000_000]
    lo, hi = np.percentile(flat, [low_pct, high_pct])
    if not hi > lo:
        hi = lo + 1e-6
    return float(lo), float(hi)


def stretch_rgb(
    rgb: np.ndarray, limits: tuple[float, float], *, gamma: float = 1.3
) -> np.ndarray:
    """Linear stretch to ``limits`` then gamma; returns RGBA float32 in 0..1.

    ``out = clip((x - low) / (high - low), 0, 1) ** (1 / gamma)``; ``gamma > 1``
    brightens the dark vegetated and excavated surfaces typical of the AOIs.
    Pixels with any NaN band get alpha 0 (the axes background shows through).

    Examples
    --------
    >>> rgb = np.full((4, 4, 3), 0.1, dtype="float32"); rgb[0, 0] = np.nan
    >>> out = stretch_rgb(rgb, (0.0, 0.2), gamma=1.0)
    >>> out.shape, float(out[1, 1, 0]), float(out[0, 0, 3])
    ((4, 4, 4), 0.5, 0.0)
    """
    arr = np.asarray(rgb, dtype="float32")
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got shape {arr.shape}")
    lo, hi = limits
    valid = np.isfinite(arr).all(axis=2)
    scaled = np.clip((np.nan_to_num(arr, nan=lo) - lo) / (hi - lo), 0.0, 1.0)
    if gamma != 1.0:
        scaled = scaled ** (1.0 / gamma)
    out = np.empty(arr.shape[:2] + (4,), dtype="float32")
    out[..., :3] = scaled
    out[..., 3] = valid.astype("float32")
    return out


def _draw_image(
    ax: Axes,
    rgb: np.ndarray | None,
    extent: Sequence[float],
    limits: tuple[float, float] | None,
) -> None:
    """Show ``rgb`` stretched to ``limits`` (its own when ``None``) over the no-data colour."""
    left, bottom, right, top = extent
    ax.set_facecolor(NODATA_COLOUR)
    if rgb is not None and rgb.size:
        lim = limits if limits is not None else stretch_limits(rgb)
        ax.imshow(stretch_rgb(rgb, lim), extent=(left, right, bottom, top), origin="upper",
                  interpolation="nearest", zorder=0)
    ax.set_aspect("equal")


def _crop(
    rgb: np.ndarray | None, extent: Sequence[float], window: Sequence[float]
) -> tuple[np.ndarray | None, tuple[float, float, float, float]]:
    """Cut ``window`` (UTM) out of ``rgb``; return the crop and its exact extent."""
    left, bottom, right, top = extent
    if rgb is None:
        return None, (window[0], window[1], window[2], window[3])
    h, w = rgb.shape[:2]
    px, py = (right - left) / w, (top - bottom) / h
    c0 = int(np.clip(math.floor((window[0] - left) / px), 0, w - 1))
    c1 = int(np.clip(math.ceil((window[2] - left) / px), c0 + 1, w))
    r0 = int(np.clip(math.floor((top - window[3]) / py), 0, h - 1))
    r1 = int(np.clip(math.ceil((top - window[1]) / py), r0 + 1, h))
    crop = rgb[r0:r1, c0:c1]
    return crop, (left + c0 * px, top - r1 * py, left + c1 * px, top - r0 * py)
