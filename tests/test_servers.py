"""The loopback test infrastructure, proven with the real clients: requests, pystac-client,
GDAL /vsicurl/ through odc-stac, and the egress guards."""

from __future__ import annotations

import http.client
import json
import random
import socket
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from pytest_socket import SocketConnectBlockedError

from tests.servers import (
    FAILURES,
    GDAL_LOOPBACK_OPTIONS,
    EgressSink,
    Fault,
    FaultPlan,
    RangeFileServer,
    StacApiServer,
)

SIZE = 100_000


@pytest.fixture
def blob(range_server: RangeFileServer) -> tuple[bytes, str]:
    data = random.Random(0).randbytes(SIZE)
    (range_server.root / "blob.bin").write_bytes(data)
    return data, range_server.url_for("blob.bin")


def _get(url: str, rng: str | None = None, **kw: Any) -> requests.Response:
    headers = {"Range": rng} if rng else {}
    return requests.get(url, headers=headers, timeout=10, **kw)


# --------------------------------------------------------------------------------------------
# RangeFileServer with requests
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rng", "first", "last"),
    [
        ("bytes=100-199", 100, 199),
        ("bytes=0-0", 0, 0),
        ("bytes=99990-", 99990, SIZE - 1),
        ("bytes=99990-500000", 99990, SIZE - 1),  # last clamped to the size
        ("bytes=-500", SIZE - 500, SIZE - 1),  # suffix
        ("bytes=-500000", 0, SIZE - 1),  # suffix longer than the file
    ],
)
def test_range_returns_exact_bytes(
    blob: tuple[bytes, str], range_server: RangeFileServer, rng: str, first: int, last: int
) -> None:
    data, url = blob
    r = _get(url, rng)
    assert r.status_code == 206
    assert r.content == data[first : last + 1]
    assert r.headers["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
    assert int(r.headers["Content-Length"]) == last - first + 1
    assert r.headers["Accept-Ranges"] == "bytes"
    (rec,) = range_server.requests
    assert (rec.method, rec.path, rec.range, rec.status) == ("GET", "/blob.bin", rng, 206)
    assert rec.bytes_sent == range_server.bytes_sent == last - first + 1


def test_full_get_head_and_stats(blob: tuple[bytes, str], range_server: RangeFileServer) -> None:
    data, url = blob
    r = _get(url)
    assert r.status_code == 200 and r.content == data
    assert r.headers["Accept-Ranges"] == "bytes"
    h = requests.head(url, timeout=10)
    assert h.status_code == 200 and h.content == b""
    assert int(h.headers["Content-Length"]) == SIZE
    assert _get(url, "items=0-5").content == data  # not a bytes range: ignored, 200
    assert [(r.method, r.status, r.bytes_sent) for r in range_server.requests] == [
        ("GET", 200, SIZE),
        ("HEAD", 200, 0),
        ("GET", 200, SIZE),
    ]
    assert range_server.bytes_sent == 2 * SIZE
    range_server.reset_stats()
    assert range_server.requests == [] and range_server.bytes_sent == 0


@pytest.mark.parametrize("rng", [f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 9}", "bytes=-0"])
def test_unsatisfiable_range_is_416(blob: tuple[bytes, str], rng: str) -> None:
    _, url = blob
    r = _get(url, rng)
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{SIZE}"


def test_multi_range_is_multipart(blob: tuple[bytes, str]) -> None:
    data, url = blob
    r = _get(url, "bytes=0-9, 500-599,-20")
    assert r.status_code == 206
    assert r.headers["Content-Type"].startswith("multipart/byteranges; boundary=")
    msg = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + r.headers["Content-Type"].encode() + b"\r\n\r\n" + r.content
    )
    parts = [(p["Content-Range"], p.get_payload(decode=True)) for p in msg.iter_parts()]
    assert parts == [
        (f"bytes 0-9/{SIZE}", data[0:10]),
        (f"bytes 500-599/{SIZE}", data[500:600]),
        (f"bytes {SIZE - 20}-{SIZE - 1}/{SIZE}", data[-20:]),
    ]


def test_missing_and_outside_paths_are_404(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "ok.txt").write_bytes(b"ok")
    (tmp_path / "secret.txt").write_bytes(b"TOP-SECRET-CONTENT")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    with RangeFileServer(root) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)

        def status(target: str) -> tuple[int, bytes]:
            conn.request("GET", target)  # http.client sends the target verbatim
            resp = conn.getresponse()
            return resp.status, resp.read()

        p = srv.prefix
        assert status(f"{p}/sub/ok.txt") == (200, b"ok")
        assert status(f"{p}/sub/../sub/ok.txt") == (200, b"ok")  # stays inside: fine
        for target in [
            f"{p}/../secret.txt",
            f"{p}/sub/../../secret.txt",
            f"{p}/%2e%2e/secret.txt",
            f"{p}/%2E%2E%2Fsecret.txt",
            f"{p}/link.txt",  # symlink leaving the root
            f"{p}/sub",  # directory
            f"{p}/nope.txt",
            "/sub/ok.txt",  # not under this server's prefix
            f"{p}/sub/ok.txt%00",
        ]:
            code, body = status(target)
            assert code == 404, target
            assert b"TOP-SECRET" not in body
        conn.close()


