"""What a run sets up on each Dask worker besides GDAL's options (:func:`pipeline.run.configure_workers`).

Kept apart from :mod:`pipeline.run` so that a worker unpickling :func:`import_modules` imports
this small module only, not the run's outputs and bulletin.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from typing import Any

#: What the AOIs' tasks run on the workers: reading (odc-stac's loader, its errors naming the
#: file: :mod:`pipeline.read_errors`), masking, composites, detection and the incremental state.
WORKER_MODULES = ("odc.loader", "pipeline.read_errors", "pipeline.preprocess", "pipeline.composites", "pipeline.detect",
                  "pipeline.state")
#: What the local cluster's fork server imports once; each worker is a fork of it
#: (:func:`pipeline.cluster._worker_processes`). :mod:`pipeline.worker_signals`: the forks ignore SIGINT.
FORK_SERVER_PRELOAD = ("pipeline.worker_signals", "distributed", *WORKER_MODULES)

#: The fork server start_fork_server started: its pid, the preload list it replaced, the names
#: of its environment's variables and the nanny's variables it started with.
_early: dict[str, Any] = {}
_early_lock = threading.Lock()


async def import_modules(names: Sequence[str] = WORKER_MODULES) -> None:
    """Import ``names`` in a thread of the worker (its event loop keeps answering meanwhile).

    A fresh worker process otherwise imports them when its first task arrives (about 2 s of
    CPU), which is after the client has searched, fetched and built the AOIs' graphs: in a
    short run, such as a quarterly re-run, a second or two of the critical path. Run through
    ``Client.run(import_modules, wait=False)`` as soon as the cluster is up, the import
    overlaps the client's own work.
    """

    def load() -> None:
        for name in names:
            importlib.import_module(name)

    await asyncio.to_thread(load)


def start_fork_server() -> None:
    """Start the local cluster's fork server now, while this process still imports the run's
    modules: the command line calls it once it has read a configuration that asks for a local
    cluster with ``dask.start_method: forkserver``, before it imports :mod:`pipeline.run`.

    The server's own imports (:data:`FORK_SERVER_PRELOAD`, about 1.3-1.6 s of CPU) then run
    on the core the client's imports (about 2 s, one core) leave idle, instead of when the
    run's cluster starts, next to the run's search, fetch and graph building. The first local
    cluster of the process takes this server (:func:`take_fork_server`) instead of starting
    its own; it forks the workers as any server would, and is stopped when that cluster closes.

    The server starts with the variables ``distributed``'s nanny sets before it starts a
    worker process (:func:`_pre_spawn_environ`: one thread for OpenMP, MKL and OpenBLAS, the
    hash seed, the allocator's trim threshold). They act when an interpreter starts or loads
    NumPy, so a fork inherits them from its server only: a server started before the nanny
    set them gave each worker as many BLAS threads as the machine has cores and a hash seed
    of its own each run. This process's environment is left as it is (the nanny sets them in
    it when the cluster starts, as before).

    Does nothing where the platform has no fork server, or when a fork server already runs
    (other code's: the cluster decides what to do with it). The server is a fresh interpreter
    with this process's working directory, environment and ``sys.path`` as they are now; the
    cluster passes its workers the environment as it is when they start."""
    import multiprocessing.forkserver as forkserver

    import dask
    from distributed.utils import get_mp_context

    server = getattr(forkserver, "_forkserver", None)
    if _early or "forkserver" not in multiprocessing.get_all_start_methods() or server is None:
        return
    if getattr(server, "_forkserver_pid", None) is not None:
        return
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        get_mp_context()  # distributed sets its own preload list on first use: the list to restore, as the cluster does
    previous = list(getattr(server, "_preload_modules", None) or ["__main__"])
    spawn_env = _pre_spawn_environ()
    forkserver.set_forkserver_preload(list(FORK_SERVER_PRELOAD))
    saved = {name: os.environ.get(name) for name in spawn_env}
    os.environ.update(spawn_env)
    try:
        forkserver.ensure_running()
    except OSError:  # no server: the cluster starts one as it always did
        forkserver.set_forkserver_preload(previous)
        return
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    with _early_lock:
        _early.update(pid=server._forkserver_pid, preload=previous, environ=set(os.environ), spawn_env=spawn_env)


def _pre_spawn_environ() -> dict[str, str]:
    """The variables ``distributed``'s nanny sets in this process just before it starts a
    worker process (``distributed.nanny.pre-spawn-environ``, each overridden by this
    process's own value, and ``PYTHONHASHSEED`` 6640 unless set to another value than 0), as
    ``distributed.nanny.Nanny`` computes them."""
    import dask

    configured = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    env = {name: os.environ.get(name, str(value)) for name, value in configured.items() if value is not None}
    if env.get("PYTHONHASHSEED") in (None, "0"):
        env["PYTHONHASHSEED"] = "6640"
    return env


def take_fork_server() -> list[str] | None:
    """The preload list :func:`start_fork_server` replaced, when the fork server running now
    is the one it started (the caller, the first local cluster, then owns that server and
    restores the list when it stops it); else ``None``, with that list restored. Once only.

    Not taken when a variable of its environment has been unset since (its forks would keep
    it: a cluster passes its workers the variables set and changed since, and cannot unset
    one), or when the nanny's variables have changed since it started (:func:`_pre_spawn_environ`).
    The cluster then stops it and starts a fresh server, as it does with any server it did not
    start."""
    early, running = _claim()
    if early is None:
        return None
    if not running or not early["environ"] <= set(os.environ) or early["spawn_env"] != _pre_spawn_environ():
        _restore(early)
        return None
    return list(early["preload"])


def stop_fork_server() -> None:
    """Stop a server :func:`start_fork_server` started that no cluster took (a run refused
    before its cluster started). It has forked nothing, so it is killed rather than left to
    finish its imports: it holds the command's standard output and error, and a caller reading
    them to the end (a pipe, ``$(...)``) would wait for it. Reaped in the background. Nothing
    when a cluster took it."""
    import multiprocessing.forkserver as forkserver

    early, running = _claim()
    if early is None:
        return
    _restore(early)
    if not running:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(early["pid"], signal.SIGKILL)
    stop = getattr(forkserver._forkserver, "_stop", None)  # type: ignore[attr-defined]  # private (CPython 3.8-3.13)
    if stop is not None:  # closes its pipe and socket, and reaps it
        threading.Thread(target=stop, name="kp-forkserver-stop", daemon=True).start()


def _claim() -> tuple[dict[str, Any] | None, bool]:
    """What :func:`start_fork_server` recorded (``None``: nothing, or already claimed), taken
    by one caller only (a cluster starting in its thread, or the command line's stop); and
    whether the fork server running now is the one it started."""
    import multiprocessing.forkserver as forkserver

    with _early_lock:
        if not _early:
            return None, False
        early = dict(_early)
        _early.clear()
    return early, getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None) == early["pid"]


def _restore(early: dict[str, Any]) -> None:
    import multiprocessing.forkserver as forkserver

    forkserver.set_forkserver_preload(list(early["preload"]))
