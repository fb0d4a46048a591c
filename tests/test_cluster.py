"""The run's Dask client (pipeline.cluster): started and closed off the critical path, its
workers forked with the run's code and environment, and no process left behind."""

from __future__ import annotations

import contextlib
import multiprocessing.forkserver
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import psutil
import pytest

from pipeline import cluster as cluster_mod
from pipeline import workers
from pipeline.cluster import ClientHandle
from pipeline.config import MonitorConfig
from tests.scale_fixtures import config_dict


def _cfg(tmp_path: Path, **sections: Any) -> MonitorConfig:
    return MonitorConfig.model_validate(config_dict(
        source=str(tmp_path / "catalog.json"), aois=[tmp_path / "aoi.geojson"], out=tmp_path / "out",
        cache=tmp_path / "cache", n_workers=1, threads=1, **sections))


def _sigint_handler() -> str:
    import signal

    handler = signal.getsignal(signal.SIGINT)
    return "ignored" if handler is signal.SIG_IGN else str(handler)


def _dataset() -> object:
    import numpy as np
    import xarray as xr

    return xr.Dataset({"a": (("y", "x"), np.ones((1024, 1024)))})


def test_local_cluster_starts_in_the_background_and_no_worker_outlives_it(tmp_path: Path) -> None:
    ready: list[object] = []
    with ClientHandle(_cfg(tmp_path), on_ready=ready.append) as handle:
        client = handle.get()
        assert ready == [client]  # told once, with the client, when it is up
        assert client.submit(sum, [1, 2]).result() == 3
        # Ctrl-C is the client's: the workers ignore it (pipeline.worker_signals), this process does not.
        assert set(client.run(_sigint_handler).values()) == {"ignored"}
        assert _sigint_handler() != "ignored"
        pids = list(client.run(lambda: __import__("os").getpid()).values())
        assert pids and all(psutil.pid_exists(p) for p in pids)
        server = multiprocessing.forkserver._forkserver._forkserver_pid
        assert server is not None and psutil.pid_exists(server)
        handle.release()  # the results are in: close now (the fork server exits in the background)
        handle.release()  # and only once
    # the worker processes are gone, and the fork server has exited and been reaped
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not psutil.pid_exists(server) and not cluster_mod._fork_stops
    assert multiprocessing.forkserver._forkserver._forkserver_pid is None
    # A fork server other code starts later preloads what it did before (distributed's list), not ours.
    assert "pipeline.worker_signals" not in cluster_mod._preload_modules()


def test_a_local_clusters_results_come_from_the_workers_with_their_arrays_out_of_the_pickle(
        tmp_path: Path, monkeypatch) -> None:
    """Through the scheduler (pickle protocol 4 on its comms) the 8 MB array came inside the
    pickle, copied in the worker and again here; straight from the worker, protocol 5 sends
    the array's own memory beside a pickle of a few kilobytes."""
    received = _pickles_received(_cfg(tmp_path), monkeypatch)
    assert any(n < 10_000 and k == 1 for n, k in received) and all(n < 1_000_000 for n, _ in received), received
    # dask.direct_to_workers: false sends them through the scheduler, as distributed does by default
    received = _pickles_received(_cfg(tmp_path, dask={"direct_to_workers": False}), monkeypatch)
    assert any(n > 8_000_000 and k == 0 for n, k in received), received


