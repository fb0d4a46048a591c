"""Incremental runs: per-AOI state (per-date indices and composites) kept next to the cache.

A second run that adds one quarter computes only the new dates (counted in the manifest) and
writes the same files as a full run computed from nothing with incremental state off; changing
a detection threshold invalidates nothing stored, a composite setting only the composites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pipeline.config import MonitorConfig
from pipeline.demo import ScenarioResult, write_scenario
from pipeline.run import run_monitor
from pipeline.state import StateStore, _read_dataset, _write_dataset
from tests.scale_fixtures import SMALL_SPEC, config_dict, data_files


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioResult:
    return write_scenario(tmp_path_factory.mktemp("scenario"), SMALL_SPEC)


def _run(scenario: ScenarioResult, out: Path, cache: Path, *, end: str, **sections: Any) -> dict[str, Any]:
    raw = config_dict(source=str(scenario.catalog_path), aois=[scenario.aoi_path], out=out, cache=cache,
                      end=end, **sections)
    report = run_monitor(MonitorConfig.model_validate(raw))
    assert report.failures == {}
    manifest = json.loads((out / "manifest.json").read_text())
    return manifest["aois"][scenario_aoi(scenario)]["state"]


def scenario_aoi(scenario: ScenarioResult) -> str:
    return json.loads(scenario.aoi_path.read_text())["features"][0]["properties"]["aoi_id"]


def _n_dates(scenario: ScenarioResult, first: str, last: str) -> int:
    days = pd.date_range(SMALL_SPEC.start, SMALL_SPEC.end, freq=f"{SMALL_SPEC.revisit_days}D")
    return int(((days >= first) & (days <= last)).sum())


@pytest.mark.slow  # five whole runs (a few minutes on 2 shared cores)
def test_one_more_quarter_computes_only_the_new_dates(scenario: ScenarioResult, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _run(scenario, tmp_path / "q4", cache, end="2022-12-31")
    baseline_start = "2022-06-03"  # 2022-10-01 minus detect.baseline_days (120)
    assert first["dates_reused"] == 0 and first["composites_reused"] == 0
    assert first["dates_computed"] == _n_dates(scenario, baseline_start, "2022-12-31")

    again = _run(scenario, tmp_path / "q1", cache, end="2023-03-31")
    full = _run(scenario, tmp_path / "full", tmp_path / "fresh", end="2023-03-31")
    off_out = tmp_path / "off"
    run_monitor(MonitorConfig.model_validate({**config_dict(
        source=str(scenario.catalog_path), aois=[scenario.aoi_path], out=off_out, cache=tmp_path / "off-cache",
        end="2023-03-31"), "incremental": False}))
    # Only the new quarter's dates were computed; every earlier one came from the store.
    assert again["dates_computed"] == _n_dates(scenario, "2023-01-01", "2023-03-31") > 0
    assert again["dates_reused"] == first["dates_computed"]
    assert full["dates_computed"] == again["dates_computed"] + again["dates_reused"]
    # The Q4 view was reused; the new Q1 view and the named windows the quarter extends were computed.
    assert again["composites_reused"] >= 1 and again["composites_computed"] < full["composites_computed"]
    # Same outputs as a full run, and as a run without any state.
    assert data_files(tmp_path / "q1") == data_files(tmp_path / "full") == data_files(off_out)
    assert json.loads((tmp_path / "full" / "sites.geojson").read_text())["features"]

    # A detection threshold: nothing stored depends on it.
    tuned = _run(scenario, tmp_path / "tuned", cache, end="2023-03-31", detect={"ndvi_drop_min": 0.3})
    assert tuned["dates_computed"] == 0 and tuned["composites_computed"] == 0
    # A composite setting: the composites only (the views follow preprocess.min_valid_obs).
    comp = _run(scenario, tmp_path / "comp", cache, end="2023-03-31", composites={"min_valid_obs": 2})
    assert comp["dates_computed"] == 0 and comp["dates_reused"] == full["dates_computed"]
    n_views = 2
    assert comp["composites_computed"] == full["composites_computed"] - n_views
    # (an interrupted run commits nothing: see test_failed_computation_commits_nothing)


def test_dataset_round_trip(tmp_path: Path) -> None:
    ds = xr.Dataset(
        {"red": (("composite", "y", "x"), np.arange(6, dtype="float32").reshape(1, 2, 3)),
         "valid_count": (("composite", "y", "x"), np.ones((1, 2, 3), "int16"))},
        coords={"y": [1.5, 0.5], "x": [0.0, 1.0, 2.0], "label": ("composite", np.array(["period_a"])),
                "start": ("composite", np.array(["2023-01-01"], dtype="datetime64[ns]")), "spatial_ref": 0},
        attrs={"method": "median", "min_valid_obs": 1},
    )
    ds["spatial_ref"].attrs["crs_wkt"] = "EPSG:32629"
    _write_dataset(ds, tmp_path / "d")
    back = _read_dataset(tmp_path / "d")
    xr.testing.assert_identical(back, ds)


def test_failed_computation_commits_nothing(tmp_path: Path) -> None:
    store = StateStore(tmp_path, aoi_id="a", grid="g")
    dtypes = {"ndvi": "float32", "valid": "bool"}
    when = [np.datetime64("2023-01-01", "ns")]
    targets = store.new_block(["k1"], when, ["item-1"], (2, 3), dtypes)
    targets["ndvi"][0:1, 0:2, 0:3] = np.ones((1, 2, 3), "float32")
    assert not store.has_date("k1")
    store.discard()
    assert not store.has_date("k1") and not any((tmp_path / "state").rglob("*.npy"))
    targets = store.new_block(["k1"], when, ["item-1"], (2, 3), dtypes)
    targets["ndvi"][0:1, 0:2, 0:3] = np.full((1, 2, 3), 0.5, "float32")
    targets["valid"][0:1, 0:2, 0:3] = np.ones((1, 2, 3), bool)
    store.commit()
    assert store.has_date("k1")
    (loc,) = store.locate(["k1"])
    loaded = store.open_dates([loc], var="ndvi", dtype="float32", shape=(2, 3), chunks=((1, 1), (3,)))
    np.testing.assert_array_equal(loaded.compute(), np.full((1, 2, 3), 0.5, "float32"))
    # The state is part of the cache: listed by `cache info`, removed by `cache clear`.
    from pipeline.sources import cache_clear, cache_info

    assert "state:" in cache_info(tmp_path)
    cache_clear(tmp_path)
    assert not StateStore(tmp_path, aoi_id="a", grid="g").has_date("k1")


def test_stored_blocks_and_new_dates_read_as_one_cube(tmp_path: Path) -> None:
    """Dates of two stored blocks and of the run's own new dates come back in the run's date
    order, one task per spatial chunk (not one per date)."""
    rng = np.random.default_rng(0)
    cube = rng.random((7, 5, 6)).astype("float32")
    days = np.arange("2023-01-01", "2023-01-08", dtype="datetime64[D]").astype("datetime64[ns]")
    store = StateStore(tmp_path, aoi_id="a", grid="g")
    for block in ([0, 3], [1, 4, 5]):  # two earlier runs, each one block
        targets = store.new_block([f"k{i}" for i in block], days[block], [f"i{i}" for i in block], (5, 6),
                                  {"red": "float32"})
        targets["red"][:, :, :] = cube[block]
        store.commit()
    keys = [f"k{i}" for i in range(7)]
    where = StateStore(tmp_path, aoi_id="a", grid="g").locate(keys)
    assert [w is None for w in where] == [False, False, True, False, False, False, True]
    assert store.n_blocks(where) == 2
    import dask.array as da

    chunks = ((3, 2), (4, 2))
    new = da.from_array(cube[[2, 6]], chunks=((2,), *chunks))
    out = store.open_dates(where, var="red", dtype="float32", shape=(5, 6), chunks=chunks, new=new)
    assert out.chunks == ((7,), *chunks)
    own = {k: v for k, v in dict(out.__dask_graph__()).items() if isinstance(k, tuple) and k[0] == out.name}
    assert len(own) == 4  # one per spatial chunk
    np.testing.assert_array_equal(out.compute(), cube)
    with pytest.raises(ValueError, match="not stored"):
        store.open_dates(where, var="red", dtype="float32", shape=(5, 6), chunks=chunks)
