"""The fused NumPy reference of ``make bench`` part (2) computes what the detect stage computes.

``benchmarks.bench_detect.fused_numpy_full`` is the yardstick of the detect-throughput target;
a rule added to the stage but not to it would make the ratio compare different work. The
benchmark checks the equality on its timed scene, where most rules change nothing (uniform
vegetation and one pit). Here a small scene has a region for each rule, and the test first shows
that switching any rule off changes the reference's outputs, then that the stage (blockwise,
through Dask) gives the reference's change rasters and flags value for value.
"""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from benchmarks.bench_detect import MON_START, fused_numpy_full
from pipeline.config import DetectParams
from pipeline.detect import stage
from pipeline.detect.confirm import CHANGE_VARS
from pipeline.testing import BANDS, SPECTRA, make_scene

#: Reflectance (BANDS order) of the classes the scene adds to make_scene's vegetation.
DRY = (0.08, 0.11, 0.18, 0.26, 0.32, 0.25)  # NDVI 0.18: bare savanna, dry-season grass
GREENER = (0.08, 0.11, 0.17, 0.285, 0.33, 0.26)  # NDVI 0.25: gravel with some green
DRY_SWIR = (0.08, 0.11, 0.18, 0.26, 0.40, 0.30)  # DRY with SWIR1 0.08 higher

FULL = DetectParams(baseline_days=365, swir_change_min=0.05, persistence_window_days=60)
#: Each rule switched off (or made inert): the reference's outputs must change.
RULES_OFF = {
    "season-matched baseline": {"season_drop_min": None},
    "SWIR change of bare ground": {"swir_change_min": None},
    "widespread-date test": {"widespread_loss_max_frac": None},
    "greener-gravel allowance": {"gravel_ndvi_max": 0.2},
    "re-greening": {"regrowth_ndvi_margin": 0.01},
    "persistence window": {"persistence_window_days": None},
    "water": {"water_mndwi_min": 0.9},
}


def rule_scene(seed: int = 3) -> xr.Dataset:
    """40 dates (10-day steps from 2022-01-01; monitoring from ``MON_START``, date 20), 48 x 64 px,
    10 % clouds: make_scene's pit (dates 24 on) plus seasonal savanna, bare ground whose SWIR
    rises, a regional event of greener gravel over 40 % of the grid, a new pond, an old river
    and a pit that grows over."""
    scene, _ = make_scene((40, 48, 64), pit=np.s_[2:10, 2:12], clouds=0.1, seed=seed)
    doy = pd.DatetimeIndex(scene["time"].values).day_of_year.to_numpy()
    t = np.arange(40)
    rng = np.random.default_rng(seed)

    def paint(spectra: tuple[float, ...], when: np.ndarray, ys: slice, xs: slice) -> None:
        for i, band in enumerate(BANDS):
            values = scene[band].values
            block = values[when, ys, xs]
            values[np.flatnonzero(when)[:, None, None], np.arange(48)[ys][:, None], np.arange(64)[xs]] = (
                spectra[i] + rng.normal(0, 0.005, block.shape))

    paint(DRY, (doy >= 150) & (doy < 270), np.s_[12:20], np.s_[0:16])
    paint(DRY, t < 28, np.s_[24:30], np.s_[0:12])
    paint(DRY_SWIR, t >= 28, np.s_[24:30], np.s_[0:12])
    paint(GREENER, (t >= 30) & (t <= 32), np.s_[0:48], np.s_[38:64])
    paint(SPECTRA["water"], t >= 25, np.s_[34:40], np.s_[20:30])
    paint(SPECTRA["water"], t >= 0, np.s_[44:48], np.s_[0:36])
    paint(SPECTRA["gravel"], (t >= 22) & (t < 29), np.s_[34:42], np.s_[2:10])
    for band in BANDS:
        scene[band].values[~scene["valid"].values] = np.nan
    return scene


def _reference(scene: xr.Dataset, params: DetectParams) -> dict[str, np.ndarray]:
    bands = {b: scene[b].values for b in ("blue", "green", "red", "nir", "swir16")}
    return fused_numpy_full(bands, scene["valid"].values, scene["time"].values, params=params, start=MON_START)


def _differs(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return any(not np.array_equal(np.asarray(a[k], dtype=np.float64), np.asarray(b[k], dtype=np.float64),
                                  equal_nan=True) for k in (*CHANGE_VARS, "flags"))


def test_every_rule_changes_the_reference_on_this_scene() -> None:
    scene = rule_scene()
    full = _reference(scene, FULL)
    assert full["flags"].sum() > 100 and full["regrown"].any()
    inert = [rule for rule, update in RULES_OFF.items() if not _differs(full, _reference(scene, FULL.model_copy(
        update=update)))]
    assert not inert, f"rules that change nothing on the test scene: {inert}"


@pytest.mark.parametrize("params", [
    FULL,
    DetectParams(baseline_days=365),
    DetectParams(baseline_days=365, season_drop_min=None, widespread_loss_max_frac=None),
], ids=["every-rule", "defaults", "peak-only"])
def test_fused_reference_gives_the_stage_s_change_rasters_and_flags(params: DetectParams) -> None:
    scene = rule_scene()
    ref = _reference(scene, params)
    with dask.config.set(scheduler="sync"):
        change = stage.change_rasters(scene.chunk({"time": -1, "y": 24, "x": 32}), start=MON_START,
                                      params=params).compute()
    flags = stage.flag_excavation(change, params=params.model_copy(update={"open_radius_px": 0})).values
    for name in CHANGE_VARS:
        np.testing.assert_array_equal(np.asarray(change[name].values, dtype=np.float64),
                                      np.asarray(ref[name], dtype=np.float64), err_msg=name)
    np.testing.assert_array_equal(flags, ref["flags"])