def test_server_shuts_down_cleanly(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"abc")
    with RangeFileServer(tmp_path) as srv:
        url = srv.url_for("a.bin")
        session = requests.Session()  # keeps an idle keep-alive connection open
        assert session.get(url, timeout=10).content == b"abc"
        thread = srv._thread
    assert thread is not None and not thread.is_alive()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)
    session.close()


# --------------------------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------------------------


def test_fault_plan_is_deterministic_and_bounded() -> None:
    def run(seed: int) -> list[Fault]:
        plan = FaultPlan(fraction=1 / 3, seed=seed, max_consecutive_failures_per_path=2)
        return [plan.decide(n, "/same") for n in range(300)]

    a, b = run(1), run(1)
    assert a == b != run(2)
    assert set(a) == set(Fault)  # every kind happens
    fraction = sum(f is not Fault.NONE for f in a) / len(a)
    assert 0.2 < fraction < 0.45
    streak = longest = 0
    for f in a:
        streak = streak + 1 if f in FAILURES else 0
        longest = max(longest, streak)
    assert longest <= 2

    first = FaultPlan(fraction=0, fail_first=3, kinds=(Fault.HTTP_503,))
    assert [first.decide(n, "/x") for n in range(5)] == [Fault.HTTP_503] * 3 + [Fault.NONE] * 2


def test_retrying_client_gets_exact_bytes_through_faults(tmp_path: Path) -> None:
    data = random.Random(1).randbytes(SIZE)
    (tmp_path / "blob.bin").write_bytes(data)
    plan = FaultPlan(fraction=1 / 3, seed=7, max_consecutive_failures_per_path=2, slow_ms=20)
    errors: dict[str, int] = {}
    with RangeFileServer(tmp_path, faults=plan) as srv:
        url = srv.url_for("blob.bin")
        session = requests.Session()
        rnd = random.Random(3)
        for _ in range(30):
            a = rnd.randrange(SIZE - 1)
            b = rnd.randrange(a, min(SIZE, a + 20_000))
            attempts = plan.max_consecutive_failures_per_path + 1
            for _ in range(attempts):
                try:
                    r = session.get(url, headers={"Range": f"bytes={a}-{b}"}, timeout=10)
                    if r.status_code in (500, 503):
                        errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
                        continue
                    body = r.content
                except requests.RequestException as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                assert r.status_code == 206
                assert body == data[a : b + 1]
                break
            else:
                pytest.fail(f"no success within {attempts} attempts for bytes={a}-{b}")
        session.close()
        faults = [r.fault for r in srv.requests]
    print(f"faults seen by the server: { {f.value: faults.count(f) for f in set(faults)} }")
    print(f"errors seen by the client: {errors}")
    assert {Fault.HTTP_500, Fault.HTTP_503, Fault.RESET, Fault.TRUNCATE, Fault.SLOW} <= set(faults)
    assert 0.15 < sum(f in FAILURES for f in faults) / len(faults) < 0.5
    # a truncated body and a reset both surface as exceptions in requests
    assert errors.get("ChunkedEncodingError", 0) == faults.count(Fault.TRUNCATE)
    assert errors.get("ConnectionError", 0) == faults.count(Fault.RESET)
    r503 = [r for r in srv.requests if r.fault is Fault.HTTP_503]
    assert all(r.status == 503 for r in r503)


