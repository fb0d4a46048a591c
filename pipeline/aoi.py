"""EDGE: read and validate area-of-interest (AOI) files.

An AOI file is a GeoJSON FeatureCollection in EPSG:4326 (RFC 7946: longitude,
latitude in degrees; no ``crs`` member, or the OGC CRS84 / EPSG:4326 one). Each
feature is one AOI with the properties ``aoi_id`` (a slug, unique across all
files), ``name``, ``participant_iso3`` and ``participant`` (the KP participant
name), plus the optional volume-and-grade parameters ``gravel_thickness_m`` and
``grade_ct_per_m3`` as ``[low, high]`` ranges, and optional per-AOI overrides of the
``preprocess``, ``composites``, ``detect``, ``radar`` and ``sites`` configuration sections
(JSON objects; the sections are :data:`pipeline.config.AOI_OVERRIDE_SECTIONS`, validated by
:func:`pipeline.config.aoi_config`). See ``aois/README.md``.

Files are parsed with :mod:`json` rather than GDAL so that every problem can be
reported as one line naming the file, the feature and the field, with the fix
(GDAL would silently reproject a foreign ``crs`` member or fail with a
driver message).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from .config import AOI_OVERRIDE_SECTIONS, MonitorConfig
from .countries import iso3166_names
from .errors import AOIError
from .limits import MAX_AOI_BYTES, MAX_AOI_VERTICES, load_json, special_file
from .types import BBox

__all__ = [
    "AOI_ID_PATTERN",
    "AOI_OVERRIDE_SECTIONS",
    "PARAM_PROPERTIES",
    "REQUIRED_PROPERTIES",
    "aoi_bounds_utm",
    "read_aois",
    "utm_crs_for",
]

#: Properties every AOI feature must carry (non-empty strings).
REQUIRED_PROPERTIES: tuple[str, ...] = ("aoi_id", "name", "participant_iso3", "participant")
#: Optional ``[low, high]`` model parameters (m, carats per m3 of gravel).
#: Default AOI area cap (``max_aoi_area_km2`` in the config).
DEFAULT_MAX_AREA_KM2: float = MonitorConfig.model_fields["max_aoi_area_km2"].default
PARAM_PROPERTIES: tuple[str, ...] = ("gravel_thickness_m", "grade_ct_per_m3")
#: ``aoi_id`` must match this: it becomes part of file names and site ids.
AOI_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
#: Longest ``aoi_id``: a chip's file name holds it twice (``chips_<aoi>_<aoi>-<hash>.png``) and a
#: file system's names stop at 255 bytes, with room left for the atomic writers' temporary names.
MAX_AOI_ID_LENGTH = 64
#: ISO 3166-1 alpha-3 code, as used by KP statistics.
_ISO3_PATTERN = re.compile(r"^[A-Z]{3}$")
#: Column names added by :func:`read_aois`; a property may not use them.
_RESERVED_COLUMNS: tuple[str, ...] = ("geometry", "source_file", "area_km2")
_POLYGON_TYPES: tuple[str, ...] = ("Polygon", "MultiPolygon")
_OVERRIDE_EXAMPLES: dict[str, str] = {
    "preprocess": '{"cloud_buffer_px": 2}',
    "composites": '{"dry_season_months": [5, 6, 7, 8, 9, 10]}',
    "detect": '{"threshold_method": "otsu"}',
    "radar": '{"vh_drop_min_db": 3.0}',
    "sites": '{"min_area_m2": 5000}',
}
_CRS84 = pyproj.CRS.from_user_input("OGC:CRS84")
_GEOD = pyproj.Geod(ellps="WGS84")


def read_aois(paths: Iterable[str | Path], *, max_area_km2: float = DEFAULT_MAX_AREA_KM2) -> gpd.GeoDataFrame:
    """Read and validate AOI GeoJSON files into one GeoDataFrame.

    Parameters
    ----------
    paths
        GeoJSON FeatureCollection files, in EPSG:4326 (lon/lat degrees). A
        file may hold several AOIs (one per feature).
    max_area_km2
        Largest accepted AOI (geodesic area on WGS84, km2). Guards against a
        projected file read as degrees or a country outline passed by mistake.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per feature, in file order then feature order, CRS EPSG:4326
        (lon/lat degrees). Columns: every property of every feature (missing
        ones are ``None``; ``gravel_thickness_m`` and ``grade_ct_per_m3`` are
        always present, as ``(low, high)`` float tuples or ``None``),
        ``source_file`` (the path as given), ``area_km2`` (geodesic area) and
        ``geometry`` (2-D Polygon or MultiPolygon). Eager; reads the files.

    Raises
    ------
    AOIError
        On the first problem found, with a one-line message naming the file,
        the feature (index and ``aoi_id``) and the field, and saying how to fix
        it: missing or unreadable file, invalid JSON, not a FeatureCollection,
        no features, missing or malformed property, ``aoi_id`` not a slug or
        duplicated, empty / non-polygon / invalid geometry, coordinates
        outside lon/lat range or a foreign ``crs`` member (projected data),
        area above ``max_area_km2``, malformed parameter range.

    Examples
    --------
    >>> shipped = Path(__file__).resolve().parents[1] / "aois"
    >>> aois = read_aois(sorted(shipped.glob("*.geojson")))
    >>> aois[["aoi_id", "participant_iso3"]].assign(area_km2=aois["area_km2"].round())
          aoi_id participant_iso3  area_km2
    0  berberati              CAF      64.0
    1       bria              CAF      64.0
    2    marange              ZWE     160.0
    3    seguela              CIV     100.0
    4    tortiya              CIV      64.0
    """
    if not max_area_km2 > 0:
        raise AOIError(f"max_area_km2 must be positive, got {max_area_km2!r}")
    paths = list(paths)
    if not paths:
        raise AOIError(
            "no AOI files given; pass --aoi PATH or list files under `aois:` in the config"
        )

    listed: dict[Path, str | Path] = {}
    for path in paths:
        key = Path(path).resolve()
        if key in listed:
            same = "is listed twice" if str(path) == str(listed[key]) else f"is the same file as {listed[key]}"
            raise AOIError(f"AOI file {path} {same}; list each file once")
        listed[key] = path

    records: list[dict[str, Any]] = []
    geometries: list[BaseGeometry] = []
    seen: dict[str, str] = {}  # aoi_id -> "file feature i", for duplicate messages
    for path in paths:
        collection = _load_collection(Path(path))
        for index, feature in enumerate(collection["features"]):
            where = f"AOI file {path} feature {index}"
            props, geom, area_km2 = _check_feature(feature, where=where, max_area_km2=max_area_km2)
            aoi_id = props["aoi_id"]
            if aoi_id in seen:
                raise AOIError(
                    f"{where}: aoi_id '{aoi_id}' duplicates {seen[aoi_id]}; "
                    "give every AOI a unique aoi_id"
                )
            seen[aoi_id] = f"{path} feature {index}"
            props["source_file"] = str(path)
            props["area_km2"] = area_km2
            records.append(props)
            geometries.append(geom)

    frame = pd.DataFrame.from_records(records)
    for name in (*PARAM_PROPERTIES, *AOI_OVERRIDE_SECTIONS):
        if name not in frame.columns:
            frame[name] = None
    frame = frame.astype(object).where(frame.notna(), None)
    frame["area_km2"] = frame["area_km2"].astype(float)
    return gpd.GeoDataFrame(frame, geometry=geometries, crs="EPSG:4326")


def utm_crs_for(geometry: BaseGeometry) -> pyproj.CRS:
    """Return the WGS 84 / UTM CRS of the zone holding the geometry's centroid.

    Parameters
    ----------
    geometry
        A non-empty geometry in EPSG:4326 (lon/lat degrees).

    Returns
    -------
    pyproj.CRS
        ``EPSG:326zz`` (northern hemisphere, centroid latitude >= 0) or
        ``EPSG:327zz`` (southern). The standard 6-degree zones are used; the
        Norway / Svalbard exceptions do not touch any diamond field.

    Raises
    ------
    AOIError
        If the geometry is empty or its centroid is not a lon/lat position.

    Examples
    --------
    >>> from shapely.geometry import box
    >>> utm_crs_for(box(32.29, -19.65, 32.41, -19.53)).to_epsg()
    32736
    >>> utm_crs_for(box(-6.63, 8.12, -6.53, 8.22)).to_epsg()
    32629
    """
    if geometry is None or geometry.is_empty:
        raise AOIError("cannot choose a UTM zone for an empty geometry; pass the AOI polygon")
    # Centroid in degrees is fine here: AOIs are tens of km across, far below the
    # 6-degree zone width, so planar-vs-geodesic centroid never changes the zone.
    centre = geometry.centroid
    lon, lat = centre.x, centre.y
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise AOIError(
            f"centroid ({lon:.6g}, {lat:.6g}) is not lon/lat; reproject the geometry to EPSG:4326"
        )
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return pyproj.CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def aoi_bounds_utm(
    row: pd.Series | Mapping[str, Any] | BaseGeometry,
    *,
    margin_m: float,
    align_m: float | None = None,
) -> BBox:
    """Bounding box of an AOI on its UTM grid, grown by a margin.

    Parameters
    ----------
    row
        One row of :func:`read_aois` (anything with a ``geometry`` item), or a
        geometry, in EPSG:4326 (lon/lat degrees).
    margin_m
        Distance (m) added on every side, so neighbourhood filters see real
        pixels at the AOI edge. Must be >= 0.
    align_m
        If given, snap the box outwards to multiples of this size (m), e.g. the
        10 m Sentinel-2 pixel grid, so windows of different dates line up.

    Returns
    -------
    tuple of float
        ``(minx, miny, maxx, maxy)`` in metres in :func:`utm_crs_for` of the
        geometry. The geometry itself (edges densified) is reprojected, not
        just its lon/lat box, so the box is tight.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> b = aoi_bounds_utm(Point(32.35, -19.59).buffer(0.01), margin_m=100, align_m=10)
    >>> b
    (430680.0, 7832550.0, 432980.0, 7834970.0)
    """
    if not margin_m >= 0:
        raise AOIError(f"margin_m must be >= 0 metres, got {margin_m!r}")
    if align_m is not None and not align_m > 0:
        raise AOIError(f"align_m must be a positive pixel size in metres, got {align_m!r}")
    geometry = row if isinstance(row, BaseGeometry) else row["geometry"]
    crs = utm_crs_for(geometry)
    to_utm = pyproj.Transformer.from_crs(_CRS84, crs, always_xy=True)
    # Straight edges in lon/lat bow slightly in UTM: densify (~1 km at the equator)
    # before transforming so the box contains the whole edge.
    dense = shapely.segmentize(geometry, 0.01)
    projected = shapely.transform(
        dense, lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1]))
    )
    minx, miny, maxx, maxy = (float(v) for v in projected.bounds)
    minx, miny, maxx, maxy = minx - margin_m, miny - margin_m, maxx + margin_m, maxy + margin_m
    if align_m is not None:
        minx = float(math.floor(minx / align_m) * align_m)
        miny = float(math.floor(miny / align_m) * align_m)
        maxx = float(math.ceil(maxx / align_m) * align_m)
        maxy = float(math.ceil(maxy / align_m) * align_m)
    return minx, miny, maxx, maxy


# --------------------------------------------------------------------------- helpers


def _load_collection(path: Path) -> dict[str, Any]:
    """Read ``path`` as JSON and check the FeatureCollection envelope."""
    if path.is_dir():
        raise AOIError(
            f"AOI file {path} is a directory; pass the .geojson files in it (e.g. {path}/*.geojson)"
        )
    if not path.exists():
        raise AOIError(
            f"AOI file {path} not found; check the path (an --aoi path is relative to the current folder, "
            "one in the config's aois to the YAML file)"
        )
    if special_file(path):
        raise AOIError(f"AOI file {path} is not a regular file (a pipe or a device); pass a .geojson file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AOIError(f"AOI file {path} cannot be read ({exc.strerror or exc}); check permissions") from exc
    if size > MAX_AOI_BYTES:
        raise AOIError(
            f"AOI file {path} is larger than {MAX_AOI_BYTES >> 20} MiB ({size / (1 << 20):,.0f} MiB); an AOI "
            "outline needs a few KB: simplify it (e.g. ogr2ogr -simplify 0.0001) or check the file"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AOIError(
            f"AOI file {path} is not UTF-8 text ({exc.reason}); save it as UTF-8 GeoJSON"
        ) from exc
    except OSError as exc:
        raise AOIError(
            f"AOI file {path} cannot be read ({exc.strerror or exc}); check permissions"
        ) from exc
    # Absurd nesting refused (RecursionError); NaN / Infinity are reported by the field checks.
    data = load_json(text, path=path, what="AOI file", error=AOIError, allow_nan=True, unique_keys=True)
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        kind = data.get("type") if isinstance(data, dict) else type(data).__name__
        raise AOIError(
            f"AOI file {path} is not a GeoJSON FeatureCollection (type: {kind!r}); "
            'wrap the features in {"type": "FeatureCollection", "features": [...]}'
        )
    _check_crs_member(data.get("crs"), where=f"AOI file {path}")
    features = data.get("features")
    if not isinstance(features, list):
        raise AOIError(f"AOI file {path}: 'features' must be a list of GeoJSON Features")
    if not features:
        raise AOIError(f"AOI file {path} has no features; add at least one AOI polygon")
    return data


def _check_crs_member(crs: Any, *, where: str) -> None:
    """Accept no ``crs`` member, or one naming CRS84 / EPSG:4326 (any axis order)."""
    if crs is None:
        return
    name = crs.get("properties", {}).get("name") if isinstance(crs, dict) else None
    try:
        parsed = pyproj.CRS.from_user_input(name) if isinstance(name, str) else None
    except pyproj.exceptions.CRSError:
        parsed = None
    if parsed is not None and parsed.equals(_CRS84, ignore_axis_order=True):
        return
    shown = name if isinstance(name, str) else json.dumps(crs)[:80]
    raise AOIError(
        f"{where}: crs member {shown!r} is not EPSG:4326 (the data looks projected); "
        "reproject to EPSG:4326 and drop the crs member "
        "(e.g. ogr2ogr -t_srs EPSG:4326 out.geojson in.geojson)"
    )


def _check_feature(
    feature: Any, *, where: str, max_area_km2: float
) -> tuple[dict[str, Any], BaseGeometry, float]:
    """Validate one Feature; return its normalised properties, 2-D geometry and area (km2)."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise AOIError(
            f'{where} is not a GeoJSON Feature; each item of \'features\' needs "type": "Feature"'
        )
    props = feature.get("properties")
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise AOIError(f"{where}: 'properties' must be a JSON object")
    props = dict(props)

    for name in REQUIRED_PROPERTIES:
        value = props.get(name)
        if not isinstance(value, str) or not value.strip():
            problem = (
                "is missing" if value is None else f"must be a non-empty string, got {value!r}"
            )
            raise AOIError(
                f"{where}: required property '{name}' {problem}; add it to the feature's properties"
            )
    aoi_id = props["aoi_id"]
    if len(aoi_id) > MAX_AOI_ID_LENGTH:
        raise AOIError(
            f"{where}: aoi_id {aoi_id[:20]!r}... is {len(aoi_id)} characters long; use at most "
            f"{MAX_AOI_ID_LENGTH} (it becomes part of file names)"
        )
    if not AOI_ID_PATTERN.fullmatch(aoi_id):
        raise AOIError(
            f"{where}: aoi_id {aoi_id!r} is not a slug; use lower-case letters, digits, "
            "'-' and '_', starting with a letter or digit (e.g. 'seguela')"
        )
    where = f"{where} (aoi_id '{aoi_id}')"
    if not _ISO3_PATTERN.fullmatch(props["participant_iso3"]):
        raise AOIError(
            f"{where}: participant_iso3 {props['participant_iso3']!r} is not an ISO 3166-1 alpha-3 "
            "code; use three capital letters (e.g. 'CIV')"
        )
    if props["participant_iso3"] not in iso3166_names():
        raise AOIError(
            f"{where}: participant_iso3 {props['participant_iso3']!r} is not an assigned ISO 3166-1 alpha-3 "
            "code; check the spelling (e.g. 'CIV' for Côte d'Ivoire, 'COD' for the DRC)"
        )
    for name in _RESERVED_COLUMNS:
        if name in props:
            raise AOIError(
                f"{where}: property '{name}' clashes with a column read_aois adds; rename it"
            )
    for name in PARAM_PROPERTIES:
        props[name] = _check_range(props.get(name), where=where, name=name)
    for name in AOI_OVERRIDE_SECTIONS:
        value = props.get(name)
        if value is not None and not isinstance(value, dict):
            raise AOIError(
                f"{where}: property '{name}' must be a JSON object of '{name}' settings "
                f"(e.g. {_OVERRIDE_EXAMPLES[name]}), got {type(value).__name__}; "
                "see aois/README.md"
            )

    geometry = _check_geometry(feature.get("geometry"), where=where)
    area_km2 = _geodesic_area_km2(geometry)
    if area_km2 > max_area_km2:
        raise AOIError(
            f"{where}: geometry covers {area_km2:,.0f} km2, above max_aoi_area_km2={max_area_km2:g}; "
            "split it into smaller AOIs around the mining areas or raise max_aoi_area_km2 in the config"
        )
    return props, geometry, area_km2


