"""Bytes fetched per AOI-date by window-only acquisition, next to the product's size.

Setup: the real Earth Search L2A COGs of tile 29RKH (``../shared/data/external``; decimated
10x by their publisher: 1098 px at 100 m for the 10 m bands, 549 px at 200 m for the 20 m
ones) served over loopback HTTP by the test suite's Range file server, which counts every
byte it sends. One AOI-date = the 7 bands the pipeline loads (blue green red nir swir16
swir22 scl) for a ~5 km AOI (+100 m margin) inside the tile, localised by
:func:`pipeline.cache.localise_items` with a cold cache, then again with a warm one.

Two layouts of the same pixels:

- ``published``: the files as they are (512-px internal tiles: at 100 m one tile is 51 km,
  so a 5 km AOI always costs at least one 51 km tile per band);
- ``es-like``: the same pixels re-tiled to 128-px tiles, the geometry of Earth Search's real
  COGs (1024-px tiles of 10 m = 10.2 km; 1024 px of 10 m = 102 px of 100 m, 128 is the
  nearest COG block size), so the ratios carry over to full-resolution products.

Reported per layout: the tile's total size (7 files), the window's own compressed size (the
cache entries: the AOI window at native resolution, DEFLATE), the compressed size of the COG
tiles the window intersects (what any COG reader must fetch), bytes read cold and warm, and
the ratios. ``odc-stac direct`` is the same AOI loaded without the cache, for reference.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import pystac
import rasterio
import rasterio.shutil
import rasterio.warp
import rasterio.windows
import shapely.geometry

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO.parent / "shared" / "data" / "external" / "rio-tiler-pds-s2-l2a-29RKH"
ITEM = "S2A_29RKH_20200219_0_L2A.json"
FILES = {"blue": "B02.tif", "green": "B03.tif", "red": "B04.tif", "nir": "B08.tif",
         "swir16": "B11.tif", "swir22": "B12.tif", "scl": "SCL.tif"}
AOI = shapely.geometry.box(-11.55, 24.55, -11.50, 24.60)  # ~5.1 x 5.6 km
MARGIN_M = 100.0
RES_M = 100.0  # the decimated 10 m bands' grid
GDAL = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
        "GDAL_HTTP_MULTIRANGE": "YES", "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES"}


def run() -> list[dict[str, Any]]:
    if not (FIXTURE / ITEM).is_file():
        return [{"name": "skipped", "value": f"{FIXTURE} is absent (real Sentinel-2 fixtures needed)"}]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kp-bench-") as tmp:
        published = Path(tmp) / "published"
        shutil.copytree(FIXTURE, published)
        eslike = Path(tmp) / "es-like"
        _retile(published, eslike, block=128)
        for label, folder in (("published 512-px tiles", published), ("es-like 128-px tiles", eslike)):
            rows += _measure(label, folder, Path(tmp) / f"cache-{folder.name}")
    return rows


def _measure(label: str, folder: Path, cache_dir: Path) -> list[dict[str, Any]]:
    from pipeline import acquire, search
    from pipeline.cache import CacheStats, localise_items
    from pipeline.http import RetryPolicy
    from tests.conftest import patched_29rkh_item
    from tests.servers import RangeFileServer

    utm = gpd.GeoSeries([AOI], crs=4326).to_crs(32629).iloc[0]
    left, bottom, right, top = utm.bounds
    geobox = acquire.aoi_geobox((left - MARGIN_M, bottom - MARGIN_M, right + MARGIN_M, top + MARGIN_M),
                                epsg=32629, resolution_m=RES_M)
    bands = list(FILES)
    tile_bytes = sum((folder / f).stat().st_size for f in FILES.values())
    touched = sum(_tiles_touched_bytes(folder / f, geobox) for f in FILES.values())
    with RangeFileServer(folder) as srv:
        item = search.normalise_item(pystac.Item.from_dict(patched_29rkh_item(folder, srv.url)), bands=bands)
        srv.reset_stats()
        stats = CacheStats()
        localise_items([item], geobox=geobox, bands=bands, cache_dir=cache_dir, stats=stats,
                       policy=RetryPolicy(max_retries=2, backoff_s=0.05), gdal_options=GDAL)
        cold, cold_requests = srv.bytes_sent, len(srv.requests)
        srv.reset_stats()
        localise_items([item], geobox=geobox, bands=bands, cache_dir=cache_dir,
                       policy=RetryPolicy(max_retries=2, backoff_s=0.05), gdal_options=GDAL)
        warm = srv.bytes_sent
        srv.reset_stats()
        with acquire.gdal_env(GDAL):
            acquire.open_scenes([item], geobox=geobox, bands=bands, chunk_px=256).compute()
        direct = srv.bytes_sent
    window = sum(p.stat().st_size for p in (cache_dir / "windows").rglob("*.tif"))
    h, w = geobox.shape
    return [
        {"name": f"[{label}] AOI window", "value": f"{w} x {h} px at {RES_M:.0f} m (7 bands)"},
        {"name": f"[{label}] tile size, 7 band files", "value": tile_bytes, "unit": "B"},
        {"name": f"[{label}] window's own compressed size", "value": window, "unit": "B",
         "note": "cache entries: native-resolution window, DEFLATE"},
        {"name": f"[{label}] COG tiles the window intersects", "value": touched, "unit": "B",
         "note": "lower bound for any COG reader, headers excluded"},
        {"name": f"[{label}] read per AOI-date, cold cache", "value": cold, "unit": "B",
         "note": f"{cold_requests} HTTP requests"},
        {"name": f"[{label}]   / tile size", "value": round(cold / tile_bytes, 4), "ratio": cold / tile_bytes},
        {"name": f"[{label}]   / window compressed", "value": round(cold / window, 2), "ratio": cold / window},
        {"name": f"[{label}]   / intersecting tiles", "value": round(cold / touched, 3), "ratio": cold / touched},
        {"name": f"[{label}] read per AOI-date, warm cache", "value": warm, "unit": "B"},
        {"name": f"[{label}] odc-stac direct (no cache)", "value": direct, "unit": "B",
         "note": "same AOI read straight from the server"},
    ]


def _retile(src_dir: Path, dst_dir: Path, *, block: int) -> None:
    dst_dir.mkdir()
    shutil.copy2(src_dir / ITEM, dst_dir / ITEM)
    for name in FILES.values():
        resampling = "NEAREST" if name == "SCL.tif" else "AVERAGE"
        rasterio.shutil.copy(src_dir / name, dst_dir / name, driver="COG", BLOCKSIZE=block, COMPRESS="DEFLATE",
                             PREDICTOR="2", OVERVIEW_RESAMPLING=resampling)


def _tiles_touched_bytes(path: Path, geobox: Any) -> int:
    """Compressed bytes of the full-resolution tiles that intersect the geobox."""
    with rasterio.open(path) as ds:
        bounds = rasterio.warp.transform_bounds(geobox.crs.to_wkt(), ds.crs, *geobox.boundingbox)
        win = rasterio.windows.from_bounds(*bounds, transform=ds.transform)
        bh, bw = ds.block_shapes[0]
        c0, r0 = max(0, math.floor(win.col_off / bw)), max(0, math.floor(win.row_off / bh))
        c1 = min(math.ceil(ds.width / bw), math.ceil((win.col_off + win.width) / bw))
        r1 = min(math.ceil(ds.height / bh), math.ceil((win.row_off + win.height) / bh))
        total = 0
        for r in range(r0, r1):
            for c in range(c0, c1):
                total += int(ds.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=1) or 0)
        return total
