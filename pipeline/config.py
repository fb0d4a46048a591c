"""Typed, frozen configuration: ``load_config(path) -> MonitorConfig``.

The YAML is parsed once (in ``run.py`` or the first notebook cell) into frozen
pydantic models. Every field has a docstring that says what it does and where its
default comes from. The fields of the sections the bulletin's methods annex lists
(:data:`THRESHOLD_SECTIONS`) also carry their unit and source as field metadata
(``json_schema_extra``; :func:`field_meta`, :func:`threshold_table`). Stage functions receive only their own
section (``params: DetectParams``) or plain keyword arguments, never the whole
config. Unknown keys are rejected, and every validation error is reported as
one line naming the YAML key (``detect.ndvi_drop_min``) and the file.

Relative paths in the YAML are resolved against the directory of the YAML file.
Secrets never live here: they come from environment variables (see
``pipeline.search``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypedDict

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo

from .errors import ConfigError
from .types import DEFAULT_BANDS, OPTICAL_BANDS, ProviderNaming

#: Sources shared by many fields (:func:`_param`): the value is reasoned in the docstring; the
#: docstring says the value is judgement / an illustrative default; the CSV rows carry theirs.
_DESIGN = "design choice"
_JUDGEMENT = "judgement, not sourced"
_ILLUSTRATIVE = "illustrative default, not sourced"
_ROW_SOURCES = "each row carries its own source (see Sources of declared figures)"


def _param(default: Any, *, unit: str, source: str, **constraints: Any) -> Any:
    """A pydantic ``Field`` carrying its unit and source (``json_schema_extra``).

    ``unit``: the unit the value is in, as the bulletin prints it (``"m²"``, ``"NDVI"``,
    ``"on / off"``); ``source``: where the default comes from (citations, ``design choice``,
    ``judgement, not sourced``). ``constraints`` go to ``Field`` (``ge``, ``le``, ...).
    """
    return Field(default=default, json_schema_extra={"unit": unit, "source": source}, **constraints)


class _Section(BaseModel):
    """Frozen, strict base: unknown keys are errors, field docstrings are kept."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    def __dask_tokenize__(self) -> str:
        # Frozen models are values: two equal configs give the same Dask token.
        return type(self).__name__ + self.model_dump_json()


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


class AcquireParams(_Section):
    bands: tuple[str, ...] = DEFAULT_BANDS
    """Bands to load, in Earth Search naming."""
    resolution_m: float = Field(default=10.0, gt=0, le=1000)
    """Output pixel size in metres on the AOI's UTM grid (10 m: Sentinel-2 VNIR native)."""
    margin_m: float = Field(default=100.0, ge=0)
    """Margin around the AOI bounding box read in addition (metres), so that
    neighbourhood filters see real pixels at the AOI edge."""
    chunk_px: int = Field(default=1024, ge=64)
    """Spatial chunk size (pixels) of the lazy scene cube."""


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


