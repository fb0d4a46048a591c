"""Shared fixtures: paths to the real Sentinel fixtures, Hypothesis profiles, egress guard,
and loopback servers (see ``tests/servers.py``) that let the real clients run offline."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.servers import EgressSink, RangeFileServer, StacApiServer

#: The scenario of the session's demo run (:func:`demo_run`): the demo's generator, dates and
#: configuration (2023-01-01 to 2024-06-30, 2022 as baseline) on a smaller scene with radar.
DEMO_RUN_SPEC_ARGS: dict[str, Any] = {
    "shape_px": (120, 160), "start": datetime(2022, 1, 1).date(), "end": datetime(2024, 6, 30).date(),
    "revisit_days": 10, "monitoring_start": datetime(2023, 1, 1).date(), "n_pits": 4, "n_fields": 1,
    "n_bare_patches": 1, "n_burn_scars": 1, "burn_area_ha": (2.0, 3.0), "field_area_ha": (1.0, 1.5),
    "pit_area_ha": (1.0, 2.5), "n_abandoned": 0, "with_s1": True, "seed": 3,
}

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EXTERNAL = SHARED / "data" / "external"

S2_29RKH_DIR = "rio-tiler-pds-s2-l2a-29RKH"
S2_29RKH_ITEM = "S2A_29RKH_20200219_0_L2A.json"
#: Earth Search v1 asset key -> decimated COG in ``EXTERNAL / S2_29RKH_DIR``
S2_29RKH_ASSETS = {
    "blue": "B02.tif",
    "green": "B03.tif",
    "red": "B04.tif",
    "nir": "B08.tif",
    "nir08": "B8A.tif",
    "swir16": "B11.tif",
    "swir22": "B12.tif",
    "scl": "SCL.tif",
}

# --------------------------------------------------------------------------------------------
# Hypothesis: `default` locally, `ci` (derandomized) when CI is set or HYPOTHESIS_PROFILE=ci.
# No deadlines: two shared cores make timings meaningless.
# --------------------------------------------------------------------------------------------
settings.register_profile("default", max_examples=50, deadline=None)
settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default")
)


# --------------------------------------------------------------------------------------------
# Egress guard for native code. pytest-socket (``--allow-hosts`` in pyproject) only patches
# Python's ``socket``; GDAL's libcurl and subprocesses bypass it. They do honour the proxy
# variables, so every non-loopback HTTP(S) request is sent to a loopback sink that answers 403,
# and a test whose code tried that fails at teardown.
# --------------------------------------------------------------------------------------------
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
_NO_PROXY = "127.0.0.1,localhost,::1"


@pytest.fixture(scope="session", autouse=True)
def egress_sink() -> Iterator[EgressSink]:
    """Session-wide proxy sink; ``egress_sink.requests`` lists escaped requests."""
    with EgressSink() as sink, pytest.MonkeyPatch.context() as mp:
        proxy = f"http://127.0.0.1:{sink.port}"
        for var in _PROXY_VARS:
            mp.setenv(var, proxy)
        mp.setenv("no_proxy", _NO_PROXY)
        mp.setenv("NO_PROXY", _NO_PROXY)
        yield sink


@pytest.fixture(autouse=True)
def _fail_on_egress(egress_sink: EgressSink) -> Iterator[None]:
    egress_sink.reset_stats()
    yield
    escaped = egress_sink.requests
    if escaped:
        targets = sorted({f"{r.method} {r.target}" for r in escaped})
        pytest.fail(f"test tried to reach the internet (caught by EgressSink): {targets}")


# --------------------------------------------------------------------------------------------
# Real fixtures from ../shared
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def external() -> Path:
    if not EXTERNAL.is_dir():
        pytest.skip(
            "../shared/data/external is absent: real Sentinel fixtures are needed for this test "
            "(CI always has them)"
        )
    return EXTERNAL


# --------------------------------------------------------------------------------------------
# Loopback servers
# --------------------------------------------------------------------------------------------


@pytest.fixture
def range_server(tmp_path: Path) -> Iterator[RangeFileServer]:
    """RangeFileServer rooted at ``tmp_path``: write files there, fetch ``url_for(name)``."""
    with RangeFileServer(tmp_path) as srv:
        yield srv


def patched_29rkh_item(folder: Path, base_url: str) -> dict[str, Any]:
    """The real Earth Search v1 item for 29RKH, reduced to the assets whose decimated COG is in
    ``folder``, hrefs at ``base_url/<file>``, and ``proj:shape``/``proj:transform`` (plus
    ``gsd`` and ``raster:bands[].spatial_resolution``) set to the decimated files' real grid:
    the item still describes the 10 m originals (see SOURCE.md)."""
    import rasterio

    item = json.loads((folder / S2_29RKH_ITEM).read_text())
    assets = {}
    for key, name in S2_29RKH_ASSETS.items():
        path = folder / name
        if not path.is_file():
            continue
        asset = copy.deepcopy(item["assets"][key])
        with rasterio.open(path) as ds:
            shape, transform = [ds.height, ds.width], list(ds.transform)[:6]
            res = abs(ds.transform.a)
        asset["href"] = f"{base_url}/{name}"
        asset["proj:shape"] = shape
        asset["proj:transform"] = transform
        if "gsd" in asset:
            asset["gsd"] = res
        for band in asset.get("raster:bands", []):
            if "spatial_resolution" in band:
                band["spatial_resolution"] = res
        assets[key] = asset
    item["assets"] = assets
    return item


@pytest.fixture
def earth_search_item_29rkh(external: Path) -> Iterator[tuple[dict[str, Any], RangeFileServer]]:
    """``(item_dict, server)``: the real 29RKH item with its COG assets served by a
    RangeFileServer rooted at ``EXTERNAL/rio-tiler-pds-s2-l2a-29RKH`` (nothing is copied)."""
    folder = external / S2_29RKH_DIR
    if not (folder / S2_29RKH_ITEM).is_file():
        pytest.skip(f"{folder} is incomplete: {S2_29RKH_ITEM} missing")
    with RangeFileServer(folder) as srv:
        yield patched_29rkh_item(folder, srv.url), srv


def item_copies(
    item: dict[str, Any], n: int = 5, every: timedelta = timedelta(days=16)
) -> list[dict[str, Any]]:
    """``n`` copies of ``item``, ``every`` apart from its datetime, with distinct ids and cloud
    cover (4.05, 24.05, 44.05, ... %). Assets (and their hrefs) are shared."""
    props = item["properties"]
    t0 = datetime.fromisoformat(props["datetime"])
    cc0 = float(props.get("eo:cloud_cover", 0.0))
    out = []
    for i in range(n):
        it = copy.deepcopy(item)
        t = (t0 + i * every).astimezone(UTC)
        it["id"] = f"{item['id']}-d{i}" if i else item["id"]
        if i:  # the first copy keeps the item's own datetime string
            it["properties"]["datetime"] = t.isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            )
        it["properties"]["eo:cloud_cover"] = round((cc0 + 20 * i) % 100, 6)
        out.append(it)
    return out


@pytest.fixture
def stac_api(
    earth_search_item_29rkh: tuple[dict[str, Any], RangeFileServer],
) -> Iterator[StacApiServer]:
    """StacApiServer (page_size=2) over 5 copies of the 29RKH item, 16 days apart from
    2020-02-19, cloud cover 4, 24, 44, 64, 84 %; assets point at the fixture's RangeFileServer."""
    item, _ = earth_search_item_29rkh
    with StacApiServer(item_copies(item), page_size=2) as api:
        yield api


