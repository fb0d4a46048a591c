"""EDGE: atomic writers for every output file.

Every file appears complete or not at all: it is written to a temporary name in
the same folder, flushed, then renamed over the target (``os.replace`` is atomic
on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import sqlite3
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio.raw
import shapely

from .errors import ConfigError
from .geometry import COORD_DECIMALS_DEG, round_coordinates, valid_polygonal

log = logging.getLogger("pipeline")

__all__ = [
    "BackgroundWrites", "atomic_path", "atomic_write", "nearest_existing", "probe_writable", "read_run_manifest",
    "relative_paths", "write_csv", "write_geojson", "write_gpkg", "write_json",
]


def nearest_existing(path: Path) -> Path:
    """``path``, or the nearest of its parents that exists (a dangling symbolic link counts)."""
    probe = path
    while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
        probe = probe.parent
    return probe


def probe_writable(folder: Path) -> None:
    """Make and remove a folder in ``folder`` at once: what a writer there will do, leaving
    nothing. Raises the ``OSError`` a writer would meet (permission, read-only file system)."""
    os.rmdir(tempfile.mkdtemp(prefix=".kp-write-check-", dir=folder))


@contextlib.contextmanager
def atomic_path(target: str | Path, *, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it over ``target`` on success.

    ``suffix`` lets writers that infer the format from the extension (GDAL) see the right one.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.part.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; outputs are for sharing, like any file written with open().
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(target: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file for writing; it replaces ``target`` when the block succeeds."""
    with atomic_path(target) as tmp:
        encoding = None if "b" in mode else "utf-8"
        with open(tmp, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


class BackgroundWrites:
    """Output files written one after another in a background thread while the caller goes on.

    A run hands its composites' COGs here, so that GDAL encodes them (without the
    interpreter lock) while the sites are traced and the bulletin is drawn. :meth:`wait`
    re-raises the first failure; leaving the ``with`` block waits for every write, so none
    outlives the block (leaving it on an error drops the writes not yet started). Each writer
    must write atomically (:func:`atomic_path`).
    """

    def __init__(self, *, max_queued: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kp-write")
        self._pending: list[Future[Any]] = []
        self._max_queued = max(1, max_queued)
        self._open = threading.Event()
        self._open.set()

    def submit(self, write: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Queue ``write(*args, **kwargs)``. With ``max_queued`` writes unfinished, first wait for
        the oldest: each holds its data (an AOI's composites), and AOIs finishing faster than
        their files are written would otherwise pile up in memory."""
        unfinished = [f for f in self._pending if not f.done()]
        if len(unfinished) >= self._max_queued and self._open.is_set():
            futures.wait(unfinished[: len(unfinished) - self._max_queued + 1])
        self._pending.append(self._pool.submit(self._start, write, args, kwargs))

    def _start(self, write: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self._open.wait()
        return write(*args, **kwargs)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No write starts inside the block (the one under way ends). A run closes its local
        cluster so: a worker closing on a busy machine may find its heartbeat's connection
        already closed and log a traceback (``distributed`` 2026.8)."""
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    def wait(self) -> None:
        """Wait for every queued write; raise the first one's error (in queue order; the
        others are logged)."""
        pending, self._pending = self._pending, []
        futures.wait(pending)
        errors = [exc for exc in (f.exception() for f in pending) if exc is not None]
        for exc in errors[1:]:
            log.error("a background write failed too: %s", exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> BackgroundWrites:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        # On an error the writes not yet started are dropped; the one under way ends (atomically).
        self._open.set()
        self._pool.shutdown(wait=True, cancel_futures=exc_type is not None)


def relative_paths(obj: Any, base: str | Path) -> Any:
    """``obj`` (JSON-like) with every local absolute path or ``file://`` URI in it rewritten
    relative to ``base`` (POSIX separators), also those a message names; URLs and other
    strings are kept.

    Output folders move (archived, copied to a share, attached to a report): a manifest that
    names ``/home/analyst/runs/q3/scenario/x.tif`` describes one machine, while
    ``scenario/x.tif`` stays true wherever the folder goes.

    >>> relative_paths({"a": ["/tmp/q3/scenario/x.tif", "file:///tmp/other.tif", "https://x/y.tif", "2024-01-01"]},
    ...                "/tmp/q3")
    {'a': ['scenario/x.tif', '../other.tif', 'https://x/y.tif', '2024-01-01']}
    >>> relative_paths("cannot read /tmp/q3/cache/B04.tif (1/2 tries; see https://x/y): gone.", "/tmp/q3")
    'cannot read cache/B04.tif (1/2 tries; see https://x/y): gone.'
    >>> relative_paths("HTTP 404 for /v1/search; /vsicurl/https://x/y.tif; pointer /features/0", "/tmp/q3")
    'HTTP 404 for /v1/search; /vsicurl/https://x/y.tif; pointer /features/0'
    """
    base = os.path.abspath(base)
    if isinstance(obj, dict):
        return {k: relative_paths(v, base) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [relative_paths(v, base) for v in obj]
    if isinstance(obj, Path):
        obj = str(obj)
    if isinstance(obj, str):
        path = urllib.parse.unquote(obj.removeprefix("file://")) if obj.startswith("file:///") else obj
        if os.path.isabs(path) and "\n" not in path and not _EMBEDDED_PATH.search(path[1:]) and _local(path):
            return Path(os.path.relpath(path, base)).as_posix()
        return _EMBEDDED_PATH.sub(lambda m: _relative_in_text(m, base), obj)
    return obj


#: An absolute path (or ``file://`` URI) inside a message: after a space, quote, bracket or
#: ``=``, up to a space, quote, bracket, comma or semicolon, without a closing ``.`` or ``:``.
_EMBEDDED_PATH = re.compile(
    r"""(?:(?<=^)|(?<=[\s('"=\[]))(file://)?(/[^/\s'"(),;\[\]][^\s'"(),;\[\]]*[^\s'"(),;\[\].:])""")


def _relative_in_text(match: re.Match[str], base: str) -> str:
    """A path a message names, relative to ``base``, when it is one of this machine's: its first
    folder exists here (``/home``, ``/tmp``...). Others stay as they are: URL paths
    (``/v1/search``), JSON pointers (``/features/0``), GDAL's ``/vsicurl/https://...``."""
    path = urllib.parse.unquote(match.group(2)) if match.group(1) else match.group(2)
    return Path(os.path.relpath(path, base)).as_posix() if _local(path) else match.group(0)


def _local(path: str) -> bool:
    """Whether absolute ``path`` is in one of this machine's top folders (not GDAL's ``/vsi...``)."""
    top = path.split("/")[1] if path.count("/") else ""
    return bool(top) and not top.startswith("vsi") and os.path.isdir("/" + top)


def write_json(obj: Any, target: str | Path) -> Path:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    with atomic_write(target) as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
    return Path(target)


def write_csv(frame: pd.DataFrame, target: str | Path) -> Path:
    """Write ``frame`` as CSV without the index, atomically."""
    with atomic_write(target) as fh:
        frame.to_csv(fh, index=False, lineterminator="\n")
    return Path(target)


def write_geojson(
    frame: gpd.GeoDataFrame, target: str | Path, *, id_column: str | None = None,
    decimals: int = COORD_DECIMALS_DEG,
) -> Path:
    """Write ``frame`` as an EPSG:4326 GeoJSON FeatureCollection, atomically.

    Geometries are made valid (polygonal parts kept), their coordinates rounded to
    ``decimals`` (default 7, about 1 cm) and their rings wound as RFC 7946 section 3.1.6 asks
    (exteriors counterclockwise, holes clockwise); ``id_column`` becomes each feature's ``id``
    (RFC 7946 section 3.2) and stays a property too.
    """
    out = frame.to_crs(4326)
    for column in out.columns:
        if column != out.geometry.name and pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].map(_iso_date)  # JSON has no date type: ISO 8601 text
    geoms = shapely.orient_polygons(np.array(round_coordinates(out.geometry, decimals=decimals), dtype=object),
                                    exterior_cw=False)
    out = out.set_geometry(gpd.GeoSeries(geoms, index=out.index, crs=4326))
    if id_column is not None:
        out = out.set_index(pd.Index(out[id_column].astype(str), name=None))
    data = out.to_json(drop_id=id_column is None, to_wgs84=True)
    with atomic_write(target) as fh:
        fh.write(data)
        fh.write("\n")
    return Path(target)


def read_run_manifest(run_dir: str | Path) -> dict[str, Any]:
    """The ``manifest.json`` of a monitor run's output folder.

    Raises
    ------
    ConfigError
        ``run_dir`` holds no readable manifest (not a monitor run's output folder), or a run is
        writing it or was killed there (its ``RUN_INCOMPLETE`` marker).
    """
    # runfolder imports this module; the marker check needs it only here.
    from .runfolder import INCOMPLETE_MARKER, incomplete_run

    run = Path(run_dir)
    marker = incomplete_run(run)
    if marker is not None:  # a run is writing the folder, or was killed: its files do not form one run
        raise ConfigError(
            f"{run} holds {INCOMPLETE_MARKER}: a monitor run started {marker.get('started', '?')} is writing it or "
            "was killed there; let it finish, or run monitor into that folder again, then assess or review"
        )
    path = run / "manifest.json"
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; pass --run the output folder of a `python -m pipeline monitor` run")
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); re-run monitor into that folder") from None


def write_gpkg(
    frame: gpd.GeoDataFrame, target: str | Path, *, layer: str, date_columns: tuple[str, ...] = (),
    last_change: dt.date | None = None,
) -> Path:
    """Write ``frame`` as one GeoPackage layer, atomically, with valid geometries and real
    ``Date`` fields for ``date_columns`` (ISO strings or dates; empty or unparsable: null).

    GeoPandas would store ISO date strings as text; the columns are written through
    :func:`pyogrio.raw.write` as ``datetime64[D]`` instead, which GDAL stores as ``Date``.
    A layer mixing Polygons and MultiPolygons is written as MultiPolygon; an empty frame gives
    an empty Polygon layer with the frame's fields. ``last_change``: the layer's
    ``gpkg_contents.last_change`` (GDAL writes the current time there: the same data would
    differ by that timestamp), as midnight UTC of that day.
    """
    geoms = valid_polygonal(frame.geometry)
    kinds = {g.geom_type for g in geoms if g is not None and not g.is_empty}
    geometry_type = next(iter(kinds)) if len(kinds) == 1 else ("Polygon" if not kinds else "Unknown")
    if kinds == {"Polygon", "MultiPolygon"}:
        geoms = [shapely.MultiPolygon([g]) if g is not None and g.geom_type == "Polygon" else g for g in geoms]
        geometry_type = "MultiPolygon"
    names = [c for c in frame.columns if c != frame.geometry.name]
    fields = [_gpkg_field(frame[c], date=c in date_columns) for c in names]
    wkb = np.array([None if g is None else shapely.to_wkb(g) for g in geoms], dtype=object)
    crs = frame.crs.to_wkt() if frame.crs is not None else None
    with atomic_path(target, suffix=".gpkg") as tmp:
        tmp.unlink()  # GDAL creates the GeoPackage itself
        pyogrio.raw.write(tmp, wkb, fields, names, layer=layer, driver="GPKG", geometry_type=geometry_type, crs=crs)
        if last_change is not None:
            with contextlib.closing(sqlite3.connect(tmp)) as db, db:
                db.execute("UPDATE gpkg_contents SET last_change = ?",
                           (f"{last_change.isoformat()}T00:00:00.000Z",))
    return Path(target)


def _iso_date(value: Any) -> str | None:
    if pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()


def _gpkg_field(values: pd.Series, *, date: bool) -> np.ndarray:
    """One column as the array :func:`pyogrio.raw.write` maps to the right OGR field type."""
    if date:
        return pd.to_datetime(values, errors="coerce").to_numpy(dtype="datetime64[D]")
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.to_numpy()
    text = np.array([None if pd.isna(v) else str(v) for v in values], dtype=object)
    return text if len(text) else np.array([], dtype=str)  # no value: still a text field
