"""PURE helpers that keep output geometries valid: polygonal repair and coordinate precision.

Polygons traced from pixels (``rasterio.features.shapes``) touch themselves at pixel corners:
a hole that meets the shell at one corner is a ring self-intersection, two blocks that share
only a corner make a polygon whose interior is disconnected. GIS software reads those
differently, or refuses them. :func:`valid_polygonal` repairs them with
:func:`shapely.make_valid` and keeps only the polygonal parts (a corner-touching repair can
also yield points or lines, which are no excavation).
"""

from __future__ import annotations

from collections.abc import Iterable

import shapely
from shapely.geometry.base import BaseGeometry

__all__ = ["COORD_DECIMALS_DEG", "polygonal_part", "round_coordinates", "valid_polygonal"]

#: Decimals kept for longitude and latitude in output files: 1e-7 degree is about 1 cm,
#: a thousandth of a Sentinel-2 pixel (more digits are noise from reprojection).
COORD_DECIMALS_DEG = 7


def polygonal_part(geom: BaseGeometry | None) -> BaseGeometry | None:
    """The Polygon or MultiPolygon part of ``geom`` (``None`` and empty pass through).

    >>> polygonal_part(shapely.GeometryCollection([shapely.box(0, 0, 1, 1), shapely.Point(5, 5)])).wkt
    'POLYGON ((1 0, 1 1, 0 1, 0 0, 1 0))'
    """
    if geom is None or geom.is_empty:
        return geom
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    polys = [p for g in parts for p in (g.geoms if g.geom_type == "MultiPolygon" else [g])]
    if not polys:
        return shapely.Polygon()
    return polys[0] if len(polys) == 1 else shapely.MultiPolygon(polys)


def valid_polygonal(geoms: Iterable[BaseGeometry | None]) -> list[BaseGeometry | None]:
    """Each geometry made valid (:func:`shapely.make_valid`), polygonal parts only.

    Valid geometries are returned as they are; the area of a repaired pixel polygon does
    not change (only zero-width corner contacts are resolved).

    Examples
    --------
    Two pixels that touch at one corner, traced as one ring (a ring self-intersection):

    >>> bad = shapely.Polygon([(0, 0), (1, 0), (1, 1), (2, 1), (2, 2), (1, 2), (1, 1), (0, 1)])
    >>> shapely.is_valid_reason(bad)
    'Ring Self-intersection[1 1]'
    >>> fixed = valid_polygonal([bad])[0]
    >>> fixed.is_valid, fixed.geom_type, fixed.area == bad.area
    (True, 'MultiPolygon', True)
    """
    out: list[BaseGeometry | None] = []
    for geom in geoms:
        if geom is None or geom.is_empty or geom.is_valid:
            out.append(geom)
            continue
        out.append(polygonal_part(shapely.make_valid(geom)))
    return out


def round_coordinates(geoms: Iterable[BaseGeometry | None], *, decimals: int) -> list[BaseGeometry | None]:
    """Coordinates snapped to a grid of ``10**-decimals`` with a valid result
    (:func:`shapely.set_precision`, which resolves the vertices that rounding makes meet),
    polygonal parts kept for polygonal input. For EPSG:4326 outputs use
    :data:`COORD_DECIMALS_DEG`.

    >>> round_coordinates([shapely.Point(-6.56613069454377, 8.16411191174747)], decimals=7)[0].wkt
    'POINT (-6.5661307 8.1641119)'
    """
    grid = 10.0 ** -decimals
    out: list[BaseGeometry | None] = []
    for geom in valid_polygonal(geoms):
        if geom is None or geom.is_empty:
            out.append(geom)
            continue
        snapped = shapely.set_precision(geom, grid)
        polygonal = geom.geom_type in ("Polygon", "MultiPolygon")
        out.append(polygonal_part(snapped) if polygonal else snapped)
    return out
