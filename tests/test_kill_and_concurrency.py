"""kill -9 anywhere, and two runs at once (issue 17). Whole runs of ``python -m pipeline monitor``
as subprocesses on a small synthetic scenario served over loopback HTTP (a STAC API plus a
Range file server), so that acquisition really fills the window cache, with its locks and
temporaries.

- **kill -9 chain**: one output folder and one cache; the run is killed (SIGKILL to its whole
  process group: the CLI and its Dask nanny and worker) during search, acquisition (holding a
  cache lock, a half-written temporary on disk), compute, writing (a temporary not yet renamed,
  new and old files mixed) and archiving (a half-copied ``archive/.bulletin-0001.part``), each
  time started again into what the previous kill left; the last run completes. Its outputs must
  equal those of an uninterrupted run (timings aside), with no temporary or lock left, no wait
  on a dead run's lock, and the archive of an uninterrupted run: one issue, then the next
  (bulletin 1, then its revision 2 for the same period), neither skipped nor duplicated.
- **two runs sharing a cache** both complete, identical to a run alone, fetching each window
  about once between them.
- **two runs into one --out**: the second is refused in one line while the first holds it.

Marked slow: about ten whole runs (``make test-all``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from pipeline.demo import ScenarioResult, write_scenario
from pipeline.locks import RUN_LOCK_NAME
from pipeline.runfolder import INCOMPLETE_MARKER
from tests.killpoints import POINTS
from tests.servers import RangeFileServer, StacApiServer
from tests.test_faults import SPEC, _served_items

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
#: Files compared byte for byte.
DATA_FILES = ("sites.geojson", "activity.csv", "crosscheck.csv", "flags.csv")
#: Keys that differ between any two runs: when, how long, where (output and cache paths; the
#: config digest leaves them out), which scheduler, and how much the incremental state reused
#: (``aois.*.state``: a killed run may have stored some dates' indices already).
VOLATILE = {"generated_at", "timings_s", "dask", "out_dir", "cache_dir", "state"}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioResult:
    return write_scenario(tmp_path_factory.mktemp("scenario"), SPEC)


@pytest.fixture(scope="module")
def source(scenario: ScenarioResult) -> Any:
    root = scenario.catalog_path.parent.parent
    with RangeFileServer(root) as files:
        with StacApiServer(_served_items(scenario, files), page_size=10) as api:
            yield api, files


def _config(tmp: Path, api: StacApiServer) -> Path:
    path = tmp / "config.yaml"
    path.write_text(
        f"source:\n  url: {api.url}\n  collection: sentinel-2-c1-l2a\n  naming: earth-search\n"
        "  max_retries: 4\n  timeout_s: 20\n"
        "period:\n  start: 2022-10-01\n  end: 2023-02-28\n  period_months: 3\n"
        "search:\n  max_cloud_frac: 1.0\n"
        "acquire:\n  margin_m: 0\n  chunk_px: 64\n"
        "detect:\n  baseline_days: 120\n"
        "radar:\n  enabled: false\n"
        "bulletin:\n  pdf: false\n  demonstration: true\n"
        "dask:\n  n_workers: 1\n  threads_per_worker: 1\n  memory_limit: 1GiB\n"
        "gdal:\n  GDAL_DISABLE_READDIR_ON_OPEN: EMPTY_DIR\n  CPL_VSIL_CURL_ALLOWED_EXTENSIONS: .tif\n"
        "  GDAL_HTTP_MAX_RETRY: 4\n  GDAL_HTTP_RETRY_DELAY: 0.05\n",
        encoding="utf-8",
    )
    return path


class Run:
    """``python -m tests.killpoints POINT -- monitor ...`` in its own process group."""

    def __init__(self, point: str, *, config: Path, aoi: Path, out: Path, cache: Path, logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        tag = f"{point}-{time.monotonic_ns()}"
        self.stderr_path, self.stdout_path = logs / f"{tag}.err", logs / f"{tag}.out"
        self.point = point
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.killpoints", point, "--", "monitor", "--config", str(config),
             "--aoi", str(aoi), "--out", str(out), "--cache", str(cache)],
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"},
            stdout=open(self.stdout_path, "w"), stderr=open(self.stderr_path, "w"),  # noqa: SIM115
            start_new_session=True,
        )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def kill_at_point(self, timeout: float = 900) -> float:
        """Wait for the pause, then SIGKILL the whole process group; the seconds it took."""
        t0 = time.monotonic()
        while f"KILLPOINT {self.point}" not in self.stderr:
            if self.proc.poll() is not None:
                raise AssertionError(f"run ended (exit {self.proc.returncode}) before {self.point}:\n{self.stderr}")
            if time.monotonic() - t0 > timeout:
                os.killpg(self.proc.pid, signal.SIGKILL)
                raise AssertionError(f"no {self.point} after {timeout} s:\n{self.stderr}")
            time.sleep(0.1)
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        _wait_group_gone(self.proc.pid)
        return time.monotonic() - t0

    def finish(self, timeout: float = 900) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise AssertionError(f"run did not finish in {timeout} s:\n{self.stderr}") from None


def _wait_group_gone(pgid: int, timeout: float = 30) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _json(path: Path, *roots: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    for i, root in enumerate(roots):
        text = text.replace(str(root), f"<root{i}>")
    return _strip(json.loads(text))


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two JSON values differ (dotted paths), for a readable assertion message."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {str(a)[:120]} != {str(b)[:120]}"]


def _listing(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.name != "run.log")


def assert_same_outputs(out: Path, ref: Path, *, cache: Path, ref_cache: Path) -> None:
    """The outputs of ``out`` equal those of ``ref``, timings, paths and timestamps aside."""
    assert _listing(out) == _listing(ref)
    for name in DATA_FILES:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    for name in ("manifest.json", "bulletin.json"):
        mine, theirs = _json(out / name, out, cache), _json(ref / name, ref, ref_cache)
        assert mine == theirs, f"{name}: {_differences(mine, theirs)[:10]}"
    a, b = gpd.read_file(out / "sites.gpkg"), gpd.read_file(ref / "sites.gpkg")
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry")) and a.geometry.equals(b.geometry)
    assert (out / "sites.gpkg").read_bytes() == (ref / "sites.gpkg").read_bytes()  # no write time inside
    for tif in sorted((ref / "composites").glob("*.tif")):
        with rasterio.open(tif) as x, rasterio.open(out / "composites" / tif.name) as y:
            np.testing.assert_array_equal(x.read(), y.read())
            assert x.tags() == y.tags() and x.descriptions == y.descriptions
    for folder in sorted((ref / "archive").iterdir()):
        mine = out / "archive" / folder.name
        assert sorted(p.name for p in mine.iterdir()) == sorted(p.name for p in folder.iterdir())
        for name in DATA_FILES:
            assert (mine / name).read_bytes() == (folder / name).read_bytes(), f"archive {folder.name}/{name}"


def _leftovers(*folders: Path) -> list[str]:
    found = []
    for folder in folders:
        for p in folder.rglob("*"):
            if p.name.endswith((".tmp", ".lock")) or ".part" in p.name or p.name == INCOMPLETE_MARKER:
                found.append(str(p))
    return found


@pytest.fixture(scope="module")
def reference(scenario: ScenarioResult, source: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted run (and its sequel, bulletin 2) into a folder and cache of its own."""
    api, files = source
    tmp = tmp_path_factory.mktemp("reference")
    config, out, cache = _config(tmp, api), tmp / "out", tmp / "cache"
    files.reset_stats()
    first = Run("none", config=config, aoi=scenario.aoi_path, out=out, cache=cache, logs=tmp / "logs")
    assert first.finish() == 0, first.stderr
    requests = len(files.requests)
    snapshot = tmp / "after-first"
    subprocess.run(["cp", "-a", str(out), str(snapshot)], check=True)
    second = Run("none", config=config, aoi=scenario.aoi_path, out=out, cache=cache, logs=tmp / "logs")
    assert second.finish() == 0, second.stderr
    assert json.loads((snapshot / "sites.geojson").read_text())["features"], "the scenario must give sites"
    return {"first": snapshot, "second": out, "cache": cache, "config": config, "requests": requests}


