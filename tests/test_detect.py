"""Detection on synthetic scenes with exact ground truth; NumPy/Dask parity; laziness."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import detect
from pipeline.config import DetectParams
from pipeline.detect.baselines import _nanquantile_np
from pipeline.detect.confirm import _confirm_np
from pipeline.errors import NoValidPixelsError
from pipeline.testing import make_scene, raise_if_dask_computes

MON_START = dt.date(2022, 1, 1) + dt.timedelta(days=10 * 20)  # index 20 of a 10-day series
PARAMS = DetectParams(baseline_days=365)


def _run(scenes: xr.Dataset, params: DetectParams = PARAMS) -> tuple[xr.DataArray, xr.Dataset]:
    scored = detect.score_change(scenes, monitoring_start=MON_START, params=params)
    change = detect.confirm_change(scored["evidence"], scored["valid"], min_confirmations=params.min_confirmations,
                                   regrowth=scored["regrowth"], min_regrowth_obs=params.regrowth_min_obs)
    return detect.flag_excavation(change, params=params), change


@pytest.mark.parametrize("pit_class", ["gravel", "water"])
def test_pit_is_found_exactly(pit_class: str) -> None:
    scenes, truth = make_scene(pit_class=pit_class)
    flags, change = _run(scenes)
    np.testing.assert_array_equal(flags.values, truth.values)
    expected = (pd.Timestamp(scenes.time.values[24]) - pd.Timestamp("1970-01-01")).days
    assert np.all(change["first_change"].values[truth.values] == expected)


def test_burn_scar_is_not_excavation() -> None:
    scenes, _ = make_scene(pit_class="char")
    flags, _ = _run(scenes)
    assert not flags.values.any()


def test_no_change_no_flags() -> None:
    scenes, _ = make_scene(pit=np.s_[0:0, 0:0])
    flags, _ = _run(scenes)
    assert not flags.values.any()


def test_clouds_delay_but_do_not_break_confirmation() -> None:
    scenes, truth = make_scene(clouds=0.3, seed=3)
    flags, change = _run(scenes)
    assert flags.values[truth.values].mean() > 0.95
    assert not flags.values[~truth.values].any()
    assert (change["n_occluded"].values[truth.values] > 0).any()


def test_regreening_is_rejected_by_persistence() -> None:
    scenes, truth = make_scene(change_index=22)
    # The "pit" re-greens after five observations: a cleared field, not a mine.
    veg = make_scene(pit=np.s_[0:0, 0:0])[0]
    for band in ("blue", "green", "red", "nir", "swir16", "swir22"):
        scenes[band][27:] = veg[band][27:]
    flags, change = _run(scenes)
    assert change["confirmed"].values[truth.values].all()
    assert not flags.values.any()


def test_dask_and_numpy_agree_and_stay_lazy() -> None:
    eager, _ = make_scene(clouds=0.2, seed=1)
    lazy, _ = make_scene(clouds=0.2, seed=1, chunks={"time": 1, "y": 16, "x": 20})
    with raise_if_dask_computes():
        flags_lazy, change_lazy = _run(lazy)
    assert flags_lazy.chunks is not None
    flags_lazy, change_lazy = dask.compute(flags_lazy, change_lazy)  # one pass, not one per variable
    flags_eager, change_eager = _run(eager)
    np.testing.assert_array_equal(flags_lazy.values, flags_eager.values)
    for name in detect.CHANGE_VARS:
        np.testing.assert_array_equal(change_lazy[name].values, change_eager[name].values)


@pytest.mark.parametrize("params", [
    PARAMS,
    DetectParams(baseline_days=365, widespread_loss_max_frac=0.01),  # dates of the pit itself dropped
    DetectParams(baseline_days=365, widespread_loss_max_frac=None),
    DetectParams(baseline_days=365, swir_change_min=0.05, rearm_after_regrowth=True),
], ids=["default", "widespread-triggers", "no-widespread-test", "swir-rearm"])
def test_blockwise_detection_equals_the_lazy_graph(params: DetectParams, monkeypatch: pytest.MonkeyPatch) -> None:
    """detect_change's two tasks per chunk (pipeline.detect.blockwise) give what the graph of
    xarray operations gives, value for value, including the widespread test's grid-wide counts."""
    from pipeline.detect import blockwise

    lazy, _ = make_scene(clouds=0.3, seed=3, chunks={"time": -1, "y": 16, "x": 20})
    assert blockwise.supported(lazy, params, None)
    with raise_if_dask_computes():
        flags_b, change_b = detect.detect_change(lazy, start=MON_START, params=params)
    n_blockwise = len(dict(change_b.__dask_graph__()))
    monkeypatch.setattr(blockwise, "supported", lambda *_: False)
    flags_g, change_g = detect.detect_change(lazy, start=MON_START, params=params)
    assert n_blockwise < len(dict(change_g.__dask_graph__()))
    (flags_b, change_b), (flags_g, change_g) = dask.compute((flags_b, change_b), (flags_g, change_g))
    xr.testing.assert_identical(flags_b, flags_g)
    xr.testing.assert_identical(change_b, change_g)
    if params.widespread_loss_max_frac == 0.01:
        assert not flags_g.values.any()  # the test did drop the pit's dates
    else:
        assert flags_g.values.any()


