"""GeoJSON in EPSG:4326 from the UTM grid: footprints, vectorised masks, features."""

from __future__ import annotations

from typing import Any

import numpy as np
import rasterio.features
import shapely
import shapely.geometry
from affine import Affine
from pyproj import Transformer

from .scene import _Grid


def _footprint_4326(grid: _Grid) -> tuple[dict[str, Any], list[float]]:
    geom = _to_4326(shapely.geometry.box(*grid.bounds), grid.epsg)
    return geom, [round(v, 8) for v in shapely.geometry.shape(geom).bounds]


def _to_4326(geom: shapely.Geometry, epsg: int) -> dict[str, Any]:
    to_wgs84 = Transformer.from_crs(epsg, 4326, always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs84.transform(xy[:, 0], xy[:, 1])
        return np.round(np.column_stack([lon, lat]), 8)

    # RFC 7946: exterior rings counter-clockwise.
    out = shapely.orient_polygons(shapely.transform(geom, project), exterior_cw=False)
    return dict(shapely.geometry.mapping(out))


def _mask_geometry(mask: np.ndarray, window: tuple[slice, slice], grid: _Grid) -> dict[str, Any]:
    """Vectorise a window mask on the 10 m grid and return it as GeoJSON in EPSG:4326."""
    transform = grid.transform @ Affine.translation(window[1].start, window[0].start)
    polys = [shapely.geometry.shape(g) for g, v in
             rasterio.features.shapes(mask.astype(np.uint8), mask=mask, transform=transform) if v]
    return _to_4326(shapely.union_all(polys), grid.epsg)


def _feature(geometry: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "properties": properties, "geometry": geometry}
