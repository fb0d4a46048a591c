"""EDGE: items -> lazy scene cube on one UTM grid per AOI.

Reading goes through odc-stac (GDAL underneath), which reads only the
overviews/tiles of each COG that intersect the AOI's window: on HTTP that is
a handful of range requests per asset, not the product. The cube is lazy
(Dask) and chunked ``{"time": 1, "y": chunk_px, "x": chunk_px}``; nothing is read
until ``run.py`` computes.

GDAL settings are applied here, at the edge, through :func:`gdal_env`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import odc.stac
import pystac
import rasterio
import xarray as xr
from odc.geo.geobox import GeoBox

from . import read_errors  # noqa: F401 - odc-stac's read errors name the file (installed on import)
from .errors import DownloadError
from .harmonise import band_scaling

__all__ = ["READ_DATES_PER_TASK", "READ_REGION_BYTES", "aoi_geobox", "centre_lon", "gdal_env", "open_scenes", "read_px",
           "solar_day"]


def aoi_geobox(
    bounds_utm: tuple[float, float, float, float], *, epsg: int, resolution_m: float
) -> GeoBox:
    """Pixel grid covering ``bounds_utm`` (left, bottom, right, top in metres).

    The grid is anchored on multiples of ``resolution_m`` so that 10 m Sentinel-2
    pixels (whose tile origins are multiples of 60 m) are read without resampling.
    """
    left, bottom, right, top = bounds_utm
    r = resolution_m
    left, bottom = np.floor(left / r) * r, np.floor(bottom / r) * r
    right, top = np.ceil(right / r) * r, np.ceil(top / r) * r
    return GeoBox.from_bbox((left, bottom, right, top), crs=f"EPSG:{epsg}", resolution=r)


@contextlib.contextmanager
def gdal_env(options: Mapping[str, str]) -> Iterator[None]:
    """Apply GDAL configuration options for the reads inside the block."""
    with rasterio.Env(**dict(options)):
        yield


#: Dates of one band and spatial chunk read from the window cache by one task.
READ_DATES_PER_TASK = 16
#: Raw bytes (every date and band) of the region one read task covers, at most: reads cover
#: several compute chunks (``acquire.chunk_px``) when the cube is small enough (:func:`read_px`).
READ_REGION_BYTES = 64 * 2**20


def open_scenes(
    items: Sequence[pystac.Item],
    *,
    geobox: GeoBox,
    bands: Sequence[str],
    chunk_px: int = 1024,
    dates_per_chunk: int = 1,
) -> xr.Dataset:
    """Open ``items`` as a lazy cube on ``geobox``.

    Parameters
    ----------
    items
        Normalised items (Earth Search band names; see :func:`pipeline.search.normalise_item`).
    geobox
        Target grid (the AOI's UTM zone); see :func:`aoi_geobox`.
    bands
        Band names to load.
    chunk_px
        Spatial chunk size in pixels.
    dates_per_chunk
        Dates read by one task (chunk size along ``time``).

    Returns
    -------
    xarray.Dataset
        One ``(time, y, x)`` variable per band, raw DN in the asset's dtype, with
        nodata as stored. Coordinates ``scale_<band>``, ``offset_<band>``,
        ``nodata_<band>`` (dims ``time``) carry what
        :func:`pipeline.preprocess.to_reflectance` needs, and ``item_ids`` (``time``)
        the items merged into each time step. Same-day acquisitions of adjacent tiles
        are merged (``groupby="solar_day"``). Lazy: nothing is read.
    """
    if not items:
        raise DownloadError("no items to open; search returned nothing")
    # Regions first: every band and date of one region before the next region's, so each
    # region is masked, detected and composited (unannotated tasks: priority 0) before the
    # next is read. Without it the scheduler reads a band over the whole AOI before the
    # next band, and the whole cube is resident at once (whole-run peak memory at 16x the
    # area: 1.35x that at 1x).
    n_x = -(-geobox.shape[1] // chunk_px)
    with dask.annotate(priority=RegionFirst(n_x)):
        ds = odc.stac.load(
            items,
            bands=list(bands),
            geobox=geobox,
            groupby="solar_day",
            chunks={"time": dates_per_chunk, "y": chunk_px, "x": chunk_px},
            resampling={"scl": "nearest", "*": "nearest"},
            fail_on_error=True,
        )
    return _attach_radiometry(ds, items, bands=bands, lon=centre_lon(geobox))


@dataclass(frozen=True)
class RegionFirst:
    """Dask ``priority`` annotation of the read tasks (keys ``(name, t, y, x)``): minus the
    region's row-major index, so the scheduler reads the regions one after another (a task
    with a higher priority runs first; unannotated tasks have 0). Picklable, for a remote
    scheduler."""

    n_x: int

    def __call__(self, key: Any) -> int:
        if isinstance(key, tuple) and len(key) == 4:
            return -(int(key[2]) * self.n_x + int(key[3]))
        return 0


def read_px(n_dates: int, n_bands: int, *, chunk_px: int, itemsize: int = 2) -> int:
    """Side of the square region one read task covers: the largest multiple of ``chunk_px``
    whose raw data over ``n_dates`` dates and ``n_bands`` bands (``itemsize`` bytes a value:
    Sentinel-2 L2A is uint16) fits :data:`READ_REGION_BYTES`, at least ``chunk_px``.

    A read task opens each file it covers and decompresses whole tiles of it (256 x 256 px in
    the window cache), whatever part it needs: reading per compute chunk, the three-year
    benchmark AOI in 64-px chunks opened every file 20 times, and a re-run's 9 new dates cost
    more to read than the detection over all 103. The cap keeps the raw data waiting to be
    split into compute chunks small (the region's chunks are masked once every band and date
    of them is read).

    Examples
    --------
    >>> read_px(9, 7, chunk_px=64)  # a quarter's new dates: one read covers 704 x 704 px
    704
    >>> read_px(103, 7, chunk_px=64)  # three years: 192 x 192 px
    192
    >>> read_px(2000, 7, chunk_px=1024)  # never below the compute chunk
    1024
    """
    side = int((READ_REGION_BYTES / max(1, n_dates * n_bands * itemsize)) ** 0.5)
    return max(chunk_px, side // chunk_px * chunk_px)


def graph_chunk_px(chunk_px: int, *, n_dates: int, n_graph_dates: int) -> int:
    """Side of the spatial chunks of a graph that holds ``n_graph_dates`` of a run's
    ``n_dates`` dates (a re-run: its new dates and the stored ones detection and the new
    composites read): ``chunk_px`` scaled by ``sqrt(n_dates / n_graph_dates)``, so that a
    task holds no more pixel-dates than a chunk of the whole series (``acquire.chunk_px``
    is the memory budget of a task). Chunking changes no value (halos included), only the
    number of tasks: in 64-px chunks, the three-year benchmark AOI's re-run spent most of
    its compute stage on per-task overhead.

    Examples
    --------
    >>> graph_chunk_px(64, n_dates=103, n_graph_dates=27)  # a quarter added to three years
    125
    >>> graph_chunk_px(1024, n_dates=103, n_graph_dates=103)  # a first run: unchanged
    1024
    """
    ratio = n_dates / max(1, n_graph_dates)
    return max(chunk_px, int(chunk_px * ratio**0.5))


def centre_lon(geobox: GeoBox) -> float:
    """Longitude of the centre of ``geobox`` (degrees east)."""
    return float(geobox.geographic_extent.centroid.coords[0][0])


def solar_day(when: dt.datetime, lon: float) -> dt.date:
    """The local solar day of ``when`` (UTC, naive or aware) at longitude ``lon`` (degrees east)."""
    # Same rule as odc-stac's groupby="solar_day": local solar time from longitude.
    return (when + dt.timedelta(seconds=lon * 240)).date()


def _attach_radiometry(
    ds: xr.Dataset, items: Sequence[pystac.Item], *, bands: Sequence[str], lon: float
) -> xr.Dataset:
    by_day: dict[dt.date, list[pystac.Item]] = {}
    for it in items:
        assert it.datetime is not None  # search guarantees a datetime
        by_day.setdefault(solar_day(it.datetime.replace(tzinfo=None), lon), []).append(it)
    times = ds["time"].values.astype("datetime64[us]").astype(dt.datetime)
    groups = [by_day.get(solar_day(t, lon), []) for t in times]
    coords: dict[str, tuple[str, np.ndarray]] = {}
    for band in bands:
        scales, offsets, nodatas = [], [], []
        for group in groups:
            s, o, n = band_scaling(group[0], band).as_tuple() if group else (1.0, 0.0, 0.0)
            scales.append(s)
            offsets.append(o)
            nodatas.append(n)
        coords[f"scale_{band}"] = ("time", np.asarray(scales, dtype="float64"))
        coords[f"offset_{band}"] = ("time", np.asarray(offsets, dtype="float64"))
        coords[f"nodata_{band}"] = ("time", np.asarray(nodatas, dtype="float64"))
    coords["item_ids"] = ("time", np.asarray([";".join(i.id for i in g) for g in groups], dtype=object))
    return ds.assign_coords(coords)
