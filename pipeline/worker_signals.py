"""Preloaded by the local cluster's fork server, and a worker preload of its spawned workers:
the local Dask workers ignore SIGINT.

Ctrl-C in a terminal sends SIGINT to every process of the foreground process group, the local
cluster's worker processes included. The client handles it (it closes the cluster, writes
nothing more and exits with status 130); each worker also raised ``KeyboardInterrupt`` in its
event loop and printed two tracebacks, about 90 lines over a run's one-line message. The
workers need not hear Ctrl-C: the nanny closes them when the client closes the cluster, and
they exit on their own when the client's process dies (``distributed`` watches the parent).

The standard library's fork server imports its preload modules first, then ignores SIGINT
itself, and restores in each fork the handler it found before that: set here, SIG_IGN is
what the workers start with, and ``asyncio`` then installs no handler of its own. Imported
anywhere but in the fork server (a doctest run, a notebook), the module changes nothing; and
:mod:`pipeline.cluster` puts back the preload list it found when its last cluster closes, so a
fork server other code starts later does not preload it.

Spawned workers (``dask.start_method: spawn``) are fresh interpreters: ``asyncio`` installs its
SIGINT handler as each starts, and Ctrl-C printed a ``KeyboardInterrupt`` traceback per worker.
:func:`pipeline.cluster.dask_client` names this module as their ``distributed`` worker preload:
:func:`dask_setup` then ignores SIGINT in the worker's process, once the worker starts (a Ctrl-C
in the second or so a spawned interpreter takes to get there is still heard).
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import threading
from types import FrameType
from typing import Any

__all__ = ["dask_setup", "in_fork_server"]


def in_fork_server() -> bool:
    """Whether this import runs in ``multiprocessing.forkserver.main`` (the server's preloads)."""
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        code = frame.f_code
        if code.co_name == "main" and code.co_filename.replace("\\", "/").endswith("multiprocessing/forkserver.py"):
            return True
        frame = frame.f_back
    return False


if in_fork_server() and threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def dask_setup(worker: Any) -> None:
    """``distributed``'s hook for a worker preload: ignore SIGINT in a worker process (a child
    that ``multiprocessing`` started); a worker in the client's own process keeps it."""
    if threading.current_thread() is threading.main_thread() and multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