@pytest.mark.parametrize("params", [
    DetectParams(baseline_days=365),
    DetectParams(baseline_days=365, swir_change_min=0.05, rearm_after_regrowth=True),
], ids=["default", "swir-rearm"])
def test_confirmation_resumed_from_a_stored_state_equals_one_pass(params: DetectParams, tmp_path: Path) -> None:
    """The state kept after some monitoring dates, stepped over the rest alone (with the
    baseline dates), gives what one pass over every date gives; so does the stored state of
    every date with nothing left to step over (pipeline.state keeps it, blockwise resumes)."""
    from pipeline.detect import blockwise
    from pipeline.detect.confirm import ConfirmState
    from pipeline.detect.stage import confirm_options
    from pipeline.preprocess import observation_windows
    from pipeline.state import StateStore

    lazy, _ = make_scene(clouds=0.3, seed=3, chunks={"time": -1, "y": 16, "x": 20})
    base, mon = observation_windows(lazy, monitoring_start=MON_START, baseline_days=params.baseline_days)
    store = StateStore(tmp_path, aoi_id="a", grid="g")
    shape = (lazy.sizes["y"], lazy.sizes["x"])
    chunks = lazy["red"].data.chunks[1:]
    confirm = confirm_options(params)

    def run(take: list[int], source: str | None, key: str | None) -> xr.Dataset:
        writer = None if key is None else store.new_detection(key, shape, ConfirmState.FIELDS, chunks=chunks)
        out = blockwise.change_blockwise(lazy, start=MON_START, params=params, confirm=confirm, take=take,
                                         resume=blockwise.Resume(source=source, writer=writer)).compute()
        store.commit()
        return out

    whole = blockwise.change_blockwise(lazy, start=MON_START, params=params, confirm=confirm).compute()
    assert whole["confirmed"].values.any()
    split = len(mon) // 2
    run([*base, *mon[:split]], None, "half")
    assert store.find_detection(["none", "half", "other"]) == (1, str(store.root / "detect" / "half"))
    resumed = run([*base, *mon[split:]], str(store.root / "detect" / "half"), "all")
    xr.testing.assert_identical(resumed, whole)
    finished = run(list(base), str(store.root / "detect" / "all"), None)  # nothing left to step over
    xr.testing.assert_identical(finished, whole)


def test_blockwise_detection_is_not_used_where_chunks_are_coupled() -> None:
    from pipeline.detect import blockwise

    lazy, _ = make_scene(clouds=0.3, seed=3, chunks={"time": -1, "y": 16, "x": 20})
    assert not blockwise.supported(lazy, DetectParams(baseline_days=365, threshold_method="otsu"), None)
    assert not blockwise.supported(lazy, PARAMS, object())  # radar fused on its own time axis
    assert not blockwise.supported(lazy.chunk({"time": 5}), PARAMS, None)
    assert not blockwise.supported(lazy.compute(), PARAMS, None)


