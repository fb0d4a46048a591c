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
from collections.abc import Callable, Sequence
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
    worker process (:func:`nanny_environ`: one thread for OpenMP, MKL and OpenBLAS, the
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

    server = _server()
    if _early or "forkserver" not in multiprocessing.get_all_start_methods():
        return
    if not all(hasattr(server, name) for name in ("_forkserver_pid", "_lock", "_stop_unlocked")):
        return  # private (CPython 3.8-3.13): without them the server could not be checked or killed
    if server._forkserver_pid is not None:
        return
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        get_mp_context()  # distributed sets its own preload list on first use: the list to restore, as the cluster does
    previous = fork_server_preload()
    spawn_env = nanny_environ()
    forkserver.set_forkserver_preload(list(FORK_SERVER_PRELOAD))
    names = set(os.environ)  # this process's own variables (the nanny's are checked apart)
    saved = {name: os.environ.get(name) for name in spawn_env}
    os.environ.update(spawn_env)
    try:
        forkserver.ensure_running()
        with _early_lock:
            _early.update(pid=server._forkserver_pid, preload=previous, environ=names, spawn_env=spawn_env)
    except OSError:  # no server: the cluster starts one as it always did
        forkserver.set_forkserver_preload(previous)
    except BaseException:  # Ctrl-C: a server started and not recorded would outlive the command
        _kill(server, getattr(server, "_forkserver_pid", None))
        forkserver.set_forkserver_preload(previous)
        raise
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def nanny_environ() -> dict[str, str]:
    """The variables ``distributed``'s nanny sets in this process just before it starts a
    worker process, as ``distributed.nanny.Nanny`` computes them: those of the configuration's
    ``distributed.nanny.pre-spawn-environ``, each overridden by this process's own value, and
    ``PYTHONHASHSEED`` 6640 unless that configuration gives it another value than 0 (the
    process's own ``PYTHONHASHSEED`` does not count)."""
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
    one), or when the nanny's variables have changed since it started (:func:`nanny_environ`).
    It is then killed (it has forked nothing), and the cluster starts a fresh server."""

    def usable(early: dict[str, Any]) -> bool:
        return (getattr(_server(), "_forkserver_pid", None) == early["pid"] and early["environ"] <= set(os.environ)
                and early["spawn_env"] == nanny_environ())

    early, taken = _claim(usable)
    if early is None:
        return None
    if taken:
        return list(early["preload"])
    _kill(_server(), early["pid"])
    return None


def stop_fork_server() -> None:
    """Stop a server :func:`start_fork_server` started that no cluster took (a run refused
    before its cluster started). It has forked nothing, so it is killed rather than left to
    finish its imports: it holds the command's standard output and error, and a caller reading
    them to the end (a pipe, ``$(...)``) would wait for it. Nothing when a cluster took it."""
    early, _taken = _claim(lambda early: False)
    if early is not None:
        _kill(_server(), early["pid"])


def _claim(take: Callable[[dict[str, Any]], bool]) -> tuple[dict[str, Any] | None, bool]:
    """What :func:`start_fork_server` recorded, for one claimant only (a cluster's
    :func:`take_fork_server`, or the command line's :func:`stop_fork_server`): ``None`` when
    there is nothing or another took it; and whether ``take(record)`` kept the server. If not,
    the preload list it replaced is restored, under the same lock: a cluster that lost the claim
    then reads that list, not the server's, as the one to restore."""
    import multiprocessing.forkserver as forkserver

    with _early_lock:
        if not _early:
            return None, False
        early = dict(_early)
        _early.clear()
        taken = take(early)
        if not taken:
            forkserver.set_forkserver_preload(list(early["preload"]))
        return early, taken


def _server() -> Any:
    """The standard library's fork server (``multiprocessing.forkserver._forkserver``, private)."""
    import multiprocessing.forkserver as forkserver

    return getattr(forkserver, "_forkserver", None)


def fork_server_preload() -> list[str]:
    """The fork server's preload list now (a private attribute, CPython 3.8-3.13; the standard
    library's default ``["__main__"]`` where it is missing)."""
    return list(getattr(_server(), "_preload_modules", None) or ["__main__"])


def _kill(server: Any, pid: int | None) -> None:
    """Kill the fork server ``server`` runs if it is still ``pid`` (not one a cluster started
    since), and reap it: its pipe and socket are closed as by its own stop (the private
    ``ForkServer._lock`` and ``_stop_unlocked``, CPython 3.8-3.13; without them it is only
    killed, and exits unreaped with this process)."""
    if server is None or pid is None:
        return
    lock, stop = getattr(server, "_lock", None), getattr(server, "_stop_unlocked", None)
    with lock if lock is not None else contextlib.nullcontext():
        if getattr(server, "_forkserver_pid", None) != pid:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if stop is not None:
            stop()  # at once: the process is dead
