"""pipeline.cache: window-only reads over HTTP range requests into a local cache that a second
run reads without the network, that two runs can share, and that a crash cannot corrupt;
pipeline.sources cache info / clear."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio
import shapely.geometry

from pipeline import acquire, cache, search, sources
from pipeline.cache import CacheStats, grid_key, localise_items
from pipeline.errors import ConfigError, DownloadError
from pipeline.http import RetryPolicy
from tests.conftest import S2_29RKH_ASSETS, S2_29RKH_DIR, item_copies
from tests.servers import GDAL_LOOPBACK_OPTIONS, RangeFileServer

AOI = shapely.geometry.box(-11.55, 24.55, -11.50, 24.60)
BANDS = ["blue", "green", "red", "nir", "swir16", "swir22", "scl"]
FAST = RetryPolicy(max_retries=3, backoff_s=0.01, timeout_s=10)


def _geobox(epsg: int = 32629, res: float = 100) -> Any:
    utm = gpd.GeoSeries([AOI], crs=4326).to_crs(epsg).iloc[0]
    return acquire.aoi_geobox(utm.bounds, epsg=epsg, resolution_m=res)


def _items(item: dict[str, Any], n: int = 1) -> list[pystac.Item]:
    return [search.normalise_item(pystac.Item.from_dict(d), bands=BANDS) for d in item_copies(item, n)]


def _load(items: list[pystac.Item], geobox: Any) -> Any:
    with acquire.gdal_env(GDAL_LOOPBACK_OPTIONS):
        return acquire.open_scenes(items, geobox=geobox, bands=BANDS, chunk_px=64).compute()


def _localise(items: list[pystac.Item], geobox: Any, root: Path, **kw: Any) -> tuple[Any, CacheStats]:
    stats = CacheStats()
    out = localise_items(items, geobox=geobox, bands=BANDS, cache_dir=root, policy=FAST,
                         gdal_options=GDAL_LOOPBACK_OPTIONS, stats=stats, **kw)
    return out, stats


@pytest.fixture
def rkh(earth_search_item_29rkh: tuple[dict[str, Any], RangeFileServer]) -> tuple[dict[str, Any], RangeFileServer]:
    return earth_search_item_29rkh


@pytest.mark.parametrize("epsg", [32629, 32628])  # the tile's own zone, and the next zone west
def test_cached_load_is_identical_to_direct_load(rkh: tuple[dict[str, Any], RangeFileServer], tmp_path: Path,
                                                 epsg: int) -> None:
    item, _ = rkh
    items, geobox = _items(item), _geobox(epsg)
    direct = _load(items, geobox)
    (local, failures), _ = _localise(items, geobox, tmp_path)
    cached = _load(local, geobox)
    assert not failures
    for band in BANDS:
        np.testing.assert_array_equal(cached[band].values, direct[band].values)
        assert np.count_nonzero(direct[band].values) > 0.9 * direct[band].size
    # the cached files are the source's own pixels: same CRS as the asset, native resolution
    with rasterio.open(local[0].assets["swir16"].href) as ds:
        assert ds.crs.to_epsg() == 32629 and ds.res == (200.0, 200.0) and ds.is_tiled


def test_only_the_window_is_read_and_a_second_run_reads_nothing(rkh: tuple[dict[str, Any], RangeFileServer],
                                                                 tmp_path: Path) -> None:
    item, files = rkh
    items = _items(item)
    files.reset_stats()
    (local, _), first = _localise(items, _geobox(), tmp_path)
    total = sum((files.root / name).stat().st_size for name in S2_29RKH_ASSETS.values()
                if name in {"B02.tif", "B03.tif", "B04.tif", "B08.tif", "B11.tif", "B12.tif", "SCL.tif"})
    assert first.misses == len(BANDS) and first.hits == 0
    assert all(r.method == "HEAD" or (r.range or "").startswith("bytes=") for r in files.requests)
    assert files.bytes_sent < 0.35 * total  # the AOI window's tiles, not the files
    files.reset_stats()
    (again, _), second = _localise(items, _geobox(), tmp_path)
    assert files.requests == [] and second.hits == len(BANDS) and second.misses == 0
    assert [a.assets["red"].href for a in again] == [b.assets["red"].href for b in local]
    assert local[0].assets["red"].href.startswith("file://")
    assert items[0].assets["red"].href.startswith("http://")  # the input items are untouched


def test_entries_are_keyed_by_item_band_and_grid(rkh: tuple[dict[str, Any], RangeFileServer], tmp_path: Path) -> None:
    item, files = rkh
    items = _items(item, 2)
    assert grid_key(_geobox()) == grid_key(_geobox()) != grid_key(_geobox(res=200))
    _localise(items, _geobox(), tmp_path)
    files.reset_stats()
    (_, _), stats = _localise(items, _geobox(res=200), tmp_path)  # a new grid: new entries
    assert stats.misses == 2 * len(BANDS) and files.requests
    names = sorted(p.name for p in (tmp_path / "windows").rglob("*.tif"))
    assert len(names) == 2 * 2 * len(BANDS)


def test_two_runs_sharing_the_cache_fetch_each_window_once(rkh: tuple[dict[str, Any], RangeFileServer],
                                                           tmp_path: Path) -> None:
    item, files = rkh
    items = _items(item, 3)
    files.reset_stats()
    barrier = threading.Barrier(2)
    results: list[CacheStats] = []

    def run() -> None:
        barrier.wait()
        results.append(_localise(items, _geobox(), tmp_path)[1])

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # all 3 copies share hrefs but are distinct items: 3 x 7 entries, each written once
    assert sum(r.misses for r in results) == 3 * len(BANDS)
    assert sum(r.hits for r in results) == 3 * len(BANDS)
    assert not list(tmp_path.rglob("*.lock")) and not list(tmp_path.rglob("*.tmp"))
    for entry in (tmp_path / "windows").rglob("*.tif"):
        with rasterio.open(entry) as ds:
            ds.read(1)


def test_a_crash_mid_write_leaves_no_entry(rkh: tuple[dict[str, Any], RangeFileServer], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    item, _ = rkh
    items = _items(item)
    real_replace = os.replace

    def crash(src: Any, dst: Any) -> None:
        raise KeyboardInterrupt("killed between write and rename")

    monkeypatch.setattr(cache.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        _localise(items, _geobox(), tmp_path, max_workers=1)
    monkeypatch.setattr(cache.os, "replace", real_replace)
    assert not list(tmp_path.rglob("*.tif"))  # no entry, complete or not
    # A killed run can also leave a lock and a temporary: the next run breaks the stale lock.
    entry = cache.WindowCache(tmp_path).entry(items[0].id, "red", grid_key(_geobox()))
    entry.parent.mkdir(parents=True, exist_ok=True)
    lock = entry.with_name(entry.name + ".lock")
    lock.write_text("12345 0\n")
    old = time.time() - 3600
    os.utime(lock, (old, old))
    (entry.parent / f".{entry.name}.999.dead.tmp").write_bytes(b"half a tiff")
    assert "leftovers: 2" in sources.cache_info(tmp_path)
    (local, failures), stats = _localise(items, _geobox(), tmp_path)
    assert not failures and stats.misses == len(BANDS) and not lock.exists()
    with rasterio.open(local[0].assets["red"].href) as ds:
        assert ds.read(1).any()


def test_failing_items_are_skipped_and_reported(rkh: tuple[dict[str, Any], RangeFileServer], tmp_path: Path) -> None:
    item, files = rkh
    good, bad = _items(item, 2)
    bad.assets["red"].href = files.url_for("missing/B04.tif") + "?sig=SECRET"
    (local, failures), stats = _localise([good, bad], _geobox(), tmp_path)
    assert [i.id for i in local] == [good.id]
    assert len(failures) == 1 and failures[0].item_id == bad.id and failures[0].band == "red"
    assert "SECRET" not in str(failures[0]) and failures[0].href.endswith("/missing/B04.tif")
    assert stats.failures == failures
    with pytest.raises(DownloadError, match=f"none of the 1 item.*{bad.id}"):
        _localise([bad], _geobox(), tmp_path / "other")


def test_local_files_pass_through(rkh: tuple[dict[str, Any], RangeFileServer], tmp_path: Path,
                                  external: Path) -> None:
    item, _ = rkh
    [it] = _items(item)
    for band in BANDS:
        it.assets[band].href = str(external / S2_29RKH_DIR / S2_29RKH_ASSETS[band])
    root = tmp_path / "cache"
    (local, failures), stats = _localise([it], _geobox(), root)
    assert not failures and stats.passthrough == len(BANDS)
    # nothing copied: the cache holds only the record of the files checked
    assert sorted(p.name for p in root.iterdir()) == ["CACHEDIR.TAG", "checked-local-files.json"]
    assert local[0].assets["red"].href == str(external / S2_29RKH_DIR / "B04.tif")


def _archived_item(item: dict[str, Any], archive: Path, external: Path) -> pystac.Item:
    """The item with its bands on copies of the real fixture files in ``archive`` (local files
    a test may cut short)."""
    import shutil

    [it] = _items(item)
    archive.mkdir(exist_ok=True)
    for band in BANDS:
        copy = archive / S2_29RKH_ASSETS[band]
        shutil.copy(external / S2_29RKH_DIR / S2_29RKH_ASSETS[band], copy)
        it.assets[band].href = str(copy)
    return it


def test_local_files_that_passed_unchanged_are_not_checked_again(
        rkh: tuple[dict[str, Any], RangeFileServer], tmp_path: Path, external: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks of local files are remembered in the cache by path, size and modification
    time: a re-run opens none of them; a file cut short since is checked again, and fails."""
    from pipeline import asset_checks

    it = _archived_item(rkh[0], tmp_path / "archive", external)
    root = tmp_path / "cache"
    root.mkdir()
    opened: list[str] = []
    real = asset_checks.check_local_asset
    monkeypatch.setattr(asset_checks, "check_local_asset", lambda href, *a: opened.append(href) or real(href, *a))
    for _ in range(2):
        (_, failures), stats = _localise([it.clone()], _geobox(), root)
        assert not failures and stats.passthrough == len(BANDS)
    assert len(opened) == len(BANDS)  # the second run opened none
    red = Path(it.assets["red"].href)
    red.write_bytes(red.read_bytes()[: red.stat().st_size // 2])
    with pytest.raises(DownloadError, match="band red .*truncated file"):
        _localise([it.clone()], _geobox(), root)
    assert opened[len(BANDS):] == [str(red)]


def test_aois_fetched_at_once_check_each_local_file_once(
        rkh: tuple[dict[str, Any], RangeFileServer], tmp_path: Path, external: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """AOIs over the same tiles fetched in parallel (``dask.aois_in_flight``) share the record
    of checked files: each file is opened once, not once per AOI (8 AOIs of one scene checked
    every file 8 times), and a file that fails, fails for every AOI."""
    import threading
    import time

    from pipeline import asset_checks

    it = _archived_item(rkh[0], tmp_path / "archive", external)
    root = tmp_path / "cache"
    opened: list[str] = []
    real = asset_checks.check_local_asset

    def slow_check(href: str, *a: Any) -> str | None:
        opened.append(href)
        time.sleep(0.2)  # every AOI reaches the file while its first check still runs
        return real(href, *a)

    monkeypatch.setattr(asset_checks, "check_local_asset", slow_check)

    def fetch_all(n: int) -> list[Any]:
        outcomes: list[Any] = [None] * n

        def one(i: int) -> None:
            try:
                outcomes[i] = _localise([it.clone()], _geobox(), root)
            except DownloadError as exc:
                outcomes[i] = exc

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return outcomes

    for (_, failures), stats in fetch_all(4):
        assert not failures and stats.passthrough == len(BANDS)
    assert sorted(opened) == sorted(it.assets[b].href for b in BANDS)  # each file once
    red = Path(it.assets["red"].href)
    red.write_bytes(red.read_bytes()[: red.stat().st_size // 2])
    opened.clear()
    outcomes = fetch_all(3)
    assert all(isinstance(o, DownloadError) and "truncated file" in str(o) for o in outcomes), outcomes
    assert set(opened) == {str(red)}  # the other files passed before and are not opened again


def test_coarse_grids_read_overviews(rkh: tuple[dict[str, Any], RangeFileServer], tmp_path: Path) -> None:
    item, files = rkh
    files.reset_stats()
    (local, _), _ = _localise(_items(item), _geobox(res=400), tmp_path)
    with rasterio.open(local[0].assets["red"].href) as ds:
        assert ds.res == (400.0, 400.0)  # the x4 overview of the 100 m band
    assert local[0].assets["red"].extra_fields["proj:transform"][0] == 400.0


def test_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(cache.ENV_CACHE_DIR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.default_cache_dir() == tmp_path / "xdg" / "kp-monitor"
    monkeypatch.setenv(cache.ENV_CACHE_DIR, str(tmp_path / "env"))
    assert cache.resolve_cache_dir(None) == tmp_path / "env"
    assert cache.resolve_cache_dir(tmp_path / "cfg") == tmp_path / "cfg"


def test_cache_info_and_clear(rkh: tuple[dict[str, Any], RangeFileServer], tmp_path: Path) -> None:
    item, _ = rkh
    root = tmp_path / "c"
    assert "empty" in sources.cache_info(root)
    _localise(_items(item, 2), _geobox(), root)
    info = sources.cache_info(root)
    assert f"{2 * len(BANDS)} file(s) for 2 item(s)" in info and str(root) in info
    busy = next((root / "windows").iterdir())
    (busy / "red-x.tif.lock").write_text("1 1\n")  # a run in progress holds it
    line = sources.cache_clear(root)
    assert "freed" in line and "kept 1 item" in line
    assert sorted(p.name for p in (root / "windows").iterdir()) == [busy.name]
    assert (root / cache.CACHEDIR_TAG).exists()
    home = tmp_path / "home"
    (home / "precious").mkdir(parents=True)
    with pytest.raises(ConfigError, match="not a kp-monitor cache"):
        sources.cache_clear(home)
    assert (home / "precious").exists()

    # a command using the cache holds it shared: clear refuses meanwhile (it deleted a running
    # monitor's state, which then failed), and succeeds once the command has finished
    from pipeline.cache_use import cache_in_use

    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert "in use" not in sources.cache_info(root)
    with cache_in_use(root), cache_in_use(root):  # two runs at once share it
        with pytest.raises(ConfigError, match=f"cache {root} is in use by a running command"):
            sources.cache_clear(root)
        # info says so too, and does not call the in-use lock a leftover of an interrupted run (an
        # outside tester: it promised that clear would remove it, and clear refused)
        info = sources.cache_info(root)
        assert "in use:    by a running command" in info and "file(s) of interrupted runs" not in info
        assert "of the running command or of interrupted runs" in info  # busy's lock is still there
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # the last holder removed the lock file
    (busy / "red-x.tif.lock").unlink()
    assert "freed" in sources.cache_clear(root)


def test_items_without_the_window_fail_cleanly(rkh: tuple[dict[str, Any], RangeFileServer], tmp_path: Path) -> None:
    item, _ = rkh
    far = shapely.geometry.box(-3.0, 10.0, -2.95, 10.05)  # another continent corner of zone 30
    utm = gpd.GeoSeries([far], crs=4326).to_crs(32630).iloc[0]
    geobox = acquire.aoi_geobox(utm.bounds, epsg=32630, resolution_m=100)
    with pytest.raises(DownloadError, match="does not overlap"):
        _localise(_items(item), geobox, tmp_path)


def test_dates_are_kept(rkh: tuple[dict[str, Any], RangeFileServer], tmp_path: Path) -> None:
    item, _ = rkh
    items = _items(item, 3)
    (local, _), _ = _localise(items, _geobox(), tmp_path)
    assert [i.datetime for i in local] == [i.datetime for i in items]
    assert all(isinstance(i.datetime, dt.datetime) for i in local)


def test_a_blank_cache_variable_is_refused_not_the_current_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.cache import ENV_CACHE_DIR, default_cache_dir
    from pipeline.errors import ConfigError

    monkeypatch.setenv(ENV_CACHE_DIR, " ")
    with pytest.raises(ConfigError, match=r"KP_MONITOR_CACHE_DIR=' ' is an empty path; unset it or name a folder"):
        default_cache_dir()
    monkeypatch.setenv(ENV_CACHE_DIR, "")  # empty: as if unset
    assert str(default_cache_dir()) != "."


def test_a_run_waits_for_a_clear_and_leaves_no_folder_it_did_not_fill(tmp_path: Path) -> None:
    """A run starting during ``cache clear`` waits (and says so); a cache folder the run created
    and left empty is removed again (a run that only passes local files through leaves none)."""
    import logging
    import threading

    from pipeline.cache_use import cache_in_use, cache_unused

    root = tmp_path / "c"
    with cache_in_use(root):
        assert (root / cache.CACHEDIR_TAG).exists()
    assert not root.exists()

    root.mkdir()
    (root / cache.CACHEDIR_TAG).write_text("tag")
    entered = threading.Event()

    def run() -> None:
        with cache_in_use(root):
            entered.set()

    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("pipeline")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with cache_unused(root) as unused:
            assert unused
            thread = threading.Thread(target=run)
            thread.start()
            assert not entered.wait(0.5)  # held back while the clear holds the cache
        thread.join(10)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert entered.is_set()
    assert f"cache {root}: waiting for `cache clear` (or `cache info`'s check) to finish" in messages
    assert root.exists()  # not created by the run: kept
