"""Does a raster file agree with its STAC item? Checks shared by the window cache's reads.

- :func:`check_header`: a header GDAL parsed from a truncated answer (retryable);
- :class:`DeclaredGrid` / :func:`declared_grid`: the item's ``proj:*`` for one asset, and how
  an open file disagrees with it (:class:`AssetMismatchError`, not retried);
- :func:`check_local_asset`: why a local file cannot serve as an asset (missing, unreadable,
  truncated, or disagreeing with ``proj:*``).
"""

from __future__ import annotations

import math
import os
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
