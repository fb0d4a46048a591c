"""STAC items, collections and the root catalog, as Earth Search / Planetary Computer write them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pystac
from affine import Affine

from .conventions import (
    ASSETS,
    COG_MEDIA_TYPE,
    COLLECTION_ID,
    DN_OFFSET,
    DN_SCALE,
    S1_BANDS,
    S1_COLLECTION_ID,
    S1_NODATA,
    S1_PASS_UTC,
    S1_STAC_EXTENSIONS,
    STAC_EXTENSIONS,
)
from .geojson import _footprint_4326
from .radar import _S1Static
from .render import _Frame
from .scene import _Grid, _Scene
from .spec import GENERATOR_VERSION, ScenarioSpec

# --- Sentinel-2 L2A items -------------------------------------------------------------------


def _item_id(scene: _Scene, index: int) -> str:
    return f"{_platform(index)[0]}_{scene.tile}_{scene.dates[index]:%Y%m%d}_0_L2A"


def _platform(index: int) -> tuple[str, str]:
    # Alternate the two satellites so both platform values appear in the demo.
    return ("S2A", "sentinel-2a") if index % 2 == 0 else ("S2B", "sentinel-2b")


def _item_dict(scene: _Scene, index: int, frame: _Frame, item_id: str) -> dict[str, Any]:
    when = scene.dates[index]
    sensed = dt.datetime(when.year, when.month, when.day, 10, 50, 19 + index % 30, 24000)
    geometry, bbox = _footprint_4326(scene.grid)
    return {
        "type": "Feature", "stac_version": pystac.get_stac_version(),
        "stac_extensions": list(STAC_EXTENSIONS), "id": item_id,
        "geometry": geometry, "bbox": bbox, "properties": _s2_properties(scene, index, frame, sensed),
        "links": [], "assets": {key: _s2_asset(scene.grid, key) for key in ASSETS},
        "collection": COLLECTION_ID,
    }


def _s2_properties(scene: _Scene, index: int, frame: _Frame, sensed: dt.datetime) -> dict[str, Any]:
    """Item properties, SCL class percentages (of the valid pixels) included."""
    grid, when = scene.grid, scene.dates[index]
    valid = ~frame.nodata20
    n_valid = max(int(valid.sum()), 1)

    def pct(*classes: int) -> float:
        return round(100.0 * float(np.isin(frame.scl[valid], classes).sum()) / n_valid, 6)

    plat, platform = _platform(index)
    stamp = f"{when:%Y%m%d}T{sensed:%H%M%S}"
    zone, band_letter, square = scene.tile[:2], scene.tile[2], scene.tile[3:]
    return {
        "datetime": sensed.isoformat(timespec="microseconds") + "Z",
        "platform": platform, "constellation": "sentinel-2", "instruments": ["msi"],
        "eo:cloud_cover": round(frame.cloud_cover_pct, 6),
        "proj:epsg": grid.epsg,  # projection v1.1.0: proj:code is v2.0.0
        "mgrs:utm_zone": int(zone), "mgrs:latitude_band": band_letter, "mgrs:grid_square": square,
        "grid:code": f"MGRS-{scene.tile}",
        "s2:product_type": "S2MSI2A", "s2:processing_baseline": "05.10",
        "s2:product_uri": f"{plat}_MSIL2A_{stamp}_N0510_R037_T{scene.tile}_{stamp}.SAFE",
        "s2:nodata_pixel_percentage": round(100.0 * float(frame.nodata20.mean()), 6),
        "s2:saturated_defective_pixel_percentage": 0, "s2:dark_features_percentage": pct(2),
        "s2:cloud_shadow_percentage": pct(3), "s2:vegetation_percentage": pct(4),
        "s2:not_vegetated_percentage": pct(5), "s2:water_percentage": pct(6),
        "s2:unclassified_percentage": pct(7), "s2:medium_proba_clouds_percentage": pct(8),
        "s2:high_proba_clouds_percentage": pct(9), "s2:thin_cirrus_percentage": pct(10),
        "s2:snow_ice_percentage": 0, "s2:sequence": "0",
        "earthsearch:boa_offset_applied": True,
        "kp:synthetic": True,
    }


def _s2_asset(grid: _Grid, key: str) -> dict[str, Any]:
    """The asset dict of one band (or the SCL) of an item, see :data:`ASSETS`."""
    stem, title, centre, fwhm, res = ASSETS[key]
    shape = grid.shape if res == 10 else grid.shape20
    transform = grid.transform if res == 10 else grid.transform20
    asset: dict[str, Any] = {"href": f"./{stem}.tif", "type": COG_MEDIA_TYPE, "title": title}
    if key != "scl":
        asset["eo:bands"] = [{"name": key, "common_name": key, "center_wavelength": centre,
                              "full_width_half_max": fwhm}]
        asset["gsd"] = res
        band = {"nodata": 0, "data_type": "uint16", "spatial_resolution": res,
                "scale": DN_SCALE, "offset": DN_OFFSET}
    else:
        band = {"nodata": 0, "data_type": "uint8", "spatial_resolution": res}
    asset["proj:shape"] = list(shape)
    asset["proj:transform"] = _transform_list(transform)
    asset["raster:bands"] = [band]
    asset["roles"] = ["data", "reflectance"]
    return asset


def _transform_list(transform: Affine) -> list[float]:
    """``proj:transform``: the first six coefficients of the affine transform."""
    return [transform.a, transform.b, transform.c, transform.d, transform.e, transform.f]


# --- Sentinel-1 RTC items -------------------------------------------------------------------


def _s1_item_id(start: dt.datetime, end: dt.datetime, absolute: int) -> str:
    take = (absolute * 7919) % 0xFFFFFF  # datatake id: synthetic, stable
    return (f"S1A_IW_GRDH_1SDV_{start:%Y%m%dT%H%M%S}_{end:%Y%m%dT%H%M%S}_"
            f"{absolute:06d}_{take:06X}_rtc")


def _s1_item_dict(scene: _Scene, s1: _S1Static, index: int) -> dict[str, Any]:
    grid, spec, when = scene.grid, scene.spec, s1.dates[index]
    start = dt.datetime.combine(when, S1_PASS_UTC[spec.s1_orbit_state])
    end = start + dt.timedelta(seconds=25)
    # 175 orbits per 12 days: exact for the 12-day revisit, approximate otherwise.
    absolute = s1.first_absolute_orbit + round((when - s1.dates[0]).days * 175 / 12)
    geometry, bbox = _footprint_4326(grid)
    return {
        "type": "Feature", "stac_version": pystac.get_stac_version(),
        "stac_extensions": list(S1_STAC_EXTENSIONS), "id": _s1_item_id(start, end, absolute),
        "geometry": geometry, "bbox": bbox,
        "properties": _s1_properties(spec, s1, grid, start, end, absolute), "links": [],
        "assets": {band: _s1_asset(grid, band) for band in S1_BANDS}, "collection": S1_COLLECTION_ID,
    }


def _s1_properties(spec: ScenarioSpec, s1: _S1Static, grid: _Grid, start: dt.datetime,
                   end: dt.datetime, absolute: int) -> dict[str, Any]:
    iso = "%Y-%m-%dT%H:%M:%S.%fZ"
    return {
        "datetime": (start + dt.timedelta(seconds=12.5)).strftime(iso),
        "start_datetime": start.strftime(iso), "end_datetime": end.strftime(iso),
        "platform": "sentinel-1a", "constellation": "sentinel-1", "instruments": ["c-sar"],
        "sar:instrument_mode": "IW", "sar:frequency_band": "C", "sar:center_frequency": 5.405,
        "sar:polarizations": ["VV", "VH"], "sar:product_type": "GRD",
        "sar:resolution_range": 20, "sar:resolution_azimuth": 22,
        "sar:pixel_spacing_range": 10, "sar:pixel_spacing_azimuth": 10,
        "sar:looks_range": 5, "sar:looks_azimuth": 1,
        "sar:looks_equivalent_number": spec.s1_enl, "sar:observation_direction": "right",
        "sat:orbit_state": spec.s1_orbit_state, "sat:relative_orbit": s1.relative_orbit,
        "sat:absolute_orbit": absolute,
        "proj:epsg": grid.epsg,  # projection v1.1.0: proj:code is v2.0.0
        "kp:synthetic": True,
    }


def _s1_asset(grid: _Grid, band: str) -> dict[str, Any]:
    pol = band.upper()
    return {
        "href": f"./{band}.tif", "type": COG_MEDIA_TYPE, "roles": ["data"],
        "title": f"{pol}: vertical transmit, {'vertical' if pol == 'VV' else 'horizontal'} receive",
        "description": f"Terrain-corrected gamma naught ({pol}), linear power. SYNTHETIC.",
        "proj:shape": list(grid.shape),
        "proj:transform": _transform_list(grid.transform),
        "raster:bands": [{"nodata": S1_NODATA, "data_type": "float32", "spatial_resolution": 10.0}],
    }


# --- Collections and the root catalog -------------------------------------------------------


def _build_catalog(
    spec: ScenarioSpec, scene: _Scene, items: list[pystac.Item], digest: str, *,
    s1_items: list[pystac.Item] | None = None,
) -> pystac.Catalog:
    collection = _s2_collection(scene, items)
    catalog = pystac.Catalog(
        id=f"kp-demo-{spec.aoi_id}",
        title=f"{spec.name}: synthetic Sentinel-2 L2A",
        description="DEMONSTRATION - SYNTHETIC IMAGERY. Offline demo catalog for the KP monitor.",
        extra_fields={"kp:scenario": {"spec_hash": digest, "generator_version": GENERATOR_VERSION,
                                      "aoi_id": spec.aoi_id, "synthetic": True}},
    )
    catalog.add_child(collection)
    if s1_items:
        catalog.add_child(_s1_collection(scene, s1_items))
    return catalog


def _extent(scene: _Scene, items: list[pystac.Item]) -> pystac.Extent:
    """The scene footprint and the first and last item datetimes."""
    _, bbox = _footprint_4326(scene.grid)
    times = [it.datetime for it in items if it.datetime is not None]
    interval: list[dt.datetime | None] = [min(times), max(times)] if times else [None, None]
    return pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([interval]))


def _s2_collection(scene: _Scene, items: list[pystac.Item]) -> pystac.Collection:
    collection = pystac.Collection(
        id=COLLECTION_ID,
        title="Sentinel-2 Level-2A Collection 1 (SYNTHETIC DEMONSTRATION)",
        # "pipeline.scenario" (the generator's former module) is part of the output: keep it.
        description=("Synthetic Sentinel-2 L2A scenes following Earth Search sentinel-2-c1-l2a "
                     "conventions, written by pipeline.scenario. "
                     "DEMONSTRATION - SYNTHETIC IMAGERY."),
        extent=_extent(scene, items),
        license="proprietary",
        keywords=["sentinel", "earth observation", "synthetic", "demo"],
        summaries=pystac.Summaries({"platform": ["sentinel-2a", "sentinel-2b"],
                                    "constellation": ["sentinel-2"], "instruments": ["msi"],
                                    "gsd": [10, 20]}),
    )
    collection.add_items(items)
    return collection


def _s1_collection(scene: _Scene, items: list[pystac.Item]) -> pystac.Collection:
    collection = pystac.Collection(
        id=S1_COLLECTION_ID,
        title="Sentinel-1 RTC (SYNTHETIC DEMONSTRATION)",
        # "pipeline.scenario" (the generator's former module) is part of the output: keep it.
        description=("Synthetic Sentinel-1 IW radiometrically terrain-corrected gamma0 (VV, VH, "
                     "linear power, float32) following the Planetary Computer sentinel-1-rtc "
                     "conventions, written by pipeline.scenario. DEMONSTRATION - SYNTHETIC IMAGERY."),
        extent=_extent(scene, items),
        license="proprietary",
        keywords=["sentinel", "radar", "synthetic", "demo"],
        summaries=pystac.Summaries({"platform": ["sentinel-1a"], "constellation": ["sentinel-1"],
                                    "instruments": ["c-sar"], "sar:instrument_mode": ["IW"],
                                    "sar:polarizations": ["VV", "VH"], "gsd": [10]}),
    )
    collection.add_items(items)
    return collection


# --- Editing a written catalog ----------------------------------------------------------------


def remove_optical_items(catalog_path: str | Path, first: dt.date, last: dt.date) -> int:
    """Delete the Sentinel-2 items acquired from ``first`` to ``last`` (inclusive) from a
    scenario's static catalog, leaving the radar items: an optical gap such as a wet season
    with no clear view at all. Returns how many items were removed; idempotent."""
    catalog = pystac.Catalog.from_file(str(catalog_path))
    collection = catalog.get_child(COLLECTION_ID)
    if collection is None:
        raise ValueError(f"{catalog_path} has no {COLLECTION_ID} collection")
    gone = [it for it in collection.get_items() if it.datetime and first <= it.datetime.date() <= last]
    for item in gone:
        collection.remove_item(item.id)
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return len(gone)
