"""Locks that die with their holder, the run folder (run lock, RUN_INCOMPLETE, dead runs'
leftovers, one run.log per run), local assets checked before use, credentials redacted.

Fast unit tests; the whole-run versions (kill -9 at several points, two runs at once) are in
``tests/test_kill_and_concurrency.py`` (slow)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine

from pipeline import cache
from pipeline.cli_support import report_error
from pipeline.errors import ConfigError, SearchError
from pipeline.http import RedactCredentials, redact_credentials, strip_userinfo
from pipeline.locks import RUN_LOCK_NAME, FileLock, RunLockBusy, remove_dead_temporaries
from pipeline.runfolder import INCOMPLETE_MARKER, RunFolder, run_folder


def _hold_in_child(path: Path) -> subprocess.Popen[str]:
    """A child process that takes the lock, says so, and sleeps (until killed)."""
    code = textwrap.dedent(f"""
        import sys, time
        from pipeline.locks import FileLock
        lock = FileLock({str(path)!r}, info={{"command": "test holder"}})
        assert lock.try_acquire()
        print("held", flush=True)
        time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


# --------------------------------------------------------------------------------------------
# FileLock
# --------------------------------------------------------------------------------------------


def test_a_lock_dies_with_its_holder_killed_by_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    child = _hold_in_child(path)
    try:
        assert not FileLock(path).try_acquire()
        assert FileLock(path).read_info()["pid"] == child.pid
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    t0 = time.monotonic()
    lock = FileLock(path)
    assert lock.acquire(poll_s=0.05)
    assert time.monotonic() - t0 < 1.0  # no timeout to age out: the kernel released it
    lock.release(unlink=True)
    assert not path.exists()


def test_waiting_on_a_live_holder_is_logged_with_its_pid(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "x.lock"
    child = _hold_in_child(path)
    caplog.set_level(logging.INFO, logger="pipeline")
    logging.getLogger("pipeline").propagate = True
    deadline = time.monotonic() + 0.6
    try:
        assert not FileLock(path).acquire(poll_s=0.05, give_up=lambda: time.monotonic() > deadline, what="cache lock")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert f"waiting for cache lock {path}, held by pid {child.pid} (test holder" in caplog.text


def test_threads_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    first, second = FileLock(tmp_path / "x.lock"), FileLock(tmp_path / "x.lock")
    assert first.try_acquire() and not second.try_acquire()
    first.release(unlink=True)
    assert second.try_acquire()  # a fresh file: the unlinked inode is not "held" by anyone
    second.release()


def test_a_symlinked_lock_file_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "x.lock").symlink_to(victim)
    with pytest.raises(OSError):
        FileLock(tmp_path / "x.lock").try_acquire()
    assert victim.read_text() == "precious\n"


# --------------------------------------------------------------------------------------------
# The window cache after a killed run
# --------------------------------------------------------------------------------------------


def test_a_killed_runs_cache_lock_and_temporary_do_not_stop_the_next_run(tmp_path: Path) -> None:
    wc = cache.WindowCache(tmp_path)
    entry = wc.entry("S2A_X", "red", "abc")
    entry.parent.mkdir(parents=True)
    # What a run killed mid-write leaves, in the earlier format too: "<pid> <epoch>", fresh
    # (the earlier code waited until such a lock was 600 s old).
    entry.with_name(entry.name + ".lock").write_text("999999 1700000000\n")
    t0 = time.monotonic()
    with wc.lock(entry) as mine:
        assert mine
    assert time.monotonic() - t0 < 1.0
    assert not entry.with_name(entry.name + ".lock").exists()
    # The next run's sweep: temporaries of dead processes (files, and the incremental state's
    # folders) and lock files nobody holds go; a live process's temporary and lock stay.
    dead_tmp = entry.parent / f".{entry.name}.999999.0123abcd.tmp"
    live_tmp = entry.parent / f".{entry.name}.{os.getpid()}.89abcdef.tmp"
    dead_tmp.write_bytes(b"half a tiff")
    live_tmp.write_bytes(b"being written by this process")
    dead_state = tmp_path / "state" / "aoi" / ".2023-01-01.999999.0a1b2c3d.tmp"
    dead_state.mkdir(parents=True)
    (dead_state / "zarr.json").write_bytes(b"half")
    stale = entry.with_name("nir-abc.tif.lock")  # its holder died after writing its entry
    stale.write_text("999999 1700000000\n")
    held = FileLock(entry.with_name("blue-abc.tif.lock"))
    assert held.try_acquire()
    assert sorted(remove_dead_temporaries(tmp_path)) == sorted([dead_tmp, dead_state, stale])
    assert live_tmp.exists() and not dead_state.exists() and held.path.exists()
    held.release(unlink=True)