def _check_range(value: Any, *, where: str, name: str) -> tuple[float, float] | None:
    """``None`` stays ``None``; otherwise require ``[low, high]`` with 0 <= low <= high."""
    if value is None:
        return None
    fix = f"give '{name}' as [low, high] numbers with 0 <= low <= high, e.g. [0.5, 2.0]"
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise AOIError(f"{where}: property '{name}' is {value!r}, not a 2-element list; {fix}")
    if not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        raise AOIError(f"{where}: property '{name}' {value!r} holds a non-number; {fix}")
    low, high = float(value[0]), float(value[1])
    if low < 0 or low > high:
        raise AOIError(
            f"{where}: property '{name}' {value!r} is not an ordered non-negative range; {fix}"
        )
    return low, high


def _check_geometry(raw: Any, *, where: str) -> BaseGeometry:
    """Parse and validate a GeoJSON geometry object: 2-D, polygonal, lon/lat, valid."""
    if raw is None:
        raise AOIError(f"{where}: geometry is null (empty); draw the AOI polygon")
    if not isinstance(raw, dict):
        raise AOIError(f"{where}: geometry must be a GeoJSON geometry object")
    kind = raw.get("type")
    if kind not in _POLYGON_TYPES:
        raise AOIError(
            f"{where}: geometry type {kind!r} is not supported; AOIs must be Polygon or "
            "MultiPolygon (buffer points or lines into polygons first)"
        )
    _check_rings(raw, where=where)
    try:
        geometry = shape(raw)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise AOIError(
            f"{where}: geometry coordinates are malformed ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:120]}); fix the {kind} coordinates"
        ) from exc
    if geometry.is_empty:
        raise AOIError(f"{where}: geometry is empty (no coordinates); draw the AOI polygon")
    geometry = shapely.force_2d(geometry)

    minx, miny, maxx, maxy = geometry.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise AOIError(
            f"{where}: coordinates ({minx:.6g}, {miny:.6g}, {maxx:.6g}, {maxy:.6g}) are outside "
            "lon/lat range, the data looks projected; reproject to EPSG:4326 "
            "(e.g. ogr2ogr -t_srs EPSG:4326 out.geojson in.geojson)"
        )
    if maxx - minx > 180:
        # A polygon edge from 179.9 to -179.9 is read as the long way round: a strip round the
        # globe, on which no UTM zone, grid or search makes sense.
        raise AOIError(
            f"{where}: geometry spans longitudes {minx:.6g} to {maxx:.6g}, i.e. it crosses the antimeridian "
            "(180 degrees); AOIs across it are not supported: draw one AOI on each side of 180 degrees"
        )
    if not geometry.is_valid:
        raise AOIError(
            f"{where}: geometry is invalid ({explain_validity(geometry)}); repair it with "
            "shapely.make_valid or QGIS 'Fix geometries' and check the result"
        )
    return geometry


