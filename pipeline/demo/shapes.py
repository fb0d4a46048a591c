"""Random geometry in pixel space: smooth noise, meanders, blobs, fields, placement, swath edges."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def _smooth(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Spatially correlated noise, zero mean and unit standard deviation (float32)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape, np.float32), sigma, mode="reflect")
    return ((field - field.mean()) / max(float(field.std()), 1e-12)).astype(np.float32)


def _wave(rng: np.random.Generator, t: np.ndarray, wavelength: float) -> np.ndarray:
    """A sine of ``t`` with the given wavelength and a random phase (river meanders)."""
    return np.sin(2 * np.pi * t / wavelength + rng.uniform(0, 2 * np.pi))


def _distance_to_line(shape: tuple[int, int], ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Distance in pixels to a densely sampled polyline (parts may fall outside the image)."""
    ny, nx = shape
    line = np.zeros((ny + 20, nx + 20), bool)  # margin so off-image parts still count
    r, c = np.rint(ys).astype(int) + 10, np.rint(xs).astype(int) + 10
    ok = (r >= 0) & (r < ny + 20) & (c >= 0) & (c < nx + 20)
    line[r[ok], c[ok]] = True
    return ndimage.distance_transform_edt(~line)[10:-10, 10:-10].astype(np.float32)


def _blob(rng: np.random.Generator, n_px: float, *, lobes: int, roughness: float,
          elongation: float = 1.4, angle: float | None = None) -> np.ndarray:
    """Irregular connected mask of about ``n_px`` pixels: a union of ellipses, noisy edges."""
    n = max(int(round(n_px)), 4)
    r0 = math.sqrt(n / math.pi)
    half = int(2.6 * r0 * max(elongation, 1.0) ** 0.5) + 4
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    score = np.full(yy.shape, -np.inf, np.float32)
    for k in range(lobes):
        cy, cx = (0.0, 0.0) if k == 0 else rng.normal(0, 0.45 * r0, 2)
        theta = rng.uniform(0, math.pi) if angle is None else angle + rng.normal(0, 0.2)
        a = r0 * rng.uniform(0.7, 1.0) * elongation ** 0.5
        b = r0 * rng.uniform(0.6, 0.9) / elongation ** 0.5
        u = (xx - cx) * math.cos(theta) + (yy - cy) * math.sin(theta)
        v = -(xx - cx) * math.sin(theta) + (yy - cy) * math.cos(theta)
        score = np.maximum(score, 1.0 - np.hypot(u / a, v / b))
    score += roughness * _smooth(rng, yy.shape, 1.5)
    flat = score.ravel()
    mask = np.zeros(flat.shape, bool)
    mask[np.argpartition(-flat, n - 1)[:n]] = True
    return _crop(_largest_piece(mask.reshape(score.shape)))


def _largest_piece(mask: np.ndarray) -> np.ndarray:
    """Keep the largest connected piece of ``mask`` and fill its holes: one pit, one polygon."""
    labels, count = ndimage.label(mask)
    if count > 1:
        sizes = ndimage.sum_labels(np.ones_like(labels), labels, range(1, count + 1))
        mask = labels == int(np.argmax(sizes)) + 1
    return ndimage.binary_fill_holes(mask)


def _crop(mask: np.ndarray) -> np.ndarray:
    """``mask`` cut down to the bounding box of its ``True`` pixels."""
    rows, cols = np.nonzero(mask)
    return mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def _rectangle(rng: np.random.Generator, n_px: float) -> np.ndarray:
    """Slightly rotated rectangle of about ``n_px`` pixels (a cleared field)."""
    aspect = rng.uniform(1.2, 2.5)
    width = math.sqrt(n_px / aspect)
    length = width * aspect
    theta = rng.uniform(-0.35, 0.35) + (math.pi / 2 if rng.random() < 0.5 else 0.0)
    half = int(math.hypot(length, width) / 2) + 2
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    u = xx * math.cos(theta) + yy * math.sin(theta)
    v = -xx * math.sin(theta) + yy * math.cos(theta)
    return _crop((np.abs(u) <= length / 2) & (np.abs(v) <= width / 2))


def _place(rng: np.random.Generator, occupied: np.ndarray, mask: np.ndarray, *, buffer_px: int,
           prefer: np.ndarray | None = None, tries: int = 400) -> tuple[slice, slice] | None:
    """Random window where ``mask`` (grown by ``buffer_px``) touches nothing occupied."""
    ny, nx = occupied.shape
    h, w = mask.shape
    if h + 2 > ny or w + 2 > nx:
        return None
    grown = ndimage.binary_dilation(np.pad(mask, buffer_px), iterations=buffer_px)
    padded = np.pad(occupied, buffer_px, constant_values=False)
    for attempt in range(tries):
        y0, x0 = int(rng.integers(1, ny - h)), int(rng.integers(1, nx - w))
        if prefer is not None and attempt < tries // 2 and not prefer[y0 + h // 2, x0 + w // 2]:
            continue
        if not (padded[y0:y0 + h + 2 * buffer_px, x0:x0 + w + 2 * buffer_px] & grown).any():
            return slice(y0, y0 + h), slice(x0, x0 + w)
    return None


def _swath_edge(shape: tuple[int, int], side: int, width: float, slope: float) -> np.ndarray:
    """Boolean no-data stripe along the left (``side`` 0) or right edge, slanted by ``slope``."""
    r, c = np.indices(shape)
    c = c if side == 0 else shape[1] - 1 - c
    return (c + slope * (r - shape[0] / 2)) < width * shape[1]
