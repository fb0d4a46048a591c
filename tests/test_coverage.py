"""An AOI that the imagery covers only in part: the share outside every scene's footprint is
measured, warned about in the log, recorded in the manifest and ``bulletin.json``, and said in
the bulletin (the part is never seen clear, so nothing there can be a site)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pystac
import pytest
import shapely.affinity
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from pipeline.config import MonitorConfig
from pipeline.demo import ScenarioResult, write_scenario
from pipeline.run import run_monitor
from pipeline.search import uncovered_share
from tests.scale_fixtures import SMALL_SPEC, config_dict


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioResult:
    return write_scenario(tmp_path_factory.mktemp("scenario"), SMALL_SPEC)


def _item(geometry: BaseGeometry | None, i: int = 0) -> pystac.Item:
    return pystac.Item(f"it-{i}", None if geometry is None else shapely.geometry.mapping(geometry),
                       None if geometry is None else list(geometry.bounds), dt.datetime(2023, 1, 1), {})


def test_uncovered_share_is_the_area_outside_every_footprint() -> None:
    aoi = shapely.geometry.box(-6.60, 8.15, -6.56, 8.19)  # ~4.4 x 4.4 km, UTM zone 29
    west = shapely.geometry.box(-7.0, 8.0, -6.58, 8.3)
    east = shapely.geometry.box(-6.58, 8.0, -6.0, 8.3)
    assert uncovered_share(aoi, [_item(west)], epsg=32629) == pytest.approx(0.5, abs=0.005)
    assert uncovered_share(aoi, [_item(west, 0), _item(west, 1), _item(east, 2)], epsg=32629) == pytest.approx(0.0)
    assert uncovered_share(aoi, [], epsg=32629) == 1.0
    assert uncovered_share(aoi, [_item(None)], epsg=32629) == 1.0
    # A bow-tie footprint (invalid) still counts by its valid reading:
    bowtie = shapely.geometry.Polygon([(-7.0, 8.0), (-6.0, 8.3), (-6.0, 8.0), (-7.0, 8.3)])
    assert 0.0 <= uncovered_share(aoi, [_item(bowtie)], epsg=32629) <= 1.0


def test_an_aoi_half_outside_the_imagery_is_said_to_be(scenario: ScenarioResult, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    doc = json.loads(scenario.aoi_path.read_text())
    feature = doc["features"][0]
    geom = shapely.geometry.shape(feature["geometry"])
    items = list(pystac.Catalog.from_file(str(scenario.catalog_path)).get_items(recursive=True))
    footprint = shapely.union_all([shapely.geometry.shape(it.geometry) for it in items])
    # Move the AOI east until half its width lies past the footprint's eastern edge.
    minx, _, maxx, _ = geom.bounds
    shifted = shapely.affinity.translate(geom, xoff=footprint.bounds[2] - maxx + (maxx - minx) / 2)
    expected = shifted.difference(footprint).area / shifted.area
    assert 0.3 < expected < 0.7
    feature["geometry"] = shapely.geometry.mapping(shifted)
    aoi_path = tmp_path / "half-outside.geojson"
    aoi_path.write_text(json.dumps(doc))
    raw = config_dict(source=str(scenario.catalog_path), aois=[aoi_path], out=tmp_path / "out",
                      cache=tmp_path / "cache", end="2023-03-31")
    caplog.set_level(logging.WARNING, logger="pipeline")
    report = run_monitor(MonitorConfig.model_validate(raw))
    assert report.failures == {}
    aoi_id = feature["properties"]["aoi_id"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    measured = manifest["aois"][aoi_id]["uncovered_frac"]
    assert measured == pytest.approx(expected, abs=0.01)
    warned = [r.getMessage() for r in caplog.records if "outside the footprint of every scene" in r.getMessage()]
    assert len(warned) == 1 and f"{100 * measured:.0f}%" in warned[0] and aoi_id in warned[0]
    data = json.loads((tmp_path / "out" / "bulletin.json").read_text())
    (aoi,) = data["aois"]
    assert aoi["coverage_warning"] is True and aoi["uncovered_frac"] == pytest.approx(measured, abs=1e-4)
    html = (tmp_path / "out" / "bulletin.html").read_text()
    assert f"{100 * measured:.0f} % of this area of interest lies outside the footprint of every scene used" in html
    # ... and what the sentence claims holds: the part is never seen clear.
    activity = (tmp_path / "out" / "activity.csv").read_text().splitlines()
    header = activity[0].split(",")
    seen = [float(line.split(",")[header.index("valid_fraction")]) for line in activity[1:]]
    assert seen and max(seen) <= 1 - measured + 0.01
