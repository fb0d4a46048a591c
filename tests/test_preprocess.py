"""DN -> reflectance, cloud masking and composites."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline import preprocess
from pipeline.errors import MissingBandError
from pipeline.testing import raise_if_dask_computes


def _dn_scene(dn: np.ndarray, scl: np.ndarray, *, offset: float = -0.1) -> xr.Dataset:
    nt = dn.shape[0]
    times = pd.date_range("2023-01-01", periods=nt, freq="10D")
    ds = xr.Dataset(
        {"red": (("time", "y", "x"), dn), "scl": (("time", "y", "x"), scl)},
        coords={"time": times, "y": np.arange(dn.shape[1]), "x": np.arange(dn.shape[2])},
    )
    return ds.assign_coords(
        scale_red=("time", [1e-4] * nt), offset_red=("time", [offset] * nt), nodata_red=("time", [0.0] * nt)
    )


def test_reflectance_masks_nodata_before_scaling() -> None:
    dn = np.array([[[0, 1000, 3000]]], dtype="uint16")
    out = preprocess.to_reflectance(_dn_scene(dn, np.full_like(dn, 4, dtype="uint8")), bands=["red"])
    vals = out["red"].values.ravel()
    assert np.isnan(vals[0])
    np.testing.assert_allclose(vals[1:], [0.0, 0.2], atol=1e-6)


def test_missing_band_names_the_band() -> None:
    dn = np.ones((1, 2, 3), dtype="uint16")
    with pytest.raises(MissingBandError, match="'nir'"):
        preprocess.to_reflectance(_dn_scene(dn, dn.astype("uint8")), bands=["nir"])


def test_cloud_mask_and_buffer() -> None:
    dn = np.full((1, 7, 9), 2000, dtype="uint16")
    scl = np.full((1, 7, 9), 4, dtype="uint8")
    scl[0, 3, 4] = 9  # one cloudy pixel
    refl = preprocess.to_reflectance(_dn_scene(dn, scl), bands=["red"])
    masked = preprocess.mask_clouds(refl, bands=["red"], mask_classes=[9], buffer_px=1)
    invalid = ~masked["valid"].values[0]
    assert invalid.sum() == 5  # the pixel and its 4-neighbours (radius-1 disc)
    assert np.isnan(masked["red"].values[0][invalid]).all()


@pytest.mark.parametrize("buffer_px", [0, 1, 2])
def test_cloud_mask_in_one_task_per_chunk_equals_the_operation_graph(buffer_px: int,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """mask_clouds on chunked Dask arrays (one task per chunk) gives what the xarray operations
    give on NumPy arrays, values, dtypes, coordinates and attributes, across chunk edges."""
    from pipeline.testing import make_scene

    scenes, _ = make_scene((12, 30, 26), clouds=0.3, seed=2)
    scenes = scenes.drop_vars("valid")
    rng = np.random.default_rng(5)
    scenes["scl"] = (("time", "y", "x"), rng.choice(np.array([4, 5, 8, 9, 3], "uint8"), size=(12, 30, 26)))
    scenes["red"] = scenes["red"].where(rng.random((12, 30, 26)) > 0.05)  # nodata in one band
    scenes["red"].attrs["units"] = "reflectance"
    bands = ["blue", "green", "red", "nir", "swir16", "swir22"]
    eager = preprocess.mask_clouds(scenes, bands=bands, mask_classes=[3, 8, 9], buffer_px=buffer_px)
    chunked = scenes.chunk({"time": -1, "y": 8, "x": 10})
    lazy = preprocess.mask_clouds(chunked, bands=bands, mask_classes=[3, 8, 9], buffer_px=buffer_px)
    monkeypatch.setattr(preprocess.composites, "same_dask_chunks", lambda _: False)
    graph = preprocess.mask_clouds(chunked, bands=bands, mask_classes=[3, 8, 9], buffer_px=buffer_px)
    assert len(dict(lazy.__dask_graph__())) < 0.6 * len(dict(graph.__dask_graph__()))
    xr.testing.assert_identical(lazy.compute(), eager)
    xr.testing.assert_identical(graph.compute(), eager)


@settings(max_examples=30, deadline=None)
@given(
    dn=hnp.arrays("uint16", (5, 4, 6), elements=st.integers(1, 12000)),
    scl=hnp.arrays("uint8", (5, 4, 6), elements=st.sampled_from([4, 5, 8, 9])),
)
def test_composite_never_contains_a_masked_value(dn: np.ndarray, scl: np.ndarray) -> None:
    refl = preprocess.to_reflectance(_dn_scene(dn, scl), bands=["red"])
    masked = preprocess.mask_clouds(refl, bands=["red"], mask_classes=[8, 9], buffer_px=0)
    periods = [(dt.date(2023, 1, 1), dt.date(2023, 3, 31))]
    comp = preprocess.composite_periods(masked, bands=["red"], periods=periods)
    clear = np.where(np.isin(scl, [8, 9]), np.nan, refl["red"].values)
    expected = np.nanmedian(np.where(np.all(np.isnan(clear), axis=0), 0, clear), axis=0)
    expected[np.all(np.isnan(clear), axis=0)] = np.nan
    np.testing.assert_allclose(comp["red"].values[0], expected, rtol=1e-6)
    np.testing.assert_array_equal(comp["valid_count"].values[0], (~np.isin(scl, [8, 9])).sum(0))


def test_composite_is_lazy_and_matches_eager() -> None:
    rng = np.random.default_rng(0)
    dn = rng.integers(1, 5000, (6, 8, 10)).astype("uint16")
    scl = rng.choice(np.array([4, 9], dtype="uint8"), (6, 8, 10))
    eager = preprocess.mask_clouds(preprocess.to_reflectance(_dn_scene(dn, scl), bands=["red"]),
                                   bands=["red"], mask_classes=[9], buffer_px=1)
    lazy_in = _dn_scene(dn, scl).chunk({"time": 1, "y": 4, "x": 5})
    periods = preprocess.reporting_periods(dt.date(2023, 1, 1), dt.date(2023, 2, 28), months=1)
    with raise_if_dask_computes():
        lazy = preprocess.mask_clouds(preprocess.to_reflectance(lazy_in, bands=["red"]),
                                      bands=["red"], mask_classes=[9], buffer_px=1)
        comp_lazy = preprocess.composite_periods(lazy, bands=["red"], periods=periods)
    comp_eager = preprocess.composite_periods(eager, bands=["red"], periods=periods)
    xr.testing.assert_allclose(comp_lazy.compute(), comp_eager)


def test_period_geomedian_keeps_one_surface_per_pixel_and_marks_empty_periods() -> None:
    # three clear dates in January: the per-band median mixes red of one date with NIR of
    # another, the geometric median stays with the two dates that agree
    obs = np.array([[0.10, 0.40], [0.12, 0.42], [0.30, 0.10]], "float32")  # (time, band)
    cube = np.broadcast_to(obs[:, :, None, None], (3, 2, 2, 3))
    ds = xr.Dataset(
        {"red": (("time", "y", "x"), cube[:, 0]), "nir": (("time", "y", "x"), cube[:, 1])},
        coords={"time": pd.to_datetime(["2023-01-05", "2023-01-15", "2023-01-25"])},
    )
    ds["valid"] = ds["red"].notnull()
    periods = [(dt.date(2023, 1, 1), dt.date(2023, 1, 31)), (dt.date(2023, 2, 1), dt.date(2023, 2, 28))]
    with raise_if_dask_computes():
        lazy = preprocess.composite_periods(ds.chunk({"y": 1}), bands=["red", "nir"], periods=periods,
                                            method="geomedian", min_valid_obs=2)
    out = lazy.compute()
    assert out["red"].dims == ("period", "y", "x")
    assert list(out["period_start"].values) == list(pd.to_datetime(["2023-01-01", "2023-02-01"]))
    geo = (float(out["red"][0, 0, 0]), float(out["nir"][0, 0, 0]))
    assert 0.10 <= geo[0] <= 0.12 and 0.40 <= geo[1] <= 0.42  # between the two agreeing dates
    med = preprocess.composite_periods(ds, bands=["red", "nir"], periods=periods, method="median")
    assert float(med["red"][0, 0, 0]) == pytest.approx(0.12) and float(med["nir"][0, 0, 0]) == pytest.approx(0.40)
    assert np.isnan(out["red"].values[1]).all() and (out["valid_count"].values[1] == 0).all()
    assert (out["valid_count"].values[0] == 3).all()


def test_reporting_periods_are_calendar_quarters() -> None:
    periods = preprocess.reporting_periods(dt.date(2023, 1, 1), dt.date(2024, 6, 30), months=3)
    assert len(periods) == 6
    assert periods[0] == (dt.date(2023, 1, 1), dt.date(2023, 3, 31))
    assert periods[-1] == (dt.date(2024, 4, 1), dt.date(2024, 6, 30))


@settings(max_examples=60, deadline=None)
@given(mask=hnp.arrays(bool, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=9)),
       radius=st.integers(0, 3))
def test_cloud_buffer_dilation_is_scipys(mask: np.ndarray, radius: int) -> None:
    """The shifted-OR dilation equals ``scipy.ndimage.binary_dilation`` with the disc in (y, x),
    value for value, at the block's edges and for blocks smaller than the disc too."""
    from scipy import ndimage

    structure = np.zeros((1, 2 * radius + 1, 2 * radius + 1), dtype=bool)
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    structure[0] = (yy**2 + xx**2) <= radius**2
    expected = ndimage.binary_dilation(mask, structure=structure)
    got = preprocess.dilate_by_offsets(mask, preprocess.disc_offsets(radius))
    np.testing.assert_array_equal(got, expected)
