"""The run's ``dask.distributed`` client: a local cluster, or ``--scheduler ADDRESS``.

:func:`dask_client` opens and closes it around a block. :class:`ClientHandle` starts a local
cluster off the critical path of a run, in a background thread while the run searches,
fetches and builds its graphs (none of which needs it), and closes it when the results are
in. Closing it in the background too, while the outputs were written, made a worker log
"Failed to communicate with scheduler during heartbeat" with a traceback in 4 of 15 runs
(the shutdown race of dask/distributed#7105; none in 12 closing in the foreground), so the
close stays in the foreground. The local workers are forks of a fork server that has
imported the task modules once (:func:`_worker_processes`). The graphs a run submits are
prepared without a client, while the cluster starts (:mod:`pipeline.graphs`).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Iterator
from typing import Any

import dask
import odc.stac
from distributed import Client, LocalCluster
from distributed.utils import get_mp_context

from . import workers
from .config import MonitorConfig
from .errors import MonitorError
from .http import redact
from .workers import fork_server_preload as _preload_modules

log = logging.getLogger("pipeline")

__all__ = ["ClientHandle", "configure_workers", "dashboard_link", "dask_client", "wait_stopped", "worker_work"]


@contextlib.contextmanager
def dask_client(cfg: MonitorConfig, *, stop_later: bool = False) -> Iterator[Any]:
    """A client of ``cfg.dask.scheduler``, or of a new local cluster (closed on exit).

    ``stop_later``: the local cluster's fork server (:func:`_worker_processes`) is stopped in
    the background on exit; :func:`wait_stopped` waits for it.

    Raises
    ------
    MonitorError
        The scheduler cannot be reached (one line naming it). One without workers is joined with a
        warning: its tasks wait for workers to join.
    """
    if cfg.dask.scheduler:
        try:
            client = Client(cfg.dask.scheduler, timeout=f"{cfg.dask.connect_timeout_s}s",
                            direct_to_workers=cfg.dask.direct_to_workers)
        except OSError as exc:
            raise MonitorError(
                f"cannot connect to Dask scheduler {cfg.dask.scheduler} within {cfg.dask.connect_timeout_s:g} s: "
                f"{exc}; check --scheduler (or raise dask.connect_timeout_s)"
            ) from None
        if not client.scheduler_info().get("workers"):
            # Not refused: dask-jobqueue workers may still be queued, and an adaptive cluster starts
            # them only once tasks arrive. Said, since the run then waits silently for them (an
            # outside tester's run printed nothing for 5 minutes).
            log.warning("dask: scheduler %s has no workers yet: the run's tasks wait until one joins (start them "
                        "with dask worker %s; an adaptive cluster starts them when the tasks arrive)",
                        cfg.dask.scheduler, cfg.dask.scheduler)
        log.info("dask: joined scheduler %s (%d workers)", cfg.dask.scheduler, len(client.scheduler_info()["workers"]))
        try:
            yield client
        finally:
            # the client's timeout is the connect timeout; closing keeps its own budget
            client.close(timeout=max(20.0, 2 * cfg.dask.connect_timeout_s))
        return
    quiet = _QuietClose()
    with contextlib.ExitStack() as stack:  # unwinds: quiet.start, client, cluster, quiet.stop, fork server
        env = stack.enter_context(_worker_processes(cfg.dask.start_method, stop_later=stop_later))
        stack.callback(quiet.stop)
        cluster = stack.enter_context(_local_cluster(cfg, env=env))  # closed on exit, after the client
        # Not ``with Client(...)``: its exit resets a context variable set where it entered,
        # and a ClientHandle opens the client in one thread and closes it in another.
        # Results come straight from the workers unless the config says otherwise. Through the
        # scheduler they were pickled with protocol 4 (its "common denominator" for every comm),
        # so each array came as a copy inside the pickle, both in the worker and here: 50 MB of
        # pickles for the 480 x 640 px benchmark AOI. Direct, protocol 5 sends the arrays' own
        # memory (out-of-band buffers).
        direct = cfg.dask.direct_to_workers
        client = Client(cluster, direct_to_workers=True if direct is None else direct)
        stack.callback(client.close)
        stack.callback(quiet.start)
        log.info("dask: local cluster, %d workers x %d threads", cfg.dask.n_workers, cfg.dask.threads_per_worker)
        yield client


class _QuietClose:
    """The local scheduler's own loggers silenced while its cluster closes.

    A progress feed (:class:`pipeline.progress.SchedulerProgress`) learns that its client
    left only when it next wakes (every 0.5 s); a scheduler closing sooner cancels it asleep,
    and ``distributed`` logs that cancellation as an error with a traceback on the run's
    stderr. Forked workers close in about 0.05 s, so the scheduler now closes that soon: 6 and
    5 of the 7 local-catalogue cases of the slow command-line tests printed it in two runs,
    none in three runs since (and ``tests/test_cluster.py`` reproduces it). Only the closing is
    silenced; the results are in by then."""

    LOGGERS = ("distributed.scheduler", "distributed.core", "distributed.utils", "distributed.comm")

    def __init__(self) -> None:
        self._levels: dict[str, int] = {}

    def start(self) -> None:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.CRITICAL)

    def stop(self) -> None:
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        self._levels.clear()


_START_METHOD = "distributed.worker.multiprocessing-method"
_fork_lock = threading.Lock()
_fork_clusters = 0  # local clusters of this process using the fork server now
_fork_config: Any = None
_fork_stops: list[threading.Thread] = []  # fork servers stopping in the background
_fork_preload: list[str] = []  # the fork server's preload list before the first cluster set ours


@contextlib.contextmanager
def _worker_processes(method: str, *, stop_later: bool = False) -> Iterator[dict[str, str] | None]:
    """``distributed``'s worker start method set to ``method`` for a local cluster; yields the
    environment to pass to the workers (``None``: they inherit it). ``stop_later``: the server
    is stopped in the background (:func:`_stop_forkserver`).

    ``forkserver`` (where the platform has it; else ``spawn``): the standard library's fork
    server imports ``distributed`` and :data:`pipeline.workers.WORKER_MODULES` once, and each
    worker is a fork of it instead of a fresh interpreter importing them itself. The setting
    is held while any such cluster of the process runs (workers the nanny restarts are forks
    too). The server is started afresh for the first cluster (or is the one the command line
    started for this run moments before, :func:`pipeline.workers.take_fork_server`) and stopped
    when the last one closes, so its code and environment are those of the run: a server left running would
    fork the workers of a later run (a notebook, a test session) with the code and the
    environment it started with (a fork keeps variables unset since; the nanny only adds and
    overrides). The current environment is passed too, for variables set while a cluster
    runs. The server is a fresh interpreter with the run's working directory and environment:
    it imports ``pipeline`` from there (working directory, ``PYTHONPATH``, the installed
    package), not from entries added to ``sys.path`` at run time; for those, use ``spawn``.

    ``spawn``: set while the cluster starts only, so that it never changes the setting a fork
    server cluster of the same process holds."""
    global _fork_clusters, _fork_config
    if method != "forkserver" or "forkserver" not in multiprocessing.get_all_start_methods():
        yield None  # spawn: set by _local_cluster while the cluster starts
        return
    with _fork_lock:
        if _fork_clusters == 0:
            setting = dask.config.set({_START_METHOD: "forkserver"})
            try:
                # distributed sets its own preload list on first use; this call has it do so
                # now, so that it does not replace the list below later.
                ctx = get_mp_context()
                # The list is the process's (one fork server): restored when the last cluster
                # closes, so that other code's fork server later preloads what it did before.
                early = workers.take_fork_server()  # the command line started it (its imports done meanwhile)
                if early is None:
                    _stop_forkserver()  # one left by other code would fork with its environment and code
                    _fork_preload[:] = _preload_modules()
                else:
                    _fork_preload[:] = early
                ctx.set_forkserver_preload(list(workers.FORK_SERVER_PRELOAD))
            except BaseException:
                setting.__exit__(None, None, None)
                raise
            _fork_config = setting
        _fork_clusters += 1
    try:
        yield dict(os.environ)
    finally:
        with _fork_lock:
            _fork_clusters -= 1
            if _fork_clusters == 0:
                _fork_config.__exit__(None, None, None)
                _fork_config = None
                _stop_forkserver(background=stop_later)
                get_mp_context().set_forkserver_preload(list(_fork_preload))


def _stop_forkserver(*, background: bool = False) -> None:
    """Stop the standard library's fork server, if running, and wait for it (it has reaped the
    workers it forked, so their CPU time counts as this process's children's).

    ``background``: wait in a thread instead (:func:`wait_stopped` joins it). The server's
    exit is its interpreter's teardown of the modules it imported, 0.4-0.5 s here, which a run
    need not wait for before it writes its outputs. The stop holds the server's lock, so a
    cluster started meanwhile waits for it and starts a fresh server.

    Left running while a process it forked is alive (a worker a failed close left behind, or
    other code's): the server exits only once every fork has closed its end of the server's
    pipe, so the wait would not return. The stop is a private method of the server
    (``multiprocessing.forkserver._forkserver._stop``, CPython 3.8-3.13); without it the server
    is left running."""
    try:
        import multiprocessing.forkserver as forkserver
    except ImportError:  # a platform without it
        return
    alive = [p for p in multiprocessing.active_children()
             if getattr(getattr(p, "_popen", None), "method", None) == "forkserver"]
    if alive:
        log.warning("dask: %d process(es) forked by the fork server still run; leaving the server running", len(alive))
        return
    stop = getattr(getattr(forkserver, "_forkserver", None), "_stop", None)
    if stop is None:
        return
    if not background:
        stop()
        return
    thread = threading.Thread(target=stop, name="kp-forkserver-stop", daemon=True)
    thread.start()
    _fork_stops.append(thread)


def wait_stopped() -> None:
    """Wait for the fork servers stopping in the background (:func:`_stop_forkserver`)."""
    while _fork_stops:
        _fork_stops.pop().join()


def _local_cluster(cfg: MonitorConfig, *, env: dict[str, str] | None) -> LocalCluster:
    """The local cluster; ``env`` ``None``: its workers are spawned (the start method set while
    it starts only), else forked by the fork server :func:`_worker_processes` set up."""
    spawn = dask.config.set({_START_METHOD: "spawn"}) if env is None else contextlib.nullcontext()
    with spawn:
        return LocalCluster(
            n_workers=cfg.dask.n_workers,
            threads_per_worker=cfg.dask.threads_per_worker,
            memory_limit=cfg.dask.memory_limit,
            processes=True,
            # Random free ports for the scheduler and its HTTP server (the dashboard when bokeh
            # is installed): runs side by side on one machine never collide on 8786/8787.
            scheduler_port=0,
            dashboard_address="127.0.0.1:0",
            host="127.0.0.1",
            silence_logs=_worker_log_level(),
            env=env,
            # spawned workers ignore SIGINT too (forked ones already do: the fork server preloads it);
            # None: distributed's configured worker preloads, which an explicit list would replace
            preload=None if env is not None else [*(dask.config.get("distributed.worker.preload") or []),
                                                  "pipeline.worker_signals"],
        )


def _worker_log_level() -> int:
    """The level of ``distributed``'s logging in the local cluster's workers (and of its stderr
    handler while they run): ``CRITICAL`` when this process shows ``distributed`` at ``ERROR``
    or less (the command line without ``-v``), else ``ERROR``. A worker's errors are
    ``distributed``'s own bookkeeping: what a task raised reaches the client, which reports the
    AOI in one line, and the nanny (in this process) says when a worker is killed. Shown, they
    were tracebacks on a run's stderr: "failed during get data" and ``CommClosedError`` when the
    run is interrupted and closes its cluster under working workers, "Failed to communicate
    with scheduler during heartbeat" under load (an outside tester's runs)."""
    quiet = logging.getLogger("distributed").getEffectiveLevel() >= logging.ERROR
    return logging.CRITICAL if quiet else logging.ERROR


def configure_workers(client: Any, cfg: MonitorConfig, *, wait: bool = False) -> None:
    """GDAL options to every worker, and the modules the tasks need imported there now, while
    this process searches and builds the graphs (:func:`pipeline.workers.import_modules`).

    ``wait``: return only once every worker has imported them. :class:`ClientHandle` waits:
    its client is handed out the moment it is ready, often with a graph already built, and
    tasks arriving while a fresh worker still imports them lost the worker (its scheduler
    connection dropped, the run hung with no worker) in 2 of 7 runs of the incremental test;
    0 of 12 once the imports come first."""
    # GDAL options must reach the worker processes, where the reads happen.
    options: dict[str, Any] = dict(cfg.gdal_options)
    odc.stac.configure_rio(cloud_defaults=False, client=client, **options)
    client.run(workers.import_modules, wait=wait)


def dashboard_link(client: Any) -> str | None:
    """The scheduler's dashboard address (credentials and query stripped), or ``None``
    when it serves none."""
    try:
        if "dashboard" not in client.scheduler_info().get("services", {}):
            return None
        return redact(str(client.dashboard_link))
    except (KeyError, AttributeError, OSError):
        return None


_WORK_KEYS = ("task_cpu_s", "task_wait_s", "transferred_mb")  # what worker_work reports


def worker_work(client: Any) -> dict[str, float]:
    """What the workers of a local cluster did since they started (a run's own cluster: the
    run's work): ``task_cpu_s``, CPU seconds their threads spent running tasks;
    ``task_wait_s``, seconds those tasks ran without a core (reading files, waiting for a core
    or the GIL); ``transferred_mb``, data moved from one worker to another. From
    ``distributed``'s own per-worker counters. Empty when they cannot be read (diagnostics:
    never the run's failure)."""
    try:
        totals = client.run(_work_totals)
    except Exception as exc:  # noqa: BLE001 - a worker gone or an older distributed
        log.debug("dask: worker counters not read: %s", exc)
        return {}
    summed = {key: round(sum(t[key] for t in totals.values()), 2) for key in _WORK_KEYS}
    return summed if totals else {}


def _work_totals(dask_worker: Any) -> dict[str, float]:
    """:func:`worker_work` of one worker (run there by ``client.run``)."""
    seconds: dict[str, float] = {}
    for key, value in dask_worker.digests_total.items():
        if isinstance(key, tuple) and key[0] == "execute" and key[-1] == "seconds":
            seconds[key[-2]] = seconds.get(key[-2], 0.0) + float(value)
    moved = sum(entry.get("total", 0) for entry in dask_worker.transfer_incoming_log)
    return {"task_cpu_s": seconds.get("thread-cpu", 0.0), "task_wait_s": seconds.get("thread-noncpu", 0.0),
            "transferred_mb": moved / 1e6}


class ClientHandle:
    """:func:`dask_client` (workers configured, :func:`configure_workers`) opened in the
    background.

    ``--scheduler ADDRESS`` is joined at once, in the constructor: an unreachable scheduler
    is bad input, found before the run writes anything. A local cluster is started in a
    thread; :meth:`get` waits for it (and raises what starting it raised). :meth:`release`
    closes it; its fork server exits in the background. Leaving the ``with`` block closes it if
    nobody did and waits for the fork server, so no process outlives the run.

    Use: ``with ClientHandle(cfg) as handle:`` build the graphs (the cluster starts
    meanwhile), ``handle.get().compute(...)`` and gather, ``handle.release()``, then write
    the outputs.
    """

    def __init__(self, cfg: MonitorConfig, *, on_ready: Any = None) -> None:
        self._cfg = cfg
        self._on_ready = on_ready
        self._stack = contextlib.ExitStack()
        self._client: Any = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        if cfg.dask.scheduler:
            self._start()
            if self._error is not None:
                raise self._error
        else:
            threading.Thread(target=self._start, name="kp-dask-start", daemon=True).start()

    def _start(self) -> None:
        try:
            client = self._stack.enter_context(dask_client(self._cfg, stop_later=True))
            configure_workers(client, self._cfg, wait=True)
            self._client = client
            if self._on_ready is not None:
                self._on_ready(client)
        except BaseException as exc:  # re-raised by get() in the thread that needs the client
            self._error = exc
        finally:
            self._ready.set()

    def get(self) -> Any:
        """The client, once the cluster has started."""
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self._client

    def release(self) -> None:
        """Close the client and its local cluster (a second call does nothing: the exit stack is
        empty; nothing may compute after this)."""
        self._ready.wait()
        try:
            self._stack.close()
        except Exception as exc:  # the run's results are in hand; a cluster slow to stop is not its failure
            log.warning("dask: closing the cluster: %s", exc)

    def __enter__(self) -> ClientHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        wait_stopped()
