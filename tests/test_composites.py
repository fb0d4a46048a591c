"""Composite windows, geometric/per-band median composites, and their COG writer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import odc.geo.xr  # noqa: F401  (``.odc`` accessor)
import pandas as pd
import pytest
import rasterio
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize

from pipeline import composites
from pipeline.composites import CompositeWindow, composite, composite_windows, write_composites
from pipeline.errors import ConfigError, InputDataError, MissingBandError
from pipeline.testing import SPECTRA, make_scene, raise_if_dask_computes

NORTH_DRY = (11, 12, 1, 2, 3)  # Séguéla / Tortiya, Côte d'Ivoire
MARANGE_DRY = (5, 6, 7, 8, 9, 10)  # Marange, Zimbabwe
BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
D = dt.date


def _spans(ws: list[CompositeWindow]) -> list[tuple[str, dt.date, dt.date]]:
    return [(w.product, w.start, w.end) for w in ws]


def _cube(values: np.ndarray, *, valid: np.ndarray | None = None, start: str = "2023-01-05") -> xr.Dataset:
    """``values`` ``(time, band, y, x)`` -> masked-scene Dataset over the first ``len(values[0])`` BANDS."""
    nt, nb, ny, nx = values.shape
    if valid is None:
        valid = ~np.isnan(values).any(axis=1)
    coords = {
        "time": pd.date_range(start, periods=nt, freq="7D"),
        "y": 900000.0 - 10.0 * (np.arange(ny) + 0.5),
        "x": 500000.0 + 10.0 * (np.arange(nx) + 0.5),
    }
    ds = xr.Dataset(
        {b: (("time", "y", "x"), values[:, k].astype("float32")) for k, b in enumerate(BANDS[:nb])},
        coords=coords,
    )
    ds["valid"] = (("time", "y", "x"), valid)
    return ds.odc.assign_crs("EPSG:32629")


H1_2023 = [CompositeWindow("semiannual", D(2023, 1, 1), D(2023, 6, 30))]


# --------------------------------------------------------------------------------------------
# windows
# --------------------------------------------------------------------------------------------


def test_semiannual_windows_are_clipped_halves() -> None:
    ws = composite_windows(D(2022, 3, 15), D(2023, 8, 10), products=["semiannual"], dry_season_months=NORTH_DRY)
    assert _spans(ws) == [
        ("semiannual", D(2022, 3, 15), D(2022, 6, 30)),
        ("semiannual", D(2022, 7, 1), D(2022, 12, 31)),
        ("semiannual", D(2023, 1, 1), D(2023, 6, 30)),
        ("semiannual", D(2023, 7, 1), D(2023, 8, 10)),
    ]


def test_northern_dry_season_spans_the_new_year() -> None:
    ws = composite_windows(D(2022, 1, 1), D(2023, 12, 31), products=["dry_season"], dry_season_months=NORTH_DRY)
    assert _spans(ws) == [
        ("dry_season", D(2022, 1, 1), D(2022, 3, 31)),  # the 2021/22 season, clipped
        ("dry_season", D(2022, 11, 1), D(2023, 3, 31)),
        ("dry_season", D(2023, 11, 1), D(2023, 12, 31)),
    ]
    assert ws[1].label == "dry_season_2022-11-01_2023-03-31"


@pytest.mark.parametrize("months", [MARANGE_DRY, (10, 5, 9, 6, 8, 7)])
def test_marange_dry_season_any_order(months: tuple[int, ...]) -> None:
    ws = composite_windows(D(2021, 1, 1), D(2022, 12, 31), products=["dry_season"], dry_season_months=months)
    assert _spans(ws) == [
        ("dry_season", D(2021, 5, 1), D(2021, 10, 31)),
        ("dry_season", D(2022, 5, 1), D(2022, 10, 31)),
    ]


def test_both_products_sorted_by_start_then_product() -> None:
    ws = composite_windows(D(2023, 1, 1), D(2023, 12, 31), products=["semiannual", "dry_season"],
                           dry_season_months=NORTH_DRY)
    assert [w.label for w in ws] == [
        "dry_season_2023-01-01_2023-03-31",
        "semiannual_2023-01-01_2023-06-30",
        "semiannual_2023-07-01_2023-12-31",
        "dry_season_2023-11-01_2023-12-31",
    ]


def test_window_edge_cases() -> None:
    leap = composite_windows(D(2023, 6, 1), D(2024, 6, 1), products=["dry_season"], dry_season_months=(12, 1, 2))
    assert _spans(leap) == [("dry_season", D(2023, 12, 1), D(2024, 2, 29))]
    year = composite_windows(D(2023, 3, 1), D(2024, 2, 1), products=["dry_season"],
                             dry_season_months=tuple(range(1, 13)))
    assert _spans(year) == [
        ("dry_season", D(2023, 3, 1), D(2023, 12, 31)),
        ("dry_season", D(2024, 1, 1), D(2024, 2, 1)),
    ]
    one_day = composite_windows(D(2023, 7, 1), D(2023, 7, 1), products=["semiannual", "dry_season"],
                                dry_season_months=MARANGE_DRY)
    assert [w.label for w in one_day] == ["dry_season_2023-07-01_2023-07-01", "semiannual_2023-07-01_2023-07-01"]
    assert composite_windows(D(2023, 7, 1), D(2023, 12, 31), products=[], dry_season_months=NORTH_DRY) == []
    assert composite_windows(D(2024, 1, 1), D(2023, 1, 1), products=["semiannual"], dry_season_months=NORTH_DRY) == []


@pytest.mark.parametrize("months", [(1, 3), (11, 12, 2), (1, 1, 2), (0, 1), (12, 13), ()])
def test_bad_dry_season_months_raise_one_line_config_error(months: tuple[int, ...]) -> None:
    with pytest.raises(ConfigError, match=r"composites\.dry_season_months") as info:
        composite_windows(D(2023, 1, 1), D(2023, 12, 31), products=["dry_season"], dry_season_months=months)
    assert "\n" not in str(info.value)


def test_unknown_product_raises() -> None:
    with pytest.raises(ConfigError, match=r"composites\.products.*'annual'"):
        composite_windows(D(2023, 1, 1), D(2023, 12, 31), products=["annual"],  # type: ignore[list-item]
                          dry_season_months=NORTH_DRY)


@given(
    start_month=st.integers(1, 12),
    length=st.integers(1, 11),
    first=st.dates(D(2019, 1, 1), D(2024, 12, 31)),
    span_days=st.integers(0, 800),
)
def test_dry_season_windows_tile_exactly_the_season_days(
    start_month: int, length: int, first: dt.date, span_days: int
) -> None:
    months = {(start_month - 1 + k) % 12 + 1 for k in range(length)}
    last = first + dt.timedelta(days=span_days)
    ws = composite_windows(first, last, products=["dry_season"], dry_season_months=sorted(months))
    covered: dict[dt.date, int] = {}
    for w in ws:
        assert first <= w.start <= w.end <= last
        day = w.start
        while day <= w.end:
            covered[day] = covered.get(day, 0) + 1
            day += dt.timedelta(days=1)
    expected = {first + dt.timedelta(days=k) for k in range(span_days + 1)}
    expected = {d for d in expected if d.month in months}
    assert set(covered) == expected and set(covered.values()) <= {1}
    assert [w.start for w in ws] == sorted(w.start for w in ws)


# --------------------------------------------------------------------------------------------
# geometric median
# --------------------------------------------------------------------------------------------


def test_geomedian_ignores_a_bright_outlier_date() -> None:
    clean = np.array(SPECTRA["vegetation"], "float32")
    rng = np.random.default_rng(1)
    values = np.broadcast_to(clean[None, :, None, None], (5, 6, 3, 4)).copy()
    values += rng.normal(0, 0.002, values.shape).astype("float32")
    values[2] = 0.8  # residual cloud: bright in every band
    out = composite(_cube(values), bands=BANDS, windows=H1_2023)
    got = out[list(BANDS)].to_dataarray("band").isel(composite=0).transpose("y", "x", "band").values
    np.testing.assert_allclose(got, np.broadcast_to(clean, got.shape), atol=0.004)
    assert (out["valid_count"] == 5).all()
    median_of_means = np.nanmean(values, axis=0).transpose(1, 2, 0)  # the mean is dragged by the cloud
    assert np.abs(median_of_means - clean).max() > 0.1


def _sum_of_distances(point: np.ndarray, obs: np.ndarray) -> float:
    return float(np.sqrt(((obs - point) ** 2).sum(axis=1)).sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_geomedian_minimises_the_sum_of_euclidean_distances(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 0.5, (7, 4, 2, 3)).astype("float32")
    values = np.where(rng.random((7, 1, 2, 3)) < 0.2, np.nan, values)  # whole observations masked
    values[:, :, 0, 0] = values[0, :, 0, 0]  # keep at least one clear date on a corner
    out = composite(_cube(values), bands=BANDS[:4], windows=H1_2023)
    got = out[list(BANDS[:4])].to_dataarray("band").isel(composite=0).transpose("y", "x", "band").values
    for iy in range(2):
        for ix in range(3):
            obs = values[:, :, iy, ix].astype("float64")
            obs = obs[~np.isnan(obs).any(axis=1)]
            ref = minimize(_sum_of_distances, obs.mean(axis=0), args=(obs,), method="Nelder-Mead",
                           options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 20000})
            np.testing.assert_allclose(got[iy, ix], ref.x, atol=1e-3)
            assert _sum_of_distances(got[iy, ix], obs) <= ref.fun + 1e-5
            assert (obs.min(axis=0) - 1e-6 <= got[iy, ix]).all() and (got[iy, ix] <= obs.max(axis=0) + 1e-6).all()


def test_geomedian_of_a_single_clear_observation_is_that_observation() -> None:
    values = np.full((4, 3, 2, 2), np.nan, "float32")
    values[1, :, 0, 1] = [0.11, 0.22, 0.33]
    out = composite(_cube(values), bands=BANDS[:3], windows=H1_2023)
    np.testing.assert_allclose([out[b].values[0, 0, 1] for b in BANDS[:3]], [0.11, 0.22, 0.33], atol=1e-6)
    assert int(out["valid_count"][0, 0, 1]) == 1
    assert np.isnan(out["red"].values[0, 1, 0]) and int(out["valid_count"][0, 1, 0]) == 0


def test_pit_composites_follow_the_surface() -> None:
    scenes, truth = make_scene((40, 12, 16), pit=np.s_[3:7, 5:11], change_index=24, clouds=0.3, seed=3)
    ws = composite_windows(D(2022, 1, 1), D(2022, 12, 31), products=["semiannual"], dry_season_months=NORTH_DRY)
    out = composite(scenes.chunk({"time": 1, "y": 7, "x": 9}), bands=BANDS, windows=ws, min_valid_obs=3).compute()
    h1 = out.isel(composite=0)[list(BANDS)].to_dataarray("band").transpose("y", "x", "band").values
    np.testing.assert_allclose(h1[truth.values], np.broadcast_to(SPECTRA["vegetation"], (24, 6)), atol=0.01)
    # 2022-08-29 onwards is gravel: 12 of the 18 H2 dates, so H2 sits on the gravel spectrum
    h2 = out.isel(composite=1)[list(BANDS)].to_dataarray("band").transpose("y", "x", "band").values
    np.testing.assert_allclose(h2[truth.values], np.broadcast_to(SPECTRA["gravel"], (24, 6)), atol=0.02)


# --------------------------------------------------------------------------------------------
# masking, counts, empty windows
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["geomedian", "median"])
def test_invalid_observations_are_ignored_even_with_values(method: Any) -> None:
    rng = np.random.default_rng(4)
    values = rng.uniform(0.05, 0.3, (6, 3, 3, 4)).astype("float32")
    valid = rng.random((6, 3, 4)) > 0.3
    valid[:2] = True
    dirty = values.copy()
    dirty[np.broadcast_to(~valid[:, None], dirty.shape)] = 5.0  # a flagged cloud that was not set to NaN
    clean = np.where(np.broadcast_to(valid[:, None], values.shape), values, np.nan)
    got = composite(_cube(dirty, valid=valid), bands=BANDS[:3], windows=H1_2023, method=method)
    want = composite(_cube(clean), bands=BANDS[:3], windows=H1_2023, method=method)
    xr.testing.assert_allclose(got, want)
    assert float(got[list(BANDS[:3])].to_dataarray().max()) < 0.5
    np.testing.assert_array_equal(got["valid_count"].values[0], valid.sum(0))


def test_min_valid_obs_blanks_every_band() -> None:
    values = np.full((5, 3, 2, 3), 0.2, "float32")
    valid = np.ones((5, 2, 3), bool)
    valid[:3, 1, 2] = False  # two clear dates left
    values[np.broadcast_to(~valid[:, None], values.shape)] = np.nan
    out = composite(_cube(values, valid=valid), bands=BANDS[:3], windows=H1_2023, min_valid_obs=3)
    for b in BANDS[:3]:
        assert np.isnan(out[b].values[0, 1, 2])
        assert np.count_nonzero(np.isnan(out[b].values[0])) == 1
    assert int(out["valid_count"][0, 1, 2]) == 2


@pytest.mark.parametrize("dask", [False, True])
def test_window_without_scenes_is_nan_with_zero_count(dask: bool) -> None:
    values = np.full((3, 2, 3, 4), 0.1, "float32")
    ds = _cube(values)
    if dask:
        ds = ds.chunk({"time": 1, "y": 2, "x": 2})
    windows = [*H1_2023, CompositeWindow("dry_season", D(2023, 11, 1), D(2024, 3, 31))]
    out = composite(ds, bands=BANDS[:2], windows=windows).compute()
    assert np.isnan(out["blue"].values[1]).all() and np.isnan(out["green"].values[1]).all()
    assert (out["valid_count"].values[1] == 0).all() and out["valid_count"].dtype == np.int16
    np.testing.assert_allclose(out["blue"].values[0], 0.1, atol=1e-6)


def test_output_layout_and_coordinates() -> None:
    scenes, _ = make_scene((8, 5, 7), start=D(2023, 6, 1), step_days=20)
    scenes = scenes.odc.assign_crs("EPSG:32735")
    ws = composite_windows(D(2023, 6, 1), D(2023, 12, 31), products=["semiannual", "dry_season"],
                           dry_season_months=MARANGE_DRY)
    out = composite(scenes, bands=["red", "nir"], windows=ws, method="median", min_valid_obs=2)
    assert dict(out.sizes) == {"composite": 3, "y": 5, "x": 7}
    assert list(out.data_vars) == ["red", "nir", "valid_count"]
    assert out["red"].dims == ("composite", "y", "x") and out["red"].dtype == np.float32
    assert list(out["product"].values) == ["dry_season", "semiannual", "semiannual"]
    assert list(out["label"].values) == [w.label for w in ws]
    assert out["start"].dtype == np.dtype("datetime64[ns]")
    assert pd.Timestamp(out["end"].values[0]) == pd.Timestamp("2023-10-31")
    assert out.attrs == {"method": "median", "min_valid_obs": 2}
    assert out.odc.geobox == scenes.odc.geobox
    empty = composite(scenes, bands=["red"], windows=[])
    assert empty.sizes["composite"] == 0 and list(empty.data_vars) == ["red", "valid_count"]


def test_bad_arguments() -> None:
    ds = _cube(np.full((2, 2, 2, 2), 0.1, "float32"))
    with pytest.raises(ConfigError, match=r"composites\.method"):
        composite(ds, bands=BANDS[:2], windows=H1_2023, method="mean")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"composites\.min_valid_obs"):
        composite(ds, bands=BANDS[:2], windows=H1_2023, min_valid_obs=0)
    with pytest.raises(MissingBandError, match="'valid'"):
        composite(ds.drop_vars("valid"), bands=BANDS[:2], windows=H1_2023)
    with pytest.raises(MissingBandError, match="'nir'"):
        composite(ds, bands=["blue", "nir"], windows=H1_2023)


# --------------------------------------------------------------------------------------------
# NumPy / Dask parity and laziness; median
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["geomedian", "median"])
def test_dask_matches_numpy_and_builds_lazily(method: Any) -> None:
    scenes, _ = make_scene((30, 11, 13), clouds=0.4, seed=7)
    ws = composite_windows(D(2022, 1, 1), D(2022, 12, 31), products=["semiannual", "dry_season"],
                           dry_season_months=NORTH_DRY)
    eager = composite(scenes, bands=BANDS, windows=ws, method=method, min_valid_obs=3)
    lazy_in = scenes.chunk({"time": 1, "y": 8, "x": 9})
    with raise_if_dask_computes():
        lazy = composite(lazy_in, bands=BANDS, windows=ws, method=method, min_valid_obs=3)
    assert all(lazy[v].chunks is not None for v in lazy.data_vars)
    # every window of a spatial chunk comes from one task: one chunk along ``composite``
    assert lazy["red"].chunks == ((len(ws),), (8, 3), (9, 4))
    computed = lazy.compute()
    for v in eager.data_vars:
        np.testing.assert_allclose(computed[v].values, eager[v].values)  # exact: no chunk-dependent warm starts
    assert np.isfinite(eager["red"].values).any()


def test_median_method_is_per_band_nanmedian() -> None:
    rng = np.random.default_rng(5)
    values = rng.uniform(0.0, 0.6, (9, 4, 3, 5)).astype("float32")
    values = np.where(rng.random((9, 1, 3, 5)) < 0.35, np.nan, values)
    values[:, :, 2, 4] = np.nan  # never clear
    out = composite(_cube(values), bands=BANDS[:4], windows=H1_2023, method="median")
    clear = np.where(np.isnan(values).all(axis=0), 0.0, values)
    with np.errstate(all="ignore"):
        want = np.nanmedian(clear, axis=0)
    want[:, np.isnan(values).all(axis=(0, 1))] = np.nan
    for k, b in enumerate(BANDS[:4]):
        np.testing.assert_allclose(out[b].values[0], want[k], rtol=1e-6)


# --------------------------------------------------------------------------------------------
# COG writer
# --------------------------------------------------------------------------------------------


def _written(tmp_path: Path) -> tuple[xr.Dataset, list[Path]]:
    scenes, _ = make_scene((12, 9, 14), start=D(2023, 5, 1), step_days=20, clouds=0.5, seed=2)
    scenes = scenes.odc.assign_crs("EPSG:32629")
    ws = composite_windows(D(2023, 5, 1), D(2023, 12, 31), products=["semiannual"], dry_season_months=NORTH_DRY)
    comp = composite(scenes, bands=["red", "nir", "swir16"], windows=ws, min_valid_obs=3).compute()
    return comp, write_composites(comp, out_dir=tmp_path / "composites", aoi_id="ci-seguela")


def test_write_composites_round_trip(tmp_path: Path) -> None:
    comp, paths = _written(tmp_path)
    assert [p.name for p in paths] == [
        "ci-seguela_semiannual_2023-05-01_2023-06-30.tif",
        "ci-seguela_semiannual_2023-07-01_2023-12-31.tif",
    ]
    assert sorted(p.name for p in (tmp_path / "composites").iterdir()) == sorted(p.name for p in paths)  # no .part
    assert np.isnan(comp["red"].values).any()  # min_valid_obs left some nodata to check
    for i, path in enumerate(paths):
        with rasterio.open(path) as src:
            assert src.count == 4 and set(src.dtypes) == {"int16"}
            assert src.nodata == composites.COG_NODATA
            assert src.descriptions == ("red", "nir", "swir16", "valid_count")
            assert src.scales == (1e-4, 1e-4, 1e-4, 1.0) and src.offsets == (0.0,) * 4
            assert src.crs.to_epsg() == 32629
            assert src.transform.almost_equals(comp.odc.geobox.affine)
            assert src.compression is not None and src.compression.value == "DEFLATE"
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            tags = src.tags()
            assert {k: tags[k] for k in ("product", "start", "end", "method", "aoi_id")} == {
                "product": "semiannual", "start": str(comp["start"].values[i])[:10],
                "end": str(comp["end"].values[i])[:10], "method": "geomedian", "aoi_id": "ci-seguela",
            }
            data = src.read()
        for k, band in enumerate(["red", "nir", "swir16"]):
            want = comp[band].values[i]
            nan = np.isnan(want)
            np.testing.assert_array_equal(data[k] == composites.COG_NODATA, nan)
            np.testing.assert_allclose(data[k][~nan] * 1e-4, want[~nan], atol=1e-4)
        np.testing.assert_array_equal(data[3], comp["valid_count"].values[i])


def test_write_composites_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    comp, paths = _written(tmp_path)
    before = paths[0].read_bytes()
    real_open = rasterio.open

    def failing_open(path: Any, mode: str = "r", **kwargs: Any) -> Any:
        with real_open(path, mode, **kwargs) as dst:
            dst.write(np.zeros((dst.count, dst.height, dst.width), "int16"))
        raise OSError("disk full")

    monkeypatch.setattr(rasterio, "open", failing_open)
    with pytest.raises(OSError, match="disk full"):
        write_composites(comp, out_dir=tmp_path / "composites", aoi_id="ci-seguela")
    assert paths[0].read_bytes() == before  # the old file is untouched
    assert sorted((tmp_path / "composites").iterdir()) == sorted(paths)


def test_write_composites_refuses_lazy_or_crs_less_input(tmp_path: Path) -> None:
    scenes, _ = make_scene((4, 3, 4), chunks={"time": 1})
    h1_2022 = [CompositeWindow("semiannual", D(2022, 1, 1), D(2022, 6, 30))]
    lazy = composite(scenes.odc.assign_crs("EPSG:32629"), bands=["red"], windows=h1_2022)
    with pytest.raises(ValueError, match=r"Dask-backed; compute them first") as info:
        write_composites(lazy, out_dir=tmp_path, aoi_id="x")
    assert isinstance(info.value, InputDataError)
    no_crs = composite(scenes.compute(), bands=["red"], windows=h1_2022)
    with pytest.raises(InputDataError, match="no CRS"):
        write_composites(no_crs, out_dir=tmp_path, aoi_id="x")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("method", ["median", "geomedian"])
def test_composites_of_chunked_cubes_equal_the_eager_ones(method: Any) -> None:
    """The Dask path (one task per spatial chunk for every window and band, no transposes)
    gives what the kernel gives on the whole NumPy cube: values, dtypes, coordinates, attrs."""
    scenes, _ = make_scene((24, 30, 26), clouds=0.4, seed=4)
    windows = [CompositeWindow("semiannual", dt.date(2022, 1, 1), dt.date(2022, 6, 30)),
               CompositeWindow("dry_season", dt.date(2022, 11, 1), dt.date(2023, 3, 31)),
               CompositeWindow("semiannual", dt.date(2030, 1, 1), dt.date(2030, 6, 30))]  # no date in it
    bands = ["red", "green", "blue", "nir"]
    eager = composite(scenes, bands=bands, windows=windows, method=method, min_valid_obs=2)
    with raise_if_dask_computes():
        lazy = composite(scenes.chunk({"time": 7, "y": 8, "x": 10}), bands=bands, windows=windows, method=method,
                         min_valid_obs=2)
    assert all(lazy[v].data.chunks[1:] == ((8, 8, 8, 6), (10, 10, 6)) for v in lazy.data_vars)
    xr.testing.assert_identical(lazy.compute(), eager)
