"""EDGE: the command-line helpers for imagery sources and the window cache.

- ``python -m pipeline cache info [--cache DIR] [--config FILE]`` -> :func:`cache_info`
- ``python -m pipeline cache clear [--cache DIR] [--config FILE]`` -> :func:`cache_clear`
- ``python -m pipeline cache prune [--cache DIR] [--config FILE]`` -> :func:`cache_prune`
- ``python -m pipeline sources check [--config FILE]`` -> :func:`check_sources` +
  :func:`format_source_checks`

Nothing printed here contains a secret: checks carry redacted endpoints and the
provider's scrubbed messages; credentials are referred to by the NAME of their
environment variable.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .asset_checks import CheckedFiles
from .cache import CACHEDIR_TAG, resolve_cache_dir
from .cache_use import CACHE_USE_NAME, cache_busy, cache_unused
from .config import MonitorConfig
from .errors import ConfigError
from .http import redact, scrub
from .providers import SourceCheck, get_provider, provider_kind
from .search import collections_text
from .state import unused_entries

__all__ = ["cache_clear", "cache_info", "cache_prune", "check_sources", "format_source_checks"]

#: A lock younger than this belongs to a run in progress: ``cache clear`` leaves its item.
_ACTIVE_LOCK_S = 600.0


@dataclass(frozen=True)
class _Usage:
    files: int = 0
    bytes: int = 0

    def __add__(self, other: _Usage) -> _Usage:
        return _Usage(self.files + other.files, self.bytes + other.bytes)


def cache_info(cache_dir: str | Path | None = None) -> str:
    """A few lines describing the cache: where, how big, what is in it."""
    root = resolve_cache_dir(cache_dir)
    if not root.exists():
        return f"cache: {root}\n  (empty: nothing cached yet)"
    if not root.is_dir():
        raise ConfigError(f"cache folder {root} is a file, not a folder; pass --cache (or cache_dir) a folder")
    windows = root / "windows"
    n_items = sum(1 for p in windows.iterdir() if p.is_dir()) if windows.is_dir() else 0
    entries = _usage(windows, "*.tif") if windows.is_dir() else _Usage()
    products = _usage(root / "products", "*") + _usage(root / "downloads", "*")
    # the lock that says a command uses the cache is no leftover (it goes with its last holder)
    leftovers = _usage(root, ".*.tmp") + _usage(root, "*.part") + _usage(root, "*.lock", skip=CACHE_USE_NAME)
    busy = cache_busy(root)
    total = _usage(root, "*")
    lines = [
        f"cache: {root}" + ("" if (root / CACHEDIR_TAG).exists() else "  (no CACHEDIR.TAG: not a kp-monitor cache?)"),
        f"  windows:   {entries.files} file(s) for {n_items} item(s), {_human(entries.bytes)}",
        f"  products:  {products.files} file(s) (downloaded archives and unpacked SAFE), {_human(products.bytes)}",
    ]
    state = _usage(root / "state", "*")  # Zarr groups: chunk files and metadata
    if state.files:
        lines.append(f"  state:     {state.files} file(s) of masked-cube blocks and composites (incremental runs), "
                     f"{_human(state.bytes)}")
        unused = _unused_state(root)
        if unused.files:
            lines.append(f"  unused:    {unused.files} file(s), {_human(unused.bytes)} of that state the latest run of "
                         "its AOI did not use (cache prune removes them)")
    if busy:
        lines.append("  in use:    by a running command (monitor, train or demo): cache clear refuses until it ends")
    if leftovers.files and busy:
        lines.append(f"  temporary: {leftovers.files} temporary/lock file(s) of the running command or of interrupted "
                     f"runs, {_human(leftovers.bytes)}")
    elif leftovers.files:
        lines.append(f"  leftovers: {leftovers.files} temporary/lock file(s) of interrupted runs, "
                     f"{_human(leftovers.bytes)} (cache clear removes them)")
    lines.append(f"  total:     {_human(total.bytes)}")
    return "\n".join(lines)


def cache_clear(cache_dir: str | Path | None = None) -> str:
    """Delete the cached windows, products, incremental state and the record of checked local files;
    return one line saying what was freed.

    Refuses a folder that does not carry ``CACHEDIR.TAG`` (so ``--cache ~`` cannot wipe a
    home folder) and leaves items whose lock shows a run in progress.

    Raises
    ------
    ConfigError
        The folder exists but is not a kp-monitor cache, or is a file.
    """
    root = resolve_cache_dir(cache_dir)
    if not root.exists():
        return f"cache {root} is already empty"
    if not root.is_dir():
        raise ConfigError(f"cache folder {root} is a file, not a folder; pass --cache (or cache_dir) a folder")
    if not (root / CACHEDIR_TAG).exists():
        raise ConfigError(f"{root} has no {CACHEDIR_TAG}: not a kp-monitor cache; refusing to delete it "
                          f"(pass --cache the folder set as cache_dir)")
    with cache_unused(root) as unused:
        if not unused:
            raise ConfigError(f"cache {root} is in use by a running command (monitor, train or demo); run cache "
                              "clear once it has finished")
        return _clear(root)


def cache_prune(cache_dir: str | Path | None = None) -> str:
    """Delete the incremental state that the latest run of its AOI (on its grid) did not use:
    confirmation states and composite windows later runs superseded, blocks of dates under
    other settings (:func:`pipeline.state.unused_entries`). The windows, products and what
    each AOI's next quarterly run reuses stay. Return one line saying what was freed.

    Raises
    ------
    ConfigError
        As :func:`cache_clear`: not a kp-monitor cache, a file, or in use by a running command.
    """
    root = resolve_cache_dir(cache_dir)
    if not root.exists():
        return f"cache {root} is empty: nothing to prune"
    if not root.is_dir():
        raise ConfigError(f"cache folder {root} is a file, not a folder; pass --cache (or cache_dir) a folder")
    if not (root / CACHEDIR_TAG).exists():
        raise ConfigError(f"{root} has no {CACHEDIR_TAG}: not a kp-monitor cache; refusing to delete from it "
                          f"(pass --cache the folder set as cache_dir)")
    with cache_unused(root) as unused:
        if not unused:
            raise ConfigError(f"cache {root} is in use by a running command (monitor, train or demo); run cache "
                              "prune once it has finished")
        freed, unknown = _Usage(), 0
        for folder in _state_folders(root):
            entries = unused_entries(folder)
            if entries is None:
                unknown += 1
                continue
            for entry in entries:
                freed = freed + _usage(entry, "*")
                shutil.rmtree(entry, ignore_errors=True)
    line = f"pruned {root}: freed {_human(freed.bytes)} in {freed.files} file(s) of unused incremental state"
    if unknown:
        line += (f"; kept {unknown} AOI state folder(s) with no record of their latest run (a run on them writes "
                 "one; cache clear removes everything)")
    return line


def _state_folders(root: Path) -> list[Path]:
    base = root / "state"
    return sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")) if base.is_dir() else []


def _unused_state(root: Path) -> _Usage:
    """Files and bytes :func:`cache_prune` would free."""
    total = _Usage()
    for folder in _state_folders(root):
        for entry in unused_entries(folder) or ():
            total = total + _usage(entry, "*")
    return total


def _clear(root: Path) -> str:
    freed = _Usage()
    kept: list[str] = []
    now = time.time()
    for sub in ("windows", "products", "downloads", "state"):
        base = root / sub
        if not base.is_dir():
            continue
        for child in sorted(base.iterdir()):
            locks = list(child.glob("*.lock")) if child.is_dir() else []
            if any(now - p.stat().st_mtime < _ACTIVE_LOCK_S for p in locks):
                kept.append(child.name)
                continue
            usage = _usage(child, "*") if child.is_dir() else _Usage(1, child.stat().st_size)
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
            freed = freed + usage
    memo = root / CheckedFiles.FILE  # which local files passed their checks: stale once the windows go
    if memo.is_file():
        freed = freed + _Usage(1, memo.stat().st_size)
        memo.unlink(missing_ok=True)
    for stray in list(root.glob(".*.tmp")):
        freed = freed + _Usage(1, stray.stat().st_size)
        stray.unlink(missing_ok=True)
    line = f"cleared {root}: freed {_human(freed.bytes)} in {freed.files} file(s)"
    if kept:
        line += f"; kept {len(kept)} item(s) a running job holds locks on ({', '.join(kept[:3])}...)"
    return line


def check_sources(
    cfg: MonitorConfig, *, env: Mapping[str, str] | None = None, **provider_kwargs: Any
) -> list[SourceCheck]:
    """Is each configured provider reachable, and are its credentials accepted?

    One :class:`~pipeline.providers.SourceCheck` per endpoint (STAC catalogue, token
    service, OData...), and one more, failed, for ``source.collection`` when the STAC API
    answers that it has no such collection (as ``monitor`` refuses it). Never raises for an
    unreachable or refusing endpoint: that is what the check reports.
    """
    provider = get_provider(cfg.source, env=env, **provider_kwargs)
    checks = provider.check()
    others = provider.lacks_collection(provider.collection) if all(c.ok for c in checks) else None
    if others is not None:
        checks.append(SourceCheck(provider.name, f"{redact(provider.url)} collection {provider.collection}", False,
                                  None, f"no such collection (source.collection; it has {collections_text(others)})"))
    secrets = provider.secrets()
    return [SourceCheck(c.provider, c.endpoint, c.reachable, c.authorised, scrub(c.detail, secrets))
            for c in checks]


def format_source_checks(checks: Sequence[SourceCheck]) -> str:
    """A small table: provider, endpoint, reachable, authorised, detail."""
    if not checks:
        return "no imagery source configured"
    rows = [("provider", "endpoint", "reachable", "authorised", "detail")]
    for c in checks:
        auth = "n/a (anonymous)" if c.authorised is None else ("yes" if c.authorised else "NO")
        rows.append((c.provider, c.endpoint, "yes" if c.reachable else "NO", auth, c.detail))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    ok = all(c.ok for c in checks)
    lines.append("all sources OK" if ok
                 else "some sources are unreachable, invalid, refuse the credentials or lack the collection")
    return "\n".join(lines)


def describe_source(cfg: MonitorConfig) -> str:
    """``<provider kind> <url>`` for log lines."""
    return f"{provider_kind(cfg.source)} {cfg.source.url}"


def _usage(base: Path, pattern: str, *, skip: str | None = None) -> _Usage:
    files = [p for p in base.rglob(pattern) if p.is_file() and not p.is_symlink() and p.name != skip] \
        if base.exists() else []
    return _Usage(len(files), sum(p.stat().st_size for p in files))


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover
