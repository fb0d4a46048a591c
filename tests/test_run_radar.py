"""Sentinel-1 radar wired into ``run_monitor``: fused when available, said so when not.

Three runs of the whole pipeline (static catalog -> window cache -> odc-stac -> local
``dask.distributed`` cluster -> sites -> bulletin) over one small synthetic scenario that
carries a Sentinel-1 RTC collection beside Sentinel-2:

- ``optical``: radar off, the reference;
- ``fused``: radar on; it finds pits opened in the wet season that optical cannot see, and the
  manifest, scenes table, bulletin and ``bulletin.json`` say which Sentinel-1 scenes were fused;
- ``missing_dry``: radar on but pointed at a collection the catalog lacks, to the end of
  the dry season; the run still succeeds, says radar was unavailable and why, and its sites
  equal those of the optical-only run to the same date (``optical_dry``).

The wet season is an optical gap: the scenario's Sentinel-2 items of June to September are
removed from its catalog (as ``benchmarks/validate.py``'s wet-gap scenario does), and its three
pits open from June. Partial clouds alone leave gaps a pit can be seen through: with them the
optical detector confirms pits opened in April and May within about a week.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest

from pipeline.config import load_config
from pipeline.demo import ScenarioSpec, remove_optical_items, write_scenario
from pipeline.demo.conventions import S1_COLLECTION_ID
from pipeline.evaluate import evaluate_sites, read_truth
from pipeline.run import run_monitor

pytestmark = pytest.mark.e2e

SPEC = ScenarioSpec(
    shape_px=(60, 80), start=dt.date(2022, 7, 1), end=dt.date(2023, 12, 31), revisit_days=10,
    monitoring_start=dt.date(2023, 6, 1), n_pits=3, pit_open_margin_days=133, n_fields=1,
    n_bare_patches=0, n_burn_scars=0, field_area_ha=(0.5, 0.8), pit_area_ha=(0.6, 1.0),
    n_abandoned=0, n_rivers=0, village=False, with_s1=True, seed=2,
)

#: The optical gap (no Sentinel-2 item) and the end of the wet-season bulletin: the pits open
#: from June to August; the scenario goes on to the end of the dry December.
WET_GAP = (dt.date(2023, 6, 1), dt.date(2023, 9, 30))
WET_END = WET_GAP[1]
DRY_END = dt.date(2023, 12, 31)


def _run(root: Path, scenario: Any, label: str, end: dt.date = WET_END, **overrides: Any) -> dict[str, Any]:
    cfg = load_config(
        Path(__file__).resolve().parents[1] / "configs" / "demo.yaml",
        aois=[str(scenario.aoi_path)],
        **{
            "source.url": str(scenario.catalog_path),
            "out_dir": str(root / label),
            "cache_dir": str(root / "cache"),
            "period.start": "2023-04-01",
            "period.end": end.isoformat(),
            "detect.baseline_days": 270,
            "radar.baseline_days": 270,
            "bulletin.pdf": False,
            "radar.enabled": False,  # configs/demo.yaml turns it on; each run says what it wants
            "dask.n_workers": 1,
            "dask.threads_per_worker": 2,
            **overrides,
        },
    )
    report = run_monitor(cfg)
    out = report.out_dir
    return {
        "exit": report.exit_code,
        "manifest": json.loads((out / "manifest.json").read_text("utf-8")),
        "bulletin": json.loads((out / "bulletin.json").read_text("utf-8")),
        "html": (out / "bulletin.html").read_text("utf-8"),
        "sites": gpd.read_file(out / "sites.geojson"),
        "features": json.loads((out / "sites.geojson").read_text("utf-8"))["features"],
        "log": (out / "run.log").read_text("utf-8"),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("run-radar")
    scenario = write_scenario(root / "scenario", SPEC)
    assert remove_optical_items(scenario.catalog_path, *WET_GAP) > 0
    return {
        "truth": {"path": scenario.truth_path},
        "optical": _run(root, scenario, "optical"),
        "fused": _run(root, scenario, "fused", **{"radar.enabled": True}),
        "optical_dry": _run(root, scenario, "optical-dry", DRY_END),
        "missing_dry": _run(
            root, scenario, "missing-dry", DRY_END, **{"radar.enabled": True, "radar.collection": "no-such-s1"}
        ),
    }


@pytest.mark.slow  # three whole runs (make test-all)
def test_radar_off_is_said_and_reads_no_radar(runs: dict[str, dict[str, Any]]) -> None:
    run = runs["optical"]
    assert run["exit"] == 0
    (aoi,) = run["manifest"]["aois"].values()
    assert aoi["radar"] == {"status": "off", "n_items": 0}
    assert not [it for it in run["manifest"]["items"] if it["sensor"] == "sentinel-1"]
    assert "Sentinel-2 optical only (radar not enabled)." in run["html"]


@pytest.mark.slow  # three whole runs (make test-all)
def test_fused_run_records_the_radar_scenes_everywhere(runs: dict[str, dict[str, Any]]) -> None:
    run = runs["fused"]
    assert run["exit"] == 0
    (aoi,) = run["manifest"]["aois"].values()
    radar_items = [it for it in run["manifest"]["items"] if it["sensor"] == "sentinel-1"]
    assert aoi["radar"]["status"] == "used"
    assert aoi["radar"]["n_items"] == len(radar_items) > 20
    # The radar baseline reaches back radar.baseline_days before the period.
    first = min(dt.datetime.fromisoformat(it["datetime"]).date() for it in radar_items)
    assert first < dt.date(2023, 4, 1) - dt.timedelta(days=200)
    assert all(set(it["assets"]) == {"vv", "vh"} for it in radar_items)
    assert all(S1_COLLECTION_ID in it["assets"]["vh"] or "cache" in it["assets"]["vh"] for it in radar_items)
    (bulletin_aoi,) = run["bulletin"]["aois"]
    assert bulletin_aoi["radar"] == {"status": "used", "n_scenes": len(radar_items)}
    assert f"Sentinel-1 radar ({len(radar_items)} scenes) fused before confirmation" in run["html"]
    assert '<th class="num">S1A</th>' in run["html"]  # its own column of the annex's scenes table
    assert "vh_drop_min_db" in run["html"] and "radar fused" in run["log"]


@pytest.mark.slow  # three whole runs (make test-all)
def test_fusion_finds_wet_season_pits_that_optical_misses(runs: dict[str, dict[str, Any]]) -> None:
    # Bulletin to the end of September: optical has no view of the three pits opened in the
    # wet-season gap; fused with radar, at least two are reported, nothing else.
    truth = read_truth(runs["truth"]["path"])
    fused = evaluate_sites(runs["fused"]["sites"], truth)
    optical = evaluate_sites(runs["optical"]["sites"], truth)
    assert optical["n_detected"] == 0 and fused["recall"] >= 2 / 3
    assert fused["precision"] == 1.0 and fused["distractor_hits"] == 0
    # By the end of the dry season optical finds all three on its own.
    assert evaluate_sites(runs["optical_dry"]["sites"], truth)["recall"] == 1.0


@pytest.mark.slow  # three whole runs (make test-all)
def test_unavailable_radar_falls_back_to_optical_and_says_why(runs: dict[str, dict[str, Any]]) -> None:
    run = runs["missing_dry"]
    assert run["exit"] == 0
    (aoi,) = run["manifest"]["aois"].values()
    assert aoi["radar"]["status"].startswith("unavailable: ")
    assert aoi["radar"]["n_items"] == 0
    assert "radar was requested but unavailable" in run["html"]
    assert "radar unavailable, optical evidence only" in run["log"]
    assert run["features"] == runs["optical_dry"]["features"] != []


def test_radar_preflight_reports_an_unreachable_radar_source_once(tmp_path: Path) -> None:
    import socket

    from pipeline.config import MonitorConfig, RadarParams
    from pipeline.run import preflight_radar as _preflight_radar

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = MonitorConfig(radar=RadarParams(enabled=True, source_url=f"http://127.0.0.1:{port}/stac"))
    reason = _preflight_radar(cfg)
    assert reason is not None and reason.startswith(f"cannot reach radar source http://127.0.0.1:{port}/stac")
    missing = MonitorConfig(radar=RadarParams(enabled=True, source_url=str(tmp_path / "none" / "catalog.json")))
    assert "does not exist" in (_preflight_radar(missing) or "")
    # Radar off, or on the optical source (whose own preflight already ran): nothing to probe.
    assert _preflight_radar(MonitorConfig(radar=RadarParams(source_url=f"http://127.0.0.1:{port}/stac"))) is None
    assert _preflight_radar(MonitorConfig(radar=RadarParams(enabled=True))) is None
