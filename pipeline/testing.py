"""Synthetic scenes with exact ground truth, and assertion helpers for tests.

``make_scene`` builds a small cloud-masked reflectance cube (the output shape of
:func:`pipeline.preprocess.mask_clouds`): a flat vegetated background and a
rectangular "pit" whose spectrum turns to bare gravel at a known date, so
detection and polygonising can be asserted exactly. Shapes are non-square on
purpose, to catch y/x swaps.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["SPECTRA", "make_scene", "raise_if_dask_computes"]

#: Reflectance of the synthetic classes (blue, green, red, nir, swir16, swir22).
SPECTRA: dict[str, tuple[float, ...]] = {
    "vegetation": (0.03, 0.06, 0.04, 0.40, 0.20, 0.10),
    "gravel": (0.10, 0.14, 0.22, 0.28, 0.34, 0.29),
    "water": (0.06, 0.09, 0.07, 0.04, 0.02, 0.01),
    "char": (0.03, 0.04, 0.05, 0.08, 0.12, 0.10),
}
BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")


def make_scene(
    shape: tuple[int, int, int] = (40, 48, 64),
    *,
    pit: tuple[slice, slice] = np.s_[10:18, 20:31],
    change_index: int = 24,
    pit_class: str = "gravel",
    start: dt.date = dt.date(2022, 1, 1),
    step_days: int = 10,
    clouds: float = 0.0,
    noise: float = 0.005,
    resolution_m: float = 10.0,
    origin: tuple[float, float] = (500000.0, 900000.0),
    chunks: dict[str, int] | None = None,
    seed: int = 0,
) -> tuple[xr.Dataset, xr.DataArray]:
    """A masked reflectance cube with one pit appearing at ``change_index``.

    Parameters
    ----------
    shape
        ``(time, y, x)``.
    pit
        Pixel slices of the pit (y, x); empty slices give a scene with no change.
    change_index
        First time index at which the pit shows ``pit_class``.
    pit_class
        A key of :data:`SPECTRA`.
    clouds
        Fraction of observations (per pixel, independent) marked invalid.
    resolution_m, origin
        Grid: UTM metres, upper-left corner ``(x, y)``.
    chunks
        When given, the data variables are Dask arrays with these chunks.

    Returns
    -------
    scenes : xarray.Dataset
        ``blue .. swir22`` (float32, NaN where invalid) and ``valid`` (bool), dims
        ``(time, y, x)``, ``time`` every ``step_days`` from ``start``.
    truth : xarray.DataArray
        bool ``(y, x)``, True inside the pit.
    """
    nt, ny, nx = shape
    rng = np.random.default_rng(seed)
    times = pd.date_range(pd.Timestamp(start), periods=nt, freq=f"{step_days}D")
    truth = np.zeros((ny, nx), dtype=bool)
    truth[pit] = True
    data = {}
    for b, band in enumerate(BANDS):
        cube = np.full((nt, ny, nx), SPECTRA["vegetation"][b], dtype="float32")
        cube[change_index:, truth] = SPECTRA[pit_class][b]
        cube += rng.normal(0, noise, cube.shape).astype("float32")
        data[band] = cube
    valid = rng.random((nt, ny, nx)) >= clouds
    for band in BANDS:
        data[band] = np.where(valid, data[band], np.nan).astype("float32")
    x = origin[0] + resolution_m * (np.arange(nx) + 0.5)
    y = origin[1] - resolution_m * (np.arange(ny) + 0.5)
    coords = {"time": times, "y": y, "x": x}
    ds = xr.Dataset({k: (("time", "y", "x"), v) for k, v in data.items()}, coords=coords)
    ds["valid"] = (("time", "y", "x"), valid)
    if chunks:
        ds = ds.chunk(chunks)
    return ds, xr.DataArray(truth, dims=("y", "x"), coords={"y": y, "x": x})


class _CountingScheduler:
    """A Dask scheduler that refuses to run more than ``max_computes`` graphs."""

    def __init__(self, max_computes: int = 0) -> None:
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(f"Too many computes. Total: {self.total_computes} > max: {self.max_computes}.")
        return dask.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def raise_if_dask_computes(max_computes: int = 0) -> Iterator[None]:
    """Fail if code inside the block computes a Dask graph (after xarray's test helper)."""
    with dask.config.set(scheduler=_CountingScheduler(max_computes)):
        yield
