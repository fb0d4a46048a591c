"""Otsu thresholds on pooled histograms (pipeline.thresholds)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from skimage.filters import threshold_otsu

from pipeline.thresholds import otsu_threshold


def _bimodal(seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0, 1.2, 5000), rng.normal(7, 1.5, 2000)]).astype("float32")


def test_matches_skimage_on_the_raw_values() -> None:
    values = _bimodal()
    ours = float(otsu_threshold(xr.DataArray(values), value_range=(-15, 25), bins=400, floor=0.0))
    assert ours == pytest.approx(float(threshold_otsu(values)), abs=0.2)


def test_dask_and_numpy_give_the_same_threshold_and_dask_stays_lazy() -> None:
    values = _bimodal().reshape(70, 100)
    values[::7, ::3] = np.nan
    eager = otsu_threshold(xr.DataArray(values), value_range=(-15, 25), bins=400, floor=0.0)
    chunked = xr.DataArray(da.from_array(values, chunks=(20, 30)))
    lazy = otsu_threshold(chunked, value_range=(-15, 25), bins=400, floor=0.0)
    assert lazy.chunks is not None
    assert float(lazy) == float(eager)


def test_nan_and_out_of_range_values_are_ignored() -> None:
    values = _bimodal()
    noisy = np.concatenate([values, np.full(3000, np.nan, "float32"), np.full(3000, 99.0, "float32")])
    kw = {"value_range": (-15.0, 25.0), "bins": 400, "floor": 0.0}
    assert float(otsu_threshold(xr.DataArray(noisy), **kw)) == float(otsu_threshold(xr.DataArray(values), **kw))


def test_floor_and_ceiling_bound_the_threshold() -> None:
    values = xr.DataArray(_bimodal())
    assert float(otsu_threshold(values, value_range=(-15, 25), bins=400, floor=5.0)) == 5.0
    assert float(otsu_threshold(values, value_range=(-15, 25), bins=400, floor=0.0, ceiling=2.0)) == 2.0


def test_degenerate_histogram_returns_the_floor() -> None:
    constant = xr.DataArray(np.full(100, 0.3, "float32"))
    assert float(otsu_threshold(constant, value_range=(-1, 2), bins=300, floor=0.25)) == pytest.approx(0.25)
    empty = xr.DataArray(np.full(10, np.nan, "float32"))
    assert float(otsu_threshold(empty, value_range=(-1, 2), bins=300, floor=0.25)) == pytest.approx(0.25)


def test_the_threshold_is_the_bin_edge_that_splits_the_classes() -> None:
    values = np.r_[np.full(90, 0.052), np.full(10, 0.61)].astype("float32")
    thr = float(otsu_threshold(xr.DataArray(values), value_range=(-1, 2), bins=300, floor=-1.0))
    assert (values >= thr).sum() == 10


def test_between_separated_modes_the_middle_of_the_gap_is_taken() -> None:
    values = np.r_[np.full(900, 0.02), np.full(100, 0.62)].astype("float32")
    thr = float(otsu_threshold(xr.DataArray(values), value_range=(-1, 2), bins=300, floor=-1.0))
    assert thr == pytest.approx(0.32, abs=0.011)