def test_missing_baseline_is_a_clear_error() -> None:
    scenes, _ = make_scene()
    with pytest.raises(NoValidPixelsError, match="baseline"):
        detect.score_change(scenes, monitoring_start=dt.date(2022, 1, 1), params=PARAMS)


@settings(max_examples=25, deadline=None)
@given(
    evidence=st.lists(st.booleans(), min_size=1, max_size=30),
    valid=st.lists(st.booleans(), min_size=30, max_size=30),
    k=st.integers(1, 5),
)
def test_confirmation_kernel_matches_a_plain_loop(evidence: list[bool], valid: list[bool], k: int) -> None:
    ev = np.array(evidence + [False] * (30 - len(evidence)))
    ok = np.array(valid)
    ev &= ok
    days = np.arange(30, dtype=float) * 10
    first, last, n_obs, n_clear, n_occ, confirmed, regrown, open_run, open_start, first_clear = _confirm_np(
        ev, ok, days=days, k=k
    )
    # the first clear observation (a change dated there had no clear view without it)
    assert (np.isnan(first_clear) and not ok.any()) or first_clear == days[np.argmax(ok)]
    assert not regrown.any()
    run, start, expected = 0, None, None
    for t in range(30):
        if not ok[t]:
            continue
        if ev[t]:
            start = days[t] if run == 0 else start
            run += 1
            if run >= k and expected is None:
                expected = start
        else:
            run = 0
    assert int(open_run) == run  # the run still open at the last clear observation
    assert (np.isnan(open_start) and run == 0) or open_start == start
    assert bool(confirmed) == (expected is not None)
    if expected is not None:
        assert first == expected
        assert n_obs == int(np.sum(ev & (days >= expected)))
        assert n_clear + n_occ == int(np.sum(days >= expected))


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.floats(-1, 1, allow_nan=False, width=32)), min_size=1, max_size=12),
    q=st.floats(0.01, 0.99),
)
def test_vectorised_nanquantile_matches_numpy(values: list[float | None], q: float) -> None:
    arr = np.array([np.nan if v is None else v for v in values], dtype="float32")
    got = _nanquantile_np(arr[np.newaxis, :], q=q)[0]
    if np.isnan(arr).all():
        assert np.isnan(got)
    else:
        assert got == pytest.approx(float(np.nanquantile(arr.astype("float64"), q)), abs=1e-5)


