"""Shared set-up of the scaling tests and benchmarks: a small synthetic scenario split into
several AOIs, served over loopback HTTP (a STAC API and a Range file server), optionally with
an AOI whose imagery is broken (every asset answers 404)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pystac
import shapely.affinity
import shapely.geometry
import yaml

from pipeline.demo import ScenarioResult, ScenarioSpec
from tests.servers import RangeFileServer

#: 60 x 80 px (600 m x 800 m), 10-day revisit from June 2022: small and quick, with pits.
SMALL_SPEC = ScenarioSpec(
    shape_px=(60, 80),
    start=dt.date(2022, 6, 1),
    end=dt.date(2023, 5, 31),
    monitoring_start=dt.date(2022, 10, 1),
    n_pits=3,
    pit_area_ha=(0.4, 0.7),
    n_fields=1,
    field_area_ha=(0.3, 0.5),
    n_burn_scars=0,
    n_bare_patches=1,
    bare_patch_area_ha=(0.2, 0.4),
    pit_open_margin_days=60,
)
#: Files whose bytes must be identical between two runs that computed the same thing.
DATA_FILES = ("sites.geojson", "activity.csv", "crosscheck.csv", "flags.csv")
GDAL_FAST = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
             "GDAL_HTTP_MAX_RETRY": "1", "GDAL_HTTP_RETRY_DELAY": "0.05"}
BROKEN_SHIFT_DEG = 0.3


def split_aois(scenario: ScenarioResult, folder: Path, n: int, *, prefix: str = "part") -> list[Path]:
    """``n`` AOI files, vertical strips of the scenario's AOI polygon, ``{prefix}-{i}``."""
    doc = json.loads(scenario.aoi_path.read_text())
    feature = doc["features"][0]
    geom = shapely.geometry.shape(feature["geometry"])
    minx, miny, maxx, maxy = geom.bounds
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        strip = shapely.geometry.box(minx + (maxx - minx) * i / n, miny, minx + (maxx - minx) * (i + 1) / n, maxy)
        props = {**feature["properties"], "aoi_id": f"{prefix}-{i}", "name": f"{prefix} {i}"}
        path = folder / f"{prefix}-{i}.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(strip.intersection(geom))}
        ]}))
        paths.append(path)
    return paths


def broken_aoi(scenario: ScenarioResult, folder: Path) -> Path:
    """An AOI ``BROKEN_SHIFT_DEG`` east of the scenario, over items whose assets all 404."""
    doc = json.loads(scenario.aoi_path.read_text())
    feature = doc["features"][0]
    geom = shapely.affinity.translate(shapely.geometry.shape(feature["geometry"]), xoff=BROKEN_SHIFT_DEG)
    props = {**feature["properties"], "aoi_id": "broken", "name": "broken source"}
    path = folder / "broken.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(geom)}]}))
    return path


def served_items(scenario: ScenarioResult, files: RangeFileServer, *, broken: int = 0) -> list[dict[str, Any]]:
    """The scenario's items with hrefs on ``files``; plus ``broken`` copies moved over
    :func:`broken_aoi` whose assets do not exist on the server."""
    root = scenario.catalog_path.parent.parent
    out = []
    for item in pystac.Catalog.from_file(str(scenario.catalog_path)).get_items(recursive=True):
        if item.collection_id and "s1" in item.collection_id:
            continue
        d = item.to_dict(include_self_link=False, transform_hrefs=False)
        for key, asset in d["assets"].items():
            path = Path(item.assets[key].get_absolute_href() or "")
            asset["href"] = files.url_for(path.relative_to(root))
        d["links"] = []
        out.append(d)
    out.sort(key=lambda d: d["properties"]["datetime"])
    for d in out[:broken]:
        b = json.loads(json.dumps(d))
        b["id"] = d["id"] + "-broken"
        geom = shapely.affinity.translate(shapely.geometry.shape(d["geometry"]), xoff=BROKEN_SHIFT_DEG)
        b["geometry"] = shapely.geometry.mapping(geom)
        b["bbox"] = list(geom.bounds)
        for key, asset in b["assets"].items():
            asset["href"] = files.url_for(f"missing/{b['id']}/{key}.tif")
        out.append(b)
    return out


def config_dict(
    *, source: str, aois: list[Path], out: Path, cache: Path, start: str = "2022-10-01", end: str = "2023-03-31",
    n_workers: int = 1, threads: int = 2, **sections: Any,
) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "source": {"url": source, "collection": "sentinel-2-c1-l2a", "max_retries": 1, "timeout_s": 10},
        "aois": [str(p) for p in aois],
        "out_dir": str(out),
        "cache_dir": str(cache),
        "period": {"start": start, "end": end, "period_months": 3},
        "search": {"max_cloud_frac": 1.0},
        "acquire": {"resolution_m": 10, "margin_m": 0, "chunk_px": 64},
        "detect": {"baseline_days": 120},
        "bulletin": {"pdf": False, "demonstration": True},
        "dask": {"n_workers": n_workers, "threads_per_worker": threads, "memory_limit": "1GiB"},
        "gdal": GDAL_FAST,
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return raw


def write_config(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def data_files(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in DATA_FILES}
