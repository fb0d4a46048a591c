"""Real-data regression: a real Sentinel-2 time series with no mining yields no site.

``../shared/data/external/eolearn-testeopatch/`` (eo-learn example data, MIT licence): 68 real
dates (2015-07 to 2017-12) of NDVI with s2cloudless cloud masks over farmland, forest and
grassland in Slovenia. Only NDVI is available, so this exercises the temporal rules (peak and
season-matched baselines, widespread-loss dates, confirmation, persistence, re-greening,
speckle) through :func:`pipeline.detect.ndvi_change`, with the part of the evidence NDVI can
tell: vegetation loss down to possibly bare ground (NDVI <= ``gravel_ndvi_max``). The full rules
also need the ground to be bare gravel (BSI, brightness) or water, so they flag no more.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.config import DetectParams, SitesParams
from pipeline.detect import confirm_change, drop_widespread, flag_excavation, ndvi_change
from pipeline.sites import delineate_sites

PATCH = Path(__file__).resolve().parents[2] / "shared" / "data" / "external" / "eolearn-testeopatch"
MONITORING_START = dt.date(2016, 7, 1)
LAST_PERIOD_START = dt.date(2017, 10, 1)

pytestmark = pytest.mark.skipif(not PATCH.exists(), reason="../shared/data/external/eolearn-testeopatch is absent")


def _series() -> tuple[xr.DataArray, xr.DataArray]:
    ndvi = np.load(PATCH / "NDVI.npy")[..., 0].astype("float32")
    cloud = np.load(PATCH / "CLM.npy")[..., 0].astype(bool)
    has_data = np.load(PATCH / "IS_DATA.npy")[..., 0].astype(bool)
    times = pd.to_datetime(json.loads((PATCH / "timestamps.json").read_text(encoding="utf-8")))
    ny, nx = ndvi.shape[1:]
    # EPSG:32633 pixel centres (bbox.geojson: left 465181, top 5080255), y north to south.
    coords = {"time": times, "y": 5080250.0 - 10.0 * np.arange(ny), "x": 465186.0 + 10.0 * np.arange(nx)}
    valid = xr.DataArray(has_data & ~cloud, dims=("time", "y", "x"), coords=coords)
    return xr.DataArray(ndvi, dims=("time", "y", "x"), coords=coords).where(valid), valid


def _flags(params: DetectParams) -> tuple[xr.DataArray, xr.Dataset]:
    ndvi, valid = _series()
    change = ndvi_change(ndvi, valid, monitoring_start=MONITORING_START, params=params)
    unvegetated = ndvi.sel(time=change["time"]) <= params.gravel_ndvi_max
    evidence, judged = drop_widespread(
        change["loss"] & unvegetated, change["valid"], max_frac=params.widespread_loss_max_frac
    )
    confirmed = confirm_change(
        evidence,
        judged,
        min_confirmations=params.min_confirmations,
        regrowth=change["regrowth"] & judged,
        min_regrowth_obs=params.regrowth_min_obs,
        window_days=params.persistence_window_days,
        rearm=params.rearm_after_regrowth,
        rearm_season_gap_days=params.season_window_days if params.rearm_after_regrowth else 0.0,
    )
    return flag_excavation(confirmed, params=params), confirmed


def test_real_farmland_and_forest_yield_no_site() -> None:
    params = DetectParams()
    flags, change = _flags(params)
    sites, site_mask, _ = delineate_sites(
        flags, change, aoi_id="eolearn", aoi_mask=None, crs="EPSG:32633",
        last_period_start=LAST_PERIOD_START, detect_params=params, sites_params=SitesParams(),
    )
    assert sites.empty, sites[["site_id", "area_ha", "first_seen"]].to_string()
    assert not site_mask.any()
    # Nearly nothing is even flagged: winter and harvest drops come back every year.
    assert float(flags.mean()) < 0.005


def test_what_it_takes() -> None:
    """Without the widespread-evidence test, the snow of the last weeks (NDVI <= 0.2 over much of
    the patch at once) is confirmed at the end of the series: 3.6 % flagged, three sites."""
    params = DetectParams(widespread_loss_max_frac=None)
    flags, change = _flags(params)
    sites, _, _ = delineate_sites(
        flags, change, aoi_id="eolearn", aoi_mask=None, crs="EPSG:32633",
        last_period_start=LAST_PERIOD_START, detect_params=params, sites_params=SitesParams(),
    )
    assert float(flags.mean()) > 0.01  # 3.6 % measured (gravel_ndvi_max 0.3)
    assert not sites.empty
