"""EDGE: window-only acquisition into a local cache.

:func:`localise_items` reads, for every item and band, only the part of the asset that
covers the AOI grid (the geobox, which already includes the margin), writes it as a
small tiled GeoTIFF in the cache, and returns item copies whose band hrefs point at the
cached files. :func:`pipeline.acquire.open_scenes` then loads everything from local disk.

Design choices
--------------
- **Native resolution, not warped.** The cached window is the source's own pixels
  (the geobox bounds transformed to the asset's CRS, snapped outward to whole source
  pixels, plus a 1-pixel pad), in the source CRS and dtype. Resampling onto the AOI
  grid is left to odc-stac, exactly as without a cache, so cached and uncached loads
  give identical arrays (pixel for pixel with ``nearest``, which the pipeline uses; the
  pad also serves bilinear), 20 m bands cost a quarter of a warped 10 m copy, raw DN stay auditable,
  and an AOI next to a UTM zone boundary needs no special case. When the AOI grid is
  much coarser than the data, the read uses the COG overview whose resolution does
  not exceed the grid's.
- **Keyed by (item id, band, grid hash)**: ``windows/<item>/<band>-<grid>.tif``. The
  grid hash covers CRS, transform and shape of the geobox; a new AOI or margin is a
  new entry, never a wrong one.
- **Crash and concurrency safe.** A window is written to a unique temporary name in its
  folder (``.<entry>.<pid>.<random>.tmp``), flushed to disk, then ``os.replace``-d over
  the entry: an entry exists complete or not at all. A lock next to it
  (:class:`pipeline.locks.FileLock`: an ``flock`` held by an open file, which dies with
  its holder) lets two runs sharing the cache fetch each window once: the second waits
  for a live holder, saying so in the log, then reuses the entry; a killed run's lock is
  free at once, and its temporaries are removed when the next run opens the cache.
- **Local files pass through untouched, but checked.** Assets already on this machine
  (the demo's static catalog, unpacked SAFE products) are not copied: the cache would
  double the disk use and save no network. A second run with only local assets writes
  nothing. Each local file is opened and checked first, as a remote window is: a file
  that is missing, not a raster, truncated (a GeoTIFF tile beyond the end of the file),
  or whose CRS, transform or shape disagree with its item's ``proj:*`` fails that item,
  which is skipped and reported like an item that keeps failing over the network.
- **Resilient.** Every GDAL read runs under :class:`pipeline.http.RetryPolicy`
  (exponential back-off with jitter; a retry bypasses GDAL's per-process ``/vsicurl/``
  cache, where the failed attempt is remembered). An item that keeps failing is
  dropped and reported in the returned failure list; the run goes on. If every item
  fails, :class:`~pipeline.errors.DownloadError` is raised for the AOI.

The cache lives in ``cache_dir`` (config), ``--cache DIR`` (command line), else
``$KP_MONITOR_CACHE_DIR``, else the user cache directory
(``platformdirs.user_cache_dir("kp-monitor")``, e.g. ``~/.cache/kp-monitor``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import logging
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import platformdirs
import pystac
import rasterio
import rasterio.errors
import rasterio.warp
import rasterio.windows
from odc.geo.geobox import GeoBox

from .asset_checks import AssetMismatchError, CheckedFiles, DeclaredGrid, check_header, check_local_asset, declared_grid
from .errors import ConfigError, DownloadError, MonitorError
from .http import RetryPolicy, TransientError, call_with_retries, describe_error, install_log_redaction, redact, scrub
from .locks import FileLock, remove_dead_temporaries
from .providers.base import BaseProvider

__all__ = [
    "CACHEDIR_TAG",
    "AssetMismatchError",
    "CacheStats",
    "ItemFailure",
    "Localised",
    "WindowCache",
    "check_local_asset",
    "default_cache_dir",
    "grid_key",
    "localise_items",
    "resolve_cache_dir",
]

log = logging.getLogger("pipeline.cache")

#: Marks the folder as a cache (https://bford.info/cachedir/): backup tools skip it, and
#: ``cache clear`` refuses to empty a folder that does not carry it.
CACHEDIR_TAG = "CACHEDIR.TAG"
_TAG_TEXT = ("Signature: 8a477f597d28d172789f06886806bc55\n"
             "# This file marks the kp-monitor window cache (python -m pipeline cache info|clear).\n")
ENV_CACHE_DIR = "KP_MONITOR_CACHE_DIR"
PAD_PX = 1
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
#: Failures worth another attempt when reading a window (network, truncated, GDAL I/O).
_RETRYABLE = (rasterio.errors.RasterioIOError, OSError, DownloadError, TransientError)
_PROJ_EXT = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
_PROJ_EXT_V2_PREFIX = "https://stac-extensions.github.io/projection/v2."


def default_cache_dir() -> Path:
    """``$KP_MONITOR_CACHE_DIR``, else the XDG user cache dir (``~/.cache/kp-monitor``)."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env and not env.strip():  # as --cache " ": it would be the current folder
        raise ConfigError(f"{ENV_CACHE_DIR}={env!r} is an empty path; unset it or name a folder")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("kp-monitor"))