def test_503_has_retry_after(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"abc")
    plan = FaultPlan(fraction=0, fail_first=1, kinds=(Fault.HTTP_503,))
    with RangeFileServer(tmp_path, faults=plan) as srv:
        r = _get(srv.url_for("a.bin"))
        assert (r.status_code, r.headers["Retry-After"]) == (503, "1")
        assert _get(srv.url_for("a.bin")).content == b"abc"


# --------------------------------------------------------------------------------------------
# StacApiServer with pystac-client
# --------------------------------------------------------------------------------------------

COLLECTION = "sentinel-2-l2a"
TILE_BBOX = [-11.9, 24.4, -11.0, 25.2]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_pystac_client_pages_through_search(stac_api: StacApiServer, method: str) -> None:
    from pystac_client import Client

    client = Client.open(stac_api.url)
    search = client.search(
        collections=[COLLECTION],
        bbox=TILE_BBOX,
        datetime="2020-01-01/2020-12-31",
        max_items=None,
        method=method,
    )
    items = search.item_collection()
    assert [it.id for it in items] == [it["id"] for it in stac_api.items]
    searches = stac_api.search_requests
    assert len(searches) == 3  # 5 items, 2 per page
    assert {r.method for r in searches} == {method}
    assert items[0].assets["red"].href.startswith("http://127.0.0.1:")
    assert items[0].datetime is not None and items[0].datetime.isoformat().startswith(
        "2020-02-19T11:34:25.405"
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"query": {"eo:cloud_cover": {"lt": 44.05}}}, [0, 1]),
        ({"query": {"eo:cloud_cover": {"lte": 44.051854}}}, [0, 1, 2]),
        ({"datetime": "../2020-03-10"}, [0, 1]),  # 02-19, 03-06
        ({"datetime": "2020-04-01/.."}, [3, 4]),  # 04-07, 04-23
        ({"datetime": "2020-02-19T11:34:25.405Z"}, [0]),
        ({"ids": ["S2A_29RKH_20200219_0_L2A-d2"]}, [2]),
        ({"bbox": [0, 0, 1, 1]}, []),
        ({"intersects": {"type": "Point", "coordinates": [-11.5, 24.8]}}, [0, 1, 2, 3, 4]),
        ({"intersects": {"type": "Point", "coordinates": [30.0, 0.0]}}, []),
        ({"collections": ["other"]}, []),
    ],
)
def test_search_filters(
    stac_api: StacApiServer, method: str, kwargs: dict[str, Any], expected: list[int]
) -> None:
    from pystac_client import Client

    items = Client.open(stac_api.url).search(method=method, **kwargs).item_collection()
    assert [it.id for it in items] == [stac_api.items[i]["id"] for i in expected]


def test_search_document_shape_and_errors(stac_api: StacApiServer) -> None:
    landing = requests.get(stac_api.url, timeout=10).json()
    assert landing["type"] == "Catalog"
    rels = [(ln["rel"], ln.get("method")) for ln in landing["links"]]
    for rel in [("self", None), ("root", None), ("conformance", None), ("data", None)]:
        assert rel in rels
    assert ("search", "GET") in rels and ("search", "POST") in rels
    conf = requests.get(f"{stac_api.url}/conformance", timeout=10).json()["conformsTo"]
    assert "https://api.stacspec.org/v1.0.0/item-search" in conf
    colls = requests.get(f"{stac_api.url}/collections", timeout=10).json()["collections"]
    assert [c["id"] for c in colls] == [COLLECTION]
    assert requests.get(f"{stac_api.url}/collections/{COLLECTION}", timeout=10).ok
    assert requests.get(f"{stac_api.url}/collections/nope", timeout=10).status_code == 404

    page = requests.post(f"{stac_api.url}/search", json={"limit": 3}, timeout=10).json()
    assert (page["numberMatched"], page["numberReturned"]) == (5, 2)  # limit capped at page_size
    (nxt,) = [ln for ln in page["links"] if ln["rel"] == "next"]
    assert nxt["method"] == "POST" and nxt["body"] == {"limit": 3, "token": "next:2"}
    page = requests.get(f"{stac_api.url}/search", params={"limit": 1}, timeout=10).json()
    (nxt,) = [ln for ln in page["links"] if ln["rel"] == "next"]
    assert "limit=1" in nxt["href"] and "token=next%3A1" in nxt["href"]

    for params in [{"bbox": "1,2,3"}, {"datetime": "yesterday"}, {"query": '{"a": {"like": 1}}'}]:
        r = requests.get(f"{stac_api.url}/search", params=params, timeout=10)
        assert r.status_code == 400, params
        assert r.json()["code"] == "Bad Request"
    assert requests.post(f"{stac_api.url}/search", data=b"{", timeout=10).status_code == 400


