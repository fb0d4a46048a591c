"""Ctrl-C that is never lost: the command line's SIGINT handler, and the checkpoints that honour it.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when SIGINT arrives.
When that is a finaliser (``__del__`` of a ``distributed`` future collected during the run), the
interpreter prints "Exception ignored in ..." and drops the exception: the run went on and
published its bulletin with exit status 0 (2 of about 10 interrupts just after detection, in an
outside test). :func:`install` puts a handler in place that also records the interrupt;
:func:`raise_if_interrupted` re-raises it at the points where a run is about to commit to more
work (before the outputs are written), and the command line checks once more when the command
returns. The handler also quietens ``distributed``'s and ``tornado``'s loggers: what they report
while the cluster is torn down after an interrupt (a worker that failed to start, a callback of a
closed loop) is noise beside the run's one line.

Only the command line installs the handler; a notebook or a test calling :func:`pipeline.run.run_monitor`
keeps Python's own, and :func:`raise_if_interrupted` then never raises.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

__all__ = ["install", "interrupted", "raise_if_interrupted", "reset"]

_INTERRUPTED = threading.Event()
_QUIET_ON_INTERRUPT = ("distributed", "tornado", "asyncio")


def _on_sigint(signum: int, frame: Any) -> None:
    _INTERRUPTED.set()
    for name in _QUIET_ON_INTERRUPT:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    raise KeyboardInterrupt


def install() -> None:
    """Handle SIGINT as above (main thread only; a SIGINT already ignored stays ignored)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_sigint)


def interrupted() -> bool:
    """Whether SIGINT arrived since :func:`install` (or the last :func:`reset`)."""
    return _INTERRUPTED.is_set()


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if SIGINT arrived, even if the exception it raised was lost."""
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt


def reset() -> None:
    """Forget an interrupt (tests)."""
    _INTERRUPTED.clear()