class DetectParams(_Section):
    baseline_days: int = _param(365, unit="days", source=_DESIGN, ge=30, le=1100)
    """Days before the monitoring period whose clear observations define the
    before-state. 365 covers one full wet/dry cycle of the savanna."""
    baseline_quantile: float = _param(0.9, unit="quantile (0–1)", source=_DESIGN, gt=0, lt=1)
    """Per-pixel NDVI quantile over the baseline (0.9: near the wet-season peak, robust
    to residual cloud)."""
    ndvi_drop_min: float = _param(0.25, unit="NDVI", source=_DESIGN, gt=0, le=2)
    """Minimum NDVI drop from the baseline (NDVI units). 0.25 is well above the
    inter-annual noise of savanna NDVI (~0.1) reported for West African savanna."""
    threshold_method: ThresholdMethod = _param("fixed", unit="method", source="Otsu (1979)")
    """How the NDVI-drop threshold is set: ``fixed`` uses ``ndvi_drop_min``; ``otsu`` takes the
    Otsu (1979) threshold of the pooled histogram of NDVI drops of every clear monitoring
    observation of the AOI where the baseline was vegetated, bounded to
    ``[otsu_ndvi_drop_floor, otsu_ndvi_drop_ceiling]``, and reports it in the manifest. Set
    per AOI in the AOI file (``detect: {threshold_method: otsu}``) where the savanna's
    greenness differs from the default's assumptions."""
    otsu_ndvi_drop_floor: float = _param(0.15, unit="NDVI", source=_DESIGN, gt=0, le=2)
    """Lowest NDVI-drop threshold Otsu may return (NDVI units): when pits are a tiny share of
    the AOI the histogram is unimodal and Otsu cuts into the seasonal drying of the savanna
    (0.1-0.2 NDVI between wet and dry season); 0.15 keeps it above the inter-annual noise."""
    otsu_ndvi_drop_ceiling: float = _param(0.5, unit="NDVI", source=_DESIGN, gt=0, le=2)
    """Highest NDVI-drop threshold Otsu may return (NDVI units): a savanna-to-gravel change
    drops NDVI by 0.3-0.6, so a threshold above 0.5 would miss most pits."""
    otsu_ndvi_drop_range: tuple[float, float] = _param((-1.0, 2.0), unit="NDVI", source=_DESIGN)
    """Histogram range (low, high) of the pooled NDVI drops for Otsu (NDVI units); drops outside
    it are ignored. NDVI lies in -1..1, so every loss of greenness fits; re-greening by more
    than 1 NDVI says nothing about the threshold."""
    otsu_ndvi_drop_bins: int = _param(300, unit="bins", source=_DESIGN, ge=2, le=100_000)
    """Histogram bins for Otsu (0.01 NDVI with the default range)."""
    bare_ndvi_max: float = _param(0.2, unit="NDVI", source=_DESIGN, ge=-1, le=1)
    """NDVI at or below which an observation counts as unvegetated (bare soil or water)."""
    bare_bsi_min: float = _param(0.05, unit="BSI", source="Rikimaru et al. 2002", ge=-1, le=1)
    """Bare Soil Index ((SWIR1+R)-(NIR+B))/((SWIR1+R)+(NIR+B)) at or above which an
    unvegetated observation counts as bare soil (Rikimaru et al. 2002)."""
    bright_min: float = _param(0.12, unit="reflectance (0–1)", source="Roy et al. 2005", ge=0, le=1)
    """Mean of red, NIR and SWIR1 reflectance at or above which bare soil counts as
    exposed gravel or laterite; burn scars (char) stay darker (Roy et al. 2005)."""
    water_mndwi_min: float = _param(0.2, unit="MNDWI", source="Xu 2006", ge=-1, le=1)
    """MNDWI (G-SWIR1)/(G+SWIR1) at or above which an observation counts as open water
    (Xu 2006; 0 is the nominal threshold, 0.2 leaves a margin for turbid pit water)."""
    min_confirmations: int = _param(3, unit="observations", source="pyeo", ge=1, le=20)
    """Consecutive clear observations with excavation evidence needed to confirm a change
    (pyeo-style confirmation; cloud-occluded observations neither count nor break the run)."""
    min_persistence_frac: float = _param(0.6, unit="fraction (0–1)", source=_DESIGN, ge=0, le=1)
    """Fraction of clear observations after the first change that must still show
    evidence. Pits persist; burn scars and cleared fields re-green within a season."""
    open_radius_px: int = _param(1, unit="pixels", source=_DESIGN, ge=0, le=5)
    """Radius of the morphological opening that removes speckle (pixels)."""
    regrowth_ndvi_margin: float = _param(0.12, unit="NDVI", source="USGS OFR 2018-1088", gt=0, le=1)
    """An observation after the change counts as re-vegetated when its NDVI is within this
    margin of the baseline (NDVI units). ``regrowth_min_obs`` re-vegetated clear observations
    reject the change: crops on cleared fields and savanna on burn scars come back to
    baseline greenness within a season, while abandoned pits recover only slowly (USGS OFR
    2018-1088 notes ASM sites stay visible for years)."""
    regrowth_min_obs: int = _param(2, unit="observations", source=_DESIGN, ge=1, le=20)
    """Clear re-vegetated observations after the change that reject it. Two, not one, so
    that a single mis-registered or haze-corrected observation cannot; not necessarily
    consecutive, because crops grow in the cloudiest months."""
    swir_change_min: float = _param(0.08, unit="reflectance (0–1)", source="Lobell and Asner 2002", gt=0, le=1)
    """Change of SWIR1 reflectance from the baseline median that counts as disturbed ground
    where the baseline was already bare (NDVI quantile <= ``bare_ndvi_max``: laterite, sand,
    desert). Fresh, moist gravel is 0.1-0.2 darker in SWIR1 than dry surface soil (SWIR is
    the band most sensitive to soil moisture; Lobell and Asner 2002); 0.08 is ~13x the
    sensor noise of Sentinel-2 L2A reflectance (~0.006)."""

    @field_validator("otsu_ndvi_drop_range")
    @classmethod
    def _drop_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not v[0] < v[1]:
            raise ValueError("must be [low, high] with low < high, e.g. [-1.0, 2.0]")
        return v

    @model_validator(mode="after")
    def _otsu_bounds(self) -> DetectParams:
        if self.otsu_ndvi_drop_floor >= self.otsu_ndvi_drop_ceiling:
            raise ValueError("otsu_ndvi_drop_floor must be below otsu_ndvi_drop_ceiling")
        return self


