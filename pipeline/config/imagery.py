"""Where the imagery comes from and how it is read, masked and composited."""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..types import DEFAULT_BANDS, S2_BANDS, ProviderNaming
from ._base import _DESIGN, _JUDGEMENT, _param, _Section

_COLLECTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def check_collection_id(value: str) -> str:
    """``value`` when it reads as a STAC collection id (letters, digits, ``.``, ``_``, ``-``, ``:``;
    at most 128): it goes into the API's URL (``/collections/{id}``), where ``/`` or ``?`` would
    name another resource."""
    if not _COLLECTION_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a collection id; give one such as sentinel-2-c1-l2a (letters, digits, "
                         "'.', '_', '-' or ':')")
    return value


class SourceParams(_Section):
    url: str = "https://earth-search.aws.element84.com/v1"
    """STAC API root URL, or a path / ``file://`` URL to a static ``catalog.json`` or
    ``collection.json``. Overridden by ``--source``."""
    collection: str = "sentinel-2-c1-l2a"
    """Collection id to search (Earth Search v1 Sentinel-2 L2A Collection 1)."""
    naming: ProviderNaming = "earth-search"
    """Asset naming scheme of the provider, mapped onto Earth Search band names."""
    timeout_s: float = Field(default=30.0, gt=0)
    """Seconds to wait for one HTTP answer before the attempt counts as failed."""
    max_retries: int = Field(default=3, ge=0, le=10)
    """Retries (with exponential back-off) of a failed HTTP request to the STAC API."""
    provider: Literal[
        "auto", "earth-search", "deafrica", "cdse", "planetary-computer", "dhus", "static", "stac"
    ] = "auto"
    """Imagery provider adapter (``pipeline/providers/``): ``auto`` picks it from ``url``
    (Earth Search, Digital Earth Africa, Copernicus Data Space, Planetary Computer, a local
    catalog; any other URL is a generic STAC API)."""
    extra_collections: tuple[str, ...] = ()
    """Further collections of the same provider to search on request (e.g. ``s1_rtc``)."""
    username_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    """NAME of the environment variable holding the user name (never the value);
    ``None``: the provider's default (``CDSE_USERNAME``, ``DHUS_USERNAME``)."""
    password_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    """NAME of the environment variable holding the password (``CDSE_PASSWORD``, ...)."""
    token_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    """NAME of the environment variable holding a token: a Copernicus refresh token
    (``CDSE_REFRESH_TOKEN``) or a Planetary Computer subscription key
    (``PC_SDK_SUBSCRIPTION_KEY``)."""
    token_url: str | None = None
    """Token endpoint: Copernicus identity service, or Planetary Computer SAS endpoint;
    ``None``: the provider's public endpoint."""
    odata_url: str | None = None
    """Copernicus OData catalogue root (``.../odata/v1``); ``None``: the public one."""

    @field_validator("collection", "extra_collections")
    @classmethod
    def _collection_ids(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        return check_collection_id(value) if isinstance(value, str) else tuple(map(check_collection_id, value))

    @field_validator("url")
    @classmethod
    def _url_or_path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty; give an http(s) STAC API root or the path of a static catalog.json")
        try:
            scheme = urllib.parse.urlsplit(value).scheme.lower()
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a URL ({exc}); give an http(s) STAC API root or the path of a "
                             "static catalog.json") from None
        if scheme not in ("", "file", "http", "https"):
            raise ValueError(f"{value!r}: a {scheme}:// source is not supported; give an http(s) STAC API root "
                             "or the path of a static catalog.json")
        return value


