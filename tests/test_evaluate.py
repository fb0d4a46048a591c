"""Accuracy metrics against ground truth, on hand-computed squares."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box, mapping

from pipeline.evaluate import evaluate_sites

CRS = "EPSG:32629"
X0, Y0 = 500_000.0, 900_000.0


def _square(x: float, y: float, side: float) -> object:
    return box(X0 + x, Y0 + y, X0 + x + side, Y0 + y + side)


def _truth() -> gpd.GeoDataFrame:
    # Three pits of 1 ha (100 m squares), one of 0.25 ha, one cleared field.
    return gpd.GeoDataFrame(
        {
            "truth_id": ["pit-a", "pit-b", "pit-c", "pit-small", "field"],
            "kind": ["pit", "pit", "pit", "pit", "distractor"],
            "opened": ["2023-03-01", "2023-05-01", "2023-07-01", "2023-07-01", None],
            "area_ha": [1.0, 1.0, 1.0, 0.25, 2.0],
        },
        geometry=[
            _square(0, 0, 100),
            _square(300, 0, 100),
            _square(600, 0, 100),
            _square(900, 0, 50),
            _square(0, 400, 141.42),
        ],
        crs=CRS,
    )


def _sites(*squares: tuple[float, float, float, str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"site_id": [f"s{i}" for i in range(len(squares))], "first_seen": [s[3] for s in squares]},
        geometry=[_square(*s[:3]) for s in squares],
        crs=CRS,
    ).to_crs(4326)


def test_site_metrics_area_iou_and_first_seen_by_hand() -> None:
    found = _sites(
        (0, 0, 100, "2023-03-11"),  # pit-a exactly, 10 days late
        (300, 0, 50, "2023-04-21"),  # a quarter of pit-b, 10 days early
        (2000, 2000, 60, "2023-08-01"),  # nothing there: a false site
    )
    m = evaluate_sites(found, _truth())
    assert (m["n_detected"], m["tp_sites"], m["fp_sites"], m["n_truth"], m["matched_truth"]) == (3, 2, 1, 4, 2)
    assert m["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["recall"] == 0.5
    assert m["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5), abs=1e-4)
    assert m["distractor_hits"] == 0 and m["specificity"] == 1.0
    # Areas: detected 1 + 0.25 + 0.36 ha, truth 3.25 ha; IoU = 1.25 / (3.25 + 0.36).
    assert m["detected_ha"] == pytest.approx(1.61, abs=2e-3)
    assert m["truth_ha"] == pytest.approx(3.25, abs=2e-3)
    assert m["area_error_frac"] == pytest.approx(1.61 / 3.25 - 1, abs=2e-3)
    assert m["iou"] == pytest.approx(1.25 / 3.61, abs=2e-3)
    assert m["first_seen_error_days_median"] == 10.0


def test_small_pits_are_dont_care_and_distractor_hits_count() -> None:
    found = _sites((900, 0, 50, "2023-07-05"), (10, 410, 50, "2023-03-10"))
    m = evaluate_sites(found, _truth(), min_pit_ha=0.5)
    # The detection on the 0.25 ha pit is ignored; the one on the field is a false site.
    assert (m["n_truth"], m["n_detected"], m["tp_sites"]) == (3, 1, 0)
    assert m["distractor_hits"] == 1 and m["specificity"] == 0.0


def test_truth_is_clipped_to_the_monitored_area() -> None:
    # The AOI covers pit-a and the left half of pit-b: the detector cannot see the rest.
    aoi = gpd.GeoDataFrame(geometry=[box(X0 - 50, Y0 - 50, X0 + 350, Y0 + 150)], crs=CRS).to_crs(4326)
    found = _sites((0, 0, 100, "2023-03-01"), (300, 0, 50, "2023-05-01"))
    whole = evaluate_sites(found, _truth())
    clipped = evaluate_sites(found, _truth(), aoi=aoi)
    assert whole["truth_ha"] == pytest.approx(3.25, abs=2e-3) and whole["recall"] == 0.5
    assert clipped["n_truth"] == 2 and clipped["recall"] == 1.0 and clipped["distractors"] == 0
    assert clipped["truth_ha"] == pytest.approx(1.5, abs=2e-3)
    assert clipped["area_error_frac"] == pytest.approx(1.25 / 1.5 - 1, abs=2e-3)
    # A pit whose visible part is small still counts as the whole pit's size.
    assert evaluate_sites(found, _truth(), aoi=aoi, min_pit_ha=0.9)["n_truth"] == 2


def test_no_truth_and_no_sites() -> None:
    empty = gpd.GeoDataFrame({"first_seen": []}, geometry=[], crs=4326)
    truth = _truth()
    m = evaluate_sites(empty, truth[truth["kind"] == "distractor"])
    assert m["n_truth"] == 0 and m["precision"] == 1.0 and m["recall"] == 1.0 and m["iou"] == 1.0
    assert math.isnan(m["area_error_frac"]) and math.isnan(m["first_seen_error_days_median"])


def test_cli_evaluate_with_aoi(tmp_path: Path) -> None:
    ring = gpd.GeoSeries([box(X0 - 50, Y0 - 50, X0 + 350, Y0 + 150)], crs=CRS).to_crs(4326).iloc[0]
    feature = {
        "type": "Feature",
        "properties": {"aoi_id": "clip-test", "name": "Clip test", "participant": "Côte d'Ivoire",
                       "participant_iso3": "CIV"},
        "geometry": mapping(ring),
    }
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8")
    sites, truth = tmp_path / "sites.geojson", tmp_path / "truth.geojson"
    _sites((0, 0, 100, "2023-03-01"), (300, 0, 50, "2023-05-01")).to_file(sites, driver="GeoJSON")
    _truth().to_crs(4326).to_file(truth, driver="GeoJSON")
    args = [sys.executable, "-m", "pipeline", "evaluate", "--sites", str(sites), "--truth", str(truth)]
    whole = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    clipped = subprocess.run([*args, "--aoi", str(aoi)], capture_output=True, text=True)
    assert clipped.returncode == 0, clipped.stderr
    assert any(line.split() == ["recall", "0.5"] for line in whole.splitlines())
    assert any(line.split() == ["recall", "1.0"] for line in clipped.stdout.splitlines())
    missing = subprocess.run([*args, "--aoi", str(tmp_path / "nope.geojson")], capture_output=True, text=True)
    assert missing.returncode == 2 and "--aoi" in missing.stderr and "Traceback" not in missing.stderr


def test_a_truth_feature_without_kind_is_a_pit(tmp_path: Path) -> None:
    from pipeline.evaluate import read_truth

    box = [[[-6.581, 8.170], [-6.580, 8.170], [-6.580, 8.171], [-6.581, 8.171], [-6.581, 8.170]]]
    features = [{"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": box}}
                for props in ({"kind": "distractor"}, {})]
    path = tmp_path / "truth.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    assert list(read_truth(path)["kind"]) == ["distractor", "pit"]


def test_truth_placement_refuses_swapped_coordinates_and_truth_outside_the_aois(tmp_path: Path) -> None:
    """A truth file read with latitude and longitude swapped, or lying outside every --aoi,
    gives figures that mean nothing (0/0/0, or recall 1.0 of no pit): refused, naming the cause.
    Truth merely elsewhere (no swap puts it near the sites) is a result, not an error."""
    from pipeline.errors import InputDataError
    from pipeline.evaluate import check_truth_placement

    site = box(-6.581, 8.170, -6.580, 8.171)
    sites = gpd.GeoDataFrame({"first_seen": ["2023-03-01"]}, geometry=[site], crs=4326)

    def truth(*geoms: object) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({"kind": ["pit"] * len(geoms)}, geometry=list(geoms), crs=4326)

    path = tmp_path / "truth.geojson"
    check_truth_placement(sites, truth(box(-6.5805, 8.1705, -6.5795, 8.1715)), truth_path=path)  # overlaps
    check_truth_placement(sites, truth(box(-5.2, 8.1, -5.19, 8.11)), truth_path=path)  # elsewhere: a result
    check_truth_placement(sites.iloc[0:0], truth(box(8.170, -6.581, 8.171, -6.580)), truth_path=path)  # no sites
    with pytest.raises(InputDataError, match="no feature lies near any detected site.*latitude and longitude "
                                             "swapped"):
        check_truth_placement(sites, truth(box(8.170, -6.581, 8.171, -6.580)), truth_path=path)
    aoi = gpd.GeoDataFrame(geometry=[box(-6.60, 8.15, -6.56, 8.19)], crs=4326)
    check_truth_placement(sites, truth(box(-6.59, 8.16, -6.58, 8.17)), truth_path=path, aoi=aoi)
    with pytest.raises(InputDataError, match=r"no feature lies in the AOIs given \(--aoi\).*longitude -5.200"):
        check_truth_placement(sites, truth(box(-5.2, 8.1, -5.19, 8.11)), truth_path=path, aoi=aoi)
