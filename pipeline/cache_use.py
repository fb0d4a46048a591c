"""Which commands use a cache now: ``cache clear`` must not delete what a run is using.

Every command that reads and writes a cache (``monitor``, ``demo``, ``train``) holds it
shared for its run (:func:`cache_in_use`): any number of runs at once. ``cache clear`` takes
it exclusively or refuses (:func:`cache_unused`); it deleted a running monitor's incremental
state, and the run then failed as bad input naming a temporary file (an outside tester).
A run that starts while a clear is under way waits for it, and says so. The lock is an
``flock`` on :data:`CACHE_USE_NAME` in the cache folder (:func:`pipeline.locks.shared_lock`):
it dies with its holder, and the last holder removes the file.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

from .cache import CACHEDIR_TAG, WindowCache
from .errors import ConfigError
from .locks import exclusive_lock_nowait, is_held, shared_lock

__all__ = ["CACHE_USE_NAME", "cache_busy", "cache_in_use", "cache_unused"]

log = logging.getLogger("pipeline")

#: The lock file of :func:`cache_in_use` in the cache folder.
CACHE_USE_NAME = ".kp-monitor-in-use.lock"


@contextlib.contextmanager
def cache_in_use(cache_dir: str | Path) -> Iterator[None]:
    """Hold the cache ``cache_dir`` shared while the block runs (see the module docstring).

    The folder is created tagged (``CACHEDIR.TAG``, as the run's first write would); one this
    block created and the run left empty is removed again, so that a run that wrote nothing
    there leaves no folder behind."""
    root = Path(cache_dir)
    created = not root.exists()
    WindowCache(root).ensure()

    def waiting() -> None:
        log.info("cache %s: waiting for `cache clear` (or `cache info`'s check) to finish", root)

    try:
        with shared_lock(root / CACHE_USE_NAME, on_wait=waiting):
            yield
    finally:
        if created and {p.name for p in root.iterdir()} <= {CACHEDIR_TAG}:
            shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def cache_unused(cache_dir: str | Path) -> Iterator[bool]:
    """Yield whether no command holds the cache ``cache_dir`` (:func:`cache_in_use`); it is held
    exclusively until the block ends, so a run starting meanwhile waits.

    Raises
    ------
    ConfigError
        The lock cannot be taken (another user's cache in a folder this user cannot write): one
        line naming it; nothing is cleared, since whether a run uses it cannot be told.
    """
    path = Path(cache_dir) / CACHE_USE_NAME
    try:
        with exclusive_lock_nowait(path) as unused:
            yield unused
    except OSError as exc:
        raise ConfigError(f"cannot tell whether a run uses cache {cache_dir}: {path} cannot be opened "
                          f"({exc.strerror or exc}); clear it as a user who can write it") from None


def cache_busy(cache_dir: str | Path) -> bool:
    """Whether a command holds the cache ``cache_dir`` now (:func:`cache_in_use`); read only
    (``cache info``)."""
    return is_held(Path(cache_dir) / CACHE_USE_NAME)