@pytest.mark.parametrize("n_time", [0, 1, 2, 5, 12, 40])
@pytest.mark.parametrize("cloudy", [0.0, 0.4, 0.95, 1.0])
def test_vectorised_nanmedian_equals_numpy_exactly(n_time: int, cloudy: float) -> None:
    """The SWIR baseline's median (pipeline.detect.baselines._nanmedian_np) is np.nanmedian's,
    bit for bit (both halve the two middle values' float32 sum), NaN where nothing is clear."""
    from pipeline.detect.baselines import _nanmedian_np

    rng = np.random.default_rng(n_time)
    values = rng.random((30, 20, n_time)).astype("float32")
    values[rng.random(values.shape) < cloudy] = np.nan
    got = _nanmedian_np(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        want = np.nanmedian(values, axis=-1) if n_time else np.full((30, 20), np.nan, "float32")
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_array_equal(got, want)


def test_cleared_field_that_regreens_is_rejected_even_when_mostly_bare() -> None:
    # Bare for 12 observations, green crop for 4, bare again: persistence 12/16 passes,
    # the re-greening run rejects it. A pit that never re-greens is kept.
    scenes, truth = make_scene(change_index=22)
    veg = make_scene(pit=np.s_[0:0, 0:0])[0]
    for band in ("blue", "green", "red", "nir", "swir16", "swir22"):
        scenes[band][28:32] = veg[band][28:32]
    flags, change = _run(scenes)
    assert change["regrown"].values[truth.values].all()
    assert (change["n_obs"] / change["n_clear_after"]).values[truth.values].min() >= PARAMS.min_persistence_frac
    assert not flags.values.any()
    kept, _ = _run(make_scene(change_index=22)[0])
    assert kept.values[truth.values].all()


# ============================================================================================
# Adaptive NDVI-drop threshold (Otsu)
# ============================================================================================

OTSU = PARAMS.model_copy(update={"threshold_method": "otsu"})


def test_otsu_threshold_separates_pit_from_savanna_and_finds_the_pit() -> None:
    scenes, truth = make_scene(clouds=0.2, seed=4)
    scored = detect.score_change(scenes, monitoring_start=MON_START, params=OTSU)
    thr = float(scored["ndvi_drop_threshold"])
    # Gravel drops NDVI by ~0.6 from the green baseline, stable savanna by ~0: Otsu splits
    # in between, inside the configured bounds.
    assert OTSU.otsu_ndvi_drop_floor <= thr <= OTSU.otsu_ndvi_drop_ceiling
    drop = (scored["baseline_ndvi"] - scored["ndvi"]).where(scored["valid"]).transpose("time", "y", "x")
    drop = drop.isel(time=slice(-8, None))
    pit_drop = float(np.nanmean(drop.values[:, truth.values]))
    still_drop = float(np.nanmean(drop.values[:, ~truth.values]))
    assert still_drop + 0.1 < thr < pit_drop - 0.1
    flags, _ = _run(scenes, OTSU)
    np.testing.assert_array_equal(flags.values, truth.values)


def test_otsu_without_change_falls_back_to_its_floor_not_into_the_noise() -> None:
    scenes, _ = make_scene(pit=np.s_[0:0, 0:0], noise=0.02, seed=5)
    scored = detect.score_change(scenes, monitoring_start=MON_START, params=OTSU)
    # A unimodal histogram of noise: Otsu would cut through it; the floor holds.
    assert float(scored["ndvi_drop_threshold"]) == pytest.approx(OTSU.otsu_ndvi_drop_floor, abs=0.011)
    flags, _ = _run(scenes, OTSU)
    assert not flags.values.any()


def test_fixed_threshold_is_reported_as_applied() -> None:
    scenes, _ = make_scene()
    scored = detect.score_change(scenes, monitoring_start=MON_START, params=PARAMS)
    assert float(scored["ndvi_drop_threshold"]) == pytest.approx(PARAMS.ndvi_drop_min)


def test_otsu_dask_and_numpy_agree_and_stay_lazy() -> None:
    eager, _ = make_scene(clouds=0.2, seed=6)
    lazy, _ = make_scene(clouds=0.2, seed=6, chunks={"time": 1, "y": 16, "x": 20})
    with raise_if_dask_computes():
        scored = detect.score_change(lazy, monitoring_start=MON_START, params=OTSU)
        flags_lazy, _ = _run(lazy, OTSU)
    assert scored["ndvi_drop_threshold"].chunks is not None
    eager_scored = detect.score_change(eager, monitoring_start=MON_START, params=OTSU)
    assert float(scored["ndvi_drop_threshold"]) == float(eager_scored["ndvi_drop_threshold"])
    np.testing.assert_array_equal(flags_lazy.values, _run(eager, OTSU)[0].values)


# --------------------------------------------------------------------------- issue 13: the revised rules


def _series(pattern: str, start: str = "2023-01-01", step_days: int = 10) -> tuple[xr.DataArray, ...]:
    """One pixel's monitoring series from a pattern: ``E`` evidence, ``R`` re-greened, ``.`` clear
    and neither, ``c`` cloudy. Returns evidence, valid, regrowth ``(time, 1, 1)``."""
    t = pd.date_range(start, periods=len(pattern), freq=f"{step_days}D")

    def da(values: list[bool]) -> xr.DataArray:
        return xr.DataArray(np.array(values, bool)[:, None, None], dims=("time", "y", "x"), coords={"time": t})

    return (da([c == "E" for c in pattern]), da([c != "c" for c in pattern]), da([c == "R" for c in pattern]))


def _confirm(pattern: str, **kwargs: object) -> dict[str, object]:
    ev, ok, rg = _series(pattern)
    out = detect.confirm_change(ev, ok, min_confirmations=3, regrowth=rg, min_regrowth_obs=2, **kwargs)  # type: ignore[arg-type]
    return {k: out[k].item() for k in out}


def test_ground_that_regreened_and_was_then_dug_is_rearmed() -> None:
    # burnt (confirmed), re-greened twice, then dug: 6 observations of evidence
    pattern = "EEE" + "RR" + "...." + "EEEEEE"
    old = _confirm(pattern)
    assert old["confirmed"] and old["regrown"]  # the veto that never lifts
    new = _confirm(pattern, rearm=True)
    assert new["confirmed"] and not new["regrown"]
    first = pd.Timestamp(new["first_change"], unit="D")
    assert first == pd.Timestamp("2023-01-01") + pd.Timedelta(days=90)
    assert new["n_obs"] == 6 and new["n_clear_after"] == 6


def test_the_same_season_next_year_is_not_a_new_change() -> None:
    # a run in January that re-greened, then the same run a year later (37 x 10 days = 370 days)
    year = "EEE" + "RR" + "." * 32
    again = _confirm(year + "EEEE", rearm=True, rearm_season_gap_days=45)
    assert not again["confirmed"]
    # ... but off-season (five months later), ground that re-greened can be dug and reported
    off = _confirm("EEE" + "RR" + "." * 10 + "EEEE", rearm=True, rearm_season_gap_days=45)
    assert off["confirmed"]


def test_the_persistence_window_keeps_an_abandoned_pit() -> None:
    # dug in January, evidence for a year, then abandoned (no evidence, not re-greened) for a year
    pattern = "E" * 36 + "." * 36
    ev, ok, rg = _series(pattern)
    params = DetectParams()
    for window, kept in ((None, False), (365, True)):
        out = detect.confirm_change(ev, ok, min_confirmations=3, regrowth=rg, window_days=window)
        assert bool(detect.flag_excavation(out, params=params.model_copy(update={"open_radius_px": 0})).item()) is kept


@pytest.mark.parametrize("chunked", [False, True])
def test_speckle_goes_by_size_and_thin_rims_stay(chunked: bool) -> None:
    flags = np.zeros((12, 20), bool)
    flags[2, 3:9] = True  # a 1-pixel rim, 6 pixels long: kept
    flags[8, 10:12] = True  # 2 pixels: speckle
    flags[5:7, 15:17] = True  # 4 pixels: kept
    change = xr.Dataset({
        "confirmed": (("y", "x"), flags), "regrown": (("y", "x"), np.zeros_like(flags)),
        "n_obs": (("y", "x"), np.full(flags.shape, 5, "int16")),
        "n_clear_after": (("y", "x"), np.full(flags.shape, 5, "int16")),
    })
    if chunked:
        change = change.chunk({"y": 5, "x": 7})
    out = np.asarray(detect.flag_excavation(change, params=DetectParams(open_radius_px=0, speckle_max_px=2)).values)
    expected = flags.copy()
    expected[8, 10:12] = False
    np.testing.assert_array_equal(out, expected)


def test_the_season_window_is_centred_on_the_observation_day() -> None:
    """Green-up: 0.2 on 1 January, 0.8 on 30 January of the baseline year. An observation on
    2 January is matched to the ground of early January, not to the greener middle of the month."""
    base_t = pd.to_datetime(["2022-01-01", "2022-01-30"])
    base = xr.DataArray(np.array([0.2, 0.8], "float32")[:, None, None], dims=("time", "y", "x"),
                        coords={"time": base_t})
    mon_t = xr.DataArray(pd.to_datetime(["2023-01-02"]), dims="time")
    params = DetectParams(season_window_days=20, season_min_obs=1)
    assert detect.seasonal_baseline(base, mon_t, params=params).item() == pytest.approx(0.2)



@pytest.mark.parametrize("chunked", [False, True])
def test_the_season_baseline_only_where_needed_gives_the_same_loss(chunked: bool) -> None:
    """``ndvi_change`` computes the season-matched baseline only where the peak baseline sees a
    loss; its ``loss`` equals the rule with the baseline computed everywhere, and the baseline
    itself is unchanged where it is computed."""
    from pipeline.detect.baselines import _windows

    rng = np.random.default_rng(7)
    times = pd.date_range("2021-01-05", periods=60, freq="12D")
    ndvi = rng.uniform(0.1, 0.9, (60, 12, 14)).astype("float32")
    ndvi[rng.random(ndvi.shape) < 0.3] = np.nan
    da = xr.DataArray(ndvi, dims=("time", "y", "x"), coords={"time": times})
    valid = da.notnull()
    if chunked:
        da, valid = da.chunk({"time": -1, "y": 5, "x": 7}), valid.chunk({"time": -1, "y": 5, "x": 7})
    params = DetectParams(baseline_days=365, season_window_days=45, season_min_obs=2, season_drop_min=0.1)
    start = times[32].date()
    out = detect.ndvi_change(da, valid, monitoring_start=start, params=params).compute()

    base_idx, mon_idx = _windows(da, monitoring_start=start, baseline_days=params.baseline_days)
    base, mon, ok = da.isel(time=base_idx), da.isel(time=mon_idx), valid.isel(time=mon_idx)
    peak = out["baseline_ndvi"]
    seasonal = detect.seasonal_baseline(base, mon["time"], params=params).compute()
    expected = ((peak - mon) >= params.ndvi_drop_min) & (((seasonal - mon) >= params.season_drop_min)
                                                        | seasonal.isnull()) & ok
    np.testing.assert_array_equal(out["loss"].transpose("time", "y", "x").values,
                                  expected.transpose("time", "y", "x").values)
    assert 0 < int(expected.sum()) < int(((peak - mon) >= params.ndvi_drop_min).sum())  # both rules bite
    need = (((peak - mon) >= params.ndvi_drop_min) & ok).compute()
    only = detect.seasonal_baseline(base, mon["time"], params=params, where=need).compute()
    np.testing.assert_array_equal(only.where(need).values, seasonal.where(need).values)
    assert bool(only.isnull().where(~need, True).all())


@pytest.mark.parametrize("method", ["fixed", "otsu"])
def test_the_season_baseline_only_where_needed_is_built_lazily(method: str) -> None:
    """A harmonised cube carries lazy per-date coordinates (band scales, item ids); the mask of
    needed observations has them on the monitoring dates, the baseline on its own dates.
    Building the rule computes nothing (merging those coordinates would compare them)."""
    import dask.array as dska

    scenes, _ = make_scene(chunks={"time": -1, "y": 40, "x": 40})
    scenes = scenes.assign_coords(scale_red=("time", dska.ones(scenes.sizes["time"], chunks=-1)))
    params = DetectParams(threshold_method=method)
    with raise_if_dask_computes():
        idx = detect.spectral_indices(scenes)
        detect.ndvi_change(idx["ndvi"], scenes["valid"], monitoring_start=MON_START, params=params)

def test_greenish_gravel_is_evidence_up_to_gravel_ndvi_max() -> None:
    """Laterite spoil or a rim mixed with grass: NDVI 0.25, bare and bright. Evidence at the
    default gravel_ndvi_max (0.3), not at the first version's 0.2."""
    scenes, truth = make_scene(pit_class="gravel")
    pit = truth.values
    # Raise the pit's NIR after the change so its NDVI is about 0.25 (still bare and bright).
    after = scenes["time"] >= scenes["time"][24]
    red = scenes["red"]
    nir = xr.where(after & truth, red * (1.25 / 0.75), scenes["nir"])
    scenes = scenes.assign(nir=nir.transpose(*scenes["nir"].dims))
    idx = detect.spectral_indices(scenes.isel(time=30))
    assert 0.2 < float(idx["ndvi"].values[pit].mean()) < 0.3
    assert float(idx["bsi"].values[pit].min()) >= PARAMS.bare_bsi_min
    assert float(idx["bright"].values[pit].min()) >= PARAMS.bright_min
    flags, _ = _run(scenes)
    assert flags.values[pit].mean() > 0.95
    old, _ = _run(scenes, PARAMS.model_copy(update={"gravel_ndvi_max": 0.2}))
    assert not old.values[pit].any()


def _pit_cube(pit_classes: list[str], start: str = "2022-01-01", step_days: int = 10) -> xr.Dataset:
    """A (time, 6, 6) cube of vegetation with a 2 x 2 patch of one class per date
    (:data:`pipeline.testing.SPECTRA`); the patch is 1/9 of the grid, so never "widespread"."""
    from pipeline.testing import SPECTRA

    t = pd.date_range(start, periods=len(pit_classes), freq=f"{step_days}D")
    veg = np.array(SPECTRA["vegetation"], "float32")[None, :, None, None]
    data = np.broadcast_to(veg, (len(t), 6, 6, 6)).copy()
    data[:, :, 2:4, 2:4] = np.array([SPECTRA[c] for c in pit_classes], "float32")[:, :, None, None]
    coords = {"time": t, "y": 900000.0 - 10 * np.arange(6), "x": 500000.0 + 10 * np.arange(6)}
    ds = xr.Dataset({b: (("time", "y", "x"), data[:, k]) for k, b in
                     enumerate(("blue", "green", "red", "nir", "swir16", "swir22"))}, coords=coords)
    ds["valid"] = ds["red"].notnull()
    return ds


def test_a_pit_in_the_season_of_last_year_s_short_lived_evidence_is_reported() -> None:
    """Ground bare for one date in January 2023 (not confirmable), green again, then dug in
    January 2024. Without rearm_after_regrowth the seasonal-recurrence guard does not apply (it
    belongs to re-arming): the pit is reported. With re-arming on, the guard calls it seasonal."""
    veg, gravel = "vegetation", "gravel"
    year = 37  # 10-day steps in a year
    scenes = _pit_cube([veg] * year + [gravel] + [veg] * (year - 1) + [gravel] * 12)
    pit = np.zeros((6, 6), bool)
    pit[2:4, 2:4] = True
    params = DetectParams(open_radius_px=0)
    flags, change = detect.detect_change(scenes, start=dt.date(2023, 1, 1), params=params)
    np.testing.assert_array_equal(flags.values, pit)
    assert str(pd.Timestamp(float(change["first_change"].values[2, 2]), unit="D").date()) == "2024-01-11"
    rearmed, _ = detect.detect_change(scenes, start=dt.date(2023, 1, 1),
                                      params=params.model_copy(update={"rearm_after_regrowth": True}))
    assert not bool(rearmed.values.any())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), radius=st.integers(1, 3), ny=st.integers(1, 12), nx=st.integers(1, 12),
       density=st.floats(0.1, 0.9))
def test_the_square_opening_is_scipys(seed: int, radius: int, ny: int, nx: int, density: float) -> None:
    """The opening by minimum and maximum filters equals ``scipy.ndimage.binary_opening`` with
    the square, value for value (edges included), lazily in chunks as well."""
    from scipy import ndimage

    from pipeline.detect.flags import _open

    block = np.random.default_rng(seed).random((ny, nx)) < density
    expected = ndimage.binary_opening(block, structure=np.ones((2 * radius + 1,) * 2, dtype=bool))
    flags = xr.DataArray(block, dims=("y", "x"))
    np.testing.assert_array_equal(_open(flags, radius).values, expected)
    chunks = {"y": radius + 1, "x": radius + 2}  # a halo of 2 * radius: wider than a chunk, maybe than the grid
    np.testing.assert_array_equal(_open(flags.chunk(chunks), radius).values, expected)


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_a_block_that_survives_the_opening_is_kept_whole_across_chunk_edges(radius: int) -> None:
    """A square block just large enough to survive, at every offset across a chunk edge: the
    chunked opening keeps it whole (the halo covers the erosion and the dilation, ``2 * radius``)."""
    from scipy import ndimage

    from pipeline.detect.flags import _open

    side = 2 * radius + 1
    for offset in range(0, 3 * side):
        block = np.zeros((4 * side, 4 * side), dtype=bool)
        block[offset:offset + side, 1:1 + side] = True
        block[1:1 + side, offset:offset + side + 1] = True
        expected = ndimage.binary_opening(block, structure=np.ones((side, side), dtype=bool))
        assert expected.sum() >= side * side  # the blocks survive
        chunked = xr.DataArray(block, dims=("y", "x")).chunk({"y": side - 1, "x": side})
        np.testing.assert_array_equal(_open(chunked, radius).values, expected, err_msg=f"offset {offset}")