def _pickles_received(cfg: MonitorConfig, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Each pickle's length and out-of-band buffer count, as this process unpickled them while
    gathering :func:`_dataset` from a cluster of ``cfg``."""
    import distributed.protocol.pickle as dpickle

    loads = dpickle.loads
    received: list[tuple[int, int]] = []

    def recording(x: bytes, *, buffers: Any = ()) -> object:
        buffers = list(buffers)
        received.append((len(x), len(buffers)))
        return loads(x, buffers=buffers)

    with ClientHandle(cfg) as handle:
        client = handle.get()
        monkeypatch.setattr(dpickle, "loads", recording)
        assert float(client.submit(_dataset).result()["a"].sum()) == 1024 * 1024
        monkeypatch.setattr(dpickle, "loads", loads)
    return received


@pytest.mark.slow  # two clusters
def test_a_cluster_started_while_the_last_fork_server_stops_gets_a_fresh_one(tmp_path: Path) -> None:
    servers = []
    with ClientHandle(_cfg(tmp_path)) as handle:
        assert handle.get().submit(sum, [1, 2]).result() == 3
        servers.append(multiprocessing.forkserver._forkserver._forkserver_pid)
        handle.release()
        # the next cluster starts before this one's fork server is waited for
        with cluster_mod.dask_client(_cfg(tmp_path)) as client:
            assert client.submit(sum, [3, 4]).result() == 7
            servers.append(multiprocessing.forkserver._forkserver._forkserver_pid)
    assert None not in servers and servers[0] != servers[1]
    assert not any(psutil.pid_exists(p) for p in servers)


# Evaluated on the workers through the builtin ``eval``: pickled by reference to builtins, the
# probe imports nothing there (a function of this module would import it, and with it pipeline).
_PROBE = ("(__import__('os').environ.get('KP_TEST_CLUSTER_VAR'), 'pipeline.detect' in __import__('sys').modules, "
          "__import__('signal').getsignal(2) is __import__('signal').SIG_IGN)")


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_workers_have_the_environment_and_code_of_the_run_that_starts_them(tmp_path: Path, monkeypatch,
                                                                          method) -> None:
    raw = config_dict(source=str(tmp_path / "catalog.json"), aois=[tmp_path / "aoi.geojson"], out=tmp_path / "out",
                      cache=tmp_path / "cache", n_workers=1, threads=1, dask={"start_method": method})
    cfg = MonitorConfig.model_validate(raw)
    for value in ("first", "second", None):  # set, changed, then unset between two clusters
        if value is None:
            monkeypatch.delenv("KP_TEST_CLUSTER_VAR")
        else:
            monkeypatch.setenv("KP_TEST_CLUSTER_VAR", value)
        with cluster_mod.dask_client(cfg) as client:
            (state,) = client.run(eval, _PROBE).values()
        assert state[0] == value
        # forked from a server that imported the worker modules; a spawned worker has not yet
        assert state[1] == (method == "forkserver")
        assert state[2]  # Ctrl-C is the client's: forked and spawned workers ignore SIGINT (pipeline.worker_signals)
    # the fork server stops with the last cluster: the next one starts with the code and
    # environment of its run
    assert getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None) is None


def test_worker_work_sums_the_workers_own_counters() -> None:
    import collections
    import types

    digests = {("execute", "read", "thread-cpu", "seconds"): 2.0, ("execute", "mask", "thread-cpu", "seconds"): 1.5,
               ("execute", "read", "thread-noncpu", "seconds"): 0.5, ("execute", "read", "executor", "seconds"): 9.0,
               ("get-data", "network", "seconds"): 7.0, ("execute", "read", "memory-read", "bytes"): 1e9,
               "latency": 0.1}
    moved = collections.deque([{"total": 3_000_000}, {"total": 1_500_000}])
    one = cluster_mod._work_totals(types.SimpleNamespace(digests_total=digests, transfer_incoming_log=moved))
    assert one == {"task_cpu_s": 3.5, "task_wait_s": 0.5, "transferred_mb": 4.5}

    class _Client:
        def run(self, func):  # noqa: ANN001, ANN202
            return {"tcp://a": one, "tcp://b": {"task_cpu_s": 1.0, "task_wait_s": 0.25, "transferred_mb": 0.5}}

    assert cluster_mod.worker_work(_Client()) == {"task_cpu_s": 4.5, "task_wait_s": 0.75, "transferred_mb": 5.0}

    class _Gone:
        def run(self, func):  # noqa: ANN001, ANN202
            raise OSError("worker gone")

    assert cluster_mod.worker_work(_Gone()) == {}


def test_a_cluster_that_fails_to_start_fails_where_the_client_is_needed(tmp_path: Path, monkeypatch) -> None:
    @contextlib.contextmanager
    def broken(cfg, **_kw):
        raise RuntimeError("no room for workers")
        yield  # pragma: no cover

    monkeypatch.setattr(cluster_mod, "dask_client", broken)
    with ClientHandle(_cfg(tmp_path)) as handle:  # the constructor does not wait for it
        with pytest.raises(RuntimeError, match="no room for workers"):
            handle.get()
    # and leaving the block does not hang or raise again


def _end_this_worker() -> None:
    import os

    os._exit(1)  # as the kernel's OOM killer or the nanny's memory monitor would end it


def test_an_aoi_whose_tasks_kill_the_workers_fails_alone_with_one_line(tmp_path: Path, monkeypatch) -> None:
    import types

    import pandas as pd

    import pipeline.run as run_mod
    from pipeline.workflow import AOIResult

    cfg = MonitorConfig.model_validate(config_dict(
        source=str(tmp_path / "catalog.json"), aois=[tmp_path / "aoi.geojson"], out=tmp_path / "out",
        cache=tmp_path / "cache", n_workers=2, threads=1))
    jobs = [types.SimpleNamespace(aoi_id=name, cfg=cfg, row=pd.Series({"aoi_id": name, "geometry": None}),
                                  geometry=None) for name in ("heavy", "light")]
    finished: list[str] = []

    def prepare(job, *, result, **_kw):
        work = dask.delayed(_end_this_worker)() if job.aoi_id == "heavy" else dask.delayed(sum)([1, 2])
        return types.SimpleNamespace(job=job, result=result, lazy=(work,), abandon=lambda: None)

    monkeypatch.setattr(run_mod, "prepare_aoi", prepare)
    monkeypatch.setattr(run_mod, "finish_aoi", lambda prepared, computed, **_kw: finished.append(prepared.job.aoi_id))
    # one retry (distributed's default is 3): the heavy task ends two workers, which the nanny
    # restarts as forks of the run's fork server; a task that shared a dying worker is retried
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), cluster_mod.dask_client(cfg) as client:
        results = run_mod.run_aois(client, jobs)
        client.wait_for_workers(2, timeout=30)  # the killed ones restarted (a timeout fails the test)
    heavy, light = results
    assert isinstance(heavy, AOIResult) and light.error is None and finished == ["light"]
    assert heavy.error.startswith("Dask workers died while running its task end_this_worker, ")
    assert "dask.memory_limit: 1GiB" in heavy.error and "acquire.chunk_px (64 px)" in heavy.error
    assert "\n" not in heavy.error


def test_the_fork_server_is_left_running_while_a_process_it_forked_runs(caplog) -> None:
    import time

    ctx = multiprocessing.get_context("forkserver")
    child = ctx.Process(target=time.sleep, args=(30,))
    child.start()
    try:
        t0 = time.perf_counter()
        cluster_mod._stop_forkserver()  # would wait for the child's 30 s
        assert time.perf_counter() - t0 < 5
        assert "still run" in caplog.text
        assert multiprocessing.forkserver._forkserver._forkserver_pid is not None
    finally:
        child.terminate()
        child.join()
    cluster_mod._stop_forkserver()
    assert multiprocessing.forkserver._forkserver._forkserver_pid is None


def test_closing_right_after_a_progress_feed_logs_no_error(tmp_path: Path, caplog) -> None:
    import io
    import logging
    import time

    from pipeline.progress import RunProgress, SchedulerProgress

    progress = RunProgress("lines", stream=io.StringIO(), n_aois=1)
    with caplog.at_level(logging.INFO):
        for _ in range(2):
            with cluster_mod.dask_client(_cfg(tmp_path)) as client:
                future = client.submit(sum, [1, 2])
                watcher = SchedulerProgress(client, [future], aoi_id="a", progress=progress)
                assert future.result() == 3
                time.sleep(0.2)  # the feed is set up and asleep (it wakes every 0.5 s)
                watcher.stop()
            # the scheduler closed while the feed slept: its cancellation is not an error
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text[-2000:]


def test_workers_log_nothing_below_critical_when_the_command_line_is_not_verbose(tmp_path: Path) -> None:
    """Worker-side errors of distributed (its bookkeeping on an interrupt or under load) printed
    tracebacks on a run's stderr; the client reports what matters. With -v they stay at ERROR."""
    import logging

    cfg = _cfg(tmp_path)
    logger = logging.getLogger("distributed")
    saved = logger.level
    try:
        for level, expected in ((logging.ERROR, logging.CRITICAL), (logging.DEBUG, logging.ERROR)):
            logger.setLevel(level)  # as the command line sets it without and with -v
            assert cluster_mod._worker_log_level() == expected
        logger.setLevel(logging.ERROR)
        with cluster_mod.dask_client(cfg) as client:  # distributed silences its stderr handler there
            levels = client.run(lambda: {h.level for h in logging.getLogger("distributed").handlers})
        assert list(levels.values()) == [{logging.CRITICAL}]
    finally:
        logger.setLevel(saved)


def test_a_scheduler_with_no_workers_is_joined_with_a_warning(tmp_path: Path, caplog) -> None:
    """An outside tester's run through a scheduler no worker had joined took the graphs and
    printed nothing for 5 minutes, until killed. It is not refused (dask-jobqueue workers may
    still be queued; an adaptive cluster starts them when tasks arrive), but says so at once.
    A scheduler in this process, with no worker."""
    import logging
    import time

    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, protocol="tcp://", host="127.0.0.1", scheduler_port=0,
                      dashboard_address=None) as bare:
        cfg = MonitorConfig.model_validate(config_dict(
            source=str(tmp_path / "catalog.json"), aois=[tmp_path / "aoi.geojson"], out=tmp_path / "out",
            cache=tmp_path / "cache", n_workers=1, threads=1,
            dask={"scheduler": bare.scheduler_address, "connect_timeout_s": 1}))
        t0 = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="pipeline"), cluster_mod.dask_client(cfg) as client:
            # distributed's default: the workers of a cluster elsewhere may be out of this process's reach
            assert client.direct_to_workers is None
        assert time.monotonic() - t0 < 10
        (line,) = [r.getMessage() for r in caplog.records if "no workers" in r.getMessage()]
        assert bare.scheduler_address in line and "dask worker" in line and "adaptive" in line
        chosen = cfg.model_copy(update={"dask": cfg.dask.model_copy(update={"direct_to_workers": True})})
        with cluster_mod.dask_client(chosen) as client:  # unless the config asks for it
            assert client.direct_to_workers is True


