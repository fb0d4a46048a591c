"""PURE: adaptive thresholds (Otsu) on pooled, lazily built histograms.

Shared by the optical NDVI-drop test (:func:`pipeline.detect.score_change`) and the radar
VH-drop test (:func:`pipeline.radar.score_radar_change`) when their ``threshold_method`` is
``otsu``. The histogram is pooled over every valid observation of the AOI (all dates,
all pixels), so the threshold is one number per AOI and run, reported in the manifest.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

__all__ = ["otsu_threshold"]


def otsu_threshold(
    values: xr.DataArray,
    *,
    value_range: tuple[float, float],
    bins: int,
    floor: float,
    ceiling: float | None = None,
) -> xr.DataArray:
    """Otsu (1979) threshold of the pooled histogram of ``values``, bounded.

    Between two well-separated modes every split in the gap is equally good for Otsu; the
    middle of the gap is returned (see :func:`_otsu_from_counts`).

    Parameters
    ----------
    values
        Any shape; ``values >= threshold`` is the foreground class. NaN (invalid or
        out-of-scope observations) is ignored, and so is anything outside ``value_range``.
    value_range, bins
        Histogram range and number of bins (``scikit-image``'s
        :func:`~skimage.filters.threshold_otsu` runs on the bin centres).
    floor, ceiling
        Bounds of the returned threshold. When change is a tiny share of the pixels the
        histogram is unimodal and Otsu cuts through the noise; the floor bounds the damage.
        With fewer than two non-empty bins the floor is returned.

    Returns
    -------
    xarray.DataArray
        0-d float32; lazy (a Dask histogram reduced by one task) when ``values`` is.

    Examples
    --------
    >>> v = xr.DataArray(np.r_[np.full(90, 0.052), np.full(10, 0.61), np.nan])
    >>> round(float(otsu_threshold(v, value_range=(-1.0, 2.0), bins=300, floor=0.0)), 3)
    0.33
    >>> round(float(otsu_threshold(v, value_range=(-1.0, 2.0), bins=300, floor=0.0, ceiling=0.2)), 2)
    0.2
    """
    low, high = value_range
    edges = np.linspace(low, high, int(bins) + 1)
    # NaN goes below the range, where histogram() ignores it.
    data = values.fillna(low - 1.0).data
    upper = None if ceiling is None else float(ceiling)
    kwargs: dict[str, Any] = {"edges": edges, "floor": float(floor), "ceiling": upper}
    if hasattr(data, "map_blocks"):
        counts, _ = da.histogram(data, bins=edges)
        thr = counts.rechunk(-1).map_blocks(_otsu_from_counts, drop_axis=0, dtype=np.float32, **kwargs)
        return xr.DataArray(thr)
    counts, _ = np.histogram(np.asarray(data), bins=edges)
    return xr.DataArray(_otsu_from_counts(counts, **kwargs))


def _otsu_from_counts(counts: np.ndarray, *, edges: np.ndarray, floor: float, ceiling: float | None) -> np.ndarray:
    """Otsu on a histogram: the bin edge maximising the between-class variance.

    Equal to :func:`skimage.filters.threshold_otsu` on the histogram (plus half a bin, so the
    threshold is an edge), except where several splits tie, as they do across an empty gap
    between two well-separated modes: skimage takes the first (the top of the lower mode),
    this takes the middle of the tied edges, the split with the widest margin either side.
    """
    counts = np.asarray(counts, dtype="float64")
    if np.count_nonzero(counts) < 2:
        return np.asarray(floor, np.float32)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(counts)[:-1]  # split after bin i: bins 0..i are background
    w1 = counts.sum() - w0
    s0 = np.cumsum(counts * centres)[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        between = w0 * w1 * (s0 / w0 - (np.sum(counts * centres) - s0) / w1) ** 2
    between = np.nan_to_num(between, nan=-1.0)
    tied = np.flatnonzero(between >= between.max() * (1 - 1e-9))
    thr = max(float((edges[tied[0] + 1] + edges[tied[-1] + 1]) / 2), floor)
    if ceiling is not None:
        thr = min(thr, ceiling)
    return np.asarray(thr, np.float32)