SpeckleFilter = Literal["none", "boxcar", "lee"]
RadarRole = Literal["always", "gap_fill"]


class RadarParams(_Section):
    """Sentinel-1 radar evidence (``radar`` section; :mod:`pipeline.radar`)."""

    enabled: bool = _param(False, unit="on / off", source=_DESIGN)
    """Search Sentinel-1 RTC for every AOI and fuse its change evidence with the optical
    evidence before multi-date confirmation. Off by default: the default optical source
    (Earth Search) has no radiometrically terrain-corrected collection; set ``source_url``
    to one that has (Digital Earth Africa ``s1_rtc``, Planetary Computer ``sentinel-1-rtc``).
    When radar cannot be searched or read, the run goes on with optical only and says so
    in the log, the manifest and the bulletin."""
    source_url: str | None = _param(None, unit="URL", source=_DESIGN)
    """STAC API root or static catalog of the radar collection; ``None``: ``source.url``.
    Its provider adapter is picked from the URL as for ``source.url``."""
    collection: str = _param("sentinel-1-rtc", unit="collection id", source=_DESIGN)
    """Radar collection id: linear gamma0 RTC with ``vv`` and ``vh`` assets
    (``sentinel-1-rtc`` on the Planetary Computer and in the demo catalog, ``s1_rtc`` on
    Digital Earth Africa)."""
    bands: tuple[str, ...] = _param(("vv", "vh"), unit="asset names", source=_DESIGN)
    """Radar assets to read; add ``mask`` for Digital Earth Africa ``s1_rtc``, whose
    quality band :func:`pipeline.radar.to_db` then applies."""
    baseline_days: int = _param(365, unit="days", source=_DESIGN, ge=30, le=1100)
    """Days before the monitoring period whose valid observations define the per-pixel
    baseline (median, dB). 365 covers one wet/dry cycle, so seasonal swings of savanna
    backscatter (1-2 dB) sit inside the baseline rather than looking like change."""
    baseline_min_obs: int = _param(5, unit="observations", source=_DESIGN, ge=1)
    """Pixels with fewer valid baseline observations give no radar evidence (about two
    months of 12-day revisits)."""
    speckle_filter: SpeckleFilter = _param("lee", unit="method", source="Lee 1980")
    """Spatial speckle filter applied in linear power before the dB conversion: ``lee``
    (Lee 1980, adaptive: smooths homogeneous areas, keeps edges), ``boxcar`` (local mean)
    or ``none``."""
    speckle_window_px: int = _param(3, unit="pixels", source=_DESIGN, ge=3, le=15)
    """Side of the square filter window in pixels (odd). 3 x 3 (30 m): on the synthetic
    scenarios a 5 x 5 window blurred young pits (a few hundred m2 when they open) into
    their savanna surroundings and missed more of them."""
    enl: float = _param(
        4.4, unit="looks", source="sar:looks_equivalent_number of Planetary Computer sentinel-1-rtc items", gt=0
    )
    """Equivalent number of looks of the input, for the Lee filter (speckle variance
    ``1 / enl``). 4.4: ``sar:looks_equivalent_number`` of Sentinel-1 IW GRDH on the
    Planetary Computer ``sentinel-1-rtc`` items."""
    temporal_mean_obs: int = _param(1, unit="observations", source=_DESIGN, ge=1, le=10)
    """Compare the mean (in linear power) of the valid observations among the last N
    acquisitions, not the single observation: temporal multilooking against speckle.
    Delays the first evidence by up to ``N - 1`` revisits; 1 (off) gave the best recall
    and first-seen dates on the synthetic scenarios, where the 3-date confirmation already
    rejects speckle."""
    threshold_method: ThresholdMethod = _param("fixed", unit="method", source="Otsu (1979)")
    """``fixed``: ``vh_drop_min_db``. ``otsu``: Otsu (1979) threshold of the pooled VH drop
    histogram of all valid monitoring observations of the AOI, never below
    ``otsu_floor_db``."""
    vh_drop_min_db: float = _param(2.5, unit="dB", source=_JUDGEMENT, gt=0, le=30)
    """Minimum decrease of VH backscatter below the baseline (dB) that counts as evidence.
    Judgement: a savanna-to-bare-gravel change is about 5-7 dB in VH, 3.5-5.5 dB in the wet
    season when wet gravel brightens; 2.5 dB is about 1.5 standard deviations of the drop
    of a single observation after a 3 x 3 Lee filter at ENL 4.4 (1.7 dB on the synthetic
    scenes), so a few % of stable pixels pass on any one date, which the joint VV and
    bare-level tests, the 3-date confirmation and the opening remove; above the 1-2 dB
    seasonal swing of savanna. 3 dB missed a 0.6 ha wet-season pit in ``make validate``
    (speckle broke its confirmation runs); 2.5 dB found it with no false site."""
    vv_drop_min_db: float | None = _param(1.0, unit="dB", source=_DESIGN, ge=0, le=30)
    """Also require a VV decrease of at least this (dB); ``None``: VH only. Bare gravel and
    water drop in VV too (3-10 dB), a drying canopy much less."""
    vh_max_db: float | None = _param(-18.0, unit="dB", source=_JUDGEMENT, ge=-40, le=0)
    """Also require the current VH at or below this (dB): the surface now looks bare or
    wet (bare soil and water are below about -18 dB in VH at C band; grass and trees above
    about -17 dB). Judgement, tune per AOI; ``None`` disables it."""
    otsu_floor_db: float = _param(2.0, unit="dB", source=_DESIGN, ge=0, le=30)
    """Lowest threshold Otsu may return (dB). When change is a tiny share of the pixels the
    drop histogram is unimodal and Otsu cuts through the noise; the floor bounds the damage."""
    otsu_range_db: tuple[float, float] = _param((-15.0, 25.0), unit="dB", source=_DESIGN)
    """Histogram range for Otsu (dB of drop); drops outside it are ignored."""
    otsu_bins: int = _param(400, unit="bins", source=_DESIGN, ge=16, le=4096)
    """Histogram bins for Otsu (0.1 dB with the default range)."""
    mask_valid_values: tuple[int, ...] = _param((1,), unit="mask codes", source=_DESIGN)
    """Values of a ``mask`` band (DE Africa ``s1_rtc``) that mark valid pixels."""
    radar_role: RadarRole = _param("always", unit="mode", source=_DESIGN)
    """How :func:`fuse_evidence` uses radar: ``always`` (every valid radar observation
    confirms or breaks a run) or ``gap_fill`` (only where the pixel had no valid optical
    observation in the last ``optical_gap_days``)."""
    optical_gap_days: float = _param(30.0, unit="days", source=_DESIGN, gt=0, le=366)
    """Optical silence (days) after which radar observations count, with ``gap_fill``.
    30: three missed Sentinel-2 revisits at 10 days."""
    regrowth_drop_max_db: float | None = _param(0.0, unit="dB", source=_JUDGEMENT, ge=-10, le=10)
    """A radar observation counts as *re-vegetated* (like the optical re-greening test,
    ``detect.regrowth_*``) where the baseline was vegetated (baseline VH above
    ``vh_max_db``) and the VH of the mean of the last ``regrowth_mean_obs`` observations is
    no more than this below the baseline (dB): 0, back to the baseline median or brighter.
    Wet-season crops on a cleared field are brighter in VH than the savanna's annual
    median, and they grow when optical views are rare; an open pit stays 4-7 dB darker
    and an abandoned pit half-grown with grass about 1 dB darker. Judgement, chosen on the
    synthetic scenarios (1 dB also rejected half-vegetated abandoned pits); ``None``:
    radar never signals re-vegetation."""
    regrowth_mean_obs: int = _param(3, unit="observations", source=_DESIGN, ge=1, le=10)
    """Observations averaged (linear power) for the re-vegetation test: 3 brings the drop's
    noise from about 1.7 dB (one observation, 3 x 3 Lee) to about 1 dB, so that speckle
    alone almost never makes a pit look re-vegetated (a 5 dB pit needs a 4 dB error)."""

    @model_validator(mode="after")
    def _odd_window(self) -> RadarParams:
        if self.speckle_window_px % 2 == 0:
            raise ValueError("speckle_window_px must be odd (3, 5, 7, ...)")
        if self.otsu_range_db[0] >= self.otsu_range_db[1]:
            raise ValueError("otsu_range_db must be (low, high) with low < high")
        if not {"vv", "vh"} <= set(self.bands):
            raise ValueError("bands must include 'vv' and 'vh' (the change test uses both)")
        return self


