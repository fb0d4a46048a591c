"""Each provider's real client code against loopback fakes: STAC APIs with paging and faults
(Earth Search, Digital Earth Africa, Copernicus STAC), Copernicus token + OData + download,
the Planetary Computer SAS endpoint, a DHuS hub driven by sentinelsat; SAFE archives unpacked
safely; ``sources check``; and no credential in any message or log."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import logging
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio
import shapely.geometry

from pipeline import acquire, cache, search, sources
from pipeline.config import MonitorConfig, SearchParams, SourceParams
from pipeline.errors import ChecksumError, ConfigError, DownloadError, SearchError, UnsafeArchiveError
from pipeline.http import RetryPolicy
from pipeline.providers import get_provider, provider_kind
from pipeline.providers.cdse import CdseProvider
from pipeline.providers.dhus import DhusProvider
from pipeline.providers.planetary_computer import PlanetaryComputerProvider
from pipeline.providers.safe import item_from_safe, safe_extract
from tests.fakes import FakeCdse, FakeDhus, FakeSas, Product, ScriptedFaults, make_safe_zip
from tests.servers import Fault, FaultPlan, RangeFileServer, StacApiServer

AOI = shapely.geometry.box(-11.55, 24.55, -11.50, 24.60)  # inside tile 29RKH
START, END = dt.date(2020, 1, 1), dt.date(2020, 12, 31)
BANDS = ["blue", "green", "red", "nir", "swir16", "swir22", "scl"]
FAST = RetryPolicy(max_retries=4, backoff_s=0.01, timeout_s=10)
MTD_0509 = ("stactools-s2-l2a-metadata/S2A_MSIL2A_20230821T221941_N0509_R029_T01KAB_20230822T021825.SAFE"
            "/MTD_MSIL2A.xml")
USER, CANARY = "analyst@example.org", "CANARY-s3cr3t-9f27"
ES_TO_ESA = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08", "nir08": "B8A",
             "swir16": "B11", "swir22": "B12", "scl": "SCL"}


def _geobox() -> Any:
    utm = gpd.GeoSeries([AOI], crs=4326).to_crs(32629).iloc[0]
    return acquire.aoi_geobox(utm.bounds, epsg=32629, resolution_m=100)


def _reshape(item: dict[str, Any], *, collection: str, keys: dict[str, str], drop_raster: bool = False,
             n: int = 1) -> list[dict[str, Any]]:
    """The real 29RKH item in another provider's shape: asset keys, collection, raster:bands."""
    out = []
    for i in range(n):
        it = copy.deepcopy(item)
        it["collection"] = collection
        it["id"] = f"{item['id']}-{collection}-{i}"
        when = dt.datetime(2020, 2, 19, 11, 34, tzinfo=dt.UTC) + dt.timedelta(days=10 * i)
        it["properties"]["datetime"] = when.isoformat().replace("+00:00", "Z")
        assets = {}
        for key, asset in it["assets"].items():
            a = dict(asset)
            if drop_raster:
                a.pop("raster:bands", None)
            assets[keys.get(key, key)] = a
        it["assets"] = assets
        out.append(it)
    return out


@pytest.fixture
def rkh(earth_search_item_29rkh: tuple[dict[str, Any], RangeFileServer]) -> tuple[dict[str, Any], RangeFileServer]:
    return earth_search_item_29rkh


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "kind"), [
    ("https://earth-search.aws.element84.com/v1", "earth-search"),
    ("https://explorer.digitalearth.africa/stac", "deafrica"),
    ("https://stac.dataspace.copernicus.eu/v1", "cdse"),
    ("https://planetarycomputer.microsoft.com/api/stac/v1", "planetary-computer"),
    ("https://colhub.met.no/dhus", "dhus"),
    ("/data/catalog.json", "static"),
    ("file:///data/catalog.json", "static"),
    ("http://127.0.0.1:8000/stac", "stac"),
])
def test_provider_is_picked_from_the_url(url: str, kind: str) -> None:
    assert provider_kind(SourceParams(url=url)) == kind
    assert get_provider(SourceParams(url=url)).name == kind


