"""``python -m pipeline scenes``: the dry run lists what a run would use and writes nothing."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import search
from pipeline.aoi import read_aois
from pipeline.cache import localise_items
from pipeline.config import MonitorConfig
from pipeline.demo import ScenarioResult, write_scenario
from pipeline.jobs import plan_jobs
from pipeline.scenes import AOIScenePlan, ScenePlan, format_scenes, plan_scenes
from tests.scale_fixtures import SMALL_SPEC, config_dict, served_items, write_config
from tests.servers import RangeFileServer, StacApiServer

REPO = Path(__file__).resolve().parents[1]
BANDS = ["blue", "green", "red", "nir", "swir16", "swir22", "scl"]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioResult:
    return write_scenario(tmp_path_factory.mktemp("scenario"), SMALL_SPEC)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_scenes_lists_items_cloud_cost_and_writes_nothing(scenario: ScenarioResult, tmp_path: Path) -> None:
    root = scenario.catalog_path.parent.parent
    cache = tmp_path / "cache"
    with RangeFileServer(root) as files, StacApiServer(served_items(scenario, files), page_size=50) as api:
        raw = config_dict(source=api.url, aois=[scenario.aoi_path], out=tmp_path / "out", cache=cache,
                          start="2022-10-01", end="2022-12-31")
        cfg = MonitorConfig.model_validate(raw)
        # Two scenes already in the window cache: their cloud comes from SCL, nothing to fetch.
        job = plan_jobs(read_aois(cfg.aois), cfg)[0]
        items = search.search_items(job.geometry, job.search_start, job.end, source=cfg.source,
                                    params=cfg.search, bands=BANDS)
        localise_items(items[:2], geobox=job.grid().geobox, bands=BANDS, cache_dir=cache)
        before, stamp = _tree(tmp_path), cache.stat().st_mtime_ns
        files.reset_stats()
        plans = plan_scenes(cfg)
        assert files.requests == []  # no pixel is read from the source
        after = _tree(tmp_path)
    assert after == before  # nothing written
    assert cache.stat().st_mtime_ns == stamp  # not even a write probe made and removed (an outside tester's strace)
    (plan,) = plans
    assert [s.item_id for s in plan.scenes] == [it.id for it in items]
    cached, rest = plan.scenes[:2], plan.scenes[2:]
    assert all(s.cloud_source == "scl-cache" and s.fetch_bytes == 0 and s.cached_bands == 7 for s in cached)
    assert all(s.cloud_source == "metadata" and s.fetch_bytes > 0 and s.cached_bands == 0 for s in rest)
    for s, item in zip(rest, items[2:], strict=True):
        assert s.cloud_pct == pytest.approx(item.properties["eo:cloud_cover"], abs=0.01)
    # The AOI grid's window, 4 bands at 10 m and 3 at 20 m, uint16 and the uint8 SCL, + 1 px pad.
    left, bottom, right, top = job.grid().extent

    def px(res: float) -> int:
        return (math.ceil((right - left) / res) + 2) * (math.ceil((top - bottom) / res) + 2)

    assert rest[0].fetch_bytes == 4 * px(10) * 2 + 2 * px(20) * 2 + px(20) * 1
    assert {s.window for s in plan.scenes} == {"baseline", "monitoring"}
    assert all(s.window == "baseline" for s in plan.scenes if s.datetime < "2022-10-01")
    cov = plan.coverage()
    assert cov["baseline_scenes"] + cov["monitoring_scenes"] == len(items)
    assert cov["fetch_bytes"] == sum(s.fetch_bytes for s in rest)
    text = format_scenes(plans)
    assert "baseline coverage:" in text and items[-1].id in text
    assert cov["uncovered_frac"] == 0.0 and "outside the footprint" not in text  # the scene covers the AOI
    # An AOI the scenes cover in part is told so, from search.warn_uncovered_frac on.
    plan.uncovered_frac = 0.4
    warning = "  warning: 40% of the AOI lies outside the footprint of every scene: no site can be detected there"
    assert warning in format_scenes(plans).splitlines()
    plan.warn_uncovered_frac = 0.5
    assert "outside the footprint" not in format_scenes(plans)


def test_scenes_cli_json_on_a_static_catalog(scenario: ScenarioResult, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", config_dict(source=str(scenario.catalog_path), aois=[scenario.aoi_path],
                                                        out=tmp_path / "out", cache=tmp_path / "cache"))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    res = subprocess.run([sys.executable, "-m", "pipeline", "scenes", "--config", str(cfg), "--start", "2022-11-01",
                          "--end", "2022-12-31", "--json"], cwd=REPO, capture_output=True, text=True, env=env,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    (aoi,) = doc["aois"]
    assert aoi["start"] == "2022-11-01" and aoi["end"] == "2022-12-31"
    # local files: SCL read over the AOI, nothing to fetch
    assert aoi["scenes"] and all(s["cloud_source"] == "scl-local" and s["fetch_bytes"] == 0 for s in aoi["scenes"])
    assert all(0 <= s["cloud_pct"] <= 100 for s in aoi["scenes"])
    assert aoi["coverage"]["baseline_scenes"] > 0
    assert _tree(tmp_path) == ["c.yaml"]


def test_same_day_scenes_of_adjacent_tiles_count_as_one_date() -> None:
    # Two tiles of one datatake (the Africa fixtures' T35MNM and T35LNL, 2020-06-06 08:06 UTC):
    # a run merges them into one date, so coverage counts one date and its clearest scene.
    def scene(item_id: str, when: str, cloud: float | None) -> ScenePlan:
        return ScenePlan(item_id=item_id, datetime=when, window="baseline", cloud_pct=cloud, cloud_source="metadata",
                         fetch_bytes=0, cached_bands=0, bands=7, solar_day=when[:10])

    plan = AOIScenePlan(aoi_id="a", search_start="2020-06-01", start="2020-07-01", end="2020-09-30", scenes=[
        scene("S2B_35MNM_20200606_0_L2A", "2020-06-06T08:06:09Z", 2.0),
        scene("S2B_35LNL_20200606_0_L2A", "2020-06-06T08:06:09Z", 10.0),
        scene("S2A_35MNM_20200611_0_L2A", "2020-06-11T08:06:11Z", None),
        scene("S2B_35MNM_20200616_0_L2A", "2020-06-16T08:06:09Z", 50.0),
    ])
    cov = plan.coverage()
    assert (cov["baseline_scenes"], cov["baseline_dates"]) == (4, 3)
    assert cov["baseline_clear_equiv"] == pytest.approx(0.98 + 0.5)
    text = format_scenes([plan])
    assert "4 scenes on 3 dates (same-day tiles merged, as in a run), 1.48 clear-scene equivalents" in text


def test_scenes_fails_an_aoi_as_monitor_does_when_the_period_holds_no_scene(
        scenario: ScenarioResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An outside tester: `scenes` for a period after the last scene exited 0 ("monitoring: 0
    scenes") where `monitor` fails the AOI with "no scene on or after ...". Now the same line,
    exit 1, and the baseline scenes it did find still listed."""
    from pipeline.__main__ import main

    start = SMALL_SPEC.end + dt.timedelta(days=30)  # after the scenario's last scene; its baseline has some
    cfg = write_config(tmp_path / "c.yaml", config_dict(source=str(scenario.catalog_path), aois=[scenario.aoi_path],
                                                        out=tmp_path / "out", cache=tmp_path / "cache"))
    argv = ["scenes", "--config", str(cfg), "--start", str(start), "--end", str(start + dt.timedelta(days=60))]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    failed = [ln for ln in err.splitlines() if ln.startswith("failed:")]
    assert failed == [f"failed: AOI {SMALL_SPEC.aoi_id}: no scene on or after {start}; check period.start/end"]
    assert "baseline coverage:" in out and f"  failed: no scene on or after {start}" in out
    assert main([*argv, "--json"]) == 1
    (aoi,) = json.loads(capsys.readouterr().out)["aois"]
    assert aoi["error"].startswith("no scene on or after") and aoi["coverage"]["monitoring_scenes"] == 0
    assert aoi["coverage"]["baseline_scenes"] > 0
