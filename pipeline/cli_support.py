"""What the command line needs besides its subcommands: one-line errors, ``--debug``, the console log.

The contract (``../shared/DESIGN.md``): bad input gets one line naming the file, field or
item and the fix, exit status 2, and nothing written; never a traceback unless
``--debug`` is given. :func:`report_error` is the one place that turns an exception into
that line and an exit status:

- :class:`~pipeline.errors.SearchError` (imagery source unreachable): 1;
- any other :class:`~pipeline.errors.MonitorError` (bad input or configuration): 2;
- :class:`OSError` on a path the user gave (permission, not a folder, read-only file
  system...): 2, naming the path;
- the reader of standard output went away (``... | head``, :class:`BrokenPipeError`): no
  line, 141 (128 + SIGPIPE, what a shell reports for a command its pipe stopped); ``--help``
  too (:meth:`OneLineParser.print_help`);
- a full disk that names no path (standard output on it): one line
  ``cannot write output ...`` and 1: the input was fine;
- Ctrl-C: ``error: interrupted`` and 130; SIGTERM: ``error: terminated (SIGTERM)`` and 143
  (:mod:`pipeline.interrupts`);
- anything else is a bug: one line ``error: internal error ...`` and 1 (as an uncaught
  exception always exited), the traceback with ``--debug``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import sys
import threading
import traceback
import warnings
from pathlib import Path
from typing import Any, NoReturn

from .errors import MonitorError, MonitorWarning, SearchError
from .http import RedactCredentials
from .interrupts import Terminated

__all__ = [
    "OneLineParser", "held_notes", "hold_warnings", "install_console_log", "missing_reason", "release_warnings",
    "report_error", "warnings_as_log_lines",
]

#: errno values of an OSError that mean "this path cannot be used": bad input (exit 2).
_PATH_ERRNOS = {
    errno.EACCES, errno.EPERM, errno.EROFS, errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENOENT,
    errno.ELOOP, errno.ENAMETOOLONG, errno.ENOSPC, errno.EDQUOT,
}


#: How ``pathlib.Path.resolve`` reports a loop of symbolic links before Python 3.13 (a RuntimeError).
_SYMLINK_LOOP = "Symlink loop from "


def missing_reason(path: Path) -> str:
    """Why an existing-looking ``path`` cannot be read: ``is a loop of symbolic links`` or
    ``does not exist`` (``Path.exists`` is false for both)."""
    return "is a loop of symbolic links" if path.is_symlink() and not path.exists() and _loops(path) else \
        "does not exist"


def _loops(path: Path) -> bool:
    try:
        path.resolve(strict=True)
    except RuntimeError:
        return True
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


class OneLineParser(argparse.ArgumentParser):
    """``argparse`` parser whose usage errors are one line (``error: ...; see ... --help``), exit 2."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        print(f"error: {self.prog}: {text}; see {self.prog} --help", file=sys.stderr)
        sys.exit(2)

    def print_help(self, file: Any = None) -> None:
        """As argparse's, flushed at once: a reader that went away (``--help | head -1``)
        ends the command with 141, as any other output does (:func:`report_error`), not with 0
        and the help lost at the interpreter's exit (argparse's own printing ignores the error)."""
        out = file or sys.stdout or sys.stderr
        try:
            out.write(self.format_help())
            out.flush()
        except OSError as exc:  # the reader went away (141), a full disk (1)
            sys.exit(report_error(exc))

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        """As argparse's, but an option the subcommand does not know is reported by the
        subcommand's parser (``see python -m pipeline monitor --help``), whose help lists its options."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            subparsers = [a for a in self._actions if isinstance(a, argparse._SubParsersAction)]
            command = getattr(parsed, subparsers[0].dest, None) if subparsers else None
            owner = subparsers[0].choices.get(command, self) if command else self
            owner.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


def report_error(exc: BaseException, *, debug: bool = False, notes: list[str] | None = None) -> int:
    """Print ``exc`` as one ``error:`` line on stderr (after its traceback with ``debug``);
    return the exit status (see the module docstring). ``notes``: warnings held back
    (:func:`held_notes`), added to the line in brackets."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    if isinstance(exc, Terminated):
        print("error: terminated (SIGTERM)", file=sys.stderr)
        return 143
    if isinstance(exc, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr)
        return 130
    if isinstance(exc, BrokenPipeError):
        # Nobody reads any more: say nothing (stderr may be the same closed pipe), and point
        # stdout at /dev/null so that the interpreter's final flush does not fail again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return 141
    if isinstance(exc, MonitorError):
        code = 1 if isinstance(exc, SearchError) else 2
        text = str(exc)
    elif isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT) and not (exc.filename or exc.filename2):
        code = 1
        text = f"cannot write output: {exc.strerror or exc}; free space or redirect the output elsewhere"
    elif isinstance(exc, RuntimeError) and str(exc).startswith(_SYMLINK_LOOP):
        # Path.resolve() on a loop of symbolic links (Python < 3.13; later ones raise OSError ELOOP)
        code = 2
        where = str(exc)[len(_SYMLINK_LOOP):].strip("'")
        text = f"cannot use {where}: it is a loop of symbolic links; check the path"
    elif isinstance(exc, OSError) and exc.errno in _PATH_ERRNOS:
        code = 2
        where = " ".join(str(f) for f in (exc.filename, exc.filename2) if f)
        text = f"cannot use {where or 'a file'}: {exc.strerror or exc}; check the path and its permissions"
    else:
        code = 1
        first = " ".join(str(exc).split())[:300]
        text = f"internal error ({type(exc).__name__}: {first}); this is a bug: " + (
            "report it with the traceback above" if debug else "run again with --debug for the traceback and report it"
        )
    if notes:
        text += "".join(f" (warning before it: {note})" for note in notes)
    print(f"error: {RedactCredentials.scrub(' '.join(text.split()))}", file=sys.stderr)
    return code


