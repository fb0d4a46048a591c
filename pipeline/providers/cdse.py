"""Copernicus Data Space Ecosystem: STAC search, S3 reads, OData search and full-product download.

- **STAC** (``https://stac.dataspace.copernicus.eu/v1``, collection ``sentinel-2-l2a``):
  the default search; assets ``B04_10m``, ``SCL_20m``... are mapped to Earth Search names,
  hrefs are ``s3://eodata/...`` read through GDAL with the CDSE S3 endpoint and the
  access keys in ``CDSE_S3_ACCESS_KEY`` / ``CDSE_S3_SECRET_KEY``.
- **OData** (``catalogue.dataspace.copernicus.eu/odata/v1``): :meth:`CdseProvider.search_products`
  pages through ``Products?$filter=...``; :meth:`CdseProvider.download_product` streams
  ``Products(<Id>)/$value`` with a bearer token to ``<name>.zip.part``, resumes an
  interrupted transfer with ``Range: bytes=<have>-``, verifies the checksum OData
  publishes (BLAKE3 when the ``blake3`` module is installed, else MD5) and renames the
  file into place only then. :meth:`CdseProvider.materialise` unpacks it safely
  (:func:`pipeline.providers.safe.safe_extract`) for window reads.
- **Tokens** (:class:`CdseTokens`): OpenID Connect password grant with
  ``CDSE_USERNAME``/``CDSE_PASSWORD``, or a refresh token (``CDSE_REFRESH_TOKEN``);
  cached until 30 s before ``expires_in``, refreshed with the refresh token, and
  re-fetched once when a request answers 401 (expired or revoked).

The bearer token is sent only to hosts that are part of the service (the OData,
download and token hosts, and ``*.dataspace.copernicus.eu``): redirects are followed by
hand, because ``requests`` would either leak or drop it. Nothing here logs a token,
a password or a signed URL, and error messages are scrubbed of them.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import pystac
import requests
import shapely.geometry
import shapely.wkt
import urllib3
from shapely.geometry.base import BaseGeometry

from ..config import SearchParams
from ..errors import ChecksumError, ConfigError, DownloadError, SearchError
from ..http import RETRY_STATUSES, describe_error, parse_retry_after, redact
from ..types import BAND_ALIASES
from .base import SourceCheck, StacProvider
from .safe import file_checksum, item_from_safe, safe_extract

__all__ = ["CdseProvider", "CdseTokens"]

log = logging.getLogger("pipeline.providers")

DEFAULT_STAC_URL = "https://stac.dataspace.copernicus.eu/v1"
DEFAULT_TOKEN_URL = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
DEFAULT_ODATA_URL = "https://catalogue.dataspace.copernicus.eu/odata/v1"
DEFAULT_DOWNLOAD_URL = "https://download.dataspace.copernicus.eu/odata/v1"
CLIENT_ID = "cdse-public"
TRUSTED_SUFFIXES = (".dataspace.copernicus.eu",)
S3_ENDPOINT = "eodata.dataspace.copernicus.eu"
S3_KEY_ENV, S3_SECRET_ENV = "CDSE_S3_ACCESS_KEY", "CDSE_S3_SECRET_KEY"
_CHUNK = 1024 * 1024


class CdseTokens:
    """Access tokens from the CDSE identity service, cached and refreshed.

    Parameters
    ----------
    token_url
        OpenID Connect token endpoint.
    session
        Retrying session used for the token requests.
    username, password
        Password-grant credentials (values from the environment).
    refresh_token
        A refresh token to start from (e.g. issued to a service account).
    """

    def __init__(
        self,
        token_url: str,
        session: requests.Session,
        *,
        username: str | None,
        password: str | None,
        refresh_token: str | None = None,
        client_id: str = CLIENT_ID,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not (username and password) and not refresh_token:
            raise ConfigError("Copernicus Data Space credentials missing: set CDSE_USERNAME and "
                              "CDSE_PASSWORD (or CDSE_REFRESH_TOKEN) in the environment")
        self.token_url = token_url
        self._session = session
        self._username, self._password = username, password
        self._refresh = refresh_token
        self._client_id = client_id
        self._clock = clock
        self._access: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.requests_made = 0

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._password, self._refresh, self._access) if s)

    def access_token(self) -> str:
        """A valid access token (fetched or refreshed when needed)."""
        with self._lock:
            if self._access and self._clock() < self._expires_at:
                return self._access
            if self._refresh:
                try:
                    return self._grant({"grant_type": "refresh_token", "refresh_token": self._refresh})
                except DownloadError:
                    if not (self._username and self._password):
                        raise
                    log.info("CDSE refresh token refused; signing in again")
            return self._grant({"grant_type": "password", "username": self._username or "",
                                "password": self._password or ""})

    def invalidate(self) -> None:
        """Forget the access token (the server answered 401)."""
        with self._lock:
            self._access, self._expires_at = None, 0.0

    def _grant(self, data: dict[str, str]) -> str:
        self.requests_made += 1
        try:
            resp = self._session.post(self.token_url, data={**data, "client_id": self._client_id})
        except requests.RequestException as exc:
            raise DownloadError(f"CDSE token endpoint {redact(self.token_url)} unreachable: "
                                f"{describe_error(exc)}") from None
        if resp.status_code in (400, 401, 403):
            raise DownloadError(f"CDSE token endpoint {redact(self.token_url)} refused the "
                                f"{data['grant_type'].replace('_', ' ')} (HTTP {resp.status_code}); "
                                f"check the credentials in the environment")
        if not resp.ok:
            raise DownloadError(f"CDSE token endpoint {redact(self.token_url)} answered HTTP {resp.status_code}")
        body = resp.json()
        self._access = str(body["access_token"])
        self._expires_at = self._clock() + max(0.0, float(body.get("expires_in", 600)) - 30.0)
        if body.get("refresh_token"):
            self._refresh = str(body["refresh_token"])
        return self._access


class CdseProvider(StacProvider):
    name: ClassVar[str] = "cdse"
    default_url: ClassVar[str] = DEFAULT_STAC_URL
    default_collection: ClassVar[str | None] = "sentinel-2-l2a"
    aliases: ClassVar[Mapping[str, str]] = BAND_ALIASES["cdse"]

    def __init__(self, *args: Any, trusted_hosts: Sequence[str] = (), download_url: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.token_url = self.source.token_url or DEFAULT_TOKEN_URL
        self.odata_url = (self.source.odata_url or DEFAULT_ODATA_URL).rstrip("/")
        if download_url is None:
            download_url = DEFAULT_DOWNLOAD_URL if self.source.odata_url is None else self.odata_url
        self.download_url = download_url.rstrip("/")
        self._trusted = {h for h in trusted_hosts} | {
            urlsplit(u).hostname or "" for u in (self.token_url, self.odata_url, self.download_url)}
        self._tokens: CdseTokens | None = None

    # -- credentials ----------------------------------------------------------------------

    def tokens(self) -> CdseTokens:
        if self._tokens is None:
            self._tokens = CdseTokens(
                self.token_url, self.session,
                username=self.env_value(self.source.username_env or "CDSE_USERNAME"),
                password=self.env_value(self.source.password_env or "CDSE_PASSWORD"),
                refresh_token=self.env_value(self.source.token_env or "CDSE_REFRESH_TOKEN"),
            )
        return self._tokens

    def secrets(self) -> tuple[str, ...]:
        values = [self.env_value(n) for n in (self.source.password_env or "CDSE_PASSWORD",
                                               self.source.token_env or "CDSE_REFRESH_TOKEN",
                                               S3_SECRET_ENV)]
        own = self._tokens.secrets() if self._tokens else ()
        return tuple(v for v in values if v) + own

    def gdal_options(self) -> dict[str, str]:
        opts = {"AWS_S3_ENDPOINT": S3_ENDPOINT, "AWS_HTTPS": "YES", "AWS_VIRTUAL_HOSTING": "FALSE"}
        if not (self.env_value(S3_KEY_ENV) and self.env_value(S3_SECRET_ENV)):
            opts["AWS_NO_SIGN_REQUEST"] = "YES"
        return opts

    def rasterio_session(self) -> Any:
        """The CDSE S3 keys as a rasterio session (rasterio refuses keys as plain GDAL
        options; this hands them to GDAL without boto3 and without any log line)."""
        key, secret = self.env_value(S3_KEY_ENV), self.env_value(S3_SECRET_ENV)
        if not (key and secret):
            return None
        from rasterio.session import AWSSession

        return AWSSession(session=_StaticAwsCredentials(key, secret), endpoint_url=S3_ENDPOINT)

    # -- OData search ---------------------------------------------------------------------

    def search_products(
        self,
        aoi: BaseGeometry,
        start: dt.date,
        end: dt.date,
        *,
        params: SearchParams,
        product_type: str = "S2MSI2A",
        collection: str = "SENTINEL-2",
    ) -> list[dict[str, Any]]:
        """OData products intersecting ``aoi`` (EPSG:4326), sensed ``start``..``end`` inclusive."""
        cc = params.max_cloud_frac * 100.0
        flt = (
            f"Collection/Name eq '{collection}'"
            f" and OData.CSC.Intersects(area=geography'SRID=4326;{aoi.wkt}')"
            f" and ContentDate/Start ge {start.isoformat()}T00:00:00.000Z"
            f" and ContentDate/Start le {end.isoformat()}T23:59:59.999Z"
            f" and Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType'"
            f" and att/OData.CSC.StringAttribute/Value eq '{product_type}')"
            f" and Attributes/OData.CSC.DoubleAttribute/any(att:att/Name eq 'cloudCover'"
            f" and att/OData.CSC.DoubleAttribute/Value le {cc:.2f})"
        )
        url: str | None = f"{self.odata_url}/Products"
        query: dict[str, Any] | None = {"$filter": flt, "$orderby": "ContentDate/Start asc",
                                        "$top": min(1000, params.max_items), "$expand": "Attributes"}
        out: list[dict[str, Any]] = []
        while url and len(out) < params.max_items:
            try:
                resp = self.session.get(url, params=query)
                resp.raise_for_status()
                page = resp.json()
            except Exception as exc:  # requests / JSON errors: one line naming the endpoint
                raise SearchError(self.safe_message(
                    f"cannot search Copernicus OData {redact(self.odata_url)}: {describe_error(exc)}")) from None
            out.extend(page.get("value", []))
            url, query = page.get("@odata.nextLink"), None
        return out[: params.max_items]

    def product_item(self, product: Mapping[str, Any]) -> pystac.Item:
        """A pystac item for an OData product, with one ``product`` asset (the zipped SAFE)."""
        footprint = product.get("GeoFootprint")
        if footprint is None and product.get("Footprint"):
            wkt = str(product["Footprint"]).split(";", 1)[-1].rstrip("'")
            footprint = shapely.geometry.mapping(shapely.wkt.loads(wkt))
        geom = shapely.geometry.shape(footprint) if footprint else None
        start = str(product.get("ContentDate", {}).get("Start", ""))
        when = dt.datetime.fromisoformat(start.replace("Z", "+00:00")) if start else None
        attrs = {a.get("Name"): a.get("Value") for a in product.get("Attributes", []) or []}
        props: dict[str, Any] = {"s2:product_uri": product.get("Name"), "cdse:id": product.get("Id")}
        if "cloudCover" in attrs:
            props["eo:cloud_cover"] = float(attrs["cloudCover"])
        if "processingBaseline" in attrs:
            props["s2:processing_baseline"] = str(attrs["processingBaseline"])
        name = str(product.get("Name", product.get("Id")))
        item = pystac.Item(name.removesuffix(".SAFE"), footprint,
                           list(geom.bounds) if geom is not None else None, when, props)
        item.add_asset("product", pystac.Asset(self.product_url(product), media_type="application/zip",
                                               roles=["data", "archive"],
                                               extra_fields={"cdse:product": dict(product)}))
        return item

    def product_url(self, product: Mapping[str, Any]) -> str:
        return f"{self.download_url}/Products({product['Id']})/$value"

    # -- download -------------------------------------------------------------------------

    def download_product(self, product: Mapping[str, Any], target_dir: str | Path) -> Path:
        """Stream the zipped product into ``target_dir``; resume, verify, rename. Returns the zip.

        Raises
        ------
        ChecksumError
            The finished file does not match the published checksum (after a fresh retry).
        DownloadError
            The transfer kept failing, or no checksum is published.
        """
        target = Path(target_dir)
        target.mkdir(parents=True, exist_ok=True)
        name = str(product.get("Name") or product["Id"])
        final = target / f"{name.removesuffix('.zip')}.zip"
        if final.is_file():
            return final  # renamed into place only after verification
        algorithm, expected = _pick_checksum(product)
        size = int(product.get("ContentLength") or 0)
        part = final.with_name(final.name + ".part")
        url = self.product_url(product)
        attempts, restarts = 0, 0
        while True:
            try:
                self._fetch_into(url, part, size)
            except _TransientDownload as exc:
                attempts += 1
                if attempts > self.policy.max_retries:
                    raise DownloadError(self.safe_message(
                        f"download of {name} kept failing ({exc}); re-run to resume from "
                        f"{part.stat().st_size if part.exists() else 0} bytes")) from None
                time.sleep(self.policy.wait_s(attempts, exc.retry_after_s))
                continue
            got = file_checksum(part, algorithm)
            if got.lower() == expected.lower():
                break
            part.unlink(missing_ok=True)
            restarts += 1
            if restarts > 1:
                raise ChecksumError(f"{name}: {algorithm} checksum mismatch after a fresh download "
                                    f"(got {got}, catalogue says {expected})")
            log.warning("%s: %s checksum mismatch; downloading again from scratch", name, algorithm)
        os.replace(part, final)
        return final

    def materialise(self, item: pystac.Item, *, workdir: Path, bands: Sequence[str]) -> pystac.Item:
        """Download and unpack an OData product item; band assets become local files."""
        if "product" not in item.assets or all(b in item.assets for b in bands):
            return item
        product = item.assets["product"].extra_fields.get("cdse:product")
        if not product:
            return item
        archive = self.download_product(product, workdir / "downloads")
        safe_dir = safe_extract(archive, workdir / "products")
        return item_from_safe(safe_dir, bands=bands, template=item)

    def _fetch_into(self, url: str, part: Path, size: int) -> None:
        have = part.stat().st_size if part.exists() else 0
        if size and have > size:
            part.unlink()
            have = 0
        if size and have == size:
            return
        headers = {"Range": f"bytes={have}-"} if have else {}
        resp = self._authorised_get(url, headers=headers)
        with resp:
            if resp.status_code == 416 and have:
                part.unlink(missing_ok=True)  # our partial file is not a prefix of theirs
                raise _TransientDownload("range not satisfiable; restarting")
            if resp.status_code in RETRY_STATUSES:
                raise _TransientDownload(f"HTTP {resp.status_code}",
                                         retry_after_s=_retry_after(resp))
            if resp.status_code not in (200, 206):
                raise DownloadError(f"download of {redact(url)} answered HTTP {resp.status_code}")
            mode = "ab"
            if resp.status_code == 200:
                mode = "wb"  # the server ignored the Range: its body is the whole file
            elif not _range_starts_at(resp, have):
                part.unlink(missing_ok=True)
                raise _TransientDownload("server answered another byte range; restarting")
            try:
                with open(part, mode) as fh:
                    try:
                        # read1: every byte that arrived is written before a dropped
                        # connection raises, so the next attempt resumes right after it
                        # (iter_content would lose the partial chunk).
                        while chunk := resp.raw.read1(_CHUNK):
                            fh.write(chunk)
                    finally:
                        fh.flush()
                        os.fsync(fh.fileno())
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    urllib3.exceptions.HTTPError, OSError) as exc:
                raise _TransientDownload(describe_error(exc)) from None
        if size and part.stat().st_size < size:
            raise _TransientDownload(f"got {part.stat().st_size} of {size} bytes")

    def _authorised_get(self, url: str, *, headers: Mapping[str, str]) -> requests.Response:
        """GET with the bearer token; redirects followed by hand; one re-login on 401."""
        for relogin in (False, True):
            token = self.tokens().access_token()
            target, hops = url, 0
            while True:
                send = dict(headers)
                if self._is_trusted(target):
                    send["Authorization"] = f"Bearer {token}"
                try:
                    resp = self.session.get(target, headers=send, stream=True, allow_redirects=False)
                except (requests.ConnectionError, requests.Timeout) as exc:
                    raise _TransientDownload(describe_error(exc)) from None
                if resp.is_redirect and hops < 5:
                    target = urljoin(target, resp.headers["Location"])
                    resp.close()
                    hops += 1
                    continue
                break
            if resp.status_code == 401 and not relogin:
                resp.close()
                self.tokens().invalidate()
                continue
            if resp.status_code in (401, 403):
                resp.close()
                raise DownloadError(f"Copernicus Data Space refused the download of {redact(url)} "
                                    f"(HTTP {resp.status_code}); check the account's credentials")
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def _is_trusted(self, url: str) -> bool:
        host = urlsplit(url).hostname or ""
        return host in self._trusted or host.endswith(TRUSTED_SUFFIXES)

    # -- sources check --------------------------------------------------------------------

    def check(self) -> list[SourceCheck]:
        checks = super().check()
        checks.append(self.probe(f"{self.odata_url}/Products", what="OData catalogue",
                                      params={"$top": 1}))
        try:
            tokens = self.tokens()
        except ConfigError as exc:
            checks.append(SourceCheck(self.name, redact(self.token_url), False, None, str(exc)))
            return checks
        try:
            tokens.invalidate()
            tokens.access_token()
            checks.append(SourceCheck(self.name, redact(self.token_url), True, True, "token issued"))
        except DownloadError as exc:
            refused = "refused" in str(exc)
            checks.append(SourceCheck(self.name, redact(self.token_url), refused,
                                      False if refused else None, self.safe_message(str(exc))))
        return checks


class _StaticAwsCredentials:
    """The two methods of a boto3 session that ``rasterio.session.AWSSession`` uses."""

    region_name = "default"

    def __init__(self, key: str, secret: str) -> None:
        frozen = types.SimpleNamespace(access_key=key, secret_key=secret, token=None)
        self._creds = types.SimpleNamespace(get_frozen_credentials=lambda: frozen)

    def get_credentials(self) -> Any:
        return self._creds

    def __repr__(self) -> str:  # never show the secret
        return "<CDSE S3 credentials>"


class _TransientDownload(Exception):
    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def _pick_checksum(product: Mapping[str, Any]) -> tuple[str, str]:
    sums = product.get("Checksum") or []
    if isinstance(sums, Mapping):
        sums = [sums]
    by_algo = {str(c.get("Algorithm", "")).upper(): str(c.get("Value", "")) for c in sums if c.get("Value")}
    try:
        import blake3  # noqa: F401  (optional; checking for it, not using it here)
        have_blake3 = True
    except ImportError:
        have_blake3 = False
    for algo in (("BLAKE3",) if have_blake3 else ()) + ("MD5", "SHA3-256"):
        if by_algo.get(algo):
            return algo, by_algo[algo]
    raise DownloadError(f"product {product.get('Name', product.get('Id'))}: the catalogue publishes "
                        f"no usable checksum ({sorted(by_algo) or 'none'}); refusing an unverifiable download")


def _range_starts_at(resp: requests.Response, have: int) -> bool:
    cr = resp.headers.get("Content-Range", "")
    try:
        return int(cr.split()[1].split("-")[0]) == have
    except (IndexError, ValueError):
        return False


def _retry_after(resp: requests.Response) -> float | None:
    return parse_retry_after(resp.headers.get("Retry-After"))
