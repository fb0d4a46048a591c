"""AOIs in parallel on a ``dask.distributed`` cluster, and progress reporting.

The slow test starts a scheduler and two worker processes on loopback, serves a synthetic
scenario over loopback HTTP (STAC API + Range file server) and runs three AOIs plus one whose
imagery is broken through ``monitor --scheduler``: the three give the same files as a run on
the local cluster, all three graphs are on the cluster before the first AOI finishes, and the
broken AOI fails alone (exit status 1, listed)."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.demo import ScenarioResult, write_scenario
from pipeline.progress import RunProgress, format_duration
from tests.scale_fixtures import (
    SMALL_SPEC,
    broken_aoi,
    config_dict,
    data_files,
    served_items,
    split_aois,
    write_config,
)
from tests.servers import RangeFileServer, StacApiServer

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioResult:
    return write_scenario(tmp_path_factory.mktemp("scenario"), SMALL_SPEC)


@pytest.mark.slow  # a scheduler, two workers and two whole runs (about a minute and a half on 2 cores)
def test_three_aois_in_parallel_on_a_remote_scheduler(scenario: ScenarioResult, tmp_path: Path) -> None:
    from distributed import LocalCluster

    aois = split_aois(scenario, tmp_path / "aois", 3)
    broken = broken_aoi(scenario, tmp_path / "aois")
    root = scenario.catalog_path.parent.parent
    with RangeFileServer(root) as files, StacApiServer(served_items(scenario, files, broken=3), page_size=50) as api:
        def config(name: str) -> Path:
            # Own caches: the remote run computes every date on the remote cluster (from the local
            # run's state it would compute nothing, and its first AOI could finish before the
            # others' graphs were built).
            raw = config_dict(source=api.url, aois=[*aois, broken], out=tmp_path / name,
                              cache=tmp_path / f"{name}-cache")
            return write_config(tmp_path / f"{name}.yaml", raw)

        local = _cli("-q", "monitor", "--config", str(config("local")))
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, memory_limit="1GiB") as cluster:
            remote = _cli("monitor", "--config", str(config("remote")), "--scheduler", cluster.scheduler_address)
    for res in (local, remote):
        assert res.returncode == 1, res.stderr  # one AOI failed, the others complete
        failed = [ln for ln in res.stderr.splitlines() if ln.startswith("failed:")]
        assert len(failed) == 1 and "AOI broken" in failed[0], res.stderr
    assert data_files(tmp_path / "remote") == data_files(tmp_path / "local")
    activity = (tmp_path / "remote" / "activity.csv").read_text()
    assert all(f"part-{i}" in activity for i in range(3)) and "broken" not in activity
    assert "site_id" in (tmp_path / "remote" / "sites.geojson").read_text()  # something to compare
    # In parallel: every good AOI was being fetched before the first AOI's graph went to the
    # cluster (one after another, the next AOI starts when the previous one is done), and every
    # good AOI's graph went to the cluster (futures) before the last AOI was done.
    log = (tmp_path / "remote" / "run.log").read_text()
    fetching = [m.start() for m in re.finditer(r"AOI part-\d: fetch 0/", log)]
    ready = [m.start() for m in re.finditer(r"AOI part-\d: graph of", log)]
    done = [m.start() for m in re.finditer(r"AOI part-\d: ok", log)]
    assert len(fetching) == len(ready) == len(done) == 3, log
    assert max(fetching) < min(ready) and max(ready) < max(done), log
    # Progress lines with counts and the time left, and no credentials or URLs in them.
    for stage in ("search", "fetch", "compute"):
        assert re.search(rf"AOI part-\d: {stage} \d+/\d+ ", remote.stderr), stage
    lines = [ln for ln in remote.stderr.splitlines() if re.search(r"AOI \S+: (search|fetch|compute) ", ln)]
    assert lines and not any("://" in ln for ln in lines)
    # -q: no progress at all, the failure is still reported.
    assert not re.search(r"AOI part-\d: (search|fetch|compute|ok)", local.stderr), local.stderr


def test_progress_lines_count_estimate_and_finish(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    p = RunProgress("lines", interval_s=0.0, n_aois=2)
    p.update("kono", "fetch", 0, 40, unit="items")
    p._stages[("kono", "fetch")].t0 -= 20  # 20 s in
    p.update("kono", "fetch", 10, 40, unit="items")
    p.update("kono", "fetch", 40, 40, unit="items")
    p.update("kono", "fetch", 40, 40, unit="items")  # ended: no second line
    p.aoi_done("kono", "ok")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "AOI kono: fetch 0/40 items (0 %)"
    assert lines[1] == "AOI kono: fetch 10/40 items (25 %), ~1m00s left"
    assert lines[2].startswith("AOI kono: fetch 40/40 items (100 %) in ")
    assert lines[3] == "AOI kono: ok [1/2 AOIs done]" and len(lines) == 4


def test_a_search_under_way_is_started_not_zero_found(caplog: pytest.LogCaptureFixture) -> None:
    """An outside tester read "search 0 items found" before each AOI's search had answered."""
    caplog.set_level(logging.INFO, logger="pipeline.progress")
    p = RunProgress("lines", interval_s=0.0, n_aois=1)
    p.update("kono", "search", 0, None, unit="items found")
    p.update("kono", "search", 37, 37, unit="items found")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "AOI kono: search started"
    assert lines[1].startswith("AOI kono: search 37/37 items found (100 %) in ") and len(lines) == 2


def test_progress_off_and_bar() -> None:
    off = io.StringIO()
    p = RunProgress("off", stream=off)
    p.update("a", "compute", 1, 2)
    p.message("dask dashboard: http://u:secret@127.0.0.1:8787/status?token=abc")
    assert off.getvalue() == ""
    bar = io.StringIO()
    p = RunProgress("bar", stream=bar, n_aois=1)
    p.update("a", "compute", 1, 4, unit="tasks")
    p.message("dask dashboard: http://u:secret@127.0.0.1:8787/status?token=abc")
    p.update("a", "compute", 4, 4, unit="tasks")
    p.close()
    text = bar.getvalue()
    assert "[0/1 AOIs] a: compute 1/4 tasks (25 %)" in text
    assert "dask dashboard: http://127.0.0.1:8787/status" in text
    assert "secret" not in text and "token" not in text
    assert "a: compute 4/4 tasks (100 %) in" in text
    assert text.endswith("\n")  # the bar is gone once nothing runs: the last line is a whole line


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 59.4, 61, 3599, 7260)] == ["0s", "59s", "1m01s", "59m59s", "2h01m"]