def resolve_cache_dir(cache_dir: str | Path | None) -> Path:
    """``cache_dir`` when given (config or ``--cache``), else :func:`default_cache_dir`."""
    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir()


def grid_key(geobox: GeoBox) -> str:
    """Short stable hash of a geobox (CRS, affine transform, shape)."""
    crs = geobox.crs
    epsg = crs.epsg if crs is not None else None
    crs_text = f"EPSG:{epsg}" if epsg else (crs.to_wkt() if crs is not None else "none")
    t = geobox.affine
    blob = f"{crs_text}|{t.a!r},{t.b!r},{t.c!r},{t.d!r},{t.e!r},{t.f!r}|{geobox.shape[0]}x{geobox.shape[1]}"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ItemFailure:
    """An item skipped after retries: what, which band, and why (no secrets, no query strings)."""

    item_id: str
    band: str | None
    href: str
    reason: str

    def __str__(self) -> str:
        where = f" band {self.band}" if self.band else ""
        return f"item {self.item_id}{where} ({self.href}): {self.reason}"


class Localised(NamedTuple):
    """What :func:`localise_items` returns: usable items, and the ones that failed."""

    items: list[pystac.Item]
    failures: list[ItemFailure]


@dataclass
class CacheStats:
    """Counters of one :func:`localise_items` call (filled when passed in)."""

    hits: int = 0
    misses: int = 0
    passthrough: int = 0
    bytes_written: int = 0
    retries: int = 0
    seconds: float = 0.0
    failures: list[ItemFailure] = field(default_factory=list)


