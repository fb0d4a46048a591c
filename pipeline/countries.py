"""Country outlines: the country around a point (the bulletin's locator inset), and how far an
AOI lies from the outline of the KP participant its file names (a warning before a run).

Natural Earth 1:110m Admin 0 (public domain) as shipped by world-atlas 2.0.2 (ISC), converted
once by ``tools/countries_geojson.py`` into ``pipeline/data/countries_110m.geojson`` (licence
beside it), with ISO 3166-1 alpha-3 codes added by ``tools/countries_iso3.py``. At 1:110m a
border is drawn to within tens of kilometres, so the outlines place an AOI in a country; they
never decide on which side of a border it lies.
"""

from __future__ import annotations

import csv
import math
from functools import cache
from pathlib import Path

import geopandas as gpd
import pyproj
import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points
from shapely.validation import make_valid

__all__ = ["COUNTRIES", "ISO3166", "countries", "country_at", "iso3166_names", "km_outside"]

COUNTRIES = Path(__file__).resolve().parent / "data" / "countries_110m.geojson"
#: The ISO 3166-1 alpha-3 codes and English short names (written by ``tools/countries_iso3.py``).
ISO3166 = COUNTRIES.with_name("iso3166_alpha3.csv")


@cache
def iso3166_names() -> dict[str, str]:
    """Every assigned ISO 3166-1 alpha-3 code, with its English short name."""
    with ISO3166.open(encoding="utf-8", newline="") as f:
        return {row["alpha_3"]: row["name"] for row in csv.DictReader(f)}


@cache
def countries() -> gpd.GeoDataFrame:
    """The outlines (``name``, ``iso_a3``: ``None`` for the three without an ISO 3166-1 entry),
    EPSG:4326, geometries made valid."""
    frame = gpd.read_file(COUNTRIES)
    if "iso_a3" not in frame.columns:
        frame["iso_a3"] = None
    return frame.set_geometry([make_valid(g) for g in frame.geometry], crs=4326)


def country_at(lon: float, lat: float) -> int | None:
    """Index (row) of the country containing ``(lon, lat)``, else of the nearest within 1°."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return None
    frame = countries()
    point = Point(lon, lat)
    inside = frame.index[frame.contains(point)]
    if len(inside):
        return int(inside[0])
    # Degrees, on purpose: "within 1°" of a 110m outline (GeoPandas would warn about a
    # geographic CRS, so the distances are shapely's).
    distance = shapely.distance(frame.geometry.to_numpy(), point)
    nearest = int(distance.argmin())
    return int(frame.index[nearest]) if float(distance[nearest]) <= 1.0 else None


def km_outside(geometry: BaseGeometry, iso3: str) -> tuple[float, str] | None:
    """Distance (km) from ``geometry`` (EPSG:4326) to the outline of the country ``iso3``, 0 when
    they meet, with the outline's name; ``None`` when no outline has that code. The distance is
    geodesic (WGS 84) between the points nearest in longitude and latitude: near enough the
    shortest for a warning.

    >>> from shapely.geometry import box
    >>> km, name = km_outside(box(-6.6, 8.15, -6.56, 8.19), "CIV")  # Séguéla's diamond field
    >>> km, name
    (0.0, "Côte d'Ivoire")
    >>> km, name = km_outside(box(32.3, -19.9, 32.4, -19.8), "CIV")  # Marange, Zimbabwe
    >>> round(km, -2), name
    (4700.0, "Côte d'Ivoire")
    """
    frame = countries()
    rows = frame[frame["iso_a3"] == iso3]
    if rows.empty:
        return None
    outline = shapely.union_all(rows.geometry.to_numpy())
    name = str(rows["name"].iloc[0])
    if geometry.intersects(outline):
        return 0.0, name
    a, b = nearest_points(geometry, outline)
    _, _, metres = pyproj.Geod(ellps="WGS84").inv(a.x, a.y, b.x, b.y)
    return float(metres) / 1000.0, name