# --------------------------------------------------------------------------------------------
# One demo run for the whole session
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo output folder, run once per session: the scenario (:data:`DEMO_RUN_SPEC_ARGS`) plus
    one ``python -m pipeline monitor`` over it with the demo's configuration (no PDF, only the
    bands detection reads). Tests that check outputs (notebooks, file formats, schemas) share it
    and must not modify it."""
    import subprocess
    import sys

    import yaml

    from pipeline.demo import ScenarioSpec, write_scenario

    root = tmp_path_factory.mktemp("demo-run")
    scenario = write_scenario(root / "scenario", ScenarioSpec(**DEMO_RUN_SPEC_ARGS))
    settings = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text("utf-8"))
    settings["bulletin"]["pdf"] = False
    settings["bulletin"]["languages"] = ["en"]  # the French edition has tests of its own
    settings["acquire"]["bands"] = ["blue", "green", "red", "nir", "swir16", "scl"]
    settings["dask"].update(n_workers=1, threads_per_worker=2)
    config = root / "demo.yaml"
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    res = subprocess.run(
        [sys.executable, "-m", "pipeline", "monitor", "--config", str(config), "--aoi", str(scenario.aoi_path),
         "--source", str(scenario.catalog_path), "--out", str(root), "--cache", str(root / "cache")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return root
