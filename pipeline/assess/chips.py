"""EDGE: before/after image chips of sample points, for the analyst who labels them.

Each point gets two true-colour PNGs read from the run's composite COGs
(``composites/<aoi>_<product>_<start>_<end>.tif``, :func:`pipeline.composites.write_composites`):
*before* from the earliest composite that has clear data at the point, *after* from the latest.
Bands are found by name: ``write_composites`` stores each band's name (Earth Search naming:
``red``, ``green``, ``blue``) as its GDAL band description, so no band order is assumed; a COG
without those descriptions is rejected. Composite dates come from the ``start`` / ``end``
tags, or from the file name when the tags are missing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import rasterio
from PIL import Image
from rasterio.io import DatasetReader
from rasterio.windows import Window

from pipeline.errors import ConfigError
from pipeline.io import atomic_path

__all__ = ["RGB_BANDS", "write_chips"]

#: Band descriptions (as ``write_composites`` writes them) of the chips' red, green and blue.
RGB_BANDS: tuple[str, str, str] = ("red", "green", "blue")
#: ``<anything>_<start>_<end>.tif`` with ISO dates: the composite file names.
_NAME_DATES = re.compile(r"_(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})\.tiff?$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
#: Crosshair colour (yellow, visible on soil, water and vegetation alike).
_CROSS_RGB = (255, 255, 0)


@dataclass(frozen=True)
class _Composite:
    """One open composite COG and what the chips need of it."""

    path: Path
    src: DatasetReader
    bands: tuple[int, int, int]
    start: dt.date
    end: dt.date


def write_chips(
    points: pd.DataFrame,
    composites: Sequence[str | Path],
    out_dir: str | Path,
    *,
    size_px: int = 64,
    zoom: int = 4,
) -> pd.DataFrame:
    """Write a before and an after PNG chip around every point.

    Parameters
    ----------
    points
        Sample points with ``point_id``, ``lon`` and ``lat`` (EPSG:4326 degrees;
        :func:`pipeline.assess.design.draw_sample`).
    composites
        Composite COGs (int16 reflectance x 10 000, band descriptions naming the bands),
        any CRS; typically every ``composites/*.tif`` of the AOI.
    out_dir
        Folder of the chips ``<point_id>_before.png`` and ``<point_id>_after.png``; created.
    size_px
        Side of a chip in composite pixels, centred on the point's pixel.
    zoom
        Each composite pixel becomes ``zoom x zoom`` PNG pixels (nearest neighbour).

    Returns
    -------
    pandas.DataFrame
        Index of ``points``: ``point_id``, ``chip_before``, ``chip_after`` (paths as text;
        empty where no composite has clear red/green/blue at the point, and ``chip_before``
        empty where only one has) and ``before_source`` / ``after_source`` (composite file names).
        Both chips of a point share one 2-98 % stretch per band, so their colours compare; a
        crosshair with an open centre marks the point.

    Raises
    ------
    ConfigError
        Bad ``points``, ``size_px`` or ``zoom``, or a composite that cannot be read, lacks
        the ``red``/``green``/``blue`` band descriptions, or has no dates.
    """
    _check_points(points)
    if not 8 <= size_px <= 1024 or not 1 <= zoom <= 16:
        raise ConfigError(f"size_px {size_px} / zoom {zoom} out of range; use 8-1024 pixels and a zoom of 1-16")
    out = Path(out_dir)
    rows = []
    with contextlib.ExitStack() as stack:
        opened = sorted((_open(Path(p), stack) for p in composites), key=lambda c: (c.start, c.end, c.path.name))
        for pid, lon, lat in zip(points["point_id"], points["lon"], points["lat"], strict=True):
            rows.append(_chips_for_point(str(pid), float(lon), float(lat), opened, out, size_px=size_px, zoom=zoom))
    columns = ["point_id", "chip_before", "chip_after", "before_source", "after_source"]
    return pd.DataFrame(rows, columns=columns, index=points.index)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _chips_for_point(
    pid: str, lon: float, lat: float, opened: list[_Composite], out: Path, *, size_px: int, zoom: int
) -> list[str]:
    covering = [(c, xy) for c in opened if (xy := _clear_at(c, lon, lat)) is not None]
    if not covering:
        return [pid, "", "", "", ""]
    pairs = [("before", *covering[0]), ("after", *covering[-1])] if len(covering) > 1 else [("after", *covering[0])]
    windows = {when: _read_rgb(c, xy, size_px) for when, c, xy in pairs}
    stretched = _stretch(list(windows.values()))
    paths = {"before": "", "after": ""}
    sources = {"before": "", "after": ""}
    for (when, comp, xy), rgb in zip(pairs, stretched, strict=True):
        image = np.repeat(np.repeat(rgb, zoom, axis=0), zoom, axis=1)
        col, row = ~comp.src.transform @ xy
        offset = size_px // 2
        _crosshair(image, (col - np.floor(col) + offset) * zoom, (row - np.floor(row) + offset) * zoom, zoom)
        target = out / f"{pid}_{when}.png"
        with atomic_path(target, suffix=".png") as tmp:
            Image.fromarray(image, mode="RGB").save(tmp, format="PNG")
        paths[when], sources[when] = str(target), comp.path.name
    return [pid, paths["before"], paths["after"], sources["before"], sources["after"]]


def _open(path: Path, stack: contextlib.ExitStack) -> _Composite:
    try:
        src = stack.enter_context(rasterio.open(path))
    except (OSError, rasterio.errors.RasterioError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot read composite {path}: {reason}; pass the run's composites/*.tif") from None
    names = [str(d) if d else "" for d in src.descriptions]
    missing = [b for b in RGB_BANDS if b not in names]
    if missing or src.crs is None:
        raise ConfigError(
            f"composite {path} has no band description(s) {missing} or no CRS; "
            "pass COGs written by pipeline.composites.write_composites (bands named red, green, blue)"
        )
    tags = src.tags()
    dates: tuple[str | None, ...] = (tags.get("start"), tags.get("end"))
    if not all(dates):
        match = _NAME_DATES.search(path.name)
        dates = match.groups() if match else (None, None)
    try:
        start, end = (dt.date.fromisoformat(str(d)) for d in dates)
    except ValueError:
        raise ConfigError(
            f"composite {path} has no start/end dates (tags or a name ending _<start>_<end>.tif); "
            "pass COGs written by pipeline.composites.write_composites"
        ) from None
    rgb = tuple(names.index(b) + 1 for b in RGB_BANDS)
    return _Composite(path=path, src=src, bands=(rgb[0], rgb[1], rgb[2]), start=start, end=end)


def _clear_at(comp: _Composite, lon: float, lat: float) -> tuple[float, float] | None:
    """The point in the composite's CRS if its pixel there has clear red, green and blue, else ``None``."""
    x, y = _transformer(comp.src.crs.to_wkt()).transform(lon, lat)
    left, bottom, right, top = comp.src.bounds
    if not (left <= x < right and bottom < y <= top):
        return None
    row, col = comp.src.index(x, y)
    pixel = comp.src.read(list(comp.bands), window=Window(col, row, 1, 1))
    nodata = comp.src.nodata
    return (x, y) if nodata is None or not (pixel == nodata).any() else None


def _read_rgb(comp: _Composite, xy: tuple[float, float], size_px: int) -> np.ndarray:
    """``(size_px, size_px, 3)`` float reflectance counts around ``xy`` (NaN: nodata or off the image)."""
    row, col = comp.src.index(*xy)
    half = size_px // 2
    nodata = comp.src.nodata if comp.src.nodata is not None else -32768
    window = Window(col - half, row - half, size_px, size_px)
    data = comp.src.read(list(comp.bands), window=window, boundless=True, fill_value=nodata).astype("float64")
    data[data == nodata] = np.nan
    return np.moveaxis(data, 0, -1)


def _stretch(chips: list[np.ndarray]) -> list[np.ndarray]:
    """Per band 2-98 % linear stretch computed over all ``chips`` together; uint8, nodata black."""
    pooled = np.concatenate([c.reshape(-1, 3) for c in chips])
    out = []
    with np.errstate(all="ignore"):
        lo, hi = (np.nanpercentile(pooled, q, axis=0) if np.isfinite(pooled).any() else np.zeros(3) for q in (2, 98))
        span = np.where(hi > lo, hi - lo, 1.0)
        for chip in chips:
            scaled = np.clip((chip - lo) / span, 0, 1) * 255
            out.append(np.nan_to_num(scaled, nan=0.0).astype("uint8"))
    return out


def _crosshair(image: np.ndarray, cx: float, cy: float, zoom: int) -> None:
    """Draw four arms around ``(cx, cy)`` (image pixels), leaving the point's pixel visible."""
    ny, nx = image.shape[:2]
    x, y = min(max(int(cx), 0), nx - 1), min(max(int(cy), 0), ny - 1)
    gap, arm = max(zoom, 3), max(3 * zoom, 6)
    for lo, hi in ((-gap - arm, -gap), (gap + 1, gap + 1 + arm)):
        image[max(y + lo, 0) : max(y + hi, 0), x] = _CROSS_RGB
        image[y, max(x + lo, 0) : max(x + hi, 0)] = _CROSS_RGB


@functools.lru_cache(maxsize=16)
def _transformer(crs_wkt: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(4326, crs_wkt, always_xy=True)


def _check_points(points: pd.DataFrame) -> None:
    missing = [c for c in ("point_id", "lon", "lat") if c not in points.columns]
    if missing:
        raise ConfigError(f"points lack column(s) {missing}; pass draw_sample()'s result or the sample CSV")
    bad = [str(p) for p in points["point_id"] if not _SAFE_ID.match(str(p))]
    if bad:
        raise ConfigError(f"point_id {bad[0]!r} is not safe in a file name; use letters, digits, '_', '-', '.'")