# --------------------------------------------------------------------------------------------
# The run folder
# --------------------------------------------------------------------------------------------


def test_a_second_run_into_the_same_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with RunFolder(out):
        with pytest.raises(RunLockBusy) as info, RunFolder(out):
            pass
    message = str(info.value)
    assert str(out) in message and f"pid {os.getpid()}" in message and "\n" not in message
    assert not (out / RUN_LOCK_NAME).exists()


def test_a_run_that_never_starts_writing_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "out"
    with pytest.raises(RuntimeError), RunFolder(out):
        raise RuntimeError("the scheduler could not be reached")
    assert not (tmp_path / "a").exists()


def test_run_log_is_one_per_run_and_the_marker_goes_when_the_run_ends(tmp_path: Path) -> None:
    out = tmp_path / "out"
    log = logging.getLogger("pipeline")
    for n in (1, 2):
        with run_folder(out):
            assert json.loads((out / INCOMPLETE_MARKER).read_text())["pid"] == os.getpid()
            log.warning("run %d at https://analyst:s3cret@stac.example/v1?sig=abc", n)
        assert not (out / INCOMPLETE_MARKER).exists()
    text = (out / "run.log").read_text()
    assert "run 2" in text and "run 1" not in text  # overwritten, not appended
    assert "s3cret" not in text and "sig=abc" not in text and "https://stac.example/v1" in text


def test_a_failing_run_keeps_the_marker(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), run_folder(out):
        raise RuntimeError("a bug mid-run")
    assert (out / INCOMPLETE_MARKER).exists()


def test_a_symlinked_run_log_is_not_written_through(tmp_path: Path) -> None:
    out, victim = tmp_path / "out", tmp_path / "victim.log"
    out.mkdir()
    victim.write_text("precious\n")
    (out / "run.log").symlink_to(victim)
    with pytest.raises(ConfigError, match="run.log"), run_folder(out):
        pass
    assert victim.read_text() == "precious\n"


def test_after_a_killed_run_leftovers_go_and_the_site_history_is_the_archived_one(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "archive" / "bulletin-0001").mkdir(parents=True)
    (out / "archive" / "bulletin-0001" / "sites.geojson").write_text('{"archived": 0}\n')
    (out / "archive" / "bulletin-0001-r2").mkdir(parents=True)  # the latest issue: a revision
    (out / "archive" / "bulletin-0001-r2" / "sites.geojson").write_text('{"archived": 1}\n')
    (out / "archive" / ".bulletin-0001-r3.part").mkdir()
    (out / "composites").mkdir()
    (out / "figures" / "fr").mkdir(parents=True)
    leftovers = [out / ".sites.gpkg.part.k2j3h4.gpkg", out / ".bulletin.html.x8y9.tmp",
                 out / "composites" / ".a_2023.tif.part.abcd.tif", out / "figures" / "fr" / ".map_a.png.q1w2.tmp"]
    for path in leftovers:
        path.write_bytes(b"partial")
    (out / "sites.geojson").write_text('{"written by": "the killed run"}\n')
    (out / INCOMPLETE_MARKER).write_text(json.dumps({"pid": 999999, "started": "2024-01-01T00:00:00+00:00"}))
    with run_folder(out) as folder:
        assert folder.previous_incomplete == {"pid": 999999, "started": "2024-01-01T00:00:00+00:00"}
        assert json.loads((out / "sites.geojson").read_text()) == {"archived": 1}
    assert not any(p.exists() for p in leftovers) and not (out / "archive" / ".bulletin-0001-r3.part").exists()
    assert "did not finish" in (out / "run.log").read_text()


# --------------------------------------------------------------------------------------------
# Local assets, checked before use
# --------------------------------------------------------------------------------------------


def _asset(tmp_path: Path, *, epsg: int = 32629, shape: tuple[int, int] = (20, 30), origin: float = 500000.0,
           declared: dict | None = None) -> tuple[str, pystac.Asset, pystac.Item]:
    path = tmp_path / "B04.tif"
    with rasterio.open(path, "w", driver="GTiff", width=shape[1], height=shape[0], count=1, dtype="uint16",
                       crs=f"EPSG:{epsg}", transform=Affine(10, 0, origin, 0, -10, 900000.0), tiled=True,
                       blockxsize=16, blockysize=16) as dst:
        dst.write(np.arange(shape[0] * shape[1], dtype="uint16").reshape(shape), 1)
    fields = {"proj:epsg": 32629, "proj:shape": [20, 30], "proj:transform": [10, 0, 500000.0, 0, -10, 900000.0],
              "raster:bands": [{"data_type": "uint16"}], **(declared or {})}
    asset = pystac.Asset(href=str(path), extra_fields=fields)
    item = pystac.Item("S2A_TEST", geometry=None, bbox=None, datetime=dt.datetime(2023, 1, 1, tzinfo=dt.UTC),
                       properties={})
    return str(path), asset, item


def test_a_consistent_local_asset_passes(tmp_path: Path) -> None:
    assert cache.check_local_asset(*_asset(tmp_path)) is None


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"epsg": 32630}, "CRS EPSG:32630 disagrees with the item's proj:* CRS EPSG:32629"),
        ({"shape": (16, 30)}, "shape 16x30 disagrees with the item's proj:shape [20, 30]"),
        ({"origin": 505000.0}, "disagrees with the item's proj:transform"),
    ],
)
def test_an_inconsistent_local_asset_is_refused(tmp_path: Path, kw: dict, fragment: str) -> None:
    assert fragment in (cache.check_local_asset(*_asset(tmp_path, **kw)) or "")


def test_a_missing_truncated_or_foreign_local_asset_is_refused(tmp_path: Path) -> None:
    href, asset, item = _asset(tmp_path)
    data = Path(href).read_bytes()
    Path(href).write_bytes(data[: len(data) * 2 // 3])
    assert "truncated file" in (cache.check_local_asset(href, asset, item) or "")
    Path(href).write_text("<html>404</html>")
    assert "not recognized" in (cache.check_local_asset(href, asset, item) or "")
    Path(href).unlink()
    assert "No such file" in (cache.check_local_asset(href, asset, item) or "")


# --------------------------------------------------------------------------------------------
# Credentials and one-line errors
# --------------------------------------------------------------------------------------------


def test_url_credentials_are_stripped_everywhere() -> None:
    assert strip_userinfo("GET https://u:p@h.example:8443/a?x=1 ok") == "GET https://h.example:8443/a?x=1 ok"
    manifest = {"source": {"url": "https://u:p@h/v1"}, "items": [("s3://k:s@b/x",)], "n": 3}
    assert redact_credentials(manifest) == {"source": {"url": "https://h/v1"}, "items": [("s3://b/x",)], "n": 3}
    record = logging.LogRecord("pipeline", logging.INFO, "", 0, "source %s", ("http://a:b@127.0.0.1/?sig=z",), None)
    RedactCredentials().filter(record)
    assert record.getMessage() == "source http://127.0.0.1/?<redacted>"


def test_report_error_gives_one_line_and_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert report_error(ConfigError("config x.yaml: key: bad")) == 2
    assert report_error(SearchError("cannot reach imagery source http://u:p@h/")) == 1
    assert report_error(PermissionError(13, "Permission denied", "/sys/out")) == 2
    assert report_error(ZeroDivisionError("division by zero")) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "error: config x.yaml: key: bad",
        "error: cannot reach imagery source http://h/",
        "error: cannot use /sys/out: Permission denied; check the path and its permissions",
        "error: internal error (ZeroDivisionError: division by zero); this is a bug: run again with --debug "
        "for the traceback and report it",
    ]
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError as exc:
        assert report_error(exc, debug=True) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and err.splitlines()[-1].endswith("report it with the traceback above")


def test_assess_refuses_a_folder_a_run_is_writing_or_was_killed_in(tmp_path: Path) -> None:
    from pipeline.assess import sample_run

    (tmp_path / "manifest.json").write_text("{}\n")
    (tmp_path / INCOMPLETE_MARKER).write_text(json.dumps({"pid": 1, "started": "2024-01-01T00:00:00+00:00"}))
    with pytest.raises(ConfigError, match=f"{INCOMPLETE_MARKER}: a monitor run started 2024-01-01"):
        sample_run(tmp_path)
