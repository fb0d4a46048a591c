"""Tests for :mod:`pipeline.aoi` and the shipped AOI files and reference tables."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyproj
import pytest
import shapely
from shapely.geometry import box, mapping

from pipeline.aoi import (
    PARAM_PROPERTIES,
    REQUIRED_PROPERTIES,
    aoi_bounds_utm,
    read_aois,
    utm_crs_for,
)
from pipeline.errors import AOIError

REPO = Path(__file__).resolve().parents[1]
AOI_FILES = sorted((REPO / "aois").glob("*.geojson"))
DATA_DIR = REPO / "pipeline" / "data"
REFERENCE_DIR = REPO.parent / "shared" / "data" / "reference"
SHIPPED_CSVS = (
    "kp_production.csv",
    "non_kp_figures.csv",
    "kp_trade.csv",
    "sanctions_kp_timeline.csv",
    "usgs_assessments.csv",
    "aoi_locations.csv",
    "kp_global_totals.csv",
)

# Expected zones, worked out by hand from the 6-degree UTM grid: Séguéla at 6.58W lies
# in zone 29 (12W-6W), Tortiya at 5.69W in zone 30 (6W-0), Marange at 32.35E / 19.6S in
# zone 36 south (30E-36E).
EXPECTED_UTM = {"seguela": 32629, "tortiya": 32630, "marange": 32736}


# --------------------------------------------------------------------------- helpers

# A 2 km x 2 km box near Séguéla: small, valid, counter-clockwise.
GOOD_POLYGON = mapping(box(-6.60, 8.16, -6.58, 8.18))


def _feature(geometry: Any = GOOD_POLYGON, **props: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "aoi_id": "test-aoi",
        "name": "Test AOI",
        "participant_iso3": "CIV",
        "participant": "Côte d'Ivoire",
    }
    base.update(props)
    base = {k: v for k, v in base.items() if v is not _DROP}
    return {"type": "Feature", "properties": base, "geometry": geometry}


_DROP = object()  # sentinel: leave this property out


def _write(tmp_path: Path, name: str, obj: Any) -> Path:
    path = tmp_path / name
    text = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")
    return path


def _fc(*features: dict[str, Any], **members: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", **members, "features": list(features)}


def _assert_aoi_error(paths: list[Path], *fragments: str, **kwargs: Any) -> str:
    """Reading ``paths`` raises one-line AOIError containing every fragment."""
    with pytest.raises(AOIError) as info:
        read_aois(paths, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# --------------------------------------------------------------------------- shipped AOIs


def test_shipped_aois_load_and_validate() -> None:
    assert [p.name for p in AOI_FILES] == [
        "car_berberati.geojson", "car_bria.geojson", "marange.geojson", "seguela.geojson", "tortiya.geojson"
    ]
    aois = read_aois(AOI_FILES)
    assert len(aois) == 5
    assert aois.crs is not None and aois.crs.to_epsg() == 4326
    assert aois["aoi_id"].is_unique
    assert set(aois["aoi_id"]) == {"seguela", "tortiya", "marange", "berberati", "bria"}
    for name in (*REQUIRED_PROPERTIES, *PARAM_PROPERTIES, "source_file", "area_km2"):
        assert name in aois.columns
    by_id = aois.set_index("aoi_id")
    assert by_id.loc["seguela", "name"].startswith("Séguéla")
    assert by_id.loc["seguela", "participant"] == "Côte d'Ivoire"
    assert by_id.loc["tortiya", "participant_iso3"] == "CIV"
    assert by_id.loc["marange", "participant"] == "Zimbabwe"
    assert by_id.loc["marange", "participant_iso3"] == "ZWE"
    assert Path(by_id.loc["marange", "source_file"]).name == "marange.geojson"
    assert set(aois.geom_type) == {"Polygon"}


@pytest.mark.parametrize(
    ("aoi_id", "low_km2", "high_km2"),
    [("seguela", 50, 100.5), ("tortiya", 50, 100.5), ("marange", 150, 170)],
)
def test_shipped_aoi_sizes(aoi_id: str, low_km2: float, high_km2: float) -> None:
    row = read_aois(AOI_FILES).set_index("aoi_id").loc[aoi_id]
    assert low_km2 <= row["area_km2"] <= high_km2
    # The geodesic area agrees with the area on the AOI's UTM grid (scale error < 0.1 %).
    utm = shapely.area(_to_crs(row["geometry"], utm_crs_for(row["geometry"]))) / 1e6
    assert utm == pytest.approx(row["area_km2"], rel=2e-3)


@pytest.mark.parametrize(("aoi_id", "epsg"), sorted(EXPECTED_UTM.items()))
def test_shipped_aoi_utm_zones(aoi_id: str, epsg: int) -> None:
    row = read_aois(AOI_FILES).set_index("aoi_id").loc[aoi_id]
    crs = utm_crs_for(row["geometry"])
    assert isinstance(crs, pyproj.CRS)
    assert crs.to_epsg() == epsg


def test_shipped_aois_cite_their_sources() -> None:
    aois = read_aois(AOI_FILES)
    with (DATA_DIR / "aoi_locations.csv").open(encoding="utf-8") as f:
        location_urls = {row["source"] for row in csv.DictReader(f)}
    # Bria is not in the shared reference table; its file cites its own source and says so.
    location_urls.add("https://www.wikizero.org/wiki/fr/Bria_(R%C3%A9publique_centrafricaine)")
    for _, row in aois.iterrows():
        assert row["location_source"] in location_urls, row["aoi_id"]
        assert "NOT verified" in row["params_source"], row["aoi_id"]
        assert "not surveyed" in row["extent_note"], row["aoi_id"]
        for name in PARAM_PROPERTIES:
            low, high = row[name]
            assert 0 <= low <= high
    civ = aois[aois["participant_iso3"] == "CIV"]
    assert civ["params_source"].str.contains("SIR 2013-5185").all()


def test_shipped_aoi_centres_match_sourced_points() -> None:
    # Each polygon is a square centred on the point in aoi_locations.csv.
    points = {
        "seguela": (-6.58, 8.17),
        "tortiya": (-5.68972, 8.76861),
        "marange": (32.35222, -19.59056),
        "berberati": (15.78944, 4.26139),
        "bria": (21.990278, 6.539444),
    }
    for _, row in read_aois(AOI_FILES).iterrows():
        centre = row["geometry"].centroid
        lon, lat = points[row["aoi_id"]]
        assert centre.x == pytest.approx(lon, abs=1e-5)
        assert centre.y == pytest.approx(lat, abs=1e-4)


# --------------------------------------------------------------------------- good inputs


def test_read_multi_feature_file_with_multipolygon_and_options(tmp_path: Path) -> None:
    square = box(32.30, -19.60, 32.32, -19.58)
    holed = square.difference(box(32.305, -19.595, 32.31, -19.59))
    multi = shapely.MultiPolygon([box(-6.60, 8.16, -6.59, 8.17), box(-6.58, 8.16, -6.57, 8.17)])
    path = _write(
        tmp_path,
        "two.geojson",
        _fc(
            _feature(mapping(holed), aoi_id="a1", gravel_thickness_m=[1, 3], extra="x"),
            _feature(mapping(multi), aoi_id="a2", grade_ct_per_m3=None),
            crs={"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        ),
    )
    aois = read_aois([str(path)])
    assert list(aois["aoi_id"]) == ["a1", "a2"]
    assert aois.loc[0, "gravel_thickness_m"] == (1.0, 3.0)
    assert aois.loc[1, "gravel_thickness_m"] is None
    assert aois.loc[1, "grade_ct_per_m3"] is None
    assert aois.loc[0, "extra"] == "x" and aois.loc[1, "extra"] is None
    assert aois.loc[0, "source_file"] == str(path)
    # The hole is subtracted whatever the ring winding in the file.
    assert (
        aois.loc[0, "area_km2"]
        < read_aois(
            [_write(tmp_path, "sq.geojson", _fc(_feature(mapping(square), aoi_id="sq")))]
        ).loc[0, "area_km2"]
    )
    assert list(aois.geom_type) == ["Polygon", "MultiPolygon"]


@pytest.mark.parametrize(
    "crs_name", ["urn:ogc:def:crs:OGC::CRS84", "urn:ogc:def:crs:EPSG::4326", "EPSG:4326"]
)
def test_lon_lat_crs_members_are_accepted(tmp_path: Path, crs_name: str) -> None:
    crs = {"type": "name", "properties": {"name": crs_name}}
    path = _write(tmp_path, "ok.geojson", _fc(_feature(), crs=crs))
    assert len(read_aois([path])) == 1


def test_bom_and_z_coordinates_are_accepted(tmp_path: Path) -> None:
    ring = [[-6.60, 8.16, 300.0], [-6.58, 8.16, 300.0], [-6.58, 8.18, 300.0], [-6.60, 8.16, 300.0]]
    path = tmp_path / "z.geojson"
    text = json.dumps(_fc(_feature({"type": "Polygon", "coordinates": [ring]})))
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    aois = read_aois([path])
    assert not aois.geometry.iloc[0].has_z


# --------------------------------------------------------------------------- bad inputs


def test_no_paths() -> None:
    _assert_aoi_error([], "no AOI files", "--aoi")


def test_missing_file(tmp_path: Path) -> None:
    _assert_aoi_error([tmp_path / "nowhere.geojson"], "nowhere.geojson", "not found")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    folder = tmp_path / "aoidir"
    folder.mkdir()
    _assert_aoi_error([folder], "aoidir", "directory")


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.geojson"
    path.write_bytes('{"name": "S\u00e9gu\u00e9la"}'.encode("latin-1"))
    _assert_aoi_error([path], "latin1.geojson", "UTF-8")


def test_invalid_json(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.geojson", '{"type": "FeatureCollection", "features": [}')
    _assert_aoi_error([path], "broken.geojson", "not valid JSON", "line 1")


@pytest.mark.parametrize(
    "obj",
    [_feature(), {"type": "Polygon", "coordinates": []}, [1, 2]],
    ids=["bare-feature", "bare-geometry", "list"],
)
def test_not_a_feature_collection(tmp_path: Path, obj: Any) -> None:
    path = _write(tmp_path, "notfc.geojson", obj)
    _assert_aoi_error([path], "notfc.geojson", "FeatureCollection")


def test_features_not_a_list(tmp_path: Path) -> None:
    path = _write(tmp_path, "feat.geojson", {"type": "FeatureCollection", "features": {}})
    _assert_aoi_error([path], "feat.geojson", "'features'")


def test_no_features(tmp_path: Path) -> None:
    path = _write(tmp_path, "empty.geojson", _fc())
    _assert_aoi_error([path], "empty.geojson", "no features")


def test_item_not_a_feature(tmp_path: Path) -> None:
    path = _write(tmp_path, "item.geojson", _fc(GOOD_POLYGON))  # type: ignore[arg-type]
    _assert_aoi_error([path], "item.geojson", "feature 0", "Feature")


@pytest.mark.parametrize("name", REQUIRED_PROPERTIES)
def test_missing_required_property(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, "noprop.geojson", _fc(_feature(**{name: _DROP})))
    _assert_aoi_error([path], "noprop.geojson", "feature 0", f"'{name}'", "missing")


@pytest.mark.parametrize("name", REQUIRED_PROPERTIES)
def test_blank_or_non_string_required_property(tmp_path: Path, name: str) -> None:
    for value in ("  ", 7):
        path = _write(tmp_path, "blank.geojson", _fc(_feature(**{name: value})))
        _assert_aoi_error([path], "blank.geojson", f"'{name}'")


def test_null_properties(tmp_path: Path) -> None:
    feature = _feature()
    feature["properties"] = None
    path = _write(tmp_path, "nullprops.geojson", _fc(feature))
    _assert_aoi_error([path], "nullprops.geojson", "'aoi_id'", "missing")


@pytest.mark.parametrize(
    "bad_id", ["Seguela", "séguéla", "seguela field", "-seguela", "a/b", "seguela\n"]
)
def test_aoi_id_not_a_slug(tmp_path: Path, bad_id: str) -> None:
    path = _write(tmp_path, "slug.geojson", _fc(_feature(aoi_id=bad_id)))
    _assert_aoi_error([path], "slug.geojson", "aoi_id", repr(bad_id), "slug")


def test_participant_iso3_not_alpha3(tmp_path: Path) -> None:
    path = _write(tmp_path, "iso.geojson", _fc(_feature(participant_iso3="CI")))
    _assert_aoi_error([path], "iso.geojson", "participant_iso3", "'CI'")


@pytest.mark.parametrize("code", ["CIX", "XKX", "EUR"])
def test_participant_iso3_not_an_assigned_code(tmp_path: Path, code: str) -> None:
    """Three capitals that ISO 3166-1 does not assign (a typo, Kosovo's user-assigned code, a
    currency): the cross-check would find no declarations under them, so the file is refused."""
    path = _write(tmp_path, "iso.geojson", _fc(_feature(participant_iso3=code)))
    _assert_aoi_error([path], "iso.geojson", "participant_iso3", repr(code), "not an assigned ISO 3166-1")


def test_every_shipped_participant_and_declared_code_is_assigned() -> None:
    from pipeline.countries import iso3166_names

    names = iso3166_names()
    assert len(names) == 249 and names["CIV"] == "Côte d'Ivoire"
    with (DATA_DIR / "kp_production.csv").open(encoding="utf-8", newline="") as f:
        declared = {row["iso3"] for row in csv.DictReader(f)}
    shipped = set(read_aois(sorted((REPO / "aois").rglob("*.geojson")))["participant_iso3"])
    assert declared | shipped <= set(names)


def test_aoi_id_duplicated_across_files(tmp_path: Path) -> None:
    first = _write(tmp_path, "first.geojson", _fc(_feature(aoi_id="dup")))
    second = _write(tmp_path, "second.geojson", _fc(_feature(aoi_id="dup")))
    message = _assert_aoi_error([first, second], "second.geojson", "first.geojson", "'dup'")
    assert "unique" in message


def test_same_file_listed_twice(tmp_path: Path) -> None:
    path = _write(tmp_path, "once.geojson", _fc(_feature()))
    _assert_aoi_error([path, tmp_path / "." / "once.geojson"], "once.geojson", "listed twice")
    link = tmp_path / "link.geojson"  # the same file under another name: both names in the message
    link.symlink_to(path)
    _assert_aoi_error([path, link], "AOI file " + str(link), f"is the same file as {path}")


def test_the_command_line_names_a_linked_aoi_as_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--aoi paths are made absolute, not resolved: a symbolic link is named, not its target."""
    from pipeline.__main__ import main

    path = _write(tmp_path, "real.geojson", _fc(_feature()))
    link = tmp_path / "link.geojson"
    link.symlink_to(path)
    assert main(["scenes", "--aoi", str(path), "--aoi", str(link), "--source", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: AOI file {link} is the same file as {path}; list each file once"


def test_aoi_id_duplicated_within_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "twice.geojson", _fc(_feature(aoi_id="dup"), _feature(aoi_id="dup")))
    _assert_aoi_error([path], "twice.geojson", "feature 1", "'dup'", "duplicates")


def test_reserved_property_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "reserved.geojson", _fc(_feature(source_file="x")))
    _assert_aoi_error([path], "reserved.geojson", "'source_file'", "rename")