def localise_items(
    items: Sequence[pystac.Item],
    *,
    geobox: GeoBox,
    bands: Sequence[str],
    cache_dir: str | Path,
    provider: BaseProvider | None = None,
    policy: RetryPolicy | None = None,
    gdal_options: Mapping[str, str] | None = None,
    max_workers: int = 4,
    stats: CacheStats | None = None,
    lock_timeout_s: float = 600.0,
    on_item: Callable[[int, int], None] | None = None,
) -> Localised:
    """Read only the AOI window of each band of each item into the cache.

    Parameters
    ----------
    items
        Normalised items (Earth Search band names, ``raster:bands`` set by search).
    geobox
        The AOI grid, margin included (see :func:`pipeline.acquire.aoi_geobox`); any CRS.
    bands
        Band names to localise.
    cache_dir
        Cache root (created, and tagged with ``CACHEDIR.TAG``).
    provider
        Signs hrefs, supplies GDAL options, materialises whole products; ``None``: hrefs
        are read as they are.
    policy
        Retry policy for the window reads; default :class:`RetryPolicy()`.
    gdal_options
        Extra GDAL options (the run's ``cfg.gdal``); the provider's are applied on top.
    max_workers
        Items fetched in parallel (threads; GDAL releases the GIL while it waits).
    stats
        Filled with hit/miss/byte counters when given.
    on_item
        Called with ``(items done, items)`` as each item is done (fetched, hit or failed):
        progress reporting.
    lock_timeout_s
        Ignored (kept for callers): a window's lock dies with its holder, so a live
        holder is always waited for and a dead one never is.

    Returns
    -------
    Localised
        ``(items, failures)``: copies of the items that could be read, in input order,
        with band hrefs on local files and ``proj:*`` describing them; and one
        :class:`ItemFailure` per skipped item.

    Raises
    ------
    DownloadError
        Every item failed (the message names the first failure).
    """
    t0 = time.perf_counter()
    install_log_redaction()  # GDAL's HTTP errors carry full URLs, signed ones included
    stats = stats if stats is not None else CacheStats()
    cache = WindowCache(cache_dir, lock_timeout_s=lock_timeout_s)
    cache.remove_dead_temporaries()
    policy = policy or (provider.policy if provider is not None else RetryPolicy())
    key = grid_key(geobox)
    secrets = provider.secrets() if provider is not None else ()

    checked = CheckedFiles.for_cache(cache.root)  # shared with the AOIs fetched at the same time

    def one(item: pystac.Item) -> pystac.Item:
        return _localise_one(item, geobox=geobox, grid=key, bands=bands, cache=cache,
                             provider=provider, policy=policy, gdal_options=gdal_options or {},
                             stats=stats, checked=checked)

    results: dict[int, pystac.Item] = {}
    failures: list[ItemFailure] = []
    workers = max(1, min(max_workers, len(items)))
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="kp-cache") as pool:
        futures = {pool.submit(one, it): i for i, it in enumerate(items)}
        for fut in concurrent.futures.as_completed(futures):
            i = futures[fut]
            try:
                results[i] = fut.result()
            except _ItemError as exc:
                failures.append(exc.failure)
            except (MonitorError, rasterio.errors.RasterioError, OSError, ValueError) as exc:
                failures.append(ItemFailure(items[i].id, None, "", scrub(describe_error(exc), secrets)))
            if on_item is not None:
                on_item(len(results) + len(failures), len(items))
    if checked.changed:
        cache.ensure()
        checked.save()
    failures.sort(key=lambda f: f.item_id)
    for f in failures:  # the caller warns, naming its AOI (one warning per item, not two)
        log.debug("skipped %s", f)
    stats.failures.extend(failures)
    stats.seconds += time.perf_counter() - t0
    if items and not results:
        raise DownloadError(f"none of the {len(items)} item(s) could be fetched or read; first: {failures[0]}")
    return Localised([results[i] for i in sorted(results)], failures)


#: Cache roots whose dead temporaries this process has removed (once per process and root).
_SWEPT: set[Path] = set()
_SWEPT_GUARD = threading.Lock()