def test_a_bug_before_an_aois_graph_is_raised_not_waited_on(tmp_path: Path, monkeypatch) -> None:
    """An exception in the preparing thread before its own error handling (making the AOI's
    result record) left the main thread waiting forever for that AOI's event: the default suite
    hung for 14 minutes on a test double without ``geometry``. It is now raised."""
    import threading
    import types

    import pandas as pd

    import pipeline.run as run_mod
    from pipeline.workflow import AOIResult

    cfg = MonitorConfig.model_validate(config_dict(
        source=str(tmp_path / "catalog.json"), aois=[tmp_path / "aoi.geojson"], out=tmp_path / "out",
        cache=tmp_path / "cache", n_workers=1, threads=1))
    jobs = [types.SimpleNamespace(aoi_id="a", cfg=cfg, row=pd.Series({"aoi_id": "a"}))]

    def broken(job):  # noqa: ANN001, ANN202 - a stand-in
        raise AttributeError("a bug")

    monkeypatch.setattr(AOIResult, "for_job", staticmethod(broken))
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            run_mod.run_aois(object(), jobs)
        except BaseException as exc:  # noqa: BLE001 - what the run raised
            outcome.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "run_aois hung"
    assert len(outcome) == 1 and isinstance(outcome[0], AttributeError)


def _server_pid() -> int | None:
    return getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None)


_PARENT = "__import__('os').getppid()"  # evaluated on the workers, as _PROBE


@pytest.fixture(autouse=True)
def _no_early_fork_server_left() -> Iterator[None]:
    yield
    workers.stop_fork_server()  # one a failed test left would be taken by the next test's cluster


# The nanny's variables act when an interpreter starts (the hash seed) or loads NumPy (BLAS
# threads): a fork has them only if its server started with them.
_NANNY_VARS = "(hash('abc'), sorted({i['num_threads'] for i in __import__('threadpoolctl').threadpool_info()}))"


_NANNY_ENV = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PYTHONHASHSEED")


def test_a_fork_server_started_early_forks_the_first_clusters_workers_and_stops_with_it(tmp_path: Path,
                                                                                        monkeypatch) -> None:
    # the command line starts it before it imports the run's modules (pipeline.workers.start_fork_server)
    for name in _NANNY_ENV:  # as in a fresh command: no nanny has set them in this process yet
        monkeypatch.delenv(name, raising=False)
    environ = dict(os.environ)
    workers.start_fork_server()
    early = _server_pid()
    assert early is not None and psutil.pid_exists(early)
    assert dict(os.environ) == environ  # the server's variables are its own
    assert cluster_mod._preload_modules() == list(workers.FORK_SERVER_PRELOAD)
    seeded = subprocess.run([sys.executable, "-c", "print(hash('abc'))"], env={**os.environ, "PYTHONHASHSEED": "6640"},
                            capture_output=True, text=True, check=True).stdout.strip()
    with ClientHandle(_cfg(tmp_path)) as handle:
        client = handle.get()
        assert set(client.run(eval, _PARENT).values()) == {early}  # its forks, not a second server's
        (state,) = client.run(eval, _PROBE).values()
        assert state[1] and state[2]  # the worker modules imported; SIGINT ignored
        # distributed's hash seed and one BLAS/OpenMP thread, as in workers its nanny starts
        # (the server was started before any nanny set them in this process)
        assert list(client.run(eval, _NANNY_VARS).values()) == [(int(seeded), [1])]
        handle.release()
    assert _server_pid() is None and not psutil.pid_exists(early)
    # other code's server preloads what it would have without this one (distributed's list)
    assert "pipeline.worker_signals" not in cluster_mod._preload_modules()
    assert not workers._early


