"""What to build and what was built: :class:`ScenarioSpec`, :class:`ScenarioResult`, the spec hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ..errors import ConfigError

#: Bumped whenever the generator's output changes, so cached scenarios are rebuilt.
GENERATOR_VERSION = "1"
#: ScenarioSpec fields that only matter with ``with_s1`` (left out of the hash when off).
S1_SPEC_FIELDS: tuple[str, ...] = (
    "with_s1", "s1_revisit_days", "s1_first_offset_days", "s1_enl", "s1_orbit_state",
    "s1_n_nodata_stripe_dates")
#: ScenarioSpec fields of the harder cases (seasonal river, browning and yearly fires, missed
#: haze, co-registration jitter): each enters the hash only when it is not at its default, so
#: the default demo and every cached scenario written before they existed keep their hash.
HARD_CASE_FIELDS: tuple[str, ...] = (
    "sandbar_river", "dry_season_browning", "burns_every_year", "missed_haze_frac", "jitter_px")


@dataclass(frozen=True)
class ScenarioSpec:
    """What :func:`write_scenario` builds. Frozen and hashable; defaults give the bundled demo."""

    aoi_id: str = "seguela-demo"
    """AOI slug, written to ``aoi.geojson`` and the truth."""
    name: str = "Séguéla diamond field (demo)"
    participant: str = "Côte d'Ivoire"
    participant_iso3: str = "CIV"
    center_lonlat: tuple[float, float] = (-6.58, 8.17)
    """Scene centre (lon, lat) in degrees: Bobi/Toubabouko dikes, Séguéla field
    (``aoi_locations.csv``)."""
    shape_px: tuple[int, int] = (300, 400)
    """(ny, nx) at 10 m; both even (20 m bands are half). Non-square on purpose."""
    start: date = date(2022, 1, 1)
    end: date = date(2024, 6, 30)
    revisit_days: int = 10
    monitoring_start: date = date(2023, 1, 1)
    """Pits open only on/after this date; the year before is the baseline."""
    n_pits: int = 12
    seed: int = 0
    pit_area_ha: tuple[float, float] = (0.5, 3.0)
    """Range of final pit areas (uniform), hectares."""
    pit_open_margin_days: int = 90
    """Pits open no later than ``end`` minus this, so every pit is seen for a while."""
    n_abandoned: int = 2
    """Earliest pits abandoned 6-9 months after opening (if the period allows it)."""
    flooded_fraction: float = 0.3
    """Share of the other pits that fill with turbid water 2-5 months after opening."""
    n_burn_scars: int = 1
    burn_area_ha: tuple[float, float] = (5.0, 10.0)
    n_fields: int = 3
    field_area_ha: tuple[float, float] = (1.0, 4.0)
    n_bare_patches: int = 3
    """Laterite outcrops (bowal): bare from the start, never changing."""
    bare_patch_area_ha: tuple[float, float] = (1.0, 4.0)
    n_rivers: int = 2
    """0, 1 (a perennial river) or 2 (plus a seasonal tributary)."""
    village: bool = True
    cloud_prob_by_month: tuple[float, ...] = (
        0.05, 0.08, 0.15, 0.35, 0.55, 0.70, 0.85, 0.90, 0.85, 0.55, 0.20, 0.06)
    """Probability (Jan..Dec) that a date has substantial cloud (wet season May-October)."""
    scattered_cloud_prob: float = 0.3
    """Probability that an otherwise clear date has a few small cumulus (0.5-3 % cover)."""
    n_full_cloud_dates: int = 2
    """Dates (picked in Jul-Sep) that are cloud from edge to edge."""
    n_nodata_stripe_dates: int = 2
    """Dates with a diagonal no-data stripe at one edge (swath edge; DN 0, SCL 0)."""
    missed_cloud_edge_frac: float = 0.10
    """Share of thin cloud-edge pixels the SCL leaves unflagged (Sen2Cor omission)."""
    missed_shadow_frac: float = 0.5
    """Share of faint cloud-shadow pixels the SCL leaves unflagged."""
    shadow_offset_px: tuple[int, int] = (50, 36)
    """(dy, dx) in 10 m pixels from a shadow to its cloud: the sun is in the south-east, so
    shadows fall 500 m north and 360 m west of their cloud."""
    sensor_noise: float = 0.006
    """Standard deviation of per-pixel sensor noise, reflectance units."""
    mgrs_tile: str | None = None
    """Tile code in item ids (``29PQK``); ``None`` computes the MGRS square of the centre."""
    with_s1: bool = False
    """Also write a synthetic Sentinel-1 RTC collection (``sentinel-1-rtc``: VV/VH linear
    gamma0, same grid, same pits and distractors; see
    :data:`~pipeline.demo.surfaces.S1_BACKSCATTER_DB`). Off by default; while off, the
    ``s1_*`` fields below are ignored and left out of the spec hash, so the default demo
    stays byte-identical."""
    s1_revisit_days: int = 12
    """Days between Sentinel-1 acquisitions of one relative orbit. 12: Sentinel-1A alone,
    as over Africa from December 2021 (Sentinel-1B failure) until Sentinel-1C."""
    s1_first_offset_days: int = 4
    """Days from ``start`` to the first Sentinel-1 acquisition (S1 and S2 dates interleave)."""
    s1_enl: float = 4.4
    """Equivalent number of looks of the simulated speckle. 4.4 is the
    ``sar:looks_equivalent_number`` of Planetary Computer ``sentinel-1-rtc`` IW GRDH items."""
    s1_orbit_state: str = "ascending"
    """``ascending`` (about 18:25 UTC over the demo field) or ``descending`` (about 06:25 UTC)."""
    s1_n_nodata_stripe_dates: int = 1
    """Sentinel-1 dates with a no-data stripe at one edge (value -32768), like a swath or
    slice edge, so that the no-data path is exercised."""
    # --- Harder cases (HARD_CASE_FIELDS). Each draws from its own random stream, seeded by
    # [seed, 7301..7304], so at its default nothing is drawn and no output byte changes.
    sandbar_river: bool = False
    """Add a seasonal sandy river (west-east, meandering) with a 30 m low-water channel and
    sandbars and banks 10-60 m wide along both sides (25-30 ha in a default-size scene).
    The bars are bare bright quartz sand in the dry season (Nov-Apr: NDVI ~0.09, BSI ~0.17,
    SWIR2/SWIR1 ~0.86 like any mineral ground), grassy at the peak of the rains (Jun-Jul,
    NDVI ~0.55-0.6) and flooded at high water (Aug-Oct, from the channel outwards, with
    sediment-laden river water darker than pit ponds), on the same calendar every year,
    baseline and monitoring alike. Radar sees the same states (sand, grass, water). Truth:
    one ``river_sandbar`` distractor per bar. No pit is placed on it."""
    dry_season_browning: float = 0.0
    """0..1: how far the savanna cures in the dry season (Nov-Apr, strongest Feb-Mar). At 1
    the grass is straw-like cured grass (NDVI ~0.11, SWIR2/SWIR1 ~0.67: cellulose and lignin
    absorb near 2.1 um, Daughtry et al. 2005; NDTI = (SWIR1 - SWIR2) / (SWIR1 + SWIR2) ~0.2,
    in the crop-residue range of Van Deventer et al. 1997) and deciduous trees shed half their
    leaves, so an open-savanna pixel reaches NDVI ~0.14-0.2 and BSI ~0.18-0.21 in February:
    close to pit gravel (NDVI ~0.12, BSI ~0.2) and about as bright, but still dry vegetation
    in SWIR2/SWIR1 (soils and laterite: NDTI < ~0.1, ratio >= ~0.8). The wet season is
    unchanged. 0 keeps the standard dry season."""
    burns_every_year: bool = False
    """The ``n_burn_scars`` scars burn in the dry season of every year of the period
    (mid-December to early February; savanna fire returns yearly to the same grass), not only
    in the monitoring year: each year's scar is the first one's footprint with a ragged edge
    a few pixels different. Each burn follows the existing burn timeline: dark char (NBR =
    (NIR - SWIR2) / (NIR + SWIR2) about -0.08 when fresh, against +0.4 for the savanna in the
    rains; Key & Benson 2006), char and ash fading until the rains, regrowth within 75 days
    after. Truth: one distractor per scar, the union of its years."""
    missed_haze_frac: float = 0.0
    """0..1: share of clear dates (cloud cover < 5 %) carrying thin, patchy haze that the SCL
    leaves unflagged (as Sen2Cor misses thin haze and smoke): additive path radiance, strongest
    in the blue and green (+0.03 to +0.06 blue reflectance), and a few % transmission loss,
    which brighten the visible bands and lower the NDVI contrast of vegetation."""
    jitter_px: float = 0.0
    """Standard deviation, in 10 m pixels per axis, of a random sub-pixel shift of the whole
    optical frame on each date (co-registration error: Sentinel-2 multi-temporal registration
    is specified at 0.3 pixel at 2 sigma, and older products were often worse). Applied to the
    surface reflectance by bilinear resampling, so pit rims and field edges flicker; the
    truth stays on the reference grid. 0 means perfectly co-registered dates."""

    def __post_init__(self) -> None:
        ny, nx = self.shape_px
        if ny < 20 or nx < 20 or ny % 2 or nx % 2:
            raise ConfigError(f"ScenarioSpec.shape_px={self.shape_px}: use even sizes >= 20")
        if not self.start < self.monitoring_start < self.end:
            raise ConfigError("ScenarioSpec: need start < monitoring_start < end")
        if (self.end - self.monitoring_start).days <= self.pit_open_margin_days:
            raise ConfigError(
                "ScenarioSpec: monitoring_start must be more than pit_open_margin_days "
                "before end; move it earlier or lower pit_open_margin_days")
        if self.revisit_days < 1 or self.n_pits < 0 or len(self.cloud_prob_by_month) != 12:
            raise ConfigError(
                "ScenarioSpec: revisit_days >= 1, n_pits >= 0 and 12 cloud_prob_by_month values")
        if not 0 <= self.n_rivers <= 2:
            raise ConfigError("ScenarioSpec.n_rivers must be 0, 1 or 2")
        if self.with_s1 and (self.s1_revisit_days < 1 or self.s1_enl <= 0
                             or self.s1_first_offset_days < 0 or self.s1_n_nodata_stripe_dates < 0
                             or self.s1_orbit_state not in ("ascending", "descending")):
            raise ConfigError(
                "ScenarioSpec: s1_revisit_days >= 1, s1_enl > 0, s1_first_offset_days >= 0, "
                "s1_n_nodata_stripe_dates >= 0 and s1_orbit_state 'ascending' or 'descending'")
        if not (0 <= self.dry_season_browning <= 1 and 0 <= self.missed_haze_frac <= 1
                and 0 <= self.jitter_px <= 5):
            raise ConfigError(
                "ScenarioSpec: dry_season_browning and missed_haze_frac in 0..1, jitter_px in 0..5")

    def digest(self) -> str:
        """Return a short hash of the spec and the generator version (cache key)."""
        text = json.dumps([GENERATOR_VERSION, _spec_json(self)], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ScenarioResult:
    """Where :func:`write_scenario` put things, and the grid it used."""

    catalog_path: Path
    """``.../catalog/catalog.json`` (root of a self-contained static catalog)."""
    aoi_path: Path
    truth_path: Path
    n_items: int
    epsg: int
    bounds_utm: tuple[float, float, float, float]
    """(left, bottom, right, top) of the raster footprint in ``EPSG:{epsg}``, metres."""
    n_s1_items: int = 0
    """Sentinel-1 RTC items written (0 unless ``spec.with_s1``)."""


def _spec_json(spec: ScenarioSpec) -> dict[str, Any]:
    data = json.loads(json.dumps(dataclasses.asdict(spec), default=_json_default))
    if not spec.with_s1:
        # Radar off: its knobs change nothing, so they stay out of the hash and the manifest
        # (the default demo keeps the digest and bytes it had before radar existed).
        for name in S1_SPEC_FIELDS:
            data.pop(name, None)
    defaults = {f.name: f.default for f in dataclasses.fields(ScenarioSpec)}
    for name in HARD_CASE_FIELDS:
        # Off: left out as well, so adding these options changed no existing hash.
        if getattr(spec, name) == defaults[name]:
            data.pop(name, None)
    return data


def _json_default(obj: Any) -> Any:
    if isinstance(obj, date):
        return obj.isoformat()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
