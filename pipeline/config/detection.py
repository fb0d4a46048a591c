"""How excavation is detected: the rules (detect), radar evidence and site delineation."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import field_validator, model_validator

from ._base import _DESIGN, _JUDGEMENT, _param, _Section
from .imagery import ThresholdMethod, check_collection_id


class DetectParams(_Section):
    site_model: Path | None = _param(None, unit="model folder", source=_DESIGN)
    """Folder of a trained site classifier (``python -m pipeline train --out DIR``; overridden
    by ``monitor --model``). With it, the rules propose candidates and the classifier's
    calibrated probability becomes each site's confidence; without it (``null``) the rules
    alone decide and confidence is a heuristic of persistence and observation count. May be
    set per AOI in its AOI file. Relative to the YAML file."""
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
    gravel_ndvi_max: float = _param(0.3, unit="NDVI", source="Sobrino et al. 2004; outside test, issue 13", ge=-1, le=1)
    """NDVI at or below which a monitoring observation can count as exposed gravel (with
    ``bare_bsi_min`` and ``bright_min``). Above ``bare_ndvi_max`` on purpose: laterite gravel and
    spoil are not NDVI 0 (0.0-0.25 for the demo's gravel spectra), and a 10 m pixel of a pit is
    often mixed with grass at its rim; on 741 real patches the freshly cleared pixels of mining
    patches had a median NDVI of 0.22 and 53 % of them failed NDVI <= 0.2 (outside test, issue
    13). 0.3 is about 10 % vegetation cover in the NDVI mixing model of Sobrino et al. (2004)
    (soil 0.2, full cover 0.5; cover = ((NDVI - 0.2) / 0.3) ** 2, Carlson and Ripley 1997):
    still mostly bare ground. The loss tests (peak and season-matched) and the brightness and
    BSI tests keep green or dark ground out. Dry-season savanna reaches NDVI 0.2-0.3 too:
    where it has no season-matched baseline, this allowance can make evidence widespread on a
    date, and then only the pixels that need it are not judged (``widespread_loss_max_frac``)
    rather than the whole date; on a test scene with a half-year baseline, dropping those
    whole dates hid a field's clearing, and its stubble became a false site at the end."""
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
    persistence_window_days: int | None = _param(365, unit="days", source=_DESIGN, ge=30)
    """Days after the change date over which ``min_persistence_frac`` is measured. A pit
    abandoned a year after it was dug, and half re-vegetated since, stays in the inventory
    as a dormant site instead of vanishing from it (and from the cumulative disturbed
    area); ``null``: to the end of the series (the first version's rule)."""
    open_radius_px: int = _param(1, unit="pixels", source=_DESIGN, ge=0, le=5)
    """Radius of the square morphological opening that removes speckle (pixels; 0: off). It also
    erases structures thinner than 2 * radius + 1 pixels, such as the flickering rims of young
    pits; ``speckle_max_px`` removes speckle by size instead and keeps them, but on the CLI
    test scene it let four 0.25-0.6 ha noise clusters through (F1 0.6 against 1.0) while
    gaining nothing on the jitter and tiny-pit validation scenes, so the opening stays the
    default."""
    speckle_max_px: int = _param(0, unit="pixels", source=_DESIGN, ge=0, le=25)
    """Flagged groups of at most this many 8-connected pixels are removed as speckle (0: off).
    By size, not shape: use it with ``open_radius_px: 0`` to keep 1-2 pixel pit rims."""
    rearm_after_regrowth: bool = _param(False, unit="on / off", source=_DESIGN)
    """After re-greening ends a change, let a later confirmed run start a new one (ground burnt
    in January and dug in March), except in the season of an earlier re-greened run a year or
    more before. Off by default: a cleared field's second bare season (after its first crop)
    is then confirmed as a new change, which on the validation scenes turned every cleared
    field into a false site (3 of 8 distractors hit); the season-matched test instead stops
    cured grass and annual burns from being confirmed in the first place, so the veto rarely
    hides a later pit. The site classifier is the better answer for burnt-then-dug ground."""
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
    swir_change_min: float | None = _param(None, unit="reflectance (0–1)", source="Lobell and Asner 2002", gt=0, le=1)
    """Change of SWIR1 reflectance from the baseline median that counts as disturbed ground
    where the baseline was already bare (NDVI quantile <= ``bare_ndvi_max``: laterite, sand,
    desert); ``null`` (the default): off. Fresh, moist gravel is 0.1-0.2 darker in SWIR1 than
    dry surface soil (Lobell and Asner 2002), but on 741 real Sentinel-2 patches this term
    fired on 6.3 % of pixels in mining patches, 6.6 % in other human clearing and 4.0 % in
    natural change (outside test, issue 13): it separates nothing there. Set it (e.g. 0.08,
    ~13x the sensor noise) only for desert AOIs without vegetation to lose."""
    season_drop_min: float | None = _param(0.1, unit="NDVI", source=_JUDGEMENT, gt=0, le=2)
    """Vegetation loss must also be at least this far (NDVI units) below the season-matched
    baseline (what the pixel looked like in the same season of the baseline year), where
    one exists. Cured grass, annual burns, sandbars bare every dry season and banks flooded
    every wet season are not unusual for their season; a new pit is. ``null``: off (the
    wet-season peak alone decides, as in the first version). Judgement: about the
    inter-annual noise of savanna NDVI (~0.1)."""
    widespread_loss_max_frac: float | None = _param(0.25, unit="fraction (0–1)", source=_JUDGEMENT, gt=0, le=1)
    """A date on which excavation evidence covers more than this share of the AOI's grid is not
    judged (neither evidence nor a break of a run; when only the evidence that needs the
    ``gravel_ndvi_max`` allowance is that widespread, only its pixels are not judged): leaf
    fall, snow, a regional fire season or haze move the whole landscape, excavation a few per
    cent of it. On a real 2.5-year series
    of farmland and forest (eo-learn example data) this removed the snow of the last weeks,
    which otherwise left 3.6 % of the patch flagged and three "sites" (0.4, 0.6 and 12.7 ha; 2.5 % and
    two before gravel_ndvi_max and rim growth). ``null``: off. Judgement:
    AOIs are drawn around mining areas, whose pits cover a few per cent of them."""
    season_window_days: int = _param(45, unit="days", source=_DESIGN, ge=10, le=182)
    """Half-width of the season-matched window (days of the year, either side of the
    observation's day of the year, across the new year)."""
    season_min_obs: int = _param(2, unit="observations", source=_DESIGN, ge=1, le=20)
    """Clear baseline observations needed in the season-matched window; with fewer (a cloudy
    wet season) the season cannot be judged and the peak baseline alone decides."""
    gravel_ndti_max: float | None = _param(None, unit="NDTI", source="Van Deventer et al. 1997", ge=-1, le=1)
    """Optional: exposed gravel must have a tillage index NDTI = (SWIR1-SWIR2)/(SWIR1+SWIR2) at
    or below this. Dry plant matter (cured grass, straw, litter) absorbs near 2.1 um
    (cellulose and lignin; Daughtry et al. 2005), which raises NDTI, while mineral soils and
    gravel sit lower (Van Deventer et al. 1997); e.g. 0.18. ``null`` (the default): off,
    because pixels mixed with green vegetation also have a high NDTI and real mining pixels
    are mixed (outside test, issue 13: median NDVI 0.22 of freshly cleared mining pixels);
    the season-matched test rejects cured grass instead, and the site classifier sees NDTI
    as a feature."""

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

    @field_validator("collection")
    @classmethod
    def _collection(cls, value: str) -> str:
        return check_collection_id(value)

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
    min_area_m2: float = _param(2000.0, unit="m²", source="USGS OFR 2018-1088; measured on make validate", ge=0)
    """Minimum mapping unit (m2). 2000 m2 (0.2 ha) = 20 pixels at 10 m: the smallest pits the
    monitoring must report (issue 13: 0.2-0.5 ha). USGS OFR 2018-1088 reports ASM pits of a
    few m to 30 m+, so smaller diggings are aggregated into clusters or missed. The first
    version's 0.25 ha dropped 2-3 of the 15 tiny pits of the validation scene (0.2-0.28 ha,
    partly dug by the end); the 3 x 3 opening, not the unit, removes speckle: no false site
    between 0.1 and 0.25 ha appeared on the validation scenes or the real Slovenian series
    (``tests/test_real_series.py``)."""
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
    grow_min_persistence_frac: float = _param(
        0.3, unit="fraction (0–1)", source="Canny 1986 (2:1 hysteresis ratio); measured on make validate", ge=0, le=1
    )
    """Persistence (share of clear observations with evidence in the persistence window) that a
    confirmed, not re-greened pixel 8-connected to a flagged site needs to join it: the weak
    threshold of the hysteresis whose strong one is ``detect.min_persistence_frac`` (0.6), at
    the 2:1 ratio Canny (1986) recommends. A pit's last-dug rim has few clear views before the
    pit is abandoned and grass creeps back, and its mixed pixels flicker under sub-pixel
    mis-registration, so its persistence falls below the strong threshold while it is still
    excavated ground. On the validation scenes the rims of abandoned pits (0.2-0.4 ha per pit)
    and the jitter scene's edges were the largest loss of mapped area; see the README table
    for the area errors at 0.6 (growth on persistent pixels only, the first version) and 0.3."""
    expanding_growth_frac: float = _param(0.1, unit="fraction (0–1)", source=_DESIGN, ge=0)
    """A site is ``expanding`` when its area grew by at least this fraction in the last
    period."""
