"""search + acquire through the real clients (pystac-client, odc-stac/GDAL) against loopback
servers serving the real Earth Search item and COGs of tile 29RKH."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio
import shapely.geometry
from rasterio.windows import from_bounds

from pipeline import acquire, harmonise, preprocess, search
from pipeline.config import SearchParams, SourceParams
from pipeline.errors import ConfigError, MissingBandError, NoScenesError, SearchError
from pipeline.types import DEFAULT_BANDS
from tests.servers import Fault, FaultPlan, StacApiServer

AOI = shapely.geometry.box(-11.55, 24.55, -11.50, 24.60)  # ~5 km inside the 29RKH tile
BANDS = list(DEFAULT_BANDS)


def _geobox():
    utm = gpd.GeoSeries([AOI], crs=4326).to_crs(32629).iloc[0]
    # 100 m: the fixture COGs are decimated 10x; 200 m would hit the 20 m bands' grid.
    return acquire.aoi_geobox(utm.bounds, epsg=32629, resolution_m=100)


def test_search_api_pages_and_filters_cloud(stac_api) -> None:
    server = stac_api
    items = search.search_items(
        AOI, dt.date(2020, 1, 1), dt.date(2020, 12, 31),
        source=SourceParams(url=server.url, collection="sentinel-2-l2a"),
        params=SearchParams(max_cloud_frac=0.5), bands=BANDS,
    )
    assert [round(i.properties["eo:cloud_cover"]) for i in items] == [4, 24, 44]
    assert len(server.search_requests) >= 2  # paged (page size 2)
    assert all(i.datetime is not None for i in items)
    assert items == sorted(items, key=lambda i: i.datetime)


def test_acquire_reads_only_the_window_and_matches_rasterio(stac_api, earth_search_item_29rkh, external: Path) -> None:
    _, files = earth_search_item_29rkh
    items = search.search_items(
        AOI, dt.date(2020, 2, 1), dt.date(2020, 2, 28),
        source=SourceParams(url=stac_api.url, collection="sentinel-2-l2a"), params=SearchParams(), bands=BANDS,
    )
    assert len(items) == 1
    geobox = _geobox()
    files.reset_stats()
    with acquire.gdal_env({"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MULTIRANGE": "YES",
                           "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif"}):
        scenes = acquire.open_scenes(items, geobox=geobox, bands=BANDS, chunk_px=32)
        assert scenes["red"].chunks is not None  # lazy
        red = scenes["red"].isel(time=0).values
    left, bottom, right, top = geobox.extent.boundingbox
    with rasterio.open(external / "rio-tiler-pds-s2-l2a-29RKH" / "B04.tif") as src:
        expected = src.read(1, window=from_bounds(left, bottom, right, top, src.transform))
    np.testing.assert_array_equal(red, expected)
    total = sum((external / "rio-tiler-pds-s2-l2a-29RKH" / "B04.tif").stat().st_size for _ in [0])
    assert files.bytes_sent < 0.5 * total * 1  # one band read: a fraction of its file
    refl = preprocess.to_reflectance(scenes, bands=["red"])
    assert float(refl["red"].isel(time=0).mean()) == pytest.approx(float(expected.mean()) * 1e-4, rel=1e-5)


def test_static_catalog_path(tmp_path: Path, earth_search_item_29rkh) -> None:
    item_dict, _ = earth_search_item_29rkh
    cat = pystac.Catalog("c", "test")
    col = pystac.Collection("sentinel-2-c1-l2a", "s2", pystac.Extent(
        pystac.SpatialExtent([[-12, 24, -10, 26]]), pystac.TemporalExtent([[None, None]])))
    cat.add_child(col)
    col.add_item(pystac.Item.from_dict(item_dict))
    cat.normalize_hrefs(str(tmp_path / "cat"))
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    for url in (str(tmp_path / "cat" / "catalog.json"), (tmp_path / "cat" / "catalog.json").as_uri()):
        items = search.search_items(AOI, dt.date(2020, 1, 1), dt.date(2020, 12, 31),
                                    source=SourceParams(url=url), params=SearchParams(), bands=BANDS)
        assert [i.id for i in items] == [item_dict["id"]]
    with pytest.raises(NoScenesError, match="2021-01-01"):
        search.search_items(AOI, dt.date(2021, 1, 1), dt.date(2021, 12, 31),
                            source=SourceParams(url=str(tmp_path / "cat" / "catalog.json")),
                            params=SearchParams(), bands=BANDS)



def test_a_static_catalog_is_parsed_once_while_unchanged(tmp_path: Path, earth_search_item_29rkh, monkeypatch) -> None:
    """The pre-flight check and every AOI's search share one parse; editing an item (or adding
    one, which changes its parent's links) is seen by the next search."""
    from pipeline.providers import static

    item_dict, _ = earth_search_item_29rkh
    cat = pystac.Catalog("c", "test")
    cat.add_item(pystac.Item.from_dict(item_dict))
    cat.normalize_and_save(str(tmp_path / "cat"), catalog_type=pystac.CatalogType.SELF_CONTAINED)
    url = str(tmp_path / "cat" / "catalog.json")
    reads: list[str] = []
    real_read = pystac.read_file
    monkeypatch.setattr(static.pystac, "read_file",
                        lambda href, *a, **k: reads.append(href) or real_read(href, *a, **k))
    static._CATALOGS.clear()

    def ids(start: dt.date = dt.date(2020, 1, 1)) -> list[str]:
        found = search.search_items(AOI, start, dt.date(2020, 12, 31), source=SourceParams(url=url),
                                    params=SearchParams(), bands=BANDS)
        return [i.id for i in found]

    first = ids()
    assert first == [item_dict["id"]] and ids() == first and len(reads) == 1
    # the memo hands out copies: a caller changing its item does not change the next search's
    found = search.search_items(AOI, dt.date(2020, 1, 1), dt.date(2020, 12, 31), source=SourceParams(url=url),
                                params=SearchParams(), bands=BANDS)
    found[0].properties["eo:cloud_cover"] = 100.0
    assert ids() == first and len(reads) == 1
    # an item file edited on disk (here: moved out of the period) is read again
    item_path = next((tmp_path / "cat").rglob(f"{item_dict['id']}.json"))
    edited = json.loads(item_path.read_text())
    edited["properties"]["datetime"] = "2019-06-01T00:00:00Z"
    item_path.write_text(json.dumps(edited))
    with pytest.raises(NoScenesError):
        ids()
    assert len(reads) == 2
    assert ids(dt.date(2019, 1, 1)) == first and len(reads) == 2


