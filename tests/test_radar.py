"""Tests for :mod:`pipeline.radar`: dB conversion, speckle filters, log-ratio evidence, Otsu,
fusion with optical evidence, NumPy/Dask parity and laziness, the real Planetary Computer
Sentinel-1 RTC item shape, the synthetic Sentinel-1 collection of :mod:`pipeline.demo`,
and the key result of issue 4: with optical data removed for a wet season, radar keeps the
new-site recall on that season above 0.7.

Run the key result with its numbers printed::

    .venv/bin/python -m pytest tests/test_radar.py -k wet_season -s
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
import xarray as xr

from pipeline import acquire, detect, preprocess, radar, sites
from pipeline.config import DetectParams, PreprocessParams, SearchParams, SitesParams, SourceParams
from pipeline.demo import ScenarioSpec, write_scenario
from pipeline.demo.conventions import S1_COLLECTION_ID, S1_NODATA
from pipeline.demo.landscape import _build_scene
from pipeline.demo.radar import _render_s1, _s1_static
from pipeline.demo.spec import S1_SPEC_FIELDS, _spec_json
from pipeline.errors import CRSMismatchError, InputDataError, MissingBandError, NoValidPixelsError
from pipeline.evaluate import evaluate_sites, read_truth
from pipeline.radar import RadarParams, fuse_evidence, score_radar_change, to_db
from pipeline.search import search_items
from pipeline.testing import raise_if_dask_computes

DIMS = ("time", "y", "x")
OPTICAL = ["blue", "green", "red", "nir", "swir16", "swir22"]


# ============================================================================================
# Tiny synthetic cubes
# ============================================================================================


def _cube(
    values_db: np.ndarray,
    *,
    start: str = "2022-01-01",
    step_days: int = 12,
    vv_offset_db: float = 6.0,
    chunks: dict[str, int] | None = None,
) -> xr.Dataset:
    """Linear gamma0 cube ``(time, y, x)`` from VH in dB; VV = VH + ``vv_offset_db``."""
    nt, ny, nx = values_db.shape
    times = pd.date_range(start, periods=nt, freq=f"{step_days}D")
    coords = {"time": times, "y": 900000.0 - 10 * (np.arange(ny) + 0.5), "x": 500000.0 + 10 * (np.arange(nx) + 0.5)}
    vh = (10 ** (values_db / 10)).astype("float32")
    vv = (10 ** ((values_db + vv_offset_db) / 10)).astype("float32")
    ds = xr.Dataset({"vv": (DIMS, vv), "vh": (DIMS, vh)}, coords=coords)
    return ds.chunk(chunks) if chunks else ds


def _speckled(
    shape: tuple[int, int, int], *, seed: int = 0, enl: float = 4.4, change_at: int | None = None, drop_db: float = 6.0
) -> np.ndarray:
    """VH dB cube of -15 dB savanna with gamma speckle; a block drops by ``drop_db`` from
    ``change_at`` on (non-square block, asymmetric shape to catch y/x swaps)."""
    rng = np.random.default_rng(seed)
    nt, ny, nx = shape
    lin = np.full(shape, 10 ** (-15 / 10))
    if change_at is not None:
        lin[change_at:, 3:9, 5:16] *= 10 ** (-drop_db / 10)
    lin *= rng.gamma(enl, 1 / enl, shape)
    return 10 * np.log10(lin)


# ============================================================================================
# to_db and speckle filters
# ============================================================================================


def test_to_db_converts_and_masks_nodata() -> None:
    lin = np.array([0.1, 0.01, S1_NODATA, 0.0, np.nan, -0.5], "float32").reshape(1, 2, 3)
    ds = xr.Dataset({"vv": (DIMS, lin), "vh": (DIMS, lin / 10)})
    out = to_db(ds)
    np.testing.assert_allclose(out["vv"].values.ravel()[:2], [-10.0, -20.0], rtol=1e-6)
    np.testing.assert_allclose(out["vh"].values.ravel()[:2], [-20.0, -30.0], rtol=1e-6)
    assert out["valid"].values.ravel().tolist() == [True, True, False, False, False, False]
    assert np.isnan(out["vv"].values.ravel()[2:]).all()
    assert out["vv"].dtype == np.float32 and out["valid"].dtype == bool


def test_to_db_uses_the_nodata_coordinate_and_the_deafrica_mask() -> None:
    lin = np.array([0.1, 0.2, 0.3, 0.4], "float32").reshape(2, 1, 2)
    ds = xr.Dataset({"vv": (DIMS, lin), "vh": (DIMS, lin / 5)}).assign_coords(
        nodata_vv=("time", [0.2, -32768.0]), nodata_vh=("time", [-32768.0, -32768.0])
    )
    out = to_db(ds)
    # 0.2 is no-data on the first date only.
    assert out["valid"].values.ravel().tolist() == [True, False, True, True]
    ds["mask"] = (DIMS, np.array([1, 1, 2, 1], "uint8").reshape(2, 1, 2))
    out = to_db(ds)
    assert out["valid"].values.ravel().tolist() == [True, False, False, True]
    assert "mask" not in out.data_vars


def test_to_db_errors_say_what_to_load() -> None:
    ds = xr.Dataset({"vv": (DIMS, np.ones((1, 2, 2), "float32"))})
    with pytest.raises(MissingBandError, match="'vh'"):
        to_db(ds)
    with pytest.raises(InputDataError, match="speckle_filter"):
        to_db(ds, bands=["vv"], speckle_filter="gauss")  # type: ignore[arg-type]
    with pytest.raises(InputDataError, match="odd"):
        to_db(ds, bands=["vv"], speckle_filter="lee", window_px=4)


@pytest.mark.parametrize("method", ["boxcar", "lee"])
def test_speckle_filters_raise_the_looks_and_keep_the_mean(method: str) -> None:
    rng = np.random.default_rng(1)
    speckle = rng.gamma(4.4, 1 / 4.4, (1, 60, 80)).astype("float32")
    ds = xr.Dataset({"vv": (DIMS, 0.05 * speckle), "vh": (DIMS, 0.01 * speckle)})
    raw = 10 ** (to_db(ds)["vh"].values / 10)
    filt = 10 ** (to_db(ds, speckle_filter=method, window_px=3, enl=4.4)["vh"].values / 10)
    enl_raw = raw.mean() ** 2 / raw.var()
    enl_filt = filt.mean() ** 2 / filt.var()
    assert 3.9 < enl_raw < 4.9
    # 3 x 3 of independent looks: about 9 x the looks (Lee a little less: it keeps some detail).
    assert enl_filt > 5 * enl_raw
    assert abs(filt.mean() / raw.mean() - 1) < 0.02


def test_lee_keeps_an_edge_sharper_than_boxcar() -> None:
    # Noise-free step of 10 dB: the Lee filter sees the edge as signal (local variance far
    # above speckle) and moves edge pixels only part of the way to the local mean (its gain
    # k = var_x / var_z is at most 1 / (1 + 1 / L)); the boxcar replaces them by the mean.
    lin = np.where(np.arange(12) < 6, 0.1, 0.01).astype("float32")[None, None, :].repeat(5, 1)
    ds = xr.Dataset({"vv": (DIMS, lin), "vh": (DIMS, lin)})
    truth = 10 * np.log10(lin[0, 2])
    lee = to_db(ds, speckle_filter="lee", window_px=3)["vh"].values[0, 2]
    box = to_db(ds, speckle_filter="boxcar", window_px=3)["vh"].values[0, 2]
    flat = np.r_[0:5, 7:12]
    np.testing.assert_allclose(lee[flat], truth[flat], atol=1e-4)
    np.testing.assert_allclose(box[flat], truth[flat], atol=1e-4)
    assert np.all(np.abs(lee[5:7] - truth[5:7]) < np.abs(box[5:7] - truth[5:7]))


def test_speckle_filter_ignores_invalid_neighbours() -> None:
    lin = np.full((1, 5, 6), 0.01, "float32")
    lin[0, 2, 3] = S1_NODATA  # must neither leak into neighbours nor become valid
    lin[0, 0, 0] = np.nan
    ds = xr.Dataset({"vv": (DIMS, lin), "vh": (DIMS, lin)})
    for method in ("boxcar", "lee"):
        out = to_db(ds, speckle_filter=method, window_px=3)
        vh = out["vh"].values[0]
        assert np.isnan(vh[2, 3]) and np.isnan(vh[0, 0])
        finite = np.isfinite(vh)
        np.testing.assert_allclose(vh[finite], -20.0, atol=1e-4)
        assert not out["valid"].values[0, 2, 3]


# ============================================================================================
# Log-ratio evidence
# ============================================================================================

MON = dt.date(2023, 1, 1)


def _series(vh_db: list[float], *, vv_offset_db: float = 6.0) -> xr.Dataset:
    """One pixel, 12-day series starting 2022-01-01 (31 baseline dates before MON)."""
    return to_db(_cube(np.array(vh_db, "float64")[:, None, None], vv_offset_db=vv_offset_db))


def test_log_ratio_drop_is_baseline_median_minus_current() -> None:
    base = [-15.0, -14.0, -16.0] * 10 + [-15.0]  # 31 dates, median -15
    ds = _series(base + [-21.0, -16.0, -15.0])
    out = score_radar_change(ds, monitoring_start=MON, params=RadarParams())
    assert out.sizes["time"] == 3
    np.testing.assert_allclose(out["vh_drop_db"].values.ravel(), [6.0, 1.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(out["baseline_vh_db"].item(), -15.0, atol=1e-4)
    assert out["evidence"].values.ravel().tolist() == [True, False, False]
    assert out["n_baseline"].item() == 31
    assert out["evidence"].dims == DIMS


def test_burn_scar_sized_drop_is_not_evidence() -> None:
    ds = _series([-15.0] * 31 + [-16.0, -16.0])
    out = score_radar_change(ds, monitoring_start=MON, params=RadarParams())
    assert not out["evidence"].values.any()
    assert out["valid"].values.all()


def test_vv_and_bare_level_rules_can_be_switched_off() -> None:
    # VH drops 4 dB to -14 dB (still vegetated) while VV stays: a drying canopy, not a pit.
    vh = [-10.0] * 31 + [-14.0]
    ds = _series(vh, vv_offset_db=0.0)
    ds["vv"] = ds["vv"].where(False, -8.0).where(ds["valid"])  # VV flat
    strict = score_radar_change(ds, monitoring_start=MON, params=RadarParams())
    assert not strict["evidence"].values.any()
    loose = score_radar_change(ds, monitoring_start=MON, params=RadarParams(vv_drop_min_db=None, vh_max_db=None))
    assert loose["evidence"].values.all()


def test_too_short_a_baseline_gives_no_radar_observation() -> None:
    vh = [np.nan] * 28 + [-15.0] * 3 + [-21.0]
    ds = _series(vh)
    out = score_radar_change(ds, monitoring_start=MON, params=RadarParams(baseline_min_obs=5))
    assert not out["valid"].values.any() and not out["evidence"].values.any()


def test_temporal_mean_averages_linear_power_over_the_last_n_dates() -> None:
    ds = _series([-15.0] * 31 + [-21.0, -21.0])
    out = score_radar_change(ds, monitoring_start=MON, params=RadarParams(temporal_mean_obs=2))
    first = 10 * np.log10((10**-1.5 + 10**-2.1) / 2)  # mean of -15 dB and -21 dB in power
    np.testing.assert_allclose(out["vh_db"].values.ravel(), [first, -21.0], atol=1e-3)
    assert out["evidence"].values.ravel().tolist() == [False, True]  # -17.5 dB: not bare yet


def test_crops_brighter_than_the_baseline_count_as_revegetated() -> None:
    # Savanna baseline -15 dB; a cleared field goes bare (-21 dB), then carries a crop
    # (-13 dB): re-vegetation from the second crop date on (the 3-date mean is taken in
    # linear power, where the crop dominates: -21, -13, -13 dB average to -14.4 dB).
    ds = _series([-15.0] * 31 + [-21.0, -21.0, -13.0, -13.0, -13.0, -13.0])
    out = score_radar_change(ds, monitoring_start=MON, params=RadarParams())
    assert out["evidence"].values.ravel().tolist() == [True, True, False, False, False, False]
    assert out["regrowth"].values.ravel().tolist() == [False, False, False, True, True, True]


def test_a_pit_and_a_bare_baseline_never_look_revegetated() -> None:
    # A pit 5 dB down stays far from its baseline, single bright speckle dates included.
    pit = score_radar_change(_series([-15.0] * 31 + [-20.0, -20.0, -14.0, -20.0, -20.0]),
                             monitoring_start=MON, params=RadarParams())
    assert not pit["regrowth"].values.any()
    # Laterite (-19 dB baseline) is already "bare": being at its baseline is not regrowth.
    bowal = score_radar_change(_series([-19.0] * 31 + [-19.0] * 4), monitoring_start=MON, params=RadarParams())
    assert not bowal["regrowth"].values.any()
    off = score_radar_change(_series([-15.0] * 31 + [-13.0] * 4), monitoring_start=MON,
                             params=RadarParams(regrowth_drop_max_db=None))
    assert not off["regrowth"].values.any()


def test_missing_baseline_or_monitoring_data_is_a_clear_error() -> None:
    ds = _series([-15.0] * 5)  # 2022-01-01 .. 2022-02-18
    with pytest.raises(NoValidPixelsError, match="on or after"):
        score_radar_change(ds, monitoring_start=dt.date(2022, 3, 1), params=RadarParams())
    with pytest.raises(NoValidPixelsError, match="baseline"):
        score_radar_change(ds, monitoring_start=dt.date(2021, 1, 1), params=RadarParams())


def test_otsu_switch_finds_the_valley_of_a_bimodal_drop() -> None:
    # 40 baseline dates, then 6 monitoring dates where half the pixels dropped by 8 dB.
    vh = _speckled((46, 12, 20), seed=3, enl=30.0)
    vh[40:, :, 10:] -= 8.0
    ds = to_db(_cube(vh, start="2022-01-01", step_days=10))
    start = dt.date(2022, 1, 1) + dt.timedelta(days=400)
    params = RadarParams(threshold_method="otsu", vv_drop_min_db=None, vh_max_db=None)
    out = score_radar_change(ds, monitoring_start=start, params=params)
    threshold = float(out["vh_threshold_db"])
    assert 2.5 < threshold < 5.5
    assert out["evidence"].values[:, :, 10:].mean() > 0.99
    assert out["evidence"].values[:, :, :10].mean() < 0.01
    # With change a tiny share of the pixels Otsu cuts through the noise: the floor holds.
    ds_nochange = to_db(_cube(_speckled((46, 12, 20), seed=4), step_days=10))
    out = score_radar_change(
        ds_nochange, monitoring_start=start, params=params.model_copy(update={"otsu_floor_db": 2.5})
    )
    assert float(out["vh_threshold_db"]) >= 2.5
    fixed = score_radar_change(
        ds_nochange, monitoring_start=start, params=RadarParams(vh_drop_min_db=3.0, threshold_method="fixed")
    )
    assert float(fixed["vh_threshold_db"]) == 3.0


# ============================================================================================
# Fusion
# ============================================================================================


def _bool(values: list[int], times: list[str]) -> xr.DataArray:
    return xr.DataArray(
        np.array(values, bool)[:, None, None], dims=DIMS, coords={"time": pd.to_datetime(times), "y": [5.0], "x": [5.0]}
    )


def test_fusion_is_an_outer_join_and_radar_confirms_through_clouds() -> None:
    opt_t = ["2023-05-01", "2023-05-11", "2023-05-21", "2023-05-31", "2023-06-10", "2023-06-20"]
    rad_t = ["2023-05-04", "2023-05-16", "2023-05-28", "2023-06-09", "2023-06-21"]
    # Optical: clear and unchanged in May, then clouded out. Radar: change from 2023-05-28.
    oe, ov = _bool([0, 0, 0, 0, 0, 0], opt_t), _bool([1, 1, 0, 0, 0, 0], opt_t)
    re, rv = _bool([0, 0, 1, 1, 1], rad_t), _bool([1, 1, 1, 1, 1], rad_t)
    ev, ok = fuse_evidence(oe, ov, re, rv)
    assert ev.sizes["time"] == 11 and ev.dims == DIMS
    assert list(ev["sensor"].values[:3]) == ["optical", "radar", "optical"]
    change = detect.confirm_change(ev, ok, min_confirmations=3)
    assert bool(change["confirmed"].item())
    assert pd.Timestamp(change["first_change"].item(), unit="D") == pd.Timestamp("2023-05-28")
    # Optical alone never sees it.
    assert not bool(detect.confirm_change(oe, ov, min_confirmations=3)["confirmed"].item())


def test_fusion_at_the_same_instant_ors_the_sensors() -> None:
    t = ["2023-07-01"]
    ev, ok = fuse_evidence(_bool([1], t), _bool([0], t), _bool([1], t), _bool([1], t))
    assert ev.item() and ok.item() and ev["sensor"].item() == "both"
    ev, ok = fuse_evidence(_bool([1], t), _bool([0], t), _bool([0], t), _bool([0], t))
    assert not ev.item() and not ok.item()


def test_gap_fill_uses_radar_only_after_optical_silence() -> None:
    opt_t = ["2023-05-01", "2023-05-11"]
    rad_t = ["2023-05-16", "2023-06-21"]
    oe, ov = _bool([0, 0], opt_t), _bool([1, 1], opt_t)
    re, rv = _bool([1, 1], rad_t), _bool([1, 1], rad_t)
    ev, ok = fuse_evidence(oe, ov, re, rv, radar_role="gap_fill", optical_gap_days=30)
    # 2023-05-16 is 5 days after a clear optical date: radar does not count there.
    assert ok.values.ravel().tolist() == [True, True, False, True]
    assert ev.values.ravel().tolist() == [False, False, False, True]
    with pytest.raises(InputDataError, match="radar_role"):
        fuse_evidence(oe, ov, re, rv, radar_role="sometimes")  # type: ignore[arg-type]


def test_fusion_refuses_different_grids() -> None:
    t = ["2023-07-01"]
    other = _bool([1], t).assign_coords(x=[15.0])
    with pytest.raises(CRSMismatchError, match="geobox"):
        fuse_evidence(_bool([1], t), _bool([1], t), other, other)


# ============================================================================================
# Parameters
# ============================================================================================


def test_radar_params_are_frozen_strict_and_documented() -> None:
    p = RadarParams()
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen error type
        p.vh_drop_min_db = 1.0  # type: ignore[misc]
    with pytest.raises(Exception, match="extra"):  # noqa: B017
        RadarParams(vh_drop_db=3.0)  # type: ignore[call-arg]
    with pytest.raises(Exception, match="odd"):  # noqa: B017
        RadarParams(speckle_window_px=4)
    assert dask.base.tokenize(RadarParams()) == dask.base.tokenize(RadarParams())
    for name, info in RadarParams.model_fields.items():
        assert info.description, f"RadarParams.{name} has no docstring"


# ============================================================================================
# NumPy / Dask parity and laziness
# ============================================================================================


@pytest.mark.parametrize(
    ("speckle", "kwargs"),
    [
        ("none", {}),
        ("boxcar", {"temporal_mean_obs": 2}),
        ("lee", {"threshold_method": "otsu"}),
        ("lee", {"speckle_window_px": 5, "radar_role": "gap_fill"}),
    ],
)
def test_dask_and_numpy_agree_and_stay_lazy(speckle: str, kwargs: dict[str, Any]) -> None:
    params = RadarParams(speckle_filter=speckle, **kwargs)  # type: ignore[arg-type]
    vh = _speckled((44, 15, 22), seed=5, change_at=38)
    vh[3, 4:7, 2:9] = np.nan  # some no-data
    start = dt.date(2022, 1, 1) + dt.timedelta(days=12 * 32)

    def run(chunks: dict[str, int] | None) -> tuple[xr.Dataset, xr.DataArray, xr.DataArray]:
        ds = _cube(vh, chunks=chunks)
        db = to_db(ds, speckle_filter=params.speckle_filter, window_px=params.speckle_window_px, enl=params.enl)
        scored = score_radar_change(db, monitoring_start=start, params=params)
        times = pd.DatetimeIndex(scored["time"].values) + pd.Timedelta(days=5)
        opt_ok = xr.DataArray(
            np.random.default_rng(0).random((len(times), 15, 22)) > 0.7,
            dims=DIMS,
            coords={"time": times, "y": db["y"], "x": db["x"]},
        )
        if chunks:
            opt_ok = opt_ok.chunk({"y": 8, "x": 8})
        ev, ok = fuse_evidence(
            opt_ok & False,
            opt_ok,
            scored["evidence"],
            scored["valid"],
            radar_role=params.radar_role,
            optical_gap_days=params.optical_gap_days,
        )
        return scored, ev, ok

    eager, ev_np, ok_np = run(None)
    with raise_if_dask_computes():
        lazy, ev_da, ok_da = run({"time": 11, "y": 8, "x": 12})
    assert lazy["evidence"].chunks is not None and ev_da.chunks is not None
    # Compute variable by variable: dask.compute(<Dataset>) trips pydata/xarray#11329.
    for name in eager.data_vars:
        got = lazy[name].compute()
        if eager[name].dtype == bool or eager[name].dtype.kind == "i":
            np.testing.assert_array_equal(got.values, eager[name].values, err_msg=name)
        else:
            np.testing.assert_allclose(got.values, eager[name].values, rtol=1e-6, atol=1e-5, err_msg=name)
    np.testing.assert_array_equal(ev_da.compute().values, ev_np.values)
    np.testing.assert_array_equal(ok_da.compute().values, ok_np.values)
    assert eager["evidence"].values[-3:, 3:9, 5:16].mean() > 0.6  # 6 dB drop through ENL-4.4 speckle


def test_speckle_filter_is_bit_identical_across_chunkings() -> None:
    vh = _speckled((3, 31, 45), seed=9)
    ds = _cube(vh)
    want = to_db(ds, speckle_filter="lee", window_px=5)["vh"].values
    for chunks in ({"time": 1, "y": 10, "x": 11}, {"time": 3, "y": 31, "x": 7}):
        got = to_db(ds.chunk(chunks), speckle_filter="lee", window_px=5)["vh"].values
        np.testing.assert_array_equal(got, want)


# ============================================================================================
# Real Planetary Computer Sentinel-1 RTC items (shape only: no pixels)
# ============================================================================================


def test_planetary_computer_s1_rtc_items_parse(external: Path) -> None:
    from pipeline.harmonise import band_scaling
    from pipeline.providers.base import normalise_item

    path = external / "stac-geoparquet-pc-items" / "sentinel-1-rtc-pc.json"
    if not path.is_file():
        pytest.skip(f"{path} missing")
    raw = json.loads(path.read_text())
    assert isinstance(raw, list) and raw
    for d in raw:
        item = pystac.Item.from_dict(d)
        assert {"vv", "vh"} <= set(item.assets)
        for band in radar.RADAR_BANDS:
            rb = item.assets[band].extra_fields["raster:bands"][0]
            assert rb["nodata"] == radar.RTC_NODATA and rb["data_type"] == "float32"
            # Linear gamma0 as published: no scale/offset, no-data -32768.
            assert band_scaling(item, band).as_tuple() == (1.0, 0.0, radar.RTC_NODATA)
        props = item.properties
        assert props["sar:instrument_mode"] == "IW" and props["sar:polarizations"] == ["VV", "VH"]
        assert props["sat:orbit_state"] in ("ascending", "descending")
        assert props["sar:looks_equivalent_number"] == RadarParams().enl
        normalised = normalise_item(item, aliases={}, bands=list(radar.RADAR_BANDS))
        assert set(radar.RADAR_BANDS) <= set(normalised.assets)


# ============================================================================================
# Synthetic Sentinel-1 in the scenario
# ============================================================================================

#: Two years, wet season 2023 clouded out for the key result. Small enough for ~30 s.
SPEC = ScenarioSpec(
    shape_px=(120, 160),
    start=dt.date(2022, 1, 1),
    end=dt.date(2023, 12, 31),
    monitoring_start=dt.date(2023, 1, 1),
    pit_open_margin_days=60,
    n_pits=14,
    pit_area_ha=(0.5, 1.2),
    n_fields=2,
    field_area_ha=(0.5, 1.5),
    burn_area_ha=(1.5, 3.0),
    n_bare_patches=1,
    bare_patch_area_ha=(0.5, 1.0),
    with_s1=True,
    seed=0,
)
GAP = (dt.date(2023, 6, 1), dt.date(2023, 10, 31))


def test_radar_settings_do_not_touch_the_default_demo() -> None:
    default = ScenarioSpec()
    assert not set(_spec_json(default)) & set(S1_SPEC_FIELDS)
    assert replace(default, s1_enl=2.0, s1_revisit_days=6).digest() == default.digest()
    assert replace(default, with_s1=True).digest() != default.digest()


def test_speckle_has_the_requested_looks_and_ignores_clouds() -> None:
    spec = replace(SPEC, shape_px=(80, 100), n_pits=3, n_fields=1)
    scene = _build_scene(spec)
    s1 = _s1_static(scene)
    when = s1.dates[20]
    noisy = _render_s1(scene, s1, when, np.random.default_rng(1))
    clean_scene = _build_scene(replace(spec, s1_enl=1e7))
    clean = _render_s1(clean_scene, _s1_static(clean_scene), when, np.random.default_rng(1))
    ratio = noisy / clean
    assert ratio.mean() == pytest.approx(1.0, abs=0.01)
    assert 1 / ratio.var() == pytest.approx(spec.s1_enl, rel=0.1)
    scene.cloud_cover[:] = [1.0] * len(scene.cloud_cover)  # every optical date overcast
    again = _render_s1(scene, s1, when, np.random.default_rng(1))
    np.testing.assert_array_equal(again, noisy)


def test_backscatter_of_pits_and_savanna() -> None:
    spec = replace(SPEC, s1_enl=1e7)  # no speckle: class means only
    scene = _build_scene(spec)
    s1 = _s1_static(scene)
    when = dt.date(2023, 12, 20)  # dry season, every pit open
    gamma0 = _render_s1(scene, s1, when, np.random.default_rng(0))
    db = 10 * np.log10(gamma0)
    occupied = np.zeros(scene.grid.shape, bool)
    for pit in scene.pits:
        open_mask = pit.rank <= 0.3 + 0.7 * min(1.0, (when - pit.opened).days / pit.grow_days)
        sub = db[(slice(None), *pit.window)][:, open_mask]
        if pit.fate == "active":
            assert -14.5 < sub[0].mean() < -11.5 and -22.5 < sub[1].mean() < -19.5, pit.truth_id
        occupied[pit.window] |= np.isfinite(pit.rank)
    for patch in scene.patches:
        occupied[patch.window] |= patch.mask
    savanna = ~occupied & (scene.forest == 0)
    for r in scene.rivers:
        savanna &= r.distance > 6
    assert -11.0 < db[0][savanna].mean() < -8.0 and -17.0 < db[1][savanna].mean() < -14.0


@pytest.fixture(scope="module")
def s1_scenario(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return write_scenario(tmp_path_factory.mktemp("radar-scenario"), SPEC)


def _search(result: Any, collection: str, bands: list[str]) -> list[pystac.Item]:
    aoi = gpd.read_file(result.aoi_path).geometry.iloc[0]
    source = SourceParams(url=str(result.catalog_path), collection=collection)
    return search_items(aoi, SPEC.start, SPEC.end, source=source, params=SearchParams(), bands=bands)


def test_s1_items_follow_the_planetary_computer_shape(s1_scenario: Any) -> None:
    items = _search(s1_scenario, S1_COLLECTION_ID, ["vv", "vh"])
    assert len(items) == s1_scenario.n_s1_items == 61  # 12-day revisit over two years
    days = np.diff([it.datetime.date().toordinal() for it in items if it.datetime])
    assert set(days.tolist()) == {12}
    item = items[0]
    props = item.properties
    assert props["platform"] == "sentinel-1a" and props["constellation"] == "sentinel-1"
    assert props["sar:instrument_mode"] == "IW" and props["sar:polarizations"] == ["VV", "VH"]
    assert props["sat:orbit_state"] == "ascending"
    assert (props["sat:absolute_orbit"] - 73) % 175 + 1 == props["sat:relative_orbit"]
    assert "eo:cloud_cover" not in props
    for band in ("vv", "vh"):
        rb = item.assets[band].extra_fields["raster:bands"][0]
        assert {"nodata": S1_NODATA, "data_type": "float32", "spatial_resolution": 10.0}.items() <= rb.items()
        assert (rb["scale"], rb["offset"]) == (1.0, 0.0)  # harmonised on search: identity
        with rasterio.open(item.assets[band].get_absolute_href()) as src:
            assert src.dtypes[0] == "float32" and src.nodata == S1_NODATA
            assert src.crs.to_epsg() == s1_scenario.epsg and src.res == (10.0, 10.0)
    # The S2 collection is untouched and found on its own.
    s2 = _search(s1_scenario, "sentinel-2-c1-l2a", ["red", "scl"])
    assert s2 and all(it.collection_id == "sentinel-2-c1-l2a" for it in s2)


def test_odc_stac_loads_radar_and_masks_the_nodata_stripe(s1_scenario: Any) -> None:
    items = _search(s1_scenario, S1_COLLECTION_ID, ["vv", "vh"])
    geobox = acquire.aoi_geobox(s1_scenario.bounds_utm, epsg=s1_scenario.epsg, resolution_m=10)
    scenes = acquire.open_scenes(items, geobox=geobox, bands=["vv", "vh"], chunk_px=160)
    assert scenes["vv"].dtype == np.float32
    assert float(scenes["nodata_vv"][0]) == S1_NODATA
    db = to_db(scenes).compute()
    stripe = (scenes["vv"] == S1_NODATA).any(["y", "x"]).values
    assert stripe.sum() == SPEC.s1_n_nodata_stripe_dates
    assert not db["valid"].values[stripe].all() and db["valid"].values[~stripe].all()
    assert np.isnan(db["vv"].values[~db["valid"].values]).all()
    assert -18.0 < float(db["vh"].median()) < -13.0


# ============================================================================================
# The key result: radar keeps new-site recall when optical is clouded out for a wet season
# ============================================================================================


@pytest.fixture(scope="module")
def wet_season_result(s1_scenario: Any) -> dict[str, Any]:
    res = s1_scenario
    s2_items = [
        it
        for it in _search(res, "sentinel-2-c1-l2a", [*OPTICAL, "scl"])
        if it.datetime and not GAP[0] <= it.datetime.date() <= GAP[1]
    ]
    s1_items = _search(res, S1_COLLECTION_ID, ["vv", "vh"])
    geobox = acquire.aoi_geobox(res.bounds_utm, epsg=res.epsg, resolution_m=10)
    dp, rp = DetectParams(), RadarParams()
    with raise_if_dask_computes():  # the whole fused chain is built lazily
        scenes = acquire.open_scenes(s2_items, geobox=geobox, bands=[*OPTICAL, "scl"], chunk_px=80)
        refl = preprocess.to_reflectance(scenes.chunk({"time": -1}), bands=OPTICAL)
        masked = preprocess.mask_clouds(
            refl, bands=OPTICAL, mask_classes=PreprocessParams().scl_mask_classes, buffer_px=1
        )
        scored = detect.score_change(masked, monitoring_start=SPEC.monitoring_start, params=dp)
        s1 = acquire.open_scenes(s1_items, geobox=geobox, bands=["vv", "vh"], chunk_px=80)
        db = to_db(s1, speckle_filter=rp.speckle_filter, window_px=rp.speckle_window_px, enl=rp.enl)
        radar_scored = score_radar_change(db, monitoring_start=SPEC.monitoring_start, params=rp)
        fused = fuse_evidence(
            scored["evidence"],
            scored["valid"],
            radar_scored["evidence"],
            radar_scored["valid"],
            radar_role=rp.radar_role,
            optical_gap_days=rp.optical_gap_days,
        )
        detect.flag_excavation(detect.confirm_change(*fused, min_confirmations=dp.min_confirmations), params=dp)
    with dask.config.set(scheduler="threads", num_workers=2):
        oe, ov, re, rv = dask.compute(
            scored["evidence"], scored["valid"], radar_scored["evidence"], radar_scored["valid"]
        )
    truth = read_truth(res.truth_path)
    pits = truth[truth["kind"] == "pit"]
    gap_pits = pits[pd.to_datetime(pits["opened"]).dt.date.between(*GAP)]
    distractors = truth[truth["kind"] != "pit"]

    def evaluate(evidence: xr.DataArray, valid: xr.DataArray) -> dict[str, Any]:
        change = detect.confirm_change(evidence, valid, min_confirmations=dp.min_confirmations)
        flags = detect.flag_excavation(change, params=dp)
        found, _ = sites.polygonise_flags(
            flags,
            change,
            aoi_id="radar-test",
            aoi_mask=None,
            crs=f"EPSG:{res.epsg}",
            last_period_start=dt.date(2023, 10, 1),
            min_confirmations=dp.min_confirmations,
            params=SitesParams(),
        )
        found = found.to_crs(4326)
        in_period = found[pd.to_datetime(found["first_seen"]).dt.date <= GAP[1]]
        return {
            "all": evaluate_sites(found, truth),
            # Reported during the gap: a site first seen by the end of the gap.
            "gap": evaluate_sites(in_period, pd.concat([gap_pits, distractors])),
            "gap_eventually": evaluate_sites(found, pd.concat([gap_pits, distractors])),
        }

    out = {
        "n_gap_pits": len(gap_pits),
        "optical": evaluate(oe, ov),
        "radar": evaluate(re, rv),
        "fused": evaluate(*fuse_evidence(oe, ov, re, rv)),
    }
    for name in ("optical", "radar", "fused"):
        m = out[name]
        print(
            f"\n{name:8s} gap pits {out['n_gap_pits']}: recall in period {m['gap']['recall']:.2f}, "
            f"eventually {m['gap_eventually']['recall']:.2f}; all pits recall {m['all']['recall']:.2f} "
            f"precision {m['all']['precision']:.2f} distractor hits {m['all']['distractor_hits']} "
            f"first-seen error {m['all']['first_seen_error_days_median']} d"
        )
    return out


def test_radar_keeps_new_site_recall_through_a_clouded_wet_season(wet_season_result: dict[str, Any]) -> None:
    r = wet_season_result
    assert r["n_gap_pits"] >= 5
    fused, optical = r["fused"]["gap"]["recall"], r["optical"]["gap"]["recall"]
    assert fused > 0.7
    assert optical < fused


def test_fusing_radar_adds_no_false_sites(wet_season_result: dict[str, Any]) -> None:
    fused = wet_season_result["fused"]["all"]
    assert fused["precision"] >= 0.9
    assert fused["distractor_hits"] == 0
    assert fused["recall"] >= wet_season_result["optical"]["all"]["recall"]


def test_radar_scenario_is_deterministic(tmp_path: Path) -> None:
    import hashlib

    spec = replace(
        SPEC,
        shape_px=(40, 60),
        start=dt.date(2022, 11, 1),
        end=dt.date(2023, 4, 30),
        n_pits=2,
        n_fields=1,
        n_burn_scars=0,
        field_area_ha=(0.2, 0.3),
        pit_area_ha=(0.2, 0.3),
        pit_open_margin_days=30,
        bare_patch_area_ha=(0.1, 0.2),
    )

    def digest(folder: Path) -> str:
        h = hashlib.sha256()
        for path in sorted((folder / "catalog" / S1_COLLECTION_ID).rglob("*")):
            if path.is_file():
                h.update(path.name.encode() + path.read_bytes())
        return h.hexdigest()

    first = write_scenario(tmp_path / "a", spec)
    second = write_scenario(tmp_path / "b", spec)
    assert first.n_s1_items == second.n_s1_items == 15
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