def test_provider_default_collections() -> None:
    assert get_provider(SourceParams(url="https://explorer.digitalearth.africa/stac")).collection == "s2_l2a"
    assert get_provider(SourceParams(url="https://explorer.digitalearth.africa/stac",
                                     collection="s1_rtc")).collection == "s1_rtc"
    assert get_provider(SourceParams(provider="cdse")).collection == "sentinel-2-l2a"


def test_config_holds_env_names_not_values() -> None:
    with pytest.raises(ValueError):
        SourceParams(password_env="hunter2 is my password")
    assert SourceParams(password_env="CDSE_PASSWORD").password_env == "CDSE_PASSWORD"


# --------------------------------------------------------------------------------------------
# STAC providers: Earth Search, Digital Earth Africa, Copernicus STAC
# --------------------------------------------------------------------------------------------


def test_earth_search_pages_through_faults(rkh: tuple[dict[str, Any], RangeFileServer]) -> None:
    item, _ = rkh
    items = _reshape(item, collection="sentinel-2-c1-l2a", keys={}, n=5)
    faults = FaultPlan(fraction=0.4, seed=2, fail_first=2,
                       kinds=(Fault.HTTP_500, Fault.RESET, Fault.TRUNCATE, Fault.HTTP_503),
                       retry_after_s=0)
    with StacApiServer(items, page_size=2, faults=faults) as api:
        found = search.search_items(AOI, START, END, source=SourceParams(url=api.url, provider="earth-search"),
                                    params=SearchParams(), bands=BANDS, policy=FAST)
        injected = [r for r in api.requests if r.fault is not Fault.NONE]
    assert [i.id for i in found] == [i["id"] for i in items]
    assert injected, "the fault plan injected nothing; the test proves nothing"
    assert all(i.assets["red"].extra_fields["raster:bands"][0]["offset"] == 0.0 for i in found)


def test_deafrica_s2_and_s1(rkh: tuple[dict[str, Any], RangeFileServer], tmp_path: Path) -> None:
    item, files = rkh
    s2 = _reshape(item, collection="s2_l2a", keys=ES_TO_ESA, drop_raster=True, n=2)
    s1 = copy.deepcopy(s2[0])
    s1.update(id="S1A_RTC_29RKH", collection="s1_rtc")
    s1["properties"] = {"datetime": s1["properties"]["datetime"], "sar:polarizations": ["VV", "VH"]}
    s1["assets"] = {"vv": {"href": files.url_for("B04.tif"), "type": "image/tiff"}}
    with StacApiServer([*s2, s1], page_size=1) as api:
        source = SourceParams(url=api.url, provider="deafrica")
        provider = get_provider(source, policy=FAST)
        found = provider.search(AOI, START, END, params=SearchParams(max_cloud_frac=0.5), bands=BANDS)
        radar = search.search_items(AOI, START, END, source=source, params=SearchParams(max_cloud_frac=0.5),
                                    collection="s1_rtc", bands=["vv"], policy=FAST)
    assert [i.id for i in found] == [s["id"] for s in s2] and {"red", "scl"} <= set(found[0].assets)
    assert found[0].assets["red"].extra_fields["raster:bands"][0]["kp:scaling_source"] == "baseline"
    assert [i.id for i in radar] == ["S1A_RTC_29RKH"]  # no eo:cloud_cover filter on radar
    opts = provider.gdal_options()
    assert opts["AWS_NO_SIGN_REQUEST"] == "YES" and opts["AWS_REGION"] == "af-south-1"
    assert opts["AWS_S3_ENDPOINT"] == "s3.af-south-1.amazonaws.com"
    local, failures = cache.localise_items(found[:1], geobox=_geobox(), bands=["red"], cache_dir=tmp_path,
                                           provider=provider)
    assert not failures and local[0].assets["red"].href.startswith("file://")


