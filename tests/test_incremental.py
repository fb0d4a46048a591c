"""Incremental runs: per-AOI state (the masked cube in blocks, and composites) kept next to the cache.

A second run that adds one quarter computes only the new dates (counted in the manifest),
detection steps over them alone from the confirmation state the first run kept, and it writes
the same files as a full run computed from nothing with incremental state off; changing a
detection threshold invalidates only the confirmation state, a composite setting only the
composites."""

from __future__ import annotations

import dataclasses
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


@pytest.mark.slow  # seven whole runs (a few minutes on 2 shared cores)
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
    # Detection stepped over the new quarter's dates only, from the confirmation state the first
    # run kept after its last date, and read from the store only the dates it and the composites use.
    n_q4 = _n_dates(scenario, "2022-10-01", "2022-12-31")
    assert first["detection_dates_resumed"] == 0 and first["detection_dates_stepped"] == n_q4
    assert again["detection_dates_resumed"] == n_q4 and again["detection_dates_stepped"] == again["dates_computed"]
    assert again["dates_read_from_state"] < again["dates_reused"]
    # The Q4 view was reused; the new Q1 view and the named windows the quarter extends were computed.
    assert again["composites_reused"] >= 1 and again["composites_computed"] < full["composites_computed"]
    # Same outputs as a full run, and as a run without any state.
    assert data_files(tmp_path / "q1") == data_files(tmp_path / "full") == data_files(off_out)
    assert json.loads((tmp_path / "full" / "sites.geojson").read_text())["features"]

    # `cache prune` removes what the re-run superseded (the first run's windows that the new
    # quarter extends; the confirmation state the re-run resumed from stays until the next
    # one); the same run again then still computes nothing and writes the same files.
    from pipeline.sources import cache_prune

    (folder,) = (cache / "state").iterdir()
    before = {p.relative_to(folder) for p in folder.glob("*/*")}
    assert "freed 0 B" not in cache_prune(cache)
    removed = before - {p.relative_to(folder) for p in folder.glob("*/*")}
    assert {p.parts[0] for p in removed} == {"composites"} and len(list(folder.glob("detect/*"))) == 2
    same = _run(scenario, tmp_path / "same", cache, end="2023-03-31")
    assert same["dates_computed"] == same["composites_computed"] == same["detection_dates_stepped"] == 0
    assert data_files(tmp_path / "same") == data_files(tmp_path / "full")

    # A detection threshold: nothing stored depends on it.
    tuned = _run(scenario, tmp_path / "tuned", cache, end="2023-03-31", detect={"ndvi_drop_min": 0.3})
    assert tuned["dates_computed"] == 0 and tuned["composites_computed"] == 0
    # ... but the confirmation state does: detection starts again from the first monitoring date.
    assert tuned["detection_dates_resumed"] == 0
    assert tuned["detection_dates_stepped"] == again["detection_dates_resumed"] + again["detection_dates_stepped"]
    # A composite setting: the composites only (the views follow preprocess.min_valid_obs).
    comp = _run(scenario, tmp_path / "comp", cache, end="2023-03-31", composites={"min_valid_obs": 2})
    assert comp["dates_computed"] == 0 and comp["dates_reused"] == full["dates_computed"]
    n_views = 2
    assert comp["composites_computed"] == full["composites_computed"] - n_views
    # Nothing new to detect: the stored state after the last date gives the change rasters.
    assert comp["detection_dates_stepped"] == 0
    assert data_files(tmp_path / "comp") == data_files(tmp_path / "full")
    # (an interrupted run commits nothing: see test_failed_computation_commits_nothing)


