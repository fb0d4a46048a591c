"""EDGE: a run's hold on its output folder: run lock, dead runs' leftovers, completion marker, run log.

:func:`run_folder` is entered by :func:`pipeline.run.run_monitor` just before the first byte
is written into ``--out`` (all input has been checked by then). For the whole run it:

1. holds the **run lock** ``--out/.kp-monitor.lock`` (:class:`pipeline.locks.FileLock`, an
   ``flock`` that dies with its holder; the file is removed when the run ends): a second run
   into the same folder is refused at once with one line naming the holder
   (:class:`~pipeline.locks.RunLockBusy`, exit 2), while a killed run's lock is simply free;
2. removes what dead runs left: temporaries of the atomic writers (``.<name>.part.*``,
   ``.<name>.*.tmp``) and half-copied archive folders (``archive/.bulletin-NNNN.part``);
   holding the lock, no live run can own them;
3. keeps the **completion marker** ``--out/RUN_INCOMPLETE`` while it writes: present, the
   folder mixes a run's new files with an earlier run's (a run is writing, or was killed);
   readers check it (``assess`` refuses such a folder). A run that finds the marker of a
   killed run first restores the site history from the last archived bulletin (the killed
   run may have replaced ``sites.geojson``), so that its outputs are those of an
   uninterrupted run. The marker goes when the run has written everything, archive
   included;
4. writes ``run.log`` afresh (one log per run, never appended to a previous run's), never
   through a symbolic link, with credentials redacted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .http import RedactCredentials
from .io import atomic_write
from .locks import RUN_LOCK_NAME, FileLock, RunLockBusy, describe_holder

__all__ = [
    "INCOMPLETE_MARKER",
    "OUTPUT_DIRS",
    "RunFolder",
    "failed_run_report",
    "incomplete_run",
    "latest_archive",
    "remove_dead_outputs",
    "run_folder",
]

log = logging.getLogger("pipeline")

#: Present while a run writes its output folder (and after a run that was killed).
INCOMPLETE_MARKER = "RUN_INCOMPLETE"
#: Sub-folders a monitor run writes into.
OUTPUT_DIRS: tuple[str, ...] = ("composites", "figures", "archive")
#: Temporary names of the atomic writers: ``.<name>.part.<random><suffix>`` (pipeline.io) and
#: ``.<name>.<random>.tmp`` (the bulletin renderer).
_TEMPORARY = re.compile(r"^\..+(\.part\..*|\.tmp)$")
_ARCHIVE_STAGING = re.compile(r"^\.bulletin-\d+(-r\d+)?\.part$")


class RunFolder:
    """A run's hold on its output folder (see the module docstring). Use it in two steps::

        with RunFolder(out_dir) as folder, dask_client(cfg) as client:  # 1. the run lock
            with folder.writing():                                     # 2. marker, clean-up, run.log
                ...

    Entering takes the run lock, creating the folder if needed, and refuses at once when a
    live run holds it. Until :meth:`writing` is entered nothing else is written, and if the
    run ends before that (an unreachable scheduler), what entering created (the lock file,
    the folder itself) is removed again: bad input leaves nothing behind.

    Raises
    ------
    RunLockBusy
        Another live run holds the folder (one line naming it; nothing written).
    ConfigError
        The folder cannot be created or written (one line naming it; nothing written).
    """

    def __init__(self, out_dir: str | Path, *, command: str = "monitor") -> None:
        self.path = Path(out_dir)
        self.command = command
        self.run_id = uuid.uuid4().hex[:12]
        self.previous_incomplete: dict[str, Any] | None = None
        """The marker a killed run left (its pid, start time), else ``None``."""
        self._lock = FileLock(self.path / RUN_LOCK_NAME, info={"command": command, "out": str(self.path)})
        self._created: list[Path] = []
        self._started = False

    def __enter__(self) -> RunFolder:
        fix = "pass --out a folder you can write"
        missing = []
        probe = self.path
        while not probe.exists() and probe != probe.parent:
            missing.append(probe)
            probe = probe.parent
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create output folder {self.path}: {exc.strerror or exc}; {fix}") from None
        self._created = missing  # deepest first: removed in that order if the run never starts
        try:
            taken = self._lock.try_acquire()
        except OSError as exc:
            self._undo()
            raise ConfigError(f"cannot write into output folder {self.path}: {exc.strerror or exc}; {fix}") from None
        if not taken:
            raise RunLockBusy(
                f"output folder {self.path} is in use by another run ({describe_holder(self._lock.read_info())}); "
                "wait for it to finish, or pass another --out"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        # The lock file goes with the lock (safe: acquirers check the inode they locked).
        self._lock.release(unlink=True)
        if not self._started:
            self._undo()

    @contextlib.contextmanager
    def writing(self) -> Iterator[RunFolder]:
        """Clean what dead runs left, restore the site history after a killed run, set the
        completion marker and open ``run.log``; the marker goes when the block ends normally."""
        self._started = True
        out_dir = self.path
        self.previous_incomplete = incomplete_run(out_dir)
        removed = remove_dead_outputs(out_dir)
        if self.previous_incomplete is not None:
            _restore_site_history(out_dir)
        _write_marker(out_dir, self.run_id, self.command)
        handler = _open_run_log(out_dir / "run.log")
        try:
            previous = self.previous_incomplete
            if previous is not None:
                log.warning(
                    "the previous run into %s (pid %s, started %s) did not finish; its files are replaced "
                    "and the site history is that of the last archived bulletin",
                    out_dir, previous.get("pid", "?"), previous.get("started", "?"),
                )
            if removed:
                log.info("removed %d temporary file(s) left by a killed run in %s", len(removed), out_dir)
            yield self
            (out_dir / INCOMPLETE_MARKER).unlink(missing_ok=True)
        finally:
            logging.getLogger("pipeline").removeHandler(handler)
            handler.close()

    def _undo(self) -> None:
        for path in self._created:
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()  # only if still empty
                else:
                    path.unlink()
        self._created = []


@contextlib.contextmanager
def run_folder(out_dir: Path, *, command: str = "monitor") -> Iterator[RunFolder]:
    """Hold ``out_dir`` and write into it at once (:class:`RunFolder` in one step)."""
    with RunFolder(out_dir, command=command) as folder, folder.writing():
        yield folder


def failed_run_report(results: Sequence[Any], out_dir: Path) -> Any:
    """The :class:`~pipeline.outputs.RunReport` of a run in which no AOI succeeded.

    Such a run publishes nothing: no numbered bulletin, no tables, no manifest; the folder
    keeps the previous complete run's files (and its site history) and gets only this run's
    ``run.log``, which, like stderr, lists each AOI's failure. Exit status 1.
    """
    from .outputs import RunReport

    failures = {r.aoi_id: str(r.error) for r in results}
    log.error("run failed: no AOI succeeded (%d failed); no bulletin is published and the previous outputs "
              "are kept", len(failures))
    return RunReport(out_dir=out_dir, outputs={"run.log": out_dir / "run.log"}, failures=failures,
                     bulletin_number=0)


def incomplete_run(out_dir: Path) -> dict[str, Any] | None:
    """The marker of a run that is writing ``out_dir`` or was killed there, else ``None``."""
    path = Path(out_dir) / INCOMPLETE_MARKER
    if not path.is_file() or path.is_symlink():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def latest_archive(out_dir: Path) -> Path | None:
    """The folder of the last archived issue (``archive/bulletin-NNNN[-rR]``), else ``None``."""
    from .numbering import archived_bulletins

    issues = archived_bulletins(Path(out_dir))
    return issues[-1].folder if issues else None


def remove_dead_outputs(out_dir: Path) -> list[Path]:
    """Delete the temporaries and half-copied archive folders that killed runs left in
    ``out_dir`` (call only while holding its run lock). Returns what was removed."""
    removed: list[Path] = []
    archive = out_dir / "archive"
    if archive.is_dir() and not archive.is_symlink():
        for path in archive.iterdir():
            if path.is_dir() and not path.is_symlink() and _ARCHIVE_STAGING.match(path.name):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    candidates = list(out_dir.iterdir())
    for name in OUTPUT_DIRS:
        top = out_dir / name
        if name != "archive" and top.is_dir() and not top.is_symlink():
            for dirpath, _dirnames, filenames in os.walk(top):  # (figures/ has a folder per language)
                candidates += [Path(dirpath) / f for f in filenames]
    for path in candidates:
        if path.name != RUN_LOCK_NAME and _TEMPORARY.match(path.name) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _restore_site_history(out_dir: Path) -> None:
    # A killed run may have replaced sites.geojson; the sites of the last complete run, which
    # tracking (stable ids, "new" status) starts from, are in the last archived bulletin.
    current = out_dir / "sites.geojson"
    archived = latest_archive(out_dir)
    source = archived / "sites.geojson" if archived is not None else None
    if source is not None and source.is_file():
        with atomic_write(current, "wb") as fh:
            fh.write(source.read_bytes())
    else:
        current.unlink(missing_ok=True)


def _write_marker(out_dir: Path, run_id: str, command: str) -> None:
    info = {
        "run_id": run_id,
        "pid": os.getpid(),
        "command": command,
        "started": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "note": "A run is writing this folder, or was killed while writing it: its files may mix that run's "
        "outputs with an earlier run's. Run monitor again into this folder to complete it.",
    }
    with atomic_write(out_dir / INCOMPLETE_MARKER) as fh:
        json.dump(info, fh, indent=1)
        fh.write("\n")


class _RunLog(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that owns its file (closing the handler closes the file)."""

    def close(self) -> None:
        try:
            self.flush()
            with contextlib.suppress(OSError):
                self.stream.close()
        finally:
            super().close()


def _open_run_log(path: Path) -> logging.Handler:
    """``run.log`` for this run: truncated, never followed if a symbolic link, redacted."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {exc.strerror or exc}; a run writes only regular files inside its --out folder"
        ) from None
    handler = _RunLog(os.fdopen(fd, "w", encoding="utf-8"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(RedactCredentials())
    logger = logging.getLogger("pipeline")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler
