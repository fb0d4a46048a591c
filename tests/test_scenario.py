"""Tests for :mod:`pipeline.scenario`: the offline demo's synthetic STAC catalog and truth.

A small spec (60 x 80 px, six months) keeps each write around a second. The cloud and
pixel checks compare what was written with the generator's own per-date frames
(``_build_scene`` / ``_render_frame``), so they test the files, not a re-implementation.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import odc.stac
import pystac
import pytest
import rasterio
import shapely.geometry

from pipeline.errors import ConfigError
from pipeline.scenario import (
    DN_OFFSET,
    DN_SCALE,
    GREENNESS,
    WETNESS,
    ScenarioResult,
    ScenarioSpec,
    _build_scene,
    _render_frame,
    _seasonal,
    _surface,
    write_scenario,
)

SMALL = ScenarioSpec(
    shape_px=(60, 80),
    start=date(2022, 11, 1),
    end=date(2023, 4, 30),
    monitoring_start=date(2023, 1, 1),
    n_pits=3,
    pit_area_ha=(0.3, 0.6),
    n_fields=1,
    field_area_ha=(0.3, 0.5),
    burn_area_ha=(0.5, 1.0),
    n_bare_patches=1,
    bare_patch_area_ha=(0.2, 0.4),
    # The window is all dry season: force clouds so the SCL checks have something to check.
    cloud_prob_by_month=(0.6,) * 12,
    n_full_cloud_dates=1,
    n_nodata_stripe_dates=1,
)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> ScenarioResult:
    return write_scenario(tmp_path_factory.mktemp("scenario"), SMALL)


def _items(result: ScenarioResult) -> list[pystac.Item]:
    catalog = pystac.Catalog.from_file(str(result.catalog_path))
    return sorted(catalog.get_items(recursive=True), key=lambda it: it.id)


def _read(path: str | Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_catalog_loads_with_pystac(small: ScenarioResult) -> None:
    items = _items(small)
    assert len(items) == small.n_items == 19  # every 10 days, 2022-11-01 .. 2023-04-30
    assert small.epsg == 32629
    collection = pystac.Catalog.from_file(str(small.catalog_path)).get_child("sentinel-2-c1-l2a")
    assert isinstance(collection, pystac.Collection)
    interval = collection.extent.temporal.intervals[0]
    assert interval[0] == min(it.datetime for it in items if it.datetime)

    item = items[0]
    assert item.collection_id == "sentinel-2-c1-l2a"
    assert item.id.endswith("_0_L2A") and item.id.split("_")[1] == "29PQK"
    props = item.properties
    assert props["proj:code"] == "EPSG:32629"
    assert props["s2:processing_baseline"] == "05.10"
    assert props["earthsearch:boa_offset_applied"] is True
    assert props["platform"] in {"sentinel-2a", "sentinel-2b"}
    assert 0 <= props["eo:cloud_cover"] <= 100
    assert set(item.assets) == {"blue", "green", "red", "nir", "nir08", "swir16", "swir22", "scl"}

    left, bottom, right, top = small.bounds_utm
    assert left % 20 == 0 and top % 20 == 0
    red, swir = item.assets["red"].extra_fields, item.assets["swir16"].extra_fields
    assert red["proj:shape"] == [60, 80] and red["proj:transform"][:3] == [10.0, 0.0, left]
    assert swir["proj:shape"] == [30, 40] and swir["proj:transform"][4:6] == [-20.0, top]
    assert red["raster:bands"] == [{"nodata": 0, "data_type": "uint16", "spatial_resolution": 10,
                                    "scale": DN_SCALE, "offset": DN_OFFSET}]
    assert item.assets["scl"].extra_fields["raster:bands"][0]["data_type"] == "uint8"
    for asset in item.assets.values():
        assert asset.href.startswith("./")  # self-contained: the folder can move
        assert Path(asset.get_absolute_href() or "").exists()


def test_items_on_disk_keep_proj_epsg(small: ScenarioResult) -> None:
    item_json = next(small.catalog_path.parent.glob("sentinel-2-c1-l2a/*/*_L2A.json"))
    raw = json.loads(item_json.read_text())
    assert raw["properties"]["proj:epsg"] == 32629
    assert "https://stac-extensions.github.io/raster/v1.1.0/schema.json" in raw["stac_extensions"]


def test_odc_stac_load_matches_rendered_reflectance(small: ScenarioResult) -> None:
    items = _items(small)
    scene = _build_scene(SMALL)
    index = 3
    item = next(it for it in items if scene.dates[index].strftime("%Y%m%d") in it.id)
    frame = _render_frame(scene, index)

    ds = odc.stac.load([item], bands=["red", "nir08", "scl"], crs=f"EPSG:{small.epsg}",
                       resolution=10)
    assert ds["red"].shape == (1, 60, 80)
    assert float(ds.x[0]) == small.bounds_utm[0] + 5  # pixel centres on the 10 m grid
    red_dn = ds["red"].values[0]
    y, x = 37, 11  # asymmetric, to catch a y/x swap
    refl = red_dn[y, x] * DN_SCALE + DN_OFFSET
    assert refl == pytest.approx(float(frame.refl10[2, y, x]), abs=0.6 * DN_SCALE)
    # 20 m bands land on the 10 m grid by nearest neighbour: each 20 m pixel covers 2 x 2.
    nir08_cog = _read(Path(item.assets["nir08"].get_absolute_href() or ""))
    assert ds["nir08"].values[0, 2 * 17 + 1, 2 * 23] == nir08_cog[17, 23]
    np.testing.assert_array_equal(ds["scl"].values[0, ::2, ::2], frame.scl)


def test_same_seed_is_byte_identical_and_seed_matters(
    tmp_path: Path, small: ScenarioResult
) -> None:
    again = write_scenario(tmp_path / "again", SMALL)
    first_root, again_root = small.catalog_path.parents[1], again.catalog_path.parents[1]
    files = sorted(p.relative_to(first_root) for p in first_root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again_root) for p in again_root.rglob("*") if p.is_file())
    for rel in files:
        assert (first_root / rel).read_bytes() == (again_root / rel).read_bytes(), rel

    other = write_scenario(tmp_path / "other", dataclasses.replace(SMALL, seed=1))
    first_item, other_item = _items(small)[0], _items(other)[0]
    assert first_item.id == other_item.id
    a = _read(first_item.assets["red"].get_absolute_href() or "")
    b = _read(other_item.assets["red"].get_absolute_href() or "")
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_rerun_with_same_spec_does_not_rewrite(small: ScenarioResult) -> None:
    before = small.catalog_path.stat().st_mtime_ns
    out_dir = small.catalog_path.parents[1]
    assert write_scenario(out_dir, SMALL) == small
    assert small.catalog_path.stat().st_mtime_ns == before
    assert not (out_dir / ".scenario-build").exists()


def test_catalog_still_loads_after_moving_the_folder(
    tmp_path: Path, small: ScenarioResult
) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(small.catalog_path.parents[1], moved)
    item = _items(small)[0]
    catalog = pystac.Catalog.from_file(str(moved / "catalog" / "catalog.json"))
    copy = next(it for it in catalog.get_items(recursive=True) if it.id == item.id)
    href = copy.assets["blue"].get_absolute_href() or ""
    assert href.startswith(str(moved))
    np.testing.assert_array_equal(_read(href), _read(item.assets["blue"].get_absolute_href() or ""))


def test_truth_pits_and_distractors(small: ScenarioResult) -> None:
    truth = json.loads(small.truth_path.read_text())
    pits = [f for f in truth["features"] if f["properties"]["kind"] == "pit"]
    distractors = [f for f in truth["features"] if f["properties"]["kind"] == "distractor"]
    assert len(pits) == SMALL.n_pits
    for feature in pits:
        props = feature["properties"]
        assert date.fromisoformat(props["opened"]) >= SMALL.monitoring_start
        assert props["fate"] in {"active", "flooded", "abandoned"}
        geom = shapely.geometry.shape(feature["geometry"])
        assert geom.is_valid and geom.geom_type == "Polygon"
    types = {f["properties"]["distractor_type"] for f in distractors}
    assert {"burn_scar", "cleared_field"} <= types

    # The per-pixel opening raster agrees with the polygons' areas and dates.
    opened = _read(small.truth_path.parent / "truth_opened.tif")
    assert opened.shape == SMALL.shape_px and opened.dtype == np.int32
    total_ha = sum(f["properties"]["area_ha"] for f in pits)
    assert (opened > 0).sum() * 0.01 == pytest.approx(total_ha, abs=0.011)
    first_day = (SMALL.monitoring_start - date(1970, 1, 1)).days
    assert opened[opened > 0].min() >= first_day


def test_aoi_is_inside_the_footprint(small: ScenarioResult) -> None:
    aoi = json.loads(small.aoi_path.read_text())
    (feature,) = aoi["features"]
    props = feature["properties"]
    assert props["aoi_id"] == "seguela-demo" and props["participant_iso3"] == "CIV"
    assert props["gravel_thickness_m"] == [0.5, 2.0]
    footprint = shapely.geometry.shape(_items(small)[0].geometry)
    polygon = shapely.geometry.shape(feature["geometry"])
    assert footprint.contains(polygon)
    # 100 m margin on each side of a 600 m x 800 m footprint.
    assert polygon.area / footprint.area == pytest.approx((400 * 600) / (600 * 800), rel=0.01)


def test_scl_flags_most_cloud_but_not_all(small: ScenarioResult) -> None:
    scene = _build_scene(SMALL)
    made = flagged = 0
    for index in range(len(scene.dates)):
        frame = _render_frame(scene, index)
        made += int(frame.cloud20.sum())
        flagged += int(np.isin(frame.scl[frame.cloud20], (8, 9, 10)).sum())
    assert made > 1000  # forced cloudy months, plus one date cloudy from edge to edge
    assert 0.85 <= flagged / made < 1.0  # Sen2Cor-like: most, not all

    items = {it.id: it for it in _items(small)}
    cloudy = max(range(len(scene.dates)), key=lambda i: scene.cloud_cover[i])
    item = next(it for it in items.values() if scene.dates[cloudy].strftime("%Y%m%d") in it.id)
    assert item.properties["eo:cloud_cover"] > 95
    np.testing.assert_array_equal(_read(item.assets["scl"].get_absolute_href() or ""),
                                  _render_frame(scene, cloudy).scl)


def test_nodata_stripe_is_zero_in_every_band(small: ScenarioResult) -> None:
    scene = _build_scene(SMALL)
    (index,) = scene.stripes
    item = next(it for it in _items(small) if scene.dates[index].strftime("%Y%m%d") in it.id)
    red = _read(item.assets["red"].get_absolute_href() or "")
    scl = _read(item.assets["scl"].get_absolute_href() or "")
    assert 0 < (scl == 0).mean() < 0.5
    np.testing.assert_array_equal(red[::2, ::2] == 0, scl == 0)
    assert item.properties["s2:nodata_pixel_percentage"] > 0


def test_savanna_has_a_strong_seasonal_cycle() -> None:
    scene = _build_scene(ScenarioSpec(n_pits=0, n_fields=0, n_burn_scars=0, n_bare_patches=0,
                                      village=False, n_rivers=0))

    def median_ndvi(when: date) -> float:
        refl = _surface(scene, when, _seasonal(GREENNESS, when), _seasonal(WETNESS, when))
        return float(np.median((refl[3] - refl[2]) / (refl[3] + refl[2])))

    assert 0.25 <= median_ndvi(date(2023, 3, 15)) <= 0.35
    assert 0.65 <= median_ndvi(date(2023, 9, 10)) <= 0.75


@pytest.mark.parametrize("change", [{"shape_px": (61, 80)},
                                    {"monitoring_start": date(2021, 1, 1)},
                                    {"n_rivers": 3}])
def test_bad_spec_raises_config_error(change: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ScenarioSpec(**change)  # type: ignore[arg-type]
