"""Outside checks of a demo run's files (the session's :func:`tests.conftest.demo_run`):

- shapely ``is_valid`` on every output geometry (``sites.geojson``, ``sites.gpkg``), feature
  ids, coordinate precision;
- pyogrio field types of ``sites.gpkg`` (dates are ``Date`` fields);
- the composites are Cloud-Optimised GeoTIFFs (``rio cogeo validate`` when rio-cogeo is
  installed, and GDAL's COG layout markers in every case);
- every STAC object the scenario wrote validates against the schemas it declares (offline
  copies, ``tests/stac_schemas.py``);
- ``manifest.json`` and ``bulletin.json`` name no local absolute path;
- the CSV tables carry their values to their precision, no float noise;
- ``bulletin.json``'s facts equal the tables they summarise.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import math
import re
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
from shapely.geometry import shape

from pipeline import io
from tests.stac_schemas import stac_errors


def _features(run: Path) -> list[dict[str, Any]]:
    return json.loads((run / "sites.geojson").read_text("utf-8"))["features"]


def test_site_geometries_are_valid_with_ids_and_7_decimals(demo_run: Path) -> None:
    features = _features(demo_run)
    assert features, "the demo run should find sites"
    for f in features:
        geom = shape(f["geometry"])
        assert geom.is_valid, (f["id"], shapely.is_valid_reason(geom))
        assert geom.geom_type in {"Polygon", "MultiPolygon"} and not geom.is_empty
        assert f["id"] == f["properties"]["site_id"]  # RFC 7946 feature id
        coords = shapely.get_coordinates(geom).ravel()
        assert np.allclose(coords, np.round(coords, 7), rtol=0, atol=1e-12)
    assert len({f["id"] for f in features}) == len(features)


def test_geopackage_geometries_valid_and_dates_are_date_fields(demo_run: Path) -> None:
    path = demo_run / "sites.gpkg"
    info = pyogrio.read_info(path)
    types = dict(zip(info["fields"], info["dtypes"], strict=True))
    assert types["first_seen"] == types["last_seen"] == "datetime64[D]"  # OGR Date, not text
    assert types["area_ha"] == "float64" and types["site_id"] == "object"
    frame = pyogrio.read_dataframe(path)
    assert frame.geometry.is_valid.all()
    geojson = {f["id"]: f["properties"] for f in _features(demo_run)}
    assert set(frame["site_id"]) == set(geojson)
    for r in frame.itertuples():
        assert f"{pd.Timestamp(r.first_seen):%Y-%m-%d}" == geojson[r.site_id]["first_seen"]


def test_site_rings_wind_as_rfc_7946_asks(demo_run: Path) -> None:
    # RFC 7946 section 3.1.6: exterior rings counterclockwise, holes clockwise.
    for name in ("sites.geojson", "sites_dismissed.geojson"):
        for f in json.loads((demo_run / name).read_text("utf-8"))["features"]:
            geom = shape(f["geometry"])
            for poly in getattr(geom, "geoms", [geom]):
                assert poly.exterior.is_ccw, (name, f["id"])
                assert not any(ring.is_ccw for ring in poly.interiors), (name, f["id"])


def test_provisional_sites_are_those_with_too_short_a_record_after_the_change(demo_run: Path) -> None:
    # sites.geojson's provisional flag follows n_clear_after and the run's own detect settings,
    # and the bulletin counts exactly those sites.
    manifest = json.loads((demo_run / "manifest.json").read_text("utf-8"))
    detect = manifest["config"]["detect"]
    below = detect["min_confirmations"] + detect["regrowth_min_obs"]
    props = [f["properties"] for f in _features(demo_run)]
    assert props and all(isinstance(p["provisional"], bool) and isinstance(p["n_clear_after"], int) for p in props)
    assert all(p["provisional"] == (p["n_clear_after"] < below) for p in props)
    assert all(p["n_clear_after"] >= p["n_obs"] for p in props)
    facts = json.loads((demo_run / "bulletin.json").read_text("utf-8"))["facts"]
    assert facts["provisional"]["n"] == sum(p["provisional"] for p in props)


def test_a_run_without_sites_writes_an_empty_geopackage_of_the_same_fields(tmp_path: Path, demo_run: Path) -> None:
    from pipeline.outputs import SITE_PRECISION, _empty_sites
    from pipeline.precision import round_table

    path = io.write_gpkg(round_table(_empty_sites(crs=4326), SITE_PRECISION), tmp_path / "sites.gpkg", layer="sites",
                         date_columns=("first_seen", "last_seen", "reviewed_on"), last_change=dt.date(2023, 3, 31))
    empty, full = pyogrio.read_info(path), pyogrio.read_info(demo_run / "sites.gpkg")
    assert empty["features"] == 0 and empty["crs"] == full["crs"] == "EPSG:4326"
    assert list(zip(empty["fields"], empty["ogr_types"], strict=True)) == \
        list(zip(full["fields"], full["ogr_types"], strict=True))
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT last_change FROM gpkg_contents").fetchall() == [("2023-03-31T00:00:00.000Z",)]


def test_outputs_an_earlier_run_listed_and_this_one_did_not_write_are_removed(tmp_path: Path) -> None:
    from pipeline.outputs import remove_stale_outputs

    out = tmp_path / "out"
    names = ["sites.gpkg", "bulletin.pdf", "figures/chips_a_a-1.png", "composites/a_dry_2022.tif",
             "composites/b_dry_2022.tif", "composites/c_dry_2022.tif", "archive/bulletin-0001/sites.gpkg",
             "notes.txt", "mine/notes.pdf"]
    for name in names:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(name)
    (tmp_path / "outside.txt").write_text("not the run's")
    (out / "figures" / "linked.png").symlink_to(out / "mine" / "notes.pdf")
    old = {"outputs": ["sites.gpkg", "bulletin.pdf", "figures/chips_a_a-1.png", "archive/bulletin-0001/sites.gpkg",
                       "../outside.txt", "figures/linked.png", str(tmp_path / "outside.txt")],
           "aois": {a: {"composites": [{"file": f"composites/{a}_dry_2022.tif"}]} for a in ("a", "b", "c")}}
    (out / "manifest.json").write_text(json.dumps(old))
    # a done again, b failed this time, c not in this run
    new = {"outputs": ["sites.gpkg"], "aois": {"a": {"status": "ok", "composites": []},
                                              "b": {"status": "failed", "composites": []}}}
    removed = remove_stale_outputs(out, keep=new)
    assert sorted(p.relative_to(out).as_posix() for p in removed) == \
        ["bulletin.pdf", "composites/a_dry_2022.tif", "figures/chips_a_a-1.png"]
    # kept: what the new run lists, what no manifest listed, the archive, anything outside the
    # folder, a link and what it points to, and the composites of AOIs not processed this time
    for name in ("sites.gpkg", "notes.txt", "archive/bulletin-0001/sites.gpkg", "mine/notes.pdf",
                 "composites/b_dry_2022.tif", "composites/c_dry_2022.tif"):
        assert (out / name).exists(), name
    assert (out / "figures" / "linked.png").is_symlink() and (tmp_path / "outside.txt").exists()
    (out / "manifest.json").write_text("{not json")
    assert remove_stale_outputs(out, keep={}) == []


def test_composites_are_cloud_optimised(demo_run: Path) -> None:
    files = sorted((demo_run / "composites").glob("*.tif"))
    assert files
    try:
        from rio_cogeo.cogeo import cog_validate
    except ImportError:  # rio-cogeo is a dev extra; the layout checks below run anyway
        cog_validate = None
    for path in files:
        if cog_validate is not None:
            valid, errors, _warnings = cog_validate(str(path))
            assert valid, (path.name, errors)
        head = path.read_bytes()[:1024]
        assert b"GDAL_STRUCTURAL_METADATA_SIZE" in head and b"LAYOUT=IFDS_BEFORE_DATA" in head, path.name
        with rasterio.open(path) as src:
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG", path.name
            assert src.profile["tiled"] or max(src.width, src.height) <= 512
            if max(src.width, src.height) > 512:
                assert src.overviews(1), f"{path.name}: no overviews"


def test_every_composite_the_manifest_names_was_complete_before_it(demo_run: Path) -> None:
    """The composites are written in the background (pipeline.io.BackgroundWrites) while the
    sites and the bulletin are made; the run waits for them before it writes the manifest."""
    manifest_path = demo_run / "manifest.json"
    manifest = json.loads(manifest_path.read_text("utf-8"))
    named = [c["file"] for aoi in manifest["aois"].values() for c in aoi["composites"]]
    assert named and all(named)
    for name in named:
        path = demo_run / name
        assert path.is_file(), name
        assert path.stat().st_mtime_ns <= manifest_path.stat().st_mtime_ns, name
    assert sorted(str(p.relative_to(demo_run)) for p in (demo_run / "composites").glob("*.tif")) == sorted(named)
    assert not list((demo_run / "composites").glob(".*part*")), "a temporary file left behind"


def _stac_files(run: Path) -> list[Path]:
    return sorted((run / "scenario" / "catalog").rglob("*.json"))


def test_stac_items_validate_against_their_declared_schemas(demo_run: Path) -> None:
    files = _stac_files(demo_run)
    kinds = {json.loads(p.read_text("utf-8"))["type"] for p in files}
    assert kinds == {"Catalog", "Collection", "Feature"}
    problems = {p.name: stac_errors(json.loads(p.read_text("utf-8"))) for p in files}
    assert {k: v for k, v in problems.items() if v} == {}


def test_stac_validation_catches_a_field_of_another_extension_version(demo_run: Path) -> None:
    """Control: ``proj:code`` (projection v2.0.0) under the v1.1.0 schema URL is refused."""
    item_path = next(p for p in _stac_files(demo_run) if "_L2A" in p.name)
    item = json.loads(item_path.read_text("utf-8"))
    bad = copy.deepcopy(item)
    bad["properties"]["proj:code"] = f"EPSG:{item['properties']['proj:epsg']}"
    errors = stac_errors(bad)
    assert any("projection/v1.1.0" in e and "proj:code" in e for e in errors), errors
    undeclared = copy.deepcopy(item)
    undeclared["stac_extensions"].append("https://stac-extensions.github.io/view/v1.0.0/schema.json")
    assert any("no local copy" in e for e in stac_errors(undeclared))


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return [obj] if isinstance(obj, str) else []


@pytest.mark.parametrize("name", ["manifest.json", "bulletin.json"])
def test_no_local_absolute_paths(demo_run: Path, name: str) -> None:
    data = json.loads((demo_run / name).read_text("utf-8"))
    absolute = [s for s in _strings(data) if s.startswith(("/", "file:")) or re.match(r"^[A-Za-z]:\\", s)
                or re.search(r"[\s('\"=]/\w", s)]  # a message naming a path too
    assert absolute == []
    assert str(demo_run) not in (demo_run / name).read_text("utf-8")


def test_a_failed_aois_error_names_paths_relative_to_the_output_folder(tmp_path: Path) -> None:
    """An outside tester: a failed AOI's error in manifest.json named the operator's absolute
    paths (the README says the manifest never does); run.log and stderr keep them as they are."""
    from pipeline.io import relative_paths

    out = tmp_path / "runs" / "q3"
    error = (f"none of the 3 item(s) could be fetched or read; first: S2B_1 ({tmp_path}/cache/w/B04.tif: "
             f"No such file); '{tmp_path}/aois/a b.geojson' and https://example.org/x/y.tif")
    manifest = relative_paths({"aois": {"a": {"status": "failed", "error": error}}}, out)
    assert manifest["aois"]["a"]["error"] == (
        "none of the 3 item(s) could be fetched or read; first: S2B_1 (../../cache/w/B04.tif: No such file); "
        "'../../aois/a b.geojson' and https://example.org/x/y.tif")
    # What is not a path of this machine stays as it is (a reviewer: URLs' paths, GDAL's virtual
    # file systems and JSON pointers were rewritten, a URL corrupted).
    kept = ("HTTP 404 for /v1/search", "/vsicurl/https://example.org/x/y.tif: 403", "at /features/0/geometry",
            "share //server/share/x.tif", "a 1/2 ratio, 2024/01/05")
    assert relative_paths(list(kept), out) == list(kept)


def test_manifest_hrefs_resolve_from_the_output_folder(demo_run: Path) -> None:
    manifest = json.loads((demo_run / "manifest.json").read_text("utf-8"))
    hrefs = [h for item in manifest["items"] for h in item["assets"].values()]
    assert hrefs and all(h.startswith("scenario/catalog/") for h in hrefs)
    assert all((demo_run / h).is_file() for h in hrefs[:20])
    assert all((demo_run / p).is_file() for p in manifest["config"]["aois"])


def test_manifest_records_the_work_of_the_runs_own_workers(demo_run: Path) -> None:
    dask_info = json.loads((demo_run / "manifest.json").read_text("utf-8"))["dask"]
    assert dask_info["scheduler"] == "local" and dask_info["workers"] == 1
    # one worker: every task ran there, nothing moved between workers
    assert dask_info["task_cpu_s"] > 0 and dask_info["task_wait_s"] >= 0 and dask_info["transferred_mb"] == 0


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text and "e" not in text.lower() else 0


def test_csv_values_carry_their_precision(demo_run: Path) -> None:
    activity = pd.read_csv(demo_run / "activity.csv", dtype=str)
    for column in ("disturbed_ha", "new_ha", "valid_fraction"):
        assert all(_decimals(v) <= 2 for v in activity[column].dropna()), column
    cc = pd.read_csv(demo_run / "crosscheck.csv", dtype=str, keep_default_na=False)
    assert list(cc.columns)[-1] == "coverage_frac"
    for column in ("disturbed_ha", "ratio", "coverage_frac"):
        assert all(_decimals(v) <= 2 for v in cc[column] if v), column
    for column in ("est_carats_low", "est_carats_high"):
        for v in cc[column]:
            digits = f"{float(v):.0f}".rstrip("0").lstrip("-")
            assert len(digits) <= 2, (column, v)  # 2 significant figures
    for f in _features(demo_run):
        assert _decimals(repr(f["properties"]["area_ha"])) <= 2
        assert _decimals(repr(f["properties"]["confidence"])) <= 2


def test_bulletin_facts_equal_the_tables(demo_run: Path) -> None:
    data = json.loads((demo_run / "bulletin.json").read_text("utf-8"))
    facts = data["facts"]
    props = pd.DataFrame([f["properties"] for f in _features(demo_run)])
    activity = pd.read_csv(demo_run / "activity.csv")
    assert facts["n_sites"] == len(props)
    assert math.isclose(facts["site_area_ha"], props["area_ha"].sum(), abs_tol=0.005 * len(props))
    for status, n in props["status"].value_counts().items():
        assert facts["status"][status]["n"] == n
    assert sum(v["n"] for v in facts["status"].values()) == len(props)
    start = data["period"]["start"]
    assert facts["first_detected_in_period"]["n"] == int((props["first_seen"] >= start).sum())
    assert math.isclose(facts["newly_disturbed_ha"], activity["new_ha"].sum(), abs_tol=0.005 * len(activity))
    last = activity.sort_values("period_start").iloc[-1]
    assert facts["latest_period"] == [last["period_start"], last["period_end"]]
    summary = " ".join(data["summary"])
    assert f"{facts['n_sites']} excavation site" in summary
    assert f"({last['period_start']} to {last['period_end']})" in summary
    cc = pd.read_csv(demo_run / "crosscheck.csv")
    assert [c["year"] for c in facts["comparisons"]] == cc["year"].tolist()
    assert [c["coverage_frac"] for c in facts["comparisons"]] == pytest.approx(cc["coverage_frac"].tolist(), abs=0.005)
    assert set(data["definitions"]) == {"new", "expanding", "active", "dormant"}


def test_the_bulletin_names_no_path_of_the_operators_machine(demo_run: Path) -> None:
    """An outside tester: the annex said "Set for this AOI in its AOI file (/tmp/.../aoi.geojson)"."""
    text = (demo_run / "bulletin.html").read_text("utf-8")
    assert "in its AOI file (aoi.geojson)" in text  # the demo's AOI sets its own gravel and grade
    assert str(demo_run) not in text and str(demo_run.resolve()) not in text
