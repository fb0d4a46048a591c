"""Fault injection end to end: the whole ``run_monitor`` on a tiny synthetic scenario served over
loopback HTTP (a STAC API plus a Range file server for its COGs). With about a third of the COG
requests failing (HTTP 500, connection reset, truncated body, slow answer) the run completes and
writes the same data as a clean run; a re-run reads nothing from the network; a credential
canary in the environment, and in the user:password of the source URL, appears in no output
file and no log."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest

from pipeline import acquire, search
from pipeline.cache import CacheStats, localise_items
from pipeline.config import MonitorConfig
from pipeline.demo import ScenarioResult, write_scenario
from pipeline.errors import ConfigError
from pipeline.http import RetryPolicy
from pipeline.run import run_monitor
from tests.scale_fixtures import DATA_FILES, SMALL_SPEC
from tests.servers import Fault, FaultPlan, RangeFileServer, StacApiServer

#: The scale tests' small scene (:data:`tests.scale_fixtures.SMALL_SPEC`) under clear skies until
#: February: the test is about the network, and every date must carry pixels.
SPEC = dataclasses.replace(
    SMALL_SPEC, end=dt.date(2023, 2, 28), cloud_prob_by_month=(0.0,) * 12, scattered_cloud_prob=0.0,
    n_full_cloud_dates=0, n_nodata_stripe_dates=0,
)
FAULTS = (Fault.HTTP_500, Fault.RESET, Fault.TRUNCATE, Fault.SLOW)
CANARY = "CANARY-faults-7d1e"
BANDS = ["blue", "green", "red", "nir", "swir16", "swir22", "scl"]
GDAL_FAST_RETRY = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
                   "GDAL_HTTP_MAX_RETRY": "4", "GDAL_HTTP_RETRY_DELAY": "0.05"}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioResult:
    return write_scenario(tmp_path_factory.mktemp("scenario"), SPEC)


def _served_items(scenario: ScenarioResult, files: RangeFileServer) -> list[dict[str, Any]]:
    """The scenario's items with hrefs on the file server (a remote source, as in production)."""
    root = scenario.catalog_path.parent.parent
    out = []
    for item in pystac.Catalog.from_file(str(scenario.catalog_path)).get_items(recursive=True):
        d = item.to_dict(include_self_link=False, transform_hrefs=False)
        for key, asset in d["assets"].items():
            path = Path(item.assets[key].get_absolute_href() or "")
            asset["href"] = files.url_for(path.relative_to(root))
        d["links"] = []
        out.append(d)
    return out


def _config(scenario: ScenarioResult, api: StacApiServer, out: Path, cache: Path, *,
            url: str | None = None) -> MonitorConfig:
    raw: dict[str, Any] = {
        "source": {"url": url or api.url, "collection": "sentinel-2-c1-l2a", "provider": "cdse",
                   "naming": "earth-search", "max_retries": 8, "timeout_s": 10,
                   "password_env": "CDSE_PASSWORD", "username_env": "CDSE_USERNAME"},
        "aois": [str(scenario.aoi_path)],
        "out_dir": str(out),
        "cache_dir": str(cache),
        "period": {"start": "2022-10-01", "end": "2023-02-28", "period_months": 3},
        "search": {"max_cloud_frac": 1.0},
        "acquire": {"resolution_m": 10, "margin_m": 0, "chunk_px": 64},
        "detect": {"baseline_days": 120},
        "bulletin": {"pdf": False, "demonstration": True},
        "dask": {"n_workers": 1, "threads_per_worker": 1, "memory_limit": "1GiB"},
        "gdal": GDAL_FAST_RETRY,
    }
    return MonitorConfig.model_validate(raw)


def _data(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in DATA_FILES}


def _localise_and_load(items: list[pystac.Item], cache: Path, scenario: ScenarioResult) -> tuple[Any, CacheStats]:
    geobox = acquire.aoi_geobox(scenario.bounds_utm, epsg=scenario.epsg, resolution_m=10)
    stats = CacheStats()
    local, failures = localise_items(items, geobox=geobox, bands=BANDS, cache_dir=cache, stats=stats,
                                     policy=RetryPolicy(max_retries=8, backoff_s=0.02, timeout_s=10),
                                     gdal_options=GDAL_FAST_RETRY)
    assert not failures
    scenes = acquire.open_scenes(local, geobox=geobox, bands=BANDS, chunk_px=64).compute()
    return scenes, stats


def test_faulty_acquisition_reads_the_same_pixels(scenario: ScenarioResult, tmp_path: Path) -> None:
    """Window reads through a third of failing requests give the clean run's arrays, bit for bit."""
    root = scenario.catalog_path.parent.parent

    def served(files: RangeFileServer) -> list[pystac.Item]:
        # every other date keeps the test quick; the slow test below runs them all
        items = [pystac.Item.from_dict(d) for d in _served_items(scenario, files)[::2]]
        return [search.normalise_item(it, bands=BANDS) for it in items]

    # The faulty reads go to a second server: its URLs are new to GDAL's per-process cache,
    # from which a first attempt reads a file this process has read before.
    with RangeFileServer(root) as files:
        clean, _ = _localise_and_load(served(files), tmp_path / "clean", scenario)
    with RangeFileServer(root, faults=FaultPlan(fraction=1 / 3, seed=5, kinds=FAULTS, slow_ms=30)) as files:
        items = served(files)
        faulty, stats = _localise_and_load(items, tmp_path / "faulty", scenario)
        injected = collections.Counter(r.fault.value for r in files.requests if r.fault is not Fault.NONE)
        n_requests = len(files.requests)
        files.reset_stats()
        again, rerun = _localise_and_load(items, tmp_path / "faulty", scenario)
        assert files.requests == [] and rerun.hits == len(items) * len(BANDS)
    for band in BANDS:
        np.testing.assert_array_equal(faulty[band].values, clean[band].values)
        np.testing.assert_array_equal(again[band].values, clean[band].values)
    assert set(injected) == {f.value for f in FAULTS}
    # a third is the plan's rate; seed 5 draws ~25 % over these ~250 requests, arrival order varies
    assert sum(injected.values()) >= 0.2 * n_requests
    print(f"\nfault test (acquisition): {len(items)} items x {len(BANDS)} bands, {n_requests} COG requests, "
          f"injected {dict(injected)}, {stats.retries} whole-window retries on top of GDAL's own")