def test_kill_minus_9_at_every_point_then_rerun(
    scenario: ScenarioResult, source: Any, reference: dict[str, Any], tmp_path: Path
) -> None:
    api, _ = source
    config, out, cache = _config(tmp_path, api), tmp_path / "out", tmp_path / "cache"
    kw = {"config": config, "aoi": scenario.aoi_path, "out": out, "cache": cache, "logs": tmp_path / "logs"}
    report = []
    for point in POINTS:
        run = Run(point, **kw)
        seconds = run.kill_at_point()
        left = _leftovers(out, cache)
        report.append(f"{point}: killed after {seconds:.0f} s, left {len(left)} lock/temporary/marker file(s)")
        assert (out / INCOMPLETE_MARKER).exists(), point  # the folder says it is incomplete
        if point == "acquisition":
            assert any(p.endswith(".lock") for p in left) and any(p.endswith(".tmp") for p in left), left
        if point == "writing":
            assert any(".crosscheck.csv.part." in p for p in left), left
        if point == "archiving":
            assert (out / "archive" / ".bulletin-0001.part").is_dir()
    last = Run("none", **kw)
    t0 = time.monotonic()
    assert last.finish() == 0, last.stderr
    report.append(f"re-run to completion: {time.monotonic() - t0:.0f} s")
    log = (out / "run.log").read_text(encoding="utf-8")
    assert "waiting for cache lock" not in log  # no stale lock: nobody waited on a dead run
    assert "did not finish" in log
    assert _leftovers(out, cache) == []
    assert sorted(p.name for p in (out / "archive").iterdir()) == ["bulletin-0001"]
    assert_same_outputs(out, reference["first"], cache=cache, ref_cache=reference["cache"])
    # The next run is the second issue (the same period again: bulletin 1, revision 2, under
    # bulletin.reissue: revise), as after an uninterrupted first run: nothing skipped or doubled.
    sequel = Run("none", **kw)
    assert sequel.finish() == 0, sequel.stderr
    issues = sorted(p.name for p in (out / "archive").iterdir())
    assert issues == sorted(p.name for p in (reference["second"] / "archive").iterdir()) and len(issues) == 2
    assert_same_outputs(out, reference["second"], cache=cache, ref_cache=reference["cache"])
    print("\nkill -9 chain:\n  " + "\n  ".join(report))