def test_stac_faults_with_retrying_pystac_client(
    earth_search_item_29rkh: tuple[dict[str, Any], RangeFileServer],
) -> None:
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO
    from urllib3.util.retry import Retry

    item, _ = earth_search_item_29rkh
    plan = FaultPlan(fraction=0, fail_first=2, kinds=(Fault.HTTP_503,))
    retry = Retry(
        total=3,
        status_forcelist=[503],
        allowed_methods=None,
        backoff_factor=0,
        respect_retry_after_header=False,  # keep the test fast; Retry-After is 1 s
    )
    with StacApiServer([item], faults=plan) as api:
        client = Client.open(api.url, stac_io=StacApiIO(max_retries=retry))
        items = client.search(collections=[COLLECTION], max_items=None).item_collection()
        assert [it.id for it in items] == [item["id"]]
        assert [r.status for r in api.requests[:3]] == [503, 503, 200]


# --------------------------------------------------------------------------------------------
# GDAL /vsicurl/ through odc-stac
# --------------------------------------------------------------------------------------------


def test_odc_stac_reads_window_through_vsicurl(
    earth_search_item_29rkh: tuple[dict[str, Any], RangeFileServer],
) -> None:
    import odc.stac
    import pystac
    import rasterio
    import rasterio.windows
    from odc.geo import xy_
    from odc.geo.geobox import GeoBox
    from pyproj import Transformer

    item_dict, srv = earth_search_item_29rkh
    folder = srv.root
    files = {"red": "B04.tif", "nir": "B08.tif", "scl": "SCL.tif"}
    with rasterio.open(folder / files["red"]) as ds:
        native = GeoBox.from_rio(ds)
    # ~5 km window well inside the first 512x512 block of the 100 m bands
    x0, y1 = native.affine * (230, 230)
    x1, y0 = x0 + 5_000, y1 - 5_000
    to_ll = Transformer.from_crs("EPSG:32629", "EPSG:4326", always_xy=True)
    lons, lats = to_ll.transform([x0, x1, x0, x1], [y0, y0, y1, y1])
    bbox = (min(lons), min(lats), max(lons), max(lats))

    # The files' pixel edges sit 80 m (x) and 20 m (y) past multiples of 100 m: anchor the output
    # grid there so odc-stac reads pixels as they are. (Not `native.anchor`: in odc-geo 0.5.3
    # `GeoBox.anchor` does not round-trip through `anchor=` on the x axis: 0.2 instead of 0.8.)
    anchor = xy_(round(native.affine.c / 100 % 1, 6), round(native.affine.f / 100 % 1, 6))
    items = [pystac.Item.from_dict(item_dict)]
    with rasterio.Env(**GDAL_LOOPBACK_OPTIONS):
        xx = odc.stac.load(
            items,
            bands=list(files),
            crs="EPSG:32629",
            resolution=100,
            anchor=anchor,
            bbox=bbox,
            chunks={},
        )
        assert srv.requests == []  # lazy: nothing read yet
        xx = xx.compute(scheduler="threads", num_workers=2)

    gbox = xx.odc.geobox
    assert 50 <= gbox.shape.y <= 70 and 50 <= gbox.shape.x <= 70
    for band, name in files.items():
        with rasterio.open(folder / name) as ds:
            k = round(ds.transform.a / 100)  # 1 for the 100 m bands, 2 for the 200 m SCL
            win = rasterio.windows.from_bounds(*gbox.extent.boundingbox, transform=ds.transform)
            # the output grid is the native one (or splits each SCL pixel in 2x2)
            edges = np.array([win.col_off, win.row_off, win.width, win.height]) * k
            np.testing.assert_allclose(edges, np.round(edges), atol=1e-6)
            col0, row0 = int(np.floor(win.col_off)), int(np.floor(win.row_off))
            ncol = int(np.ceil(win.col_off + win.width)) - col0
            nrow = int(np.ceil(win.row_off + win.height)) - row0
            native_px = ds.read(1, window=rasterio.windows.Window(col0, row0, ncol, nrow))
        # nearest resampling from 200 m to 100 m repeats every pixel 2x2
        expected = np.repeat(np.repeat(native_px, k, axis=0), k, axis=1)
        dy, dx = round((win.row_off - row0) * k), round((win.col_off - col0) * k)
        expected = expected[dy : dy + gbox.shape.y, dx : dx + gbox.shape.x]
        got = xx[band].isel(time=0).values
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected, err_msg=band)
    assert (xx["scl"].values > 0).all() and (xx["red"].values > 0).all()  # real data, no fill

    reqs = srv.requests
    served = {r.path for r in reqs}
    assert served == {f"/{n}" for n in files.values()}
    # GDAL: one HEAD per file (size), then only Range GETs (header block, the needed tiles)
    assert {r.method for r in reqs} == {"HEAD", "GET"}
    assert all(r.status == 206 and r.range for r in reqs if r.method == "GET")
    total = sum((folder / n).stat().st_size for n in files.values())
    ratio = srv.bytes_sent / total
    print(
        f"\n/vsicurl/ read {srv.bytes_sent} of {total} bytes ({ratio:.1%}) "
        f"in {sum(r.method == 'GET' for r in reqs)} range GETs"
    )
    assert ratio < 0.4


