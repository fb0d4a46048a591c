"""EDGE: atomic writers for every output file.

Every file appears complete or not at all: it is written to a temporary name in
the same folder, flushed, then renamed over the target (``os.replace`` is atomic
on POSIX within one file system).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import geopandas as gpd
import pandas as pd

from .errors import ConfigError

__all__ = ["atomic_path", "atomic_write", "read_run_manifest", "write_csv", "write_geojson", "write_json"]


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


def write_geojson(frame: gpd.GeoDataFrame, target: str | Path) -> Path:
    """Write ``frame`` as an EPSG:4326 GeoJSON FeatureCollection, atomically."""
    data = frame.to_crs(4326).to_json(drop_id=True, to_wgs84=True)
    with atomic_write(target) as fh:
        fh.write(data)
        fh.write("\n")
    return Path(target)


def read_run_manifest(run_dir: str | Path) -> dict[str, Any]:
    """The ``manifest.json`` of a monitor run's output folder.

    Raises
    ------
    ConfigError
        ``run_dir`` holds no readable manifest (not a monitor run's output folder).
    """
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; pass --run the output folder of a `python -m pipeline monitor` run")
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); re-run monitor into that folder") from None