class SitesParams(_Section):
    min_area_m2: float = _param(2500.0, unit="m²", source="USGS OFR 2018-1088", ge=0)
    """Minimum mapping unit (m2). 2500 m2 (0.25 ha) = 25 pixels at 10 m, above which
    Sentinel-2 delineates pits reliably; USGS OFR 2018-1088 reports ASM pits of a few m
    to 30 m+, so smaller diggings are aggregated into clusters or missed."""
    merge_distance_m: float = _param(20.0, unit="m", source=_DESIGN, ge=0)
    """Pixels closer than this (m) belong to the same site (two 10 m pixels)."""
    isolation_distance_m: float = _param(250.0, unit="m", source="Amazon Mining Watch", ge=0)
    """A site with no other site within this distance (m) is *isolated*. Artisanal diggings
    cluster along gravel beds; a lone detection is more often noise (Amazon Mining Watch
    keeps isolated detections only at higher confidence)."""
    isolated_min_confidence: float = _param(0.5, unit="confidence (0–1)", source=_DESIGN, ge=0, le=1)
    """Isolated sites smaller than twice ``min_area_m2`` are kept only at this confidence
    or above (0..1; see ``polygonise_flags`` for the confidence formula)."""
    grow_min_obs: int = _param(2, unit="observations", source=_DESIGN, ge=0, le=20)
    """Site growth (hysteresis; ``sites.grow_sites``): ground 8-connected to a flagged site
    joins it when it is confirmed and not re-greened, or when its newest clear observations
    are an unbroken run of at least this many with evidence. Pit rims are exposed last and
    have had too few clear views to reach ``detect.min_confirmations``; 2 (one fewer than
    the 3 confirmations) still needs two independent views, so one noisy date cannot grow
    a site. 0 disables growth. Tuned on the synthetic scenarios (``make validate``)."""
    expanding_growth_frac: float = _param(0.1, unit="fraction (0–1)", source=_DESIGN, ge=0)
    """A site is ``expanding`` when its area grew by at least this fraction in the last
    period."""