def _check_rings(raw: dict[str, Any], *, where: str) -> None:
    """Every ring closed (RFC 7946 3.1.6: first and last positions equal), positions of 2-3
    finite numbers, at most :data:`~pipeline.limits.MAX_AOI_VERTICES` vertices in all.

    Shapely would silently close an open ring: the AOI would then be one the analyst did not
    draw (a ring whose last vertex was lost in an export), so it is refused instead.
    """
    coords = raw.get("coordinates")
    polygons = [coords] if raw.get("type") == "Polygon" else coords
    if not isinstance(polygons, list):
        return  # shapely reports malformed coordinates with their type
    n_vertices = 0
    for p, rings in enumerate(polygons):
        if not isinstance(rings, list):
            return
        for r, ring in enumerate(rings):
            if not isinstance(ring, list) or len(ring) < 4:
                return  # shapely reports a ring too short to be a ring
            n_vertices += len(ring)
            if n_vertices > MAX_AOI_VERTICES:
                raise AOIError(
                    f"{where}: geometry has more than {MAX_AOI_VERTICES:,} vertices; simplify the outline "
                    "(e.g. ogr2ogr -simplify 0.0001 or QGIS 'Simplify')"
                )
            for position in ring:
                if not isinstance(position, list) or len(position) not in (2, 3) or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in position
                ):
                    raise AOIError(
                        f"{where}: position {str(position)[:60]} is not [longitude, latitude] in finite numbers; "
                        "fix the coordinates"
                    )
            if ring[0][:2] != ring[-1][:2]:
                part = f"polygon {p} ring {r}" if raw.get("type") == "MultiPolygon" else f"ring {r}"
                raise AOIError(
                    f"{where}: {part} is not closed (it starts at {ring[0][:2]} and ends at {ring[-1][:2]}); "
                    "GeoJSON rings end where they start (RFC 7946 3.1.6): repeat the first position at the end"
                )


def _geodesic_area_km2(geometry: BaseGeometry) -> float:
    """Area on the WGS84 ellipsoid in km2 (exact, no projection needed)."""
    # pyproj signs areas by ring orientation; orient exteriors CCW / holes CW so the
    # holes subtract whatever winding the file used.
    oriented = shapely.orient_polygons(geometry, exterior_cw=False)
    area_m2, _ = _GEOD.geometry_area_perimeter(oriented)
    return abs(area_m2) / 1e6