def install_console_log(
    stream: object = None, *, verbose: bool = False, handler: logging.Handler | None = None
) -> logging.Handler:
    """The progress lines on stderr (``[HH:MM:SS] message``), credentials redacted; ``handler``:
    the one to install (the progress bar's, which writes above the bar), else a stream handler.

    HTTP retries (``pipeline.http`` at INFO) go to ``run.log`` only, unless ``verbose``:
    on the console they would bury the one line an unreachable source gets. Idempotent: a
    handler installed by an earlier call (``main`` called twice in one process, as tests
    do) is replaced, not doubled.
    """
    logger = logging.getLogger("pipeline")
    for old in [h for h in logger.handlers if getattr(h, "_kp_console", False)]:
        logger.removeHandler(old)
    handler = handler or logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))
    handler.addFilter(_held.release)  # the command has begun to speak: its held warnings go first
    handler.addFilter(RedactCredentials())
    if not verbose:
        handler.addFilter(lambda r: r.levelno > logging.INFO or not r.name.startswith("pipeline.http"))
    handler._kp_console = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.propagate = False
    return handler


def warnings_as_log_lines() -> None:
    """Show warnings as one ``WARNING`` line of the ``pipeline`` logger (so also in ``run.log``)
    instead of Python's two lines naming a source file and quoting it: the package's own
    (:class:`~pipeline.errors.MonitorWarning`: stale declared statistics, ...) as their message,
    a library's (``distributed``'s slow scratch folder, ...) with its category and module.

    Installed once for the process by the command line (idempotent, never undone: saving and
    restoring the global hook around each command would race with ``warnings.catch_warnings``
    in other threads); ``catch_warnings`` blocks (pytest's ``warns``) still record as before."""
    if warnings.showwarning is not _show_as_log_line:
        warnings.showwarning = _show_as_log_line


_python_showwarning = warnings.showwarning


def _show_as_log_line(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
                      line: str | None = None) -> None:
    if file is not None:  # written to a given file: leave it to Python
        _python_showwarning(message, category, filename, lineno, file, line)
        return
    if issubclass(category, MonitorWarning):
        text = str(message)
    else:
        text = f"{' '.join(str(message).split())} ({category.__name__}, from {Path(filename).stem})"
    if not _held.hold_or_false(text):
        logging.getLogger("pipeline").warning("%s", text)


class _HeldWarnings:
    """Warnings raised before a command has said anything else (:func:`hold_warnings`).

    A command refused for bad input prints one line; a warning shown before it (an empty
    config "sets nothing", then "no AOI files given") made it two. Held warnings are shown as
    soon as the command logs anything to the console (its work has begun:
    :func:`install_console_log`'s handler releases them first), or when it ends without error
    (:func:`release_warnings`); a command ending in an error puts them in its one line instead
    (:func:`held_notes`)."""

    def __init__(self) -> None:
        self.holding = False
        self.pending: list[str] = []
        self.lock = threading.Lock()  # threads log and warn at once (the AOIs' search and fetch)

    def hold_or_false(self, text: str) -> bool:
        """Keep ``text`` if holding (``True``), else ``False``: the caller shows it."""
        with self.lock:
            if self.holding:
                self.pending.append(text)
            return self.holding

    def take(self) -> list[str]:
        """The held texts, and stop holding."""
        with self.lock:
            taken, self.pending, self.holding = self.pending, [], False
        return taken

    def release(self, record: logging.LogRecord | None = None) -> bool:
        if self.holding:  # (read without the lock: a stale True only costs a take() of nothing)
            for text in self.take():
                logging.getLogger("pipeline").warning("%s", text)
        return True


_held = _HeldWarnings()


def hold_warnings() -> None:
    """Hold the warnings raised from now on (see :class:`_HeldWarnings`)."""
    with _held.lock:
        _held.pending, _held.holding = [], True


def release_warnings() -> None:
    """Show the held warnings now and stop holding."""
    _held.release()


def held_notes() -> list[str]:
    """The held warnings, taken (not shown), and stop holding: for the error line."""
    return _held.take()