@pytest.mark.parametrize(
    "geometry",
    [None, {"type": "Polygon", "coordinates": []}, {"type": "MultiPolygon", "coordinates": []}],
    ids=["null", "empty-polygon", "empty-multipolygon"],
)
def test_empty_geometry(tmp_path: Path, geometry: Any) -> None:
    path = _write(tmp_path, "nogeom.geojson", _fc(_feature(geometry)))
    _assert_aoi_error([path], "nogeom.geojson", "aoi_id 'test-aoi'", "geometry", "empty")


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "Point", "coordinates": [-6.58, 8.17]},
        {"type": "LineString", "coordinates": [[-6.58, 8.17], [-6.57, 8.18]]},
        {"type": "GeometryCollection", "geometries": [GOOD_POLYGON]},
    ],
    ids=lambda g: g["type"],
)
def test_non_polygon_geometry(tmp_path: Path, geometry: dict[str, Any]) -> None:
    path = _write(tmp_path, "point.geojson", _fc(_feature(geometry)))
    _assert_aoi_error([path], "point.geojson", "geometry type", repr(geometry["type"]), "Polygon")


def test_malformed_coordinates(tmp_path: Path) -> None:
    geometry = {"type": "Polygon", "coordinates": [[[-6.58, 8.17], [-6.57, 8.18]]]}
    path = _write(tmp_path, "short.geojson", _fc(_feature(geometry)))
    _assert_aoi_error([path], "short.geojson", "geometry coordinates are malformed")