class CrosscheckParams(_Section):
    declared_production: Path | None = _param(None, unit="CSV file", source=_ROW_SOURCES)
    """CSV of declared production in KP public-statistics shape (``participant_iso3,
    period, carats, value_usd, source``); ``None``: the shipped, sourced table
    ``pipeline/data/declared_production.csv`` (KP figures from ``kp_production.csv`` plus
    the Côte d'Ivoire DGMG national series; see ``pipeline.declared``)."""
    trade_statistics: Path | None = _param(None, unit="CSV file", source=_ROW_SOURCES)
    """CSV of trade statistics in KP shape (``participant_iso3, period, flow, carats,
    value_usd, certificates, source``); ``None``: the shipped ``pipeline/data/kp_trade.csv``."""
    sanctions_windows: Path | None = _param(None, unit="CSV file", source=_ROW_SOURCES)
    """CSV of embargo / suspension / monitoring windows; ``None``: the shipped
    ``pipeline/data/sanctions_windows.csv`` (dates and sources from
    ``sanctions_kp_timeline.csv``)."""
    gravel_thickness_m: tuple[float, float] = _param((0.5, 2.0), unit="m", source=_ILLUSTRATIVE)
    """Default gravel-bed thickness range (m) when the AOI file gives none. Illustrative,
    NOT sourced: the AOI files should carry the SODEMI / USGS values of their field."""
    grade_ct_per_m3: tuple[float, float] = _param((0.05, 0.5), unit="ct/m³", source=_ILLUSTRATIVE)
    """Default diamond grade range (carats per m3 of gravel) when the AOI file gives none.
    Illustrative, NOT sourced (see ``gravel_thickness_m``)."""
    recovery_frac: tuple[float, float] = _param((0.5, 0.9), unit="fraction (0–1)", source=_JUDGEMENT)
    """Fraction of contained carats artisanal processing recovers (low, high). Judgement,
    NOT sourced: hand jigging and sieving lose small stones; replace with field data."""
    capacity_ratio_flag: float = _param(2.0, unit="ratio (×)", source=_JUDGEMENT, gt=0)
    """Flag ``capacity_exceeds_declared`` when the LOW carat estimate of one AOI-year
    exceeds the participant's whole declared production for that year by this factor.
    Judgement: the low estimate already takes every parameter at its low end, so a factor
    of 2 leaves room for unsourced default parameters before a flag is raised."""
    activity_min_new_ha: float = _param(0.0, unit="ha", source=_DESIGN, ge=0)
    """Newly excavated area (ha) in a period above which the period counts as activity for
    ``activity_in_embargo`` and ``activity_without_declaration``. 0: any new site (the
    sites stage already drops pits below its minimum mapping unit, 0.25 ha)."""
    trend_min_change_frac: float = _param(0.25, unit="fraction (0–1)", source=_JUDGEMENT, gt=0, lt=1)
    """``trend_divergence``: year-on-year change (fraction) that counts as rising (>= +25%)
    or falling (<= -25%), for activity and declared production alike. Judgement, NOT
    sourced: tune on the participant's history before quoting a divergence."""
    trend_min_year_coverage_frac: float = _param(0.9, unit="fraction (0–1)", source=_DESIGN, gt=0, le=1)
    """``trend_divergence`` compares only years whose activity periods cover at least this
    fraction of the year's days, so that a partly monitored first year (Sentinel-2 starts
    mid-2015) does not read as a rise."""
    trend_min_valid_frac: float = _param(0.5, unit="fraction (0–1)", source=_DESIGN, ge=0, le=1)
    """``trend_divergence`` compares only years whose day-weighted mean ``valid_fraction``
    (share of the AOI seen clear) is at least this; cloudier years under-count new area."""
    review_robust_z_max: float = _param(3.5, unit="robust z", source="Iglewicz & Hoaglin (1993)", gt=0)
    """Statistical review: flag when |robust z| exceeds this. Robust z = (x - median) /
    (1.4826 MAD) of the participant's other periods (or of its peers); 3.5 is the outlier
    cut-off of Iglewicz & Hoaglin (1993), *How to Detect and Handle Outliers*."""
    review_min_history_n: int = _param(4, unit="periods", source=_DESIGN, ge=2)
    """Statistical review: a period is tested against the participant's history only when
    at least this many other periods (or period-to-period changes) exist; a median and MAD
    of fewer values say little."""
    review_min_peers_n: int = _param(5, unit="participants", source=_DESIGN, ge=2)
    """Statistical review: USD per carat is compared with peers only when at least this
    many other participants report it for the same period."""
    review_min_change_factor: float = _param(1.5, unit="factor (×)", source=_DESIGN, gt=1)
    """Statistical review: a jump or price gap smaller than this factor (x1.5 or /1.5) is
    never flagged, whatever its z; stable series would otherwise flag 10% moves."""
    review_export_tolerance_frac: float = _param(0.05, unit="fraction (0–1)", source=_DESIGN, ge=0)
    """``exports_exceed_supply``: exports may exceed production plus imports by this
    fraction before a flag (rounded trade-press figures: 0.1 Mct on 2-5 Mct is 2-5%)."""

    @field_validator("gravel_thickness_m", "grade_ct_per_m3", "recovery_frac")
    @classmethod
    def _range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[0] < 0 or v[0] > v[1]:
            raise ValueError("must be [low, high] with 0 <= low <= high")
        return v

    @field_validator("recovery_frac")
    @classmethod
    def _fraction(cls, v: tuple[float, float]) -> tuple[float, float]:
        if v[1] > 1:
            raise ValueError("a recovered fraction cannot exceed 1")
        return v


class BulletinParams(_Section):
    number: int | None = Field(default=None, ge=1)
    """Bulletin number; ``None``: one more than the highest bulletin in the output root."""
    distribution: str = "KP Participants only"
    """Distribution marking printed on every page."""
    demonstration: bool = False
    """Print "DEMONSTRATION - SYNTHETIC IMAGERY" on every page (set by the demo)."""
    pdf: bool = True
    """Also render ``bulletin.pdf`` (WeasyPrint)."""


class DaskParams(_Section):
    scheduler: str | None = None
    """Address of a running ``dask.distributed`` scheduler; ``None``: start a local cluster."""
    n_workers: int = Field(default=2, ge=1)
    """Worker processes of the local cluster."""
    threads_per_worker: int = Field(default=1, ge=1)
    """Threads per local worker (GDAL reads release the GIL)."""
    memory_limit: str = "4GiB"
    """Memory limit per local worker."""


class MonitorConfig(_Section):
    """The whole run configuration (``configs/*.yaml``)."""

    source: SourceParams = SourceParams()
    aois: tuple[Path, ...] = ()
    """AOI GeoJSON files (relative to the YAML file). Overridden by ``--aoi``."""
    max_aoi_area_km2: float = _param(5000.0, unit="km²", source=_DESIGN, gt=0)
    """Largest accepted AOI (geodesic area on WGS84, km2; :func:`pipeline.aoi.read_aois`).
    Guards against a projected file read as degrees or a country outline passed by mistake;
    the shipped AOIs cover 64-160 km2."""
    period: PeriodParams = PeriodParams()
    out_dir: Path = Path("out")
    """Output folder (relative to the YAML file). Overridden by ``--out``."""
    cache_dir: Path | None = None
    """Local cache of AOI windows; ``None``: the user cache directory (XDG)."""
    search: SearchParams = SearchParams()
    acquire: AcquireParams = AcquireParams()
    preprocess: PreprocessParams = PreprocessParams()
    composites: CompositesParams = CompositesParams()
    detect: DetectParams = DetectParams()
    radar: RadarParams = RadarParams()
    sites: SitesParams = SitesParams()
    crosscheck: CrosscheckParams = CrosscheckParams()
    bulletin: BulletinParams = BulletinParams()
    dask: DaskParams = DaskParams()
    gdal: tuple[tuple[str, str], ...] = (
        ("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR"),
        ("GDAL_HTTP_MAX_RETRY", "5"),
        ("GDAL_HTTP_RETRY_DELAY", "1"),
        ("GDAL_HTTP_MULTIRANGE", "YES"),
        ("GDAL_HTTP_MERGE_CONSECUTIVE_RANGES", "YES"),
        ("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", ".tif,.tiff,.TIF"),
        ("VSI_CACHE", "TRUE"),
    )
    """GDAL configuration options applied once around every read (``rasterio.Env``);
    a mapping in YAML, kept as sorted pairs so the model stays hashable."""

    @model_validator(mode="after")
    def _composite_bands_loaded(self) -> MonitorConfig:
        missing = [b for b in self.composites.bands or () if b not in self.acquire.bands]
        if missing:
            raise ValueError(
                f"composites.bands {missing} are not loaded; "
                "add them to acquire.bands or drop them from composites.bands"
            )
        return self

    @field_validator("gdal", mode="before")
    @classmethod
    def _gdal_pairs(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return tuple(sorted((str(k), str(val)) for k, val in v.items()))
        return v

    @property
    def composite_bands(self) -> tuple[str, ...]:
        """Bands of the named composites: ``composites.bands``, or the optical bands loaded."""
        if self.composites.bands is not None:
            return self.composites.bands
        return tuple(b for b in self.acquire.bands if b in OPTICAL_BANDS)

    @property
    def gdal_options(self) -> dict[str, str]:
        """GDAL options as a dict, for ``rasterio.Env(**...)``."""
        return dict(self.gdal)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form: identifies the exact settings of a run."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def load_config(path: str | Path, **overrides: Any) -> MonitorConfig:
    """Parse and validate a YAML config into a frozen :class:`MonitorConfig`.

    Parameters
    ----------
    path
        YAML file.
    **overrides
        Dotted keys (``period.start="2024-01-01"``, ``out_dir=...``) applied after
        parsing, as the command line does.

    Raises
    ------
    ConfigError
        One line naming the file and the YAML key at fault.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}{where}: {problem}; fix the YAML syntax") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections, got {type(raw).__name__}")
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {}) if isinstance(node.get(key, {}), dict) else {}
        node[leaf] = value
    try:
        cfg = MonitorConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key; check the spelling against configs/monitor.yaml"
        raise ConfigError(f"{path}: {key}: {msg}") from None
    return _resolve_paths(cfg, path.parent)


def aoi_config(cfg: MonitorConfig, overrides: Mapping[str, Any], *, where: str) -> MonitorConfig:
    """``cfg`` with one AOI's overrides of whole-section settings applied.

    Parameters
    ----------
    cfg
        The run's configuration.
    overrides
        Section name -> mapping of that section's keys (the AOI file's ``preprocess``,
        ``composites``, ``detect``, ``radar`` and ``sites`` properties); ``None`` or empty
        values are skipped.
    where
        Names the AOI in error messages (``AOI file aois/marange.geojson (aoi_id 'marange')``).

    Raises
    ------
    ConfigError
        One line naming the AOI, the ``section.key`` and the fix.

    Examples
    --------
    >>> cfg = aoi_config(MonitorConfig(), {"detect": {"threshold_method": "otsu"}}, where="AOI x")
    >>> cfg.detect.threshold_method, cfg.detect.ndvi_drop_min
    ('otsu', 0.25)
    """
    update: dict[str, Any] = {}
    for section, values in overrides.items():
        if not values:
            continue
        current = getattr(cfg, section, None)
        if not isinstance(current, _Section) or section not in AOI_OVERRIDE_SECTIONS:
            raise ConfigError(
                f"{where}: '{section}' cannot be set per AOI; use one of {', '.join(AOI_OVERRIDE_SECTIONS)}"
            )
        try:
            update[section] = type(current).model_validate({**current.model_dump(), **dict(values)})
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in (section, *err["loc"]))
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key; check the spelling against configs/monitor.yaml"
            raise ConfigError(f"{where}: {key}: {msg}; fix the AOI file's '{section}' property") from None
    if not update:
        return cfg
    merged = cfg.model_copy(update=update)
    try:  # cross-section rules (composites.bands within acquire.bands) still hold
        type(cfg).model_validate(merged.model_dump())
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{where}: {msg}; fix the AOI file") from None
    return merged


#: Configuration sections an AOI file may override: the one list (``pipeline.aoi`` uses it).
AOI_OVERRIDE_SECTIONS: tuple[str, ...] = ("preprocess", "composites", "detect", "radar", "sites")
#: Sections listed in the bulletin's methods annex (:func:`threshold_table`), in its order;
#: every field of these carries ``unit`` and ``source`` metadata (:func:`_param`).
THRESHOLD_SECTIONS: tuple[str, ...] = ("preprocess", "composites", "detect", "radar", "sites", "crosscheck")


class FieldMeta(TypedDict):
    """What the configuration says about one field (:func:`field_meta`)."""

    unit: str
    """Unit of the value as the bulletin prints it (``"m²"``, ``"NDVI"``, ``"on / off"``)."""
    source: str
    """Where the default comes from (citations, ``design choice``, ``judgement, not sourced``)."""
    description: str
    """The field's docstring, whitespace collapsed to single spaces."""


