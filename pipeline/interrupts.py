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

SIGTERM (``kill PID``, ``timeout``, a batch scheduler's time limit, ``docker stop``) is handled
the same way: it raises :class:`Terminated`, a ``KeyboardInterrupt``, so the run unwinds as after
Ctrl-C (its cluster closed, its lock and temporaries removed, nothing more published) and the
command ends with ``error: terminated`` and status 143 (128 + 15). Unhandled, SIGTERM ended the
process where it stood, as ``kill -9`` does: the next run recovered, but the local cluster's fork
server and workers were left to notice their parent had gone.

Only the command line installs the handlers; a notebook or a test calling :func:`pipeline.run.run_monitor`
keeps Python's own, and :func:`raise_if_interrupted` then never raises.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

__all__ = ["Terminated", "install", "interrupted", "pending", "raise_if_interrupted", "reset"]

_INTERRUPTED = threading.Event()
_TERMINATED = threading.Event()
_QUIET_ON_INTERRUPT = ("distributed", "tornado", "asyncio")


class Terminated(KeyboardInterrupt):
    """SIGTERM, unwound as Ctrl-C is (see the module docstring)."""


def _on_sigint(signum: int, frame: Any) -> None:
    _INTERRUPTED.set()
    _quieten()
    raise KeyboardInterrupt


def _on_sigterm(signum: int, frame: Any) -> None:
    _INTERRUPTED.set()
    _TERMINATED.set()
    _quieten()
    raise Terminated


def _quieten() -> None:
    for name in _QUIET_ON_INTERRUPT:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def install() -> None:
    """Handle SIGINT and SIGTERM as above (main thread only; a signal already ignored stays
    ignored, and a SIGTERM handler someone else installed stays theirs)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _on_sigint)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def interrupted() -> bool:
    """Whether SIGINT arrived since :func:`install` (or the last :func:`reset`)."""
    return _INTERRUPTED.is_set()


def pending() -> KeyboardInterrupt:
    """The exception of the signal that arrived: :class:`Terminated` for SIGTERM, else ``KeyboardInterrupt``."""
    return Terminated() if _TERMINATED.is_set() else KeyboardInterrupt()


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` (:class:`Terminated` for SIGTERM) if a signal arrived, even if
    the exception it raised was lost."""
    if _INTERRUPTED.is_set():
        raise pending()


def reset() -> None:
    """Forget an interrupt (tests)."""
    _INTERRUPTED.clear()
    _TERMINATED.clear()