class PeriodParams(_Section):
    start: dt.date | None = None
    """First day of the monitoring period (inclusive). ``None``: ``end - lookback_days``."""
    end: dt.date | None = None
    """Last day of the monitoring period (inclusive). ``None``: today (UTC)."""
    lookback_days: int = Field(default=365, ge=30, le=3660)
    """Length of the monitoring period in days when ``start`` is not given (365: the last
    12 months, the KP reporting year)."""
    period_months: Literal[1, 2, 3, 4, 6, 12] = 3
    """Length of one reporting period in months (3: quarterly, as WGM reports)."""

    @model_validator(mode="after")
    def _ordered(self) -> PeriodParams:
        if self.start and self.end and self.start >= self.end:
            raise ValueError("start must be before end")
        return self

    def resolved(self, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
        """Return ``(start, end)`` with the defaults filled in."""
        end = self.end or (today or dt.datetime.now(dt.UTC).date())
        start = self.start or end - dt.timedelta(days=self.lookback_days)
        return start, end


class SearchParams(_Section):
    max_cloud_frac: float = Field(default=0.8, ge=0, le=1)
    """Skip scenes whose item-level ``eo:cloud_cover`` exceeds this fraction (0..1).
    Kept high on purpose: partly cloudy scenes still add clear pixels after SCL masking."""
    max_items: int = Field(default=2000, ge=1)
    """Upper bound on items per AOI and run (protects against runaway searches)."""
    warn_uncovered_frac: float = Field(default=0.01, ge=0.01, le=1)
    """Share of an AOI's area (0.01..1) outside the footprint of every scene used from which the
    run warns (log line) and the bulletin says that no imagery covers that part, where no site
    can be detected. 0.01: a sliver along the AOI's edge is not worth a sentence; a tile edge
    through the AOI is (and the sentence's whole per cent is then never 0)."""


class AcquireParams(_Section):
    bands: tuple[str, ...] = DEFAULT_BANDS
    """Bands to load, in Earth Search naming."""
    resolution_m: float = Field(default=10.0, ge=5, le=1000)
    """Output pixel size in metres on the AOI's UTM grid (10 m: Sentinel-2 VNIR native; at least
    5 m: finer grids only resample 10 m pixels, at the square of the cost)."""
    margin_m: float = Field(default=100.0, ge=0, le=10_000)
    """Margin around the AOI bounding box read in addition (metres, at most 10 km), so that
    neighbourhood filters see real pixels at the AOI edge."""
    chunk_px: int = Field(default=1024, ge=64)
    """Spatial chunk size (pixels) of the lazy scene cube."""
    fetch_threads: int = Field(default=4, ge=1, le=64)
    """Items whose AOI windows one AOI fetches at the same time (threads of the client; each
    reads its item's bands one after another). Fetching is latency-bound on a remote source:
    with 20 ms a request (loopback server), 8 AOIs fetched one after another took 219 s at 4,
    160 s at 8 and 154 s at 16, before a first read used GDAL's file cache (then 154 s at 4;
    ``docs/scaling.md``, "Fetch concurrency over a slow store"). With several AOIs in flight
    (``dask.aois_in_flight``) the threads multiply. Changes no value (not part of the state's
    digests)."""
    max_unreadable_items: int = Field(default=3, ge=0, le=100)
    """Items an AOI skips when an image of theirs cannot be decoded during the computation (a
    damaged tile that passed the checks of the fetch, in a local archive or the window cache):
    the AOI is computed again without the item, which is listed with the reason in
    ``manifest.json`` (``skipped_items``), as the items that could not be fetched are. One more
    and the AOI fails, naming the file. 0: fail at the first. Each skip computes the AOI again
    (only its new dates, with incremental state). Changes no value of the other items (not
    part of the state's digests)."""

    @field_validator("bands")
    @classmethod
    def _known_bands(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [b for b in v if b not in S2_BANDS]
        if unknown:
            raise ValueError(
                f"unknown band(s) {', '.join(map(repr, unknown))}; use Earth Search names: {', '.join(S2_BANDS)}"
            )
        return v


class PreprocessParams(_Section):
    scl_mask_classes: tuple[int, ...] = _param(
        (0, 1, 3, 8, 9, 10, 11), unit="SCL class codes", source="ESA Sen2Cor product specification"
    )
    """SCL classes treated as invalid: no data, defective, cloud shadow, cloud medium and
    high probability, thin cirrus, snow (ESA Sen2Cor product specification)."""
    cloud_buffer_px: int = _param(1, unit="pixels", source=_DESIGN, ge=0, le=20)
    """Dilation of the SCL cloud/shadow mask in pixels, to catch cloud edges Sen2Cor misses."""
    min_valid_obs: int = _param(1, unit="observations", source=_DESIGN, ge=1)
    """A composite pixel needs at least this many valid observations in its period."""


ThresholdMethod = Literal["fixed", "otsu"]
CompositeMethod = Literal["median", "geomedian"]
CompositeProduct = Literal["semiannual", "dry_season"]


class CompositesParams(_Section):
    """Named cloud-free composites (``composites`` section; :mod:`pipeline.composites`)."""

    products: tuple[CompositeProduct, ...] = _param(("semiannual", "dry_season"), unit="product names", source=_DESIGN)
    """Composite products made for every AOI over the searched span (baseline and monitoring
    period): ``semiannual`` (January-June and July-December, the windows of Digital Earth
    Africa's semiannual GeoMAD) and ``dry_season`` (``dry_season_months`` of each year, the
    clearest and least vegetated views of bare ground). Empty: none."""
    method: CompositeMethod = _param("geomedian", unit="method", source="Roberts et al. 2017")
    """``geomedian``: per-pixel geometric median of the band vectors over time (Roberts et al.
    2017, IEEE TGRS 55(11); the ``geomad`` implementation by Geoscience
    Australia that Digital Earth Australia and Africa use for their GeoMAD products). It keeps
    the band relationships of a real observation, so indices of the composite are consistent;
    ``median``: per-band median (the bands of one pixel may come from different dates). Used
    for the named products and for the per-period composites behind the bulletin's map and
    before/after views."""
    geomedian_eps: float = _param(1e-4, unit="reflectance (0–1)", source="geomad default", gt=0, le=0.01)
    """Stopping rule of the geometric median (``method: geomedian``): iterate until the estimate
    moves less than this (reflectance; 1e-4 is one Sentinel-2 DN) or ``geomedian_max_iters``
    is reached. The ``geomad`` package's own default."""
    geomedian_max_iters: int = _param(10_000, unit="iterations", source="geomad default", ge=1)
    """Iteration cap of the geometric median (see ``geomedian_eps``); the ``geomad`` package's
    own default, reached only by pixels whose estimate keeps moving."""
    dry_season_months: tuple[int, ...] = _param((11, 12, 1, 2, 3), unit="calendar months (1–12)", source=_JUDGEMENT)
    """Calendar months (1-12) of the dry season. Default: November-March, the harmattan dry
    season of the Sudanian savanna of northern Côte d'Ivoire (Séguéla, Tortiya), from general
    climatology (e.g. the World Bank Climate Change Knowledge Portal country profile):
    judgement, not checked against rainfall records of the fields. Southern African AOIs set
    their own in the AOI file (Marange, Zimbabwe: May-October). A season that spans the new
    year is one window (November to the following March)."""
    bands: tuple[str, ...] | None = _param(None, unit="asset names", source=_DESIGN)
    """Reflectance bands of the composites (Earth Search naming); ``None``: every optical band
    loaded (``acquire.bands`` without ``scl``)."""
    min_valid_obs: int = _param(3, unit="observations", source=_DESIGN, ge=1)
    """A composite pixel needs at least this many clear observations in its window
    (otherwise nodata): fewer than three cannot outvote one residual cloud or shadow."""
    write: bool = _param(True, unit="on / off", source=_DESIGN)
    """Write each composite as a Cloud-Optimised GeoTIFF under ``composites/`` in the output
    folder (int16 reflectance x 10 000 plus a clear-observation count band)."""

    @field_validator("dry_season_months")
    @classmethod
    def _months(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or any(not 1 <= m <= 12 for m in v) or len(set(v)) != len(v):
            raise ValueError("dry_season_months must be distinct calendar months 1-12, e.g. [11, 12, 1, 2, 3]")
        return v