class WindowCache:
    """The on-disk layout: ``windows/<item>/<band>-<grid>.tif`` plus locks and temporaries."""

    def __init__(self, root: str | Path, *, lock_timeout_s: float = 600.0) -> None:
        self.root = Path(root)
        self.lock_timeout_s = lock_timeout_s  # unused: locks die with their holder

    def remove_dead_temporaries(self) -> list[Path]:
        """Delete the temporaries of runs that were killed mid-write (once per process)."""
        with _SWEPT_GUARD:
            if self.root in _SWEPT:
                return []
            _SWEPT.add(self.root)
        removed = remove_dead_temporaries(self.root)  # windows/ and the incremental state/
        if removed:
            log.info("cache: removed %d temporary file(s) of killed runs in %s", len(removed), self.root)
        return removed

    def ensure(self) -> Path:
        """Create the cache folder (tagged) on first write; a run that only hits or passes
        local files through leaves no folder behind."""
        self.root.mkdir(parents=True, exist_ok=True)
        tag = self.root / CACHEDIR_TAG
        if not tag.exists():
            with contextlib.suppress(FileExistsError):
                fd = os.open(tag, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                with os.fdopen(fd, "w") as fh:
                    fh.write(_TAG_TEXT)
        return self.root

    @property
    def windows(self) -> Path:
        return self.root / "windows"

    @property
    def products(self) -> Path:
        return self.root / "products"

    def entry(self, item_id: str, band: str, grid: str) -> Path:
        return self.windows / _safe_name(item_id) / f"{_safe_name(band)}-{grid}.tif"

    @contextlib.contextmanager
    def lock(self, entry: Path) -> Iterator[bool]:
        """Hold ``entry``'s lock; yields False (lock not taken) when another run wrote it meanwhile."""
        self.ensure()
        entry.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(entry.with_name(entry.name + ".lock"), info={"command": "window cache"})
        # A live holder is waited for (logged once); a killed one released the lock when it
        # died. Once the holder's entry exists there is nothing left to wait for.
        if not lock.acquire(poll_s=0.05, give_up=entry.exists, what="cache lock"):
            yield False
            return
        try:
            yield not entry.exists()
        finally:
            lock.release(unlink=True)

    def write(self, entry: Path, data: np.ndarray, profile: Mapping[str, Any], tags: Mapping[str, str]) -> int:
        """Write ``data`` as a tiled GeoTIFF at ``entry``, atomically; return its size."""
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(data, 1)
                dst.update_tags(**tags)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, entry)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(entry.parent)
        return entry.stat().st_size


# --------------------------------------------------------------------------------------------
# One item
# --------------------------------------------------------------------------------------------


