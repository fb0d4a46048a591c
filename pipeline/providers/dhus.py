"""DHuS-protocol hubs (national Sentinel mirrors) through :mod:`sentinelsat`.

The Copernicus Open Access Hub closed in 2023; several national mirrors (collaborative
ground segments) still run the Data Hub Software. ``sentinelsat.SentinelAPI(user,
password, api_url)`` queries their OpenSearch endpoint (``/search``) and downloads
products from OData (``/odata/v1/Products('<uuid>')/$value``) with resume (``Range``)
and MD5 verification; its requests go through this package's retrying session.

Products are zipped SAFE folders: :meth:`DhusProvider.materialise` downloads one,
unpacks it with :func:`pipeline.providers.safe.safe_extract` (path checks, nothing
written outside the cache) and returns an item whose band assets are the local
JPEG 2000 files with radiometry from the product's own ``MTD_MSIL2A.xml``.

Credentials: ``DHUS_USERNAME`` / ``DHUS_PASSWORD`` (or the names in
``source.username_env`` / ``source.password_env``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pystac
import shapely.geometry
import shapely.wkt
from shapely.geometry.base import BaseGeometry

from ..config import SearchParams
from ..errors import ConfigError, DownloadError, SearchError
from ..http import describe_error, redact
from .base import BaseProvider, SourceCheck
from .safe import item_from_safe, safe_extract

__all__ = ["DhusProvider"]

log = logging.getLogger("pipeline.providers")


class DhusProvider(BaseProvider):
    name: ClassVar[str] = "dhus"
    default_collection: ClassVar[str | None] = "S2MSI2A"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._api: Any = None

    @property
    def product_type(self) -> str:
        coll = self.source.collection
        return coll if coll.upper().startswith(("S2MSI", "GRD", "SLC")) else "S2MSI2A"

    def secrets(self) -> tuple[str, ...]:
        pw = self.env_value(self.source.password_env or "DHUS_PASSWORD")
        return (pw,) if pw else ()

    def api(self) -> Any:
        """The ``sentinelsat.SentinelAPI`` for this hub (built once, on the retrying session)."""
        if self._api is None:
            # sentinelsat is an optional extra (`pip install kp-monitor-pipeline[dhus]`): the
            # Copernicus Open Access Hub it was written for closed in 2023, and only national
            # DHuS mirrors still need it. Imported here so the rest of the package runs without.
            try:
                from sentinelsat import SentinelAPI
            except ImportError:
                raise ConfigError(
                    "source.provider 'dhus' needs the optional sentinelsat package; "
                    "install it with `pip install 'kp-monitor-pipeline[dhus]'`"
                ) from None

            user = self.env_value(self.source.username_env or "DHUS_USERNAME")
            password = self.env_value(self.source.password_env or "DHUS_PASSWORD")
            if not (user and password):
                raise ConfigError("DHuS credentials missing: set DHUS_USERNAME and DHUS_PASSWORD "
                                  "(or the variables named in source.username_env/password_env)")
            api = SentinelAPI(user, password, self.url, show_progressbars=False,
                              timeout=self.policy.timeout_s)
            self.session.auth = (user, password)
            self.session.headers["User-Agent"] = api.session.headers.get("User-Agent", "sentinelsat")
            api.session = self.session
            self._api = api
        return self._api

    def search(
        self,
        aoi: BaseGeometry,
        start: dt.date,
        end: dt.date,
        *,
        params: SearchParams,
        bands: Sequence[str] = (),
        collection: str | None = None,
    ) -> list[pystac.Item]:
        """OpenSearch query; items carry a ``product`` asset until :meth:`materialise`."""
        api = self.api()
        try:
            products = api.query(
                area=aoi.wkt,
                date=(start, end + dt.timedelta(days=1)),
                platformname="Sentinel-2",
                producttype=collection or self.product_type,
                cloudcoverpercentage=(0, params.max_cloud_frac * 100.0),
                limit=params.max_items,
            )
        except Exception as exc:  # sentinelsat / requests errors: one line, scrubbed
            raise SearchError(self.safe_message(
                f"cannot query DHuS hub {redact(self.url)}: {describe_error(exc)}")) from None
        items = [self.product_item(uuid, props) for uuid, props in products.items()]
        return [it for it in items if it.datetime is None or start <= it.datetime.date() <= end]

    def product_item(self, uuid: str, props: Mapping[str, Any]) -> pystac.Item:
        """A pystac item for an OpenSearch entry (``product`` asset = OData ``$value``)."""
        footprint = props.get("footprint") or props.get("gmlfootprint")
        geom = shapely.wkt.loads(footprint) if isinstance(footprint, str) and footprint[:1].isalpha() else None
        when = props.get("beginposition")
        if isinstance(when, dt.datetime) and when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        title = str(props.get("title", uuid))
        out: dict[str, Any] = {"dhus:uuid": uuid, "s2:product_uri": f"{title}.SAFE"}
        if "cloudcoverpercentage" in props:
            out["eo:cloud_cover"] = float(props["cloudcoverpercentage"])
        if props.get("processingbaseline"):
            out["s2:processing_baseline"] = str(props["processingbaseline"])
        item = pystac.Item(title, shapely.geometry.mapping(geom) if geom is not None else None,
                           list(geom.bounds) if geom is not None else None,
                           when if isinstance(when, dt.datetime) else None, out)
        href = str(props.get("link") or f"{self.url.rstrip('/')}/odata/v1/Products('{uuid}')/$value")
        item.add_asset("product", pystac.Asset(href, media_type="application/zip", roles=["data", "archive"]))
        return item

    def materialise(self, item: pystac.Item, *, workdir: Path, bands: Sequence[str]) -> pystac.Item:
        """Download (resumable, MD5-checked by sentinelsat), unpack safely, map the bands."""
        if "product" not in item.assets or all(b in item.assets for b in bands):
            return item
        uuid = str(item.properties.get("dhus:uuid") or item.id)
        downloads = workdir / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        try:
            info = self.api().download(uuid, directory_path=str(downloads))
        except Exception as exc:  # InvalidChecksumError, ServerError, requests errors
            raise DownloadError(self.safe_message(
                f"DHuS download of {item.id} failed: {describe_error(exc)}")) from None
        safe_dir = safe_extract(Path(info["path"]), workdir / "products")
        return item_from_safe(safe_dir, bands=bands, template=item)

    def check(self) -> list[SourceCheck]:
        try:
            api = self.api()
        except ConfigError as exc:
            return [SourceCheck(self.name, redact(self.url), False, None, str(exc))]
        url = f"{self.url.rstrip('/')}/search"
        try:
            resp = api.session.get(url, params={"q": "*", "rows": 0, "format": "json"})
        except Exception as exc:  # report, never crash a check
            return [SourceCheck(self.name, redact(url), False, None,
                                self.safe_message(f"hub unreachable: {describe_error(exc)}"))]
        if resp.status_code == 401:
            return [SourceCheck(self.name, redact(url), True, False, "hub refused the credentials (HTTP 401)")]
        ok = resp.ok
        return [SourceCheck(self.name, redact(url), ok, True if ok else None, f"hub answered HTTP {resp.status_code}")]

