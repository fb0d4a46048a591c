"""Satellite monitoring of artisanal diamond mining for the Kimberley Process WGM.

The stages, in the order a run calls them (one module or subpackage each)::

    aoi         read and validate AOI files            read_aois
    jobs        one AOI's work order and pixel grid     AOIJob, AOIGrid
    search      STAC / provider search                  search_items
    cache       window-only acquisition, retries        localise_items
    acquire     lazy (time, y, x) cube (odc-stac)       open_scenes
    preprocess  reflectance, cloud mask                 to_reflectance, mask_clouds
    composites  cloud-free composites (geomedian)       composite, write_composites
    detect      evidence, confirmation, flags           detect_change
    radar       Sentinel-1 evidence, fusion             score_radar_change
    sites       polygons, tracking, area series         delineate_sites, track_sites
    classify    site classifier (features, model)       train_site_model, load_site_model
    crosscheck  carats, declared figures, flags         crosscheck_production
    bulletin    HTML/PDF bulletin                       render_bulletin
    workflow    one AOI end to end                      run_aoi, open_aoi_scenes
    outputs     tables, manifest, archive               write_outputs
    run         the whole run (the only Dask client)    run_monitor

The public names below are imported on first use (PEP 562), so ``import pipeline`` stays
light: the command line's ``--help`` does not load Dask, GDAL or WeasyPrint.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "MonitorConfig": "config",
    "load_config": "config",
    "threshold_table": "config",
    "MonitorError": "errors",
    "ConfigError": "errors",
    "read_aois": "aoi",
    "AOIJob": "jobs",
    "AOIGrid": "jobs",
    "plan_jobs": "jobs",
    "search_items": "search",
    "open_scenes": "acquire",
    "to_reflectance": "preprocess",
    "mask_clouds": "preprocess",
    "composite": "composites",
    "detect_change": "detect",
    "score_change": "detect",
    "confirm_change": "detect",
    "score_radar_change": "radar",
    "delineate_sites": "sites",
    "track_sites": "sites",
    "crosscheck_production": "crosscheck",
    "review_statistics": "crosscheck",
    "render_bulletin": "bulletin",
    "open_aoi_scenes": "workflow",
    "run_aoi": "workflow",
    "run_monitor": "run",
    "RunReport": "outputs",
    "evaluate_sites": "evaluate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