@pytest.mark.slow  # three whole runs of a scene of 3 x 3 chunks
def test_a_rerun_in_larger_chunks_gives_the_same_outputs(tmp_path: Path) -> None:
    # Holding a quarter's new dates and the stored dates detection reads, not the whole series,
    # the re-run's tasks cover more pixels each (acquire.graph_chunk_px); the outputs do not move.
    spec = dataclasses.replace(SMALL_SPEC, shape_px=(150, 150), n_pits=4)
    scenario = write_scenario(tmp_path / "scenario", spec)
    cache = tmp_path / "cache"
    first = _run(scenario, tmp_path / "q4", cache, end="2022-12-31")
    again = _run(scenario, tmp_path / "q1", cache, end="2023-03-31")
    full = _run(scenario, tmp_path / "full", tmp_path / "fresh", end="2023-03-31")
    assert first["chunk_px"] == full["chunk_px"] == 64 < again["chunk_px"]
    assert again["dates_computed"] > 0 and again["detection_dates_resumed"] > 0
    assert data_files(tmp_path / "q1") == data_files(tmp_path / "full")
    # The confirmation state the re-run wrote in its larger chunks was committed whole: the same
    # run again steps over no date and gives the same outputs.
    third = _run(scenario, tmp_path / "q1-again", cache, end="2023-03-31")
    assert third["dates_computed"] == 0 and third["detection_dates_stepped"] == 0
    assert third["detection_dates_resumed"] == again["detection_dates_resumed"] + again["detection_dates_stepped"]
    assert data_files(tmp_path / "q1-again") == data_files(tmp_path / "full")


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
    empty = xr.Dataset({"red": (("composite", "y"), np.zeros((1, 0), "float32"))}, coords={"y": np.zeros(0)})
    _write_dataset(empty, tmp_path / "e")  # a dimension of length 0: still one chunk (of length 1)
    xr.testing.assert_identical(_read_dataset(tmp_path / "e"), empty)


def _write_block(store: StateStore, keys: list[str], days: np.ndarray, values: dict[str, np.ndarray],
                 chunks: tuple[tuple[int, ...], tuple[int, ...]]) -> dict[str, Any]:
    """Stage a block of ``keys`` as a run does: the merge tasks write the new chunks."""
    import dask.array as da

    dtypes = {v: str(a.dtype) for v, a in values.items()}
    shape = next(iter(values.values())).shape[1:]
    writer = store.new_block(keys, list(days), [f"item-{k}" for k in keys], shape, dtypes, chunks=chunks)
    new = {v: da.from_array(a, chunks=((len(keys),), *chunks)) for v, a in values.items()}
    return store.open_cube([None] * len(keys), dtypes=dtypes, chunks=chunks, new=new, writer=writer)


def test_failed_computation_commits_nothing(tmp_path: Path) -> None:
    import dask

    store = StateStore(tmp_path, aoi_id="a", grid="g")
    when = np.array(["2023-01-01"], dtype="datetime64[ns]")
    values = {"ndvi": np.full((1, 2, 3), 0.5, "float32"), "valid": np.ones((1, 2, 3), bool)}
    chunks = ((1, 1), (3,))
    cube = _write_block(store, ["k1"], when, values, chunks)
    cube["ndvi"][:, :1].compute()  # half the chunks written, then the computation fails
    assert not store.has_date("k1")
    store.discard()
    assert not store.has_date("k1") and not any(p.is_file() for p in (tmp_path / "state").rglob("*"))
    # Committed with a chunk not written (no output needed it): dropped, not stored half-empty.
    cube = _write_block(store, ["k1"], when, values, chunks)
    cube["ndvi"][:, :1].compute()
    store.commit()
    assert not StateStore(tmp_path, aoi_id="a", grid="g").has_date("k1")
    cube = _write_block(store, ["k1"], when, values, chunks)
    dask.compute(cube["ndvi"])  # every chunk: all variables of it are written
    store.commit()
    assert store.has_date("k1")
    (loc,) = store.locate(["k1"])
    loaded = store.open_cube([loc], dtypes={"ndvi": "float32", "valid": "bool"}, chunks=((2,), (1, 2)))
    np.testing.assert_array_equal(loaded["ndvi"].compute(), values["ndvi"])
    np.testing.assert_array_equal(loaded["valid"].compute(), values["valid"])
    # A block is a Zarr group that zarr and xarray open without this package.
    import zarr

    block = store.root / "blocks" / loc.block
    assert sorted(zarr.open_group(str(block), mode="r").array_keys()) == ["ndvi", "valid"]
    with xr.open_zarr(block, consolidated=False) as opened:
        assert opened["ndvi"].dims == ("time", "y", "x")
        np.testing.assert_array_equal(opened["ndvi"].values, values["ndvi"])
    # A block of the layout before Zarr (STATE_VERSION 2: .npy files and meta.json) is not read.
    old = store.root / "blocks" / "2022-01-01-0123456789abcdef"
    old.mkdir()
    (old / "meta.json").write_text(json.dumps({"dates": [{"key": "k0", "time_ns": 0, "item_ids": "x"}]}))
    np.save(old / "ndvi.npy", values["ndvi"])
    assert not StateStore(tmp_path, aoi_id="a", grid="g").has_date("k0")
    # The state is part of the cache: listed by `cache info`, removed by `cache clear`.
    from pipeline.sources import cache_clear, cache_info

    assert "state:" in cache_info(tmp_path)
    cache_clear(tmp_path)
    assert not StateStore(tmp_path, aoi_id="a", grid="g").has_date("k1")


