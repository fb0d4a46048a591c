"""Tests for :mod:`pipeline.demo`: the offline demo's synthetic STAC catalog and truth.

A small spec (60 x 80 px, six months) keeps each write around a second. The cloud and
pixel checks compare what was written with the generator's own per-date frames
(``_build_scene`` / ``_render_frame``), so they test the files, not a re-implementation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import odc.stac
import pystac
import pytest
import rasterio
import shapely.geometry
from scipy import ndimage, optimize

from pipeline.demo import ScenarioResult, ScenarioSpec, write_scenario
from pipeline.demo.conventions import DN_OFFSET, DN_SCALE
from pipeline.demo.landscape import _build_scene, _pit_gravel
from pipeline.demo.render import _block_mean, _Frame, _render_frame, _surface
from pipeline.demo.sandbars import _sandbar_state
from pipeline.demo.scene import _Scene
from pipeline.demo.spec import HARD_CASE_FIELDS, _spec_json
from pipeline.demo.surfaces import GREENNESS, WETNESS, _e, _seasonal
from pipeline.demo.truth import _pit_feature, _truth_collection
from pipeline.errors import ConfigError

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
                                    {"n_rivers": 3},
                                    {"dry_season_browning": 1.5},
                                    {"missed_haze_frac": -0.1},
                                    {"jitter_px": -0.5}])
def test_bad_spec_raises_config_error(change: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        ScenarioSpec(**change)  # type: ignore[arg-type]


# --- Harder cases: seasonal sandbars, browning and yearly fires, missed haze, jitter, tiny pits


#: Two clear dry seasons on a small grid (every date cloud-free), so each season of the harder
#: cases is in view; the options are switched on one by one with dataclasses.replace.
HARD = ScenarioSpec(
    shape_px=(80, 120), start=date(2022, 1, 1), end=date(2023, 10, 31),
    monitoring_start=date(2023, 1, 1), revisit_days=15, n_pits=3, pit_area_ha=(0.3, 0.6),
    n_fields=1, field_area_ha=(0.3, 0.5), n_burn_scars=1, burn_area_ha=(0.5, 1.0),
    n_bare_patches=1, bare_patch_area_ha=(0.3, 0.5), village=False,
    cloud_prob_by_month=(0.0,) * 12, scattered_cloud_prob=0.0, n_full_cloud_dates=0,
    n_nodata_stripe_dates=0,
)
HARD_OPTIONS: dict[str, Any] = {
    "sandbar_river": True, "dry_season_browning": 1.0, "burns_every_year": True,
    "missed_haze_frac": 0.5, "jitter_px": 0.5,
}


def _indices(refl: np.ndarray) -> dict[str, np.ndarray]:
    """NDVI, BSI, SWIR2/SWIR1 and NBR of a (7, ...) reflectance array."""
    b, _, r, n, _, s1, s2 = refl
    return {"ndvi": (n - r) / (n + r), "bsi": ((s1 + r) - (n + b)) / ((s1 + r) + (n + b)),
            "ratio": s2 / s1, "nbr": (n - s2) / (n + s2)}


def _at(scene: _Scene, when: date) -> np.ndarray:
    """Cloud-free surface reflectance (7, ny, nx) of ``scene`` on any day."""
    g = min(_seasonal(GREENNESS, when) * scene.year_amp.get(when.year, 1.0), 1.0)
    return _surface(scene, when, g, _seasonal(WETNESS, when))


def _full_mask(scene: _Scene, kind: str) -> np.ndarray:
    mask = np.zeros(scene.grid.shape, bool)
    for p in scene.patches:
        if p.kind == kind:
            mask[p.window] |= p.mask
    return mask


def _nearest_index(scene: _Scene, when: date) -> int:
    return min(range(len(scene.dates)), key=lambda i: abs((scene.dates[i] - when).days))


def _all_frames(spec: ScenarioSpec) -> list[np.ndarray]:
    scene = _build_scene(spec)
    frames = [_render_frame(scene, i) for i in range(len(scene.dates))]
    return [np.concatenate([f.refl10.ravel(), f.refl20.ravel(), f.scl.ravel()]) for f in frames]


def test_new_options_leave_the_spec_hash_of_existing_scenarios_alone() -> None:
    # Values computed with the generator before these options existed (pipeline.scenario).
    assert ScenarioSpec().digest() == "ce6683d73c524097"
    assert SMALL.digest() == "0c683b4e66717c3a"
    assert ScenarioSpec(with_s1=True, seed=5).digest() == "678844e527770bfa"
    defaults = {name: getattr(ScenarioSpec(), name) for name in HARD_CASE_FIELDS}
    assert dataclasses.replace(SMALL, **defaults).digest() == SMALL.digest()
    assert not set(HARD_CASE_FIELDS) & set(_spec_json(SMALL))
    for name, value in HARD_OPTIONS.items():
        on = dataclasses.replace(SMALL, **{name: value})
        assert on.digest() != SMALL.digest() and _spec_json(on)[name] == value


@pytest.mark.parametrize("option", sorted(HARD_OPTIONS))
def test_each_hard_option_changes_the_output_and_is_deterministic(option: str) -> None:
    spec = dataclasses.replace(HARD, **{option: HARD_OPTIONS[option]})
    first, again, plain = _all_frames(spec), _all_frames(spec), _all_frames(HARD)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert any(not np.array_equal(a, b) for a, b in zip(first, plain, strict=True))
    other = _all_frames(dataclasses.replace(spec, seed=1))
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_all_hard_options_write_identical_bytes_and_their_truth(tmp_path: Path) -> None:
    spec = dataclasses.replace(HARD, with_s1=True, n_burn_scars=2, revisit_days=30,
                               s1_revisit_days=24, **HARD_OPTIONS)
    first, again = write_scenario(tmp_path / "a", spec), write_scenario(tmp_path / "b", spec)
    root_a, root_b = first.catalog_path.parents[1], again.catalog_path.parents[1]
    files = sorted(p.relative_to(root_a) for p in root_a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(root_b) for p in root_b.rglob("*") if p.is_file())
    for rel in files:
        assert (root_a / rel).read_bytes() == (root_b / rel).read_bytes(), rel
    assert first.n_s1_items > 0

    features = json.loads(first.truth_path.read_text())["features"]
    bars = [f for f in features if f["properties"].get("distractor_type") == "river_sandbar"]
    burns = [f for f in features if f["properties"].get("distractor_type") == "burn_scar"]
    assert bars and all(f["properties"]["kind"] == "distractor" for f in bars)
    assert all(f["properties"]["description"].startswith("seasonal river sandbars/banks")
               for f in bars)
    assert len(burns) == 2  # one feature per scar, whatever the number of fires
    assert all("every year" in f["properties"]["description"] for f in burns)
    assert all(len(f["properties"]["event_dates"]) == 2 for f in burns)  # 2022 and 2023
    river = shapely.union_all([shapely.geometry.shape(f["geometry"]) for f in bars])
    for pit in (f for f in features if f["properties"]["kind"] == "pit"):
        assert not shapely.geometry.shape(pit["geometry"]).intersection(river).area


def test_sandbars_are_bare_in_february_grassy_in_july_flooded_in_september() -> None:
    scene = _build_scene(dataclasses.replace(HARD, sandbar_river=True))
    bars = _full_mask(scene, "river_sandbar")
    assert scene.sandbar is not None and np.array_equal(bars, scene.sandbar.bars)
    assert 3.0 <= bars.sum() * 0.01 <= 10.0  # ha, along 1.2 km of river
    bars20 = _block_mean(bars.astype(np.float32)) == 1.0
    pits = np.zeros(scene.grid.shape, bool)
    for pit in scene.pits:
        pits[pit.window] |= np.isfinite(pit.rank)
    assert not (pits & scene.sandbar.footprint).any()

    def median(when: date) -> dict[str, float]:
        frame = _render_frame(scene, _nearest_index(scene, when))
        red, nir = frame.refl10[2], frame.refl10[3]
        green20, swir16 = _block_mean(frame.refl10[1]), frame.refl20[1]
        return {"ndvi": float(np.median(((nir - red) / (nir + red))[bars])),
                "red": float(np.median(red[bars])), "nir": float(np.median(nir[bars])),
                "mndwi": float(np.median(((green20 - swir16) / (green20 + swir16))[bars20]))}

    dry, green = median(date(2023, 2, 15)), median(date(2023, 7, 15))
    flood = median(date(2023, 9, 15))
    assert dry["ndvi"] < 0.15 and dry["red"] > 0.17 and dry["mndwi"] < 0  # bare bright sand
    assert green["ndvi"] > 0.5 and green["mndwi"] < 0  # grass
    assert flood["mndwi"] > 0.3 and flood["nir"] < 0.08  # water ...
    assert flood["red"] < _e("water_turbid")[2]  # ... darker than a pit pond
    # The same calendar every year, baseline and monitoring alike.
    assert _sandbar_state(date(2022, 9, 15)) == _sandbar_state(date(2023, 9, 15))


def test_cured_grass_is_close_to_gravel_but_not_in_the_swir() -> None:
    open_savanna: dict[str, Any] = {"n_pits": 0, "n_fields": 0, "n_burn_scars": 0, "village": False,
                    "n_rivers": 0, "n_bare_patches": 1, "bare_patch_area_ha": (0.5, 0.8)}
    plain = _build_scene(dataclasses.replace(HARD, **open_savanna))
    cured = _build_scene(dataclasses.replace(HARD, dry_season_browning=1.0, **open_savanna))
    outcrop = _full_mask(cured, "bare_outcrop")
    grass = ~ndimage.binary_dilation(outcrop, iterations=2)
    feb, sep = date(2023, 2, 15), date(2023, 9, 15)
    before, after = _indices(_at(plain, feb)), _indices(_at(cured, feb))
    assert np.median(before["ndvi"][grass]) > 0.25
    assert 0.12 <= np.median(after["ndvi"][grass]) < 0.2
    assert 0.15 <= np.median(after["bsi"][grass]) <= 0.22
    assert np.median(after["ratio"][grass]) < 0.75  # dry vegetation: SWIR2 well below SWIR1
    assert np.median(after["ratio"][outcrop]) >= 0.8  # laterite is mineral
    gravel = np.array([_pit_gravel(np.random.default_rng([0, k])) for k in range(300)])
    gravel_ratio = gravel[:, 6] / gravel[:, 5]
    assert np.median(gravel_ratio) >= 0.8
    # PIT_GRAVEL_RANGE (kept for byte identity) lets about a third of the pits fall below 0.8,
    # but hardly any as low as cured grass.
    assert (gravel_ratio > np.median(after["ratio"][grass])).mean() > 0.9
    np.testing.assert_array_equal(_at(plain, sep), _at(cured, sep))  # the rains are unchanged


def test_fires_return_every_dry_season_with_negative_nbr() -> None:
    spec = dataclasses.replace(HARD, start=date(2022, 1, 1), end=date(2024, 3, 31),
                               burns_every_year=True, n_burn_scars=2, burn_area_ha=(1.0, 2.0))
    scene = _build_scene(spec)
    fires = [p for p in scene.patches if p.kind == "burn_scar"]
    for scar_id in {p.truth_id for p in fires}:
        scar = [p for p in fires if p.truth_id == scar_id]
        assert scar and all(p.event and p.end for p in scar)
        seasons = sorted((p.event + dt.timedelta(days=60)).year for p in scar if p.event)
        assert seasons == [2022, 2023, 2024]  # the dry season of every year
        first = np.zeros(scene.grid.shape, bool)
        first[scar[0].window] = scar[0].mask
        for fire in scar:
            assert fire.event is not None and fire.end is not None
            mask = np.zeros(scene.grid.shape, bool)
            mask[fire.window] = fire.mask
            assert (mask & first).sum() / (mask | first).sum() > 0.6  # about the same place
            fresh = _indices(_at(scene, fire.event + dt.timedelta(days=3)))
            regrown = _indices(_at(scene, fire.end + dt.timedelta(days=30)))
            assert np.median(fresh["nbr"][mask]) < 0 < 0.3 < np.median(regrown["nbr"][mask])
    truth = [f for f in _truth_collection(scene)["features"]
             if f["properties"].get("distractor_type") == "burn_scar"]
    assert len(truth) == 2 and all(len(f["properties"]["event_dates"]) == 3 for f in truth)


def test_missed_haze_brightens_clear_dates_without_any_flag() -> None:
    hazy = _build_scene(dataclasses.replace(HARD, missed_haze_frac=0.5))
    plain = _build_scene(HARD)
    assert len(hazy.haze) == round(0.5 * len(hazy.dates))  # every HARD date is clear
    index = max(hazy.haze, key=lambda i: hazy.haze[i])
    with_haze, without = _render_frame(hazy, index), _render_frame(plain, index)
    assert float(np.mean(with_haze.refl10[0] - without.refl10[0])) > 0.02  # blue
    assert float(np.mean(with_haze.refl10[1] - without.refl10[1])) > 0.015  # green

    def ndvi(frame: _Frame) -> float:
        refl = frame.refl10
        return float(np.median((refl[3] - refl[2]) / (refl[3] + refl[2])))

    assert ndvi(with_haze) < ndvi(without) - 0.02  # less vegetation contrast
    assert not with_haze.cloud20.any()
    assert not np.isin(with_haze.scl, (3, 7, 8, 9, 10)).any()  # nothing flagged


def test_jitter_shifts_a_frame_by_a_sub_pixel_amount() -> None:
    quiet = dataclasses.replace(HARD, sensor_noise=0.0)
    jittered = _build_scene(dataclasses.replace(quiet, jitter_px=0.5))
    plain = _build_scene(quiet)
    assert len(jittered.jitter) == len(jittered.dates)
    index = next(i for i, s in jittered.jitter.items() if 0.15 < max(map(abs, s)) < 0.9)
    moved, still = _render_frame(jittered, index).refl10[3], _render_frame(plain, index).refl10[3]
    inner = (slice(3, -3), slice(3, -3))

    def misfit(shift: np.ndarray) -> float:
        shifted = ndimage.shift(still, shift, order=1, mode="nearest")
        return float(np.mean((shifted - moved)[inner] ** 2))

    found = optimize.minimize(misfit, np.zeros(2), method="Nelder-Mead",
                              options={"xatol": 1e-3, "fatol": 1e-12}).x
    np.testing.assert_allclose(found, jittered.jitter[index], atol=0.05)
    assert misfit(np.zeros(2)) > 10 * misfit(found)


def test_tiny_pits_render_at_their_size() -> None:
    spec = dataclasses.replace(HARD, n_pits=8, pit_area_ha=(0.2, 0.5), n_abandoned=0)
    scene = _build_scene(spec)
    assert len(scene.pits) == 8
    sep = _indices(_at(scene, date(2024, 9, 15)))  # every pit fully dug; savanna green
    taken = np.zeros(scene.grid.shape, bool)
    for p in scene.patches:
        taken[p.window] |= p.mask
    for pit in scene.pits:
        mask = np.zeros(scene.grid.shape, bool)
        mask[pit.window] = np.isfinite(pit.rank)
        taken |= mask
        assert 0.1 <= mask.sum() * 0.01 <= 0.5
        assert ndimage.label(mask)[1] == 1
        feature = _pit_feature(pit, spec.aoi_id, scene.grid)
        geom = shapely.geometry.shape(feature["geometry"])
        assert geom.is_valid and geom.geom_type == "Polygon"
        assert feature["properties"]["area_ha"] == pytest.approx(mask.sum() * 0.01)
        assert (sep["ndvi"][mask] < 0.3).all()  # gravel or pond in every pixel
    rims = ndimage.binary_dilation(taken, iterations=1) & ~taken & (scene.forest == 0)
    assert np.median(sep["ndvi"][rims]) > 0.5