class _ItemError(Exception):
    def __init__(self, failure: ItemFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure


def _localise_one(
    item: pystac.Item,
    *,
    geobox: GeoBox,
    grid: str,
    bands: Sequence[str],
    cache: WindowCache,
    provider: BaseProvider | None,
    policy: RetryPolicy,
    gdal_options: Mapping[str, str],
    stats: CacheStats,
    checked: CheckedFiles,
) -> pystac.Item:
    secrets = provider.secrets() if provider is not None else ()
    out = item.clone()
    # Cache hits first: a complete hit never materialises or touches the network.
    entries = {b: cache.entry(item.id, b, grid) for b in bands}
    if not all(e.exists() for e in entries.values()) and provider is not None:
        try:
            if any(b not in out.assets for b in bands):
                cache.ensure()  # whole products are downloaded and unpacked into the cache
            out = provider.materialise(out, workdir=cache.root, bands=bands)
        except MonitorError as exc:
            raise _ItemError(ItemFailure(item.id, None, "", scrub(describe_error(exc), secrets))) from None
    env = {**_read_defaults(policy), **gdal_options,
           **(provider.gdal_options() if provider is not None else {})}
    session = provider.rasterio_session() if provider is not None else None
    with rasterio.Env(session=session, **env) if session is not None else rasterio.Env(**env):
        for band in bands:
            entry = entries[band]
            if entry.exists():
                stats.hits += 1
                _point_at(out, band, entry)
                continue
            if band not in out.assets:
                raise _ItemError(ItemFailure(item.id, band, "", "band missing from item"))
            asset = out.assets[band]
            href = _absolute_href(asset)
            if _is_local(href):
                problem = checked.check(href, asset, item)
                if problem is not None:
                    raise _ItemError(ItemFailure(item.id, band, href, problem))
                stats.passthrough += 1
                if not href.startswith("file://") and asset.href != href:
                    asset.href = href
                continue
            rb = (asset.extra_fields.get("raster:bands") or [{}])[0]
            try:
                _fetch_window(href, entry, geobox=geobox, cache=cache, provider=provider,
                              policy=policy, stats=stats, item_id=item.id, band=band,
                              dtype=rb.get("data_type"), nodata=rb.get("nodata"),
                              expected=declared_grid(asset, item))
            except _RETRYABLE + (rasterio.errors.RasterioError, ValueError) as exc:
                raise _ItemError(ItemFailure(item.id, band, redact(href),
                                             scrub(describe_error(exc), secrets))) from None
            _point_at(out, band, entry)
    return out


def _fetch_window(
    href: str,
    entry: Path,
    *,
    geobox: GeoBox,
    cache: WindowCache,
    provider: BaseProvider | None,
    policy: RetryPolicy,
    stats: CacheStats,
    item_id: str,
    band: str,
    dtype: str | None = None,
    nodata: float | None = None,
    expected: DeclaredGrid | None = None,
) -> None:
    with cache.lock(entry) as mine:
        if not mine:  # another run (or thread) wrote it while we waited
            stats.hits += 1
            return
        stats.misses += 1

        first = True

        def attempt() -> tuple[np.ndarray, dict[str, Any]]:
            nonlocal first
            url = provider.sign(href) if provider is not None else href
            # A retry bypasses GDAL's per-process /vsicurl/ cache: the failed attempt (e.g. a
            # 500 on the header) is remembered there as "file does not exist". (GDAL splits the
            # prefix list on ':', so in effect every http(s) file this thread opens meanwhile
            # is read uncached; s3:// hrefs, opened as /vsis3/, are not matched at all.)
            # The first attempt uses the cache: non-cached, GDAL sends two HEADs per file
            # instead of one (a third of the requests of a fetch, each paying the latency).
            # One reader per file at a time in this process: GDAL 3.10 deadlocks when two
            # threads read the same non-cached /vsicurl/ file (seen with items sharing assets).
            prefix = "/vsicurl/" + redact(href)
            env = {} if first else {"CPL_VSIL_CURL_NON_CACHED": prefix}
            first = False
            with _file_lock(prefix), rasterio.Env(**env):
                return _read_window(url, geobox, dtype=dtype, nodata=nodata, expected=expected)

        def count(_: int, __: BaseException) -> None:
            stats.retries += 1

        data, profile = call_with_retries(attempt, policy=policy, retry_on=_RETRYABLE,
                                          what=f"window of {item_id}/{band} ({redact(href)})",
                                          on_retry=count)
        tags = {"KP_ITEM_ID": item_id, "KP_BAND": band, "KP_SOURCE": redact(href),
                "KP_CREATED": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        stats.bytes_written += cache.write(entry, data, profile, tags)


_FILE_LOCKS: dict[str, threading.Lock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _file_lock(key: str) -> threading.Lock:
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(key, threading.Lock())


def _read_defaults(policy: RetryPolicy) -> dict[str, str]:
    """GDAL options for window reads, overridable by the run's ``gdal`` config section.

    GDAL retries 429/5xx and dropped connections itself (cheaper: one block, not the
    whole window) with the policy's count and base delay. (``CPL_VSIL_CURL_USE_HEAD=NO``
    would save the HEAD but makes GDAL size the file with an open-ended GET: measured
    at ~0.9 MB wasted per file on the 29RKH fixture. A first attempt uses GDAL's file cache,
    one HEAD per file; see :func:`_fetch_window`.)
    """
    return {
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "GDAL_HTTP_MAX_RETRY": str(policy.max_retries),
        "GDAL_HTTP_RETRY_DELAY": f"{policy.backoff_s:g}",
        "GDAL_HTTP_TIMEOUT": f"{policy.timeout_s:g}",
    }


def _read_window(
    url: str, geobox: GeoBox, *, dtype: str | None = None, nodata: float | None = None,
    expected: DeclaredGrid | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    grid_crs = geobox.crs
    if grid_crs is None:
        raise ValueError("the AOI grid has no CRS")
    with rasterio.open(url) as src:
        check_header(src, dtype)
        if expected is not None:
            problem = expected.disagreement(src)
            if problem is not None:
                raise AssetMismatchError(problem)
        left, bottom, right, top = rasterio.warp.transform_bounds(
            grid_crs.to_wkt(), src.crs, *geobox.boundingbox, densify_pts=21)
        # Overview whose pixels are no coarser than the AOI grid's (1: full resolution).
        grid_res = abs(geobox.resolution.x)
        if grid_crs.units[0] not in ("metre", "meter", "m") or not src.crs.is_projected:
            grid_res = abs(src.transform.a)
        factor = max(1, int(grid_res / abs(src.transform.a) + 1e-9))
        dec = max([1] + [d for d in src.overviews(1) if d <= factor])
        win = rasterio.windows.from_bounds(left, bottom, right, top, src.transform)
        col0 = math.floor(win.col_off / dec) * dec - PAD_PX * dec
        row0 = math.floor(win.row_off / dec) * dec - PAD_PX * dec
        col1 = math.ceil((win.col_off + win.width) / dec) * dec + PAD_PX * dec
        row1 = math.ceil((win.row_off + win.height) / dec) * dec + PAD_PX * dec
        col0, row0 = max(col0, 0), max(row0, 0)
        col1, row1 = min(col1, src.width), min(row1, src.height)
        if col1 <= col0 or row1 <= row0:
            raise ValueError("the AOI window does not overlap the asset")
        window = rasterio.windows.Window(col0, row0, col1 - col0, row1 - row0)
        out_shape = (max(1, round(window.height / dec)), max(1, round(window.width / dec)))
        data = src.read(1, window=window, out_shape=out_shape)
        transform = src.window_transform(window) @ rasterio.Affine.scale(
            window.width / out_shape[1], window.height / out_shape[0])
        profile: dict[str, Any] = {
            "driver": "GTiff", "width": out_shape[1], "height": out_shape[0], "count": 1,
            # the file's nodata, else the item's (the cached copy must not lose the mask)
            "dtype": src.dtypes[0], "crs": src.crs, "transform": transform,
            "nodata": src.nodata if src.nodata is not None else nodata,
            "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
        }
        if np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
            profile["predictor"] = 2
        return data, profile


def _point_at(item: pystac.Item, band: str, entry: Path) -> None:
    """Make ``item``'s ``band`` asset describe the cached file (href and proj:*)."""
    with rasterio.open(entry) as ds:
        epsg = ds.crs.to_epsg() if ds.crs else None
        shape = [ds.height, ds.width]
        transform = list(ds.transform)[:6]
        crs_wkt = ds.crs.to_wkt() if ds.crs and not epsg else None
    asset = item.assets[band]
    # A file:// URI, not a path: pystac would join "/tmp/x.tif" onto an s3:// self link.
    asset.href = entry.resolve().as_uri()
    asset.extra_fields["proj:shape"] = shape
    asset.extra_fields["proj:transform"] = transform
    if not any("projection" in e for e in item.stac_extensions):
        item.stac_extensions.append(_PROJ_EXT)
    # The fields of the projection version the item declares: v2 has proj:code, v1 proj:epsg.
    v2 = any(e.startswith(_PROJ_EXT_V2_PREFIX) for e in item.stac_extensions)
    if epsg:
        asset.extra_fields.pop("proj:epsg" if v2 else "proj:code", None)
        asset.extra_fields["proj:code" if v2 else "proj:epsg"] = f"EPSG:{epsg}" if v2 else epsg
    elif crs_wkt:
        asset.extra_fields["proj:wkt2"] = crs_wkt
    asset.media_type = pystac.MediaType.GEOTIFF


def _absolute_href(asset: pystac.Asset) -> str:
    # An absolute path or a URL stands as is (pystac would join "/data/x.tif" onto an
    # s3:// self link); only relative hrefs are resolved against the item's location.
    raw = asset.href
    if "://" in raw or os.path.isabs(raw):
        return raw
    return asset.get_absolute_href() or raw


def _is_local(href: str) -> bool:
    if href.startswith("file://"):
        return True
    scheme = href.split("://", 1)[0] if "://" in href else ""
    return scheme == "" or len(scheme) == 1


def _safe_name(text: str) -> str:
    clean = _SAFE_NAME.sub("_", text)
    if clean != text or clean in ("", ".", ".."):
        clean = f"{clean.strip('.') or 'x'}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return clean


def _fsync_dir(path: Path) -> None:
    # The rename is durable only once the directory entry is: best effort (not on Windows).
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