def test_stored_blocks_and_new_dates_read_as_one_cube(tmp_path: Path) -> None:
    """Dates of two stored blocks and of the run's own new dates come back in the run's date
    order, from one task per spatial chunk for all variables (not one per date or variable)."""
    import dask
    import dask.array as da

    rng = np.random.default_rng(0)
    red = rng.random((7, 5, 6)).astype("float32")
    valid = rng.random((7, 5, 6)) > 0.3
    days = np.arange("2023-01-01", "2023-01-08", dtype="datetime64[D]").astype("datetime64[ns]")
    chunks = ((3, 2), (4, 2))
    store = StateStore(tmp_path, aoi_id="a", grid="g")
    for block in ([0, 3], [1, 4, 5]):  # two earlier runs, each one block
        cube = _write_block(store, [f"k{i}" for i in block], days[block], {"red": red[block], "valid": valid[block]},
                            chunks)
        dask.compute(cube["red"], cube["valid"])
        store.commit()
    keys = [f"k{i}" for i in range(7)]
    where = StateStore(tmp_path, aoi_id="a", grid="g").locate(keys)
    assert [w is None for w in where] == [False, False, True, False, False, False, True]
    assert store.n_blocks(where) == 2
    dtypes = {"red": "float32", "valid": "bool"}
    new = {"red": da.from_array(red[[2, 6]], chunks=((2,), *chunks)),
           "valid": da.from_array(valid[[2, 6]], chunks=((2,), *chunks))}
    out = store.open_cube(where, dtypes=dtypes, chunks=chunks, new=new)
    assert out["red"].chunks == ((7,), *chunks)
    graph = dict(out["red"].__dask_graph__())
    readers = [k for k in graph if isinstance(k, tuple) and k[0].startswith("state-") and not k[0].endswith("-red")]
    assert len(readers) == 4  # one per spatial chunk, both variables
    red_out, valid_out = dask.compute(out["red"], out["valid"])
    np.testing.assert_array_equal(red_out, red)
    np.testing.assert_array_equal(valid_out, valid)
    with pytest.raises(ValueError, match="not stored"):
        store.open_cube(where, dtypes=dtypes, chunks=chunks)


def test_fetch_threads_reach_the_fetch_and_change_no_state_digest(tmp_path: Path, monkeypatch: Any) -> None:
    """``acquire.fetch_threads`` sets how many items an AOI fetches at once, and, like
    ``chunk_px``, keeps every stored date and confirmation state valid (it changes no value);
    a setting that does change values (``margin_m``) does not."""
    from pipeline import aoi_windows
    from pipeline.state import dates_digest

    def cfg(**acquire: Any) -> MonitorConfig:
        return MonitorConfig.model_validate(config_dict(source=str(tmp_path / "catalog.json"), aois=[],
                                                        out=tmp_path / "out", cache=tmp_path / "cache",
                                                        acquire=acquire))

    base, threaded, margin = cfg(), cfg(fetch_threads=16), cfg(margin_m=30)
    assert base.acquire.fetch_threads == 4 and threaded.acquire.fetch_threads == 16
    assert dates_digest(threaded, grid="g") == dates_digest(base, grid="g") != dates_digest(margin, grid="g")
    seen: dict[str, Any] = {}
    monkeypatch.setattr(aoi_windows.window_cache, "localise_items", lambda items, **kw: seen.update(kw) or ([], []))
    monkeypatch.setattr(aoi_windows, "get_provider", lambda source: None)
    grid = dataclasses.make_dataclass("Grid", ["geobox"])(geobox=None)
    aoi_windows.localise_aoi([], threaded, source=threaded.source, grid=grid, bands=["red"])  # type: ignore[arg-type]
    assert seen["max_workers"] == 16
    with pytest.raises(ValueError, match="fetch_threads"):
        cfg(fetch_threads=0)