@pytest.mark.e2e
def test_faulty_run_matches_clean_run(scenario: ScenarioResult, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The run talks to a Copernicus-kind source: its S3 secret and password sit in the environment.
    for var in ("CDSE_PASSWORD", "CDSE_S3_SECRET_KEY", "CDSE_REFRESH_TOKEN"):
        monkeypatch.setenv(var, CANARY)
    monkeypatch.setenv("CDSE_USERNAME", "analyst")
    monkeypatch.setenv("CDSE_S3_ACCESS_KEY", "AKIAFAKE")
    caplog.set_level(logging.INFO)
    root = scenario.catalog_path.parent.parent
    with RangeFileServer(root) as files:
        items = _served_items(scenario, files)
        clean_base = files.url
        with StacApiServer(items, page_size=10) as api:
            # ... and the source URL carries user:password (redacted in every log and file).
            with_credentials = api.url.replace("http://", f"http://analyst:{CANARY}@", 1)
            clean = run_monitor(_config(scenario, api, tmp_path / "clean", tmp_path / "cache-clean",
                                        url=with_credentials))
            clean_requests = len(files.requests)
    # The faulty run reads from a second server, whose URLs are new to GDAL's per-process cache
    # (a first attempt reads a file this process has read before from there), as a new process's.
    with RangeFileServer(root, faults=FaultPlan(fraction=1 / 3, seed=11, kinds=FAULTS, slow_ms=30)) as files:
        faulty_base = files.url
        with StacApiServer(_served_items(scenario, files), page_size=10) as api:
            faulty = run_monitor(_config(scenario, api, tmp_path / "faulty", tmp_path / "cache-faulty"))
            injected = collections.Counter(r.fault.value for r in files.requests if r.fault is not Fault.NONE)
            faulty_requests = len(files.requests)

            files.reset_stats()
            again = run_monitor(_config(scenario, api, tmp_path / "again", tmp_path / "cache-faulty"))
            rerun_requests = len(files.requests)

    assert clean.failures == {} and faulty.failures == {} and again.failures == {}
    assert _data(tmp_path / "faulty") == _data(tmp_path / "clean") == _data(tmp_path / "again")
    sites = json.loads((tmp_path / "clean" / "sites.geojson").read_text())
    assert sites["features"], "the scenario should produce sites, or the comparison proves little"
    manifest = {k: (tmp_path / k / "manifest.json").read_text() for k in ("clean", "faulty")}
    manifest = {k: json.loads(text.replace(clean_base if k == "clean" else faulty_base, "SERVER"))
                for k, text in manifest.items()}
    assert manifest["clean"]["items"] == manifest["faulty"]["items"]  # same items, same files
    search_start = dt.date(2022, 10, 1) - dt.timedelta(days=120)
    expected = {i["id"] for i in items if dt.date.fromisoformat(i["properties"]["datetime"][:10]) >= search_start}
    assert {i["id"] for i in manifest["clean"]["items"]} == expected  # no item skipped
    # About a third of the requests failed or were slow, of every kind:
    assert set(injected) == {f.value for f in FAULTS}
    assert sum(injected.values()) >= 0.2 * faulty_requests
    assert rerun_requests == 0  # the cache answered everything
    print(f"\nfault test: clean run {clean_requests} COG requests; faulty run {faulty_requests} requests, "
          f"injected {dict(injected)}; re-run {rerun_requests} requests")
    # The canary is nowhere: not in any output file, not in the run log, not in captured logs.
    for out in ("clean", "faulty", "again"):
        for path in (tmp_path / out).rglob("*"):
            if path.is_file():
                assert CANARY.encode() not in path.read_bytes(), path
    assert CANARY not in caplog.text
    assert "CDSE_PASSWORD" in (tmp_path / "clean" / "manifest.json").read_text()  # the NAME is fine


def test_a_collection_the_api_lacks_is_refused_before_anything_is_written(scenario: ScenarioResult,
                                                                          tmp_path: Path) -> None:
    """A typo in ``source.collection`` is bad input (exit 2 from the CLI), refused by the
    pre-flight check with the API's collections: not one "no items" failure per AOI."""
    root = scenario.catalog_path.parent.parent
    with RangeFileServer(root) as files, StacApiServer(_served_items(scenario, files), page_size=10) as api:
        cfg = _config(scenario, api, tmp_path / "out", tmp_path / "cache")
        cfg = cfg.model_copy(update={"source": cfg.source.model_copy(update={"collection": "sentinel-2-l2a"})})
        with pytest.raises(ConfigError, match=r"^source\.collection 'sentinel-2-l2a': .* has no such collection "
                                              r"\(it has sentinel-2-c1-l2a\); set source\.collection to one"):
            run_monitor(cfg)
        assert not api.search_requests and not files.requests
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()
