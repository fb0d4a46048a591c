"""An image that passed the window cache's checks and is corrupt when a later run reads it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import shapely.geometry

from pipeline.demo import write_scenario
from tests.bad_inputs.harness import run_in_process
from tests.scale_fixtures import SMALL_SPEC, config_dict, write_config


# two whole runs of the small scenario (about 12 s on 2 cores)
def test_an_image_corrupted_after_its_check_fails_its_aoi_not_the_run(tmp_path: Path) -> None:
    """An outside tester zero-filled a band file of a local catalog after a run had checked it,
    keeping its size and time: the next run ended with "internal error ... this is a bug"
    (the worker's RasterioIOError came back from ``distributed`` as a plain Exception). The AOI
    fails, as for any unreadable imagery: exit 1, one line, the bulletin says what kind (after
    leaving out as many items as ``acquire.max_unreadable_items`` allows: every item is damaged)."""
    scenario = write_scenario(tmp_path / "scenario", SMALL_SPEC)
    cache = tmp_path / "cache"

    # The second run's AOI is new to the cache (the western half, another id): it reads the
    # images again, where the first AOI's would reuse its stored state and cached windows.
    doc = json.loads(Path(scenario.aoi_path).read_text("utf-8"))
    geometry = shapely.geometry.shape(doc["features"][0]["geometry"])
    west, south, east, north = geometry.bounds
    doc["features"][0]["geometry"] = shapely.geometry.mapping(
        geometry.intersection(shapely.geometry.box(west, south, (west + east) / 2, north)))
    doc["features"][0]["properties"]["aoi_id"] = "again"
    again = tmp_path / "again.geojson"
    again.write_text(json.dumps(doc), encoding="utf-8")

    def monitor(out: str, aoi: Path) -> tuple[int, str]:
        raw = config_dict(source=str(scenario.catalog_path), aois=[aoi], out=tmp_path / out, cache=cache)
        res = run_in_process(tmp_path, "-q", "monitor", "--config", str(write_config(tmp_path / f"{out}.yaml", raw)))
        return res.returncode, res.stderr

    code, err = monitor("first", Path(scenario.aoi_path))
    assert code == 0, err
    for band in sorted(scenario.catalog_path.parent.rglob("B04.tif")):  # checked: same size and time
        stat = band.stat()
        band.write_bytes(b"\0" * stat.st_size)
        os.utime(band, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    code, err = monitor("second", again)
    assert code == 1, err  # the only AOI failed: no bulletin, the run failed
    assert "internal error" not in err and "this is a bug" not in err, err
    failed = [ln for ln in err.splitlines() if ln.startswith("failed:")]
    assert len(failed) == 1 and "reading imagery failed" in failed[0] and band.name in failed[0], err
    # every item's red band is damaged: it left out acquire.max_unreadable_items (3) of them first
    assert err.count("could not be decoded (1 of at most 3)") == 1 and "(3 of at most 3)" in err, err
    assert not (tmp_path / "second" / "manifest.json").exists()  # a run in which no AOI succeeded publishes nothing


def test_an_undecodable_tile_names_its_file(tmp_path: Path) -> None:
    """An outside tester overwrote 64 bytes of a band file's only tile, keeping its size: the
    header and tile index pass the checks, and odc-stac's read failed with GDAL's "Read failed.
    See previous exception for details.", which named no file. The error now starts with it."""
    import numpy as np
    import pytest
    import rasterio
    from odc.geo.geobox import GeoBox
    from odc.loader import _rio
    from odc.loader.types import RasterLoadParams, RasterSource
    from rasterio.transform import from_origin

    import pipeline.acquire  # noqa: F401 - installs pipeline.read_errors

    path = tmp_path / "B04.tif"
    with rasterio.open(path, "w", driver="GTiff", width=256, height=256, count=1, dtype="uint16",
                       crs="EPSG:32629", transform=from_origin(500000, 1000000, 10, 10), tiled=True,
                       blockxsize=256, blockysize=256, compress="deflate") as dst:
        dst.write(np.random.default_rng(0).integers(0, 5000, (256, 256)).astype("uint16"), 1)
    with rasterio.open(path) as src:
        offset, geobox = int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1)), GeoBox.from_rio(src)
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * 64)
    with pytest.raises(rasterio.errors.RasterioIOError, match=f"^{path} \\(band 1\\) could not be decoded: "):
        _rio.rio_read(RasterSource(str(path), band=1), RasterLoadParams(dtype="uint16"), geobox)


def _damage_first_tile(path: Path) -> None:
    """Overwrite the start of the band file's first tile, keeping its header, tile index and size."""
    import rasterio

    with rasterio.open(path) as src:
        offset = int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * 64)


def test_an_item_whose_image_cannot_be_decoded_is_left_out(tmp_path: Path) -> None:
    """One date's red band has a damaged tile (header and tile index intact: the fetch's checks
    pass it). The AOI is computed again without that item, which the manifest lists with the
    reason; with ``acquire.max_unreadable_items: 0`` the AOI fails naming the file, as before."""
    scenario = write_scenario(tmp_path / "scenario", SMALL_SPEC)
    # a date in the run's monitoring period (2022-10-01..2023-03-31)
    bands = [p for p in sorted(scenario.catalog_path.parent.rglob("B04.tif"))
             if "20221101" <= p.parent.name.split("_")[2] <= "20230301"]
    damaged = bands[len(bands) // 2]
    _damage_first_tile(damaged)
    item_id = json.loads(next(damaged.parent.glob("*.json")).read_text("utf-8"))["id"]

    def monitor(out: str, **sections: dict) -> tuple[int, str, Path]:
        raw = config_dict(source=str(scenario.catalog_path), aois=[Path(scenario.aoi_path)], out=tmp_path / out,
                          cache=tmp_path / f"cache-{out}", **sections)
        res = run_in_process(tmp_path, "-q", "monitor", "--config", str(write_config(tmp_path / f"{out}.yaml", raw)))
        return res.returncode, res.stderr, tmp_path / out

    code, err, out = monitor("skip")
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    (aoi,) = manifest["aois"].values()
    (skipped,) = aoi["skipped_items"]
    assert skipped.startswith(f"item {item_id} band red (") and "B04.tif (band 1) could not be decoded" in skipped
    used = {item["id"] for item in manifest["items"]}
    assert item_id not in used and len(used) == aoi["n_items"] > 0
    # the bulletin says so, in the AOI's section
    html = (out / "bulletin.html").read_text("utf-8")
    assert ("1 item found for this area of interest was left out: its imagery could not be read. It is listed, "
            "with the reason, in manifest.json (skipped_items).") in html

    code, err, out = monitor("strict", acquire={"max_unreadable_items": 0})
    assert code == 1, err
    (failed,) = [ln for ln in err.splitlines() if ln.startswith("failed:")]
    assert "reading imagery failed" in failed and str(damaged) in failed, err