def test_two_runs_sharing_a_cache_both_complete_as_one_alone(
    scenario: ScenarioResult, source: Any, reference: dict[str, Any], tmp_path: Path
) -> None:
    api, files = source
    config, cache = _config(tmp_path, api), tmp_path / "cache"
    files.reset_stats()
    runs = [
        Run("none", config=config, aoi=scenario.aoi_path, out=tmp_path / f"out{i}", cache=cache,
            logs=tmp_path / "logs")
        for i in (1, 2)
    ]
    assert [r.finish() for r in runs] == [0, 0], [r.stderr for r in runs]
    both = len(files.requests)
    for i in (1, 2):
        assert_same_outputs(tmp_path / f"out{i}", reference["first"], cache=cache, ref_cache=reference["cache"])
    assert _leftovers(cache) == []
    # Each window fetched about once between the two (the second waited for the first's
    # locks and reused the entries), not twice.
    assert both <= 1.25 * reference["requests"], (both, reference["requests"])
    print(f"\ntwo runs sharing a cache: {both} COG requests together, {reference['requests']} for one run alone")


def test_a_second_run_into_the_same_out_is_refused_while_the_first_holds_it(
    scenario: ScenarioResult, source: Any, tmp_path: Path
) -> None:
    api, _ = source
    config, out = _config(tmp_path, api), tmp_path / "out"
    kw = {"config": config, "aoi": scenario.aoi_path, "out": out, "logs": tmp_path / "logs"}
    first = Run("search", cache=tmp_path / "cache1", **kw)
    while "KILLPOINT search" not in first.stderr:  # it holds --out now
        assert first.proc.poll() is None, first.stderr
        time.sleep(0.1)
    before = sorted(out.rglob("*"))
    second = Run("none", cache=tmp_path / "cache2", **kw)
    t0 = time.monotonic()
    code = second.finish(timeout=300)
    lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
    first.kill_at_point()
    assert code == 2 and len(lines) == 1, second.stderr
    assert lines[0].startswith(f"error: output folder {out} is in use by another run (pid {first.proc.pid}")
    assert sorted(out.rglob("*")) == before  # the refused run wrote nothing
    assert not (tmp_path / "cache2").exists()
    print(f"\nsecond run into the same --out refused in {time.monotonic() - t0:.1f} s: {lines[0]}")