def test_cdse_stac_names_are_mapped(rkh: tuple[dict[str, Any], RangeFileServer]) -> None:
    item, _ = rkh
    keys = {k: f"{v}_{'10m' if k in ('blue', 'green', 'red', 'nir') else '20m'}" for k, v in ES_TO_ESA.items()}
    with StacApiServer(_reshape(item, collection="sentinel-2-l2a", keys=keys)) as api:
        found = search.search_items(AOI, START, END, source=SourceParams(url=api.url, provider="cdse"),
                                    params=SearchParams(), bands=BANDS, policy=FAST)
    assert set(BANDS) <= set(found[0].assets) and "B04_10m" not in found[0].assets


# --------------------------------------------------------------------------------------------
# Copernicus Data Space: token, OData search, download (resume, checksum, 401, redirects)
# --------------------------------------------------------------------------------------------


@pytest.fixture
def safe_product(external: Path) -> Product:
    rng = np.random.default_rng(0)
    name, data = make_safe_zip(external / MTD_0509, bands={
        "B04_10m": rng.integers(1001, 4000, (20, 24), dtype="uint16"),
        "SCL_20m": np.full((10, 12), 4, "uint8"),
    })
    return Product(id="5f3c1a2e-0000-4000-8000-000000000001", name=f"{name}.SAFE", data=data)


def _cdse(fake: FakeCdse, **kwargs: Any) -> CdseProvider:
    env = {"CDSE_USERNAME": USER, "CDSE_PASSWORD": CANARY}
    source = SourceParams(provider="cdse", token_url=fake.token_url, odata_url=fake.odata_url)
    return CdseProvider(source, env=env, policy=FAST, **kwargs)


def test_cdse_odata_search_pages(safe_product: Product) -> None:
    other = Product(id="5f3c1a2e-0000-4000-8000-000000000002", name="S2B_MSIL2A_X_N0510_R001_T30NTP_Y.SAFE",
                    data=b"x" * 10, baseline="05.10", cloud_cover=3.0)
    with FakeCdse([safe_product, other], username=USER, password=CANARY, page_size=1) as fake:
        provider = _cdse(fake)
        products = provider.search_products(shapely.geometry.box(-6.6, 8.1, -6.5, 8.2), dt.date(2023, 8, 1),
                                            dt.date(2023, 8, 31), params=SearchParams())
        assert [p["Id"] for p in products] == [safe_product.id, other.id]
        assert len(fake.requests_to("/odata/v1/Products")) == 2  # followed @odata.nextLink
        item = provider.product_item(products[1])
    assert item.properties["eo:cloud_cover"] == 3.0 and item.properties["s2:processing_baseline"] == "05.10"
    assert item.assets["product"].href.endswith(f"/Products({other.id})/$value")
    assert shapely.geometry.shape(item.geometry).intersects(shapely.geometry.Point(-6.55, 8.15))


def test_cdse_download_resumes_verifies_and_renames(safe_product: Product, tmp_path: Path) -> None:
    faults = ScriptedFaults({r"/\$value$": [Fault.TRUNCATE, Fault.RESET]})
    with FakeCdse([safe_product], username=USER, password=CANARY, faults=faults) as fake:
        provider = _cdse(fake)
        product = fake.product_json(safe_product)
        path = provider.download_product(product, tmp_path)
        value_requests = [r for r in fake.requests if r.path.endswith("$value")]
    assert path.read_bytes() == safe_product.data
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no .part left
    half = len(safe_product.data) // 2
    assert [r.fault for r in value_requests] == [Fault.TRUNCATE, Fault.RESET, Fault.NONE]
    assert value_requests[0].range is None
    assert [r.range for r in value_requests[1:]] == [f"bytes={half}-"] * 2  # resumed, not restarted
    assert fake.grants == ["password"]  # one token for all three attempts


def test_cdse_expired_token_is_refreshed(safe_product: Product, tmp_path: Path) -> None:
    with FakeCdse([safe_product], username=USER, password=CANARY) as fake:
        provider = _cdse(fake)
        provider.tokens().access_token()
        fake.expire_tokens()  # server-side expiry: our cached token is now refused
        path = provider.download_product(fake.product_json(safe_product), tmp_path)
        assert fake.refused == 1 and fake.grants == ["password", "refresh_token"]
    assert path.read_bytes() == safe_product.data


def test_cdse_token_is_sent_only_to_trusted_hosts(safe_product: Product, tmp_path: Path) -> None:
    with FakeCdse([safe_product], username=USER, password=CANARY, redirect_host="localhost") as fake:
        product = fake.product_json(safe_product)
        with pytest.raises(DownloadError, match="refused the download"):
            _cdse(fake).download_product(product, tmp_path / "untrusted")
        assert fake.download_auth and all(a is None for a in fake.download_auth)  # never leaked
        path = _cdse(fake, trusted_hosts=["localhost"]).download_product(product, tmp_path / "trusted")
        assert path.read_bytes() == safe_product.data


def test_cdse_checksum_mismatch_is_refused(safe_product: Product, tmp_path: Path) -> None:
    with FakeCdse([safe_product], username=USER, password=CANARY, publish=("MD5",)) as fake:
        product = fake.product_json(safe_product)
        product["Checksum"][0]["Value"] = "0" * 32
        with pytest.raises(ChecksumError, match="MD5 checksum mismatch"):
            _cdse(fake).download_product(product, tmp_path)
        assert len([r for r in fake.requests if r.path.endswith("$value")]) == 2  # one fresh retry
        with pytest.raises(DownloadError, match="no usable checksum"):
            _cdse(fake).download_product({**product, "Checksum": []}, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cdse_materialise_uses_the_product_metadata(safe_product: Product, tmp_path: Path) -> None:
    with FakeCdse([safe_product], username=USER, password=CANARY) as fake:
        provider = _cdse(fake)
        item = provider.product_item(fake.product_json(safe_product))
        local = provider.materialise(item, workdir=tmp_path, bands=["red", "scl"])
    rb = local.assets["red"].extra_fields["raster:bands"][0]
    assert (rb["scale"], rb["offset"], rb["kp:scaling_source"]) == (1e-4, -0.1, "product-metadata")
    assert local.properties["s2:processing_baseline"] == "05.09"
    with rasterio.open(local.assets["red"].href) as ds:
        assert ds.driver == "JP2OpenJPEG" and ds.read(1).min() > 1000
    assert Path(local.assets["red"].href).is_relative_to(tmp_path / "products")


def test_cdse_missing_credentials_name_the_variables(tmp_path: Path) -> None:
    provider = CdseProvider(SourceParams(provider="cdse"), env={}, policy=FAST)
    with pytest.raises(ConfigError, match="CDSE_USERNAME and CDSE_PASSWORD"):
        provider.tokens()


# --------------------------------------------------------------------------------------------
# Planetary Computer: SAS signing
# --------------------------------------------------------------------------------------------


def test_planetary_computer_signs_reads_and_forgets(rkh: tuple[dict[str, Any], RangeFileServer],
                                                    tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    item, files = rkh
    pc = _reshape(item, collection="sentinel-2-l2a", keys=ES_TO_ESA, drop_raster=True)
    with StacApiServer(pc) as api, FakeSas(require_key=CANARY) as sas:
        source = SourceParams(url=api.url, provider="planetary-computer", token_url=sas.token_url)
        provider = PlanetaryComputerProvider(source, env={"PC_SDK_SUBSCRIPTION_KEY": CANARY}, policy=FAST,
                                             sign_host=lambda host: host == "127.0.0.1")
        found = provider.search(AOI, START, END, params=SearchParams(), bands=BANDS)
        assert found[0].assets["red"].extra_fields["raster:bands"][0]["offset"] == 0.0  # 02.14
        files.reset_stats()
        with caplog.at_level(logging.DEBUG):
            local, failures = cache.localise_items(found, geobox=_geobox(), bands=BANDS, cache_dir=tmp_path,
                                                   provider=provider)
        assert not failures
        assert len(sas.issued) == 1  # one token per container, cached for every band
        assert sas.keys_seen == [CANARY]
        targets = [r.target for r in files.requests]
        assert targets and all(sas.signature in t for t in targets)  # every read was signed
    # Nothing stored, nothing logged at any level (GDAL's own messages carry URLs: the
    # loggers rasterio forwards them to strip query strings).
    text = json.dumps([it.to_dict() for it in local]) + caplog.text
    assert sas.signature not in text and CANARY not in text
    for p in tmp_path.rglob("*"):
        if p.is_file():
            assert sas.signature.encode() not in p.read_bytes() and CANARY.encode() not in p.read_bytes()
    assert provider.sign("https://example.org/x.tif") == "https://example.org/x.tif"


def test_planetary_computer_refused_key_is_reported_without_the_key() -> None:
    with FakeSas(require_key="another-key") as sas:
        source = SourceParams(provider="planetary-computer", token_url=sas.token_url)
        provider = PlanetaryComputerProvider(source, env={"PC_SDK_SUBSCRIPTION_KEY": CANARY}, policy=FAST)
        with pytest.raises(DownloadError, match="HTTP 401") as err:
            provider.sign("https://acct.blob.core.windows.net/cont/x.tif")
    assert CANARY not in str(err.value)


# --------------------------------------------------------------------------------------------
# DHuS hub through sentinelsat
# --------------------------------------------------------------------------------------------


def test_dhus_query_download_unpack_and_read(safe_product: Product, tmp_path: Path) -> None:
    with FakeDhus([safe_product], username=USER, password=CANARY) as hub:
        source = SourceParams(url=hub.api_url, provider="dhus")
        provider = DhusProvider(source, env={"DHUS_USERNAME": USER, "DHUS_PASSWORD": CANARY}, policy=FAST)
        items = provider.search(shapely.geometry.box(-6.6, 8.1, -6.5, 8.2), dt.date(2023, 8, 1),
                                dt.date(2023, 8, 31), params=SearchParams())
        assert [i.id for i in items] == [safe_product.name.removesuffix(".SAFE")]
        assert 'platformname:"Sentinel-2"' in hub.queries[0] and "Intersects" in hub.queries[0]
        local = provider.materialise(items[0], workdir=tmp_path, bands=["red", "scl"])
    assert items[0].properties["eo:cloud_cover"] == 12.5
    rb = local.assets["red"].extra_fields["raster:bands"][0]
    assert (rb["offset"], rb["kp:scaling_source"]) == (-0.1, "product-metadata")
    with rasterio.open(local.assets["red"].href) as ds:
        red = ds.read(1)
    assert red.shape == (20, 24) and red.min() > 1000
    zips = list((tmp_path / "downloads").glob("*.zip"))
    assert len(zips) == 1 and zips[0].read_bytes() == safe_product.data  # MD5-checked by sentinelsat


def test_dhus_wrong_password_is_one_line_without_secrets() -> None:
    with FakeDhus([], username=USER, password="the-real-one") as hub:
        provider = DhusProvider(SourceParams(url=hub.api_url, provider="dhus"),
                                env={"DHUS_USERNAME": USER, "DHUS_PASSWORD": CANARY}, policy=FAST)
        with pytest.raises(SearchError) as err:
            provider.search(AOI, START, END, params=SearchParams())
        check = provider.check()
    assert CANARY not in str(err.value) and "\n" not in str(err.value)
    assert check[0].reachable and check[0].authorised is False


# --------------------------------------------------------------------------------------------
# SAFE archives: zip-slip refused, nothing written outside (or inside) the target
# --------------------------------------------------------------------------------------------


def _zip(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize(("members", "symlink", "why"), [
    ({"P.SAFE/MTD_MSIL2A.xml": b"x", "P.SAFE/../../evil.txt": b"pwned"}, None, r"'\.\.'"),
    ({"P.SAFE/MTD_MSIL2A.xml": b"x", "../evil.txt": b"pwned"}, None, r"'\.\.'"),
    ({"P.SAFE/MTD_MSIL2A.xml": b"x", "/tmp/evil.txt": b"pwned"}, None, "absolute path"),
    ({"P.SAFE/MTD_MSIL2A.xml": b"x", "C:/evil.txt": b"pwned"}, None, "absolute path"),
    ({"P.SAFE/MTD_MSIL2A.xml": b"x", "P.SAFE\\..\\..\\evil.txt": b"pwned"}, None, "backslash"),
    ({"P.SAFE/MTD_MSIL2A.xml": b"x"}, "P.SAFE/GRANULE/link", "symbolic link"),
])
def test_zip_slip_is_refused_and_nothing_is_written(tmp_path: Path, members: dict[str, bytes],
                                                    symlink: str | None, why: str) -> None:
    archive = tmp_path / "evil.zip"
    archive.write_bytes(_zip(members, symlink=symlink))
    target = tmp_path / "cache" / "products"
    before = _tree(tmp_path)
    with pytest.raises(UnsafeArchiveError, match=why):
        safe_extract(archive, target)
    after = _tree(tmp_path)
    assert after - before <= {"cache", "cache/products"}  # the (empty) target folder at most
    assert not any(target.iterdir())
    assert not Path("/tmp/evil.txt").exists()


def test_zip_bomb_and_two_products_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "big.zip"
    archive.write_bytes(_zip({"P.SAFE/a.bin": b"0" * 5000}))
    with pytest.raises(UnsafeArchiveError, match="zip bomb"):
        safe_extract(archive, tmp_path / "t", max_bytes=1000)
    archive.write_bytes(_zip({"P.SAFE/a": b"1", "Q.SAFE/b": b"2"}))
    with pytest.raises(UnsafeArchiveError, match="one product folder"):
        safe_extract(archive, tmp_path / "t")


def test_dhus_zip_slip_product_is_refused_end_to_end(external: Path, tmp_path: Path) -> None:
    name, data = make_safe_zip(external / MTD_0509, bands={"B04_10m": np.full((4, 4), 2000, "uint16")},
                               extra_members={"../../../escaped.txt": b"pwned"})
    bad = Product(id="5f3c1a2e-0000-4000-8000-00000000dead", name=f"{name}.SAFE", data=data)
    work = tmp_path / "cache"
    with FakeDhus([bad], username=USER, password=CANARY) as hub:
        provider = DhusProvider(SourceParams(url=hub.api_url, provider="dhus"),
                                env={"DHUS_USERNAME": USER, "DHUS_PASSWORD": CANARY}, policy=FAST)
        [item] = provider.search(shapely.geometry.box(-6.6, 8.1, -6.5, 8.2), dt.date(2023, 8, 1),
                                 dt.date(2023, 8, 31), params=SearchParams())
        with pytest.raises(UnsafeArchiveError, match="climbs out"):
            provider.materialise(item, workdir=work, bands=["red"])
    assert not list(tmp_path.rglob("escaped.txt")) and not (tmp_path.parent / "escaped.txt").exists()
    assert not (work / "products").exists() or not any((work / "products").iterdir())


def test_item_from_safe_needs_the_band(external: Path, tmp_path: Path) -> None:
    name, data = make_safe_zip(external / MTD_0509, bands={"B04_10m": np.full((4, 4), 2000, "uint16")})
    (tmp_path / "p.zip").write_bytes(data)
    safe = safe_extract(tmp_path / "p.zip", tmp_path / "out")
    assert safe_extract(tmp_path / "p.zip", tmp_path / "out") == safe  # idempotent
    with pytest.raises(Exception, match="no SCL_20m file"):
        item_from_safe(safe, bands=["red", "scl"])


# --------------------------------------------------------------------------------------------
# sources check, and the credential canary across every provider path
# --------------------------------------------------------------------------------------------


def test_sources_check_reports_reachability_and_authorisation(safe_product: Product) -> None:
    with FakeCdse([safe_product], username=USER, password=CANARY) as fake, StacApiServer([]) as api:
        cfg = MonitorConfig(source=SourceParams(url=api.url, provider="cdse", token_url=fake.token_url,
                                                odata_url=fake.odata_url))
        good = sources.check_sources(cfg, env={"CDSE_USERNAME": USER, "CDSE_PASSWORD": CANARY})
        bad = sources.check_sources(cfg, env={"CDSE_USERNAME": USER, "CDSE_PASSWORD": CANARY + "x"})
        none = sources.check_sources(cfg, env={})
    assert [c.ok for c in good] == [True, True, True]
    assert bad[-1].authorised is False and bad[-1].reachable
    assert "CDSE_USERNAME" in none[-1].detail and not none[-1].ok
    table = sources.format_source_checks(good + bad + none)
    assert "all sources OK" not in table and CANARY not in table
    down = sources.check_sources(MonitorConfig(source=SourceParams(url="http://127.0.0.1:9/stac", max_retries=0)))
    assert not down[0].reachable and "unreachable" in down[0].detail


def test_canary_secret_never_appears(safe_product: Product, tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CDSE_PASSWORD", "DHUS_PASSWORD", "PC_SDK_SUBSCRIPTION_KEY", "CDSE_S3_SECRET_KEY"):
        monkeypatch.setenv(var, CANARY)
    monkeypatch.setenv("CDSE_USERNAME", USER)
    monkeypatch.setenv("DHUS_USERNAME", USER)
    messages: list[str] = []
    with caplog.at_level(logging.DEBUG):
        with FakeCdse([safe_product], username=USER, password="other") as fake:
            provider = CdseProvider(SourceParams(url=fake.url, provider="cdse", token_url=fake.token_url,
                                                 odata_url=fake.odata_url), policy=FAST)
            for call in (lambda: provider.download_product(fake.product_json(safe_product), tmp_path),
                         lambda: provider.tokens().access_token()):
                with pytest.raises(DownloadError) as err:
                    call()
                messages.append(str(err.value))
            messages.append(sources.format_source_checks(provider.check()))
        with FakeDhus([safe_product], username=USER, password="other") as hub:
            dhus = DhusProvider(SourceParams(url=hub.api_url, provider="dhus"), policy=FAST)
            with pytest.raises(SearchError) as err2:
                dhus.search(AOI, START, END, params=SearchParams())
            messages.append(str(err2.value))
            messages.append(sources.format_source_checks(dhus.check()))
    blob = "\n".join(messages) + caplog.text + repr(os.environ.get("CDSE_PASSWORD") and "checked")
    assert CANARY not in "\n".join(messages) and CANARY not in caplog.text
    assert "checked" in blob
    for p in tmp_path.rglob("*"):
        if p.is_file():
            assert CANARY.encode() not in p.read_bytes()


def test_a_static_catalog_without_the_radar_collection_says_so(tmp_path: Path) -> None:
    """Sentinel-1 searched in a Sentinel-2-only static catalog: one line naming the missing
    collection (the radar fallback reports it), not "band 'vv' missing"."""
    catalog = pystac.Catalog("c", "Sentinel-2 only")
    item = pystac.Item("s2-1", shapely.geometry.mapping(AOI.buffer(0.01)), list(AOI.buffer(0.01).bounds),
                       dt.datetime(2020, 3, 1, tzinfo=dt.UTC), {"eo:cloud_cover": 1.0}, collection="sentinel-2-c1-l2a")
    item.add_asset("red", pystac.Asset(str(tmp_path / "red.tif")))
    catalog.add_item(item)
    catalog.normalize_and_save(str(tmp_path / "cat"), catalog_type=pystac.CatalogType.SELF_CONTAINED)
    source = SourceParams(url=str(tmp_path / "cat" / "catalog.json"), collection="sentinel-1-rtc")
    expected = r"has no Sentinel-1 collection .sentinel-1-rtc. \(its items are in sentinel-2-c1-l2a\)"
    with pytest.raises(SearchError, match=expected):
        search.search_items(AOI, START, END, source=source, params=SearchParams(), bands=["vv", "vh"])


def _s2_item(tmp_path: Path, item_id: str, *, collection: str | None) -> pystac.Item:
    item = pystac.Item(item_id, shapely.geometry.mapping(AOI.buffer(0.01)), list(AOI.buffer(0.01).bounds),
                       dt.datetime(2020, 3, 1, tzinfo=dt.UTC), {"eo:cloud_cover": 1.0}, collection=collection)
    item.add_asset("red", pystac.Asset(str(tmp_path / f"{item_id}.tif")))
    return item


def _collection(coll_id: str) -> pystac.Collection:
    extent = pystac.Extent(pystac.SpatialExtent([list(AOI.buffer(0.01).bounds)]),
                           pystac.TemporalExtent([[dt.datetime(2020, 1, 1, tzinfo=dt.UTC), None]]))
    return pystac.Collection(coll_id, coll_id, extent)


def test_radar_searched_where_there_is_none_says_so_for_every_catalog_layout(tmp_path: Path) -> None:
    """Items without a collection id, and a Sentinel-2 collection.json as the root: still "no
    Sentinel-1 collection", never "band 'vv' missing"."""
    bare = pystac.Catalog("bare", "items without a collection")
    bare.add_item(_s2_item(tmp_path, "s2-bare", collection=None))
    bare.normalize_and_save(str(tmp_path / "bare"), catalog_type=pystac.CatalogType.SELF_CONTAINED)
    s2 = _collection("sentinel-2-c1-l2a")
    s2.add_item(_s2_item(tmp_path, "s2-coll", collection="sentinel-2-c1-l2a"))
    s2.normalize_and_save(str(tmp_path / "s2"), catalog_type=pystac.CatalogType.SELF_CONTAINED)
    for url in (tmp_path / "bare" / "catalog.json", tmp_path / "s2" / "collection.json"):
        source = SourceParams(url=str(url), collection="sentinel-1-rtc")
        with pytest.raises(SearchError) as err:
            search.search_items(AOI, START, END, source=source, params=SearchParams(), bands=["vv", "vh"])
        assert "has no Sentinel-1 collection 'sentinel-1-rtc'" in str(err.value), str(err.value)
        assert "\n" not in str(err.value)


def test_a_nested_radar_collection_is_found(tmp_path: Path) -> None:
    """A Sentinel-1 collection one level down (catalog -> sub-catalog -> collection) is the one
    searched: its items come back, the Sentinel-2 items beside it do not."""
    root = pystac.Catalog("root", "nested")
    sub = pystac.Catalog("radar", "radar products")
    s1 = _collection("sentinel-1-rtc")
    item = pystac.Item("s1-1", shapely.geometry.mapping(AOI.buffer(0.01)), list(AOI.buffer(0.01).bounds),
                       dt.datetime(2020, 3, 1, tzinfo=dt.UTC), {}, collection="sentinel-1-rtc")
    for band in ("vv", "vh"):
        item.add_asset(band, pystac.Asset(str(tmp_path / f"{band}.tif")))
    s1.add_item(item)
    sub.add_child(s1)
    root.add_child(sub)
    s2 = _collection("sentinel-2-c1-l2a")
    s2.add_item(_s2_item(tmp_path, "s2-1", collection="sentinel-2-c1-l2a"))
    root.add_child(s2)
    root.normalize_and_save(str(tmp_path / "nested"), catalog_type=pystac.CatalogType.SELF_CONTAINED)
    source = SourceParams(url=str(tmp_path / "nested" / "catalog.json"), collection="sentinel-1-rtc")
    items = search.search_items(AOI, START, END, source=source, params=SearchParams(), bands=["vv", "vh"])
    assert [it.id for it in items] == ["s1-1"]
