"""Preloaded by the local cluster's fork server: the Dask workers it forks ignore SIGINT.

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
"""

from __future__ import annotations

import signal
import sys
import threading

__all__ = ["in_fork_server"]


def in_fork_server() -> bool:
    """Whether this import runs in ``multiprocessing.forkserver.main`` (the server's preloads)."""
    frame = sys._getframe()
    while frame is not None:
        code = frame.f_code
        if code.co_name == "main" and code.co_filename.replace("\\", "/").endswith("multiprocessing/forkserver.py"):
            return True
        frame = frame.f_back
    return False


if in_fork_server() and threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
