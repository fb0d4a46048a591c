"""Does a raster file agree with its STAC item? Checks shared by the window cache's reads.

- :func:`check_header`: a header GDAL parsed from a truncated answer (retryable);
- :class:`DeclaredGrid` / :func:`declared_grid`: the item's ``proj:*`` for one asset, and how
  an open file disagrees with it (:class:`AssetMismatchError`, not retried);
- :func:`check_local_asset`: why a local file cannot serve as an asset (missing, unreadable,
  truncated, or disagreeing with ``proj:*``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import pystac
import rasterio
import rasterio.crs
import rasterio.errors

from .http import TransientError, describe_error

__all__ = ["AssetMismatchError", "DeclaredGrid", "check_header", "check_local_asset", "declared_grid"]


def check_header(src: Any, dtype: str | None) -> None:
    """Refuse a header GDAL parsed from a truncated answer (then the read is retried).

    GDAL takes a short body on the first range request of a small file for the file's
    end: the GeoTIFF keys beyond the cut are silently missing. A georeferenced COG
    always has a CRS and a non-identity transform, and the dtype the item declares.
    """
    problems = []
    if src.crs is None:
        problems.append("no CRS")
    if src.transform.is_identity:
        problems.append("no geotransform")
    if dtype and src.dtypes[0] != dtype:
        problems.append(f"dtype {src.dtypes[0]}, item says {dtype}")
    if problems:
        raise TransientError(f"incomplete or unexpected GeoTIFF header ({', '.join(problems)})")


class AssetMismatchError(ValueError):
    """An asset's file disagrees with what its item declares (``proj:*``): not retried."""


@dataclass(frozen=True)
class DeclaredGrid:
    """What an item declares about one asset's grid (``proj:*``, asset level first)."""

    crs: str | None
    shape: tuple[int, int] | None
    transform: tuple[float, ...] | None

    def disagreement(self, src: Any) -> str | None:
        """How the open dataset ``src`` disagrees with the declaration, else ``None``."""
        if self.crs is not None and src.crs is not None:
            try:
                declared = rasterio.crs.CRS.from_user_input(self.crs)
            except rasterio.errors.CRSError:
                declared = None
            if declared is not None and declared != src.crs:
                return f"file CRS {_crs_text(src.crs)} disagrees with the item's proj:* CRS {self.crs}"
        if self.shape is not None and tuple(self.shape) != (src.height, src.width):
            return f"file shape {src.height}x{src.width} disagrees with the item's proj:shape {list(self.shape)}"
        if self.transform is not None:
            actual = tuple(src.transform)[:6]
            pixel = max(abs(actual[0]), abs(actual[4]), 1e-9)
            if any(abs(a - b) > 1e-3 * pixel for a, b in zip(actual, self.transform, strict=False)):
                return (f"file transform {[round(v, 6) for v in actual]} disagrees with the item's proj:transform "
                        f"{list(self.transform)}")
        return None


def declared_grid(asset: pystac.Asset, item: pystac.Item) -> DeclaredGrid | None:
    """The asset's ``proj:*`` (CRS from the asset, else the item; shape and transform from the
    asset only: item-level ones describe the finest band, not a 20 m one)."""
    fields, props = asset.extra_fields, item.properties
    crs: str | None = None
    for source in (fields, props):
        if source.get("proj:code"):
            crs = str(source["proj:code"])
        elif source.get("proj:epsg"):
            crs = f"EPSG:{int(source['proj:epsg'])}"
        elif source.get("proj:wkt2"):
            crs = str(source["proj:wkt2"])
        if crs is not None:
            break
    shape = fields.get("proj:shape")
    transform = fields.get("proj:transform")
    try:
        shape_t = (int(shape[0]), int(shape[1])) if shape is not None and len(shape) == 2 else None
        transform_t = tuple(float(v) for v in transform[:6]) if transform is not None and len(transform) >= 6 else None
    except (TypeError, ValueError):
        shape_t = transform_t = None
    if crs is None and shape_t is None and transform_t is None:
        return None
    return DeclaredGrid(crs=crs, shape=shape_t, transform=transform_t)


def check_local_asset(href: str, asset: pystac.Asset, item: pystac.Item) -> str | None:
    """Why the local file ``href`` cannot serve as ``asset`` of ``item``, else ``None``.

    Opens the file (missing, unreadable or not a raster fail here), checks the header as
    for a remote window (:func:`check_header`), compares CRS, shape and transform with the
    item's ``proj:*``, and, for a GeoTIFF, that no tile or strip of band 1 lies beyond the
    end of the file (a truncated copy: GDAL opens it and fails only when the pixels are read).
    """
    path = href.removeprefix("file://")
    rb = (asset.extra_fields.get("raster:bands") or [{}])[0]
    try:
        with rasterio.open(path) as src:
            try:
                check_header(src, rb.get("data_type"))
            except TransientError as exc:
                return str(exc)
            declared = declared_grid(asset, item)
            problem = declared.disagreement(src) if declared is not None else None
            if problem is not None:
                return problem
            if src.driver in ("GTiff", "COG"):
                return _beyond_end(src, os.path.getsize(path))
    except (rasterio.errors.RasterioError, OSError) as exc:
        return describe_error(exc)
    return None


def _beyond_end(src: Any, size: int) -> str | None:
    """A GeoTIFF block of band 1 whose bytes lie past ``size`` (the file was cut short)."""
    rows, cols = src.block_shapes[0]
    ny, nx = math.ceil(src.height / rows), math.ceil(src.width / cols)
    if ny * nx > 1_000_000:
        return None
    for y in range(ny):
        for x in range(nx):
            offset = src.get_tag_item(f"BLOCK_OFFSET_{x}_{y}", "TIFF", bidx=1)
            length = src.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx=1)
            if offset is None or length is None:
                return None  # GDAL does not expose the layout: nothing to check
            if int(offset) + int(length) > size:
                return f"truncated file: tile ({x}, {y}) ends at byte {int(offset) + int(length)} of {size}"
    return None


def _crs_text(crs: Any) -> str:
    epsg = crs.to_epsg() if crs is not None else None
    return f"EPSG:{epsg}" if epsg else str(crs)[:60]


class CheckedFiles:
    """Local files that passed :func:`check_local_asset`, remembered between runs.

    A static catalog of local files (an archive, the offline demo) is checked file by file on
    every run: opening each band of each item and reading its tile index (about a second for
    the 721 files of three years over one AOI, on every quarterly re-run). A file unchanged
    since it passed (same path, size and modification time in nanoseconds) checked against the
    same declared grid and data type passes again; anything else is checked anew. Kept in
    ``<cache>/checked-local-files.json``, written atomically after each AOI's fetch (two runs
    at once: the last write wins, and the other's entries are checked again next time).

    AOIs fetched at the same time share one record (:meth:`for_cache`), and a file is checked
    by one thread while the others wanting it wait for the outcome: AOIs over the same tiles
    fetched in parallel used to check every file once each (8 AOIs of one scene: 8 times).
    """

    FILE = "checked-local-files.json"

    #: The record of each cache folder while some fetch uses it (:meth:`for_cache`).
    _open: weakref.WeakValueDictionary[str, CheckedFiles] = weakref.WeakValueDictionary()
    _open_guard = threading.Lock()

    @classmethod
    def for_cache(cls, cache_root: str | os.PathLike[str]) -> CheckedFiles:
        """The record of ``cache_root`` that the fetches running now in this process share
        (read from its file when none is running)."""
        root = os.path.abspath(os.fspath(cache_root))
        with cls._open_guard:
            record = cls._open.get(root)
            if record is None:
                record = cls._open[root] = cls(root)
            return record

    def __init__(self, cache_root: str | os.PathLike[str]) -> None:
        self.path = os.path.join(os.fspath(cache_root), self.FILE)
        self._lock = threading.Lock()
        self._saving = threading.Lock()
        self._checking: dict[str, threading.Lock] = {}  # a lock per file: checked by one thread at a time
        self._new = False
        try:
            with open(self.path, encoding="utf-8") as fh:
                loaded = json.load(fh)
            self._passed: dict[str, str] = (
                {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {})
        except (OSError, ValueError):
            self._passed = {}

    @staticmethod
    def _key(path: str, asset: pystac.Asset, item: pystac.Item) -> str | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        declared = declared_grid(asset, item)
        rb = (asset.extra_fields.get("raster:bands") or [{}])[0]
        blob = json.dumps([st.st_size, st.st_mtime_ns, rb.get("data_type"), None if declared is None else
                           [declared.crs and str(declared.crs), declared.shape, declared.transform]], default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def check(self, href: str, asset: pystac.Asset, item: pystac.Item) -> str | None:
        """:func:`check_local_asset`, skipped for a file that passed unchanged before."""
        path = href.removeprefix("file://")
        key = self._key(path, asset, item)
        if key is not None and self._passed.get(path) == key:
            return None
        with self._lock:
            one_at_a_time = self._checking.setdefault(path, threading.Lock())
        with one_at_a_time:
            if key is not None and self._passed.get(path) == key:
                return None  # passed while this thread waited
            problem = check_local_asset(href, asset, item)
            if problem is None and key is not None:
                with self._lock:
                    self._passed[path] = key
                    self._new = True
        return problem

    @property
    def changed(self) -> bool:
        """Files passed that are not in the record yet."""
        return self._new

    def save(self) -> None:
        """Write the remembered files (atomically; nothing when nothing new passed); the cache
        folder must exist."""
        from .io import atomic_write

        with self._saving:  # AOIs sharing the record: one write at a time, each of the latest
            with self._lock:
                if not self._new:
                    return
                blob = dict(self._passed)
                self._new = False
            try:
                with atomic_write(self.path) as fh:
                    json.dump(blob, fh)
            except OSError:
                pass  # only a cost: the files are checked again next run
