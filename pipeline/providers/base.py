"""The provider interface, and what every provider shares.

A provider turns an AOI and a period into :class:`pystac.Item` objects whose band
assets use Earth Search names (``blue green red nir nir08 swir16 swir22 scl``) and
carry ``raster:bands`` scale/offset/nodata decided by :mod:`pipeline.harmonise`. It
also knows how its assets are read: :meth:`Provider.sign` (URL signing),
:meth:`Provider.gdal_options` (unsigned S3, endpoints, credentials) and
:meth:`Provider.materialise` (products that must be downloaded whole, such as SAFE
archives from DHuS or the Copernicus OData service, become local band files).

Adding a provider is one module: subclass :class:`StacProvider` (or
:class:`BaseProvider`), set ``name``, ``default_url`` and ``aliases``, override what
differs, and register it in :mod:`pipeline.providers`.

Credentials come from environment variables whose NAMES the config holds
(:class:`~pipeline.config.SourceParams` ``*_env``); :meth:`BaseProvider.secrets`
lists their values so error messages can be scrubbed, and nothing here logs a
header, a token or a signed URL.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import pystac
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from ..config import SearchParams, SourceParams
from ..errors import MissingBandError, SearchError
from ..harmonise import harmonise_item
from ..http import RetryingSession, RetryPolicy, describe_error, make_session, redact, scrub
from ..types import BAND_ALIASES

__all__ = [
    "BaseProvider",
    "Provider",
    "SourceCheck",
    "StacProvider",
    "normalise_item",
]

log = logging.getLogger("pipeline.providers")

#: :meth:`StacProvider.lacks_collection` lists at most this many collections of an API (one
#: page or a few); an API with more is not judged.
MAX_LISTED_COLLECTIONS = 500


@dataclass(frozen=True)
class SourceCheck:
    """One line of ``python -m pipeline sources check``: never holds a secret."""

    provider: str
    endpoint: str
    """What was checked (a redacted URL or a path)."""
    reachable: bool
    authorised: bool | None
    """True/False when credentials were tried; None when the endpoint is anonymous."""
    detail: str

    @property
    def ok(self) -> bool:
        return self.reachable and self.authorised is not False


@runtime_checkable
class Provider(Protocol):
    """What :func:`pipeline.search.search_items` and :mod:`pipeline.cache` need."""

    name: str

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
        """Items intersecting ``aoi`` (EPSG:4326) between ``start`` and ``end`` (inclusive),
        normalised to Earth Search band names with ``raster:bands`` scale/offset/nodata."""
        ...

    def sign(self, href: str) -> str:
        """The href to actually open (signed when the provider needs it). Never log it."""
        ...

    def gdal_options(self) -> dict[str, str]:
        """GDAL configuration options for reading this provider's assets (no secrets:
        rasterio refuses credentials as plain options; see :meth:`rasterio_session`)."""
        ...

    def rasterio_session(self) -> Any:
        """A ``rasterio.session.Session`` carrying credentials, or None."""
        ...

    def materialise(self, item: pystac.Item, *, workdir: Path, bands: Sequence[str]) -> pystac.Item:
        """Make ``bands`` of ``item`` readable (download whole products if needed)."""
        ...

    def check(self) -> list[SourceCheck]:
        """Is the provider reachable, and are the credentials accepted?"""
        ...

    def secrets(self) -> tuple[str, ...]:
        """Credential values in use (to scrub from messages); never print them."""
        ...

    def lacks_collection(self, collection: str) -> tuple[str, ...] | None:
        """The ids of the collections the source has, when it answers that ``collection`` is not
        one of them; ``None`` when it has it or cannot say (unreachable, an error, no listing)."""
        ...


class BaseProvider:
    """Defaults: anonymous, unsigned, nothing to materialise."""

    name: ClassVar[str] = "base"
    default_url: ClassVar[str] = ""
    default_collection: ClassVar[str | None] = None
    #: Provider asset keys -> Earth Search band names (merged with ``source.naming``'s map).
    aliases: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        source: SourceParams,
        *,
        env: Mapping[str, str] | None = None,
        session: RetryingSession | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.source = source
        # An unset URL means Earth Search's (the config default): another provider uses its own.
        explicit = "url" in source.model_fields_set
        self.url = source.url if explicit or not self.default_url else self.default_url
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.policy = policy or RetryPolicy(max_retries=source.max_retries, timeout_s=source.timeout_s)
        self.session = session or make_session(self.policy)

    # -- interface defaults --------------------------------------------------------------

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
        raise NotImplementedError(f"{type(self).__name__} does not search")

    def sign(self, href: str) -> str:
        return href

    def gdal_options(self) -> dict[str, str]:
        return {}

    def rasterio_session(self) -> Any:
        return None

    def materialise(self, item: pystac.Item, *, workdir: Path, bands: Sequence[str]) -> pystac.Item:
        return item

    def secrets(self) -> tuple[str, ...]:
        return ()

    def check(self) -> list[SourceCheck]:
        return [self.probe(self.url, what="catalogue")]

    def lacks_collection(self, collection: str) -> tuple[str, ...] | None:
        return None

    # -- helpers -------------------------------------------------------------------------

    @property
    def collection(self) -> str:
        """``source.collection`` when set, else this provider's default (the config's
        default, ``sentinel-2-c1-l2a``, means nothing to DE Africa)."""
        if "collection" in self.source.model_fields_set or not self.default_collection:
            return self.source.collection
        return self.default_collection

    def alias_map(self) -> dict[str, str]:
        return {**BAND_ALIASES.get(self.source.naming, {}), **self.aliases}

    def normalise(self, items: Sequence[pystac.Item], *, bands: Sequence[str]) -> list[pystac.Item]:
        return [normalise_item(it, aliases=self.alias_map(), bands=bands) for it in items]

    def env_value(self, name: str | None) -> str | None:
        """Value of environment variable ``name`` (None when unset or empty)."""
        if not name:
            return None
        value = self.env.get(name)
        return value or None

    def safe_message(self, text: str) -> str:
        """``text`` with every credential value replaced by ``***``."""
        return scrub(text, self.secrets())

    def probe(self, url: str, *, what: str, **kwargs: Any) -> SourceCheck:
        """GET ``url`` once (with the retry policy) and say whether it answered."""
        try:
            resp = self.session.get(url, timeout=min(self.policy.timeout_s, 15), **kwargs)
        except Exception as exc:  # requests raises many types; report, never crash a check
            return SourceCheck(self.name, redact(url), False, None,
                               self.safe_message(f"{what} unreachable: {describe_error(exc)}"))
        if resp.status_code in (401, 403):
            return SourceCheck(self.name, redact(url), True, False, f"{what} refused: HTTP {resp.status_code}")
        if not resp.ok:
            return SourceCheck(self.name, redact(url), False, None, f"{what} answered HTTP {resp.status_code}")
        return SourceCheck(self.name, redact(url), True, None, f"{what} answered HTTP {resp.status_code}")


class StacProvider(BaseProvider):
    """A STAC API searched with :mod:`pystac_client` through the retrying session."""

    name: ClassVar[str] = "stac"

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
        coll = collection or self.collection
        raw = self._search_api(aoi, start, end, params=params, collection=coll,
                               cloud_filter=self.has_cloud_cover(coll))
        return self.normalise(raw, bands=bands)

    def has_cloud_cover(self, collection: str) -> bool:
        """Whether items of ``collection`` carry ``eo:cloud_cover`` (radar does not)."""
        return not any(k in collection.lower() for k in ("s1", "sentinel-1", "rtc", "grd"))

    def stac_io(self, session: RetryingSession | None = None) -> Any:
        from pystac_client.stac_api_io import StacApiIO

        io = StacApiIO(timeout=self.policy.timeout_s, max_retries=None)
        io.session = session or self.session  # one retry policy for every request
        return io

    def lacks_collection(self, collection: str) -> tuple[str, ...] | None:
        """Asks ``/collections/{collection}`` once, without retries (a fault means "cannot say":
        the search then reports the source as it does); on 404, lists the API's collections.
        An API that does not declare the STAC API *Collections* conformance class, or lists
        more than :data:`MAX_LISTED_COLLECTIONS`, cannot say."""
        from pystac_client import Client
        from pystac_client.conformance import ConformanceClasses

        quick = make_session(RetryPolicy(max_retries=0, timeout_s=min(self.policy.timeout_s, 15.0)))
        quick.headers.update(self.session.headers)  # what the provider's own session sends
        quick.auth = self.session.auth
        try:
            client = Client.open(self.url, stac_io=self.stac_io(quick))
            if not client.conforms_to(ConformanceClasses.COLLECTIONS):
                return None  # pystac-client would walk the catalog instead, with warnings
            if client.get_collection(collection) is not None:
                return None
            listed = [str(c.id) for c in itertools.islice(client.get_collections(), MAX_LISTED_COLLECTIONS + 1)]
        except Exception as exc:  # network, HTTP or pystac-client errors: the search will say what
            log.debug("collection check of %s skipped: %s", redact(self.url), self.safe_message(describe_error(exc)))
            return None
        finally:
            quick.close()
        if not listed or len(listed) > MAX_LISTED_COLLECTIONS or collection in listed:
            return None
        return tuple(sorted(listed))

    def _search_api(
        self,
        aoi: BaseGeometry,
        start: dt.date,
        end: dt.date,
        *,
        params: SearchParams,
        collection: str,
        cloud_filter: bool,
    ) -> list[pystac.Item]:
        from pystac_client import Client

        try:
            client = Client.open(self.url, stac_io=self.stac_io())
            kwargs: dict[str, Any] = {}
            if cloud_filter:
                kwargs["query"] = {"eo:cloud_cover": {"lte": params.max_cloud_frac * 100.0}}
            search = client.search(
                collections=[collection],
                intersects=shapely.geometry.mapping(aoi),
                datetime=f"{start.isoformat()}T00:00:00Z/{end.isoformat()}T23:59:59Z",
                max_items=params.max_items,
                limit=min(100, params.max_items),
                **kwargs,
            )
            return list(search.items())
        except SearchError:
            raise
        except Exception as exc:  # requests / pystac_client errors: one line naming the endpoint
            raise SearchError(self.safe_message(
                f"cannot reach imagery source {redact(self.url)}: {describe_error(exc)}")) from None


def normalise_item(
    item: pystac.Item, *, aliases: Mapping[str, str], bands: Sequence[str] = ()
) -> pystac.Item:
    """A copy of ``item`` with assets renamed by ``aliases`` and ``bands`` harmonised.

    Assets already named the Earth Search way are kept; an alias never overwrites an
    asset that already has the target name.

    Raises
    ------
    MissingBandError
        One of ``bands`` is not there under any known name.
    """
    out = item.clone()
    renamed: dict[str, pystac.Asset] = {}
    for key, asset in out.assets.items():
        target = aliases.get(key, key)
        if target in renamed and target != key:
            continue
        renamed[target] = asset
    out.assets = renamed
    for asset in out.assets.values():
        asset.owner = out
    for band in bands:
        if band not in out.assets:
            known = ", ".join(sorted(renamed)) or "none"
            raise MissingBandError(
                f"item {item.id}: band {band!r} missing (assets: {known}); "
                f"set source.naming to the provider's scheme or drop the band from acquire.bands"
            )
    return harmonise_item(out, bands=bands)
