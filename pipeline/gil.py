"""The interpreter's thread switch interval, shortened while a run's client process hosts a
local scheduler next to its own Python work.

A local cluster's scheduler and nannies run on an event loop thread of the run's own process.
While another thread runs Python (a run building its AOIs' graphs, fetching, making sites),
each step of that loop waits for the GIL, up to ``sys.getswitchinterval()`` (5 ms by
default) a time (with ``--scheduler ADDRESS`` the client's own event loop, which sends the
graphs and receives the results, waits the same way). Measured on 2 cores (``distributed``
2026.8, 2 workers, fork server): a local cluster started in 1.8-2.6 s with the process idle,
in 4.5-6.2 s with one thread of the process running pure Python, and in 1.9-2.5 s with that
thread running and the interval at 0.5 ms; eight AOIs in flight together took 75.2 s at 5 ms
and 67.1 s at 0.5 ms (one after another: 64.7 and 63.9 s). :func:`responsive` sets
:data:`SWITCH_INTERVAL_S` for the duration of a run and restores the previous value when the
last run of the process ends.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

#: Seconds a thread may hold the GIL before another that waits for it gets it, during a run.
SWITCH_INTERVAL_S = 0.0005

_lock = threading.Lock()
_holders = 0
_previous = 0.0


@contextlib.contextmanager
def responsive(interval_s: float = SWITCH_INTERVAL_S) -> Iterator[None]:
    """``sys.setswitchinterval(interval_s)`` inside the block, unless the interval is already
    shorter; restored when the last such block of the process ends (runs may overlap in
    one process: tests, notebooks)."""
    global _holders, _previous
    with _lock:
        if _holders == 0:
            _previous = sys.getswitchinterval()
            sys.setswitchinterval(min(interval_s, _previous))
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                sys.setswitchinterval(_previous)