def test_unreachable_api_names_the_endpoint() -> None:
    url = "http://127.0.0.1:9/v1"  # discard port: nothing listens
    with pytest.raises(SearchError, match=r"127\.0\.0\.1:9/v1"):
        search.search_items(AOI, dt.date(2020, 1, 1), dt.date(2020, 2, 1),
                            source=SourceParams(url=url, max_retries=0, timeout_s=2),
                            params=SearchParams(), bands=BANDS)


def test_planetary_computer_item_is_harmonised_by_baseline(external: Path) -> None:
    raw = json.loads((external / "stac-geoparquet-pc-items" / "sentinel-2-l2a-pc.json").read_text())[0]
    item = search.normalise_item(pystac.Item.from_dict(raw), naming="planetary-computer", bands=BANDS)
    assert set(BANDS) <= set(item.assets)
    scale, offset, nodata = harmonise.band_scaling(item, "red").as_tuple()
    assert (scale, offset, nodata) == (1e-4, -0.1, 0.0)  # baseline 05.10 carries BOA_ADD_OFFSET -1000
    with pytest.raises(MissingBandError, match="band 'blue' missing"):
        search.normalise_item(pystac.Item.from_dict(raw), naming="earth-search", bands=BANDS)


def test_an_aoi_written_lat_lon_is_told_to_swap(stac_api) -> None:
    """[lat, lon] positions put the AOI in another hemisphere; the empty search says why."""
    swapped = shapely.geometry.box(24.55, -11.55, 24.60, -11.50)
    with pytest.raises(NoScenesError, match=r"longitude and latitude swapped.*swap the AOI's coordinates"):
        search.search_items(
            swapped, dt.date(2020, 1, 1), dt.date(2020, 12, 31),
            source=SourceParams(url=stac_api.url, collection="sentinel-2-l2a"), params=SearchParams(), bands=BANDS,
        )