def _run_until_computing(scenario: ScenarioResult, source: Any, tmp_path: Path) -> tuple[Run, dict[str, Any]]:
    """A monitor run started on the served scenario, returned once its graph is on the workers,
    with the keyword arguments that start the same run again."""
    api, _ = source
    kw = {"config": _config(tmp_path, api), "aoi": scenario.aoi_path, "out": tmp_path / "out",
          "cache": tmp_path / "cache", "logs": tmp_path / "logs"}
    run = Run("none", **kw)
    t0 = time.monotonic()
    while not re.search(r"compute \d+/\d+ tasks", run.stderr):  # the graph is on the workers
        assert run.proc.poll() is None, run.stderr
        assert time.monotonic() - t0 < 600, run.stderr
        time.sleep(0.05)
    return run, kw


def test_ctrl_c_while_the_workers_compute_prints_one_line_then_a_rerun_completes(
    scenario: ScenarioResult, source: Any, reference: dict[str, Any], tmp_path: Path
) -> None:
    """Ctrl-C reaches the whole foreground process group, the Dask workers too. The client
    says one line and exits 130; the workers, which ignore SIGINT (pipeline.worker_signals),
    print no traceback. A re-run then ends as an uninterrupted run."""
    run, kw = _run_until_computing(scenario, source, tmp_path)
    out, cache = kw["out"], kw["cache"]
    os.killpg(run.proc.pid, signal.SIGINT)
    code = run.finish(timeout=300)
    _wait_group_gone(run.proc.pid)
    assert code == 130, run.stderr
    assert "Traceback" not in run.stderr and "KeyboardInterrupt" not in run.stderr, run.stderr
    assert run.stderr.rstrip().splitlines()[-1] == "error: interrupted"
    again = Run("none", **kw)
    assert again.finish() == 0, again.stderr
    assert_same_outputs(out, reference["first"], cache=cache, ref_cache=reference["cache"])


def test_sigterm_while_the_workers_compute_unwinds_like_ctrl_c(
    scenario: ScenarioResult, source: Any, reference: dict[str, Any], tmp_path: Path
) -> None:
    """SIGTERM to the run's process (``kill PID``, ``timeout``, a batch scheduler's time limit)
    ended it where it stood, its lock, run log and RUN_INCOMPLETE left for the next run and its
    fork server and workers to notice their parent was gone. Now the run unwinds as after
    Ctrl-C: one line, exit 143, no process of it left, and a re-run ends as an uninterrupted run."""
    run, kw = _run_until_computing(scenario, source, tmp_path)
    out, cache = kw["out"], kw["cache"]
    os.kill(run.proc.pid, signal.SIGTERM)  # the client process only, as kill and timeout send it
    code = run.finish(timeout=300)
    _wait_group_gone(run.proc.pid)
    assert code == 143, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert run.stderr.rstrip().splitlines()[-1] == "error: terminated (SIGTERM)"
    assert not (out / RUN_LOCK_NAME).exists()
    again = Run("none", **kw)
    assert again.finish() == 0, again.stderr
    assert_same_outputs(out, reference["first"], cache=cache, ref_cache=reference["cache"])