# --------------------------------------------------------------------------------------------
# Egress guards
# --------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_python_sockets_cannot_leave_loopback() -> None:
    # pytest-socket (--allow-hosts in pyproject) raises in connect(), before any packet is sent.
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("10.255.255.1", 80), timeout=1)


def test_gdal_requests_leaving_loopback_land_in_sink(egress_sink: EgressSink) -> None:
    import rasterio
    from rasterio.errors import RasterioIOError

    opts = {**GDAL_LOOPBACK_OPTIONS, "GDAL_HTTP_TIMEOUT": "5", "GDAL_HTTP_MAX_RETRY": "0"}
    with rasterio.Env(**opts), pytest.raises(RasterioIOError):
        rasterio.open("/vsicurl/http://10.255.255.1/egress-probe.tif")
    targets = [r.target for r in egress_sink.requests]
    egress_sink.reset_stats()  # expected: do not fail this test at teardown
    assert targets and all(t.startswith("http://10.255.255.1/egress-probe.tif") for t in targets)


def test_json_round_trip_of_patched_item(
    earth_search_item_29rkh: tuple[dict[str, Any], RangeFileServer],
) -> None:
    item, srv = earth_search_item_29rkh
    assert sorted(item["assets"]) == sorted(
        ["blue", "green", "red", "nir", "nir08", "swir16", "swir22", "scl"]
    )
    for key, asset in item["assets"].items():
        assert asset["href"].startswith(srv.url + "/")
        ten = key in ("blue", "green", "red", "nir")
        assert asset["proj:shape"] == ([1098, 1098] if ten else [549, 549])
        res = 100 if ten else 200
        assert asset["proj:transform"] == [res, 0, 199980, 0, -res, 2800020]
    assert item["properties"]["datetime"] == "2020-02-19T11:34:25.405000Z"
    r = requests.get(item["assets"]["scl"]["href"], headers={"Range": "bytes=0-3"}, timeout=10)
    assert r.content in (b"II*\x00", b"II+\x00")  # TIFF / BigTIFF magic
    json.dumps(item)  # still plain JSON
