"""Loopback fakes of the credentialed services the providers talk to, for tests only.

- :class:`FakeCdse`: Copernicus Data Space identity (OpenID Connect token endpoint:
  password and refresh-token grants), OData catalogue (``/odata/v1/Products`` with
  ``@odata.nextLink`` paging) and download (``Products(<id>)/$value``: bearer token
  checked, 401 when missing, invalid or expired, ``Range`` honoured, optional redirect
  to another host name);
- :class:`FakeSas`: the Planetary Computer SAS token endpoint
  (``/api/sas/v1/token/<account>/<container>``);
- :class:`FakeDhus`: a DHuS hub as ``sentinelsat`` 1.2 uses it (OpenSearch ``/search``
  JSON, OData product JSON, ``Online``, ``$value`` with ``Content-Disposition`` and
  ``Range``; HTTP Basic auth);
- :func:`make_safe_zip`: a small zipped L2A SAFE (real ``MTD_MSIL2A.xml``, tiny JPEG 2000
  bands) and :class:`ScriptedFaults` (per-path fault scripts on top of ``FaultPlan``).

They reuse the machinery of :mod:`tests.servers` (request log, fault injection,
loopback-only sockets, per-instance path prefix).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import itertools
import json
import re
import secrets
import threading
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np

from tests.servers import Fault, FaultPlan, _Handler, _LoopbackServer, _Response, parse_range

__all__ = [
    "FakeCdse",
    "FakeDhus",
    "FakeSas",
    "Product",
    "ScriptedFaults",
    "make_safe_zip",
]


# --------------------------------------------------------------------------------------------
# Scripted faults and a product
# --------------------------------------------------------------------------------------------


class ScriptedFaults(FaultPlan):
    """Faults by path: ``script[path_regex]`` is consumed one fault per matching request."""

    def __init__(self, script: Mapping[str, Sequence[Fault]], **kwargs: Any) -> None:
        super().__init__(fraction=0.0, **kwargs)
        self._script = {re.compile(k): list(v) for k, v in script.items()}

    def decide(self, n: int, path: str) -> Fault:
        with self._lock:
            for pattern, queue in self._script.items():
                if pattern.search(path) and queue:
                    return queue.pop(0)
        return Fault.NONE


@dataclass
class Product:
    """One downloadable product: id, file name and bytes, with published checksums."""

    id: str
    name: str
    data: bytes
    footprint_wkt: str = "POLYGON((-6.6 8.1, -6.5 8.1, -6.5 8.2, -6.6 8.2, -6.6 8.1))"
    sensed: dt.datetime = dt.datetime(2023, 8, 21, 10, 30, tzinfo=dt.UTC)
    cloud_cover: float = 12.5
    baseline: str = "05.09"
    md5: str = field(init=False)

    def __post_init__(self) -> None:
        self.md5 = hashlib.md5(self.data).hexdigest()


# --------------------------------------------------------------------------------------------
# Copernicus Data Space: token + OData + download
# --------------------------------------------------------------------------------------------


class _CdseHandler(_Handler):
    def route(self, method: str, path: str) -> _Response:
        owner = self.server.owner
        assert isinstance(owner, FakeCdse)
        return owner.handle(self, method, path)


class FakeCdse(_LoopbackServer):
    """Fake CDSE identity + OData + download service (one server, three path families).

    ``token_url`` = ``{url}/auth/token``; ``odata_url`` = ``{url}/odata/v1``. Download of
    ``{odata_url}/Products(<id>)/$value`` needs ``Authorization: Bearer <access token>``.
    ``redirect_host`` (e.g. ``"localhost"``) makes ``$value`` answer 307 to the same path on
    that host name, like the catalogue redirecting to the download service.
    """

    handler = _CdseHandler

    def __init__(
        self,
        products: Sequence[Product],
        *,
        username: str,
        password: str,
        token_ttl_s: int = 600,
        faults: FaultPlan | None = None,
        redirect_host: str | None = None,
        page_size: int = 1,
        publish: Sequence[str] = ("MD5", "BLAKE3"),
    ) -> None:
        super().__init__(faults=faults)
        self.products = {p.id: p for p in products}
        self.username, self.password = username, password
        self.token_ttl_s = token_ttl_s
        self.redirect_host = redirect_host
        self.page_size = page_size
        self.publish = tuple(publish)
        self.access: dict[str, float] = {}
        self.refresh: set[str] = set()
        self.grants: list[str] = []
        self.download_auth: list[str | None] = []
        self.refused = 0
        self._lock2 = threading.Lock()

    def __enter__(self) -> FakeCdse:
        self.start()
        return self

    @property
    def token_url(self) -> str:
        return f"{self.url}/auth/token"

    @property
    def odata_url(self) -> str:
        return f"{self.url}/odata/v1"

    def expire_tokens(self) -> None:
        """Invalidate every access token (the next download answers 401)."""
        with self._lock2:
            self.access.clear()

    def product_json(self, p: Product) -> dict[str, Any]:
        sums = [{"Value": p.md5, "Algorithm": "MD5", "ChecksumDate": "2023-08-22T03:00:00Z"}]
        if "BLAKE3" in self.publish:
            sums.append({"Value": "0" * 64, "Algorithm": "BLAKE3", "ChecksumDate": "2023-08-22T03:00:00Z"})
        sums = [s for s in sums if s["Algorithm"] in self.publish]
        return {
            "@odata.mediaContentType": "application/octet-stream",
            "Id": p.id, "Name": p.name, "ContentType": "application/octet-stream",
            "ContentLength": len(p.data), "Online": True, "Checksum": sums,
            "ContentDate": {"Start": p.sensed.isoformat().replace("+00:00", "Z"),
                            "End": p.sensed.isoformat().replace("+00:00", "Z")},
            "Footprint": f"geography'SRID=4326;{p.footprint_wkt}'",
            "Attributes": [
                {"@odata.type": "#OData.CSC.DoubleAttribute", "Name": "cloudCover",
                 "Value": p.cloud_cover, "ValueType": "Double"},
                {"@odata.type": "#OData.CSC.StringAttribute", "Name": "processingBaseline",
                 "Value": p.baseline, "ValueType": "String"},
                {"@odata.type": "#OData.CSC.StringAttribute", "Name": "productType",
                 "Value": "S2MSI2A", "ValueType": "String"},
            ],
        }

    def handle(self, h: _Handler, method: str, path: str) -> _Response:
        if path == "/auth/token" and method == "POST":
            return self._token(h)
        if path == "/odata/v1/Products" and method == "GET":
            return self._search(h)
        m = re.fullmatch(r"/odata/v1/Products\(([^)]+)\)/\$value", path)
        if m and method in ("GET", "HEAD"):
            return self._download(h, m[1])
        return _Response.error(HTTPStatus.NOT_FOUND, path)

    def _token(self, h: _Handler) -> _Response:
        form = {k: v[-1] for k, v in parse_qs(h.request_body.decode()).items()}
        if form.get("client_id") != "cdse-public":
            return _Response.json({"error": "invalid_client"}, status=401)
        grant = form.get("grant_type")
        with self._lock2:
            if grant == "password":
                if form.get("username") != self.username or form.get("password") != self.password:
                    self.grants.append("password-refused")
                    return _Response.json({"error": "invalid_grant"}, status=401)
            elif grant == "refresh_token":
                if form.get("refresh_token") not in self.refresh:
                    self.grants.append("refresh-refused")
                    return _Response.json({"error": "invalid_grant"}, status=400)
            else:
                return _Response.json({"error": "unsupported_grant_type"}, status=400)
            self.grants.append(grant)
            access, refresh = "at-" + secrets.token_hex(8), "rt-" + secrets.token_hex(8)
            self.access[access] = time.time() + self.token_ttl_s
            self.refresh.add(refresh)
        return _Response.json({"access_token": access, "expires_in": self.token_ttl_s,
                               "refresh_token": refresh, "refresh_expires_in": 3600,
                               "token_type": "Bearer"})

    def _search(self, h: _Handler) -> _Response:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(h.path).query).items()}
        flt = query.get("$filter", "")
        if flt and ("Collection/Name eq 'SENTINEL-2'" not in flt or "OData.CSC.Intersects" not in flt):
            return _Response.json({"detail": "unsupported filter"}, status=400)
        skip = int(query.get("$skip", 0))
        products = list(self.products.values())
        page = products[skip: skip + self.page_size]
        body: dict[str, Any] = {"@odata.context": "$metadata#Products(Attributes())",
                                "value": [self.product_json(p) for p in page]}
        if skip + self.page_size < len(products):
            nxt = dict(query, **{"$skip": str(skip + self.page_size)})
            body["@odata.nextLink"] = f"{self.odata_url}/Products?{urlencode(nxt)}"
        return _Response.json(body)

    def _download(self, h: _Handler, pid: str) -> _Response:
        host = (h.headers.get("Host") or "").split(":")[0]
        if self.redirect_host and host != self.redirect_host:
            location = f"http://{self.redirect_host}:{self.port}{self.prefix}/odata/v1/Products({pid})/$value"
            return _Response(307, {"Location": location}, [])
        auth = h.headers.get("Authorization")
        self.download_auth.append(auth)
        token = auth.removeprefix("Bearer ") if auth and auth.startswith("Bearer ") else None
        with self._lock2:
            valid = token is not None and self.access.get(token, 0) > time.time()
        if not valid:
            self.refused += 1
            return _Response.json({"detail": "Expired signature!"}, status=401)
        product = self.products.get(pid)
        if product is None:
            return _Response.error(HTTPStatus.NOT_FOUND, pid)
        return _ranged(h, product.data, f"{product.name}.zip")


def _ranged(h: _Handler, data: bytes, filename: str) -> _Response:
    size = len(data)
    base = {"Accept-Ranges": "bytes", "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{filename}"'}
    header = h.headers.get("Range")
    ranges = parse_range(header, size) if header else None
    if ranges is None:
        return _Response(200, base, [data])
    if len(ranges) != 1:
        return _Response.error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, header or "")
    a, b = ranges[0]
    return _Response(206, {**base, "Content-Range": f"bytes {a}-{b}/{size}"}, [data[a: b + 1]])


# --------------------------------------------------------------------------------------------
# Planetary Computer SAS token endpoint
# --------------------------------------------------------------------------------------------


class _SasHandler(_Handler):
    def route(self, method: str, path: str) -> _Response:
        owner = self.server.owner
        assert isinstance(owner, FakeSas)
        m = re.fullmatch(r"/api/sas/v1/token/([^/]+)/([^/]+)", path)
        if method != "GET" or not m:
            return _Response.error(HTTPStatus.NOT_FOUND, path)
        key = self.headers.get("Ocp-Apim-Subscription-Key")
        owner.keys_seen.append(key)
        if owner.require_key and key != owner.require_key:
            return _Response.json({"detail": "subscription key required"}, status=401)
        owner.issued.append((m[1], m[2]))
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=owner.ttl_s)
        token = f"st={m[2]}&se=2099-01-01&sp=rl&sv=2021-06-08&sr=c&sig={owner.signature}"
        return _Response.json({"msft:expiry": expiry.isoformat().replace("+00:00", "Z"), "token": token})


class FakeSas(_LoopbackServer):
    """``GET {url}/api/sas/v1/token/<account>/<container>`` -> ``{"token", "msft:expiry"}``."""

    handler = _SasHandler

    def __init__(self, *, ttl_s: int = 3600, require_key: str | None = None,
                 faults: FaultPlan | None = None) -> None:
        super().__init__(faults=faults)
        self.ttl_s = ttl_s
        self.require_key = require_key
        self.signature = "SASSIG" + secrets.token_hex(6)
        self.issued: list[tuple[str, str]] = []
        self.keys_seen: list[str | None] = []

    def __enter__(self) -> FakeSas:
        self.start()
        return self

    @property
    def token_url(self) -> str:
        return f"{self.url}/api/sas/v1/token"


# --------------------------------------------------------------------------------------------
# DHuS hub for sentinelsat
# --------------------------------------------------------------------------------------------


class _DhusHandler(_Handler):
    def route(self, method: str, path: str) -> _Response:
        owner = self.server.owner
        assert isinstance(owner, FakeDhus)
        auth = self.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{owner.username}:{owner.password}".encode()).decode()
        if auth != expected:
            owner.refused += 1
            body = json.dumps({"error": {"code": "401", "message": {"lang": "en", "value": "Unauthorized"}}})
            return _Response(401, {"Content-Type": "application/json"}, [body.encode()])
        return owner.handle(self, method, path)


class FakeDhus(_LoopbackServer):
    """A DHuS hub at ``{url}/`` (the ``api_url`` for ``SentinelAPI``), HTTP Basic auth."""

    handler = _DhusHandler

    def __init__(self, products: Sequence[Product], *, username: str, password: str,
                 faults: FaultPlan | None = None) -> None:
        super().__init__(faults=faults)
        self.products = {p.id: p for p in products}
        self.username, self.password = username, password
        self.queries: list[str] = []
        self.refused = 0

    def __enter__(self) -> FakeDhus:
        self.start()
        return self

    @property
    def api_url(self) -> str:
        return f"{self.url}/"

    def handle(self, h: _Handler, method: str, path: str) -> _Response:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(h.path).query).items()}
        if path == "/search":
            self.queries.append(query.get("q", ""))
            return self._search(query)
        if path == "/api/stub/version":
            return _Response.json({"value": "0.14.4-fake"})
        m = re.fullmatch(r"/odata/v1/Products\('([^']+)'\)(.*)", path)
        if not m or m[1] not in self.products:
            return _Response.error(HTTPStatus.NOT_FOUND, path)
        product, rest = self.products[m[1]], m[2]
        if rest == "":
            return _Response.json({"d": self._odata(product)})
        if rest == "/Online/$value":
            return _Response(200, {"Content-Type": "text/plain"}, [b"true"])
        if rest == "/$value":
            return _ranged(h, product.data, f"{product.name}.zip")
        return _Response.error(HTTPStatus.NOT_FOUND, path)

    def _search(self, query: Mapping[str, str]) -> _Response:
        rows, start = int(query.get("rows", 100)), int(query.get("start", 0))
        entries = [self._entry(p) for p in self.products.values()]
        feed = {"opensearch:totalResults": str(len(entries)), "entry": entries[start: start + rows]}
        return _Response.json({"feed": feed})

    def _entry(self, p: Product) -> dict[str, Any]:
        link = f"{self.url}/odata/v1/Products('{p.id}')/$value"
        when = p.sensed.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return {
            "title": p.name.removesuffix(".SAFE"), "id": p.id,
            "link": [{"href": link}, {"rel": "alternative", "href": f"{self.url}/odata/v1/Products('{p.id}')/"}],
            "date": [{"name": "beginposition", "content": when}, {"name": "endposition", "content": when}],
            "double": {"name": "cloudcoverpercentage", "content": str(p.cloud_cover)},
            "str": [{"name": "footprint", "content": p.footprint_wkt},
                    {"name": "platformname", "content": "Sentinel-2"},
                    {"name": "producttype", "content": "S2MSI2A"},
                    {"name": "processingbaseline", "content": p.baseline},
                    {"name": "uuid", "content": p.id}],
        }

    def _odata(self, p: Product) -> dict[str, Any]:
        ms = int(p.sensed.timestamp() * 1000)
        coords = re.findall(r"(-?[\d.]+) (-?[\d.]+)", p.footprint_wkt)
        gml = ('<gml:Polygon xmlns:gml="http://www.opengis.net/gml"><gml:outerBoundaryIs>'
               "<gml:LinearRing><gml:coordinates>"
               + " ".join(f"{lat},{lon}" for lon, lat in coords)
               + "</gml:coordinates></gml:LinearRing></gml:outerBoundaryIs></gml:Polygon>")
        return {
            "Id": p.id, "Name": p.name.removesuffix(".SAFE"), "ContentLength": str(len(p.data)),
            "Checksum": {"Algorithm": "MD5", "Value": p.md5.upper()},
            "ContentDate": {"Start": f"/Date({ms})/", "End": f"/Date({ms})/"},
            "ContentGeometry": gml, "CreationDate": f"/Date({ms})/", "IngestionDate": f"/Date({ms})/",
            "Online": True, "__metadata": {"media_src": f"{self.url}/odata/v1/Products('{p.id}')/$value"},
            "Attributes": {"results": []},
        }


# --------------------------------------------------------------------------------------------
# A small zipped SAFE
# --------------------------------------------------------------------------------------------

_counter = itertools.count()


def make_safe_zip(
    mtd_xml: Path,
    *,
    bands: Mapping[str, np.ndarray],
    epsg: int = 32630,
    origin: tuple[float, float] = (300000.0, 910000.0),
    extra_members: Mapping[str, bytes] | None = None,
) -> tuple[str, bytes]:
    """``(product name, zip bytes)`` of an L2A SAFE with the real ``mtd_xml`` and tiny bands.

    ``bands`` maps ESA tags (``B04_10m``, ``SCL_20m``) to arrays, written as lossless
    JPEG 2000 under ``GRANULE/L2A_.../IMG_DATA/R10m|R20m``. The product name is the
    ``PRODUCT_URI`` of ``mtd_xml`` without ``.SAFE``.
    """
    import rasterio
    from rasterio.transform import from_origin

    xml = mtd_xml.read_bytes()
    name = re.search(rb"<PRODUCT_URI>([^<]+)\.SAFE</PRODUCT_URI>", xml)
    assert name, "MTD_MSIL2A.xml without PRODUCT_URI"
    product = name[1].decode()
    tile = re.search(r"_T(\d{2}[A-Z]{3})_", product)[1]  # type: ignore[index]
    stamp = product.split("_")[2]
    granule = f"{product}.SAFE/GRANULE/L2A_T{tile}_A000000_{stamp}/IMG_DATA"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{product}.SAFE/MTD_MSIL2A.xml", xml)
        zf.writestr(f"{product}.SAFE/manifest.safe", b"<xfdu/>")
        for tag, arr in bands.items():
            res = int(tag.rsplit("_", 1)[1].removesuffix("m"))
            profile = {"driver": "JP2OpenJPEG", "width": arr.shape[1], "height": arr.shape[0],
                       "count": 1, "dtype": arr.dtype.name, "crs": f"EPSG:{epsg}",
                       "transform": from_origin(origin[0], origin[1], res, res),
                       "QUALITY": "100", "REVERSIBLE": "YES"}
            with rasterio.MemoryFile(ext=".jp2") as mem:
                with mem.open(**profile) as dst:
                    dst.write(arr, 1)
                data = mem.read()
            zf.writestr(f"{granule}/R{res}m/T{tile}_{stamp}_{tag}.jp2", data)
        for member, data in (extra_members or {}).items():
            zf.writestr(member, data)
    return product, buf.getvalue()