def field_meta(section: str, key: str) -> FieldMeta:
    """Unit, source and description of the configuration field ``section.key``.

    ``section`` is a section of :class:`MonitorConfig` (``"detect"``), or ``""`` for a
    top-level field (``max_aoi_area_km2``). Fields outside :data:`THRESHOLD_SECTIONS` may
    lack unit and source metadata: ``""`` then.

    Raises
    ------
    KeyError
        No such section or field.

    Examples
    --------
    >>> field_meta("sites", "min_area_m2")["unit"], field_meta("crosscheck", "review_robust_z_max")["source"]
    ('m²', 'Iglewicz & Hoaglin (1993)')
    """
    model = _section_model(section)
    info = model.model_fields.get(key)
    if info is None:
        raise KeyError(f"configuration section {section or '(top level)'!r} has no field {key!r}")
    unit, source = _unit_source(info)
    return {"unit": unit, "source": source, "description": _description(info)}


def field_unit(section: str, key: str) -> str:
    """Unit of the configuration field ``section.key`` (see :func:`field_meta`).

    Examples
    --------
    >>> field_unit("detect", "regrowth_ndvi_margin")
    'NDVI'
    """
    return field_meta(section, key)["unit"]


def threshold_table(cfg: MonitorConfig) -> list[dict[str, Any]]:
    """Every field of :data:`THRESHOLD_SECTIONS` with its value, unit, description and source.

    One row per field, sections in :data:`THRESHOLD_SECTIONS` order, fields in declaration
    order: ``{"section", "key", "value", "unit", "description", "source"}``. ``value`` is the
    configured value (paths as ``str``), ``description`` the field docstring with whitespace
    collapsed; ``unit`` and ``source`` come from the field metadata (the bulletin's methods
    annex prints them as they are).

    Examples
    --------
    >>> row = next(r for r in threshold_table(MonitorConfig()) if r["key"] == "gravel_thickness_m")
    >>> row["section"], row["value"], row["unit"], row["source"]
    ('crosscheck', (0.5, 2.0), 'm', 'illustrative default, not sourced')
    """
    rows: list[dict[str, Any]] = []
    for section in THRESHOLD_SECTIONS:
        model = getattr(cfg, section)
        for key, info in type(model).model_fields.items():
            value = getattr(model, key)
            unit, source = _unit_source(info)
            rows.append({
                "section": section,
                "key": key,
                "value": str(value) if isinstance(value, Path) else value,
                "unit": unit,
                "description": _description(info),
                "source": source,
            })
    return rows