def test_an_early_fork_server_no_cluster_took_is_killed() -> None:
    # a run refused before its cluster started: the command does not wait for the server's
    # imports (it has forked nothing, and holds the command's stdout and stderr)
    workers.start_fork_server()
    early = _server_pid()
    assert early is not None
    workers.stop_fork_server()
    assert _server_pid() is None and not psutil.pid_exists(early)  # killed and reaped before it returns
    assert "pipeline.worker_signals" not in cluster_mod._preload_modules() and not workers._early
    workers.stop_fork_server()  # nothing left to stop


@pytest.mark.parametrize("change", ["a variable unset", "a nanny variable changed"])
def test_an_early_fork_server_whose_environment_changed_is_not_used(tmp_path: Path, monkeypatch, change) -> None:
    # its forks would keep the unset variable, or the nanny's old value (BLAS threads act when
    # NumPy loads): the cluster starts a fresh server, as with any server it did not start
    monkeypatch.setenv("KP_TEST_CLUSTER_VAR", "set when the server started")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    workers.start_fork_server()
    early = _server_pid()
    assert early is not None and workers._early
    if change == "a variable unset":
        monkeypatch.delenv("KP_TEST_CLUSTER_VAR")
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
    with cluster_mod.dask_client(_cfg(tmp_path)) as client:
        (state,) = client.run(eval, _PROBE).values()
        assert state[0] == (None if change == "a variable unset" else "set when the server started") and state[1]
        assert set(client.run(eval, _PARENT).values()) != {early}
    assert not psutil.pid_exists(early) and _server_pid() is None