def test_the_state_line_says_why_detection_runs_over_every_date(tmp_path: Path) -> None:
    """An outside tester changed a detect.* setting and read "detection resumes after 0
    monitoring date(s)", the words of a first run; with radar on the line said nothing of
    detection and the manifest lacked its counters."""
    from pipeline.config import DetectParams
    from pipeline.detect import not_resumable
    from pipeline.incremental import _detection_note

    store = StateStore(tmp_path, aoi_id="a", grid="g")
    assert not_resumable(DetectParams()) is None
    assert "radar is fused" in not_resumable(DetectParams(), radar=object())
    assert "otsu" in not_resumable(DetectParams(threshold_method="otsu"))
    assert _detection_note(store, "radar is fused: its scores are not stored", 0, 0) == \
        "detection runs over every monitoring date (radar is fused: its scores are not stored)"
    assert _detection_note(store, None, 12, 3) == "detection resumes after 12 monitoring date(s), 3 to step over"
    assert _detection_note(store, None, 0, 15).endswith("no stored confirmation state (none stored yet)")
    (store.root / "detect" / "0123abcd").mkdir(parents=True)  # a state of other settings
    (store.root / "detect" / ".tmp-of-a-dead-run.tmp").mkdir()
    assert _detection_note(store, None, 0, 15) == ("detection runs over all 15 monitoring date(s): no stored "
                                                   "confirmation state (none stored matches these detect.* "
                                                   "settings, baseline and dates)")


def test_prune_removes_the_state_the_latest_run_did_not_use(tmp_path: Path) -> None:
    """A commit records the entries its run used (the blocks of its dates, read or not, the
    confirmation states it resumed from and kept, its composite windows); ``cache prune``
    removes the others of that AOI folder, keeps temporaries and folders with no record, and
    refuses while a run holds the cache."""
    import dask

    from pipeline.cache_use import cache_in_use
    from pipeline.errors import ConfigError
    from pipeline.sources import cache_info, cache_prune
    from pipeline.state import LATEST_RUN_FILE, unused_entries

    days = np.arange("2023-01-01", "2023-01-04", dtype="datetime64[D]").astype("datetime64[ns]")
    values = {"red": np.ones((3, 2, 2), "float32")}
    chunks = ((2,), (2,))
    composite = xr.Dataset({"red": (("composite", "y", "x"), np.ones((1, 2, 2), "float32"))})

    def one_run(keys: list[str], detect_key: str, composite_key: str) -> StateStore:
        store = StateStore(tmp_path, aoi_id="a", grid="g")
        where = store.locate(keys)
        new = [k for k, w in zip(keys, where, strict=True) if w is None]
        if new:
            cube = _write_block(store, new, days[:len(new)], {"red": values["red"][:len(new)]}, chunks)
            dask.compute(cube["red"])
        store.find_detection(["root", "d-old", "d-new"])
        writer = store.new_detection(detect_key, (2, 2), {"n": "int16"}, chunks=chunks)
        writer.write(slice(0, 2), slice(0, 2), {"n": np.zeros((2, 2), "int16")})
        writer.mark(0, 0)
        if store.read_composite(composite_key) is None:
            store.write_composite(composite_key, composite)
        store.commit()
        return store

    root = one_run(["k1", "k2"], "d-old", "c-old").root
    record = json.loads((root / LATEST_RUN_FILE).read_text())
    assert [e.split("/")[0] for e in record["entries"]] == ["blocks", "composites", "detect"]
    assert unused_entries(root) == []
    # A second run: one more date (a new block; the first block holds its other dates), the
    # confirmation state resumed from "d-old" and the new one kept, another composite window.
    one_run(["k1", "k2", "k3"], "d-new", "c-new")
    assert {p.name for p in unused_entries(root) or []} == {"c-old"}
    # A third, like the second: "d-old" is superseded now.
    one_run(["k1", "k2", "k3"], "d-newer", "c-new")
    assert {f"{p.parent.name}/{p.name}" for p in unused_entries(root) or []} == {"composites/c-old", "detect/d-old"}
    assert "cache prune removes them" in cache_info(tmp_path)
    (root / "detect" / ".d-dead.123.tmp").mkdir()  # a dead run's temporary: not an entry
    unrecorded = tmp_path / "state" / "b-g"  # state of a run that never committed
    (unrecorded / "detect" / "d-x").mkdir(parents=True)
    with cache_in_use(tmp_path), pytest.raises(ConfigError, match="in use by a running command"):
        cache_prune(tmp_path)
    line = cache_prune(tmp_path)
    assert line.startswith(f"pruned {tmp_path}: freed ") and "kept 1 AOI state folder(s) with no record" in line
    assert sorted(p.name for p in (root / "detect").iterdir()) == [".d-dead.123.tmp", "d-new", "d-newer"]
    assert sorted(p.name for p in (root / "composites").iterdir()) == ["c-new"]
    assert len(list((root / "blocks").iterdir())) == 2 and (unrecorded / "detect" / "d-x").is_dir()
    assert "unused:" not in cache_info(tmp_path)
    # Both blocks still serve every date.
    assert all(StateStore(tmp_path, aoi_id="a", grid="g").locate(["k1", "k2", "k3"]))