def _section_model(section: str) -> type[BaseModel]:
    if section == "":
        return MonitorConfig
    info = MonitorConfig.model_fields.get(section)
    model = info.annotation if info is not None else None
    if not (isinstance(model, type) and issubclass(model, _Section)):
        raise KeyError(f"no configuration section {section!r}")
    return model


def _unit_source(info: FieldInfo) -> tuple[str, str]:
    extra = info.json_schema_extra
    if not isinstance(extra, dict):
        return "", ""
    return str(extra.get("unit", "")), str(extra.get("source", ""))


def _description(info: FieldInfo) -> str:
    return " ".join((info.description or "").split())


def _resolve_paths(cfg: MonitorConfig, base: Path) -> MonitorConfig:
    def rel(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    update: dict[str, Any] = {
        "aois": tuple(rel(p) for p in cfg.aois),
        "out_dir": rel(cfg.out_dir),
    }
    if cfg.cache_dir is not None:
        update["cache_dir"] = rel(cfg.cache_dir)
    table_paths = {
        key: rel(getattr(cfg.crosscheck, key))
        for key in ("declared_production", "trade_statistics", "sanctions_windows")
        if getattr(cfg.crosscheck, key) is not None
    }
    if table_paths:
        update["crosscheck"] = cfg.crosscheck.model_copy(update=table_paths)
    url = cfg.source.url
    if "://" not in url and not Path(url).is_absolute():
        update["source"] = cfg.source.model_copy(update={"url": str(rel(Path(url)))})
    radar_url = cfg.radar.source_url
    if radar_url is not None and "://" not in radar_url and not Path(radar_url).is_absolute():
        update["radar"] = cfg.radar.model_copy(update={"source_url": str(rel(Path(radar_url)))})
    return cfg.model_copy(update=update)