def test_invalid_geometry(tmp_path: Path) -> None:
    bowtie = [[-6.60, 8.16], [-6.58, 8.18], [-6.58, 8.16], [-6.60, 8.18], [-6.60, 8.16]]
    path = _write(
        tmp_path, "bowtie.geojson", _fc(_feature({"type": "Polygon", "coordinates": [bowtie]}))
    )
    _assert_aoi_error(
        [path], "bowtie.geojson", "aoi_id 'test-aoi'", "invalid", "Self-intersection", "make_valid"
    )


def test_projected_coordinates(tmp_path: Path) -> None:
    utm_square = mapping(box(761_000, 898_000, 771_000, 908_000))  # Séguéla in EPSG:32629
    path = _write(tmp_path, "utm.geojson", _fc(_feature(utm_square)))
    _assert_aoi_error([path], "utm.geojson", "looks projected", "reproject to EPSG:4326")


@pytest.mark.parametrize(
    "crs",
    [
        {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32629"}},
        {"type": "name", "properties": {"name": "EPSG:3857"}},
        {"type": "name", "properties": {"name": "not a crs"}},
        {"type": "link", "properties": {"href": "http://example.org/crs"}},
    ],
    ids=["utm", "web-mercator", "garbage", "link"],
)
def test_foreign_crs_member(tmp_path: Path, crs: dict[str, Any]) -> None:
    # Lon/lat-looking coordinates do not rescue a file that declares another CRS.
    path = _write(tmp_path, "crs.geojson", _fc(_feature(), crs=crs))
    _assert_aoi_error([path], "crs.geojson", "crs member", "looks projected", "EPSG:4326")


def test_area_above_limit(tmp_path: Path) -> None:
    big = mapping(box(-7.0, 8.0, -6.0, 9.0))  # about 12 200 km2
    path = _write(tmp_path, "big.geojson", _fc(_feature(big)))
    _assert_aoi_error([path], "big.geojson", "aoi_id 'test-aoi'", "km2", "max_aoi_area_km2=5000")
    # and the limit is a knob:
    assert len(read_aois([path], max_area_km2=20_000)) == 1
    _assert_aoi_error(AOI_FILES, "marange.geojson", "max_aoi_area_km2=150", max_area_km2=150)


@pytest.mark.parametrize("name", PARAM_PROPERTIES)
@pytest.mark.parametrize(
    "value",
    [
        [1.0],
        [1, 2, 3],
        "0.5-2",
        1.5,
        {"low": 0, "high": 1},
        ["a", 1],
        [True, 2],
        [-0.1, 1],
        [2.0, 1.0],
        [0.5, float("inf")],
    ],
    ids=[
        "one",
        "three",
        "string",
        "scalar",
        "object",
        "text-item",
        "bool",
        "negative",
        "reversed",
        "inf",
    ],
)
def test_bad_parameter_range(tmp_path: Path, name: str, value: Any) -> None:
    path = _write(tmp_path, "params.geojson", _fc(_feature(**{name: value})))
    _assert_aoi_error([path], "params.geojson", "aoi_id 'test-aoi'", f"'{name}'", "[low, high]")


def test_bad_max_area_knob(tmp_path: Path) -> None:
    _assert_aoi_error(AOI_FILES, "max_area_km2", max_area_km2=0)


def test_aoi_error_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        read_aois([tmp_path / "missing.geojson"])


# --------------------------------------------------------------------------- UTM helpers


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [
        (-6.58, 8.17, 32629),
        (-5.99, 8.0, 32630),
        (32.35, -19.59, 32736),
        (0.0, 0.0, 32631),
        (-180.0, 10.0, 32601),
        (180.0, -10.0, 32760),
    ],
)
def test_utm_crs_for_points(lon: float, lat: float, epsg: int) -> None:
    assert utm_crs_for(shapely.Point(lon, lat)).to_epsg() == epsg