def test_a_collection_the_api_lacks_is_named_with_the_ones_it_has(stac_api) -> None:
    """A typo in ``source.collection`` finds no item; the API's 404 for it turns "no items" into
    the collection's name and the API's own list, both in a search and in the pre-flight check."""
    wrong = SourceParams(url=stac_api.url, collection="sentinel-2-l2a-typo")
    expected = r"source\.collection 'sentinel-2-l2a-typo': .* has no such collection \(it has sentinel-2-l2a\); set "
    with pytest.raises(ConfigError, match=expected):
        search.search_items(AOI, dt.date(2020, 1, 1), dt.date(2020, 12, 31), source=wrong, params=SearchParams(),
                            bands=BANDS)
    with pytest.raises(ConfigError, match=expected.replace("source", "radar")):
        search.check_collection(wrong, key="radar.collection")
    with pytest.raises(ConfigError, match=expected.replace("source", "radar")):  # Sentinel-1's search says so too
        search.search_items(AOI, dt.date(2020, 1, 1), dt.date(2020, 12, 31), source=wrong, params=SearchParams(),
                            bands=BANDS, collection_key="radar.collection")
    search.check_collection(SourceParams(url=stac_api.url, collection="sentinel-2-l2a"))  # it has that one
    asked = [r.path for r in stac_api.requests if "/collections/" in r.path]
    assert asked and all(p.endswith("/collections/sentinel-2-l2a-typo") or p.endswith("/collections/sentinel-2-l2a")
                         for p in asked)


def test_the_collection_check_stays_silent_when_the_api_cannot_say(earth_search_item_29rkh) -> None:
    """Unreachable, or failing once (no retries in the check): the search, which retries,
    reports the source; the check refuses nothing it was not told."""
    check = SourceParams(url="http://127.0.0.1:9/v1", collection="anything", max_retries=0, timeout_s=2)
    search.check_collection(check)  # nothing listens on the discard port
    item, _ = earth_search_item_29rkh
    with StacApiServer([item], faults=FaultPlan(fraction=1.0, kinds=(Fault.HTTP_503,))) as api:
        search.check_collection(SourceParams(url=api.url, collection="sentinel-2-l2a-typo"))
        assert api.requests and all(r.status == 503 for r in api.requests)


def test_the_collection_message_names_the_url_the_provider_searched(stac_api, monkeypatch) -> None:
    """A provider with its own default URL (DE Africa) searches there, not at source.url's
    default (Earth Search): the message names where the answer came from."""
    from pipeline.providers.deafrica import DEAfricaProvider

    monkeypatch.setattr(DEAfricaProvider, "default_url", stac_api.url)
    source = SourceParams(provider="deafrica", collection="s2_l2a_typo")
    with pytest.raises(ConfigError, match=rf"^source\.collection 's2_l2a_typo': {re.escape(stac_api.url)} has no such"):
        search.check_collection(source)


def test_sources_check_reports_a_collection_the_api_lacks(stac_api) -> None:
    """``sources check`` says what ``monitor`` would refuse: the collection row fails, naming
    the API's collections; with a collection the API has, no such row."""
    from pipeline import sources
    from pipeline.config import MonitorConfig

    wrong = sources.check_sources(MonitorConfig(source=SourceParams(url=stac_api.url, collection="s2-typo")))
    assert [c.ok for c in wrong] == [True, False]
    assert wrong[-1].detail == "no such collection (source.collection; it has sentinel-2-l2a)"
    assert "some sources are unreachable" in sources.format_source_checks(wrong)
    right = sources.check_sources(MonitorConfig(source=SourceParams(url=stac_api.url, collection="sentinel-2-l2a")))
    assert [c.ok for c in right] == [True]
