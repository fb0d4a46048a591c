"""EDGE: locks that die with their holder, and the clean-up of what dead runs left behind.

A lock is an exclusive ``fcntl.flock`` on a small file, held by an open file description:
the kernel releases it when the holder's descriptors close, however the holder ends
(exit, exception, ``kill -9``, power loss of the process). So a lock can never outlive its
holder and nobody ever waits on a dead run; a live holder is waited for (the window cache)
or refused (the output folder, :class:`RunLockBusy`), and the wait is logged with the
holder's pid and command, which the lock file records.

``flock`` locks belong to the open file description, not the process: two threads of one
process that open the lock file separately exclude each other too (the window cache relies
on that). Lock files may be unlinked by their holder on release; every acquirer checks
after locking that the path still names the inode it locked, so that an unlinked file
cannot be "held" by two parties. Local file systems only (``flock`` over NFS is emulated
with ``fcntl`` byte-range locks by Linux, which also die with their holder).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import MonitorError

__all__ = [
    "RUN_LOCK_NAME",
    "FileLock",
    "RunLockBusy",
    "exclusive_lock_nowait",
    "is_held",
    "pid_alive",
    "shared_lock",
    "remove_dead_temporaries",
]

log = logging.getLogger("pipeline")

#: The lock file a monitor run holds in its output folder for its whole duration.
RUN_LOCK_NAME = ".kp-monitor.lock"
#: Temporary names in the cache: ``.<entry>.<pid>.<hex>.tmp`` (:meth:`pipeline.cache.WindowCache.write`,
#: files; :mod:`pipeline.state`, folders).
_CACHE_TMP = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")


@contextlib.contextmanager
def shared_lock(path: Path, *, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold ``path`` shared (``flock LOCK_SH``) while the block runs; ``on_wait`` is called
    before waiting for an exclusive holder. The last holder removes the file."""
    try:
        fd = _locked(path, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        if on_wait is not None:
            on_wait()
        fd = _locked(path, fcntl.LOCK_SH)
    try:
        yield
    finally:
        _release(path, fd)


@contextlib.contextmanager
def exclusive_lock_nowait(path: Path, *, tries: int = 5, pause_s: float = 0.05) -> Iterator[bool]:
    """Yield whether ``path`` could be locked exclusively (nobody holds it shared), trying
    ``tries`` times ``pause_s`` apart (a last holder takes it exclusively for an instant as it
    leaves, :func:`_release`); held until the block ends.

    Raises
    ------
    OSError
        The lock file cannot be opened (another user's, in a folder this user cannot write).
    """
    for attempt in range(tries):
        try:
            fd = _locked(path, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if attempt == tries - 1:
                yield False
                return
            time.sleep(pause_s)
    try:
        yield True
    finally:
        _release(path, fd)


def is_held(path: Path) -> bool:
    """Whether some process holds an ``flock`` on ``path`` now (shared or exclusive). Read only:
    the file is opened read-only, never created or removed, and locked exclusively without
    waiting for an instant when nobody holds it (a holder starting in that instant waits for
    it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # missing (nobody holds it), or unreadable: what it says cannot be read
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the instant's lock
    return False


def _open_for_lock(path: Path) -> int:
    """A descriptor to ``flock``: read-write and created if missing (mode 0o666 less the umask, so
    that a cache shared by a group is shared by its users); read-only where another user's file
    cannot be written (``flock`` needs no write access)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:
        return os.open(path, os.O_RDONLY)


def _locked(path: Path, how: int) -> int:
    """A descriptor of ``path`` locked ``how``; again if a releaser unlinked the file meanwhile
    (a lock on an unlinked file would exclude nobody)."""
    while True:
        fd = _open_for_lock(path)
        try:
            fcntl.flock(fd, how)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass  # unlinked between the open and the stat: open it afresh
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _release(path: Path, fd: int) -> None:
    """Unlock; remove ``path`` when no other holder remains (the file is not left behind)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # only when nobody else holds it
    except BlockingIOError:
        pass
    else:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            path.unlink()
    finally:
        os.close(fd)


class RunLockBusy(MonitorError):
    """Another live process holds the lock (the message names it and the folder)."""


class FileLock:
    """An exclusive lock on ``path``, held by an open file description (``fcntl.flock``).

    Parameters
    ----------
    path
        The lock file; created if missing (never followed if it is a symbolic link).
    info
        What the lock file records about the holder (``pid``, ``host`` and ``since`` are
        added), shown to whoever waits or is refused.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> first, second = FileLock(folder / "x.lock"), FileLock(folder / "x.lock")
    >>> first.try_acquire(), second.try_acquire()
    (True, False)
    >>> first.release(); second.try_acquire()
    True
    >>> second.release(unlink=True); (folder / "x.lock").exists()
    False
    """

    def __init__(self, path: str | Path, *, info: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.info = dict(info or {})
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; ``False`` if a live holder does (never waits)."""
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held by this object")
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    return False
                raise
            # The holder we waited for may have unlinked the file before releasing it:
            # then we locked an orphan inode, and someone else may lock a new file.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path, follow_symlinks=False))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            self._fd = fd
            self._record()
            return True

    def acquire(
        self,
        *,
        poll_s: float = 0.1,
        give_up: Callable[[], bool] | None = None,
        what: str = "lock",
    ) -> bool:
        """Wait for the lock while its holder lives; log once who is being waited for.

        ``give_up`` is asked between attempts: when it returns true the wait ends and
        ``False`` is returned (the window cache stops waiting once the holder's entry exists).
        A holder that dies releases the lock at once, so this never waits on a dead run.
        """
        logged = False
        t0 = time.monotonic()
        while not self.try_acquire():
            if give_up is not None and give_up():
                return False
            if not logged and time.monotonic() - t0 > 2 * poll_s:
                log.info("waiting for %s %s, held by %s", what, self.path, describe_holder(self.read_info()))
                logged = True
            time.sleep(poll_s)
        if logged:
            log.info("took %s %s after %.1f s", what, self.path, time.monotonic() - t0)
        return True

    def release(self, *, unlink: bool = False) -> None:
        """Release the lock (``unlink``: remove the file first, while still holding it)."""
        if self._fd is None:
            return
        try:
            if unlink:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        finally:
            os.close(self._fd)
            self._fd = None

    def read_info(self) -> dict[str, Any]:
        """What the lock file says about its holder (``{}`` when unreadable)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return {}
        with os.fdopen(fd, encoding="utf-8", errors="replace") as fh:
            text = fh.read(4096)
        try:
            info = json.loads(text)
        except ValueError:
            parts = text.split()  # the window cache's earlier format: "<pid> <epoch>"
            return {"pid": int(parts[0])} if parts and parts[0].isdigit() else {}
        return info if isinstance(info, dict) else {}

    def _record(self) -> None:
        assert self._fd is not None
        info = {
            **self.info,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        }
        blob = (json.dumps(info, sort_keys=True) + "\n").encode()
        with contextlib.suppress(OSError):  # the record is informative; the lock is the flock
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, blob, 0)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def describe_holder(info: dict[str, Any]) -> str:
    """``pid 123 on host (monitor, since 2024-...)`` from a lock file's record."""
    if not info:
        return "another process"
    text = f"pid {info.get('pid', '?')}"
    if info.get("host") and info.get("host") != socket.gethostname():
        text += f" on {info['host']}"
    details = [str(info[k]) for k in ("command",) if info.get(k)]
    if info.get("since"):
        details.append(f"since {info['since']}")
    return text + (f" ({', '.join(details)})" if details else "")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (signal 0)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_dead_temporaries(folder: Path) -> list[Path]:
    """Delete the temporaries under ``folder`` whose writing process is gone, and lock files
    nobody holds.

    The window cache writes ``.<entry>.<pid>.<random>.tmp`` files next to each entry, the
    incremental state ``.<key>.<pid>.<random>.tmp`` folders, and each renames them into place;
    a run killed in between leaves them behind. Those of live processes (another run writing
    now, or this one) are kept. Returns what was removed.
    """
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames:
            # A lock file nobody holds: its holder died after writing its entry (between the
            # rename and the unlink); harmless, since a dead run's lock binds nobody, but litter.
            if name.endswith(".lock") and _remove_if_free(Path(dirpath) / name):
                removed.append(Path(dirpath) / name)
        for name in [*filenames, *dirnames]:
            match = _CACHE_TMP.match(name)
            if match is None or pid_alive(int(match.group(1))):
                continue
            path = Path(dirpath) / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
                dirnames.remove(name)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            removed.append(path)
    return removed


def _remove_if_free(path: Path) -> bool:
    """Unlink the lock file ``path`` if no live process holds it (taken, unlinked, released)."""
    lock = FileLock(path)
    try:
        if not lock.try_acquire():
            return False
    except OSError:
        return False
    lock.release(unlink=True)
    return True