def test_utm_crs_for_rejects_empty_and_projected() -> None:
    with pytest.raises(AOIError, match="empty"):
        utm_crs_for(shapely.Polygon())
    with pytest.raises(AOIError, match="EPSG:4326"):
        utm_crs_for(box(761_000, 898_000, 771_000, 908_000))


@pytest.mark.parametrize("aoi_id", sorted(EXPECTED_UTM))
def test_aoi_bounds_utm_contains_aoi(aoi_id: str) -> None:
    row = read_aois(AOI_FILES).set_index("aoi_id").loc[aoi_id]
    crs = utm_crs_for(row["geometry"])
    projected = _to_crs(shapely.segmentize(row["geometry"], 0.001), crs)
    minx, miny, maxx, maxy = aoi_bounds_utm(row, margin_m=0)
    assert box(minx, miny, maxx, maxy).buffer(0.01).contains(projected)
    assert (minx, miny, maxx, maxy) == pytest.approx(projected.bounds, abs=1.0)

    grown = aoi_bounds_utm(row, margin_m=250)
    assert grown == pytest.approx((minx - 250, miny - 250, maxx + 250, maxy + 250))

    aligned = aoi_bounds_utm(row["geometry"], margin_m=250, align_m=10)
    assert all(v % 10 == 0 for v in aligned)
    assert aligned[0] <= grown[0] and aligned[1] <= grown[1]
    assert aligned[2] >= grown[2] and aligned[3] >= grown[3]
    assert all(b - a < 10 for a, b in zip(aligned[:2], grown[:2], strict=True))


def test_aoi_bounds_utm_rejects_bad_knobs() -> None:
    geometry = box(-6.60, 8.16, -6.58, 8.18)
    with pytest.raises(AOIError, match="margin_m"):
        aoi_bounds_utm(geometry, margin_m=-1)
    with pytest.raises(AOIError, match="align_m"):
        aoi_bounds_utm(geometry, margin_m=0, align_m=0)


# --------------------------------------------------------------------------- reference tables


@pytest.mark.parametrize("name", SHIPPED_CSVS)
def test_shipped_tables_cite_a_source_on_every_row(name: str) -> None:
    path = DATA_DIR / name
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows, f"{name} is empty"
    assert "source" in rows[0], f"{name} has no source column"
    blank = [i for i, row in enumerate(rows, start=2) if not (row["source"] or "").strip()]
    assert not blank, f"{name}: rows {blank} have no source"


@pytest.mark.parametrize("name", SHIPPED_CSVS)
def test_shipped_tables_are_unchanged_copies(name: str) -> None:
    reference = REFERENCE_DIR / name
    if not reference.exists():
        pytest.skip(f"../shared/data/reference/{name} is not present on this machine")
    assert (DATA_DIR / name).read_bytes() == reference.read_bytes()


def _to_crs(geometry: shapely.Geometry, crs: pyproj.CRS) -> shapely.Geometry:
    transformer = pyproj.Transformer.from_crs("OGC:CRS84", crs, always_xy=True)
    return shapely.transform(
        geometry, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
    )
