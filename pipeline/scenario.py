"""Offline demo scenario: a synthetic Sentinel-2 L2A time series as a static STAC catalog.

:func:`write_scenario` writes, for one AOI, a realistic synthetic Sentinel-2 L2A time series
as Cloud-Optimized GeoTIFFs, a self-contained static STAC catalog that follows the Earth
Search ``sentinel-2-c1-l2a`` conventions (asset keys, ``raster:bands`` scale/offset/nodata,
``s2:processing_baseline``), and the ground truth. The monitoring pipeline searches and
loads it with pystac / odc-stac exactly like real data: the demo is the same code path.

The scene is northern Côte d'Ivoire Guinea savanna (wet season May-October, harmattan haze
December-February): seasonal savanna, gallery forest along meandering rivers, laterite
outcrops (bowal), a village, excavation pits that open during the monitoring period, and
distractors that are not mining (a burn scar, cleared fields that re-green). Clouds, cloud
shadows, haze, sensor noise and an imperfect Sen2Cor-like SCL are added per date.

Layout of ``out_dir``::

    catalog/catalog.json                                  root (self-contained, relative links)
    catalog/sentinel-2-c1-l2a/collection.json
    catalog/sentinel-2-c1-l2a/<item id>/<item id>.json    + B02 B03 B04 B08 B8A B11 B12 SCL .tif
    aoi.geojson          the AOI (EPSG:4326), footprint shrunk by 100 m
    truth.geojson        pits (final extent) and distractors (EPSG:4326)
    truth_opened.tif     int32 days since 1970-01-01 each pit pixel was first exposed, else 0
    scenario.json        spec, spec hash, grid and per-item cloud statistics

With ``ScenarioSpec(with_s1=True)`` a synthetic Sentinel-1 RTC collection is added, following
the Planetary Computer ``sentinel-1-rtc`` item conventions (assets ``vv``/``vh``: float32
linear gamma0 COGs, ``raster:bands`` nodata -32768, ``sar:*`` and ``sat:*`` properties)::

    catalog/sentinel-1-rtc/collection.json
    catalog/sentinel-1-rtc/<item id>/<item id>.json       + vv.tif vh.tif (10 m, same grid)

Radar sees the same pits, distractors, rivers and seasons as the optical scene, through
the clouds; speckle is multiplicative and gamma-distributed (see :func:`_render_s1`).

Everything is deterministic in ``spec.seed``: the same spec gives byte-identical COGs and
identical JSON. Everything is synthetic; no value here describes the real Séguéla field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
import rasterio.features
import shapely
import shapely.geometry
from affine import Affine
from pyproj import CRS, Transformer
from scipy import ndimage

from .errors import ConfigError

__all__ = ["ScenarioResult", "ScenarioSpec", "write_scenario"]

#: Bumped whenever the generator's output changes, so cached scenarios are rebuilt.
GENERATOR_VERSION = "1"
COLLECTION_ID = "sentinel-2-c1-l2a"
#: Reflectance bands, in the order of every (band, y, x) array in this module.
BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "nir08", "swir16", "swir22")
BANDS_10M: tuple[str, ...] = BANDS[:4]
BANDS_20M: tuple[str, ...] = BANDS[4:]
#: Earth Search C1 (processing baseline >= 04.00): reflectance = DN * scale + offset.
DN_SCALE = 0.0001
DN_OFFSET = -0.1
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
STAC_EXTENSIONS: tuple[str, ...] = (
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
)
#: asset key -> (file stem, title, centre wavelength um, FWHM um, resolution m)
ASSETS: dict[str, tuple[str, str, float, float, int]] = {
    "blue": ("B02", "Blue (band 2) - 10m", 0.49, 0.098, 10),
    "green": ("B03", "Green (band 3) - 10m", 0.56, 0.045, 10),
    "red": ("B04", "Red (band 4) - 10m", 0.665, 0.038, 10),
    "nir": ("B08", "NIR 1 (band 8) - 10m", 0.842, 0.145, 10),
    "nir08": ("B8A", "NIR 2 (band 8A) - 20m", 0.865, 0.033, 20),
    "swir16": ("B11", "SWIR 1 (band 11) - 20m", 1.61, 0.143, 20),
    "swir22": ("B12", "SWIR 2 (band 12) - 20m", 2.19, 0.242, 20),
    "scl": ("SCL", "Scene classification map (SCL)", 0.0, 0.0, 20),
}

#: Surface reflectance endmembers (blue, green, red, nir, nir08, swir16, swir22), chosen
#: from published Sentinel-2 / field spectra of West African savanna, laterite and water.
ENDMEMBERS: dict[str, tuple[float, ...]] = {
    "grass_green": (0.035, 0.075, 0.050, 0.380, 0.390, 0.220, 0.110),
    "grass_dry": (0.070, 0.100, 0.150, 0.230, 0.250, 0.360, 0.270),  # bright in SWIR
    "tree_green": (0.025, 0.055, 0.030, 0.360, 0.370, 0.170, 0.080),
    "tree_dry": (0.050, 0.080, 0.090, 0.260, 0.270, 0.260, 0.170),
    "soil": (0.080, 0.120, 0.170, 0.240, 0.260, 0.330, 0.280),
    "forest": (0.025, 0.050, 0.028, 0.350, 0.360, 0.160, 0.070),  # NDVI 0.85
    "water_clear": (0.050, 0.070, 0.050, 0.030, 0.025, 0.010, 0.008),  # MNDWI 0.75
    "water_river_wet": (0.060, 0.090, 0.080, 0.050, 0.040, 0.015, 0.010),
    "water_turbid": (0.080, 0.120, 0.130, 0.080, 0.060, 0.020, 0.015),  # pit ponds
    "sand": (0.110, 0.150, 0.190, 0.250, 0.270, 0.330, 0.280),  # dry stream bed
    "laterite": (0.070, 0.100, 0.160, 0.220, 0.240, 0.300, 0.270),  # bowal crust
    "roof": (0.220, 0.240, 0.260, 0.300, 0.310, 0.330, 0.300),  # corrugated iron
    "compound": (0.100, 0.150, 0.210, 0.270, 0.290, 0.360, 0.310),  # packed earth
    "char": (0.035, 0.045, 0.055, 0.085, 0.090, 0.120, 0.100),  # fresh burn
    "field_soil": (0.070, 0.110, 0.150, 0.220, 0.240, 0.300, 0.250),  # tilled
    "crop": (0.035, 0.075, 0.045, 0.400, 0.410, 0.210, 0.100),
    "cloud": (0.550, 0.540, 0.530, 0.550, 0.540, 0.400, 0.280),
}
#: Exposed gravel/laterite of pits: (low, high) per band; drawn once per pit.
PIT_GRAVEL_RANGE: dict[str, tuple[float, float]] = {
    "blue": (0.08, 0.11), "red": (0.18, 0.25), "nir": (0.25, 0.30),
    "swir16": (0.30, 0.38), "swir22": (0.25, 0.32),
}
#: Additive harmattan haze at full strength (path radiance: strongest in the blue).
HAZE = (0.025, 0.018, 0.012, 0.007, 0.006, 0.003, 0.002)
#: Fraction of reflectance a full cloud shadow removes (skylight keeps the blue brighter).
SHADOW_DARKENING = (0.50, 0.55, 0.60, 0.65, 0.65, 0.70, 0.70)
#: Darkening of wet gravel at full wetness (water absorbs most in the SWIR).
MOISTURE_DARKENING = (0.06, 0.06, 0.07, 0.08, 0.08, 0.12, 0.12)
# Month-centred seasonal curves (Jan..Dec), northern Côte d'Ivoire.
GREENNESS = (0.12, 0.04, 0.00, 0.08, 0.30, 0.55, 0.80, 0.95, 1.00, 0.88, 0.55, 0.28)
WETNESS = (0.05, 0.00, 0.00, 0.10, 0.30, 0.50, 0.70, 0.90, 1.00, 0.85, 0.40, 0.15)
HARMATTAN = (0.90, 0.70, 0.35, 0.10, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.25, 0.70)
_EPOCH = date(1970, 1, 1)
_PIXEL_HA = 0.01  # one 10 m pixel

# --- Optional Sentinel-1 RTC collection (ScenarioSpec.with_s1) ---------------------------
S1_COLLECTION_ID = "sentinel-1-rtc"
S1_BANDS: tuple[str, ...] = ("vv", "vh")
#: RTC no-data value (Planetary Computer sentinel-1-rtc ``raster:bands``).
S1_NODATA = -32768.0
#: ScenarioSpec fields that only matter with ``with_s1`` (left out of the hash when off).
S1_SPEC_FIELDS: tuple[str, ...] = (
    "with_s1", "s1_revisit_days", "s1_first_offset_days", "s1_enl", "s1_orbit_state",
    "s1_n_nodata_stripe_dates")
S1_STAC_EXTENSIONS: tuple[str, ...] = (
    "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
    "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
)
#: (VV, VH) C-band gamma0 in dB of the scene's surfaces (dry season where it matters).
#: Typical orders of magnitude for Sentinel-1 IW over savanna, forest, bare soil and water;
#: chosen, not measured: savanna about -9/-15 dB, gallery forest -7/-12, smooth bare gravel
#: -12..-14/-20..-22 (little volume scattering), calm water -20/-26, a village bright from
#: double bounce. Pixels mix their surfaces in linear power.
S1_BACKSCATTER_DB: dict[str, tuple[float, float]] = {
    "grass_dry": (-10.0, -16.5),
    "grass_green": (-8.5, -14.5),
    "tree_dry": (-8.0, -13.5),
    "tree_green": (-7.0, -12.0),
    "soil": (-13.0, -21.0),
    "forest": (-7.0, -12.0),
    "water": (-20.0, -26.0),
    "sand": (-15.0, -23.0),  # dry stream bed
    "laterite": (-11.5, -19.0),  # bowal crust
    "settlement": (-3.0, -11.0),  # roofs and walls: double bounce
    "field_soil": (-12.0, -20.0),  # tilled
    "crop": (-8.0, -13.0),
    "stubble": (-10.5, -17.5),
}
#: Exposed pit gravel, (low, high) dB per polarisation; drawn once per pit.
S1_PIT_GRAVEL_DB: dict[str, tuple[float, float]] = {"vv": (-14.0, -12.0), "vh": (-22.0, -20.0)}
#: Rise of bare-surface backscatter at full wetness (dB): wet soil has a higher dielectric
#: constant. Vegetation's wet-season rise comes from greenness instead.
S1_MOISTURE_DB = (1.5, 1.0)
#: Burn scars darken by about 1 dB in both polarisations at full char.
S1_BURN_DB = -1.0
#: UTC time of the pass over the demo field: S1 is sun-synchronous with its ascending node
#: at 18:00 local mean solar time, and the field is 6.6 degrees west of Greenwich.
S1_PASS_UTC: dict[str, dt.time] = {"ascending": dt.time(18, 25, 3), "descending": dt.time(6, 24, 41)}
#: Separable smoothing kernel that gives the speckle a ~20 m correlation length (IW GRDH
#: resolution is about 20 x 22 m on 10 m pixels), so 3 x 3 windows are not 9 independent looks.
_S1_SPECKLE_KERNEL = np.array([0.25, 0.5, 0.25], np.float64)


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
    gamma0, same grid, same pits and distractors; see :data:`S1_BACKSCATTER_DB`). Off by
    default; while off, the ``s1_*`` fields below are ignored and left out of the spec hash,
    so the default demo stays byte-identical."""
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


def write_scenario(out_dir: str | Path, spec: ScenarioSpec = ScenarioSpec()) -> ScenarioResult:  # noqa: B008
    """Write the demo scenario (COGs, static STAC catalog, AOI and truth) into ``out_dir``.

    Parameters
    ----------
    out_dir
        Directory to write into; created if missing. Only the paths listed in the module
        docstring are written or replaced; anything else in it is left alone.
    spec
        What to build. The default is the bundled Séguéla demo (92 dates, 300 x 400 px).

    Returns
    -------
    ScenarioResult
        Paths and grid. Rasters are on the AOI's UTM zone (``EPSG:326zz``/``327zz``), origin
        snapped to 20 m; blue/green/red/nir at 10 m, nir08/swir16/swir22/scl at 20 m.
        Reflectance = DN * 0.0001 - 0.1 (DN 0 is nodata).

    Notes
    -----
    Eager, single-threaded, deterministic in ``spec.seed``. If ``out_dir/scenario.json``
    records the same spec hash and the catalog exists, nothing is rewritten (idempotent demo
    re-runs). Otherwise everything is built in ``out_dir/.scenario-build`` and moved into
    place with ``scenario.json`` last, so an interrupted run is rebuilt next time.

    Examples
    --------
    >>> spec = ScenarioSpec(shape_px=(60, 80), start=date(2022, 11, 1), end=date(2023, 4, 30),
    ...                     n_pits=2, n_fields=1, n_burn_scars=0, n_bare_patches=1)
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     res = write_scenario(tmp, spec)
    ...     catalog = pystac.Catalog.from_file(res.catalog_path)
    ...     print(res.n_items, len(list(catalog.get_items(recursive=True))), res.epsg)
    19 19 32629
    """
    out = Path(out_dir)
    digest = spec.digest()
    cached = _read_cached(out, digest)
    if cached is not None:
        return cached
    out.mkdir(parents=True, exist_ok=True)
    build = out / ".scenario-build"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir()

    scene = _build_scene(spec)
    grid = scene.grid
    coll_dir = build / "catalog" / COLLECTION_ID
    items: list[pystac.Item] = []
    stats: list[dict[str, Any]] = []
    for index in range(len(scene.dates)):
        frame = _render_frame(scene, index)
        item_id = _item_id(scene, index)
        item_dir = coll_dir / item_id
        item_dir.mkdir(parents=True)
        _write_frame_cogs(frame, grid, item_dir)
        item_dict = _item_dict(scene, index, frame, item_id)
        # migrate=False: keep proj:epsg next to proj:code for older readers (stackstac).
        items.append(pystac.Item.from_dict(item_dict, migrate=False, preserve_dict=False))
        stats.append({"id": item_id, "date": scene.dates[index].isoformat(),
                      "eo:cloud_cover": item_dict["properties"]["eo:cloud_cover"],
                      "scl_flagged_cloud_pct": round(frame.flagged_cloud_pct, 3)})

    s1_items: list[pystac.Item] = []
    if spec.with_s1:
        s1_items = _write_s1_items(scene, build / "catalog" / S1_COLLECTION_ID)
    catalog = _build_catalog(spec, scene, items, digest, s1_items=s1_items)
    catalog.normalize_hrefs(str(build / "catalog"))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    # ^ The COGs were written where pystac's best-practice layout puts each item's JSON,
    #   so the relative asset hrefs ("./B02.tif") resolve.
    assert all((coll_dir / it.id / f"{it.id}.json").exists() for it in items[:1])

    _write_opened_tif(scene, build / "truth_opened.tif")
    _write_json(build / "truth.geojson", _truth_collection(scene))
    _write_json(build / "aoi.geojson", _aoi_collection(spec, grid))
    manifest = {
        "generator": "pipeline.scenario", "generator_version": GENERATOR_VERSION,
        "spec_hash": digest, "spec": _spec_json(spec), "n_items": len(items),
        "epsg": grid.epsg, "bounds_utm": list(grid.bounds), "mgrs_tile": scene.tile,
        "items": stats, "synthetic": True,
    }
    if spec.with_s1:
        manifest["n_s1_items"] = len(s1_items)
        manifest["s1_items"] = [it.id for it in s1_items]
    _write_json(build / "scenario.json", manifest)

    # The marker goes first and comes back last: a run killed half-way through the swap
    # leaves no scenario.json, so the next run rebuilds instead of trusting a mixed folder.
    (out / "scenario.json").unlink(missing_ok=True)
    for name in ("catalog", "truth_opened.tif", "truth.geojson", "aoi.geojson"):
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        (build / name).replace(target)
    (build / "scenario.json").replace(out / "scenario.json")
    shutil.rmtree(build, ignore_errors=True)
    return _result(out, len(items), grid.epsg, grid.bounds, len(s1_items))


# ============================================================================================
# Grid, scene description
# ============================================================================================


@dataclass(frozen=True)
class _Grid:
    epsg: int
    transform: Affine  # 10 m
    shape: tuple[int, int]  # 10 m (ny, nx)

    @property
    def transform20(self) -> Affine:
        return self.transform @ Affine.scale(2)

    @property
    def shape20(self) -> tuple[int, int]:
        return self.shape[0] // 2, self.shape[1] // 2

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        left, top = self.transform.c, self.transform.f
        return (left, top - 10.0 * self.shape[0], left + 10.0 * self.shape[1], top)


@dataclass
class _Pit:
    truth_id: str
    window: tuple[slice, slice]
    rank: np.ndarray  # float32 in [0, 1] inside the final extent (growth order), inf outside
    texture: np.ndarray  # float32 multiplicative, window-shaped
    opened: date
    grow_days: int
    fate: str
    gravel: np.ndarray  # (7,) reflectance
    flood_date: date | None = None
    flood_share: float = 0.0
    abandon_date: date | None = None


@dataclass
class _Patch:
    """A distractor or static feature: a mask in a window, plus its dates."""

    truth_id: str
    kind: str  # burn_scar | cleared_field | bare_outcrop | settlement
    window: tuple[slice, slice]
    mask: np.ndarray  # bool, window-shaped
    event: date | None = None
    end: date | None = None  # burn: recovered by; field: end of first green season


@dataclass(frozen=True)
class _River:
    distance: np.ndarray  # pixels from the centre line (ny, nx)
    width_dry: float  # water width in pixels at the driest time of the year
    width_wet: float  # ... and at peak flood (also the width of the channel bed)
    sandy_bed: bool  # a seasonal stream whose bed shows as sand when low


@dataclass
class _Scene:
    spec: ScenarioSpec
    grid: _Grid
    tile: str
    dates: list[date]
    year_amp: dict[int, float]
    tree: np.ndarray  # fractions (ny, nx)
    grass: np.ndarray
    soil: np.ndarray
    pheno: np.ndarray  # per-pixel greenness offset
    texture: np.ndarray  # static multiplicative texture
    forest: np.ndarray  # gallery forest fraction
    rivers: list[_River]
    static_frac: np.ndarray  # bowal + village cover
    static_spec: np.ndarray  # (7, ny, nx)
    pits: list[_Pit]
    patches: list[_Patch]
    cloud_cover: list[float]  # per date: 0 clear, 1 full, else target fraction
    cloud_sigma: list[float]
    stripes: dict[int, tuple[int, float, float]]  # date index -> (side, width frac, slope)


@dataclass(frozen=True)
class _Frame:
    """One rendered date: what the COGs hold plus the cloud truth (20 m)."""

    refl10: np.ndarray  # (4, ny, nx) float32 reflectance
    refl20: np.ndarray  # (3, ny/2, nx/2)
    scl: np.ndarray  # (ny/2, nx/2) uint8
    cloud20: np.ndarray  # bool: opacity >= 0.1
    shadow20: np.ndarray  # bool
    nodata20: np.ndarray  # bool

    @property
    def cloud_cover_pct(self) -> float:
        valid = ~self.nodata20
        return 100.0 * float(self.cloud20[valid].mean()) if valid.any() else 0.0

    @property
    def flagged_cloud_pct(self) -> float:
        return 100.0 * float(np.isin(self.scl, (8, 9, 10)).mean())


def _build_scene(spec: ScenarioSpec) -> _Scene:
    """Everything that does not change from date to date, plus the per-date weather plan."""
    rng = np.random.default_rng([spec.seed, 0])
    grid = _grid_for(spec)
    ny, nx = grid.shape
    dates = [spec.start + dt.timedelta(days=d)
             for d in range(0, (spec.end - spec.start).days + 1, spec.revisit_days)]

    n_large, n_fine, n_soil = (_smooth(rng, (ny, nx), s) for s in (15.0, 1.5, 6.0))
    tree = np.clip(0.18 + 0.08 * n_large + 0.06 * n_fine, 0.03, 0.45)
    soil = np.clip(0.10 + 0.04 * n_soil, 0.02, 0.20)
    pheno = 0.07 * _smooth(rng, (ny, nx), 20.0)
    texture = 1.0 + 0.03 * _smooth(rng, (ny, nx), 1.0)

    rivers, forest, channel = _make_rivers(rng, spec, (ny, nx))
    # Pits may cut into gallery forest (alluvial digging follows streams); the village,
    # outcrops, fires and fields are placed in open savanna only.
    occupied = channel.copy()
    woods = forest > 0

    static_frac = np.zeros((ny, nx), np.float32)
    static_spec = np.zeros((7, ny, nx), np.float32)
    patches: list[_Patch] = []
    if spec.village:
        near = np.zeros((ny, nx), bool)
        if rivers:
            near = (rivers[0].distance > 15) & (rivers[0].distance < 45)  # a riverside village
        mask = _blob(rng, rng.uniform(1.0, 2.0) / _PIXEL_HA, lobes=3, roughness=0.2)
        win = _place(rng, occupied | woods, mask, buffer_px=3, prefer=near)
        if win is not None:
            roofs = rng.uniform(0.2, 0.5, mask.shape)
            spec_px = (_e("roof")[:, None, None] * roofs + _e("tree_green")[:, None, None] * 0.15
                       + _e("compound")[:, None, None] * (0.85 - roofs))
            static_frac[win] = np.maximum(static_frac[win], mask)
            bands_win = (slice(None), *win)
            static_spec[bands_win] = np.where(mask, spec_px, static_spec[bands_win])
            occupied[win] |= mask
            patches.append(_Patch("village-01", "settlement", win, mask))
    for k in range(spec.n_bare_patches):
        mask = _blob(rng, rng.uniform(*spec.bare_patch_area_ha) / _PIXEL_HA, lobes=3, roughness=0.4)
        win = _place(rng, occupied | woods, mask, buffer_px=4)
        if win is None:
            continue
        tex = 1.0 + 0.05 * _smooth(rng, mask.shape, 1.5)
        static_frac[win] = np.maximum(static_frac[win], mask)
        static_spec[(slice(None), *win)] = np.where(
            mask, _e("laterite")[:, None, None] * tex, static_spec[(slice(None), *win)])
        occupied[win] |= mask
        patches.append(_Patch(f"bowal-{k + 1:02d}", "bare_outcrop", win, mask))

    burn_day = _next_day_on_or_after(spec.monitoring_start, 1, 10)
    for k in range(spec.n_burn_scars):
        # Harmattan-driven fire fronts run NE-SW: elongated, ragged scars.
        mask = _blob(rng, rng.uniform(*spec.burn_area_ha) / _PIXEL_HA, lobes=3,
                     roughness=0.35, elongation=2.0, angle=math.radians(45))
        win = _place(rng, occupied | woods, mask, buffer_px=6)
        burned = burn_day + dt.timedelta(days=int(rng.integers(0, 31)))
        if win is None or burned > spec.end:
            continue
        occupied[win] |= mask
        rains = date(burned.year, 4, 25)
        patches.append(_Patch(f"burn-{k + 1:02d}", "burn_scar", win, mask, burned,
                              rains + dt.timedelta(days=75)))
    clear_day = _next_day_on_or_after(spec.monitoring_start, 2, 1)
    for k in range(spec.n_fields):
        mask = _rectangle(rng, rng.uniform(*spec.field_area_ha) / _PIXEL_HA)
        win = _place(rng, occupied | woods, mask, buffer_px=6)
        cleared = clear_day + dt.timedelta(days=int(rng.integers(0, 41)))
        if win is None or cleared > spec.end:
            continue
        occupied[win] |= mask
        patches.append(_Patch(f"field-{k + 1:02d}", "cleared_field", win, mask, cleared,
                              date(cleared.year, 10, 31)))

    pits = _make_pits(rng, spec, occupied)
    cloud_cover, cloud_sigma, stripes = _plan_weather(rng, spec, dates)
    years = range(spec.start.year, spec.end.year + 1)
    return _Scene(
        spec=spec, grid=grid, tile=spec.mgrs_tile or _mgrs_tile(*spec.center_lonlat),
        dates=dates, year_amp={y: float(rng.uniform(0.93, 1.05)) for y in years},
        tree=tree.astype(np.float32), grass=(1 - tree - soil).astype(np.float32),
        soil=soil.astype(np.float32), pheno=pheno, texture=texture, forest=forest,
        rivers=rivers, static_frac=static_frac, static_spec=static_spec, pits=pits,
        patches=patches, cloud_cover=cloud_cover, cloud_sigma=cloud_sigma, stripes=stripes,
    )


def _grid_for(spec: ScenarioSpec) -> _Grid:
    lon, lat = spec.center_lonlat
    zone = int((lon + 180) // 6) + 1
    epsg = (32600 if lat >= 0 else 32700) + zone
    cx, cy = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    ny, nx = spec.shape_px
    # Snap to 20 m so the 10 m and 20 m grids share their origin, as in real S2 tiles.
    left = math.floor((cx - 5.0 * nx) / 20.0) * 20.0
    top = math.ceil((cy + 5.0 * ny) / 20.0) * 20.0
    return _Grid(epsg, Affine(10.0, 0.0, left, 0.0, -10.0, top), (ny, nx))


def _make_rivers(
    rng: np.random.Generator, spec: ScenarioSpec, shape: tuple[int, int]
) -> tuple[list[_River], np.ndarray, np.ndarray]:
    """Meandering perennial river (N-S) and a seasonal tributary; gallery forest along both."""
    ny, nx = shape
    rivers: list[_River] = []
    forest = np.zeros(shape, np.float32)
    channel = np.zeros(shape, bool)
    if spec.n_rivers == 0:
        return rivers, forest, channel
    width_noise = _smooth(rng, shape, 12.0)
    yy = np.arange(-5, ny + 5, 0.25)
    x0 = rng.uniform(0.3, 0.7) * nx
    xs = (x0 + 0.08 * nx * _wave(rng, yy, rng.uniform(0.6, 1.0) * ny)
          + 0.03 * nx * _wave(rng, yy, rng.uniform(0.15, 0.3) * ny))
    d_main = _distance_to_line(shape, yy, xs)
    rivers.append(_River(d_main, 2.5, 5.0, False))  # 25 m wide when low, 50 m in flood
    half = np.clip(4.5 + 2.0 * width_noise, 1.5, 8.0)
    forest = np.maximum(forest, np.clip(half - d_main + 0.5, 0, 1))
    channel |= d_main < 5.0 / 2 + 3
    if spec.n_rivers == 2:
        y0 = rng.uniform(0.25, 0.75) * ny
        confluence = float(np.interp(y0, yy, xs))
        east = confluence < nx / 2  # the tributary comes from the wider side
        xx = np.arange(confluence, nx + 5, 0.25) if east else np.arange(-5, confluence, 0.25)
        ys = y0 + 0.06 * ny * _wave(rng, xx, rng.uniform(0.3, 0.6) * nx)
        ys += y0 - float(np.interp(confluence, xx, ys))  # meet the main river at y0
        d_trib = _distance_to_line(shape, ys, xx)
        rivers.append(_River(d_trib, 0.0, 2.0, True))  # dries up Jan-Apr
        half = np.clip(2.5 + 1.0 * width_noise, 1.0, 4.0)
        forest = np.maximum(forest, np.clip(half - d_trib + 0.5, 0, 1))
        channel |= d_trib < 2.0 / 2 + 3
    return rivers, forest.astype(np.float32), channel


def _make_pits(rng: np.random.Generator, spec: ScenarioSpec, occupied: np.ndarray) -> list[_Pit]:
    span = (spec.end - spec.monitoring_start).days - spec.pit_open_margin_days
    offsets = np.sort(rng.integers(0, span + 1, spec.n_pits))
    # Abandonment goes to the earliest pits; flooding to a random share of the rest.
    n_flood = round(spec.flooded_fraction * max(spec.n_pits - spec.n_abandoned, 0))
    rest = list(range(min(spec.n_abandoned, spec.n_pits), spec.n_pits))
    flooded = set(rng.permutation(rest)[:n_flood].tolist()) if rest else set()
    pits: list[_Pit] = []
    for k, off in enumerate(offsets):
        n_px = rng.uniform(*spec.pit_area_ha) / _PIXEL_HA
        lobes = int(rng.integers(2, 5))
        for attempt in range(4):  # crowded scene: squeeze closer, then dig smaller
            mask = _blob(rng, n_px * 0.7**attempt, lobes=lobes, roughness=0.15)
            win = _place(rng, occupied, mask, buffer_px=5 if attempt == 0 else 2)
            if win is not None:
                break
        if win is None:
            raise ConfigError(
                f"ScenarioSpec: no room for pit {k + 1} of {spec.n_pits}; enlarge shape_px or "
                "reduce n_pits / pit_area_ha / distractor counts")
        occupied[win] |= mask
        # Digging spreads out from where it started: rank by distance + a little noise.
        yy, xx = np.nonzero(mask)
        seed_y, seed_x = yy[len(yy) // 3], xx[len(xx) // 3]
        score = np.hypot(yy - seed_y, xx - seed_x) + 1.5 * _smooth(rng, mask.shape, 2.0)[yy, xx]
        rank = np.full(mask.shape, np.inf, np.float32)
        rank[yy, xx] = (np.argsort(np.argsort(score)) + 1) / len(score)
        opened = spec.monitoring_start + dt.timedelta(days=int(off))
        gravel = {b: rng.uniform(*PIT_GRAVEL_RANGE[b]) for b in PIT_GRAVEL_RANGE}
        gravel["green"] = (gravel["blue"] + gravel["red"]) / 2 + 0.01
        gravel["nir08"] = gravel["nir"] + rng.uniform(0.01, 0.02)
        gravel["swir22"] = min(gravel["swir22"], gravel["swir16"] - 0.02)
        pit = _Pit(f"pit-{k + 1:02d}", win, rank, 1.0 + 0.06 * _smooth(rng, mask.shape, 1.0),
                   opened, int(rng.integers(90, 211)), "active",
                   np.array([gravel[b] for b in BANDS], np.float32))
        abandon = opened + dt.timedelta(days=int(rng.integers(180, 271)))
        flood = opened + dt.timedelta(days=int(rng.integers(60, 151)))
        if k < spec.n_abandoned and abandon <= spec.end - dt.timedelta(days=60):
            pit.fate, pit.abandon_date = "abandoned", abandon
            # Diggers leave once the pit is worked out: full extent before abandonment.
            pit.grow_days = min(pit.grow_days, (abandon - opened).days - 30)
        elif k in flooded and flood <= spec.end - dt.timedelta(days=20):
            pit.fate, pit.flood_date = "flooded", flood
            pit.flood_share = float(rng.uniform(0.25, 0.5))
        pits.append(pit)
    return pits


def _plan_weather(
    rng: np.random.Generator, spec: ScenarioSpec, dates: list[date]
) -> tuple[list[float], list[float], dict[int, tuple[int, float, float]]]:
    cover: list[float] = []
    sigma: list[float] = []
    for d in dates:
        wet = _seasonal(WETNESS, d)
        if rng.random() < spec.cloud_prob_by_month[d.month - 1]:
            # Wet-season cloud decks are larger: up to ~95 % cover in September.
            cover.append(float(rng.uniform(0.15 + 0.2 * wet, 0.4 + 0.55 * wet)))
            sigma.append(float(rng.uniform(12, 30)))
        elif rng.random() < spec.scattered_cloud_prob:
            cover.append(float(rng.uniform(0.005, 0.03)))
            sigma.append(float(rng.uniform(4, 7)))  # small fair-weather cumulus
        else:
            cover.append(0.0)
            sigma.append(0.0)
    indices = list(range(len(dates)))
    peak = [i for i in indices if dates[i].month in (7, 8, 9)] or indices
    full = rng.permutation(peak)[: spec.n_full_cloud_dates].tolist()
    for i in full:
        cover[i] = 1.0
    others = [i for i in indices if i not in full]
    # (side, width as a share of the scene, slope): a slanted swath edge, left or right.
    stripes = {
        int(i): (int(rng.integers(0, 2)), float(rng.uniform(0.08, 0.2)),
                 float(rng.uniform(0.1, 0.4)))
        for i in rng.permutation(others)[: spec.n_nodata_stripe_dates]
    }
    return cover, sigma, stripes


# ============================================================================================
# Rendering one date
# ============================================================================================


def _render_frame(scene: _Scene, index: int) -> _Frame:
    """Surface -> cloud shadow -> cloud -> haze/gain -> noise -> nodata -> SCL (20 m)."""
    spec, when = scene.spec, scene.dates[index]
    rng = np.random.default_rng([spec.seed, 1, when.toordinal()])
    g = min(_seasonal(GREENNESS, when) * scene.year_amp[when.year], 1.0)
    wet = _seasonal(WETNESS, when)
    refl = _surface(scene, when, g, wet)
    ny, nx = scene.grid.shape

    cloud, shadow = _cloud_layers(scene, index, rng)
    refl *= 1.0 - _col(SHADOW_DARKENING) * (0.9 * shadow)
    brightness = rng.uniform(0.85, 1.1)
    refl += cloud * (_e("cloud")[:, None, None] * brightness - refl)
    haze = _seasonal(HARMATTAN, when) * rng.uniform(0.4, 1.0)
    refl += _col(HAZE) * haze * (1.0 + 0.25 * scene.pheno / 0.07)
    gain = 1.0 + rng.normal(0, 0.015) + rng.normal(0, 0.005, 7)
    refl *= gain.astype(np.float32)[:, None, None]

    refl10 = refl[:4] + rng.normal(0, spec.sensor_noise, (4, ny, nx)).astype(np.float32)
    refl20 = _block_mean(refl[4:])
    refl20 += rng.normal(0, spec.sensor_noise, refl20.shape).astype(np.float32)
    cloud20, shadow20 = _block_mean(cloud), _block_mean(shadow)

    nodata20 = np.zeros(scene.grid.shape20, bool)
    if index in scene.stripes:
        side, width, slope = scene.stripes[index]
        r, c = np.indices(nodata20.shape)
        c = c if side == 0 else nodata20.shape[1] - 1 - c
        nodata20 = (c + slope * (r - nodata20.shape[0] / 2)) < width * nodata20.shape[1]
    scl, truth_cloud, truth_shadow = _classify(
        _block_mean(refl10), refl20, cloud20, shadow20, nodata20, rng,
        missed_edge=spec.missed_cloud_edge_frac, missed_shadow=spec.missed_shadow_frac)
    return _Frame(refl10, refl20, scl, truth_cloud, truth_shadow, nodata20)


def _surface(scene: _Scene, when: date, g: float, wet: float) -> np.ndarray:
    """Cloud-free surface reflectance (7, ny, nx) on the 10 m grid."""
    gpx = np.clip(g + scene.pheno, 0.0, 1.0)[None]
    grass = _col(_e("grass_dry")) + _col(_e("grass_green") - _e("grass_dry")) * gpx
    # Savanna trees lose part of their leaves in the dry season.
    tree = _col(_e("tree_dry")) + _col(_e("tree_green") - _e("tree_dry")) * (0.55 + 0.45 * gpx)
    refl = scene.tree * tree + scene.grass * grass + scene.soil * _col(_e("soil"))
    refl *= scene.texture
    # Gallery forest keeps most of its leaves through the dry season.
    forest = _e("forest") + (_e("tree_dry") - _e("forest")) * 0.15 * (1.0 - g)
    _paint(refl, scene.forest, forest)
    for river in scene.rivers:
        dist = river.distance
        if river.sandy_bed:  # a bare sandy bed shows when the stream runs dry
            _paint(refl, np.clip(river.width_wet / 2 - dist + 0.5, 0, 1), _e("sand"))
        width = river.width_dry + (river.width_wet - river.width_dry) * wet
        # Rivers carry more sediment in flood; partial pixels mix water with the bank.
        water = _e("water_clear") + (_e("water_river_wet") - _e("water_clear")) * wet
        _paint(refl, np.clip(width / 2 - dist + 0.5, 0, 1), water)
    refl += scene.static_frac * (scene.static_spec - refl)

    t = when.toordinal()
    for p in scene.patches:
        if p.kind == "burn_scar" and p.event and p.end and t >= p.event.toordinal():
            rains = p.end - dt.timedelta(days=75)
            if when < rains:  # ash blows away slowly until the rains wash it out
                char = 1.0 - 0.3 * (t - p.event.toordinal()) / max((rains - p.event).days, 1)
            else:
                char = 0.7 * max(0.0, 1.0 - (when - rains).days / 75)
            if char > 0:
                _paint(refl[(slice(None), *p.window)], p.mask * char, _e("char"))
        elif p.kind == "cleared_field" and p.event and when >= p.event:
            _paint(refl[(slice(None), *p.window)], p.mask.astype(np.float32), _field_spectrum(when))

    moist = 1.0 - _col(MOISTURE_DARKENING)[:, 0, 0] * wet
    for pit in scene.pits:
        if when < pit.opened:
            continue
        days = (when - pit.opened).days
        frac = 0.3 + 0.7 * min(1.0, days / pit.grow_days)
        open_mask = pit.rank <= frac
        sub = refl[(slice(None), *pit.window)]
        _paint(sub, open_mask.astype(np.float32), (pit.gravel * moist)[:, None, None] * pit.texture)
        if pit.flood_date and when >= pit.flood_date:
            # The pond fills within a month and rises with the water table in the rains.
            fill = min(1.0, (when - pit.flood_date).days / 30)
            share = pit.flood_share * fill * (0.75 + 0.25 * wet)
            _paint(sub, (open_mask & (pit.rank <= share)).astype(np.float32), _e("water_turbid"))
        if pit.abandon_date and when >= pit.abandon_date:
            span = max((scene.spec.end - pit.abandon_date).days, 1)
            cover = 0.5 * min(1.0, (when - pit.abandon_date).days / span) ** 0.8
            pioneer = _e("grass_dry") + (_e("grass_green") - _e("grass_dry")) * g
            _paint(sub, open_mask * np.float32(cover) * pit.texture, pioneer)
    return refl


def _field_spectrum(when: date) -> np.ndarray:
    """Crop calendar: bare Feb-May, crop Jun-Sep (NDVI ~0.7), harvest Oct, stubble Nov-Jan."""
    doy = when.timetuple().tm_yday
    soil, crop, dry = _e("field_soil"), _e("crop"), _e("grass_dry")
    if 32 <= doy < 152:
        return soil
    if 152 <= doy < 268:
        c = 0.8 * min(1.0, (doy - 152) / 49)
        return soil * (1 - c) + crop * c
    if 268 <= doy < 304:
        c = 0.8 * (304 - doy) / 36
        return soil * 0.2 + crop * c + dry * (0.8 - c)
    return soil * 0.5 + dry * 0.5


def _cloud_layers(
    scene: _Scene, index: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Cloud opacity and the opacity of the cloud casting a shadow on each pixel (ny, nx)."""
    ny, nx = scene.grid.shape
    cover = scene.cloud_cover[index]
    if cover <= 0:
        zero = np.zeros((ny, nx), np.float32)
        return zero, zero
    oy, ox = scene.spec.shadow_offset_px
    pad = (ny + oy, nx + ox)  # the clouds south-east of the scene cast shadows into it
    if cover >= 1:
        opacity = np.clip(0.8 + 0.15 * _smooth(rng, pad, 20.0), 0.55, 1.0)
    else:
        sigma = scene.cloud_sigma[index]
        field = 0.75 * _smooth(rng, pad, sigma) + 0.25 * _smooth(rng, pad, sigma / 3)
        thr = np.quantile(field[:ny, :nx], 1.0 - cover)
        opacity = np.clip((field - thr) / 0.8, 0.0, 1.0)  # soft edges over 0.8 sd
    return opacity[:ny, :nx].astype(np.float32), opacity[oy:oy + ny, ox:ox + nx].astype(np.float32)


def _classify(
    refl10_at20: np.ndarray, refl20: np.ndarray, cloud: np.ndarray, shadow: np.ndarray,
    nodata: np.ndarray, rng: np.random.Generator, *, missed_edge: float, missed_shadow: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sen2Cor-like SCL at 20 m, with its omissions; returns (scl, cloud truth, shadow truth)."""
    green, red, nir = refl10_at20[1], refl10_at20[2], refl10_at20[3]
    swir16 = refl20[1]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    mndwi = (green - swir16) / np.maximum(green + swir16, 1e-6)
    scl = np.where(ndvi > 0.4, 4, 5).astype(np.uint8)
    scl[(nir < 0.11) & (swir16 < 0.15)] = 2  # char and deep shade
    scl[(mndwi > 0.2) & (nir < 0.15)] = 6
    truth_cloud = cloud >= 0.1
    truth_shadow = (shadow >= 0.25) & ~truth_cloud
    weak = shadow < 0.45
    scl[truth_shadow & ~(weak & (rng.random(shadow.shape) < missed_shadow))] = 3
    scl[(cloud >= 0.04) & ~truth_cloud] = 7
    edge = truth_cloud & (cloud < 0.3)
    scl[edge & (rng.random(cloud.shape) >= missed_edge)] = 10
    scl[(cloud >= 0.3) & (cloud < 0.6)] = 8
    scl[cloud >= 0.6] = 9
    scl[nodata] = 0
    return scl, truth_cloud & ~nodata, truth_shadow & ~nodata


# ============================================================================================
# Writing: COGs, STAC, truth, AOI
# ============================================================================================


def _write_frame_cogs(frame: _Frame, grid: _Grid, item_dir: Path) -> None:
    nodata10 = np.repeat(np.repeat(frame.nodata20, 2, 0), 2, 1)
    for band, arr in zip(BANDS_10M, frame.refl10, strict=True):
        _write_cog(item_dir / f"{ASSETS[band][0]}.tif", _to_dn(arr, nodata10),
                   grid.transform, grid.epsg)
    for band, arr in zip(BANDS_20M, frame.refl20, strict=True):
        _write_cog(item_dir / f"{ASSETS[band][0]}.tif", _to_dn(arr, frame.nodata20),
                   grid.transform20, grid.epsg)
    _write_cog(item_dir / "SCL.tif", frame.scl, grid.transform20, grid.epsg, resampling="nearest")


def _to_dn(refl: np.ndarray, nodata: np.ndarray) -> np.ndarray:
    dn = np.clip(np.rint((refl - DN_OFFSET) / DN_SCALE), 1, 65535).astype(np.uint16)
    dn[nodata] = 0
    return dn


def _write_cog(path: Path, arr: np.ndarray, transform: Affine, epsg: int, *,
               resampling: str = "average", nodata: float | None = 0, predictor: int = 2) -> None:
    profile = dict(driver="COG", width=arr.shape[1], height=arr.shape[0], count=1,
                   dtype=arr.dtype.name, crs=CRS.from_epsg(epsg), transform=transform,
                   nodata=nodata, compress="DEFLATE", predictor=predictor, blocksize=256,
                   overview_resampling=resampling)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr, 1)


def _item_id(scene: _Scene, index: int) -> str:
    return f"{_platform(index)[0]}_{scene.tile}_{scene.dates[index]:%Y%m%d}_0_L2A"


def _platform(index: int) -> tuple[str, str]:
    # Alternate the two satellites so both platform values appear in the demo.
    return ("S2A", "sentinel-2a") if index % 2 == 0 else ("S2B", "sentinel-2b")


def _item_dict(scene: _Scene, index: int, frame: _Frame, item_id: str) -> dict[str, Any]:
    grid, when = scene.grid, scene.dates[index]
    sensed = dt.datetime(when.year, when.month, when.day, 10, 50, 19 + index % 30, 24000)
    geometry, bbox = _footprint_4326(grid)
    valid = ~frame.nodata20
    n_valid = max(int(valid.sum()), 1)

    def pct(*classes: int) -> float:
        return round(100.0 * float(np.isin(frame.scl[valid], classes).sum()) / n_valid, 6)

    plat, platform = _platform(index)
    stamp = f"{when:%Y%m%d}T{sensed:%H%M%S}"
    zone, band_letter, square = scene.tile[:2], scene.tile[2], scene.tile[3:]
    properties: dict[str, Any] = {
        "datetime": sensed.isoformat(timespec="microseconds") + "Z",
        "platform": platform, "constellation": "sentinel-2", "instruments": ["msi"],
        "eo:cloud_cover": round(frame.cloud_cover_pct, 6),
        "proj:epsg": grid.epsg, "proj:code": f"EPSG:{grid.epsg}",
        "mgrs:utm_zone": int(zone), "mgrs:latitude_band": band_letter, "mgrs:grid_square": square,
        "grid:code": f"MGRS-{scene.tile}",
        "s2:product_type": "S2MSI2A", "s2:processing_baseline": "05.10",
        "s2:product_uri": f"{plat}_MSIL2A_{stamp}_N0510_R037_T{scene.tile}_{stamp}.SAFE",
        "s2:nodata_pixel_percentage": round(100.0 * float(frame.nodata20.mean()), 6),
        "s2:saturated_defective_pixel_percentage": 0, "s2:dark_features_percentage": pct(2),
        "s2:cloud_shadow_percentage": pct(3), "s2:vegetation_percentage": pct(4),
        "s2:not_vegetated_percentage": pct(5), "s2:water_percentage": pct(6),
        "s2:unclassified_percentage": pct(7), "s2:medium_proba_clouds_percentage": pct(8),
        "s2:high_proba_clouds_percentage": pct(9), "s2:thin_cirrus_percentage": pct(10),
        "s2:snow_ice_percentage": 0, "s2:sequence": "0",
        "earthsearch:boa_offset_applied": True,
        "kp:synthetic": True,
    }
    assets: dict[str, Any] = {}
    for key, (stem, title, centre, fwhm, res) in ASSETS.items():
        shape = grid.shape if res == 10 else grid.shape20
        transform = grid.transform if res == 10 else grid.transform20
        asset: dict[str, Any] = {"href": f"./{stem}.tif", "type": COG_MEDIA_TYPE, "title": title}
        if key != "scl":
            asset["eo:bands"] = [{"name": key, "common_name": key, "center_wavelength": centre,
                                  "full_width_half_max": fwhm}]
            asset["gsd"] = res
            band = {"nodata": 0, "data_type": "uint16", "spatial_resolution": res,
                    "scale": DN_SCALE, "offset": DN_OFFSET}
        else:
            band = {"nodata": 0, "data_type": "uint8", "spatial_resolution": res}
        asset["proj:shape"] = list(shape)
        asset["proj:transform"] = [transform.a, transform.b, transform.c,
                                   transform.d, transform.e, transform.f]
        asset["raster:bands"] = [band]
        asset["roles"] = ["data", "reflectance"]
        assets[key] = asset
    return {
        "type": "Feature", "stac_version": pystac.get_stac_version(),
        "stac_extensions": list(STAC_EXTENSIONS), "id": item_id,
        "geometry": geometry, "bbox": bbox, "properties": properties, "links": [],
        "assets": assets, "collection": COLLECTION_ID,
    }


def _build_catalog(
    spec: ScenarioSpec, scene: _Scene, items: list[pystac.Item], digest: str, *,
    s1_items: list[pystac.Item] | None = None,
) -> pystac.Catalog:
    _, bbox = _footprint_4326(scene.grid)
    times = [it.datetime for it in items if it.datetime is not None]
    interval: list[dt.datetime | None] = [min(times), max(times)] if times else [None, None]
    collection = pystac.Collection(
        id=COLLECTION_ID,
        title="Sentinel-2 Level-2A Collection 1 (SYNTHETIC DEMONSTRATION)",
        description=("Synthetic Sentinel-2 L2A scenes following Earth Search sentinel-2-c1-l2a "
                     "conventions, written by pipeline.scenario. "
                     "DEMONSTRATION - SYNTHETIC IMAGERY."),
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([interval])),
        license="proprietary",
        keywords=["sentinel", "earth observation", "synthetic", "demo"],
        summaries=pystac.Summaries({"platform": ["sentinel-2a", "sentinel-2b"],
                                    "constellation": ["sentinel-2"], "instruments": ["msi"],
                                    "gsd": [10, 20]}),
    )
    collection.add_items(items)
    catalog = pystac.Catalog(
        id=f"kp-demo-{spec.aoi_id}",
        title=f"{spec.name}: synthetic Sentinel-2 L2A",
        description="DEMONSTRATION - SYNTHETIC IMAGERY. Offline demo catalog for the KP monitor.",
        extra_fields={"kp:scenario": {"spec_hash": digest, "generator_version": GENERATOR_VERSION,
                                      "aoi_id": spec.aoi_id, "synthetic": True}},
    )
    catalog.add_child(collection)
    if s1_items:
        catalog.add_child(_s1_collection(scene, s1_items))
    return catalog


def _write_opened_tif(scene: _Scene, path: Path) -> None:
    opened = np.zeros(scene.grid.shape, np.int32)
    for pit in scene.pits:
        inside = np.isfinite(pit.rank)
        # A pixel is first exposed when the growing pit reaches its rank (see _surface).
        delay = pit.grow_days * np.clip((pit.rank - 0.3) / 0.7, 0.0, 1.0)
        day = (pit.opened - _EPOCH).days + np.ceil(delay).astype(np.int32, copy=False)
        opened[pit.window] = np.where(inside, day, opened[pit.window])
    _write_cog(path, opened, scene.grid.transform, scene.grid.epsg,
               resampling="nearest", nodata=None)


def _truth_collection(scene: _Scene) -> dict[str, Any]:
    features: list[dict[str, Any]] = []
    spec = scene.spec
    for pit in scene.pits:
        mask = np.isfinite(pit.rank)
        props: dict[str, Any] = {
            "truth_id": pit.truth_id, "kind": "pit", "aoi_id": spec.aoi_id,
            "opened": pit.opened.isoformat(), "area_ha": round(float(mask.sum()) * _PIXEL_HA, 2),
            "fate": pit.fate, "grow_days": pit.grow_days,
            "flooded": pit.flood_date.isoformat() if pit.flood_date else None,
            "abandoned": pit.abandon_date.isoformat() if pit.abandon_date else None,
        }
        features.append(_feature(_mask_geometry(mask, pit.window, scene.grid), props))
    for p in scene.patches:
        props = {"truth_id": p.truth_id, "kind": "distractor", "aoi_id": spec.aoi_id,
                 "distractor_type": p.kind, "area_ha": round(float(p.mask.sum()) * _PIXEL_HA, 2),
                 "event_date": p.event.isoformat() if p.event else None,
                 "end_date": p.end.isoformat() if p.end else None,
                 "description": _DISTRACTOR_NOTES[p.kind]}
        features.append(_feature(_mask_geometry(p.mask, p.window, scene.grid), props))
    return {"type": "FeatureCollection", "name": f"{spec.aoi_id}-truth", "features": features}


_DISTRACTOR_NOTES = {
    "burn_scar": "dry-season fire: dark char, recovered about 75 days after the rains begin",
    "cleared_field": "cleared in the dry season; bare Feb-May, green crop Jun-Oct, stubble after",
    "bare_outcrop": "laterite outcrop (bowal): bare from the start, never changing",
    "settlement": "village: bright roofs and packed earth, stable",
}


def _aoi_collection(spec: ScenarioSpec, grid: _Grid) -> dict[str, Any]:
    left, bottom, right, top = grid.bounds
    inner = shapely.geometry.box(left + 100, bottom + 100, right - 100, top - 100)
    props = {
        "aoi_id": spec.aoi_id, "name": spec.name, "participant_iso3": spec.participant_iso3,
        "participant": spec.participant, "gravel_thickness_m": [0.5, 2.0],
        "grade_ct_per_m3": [0.05, 0.4],
        "params_source": "illustrative demo values; see USGS SIR 2013-5185 for Séguéla methods",
        "description": "synthetic demonstration scenario",
    }
    return {"type": "FeatureCollection", "name": spec.aoi_id,
            "features": [_feature(_to_4326(inner, grid.epsg), props)]}


# ============================================================================================
# Optional Sentinel-1 RTC collection
# ============================================================================================


@dataclass(frozen=True)
class _S1Static:
    """Per-scene radar state, drawn from its own random stream (the optical one is untouched)."""

    dates: list[date]
    texture: np.ndarray  # (2, ny, nx) multiplicative, ~0.5 dB natural heterogeneity
    pit_gravel: list[np.ndarray]  # per pit: (2,) linear gamma0 of its dry gravel
    stripes: dict[int, tuple[int, float, float]]  # S1 date index -> (side, width frac, slope)
    relative_orbit: int
    first_absolute_orbit: int


def _write_s1_items(scene: _Scene, coll_dir: Path) -> list[pystac.Item]:
    """Render and write every Sentinel-1 date; return the items (not yet in a catalog)."""
    s1 = _s1_static(scene)
    items: list[pystac.Item] = []
    for index, when in enumerate(s1.dates):
        rng = np.random.default_rng([scene.spec.seed, 3, when.toordinal()])
        gamma0 = _render_s1(scene, s1, when, rng)
        if index in s1.stripes:
            side, width, slope = s1.stripes[index]
            r, c = np.indices(scene.grid.shape)
            c = c if side == 0 else scene.grid.shape[1] - 1 - c
            gamma0[:, (c + slope * (r - scene.grid.shape[0] / 2)) < width * scene.grid.shape[1]] = S1_NODATA
        item_dict = _s1_item_dict(scene, s1, index)
        item_dir = coll_dir / item_dict["id"]
        item_dir.mkdir(parents=True)
        for band, arr in zip(S1_BANDS, gamma0, strict=True):
            # Overviews average linear power (= multilooking), never dB.
            _write_cog(item_dir / f"{band}.tif", arr, scene.grid.transform, scene.grid.epsg,
                       nodata=S1_NODATA, predictor=3)
        items.append(pystac.Item.from_dict(item_dict, migrate=False, preserve_dict=False))
    return items


def _s1_static(scene: _Scene) -> _S1Static:
    spec = scene.spec
    rng = np.random.default_rng([spec.seed, 2])
    first = spec.start + dt.timedelta(days=spec.s1_first_offset_days)
    dates = [first + dt.timedelta(days=d)
             for d in range(0, (spec.end - first).days + 1, spec.s1_revisit_days)]
    ny, nx = scene.grid.shape
    texture = 10 ** (0.05 * np.stack([_smooth(rng, (ny, nx), 2.0) for _ in S1_BANDS]))
    gravel = [10 ** (np.array([rng.uniform(*S1_PIT_GRAVEL_DB[b]) for b in S1_BANDS]) / 10)
              for _ in scene.pits]
    stripes = {
        int(i): (int(rng.integers(0, 2)), float(rng.uniform(0.05, 0.15)), float(rng.uniform(0.1, 0.4)))
        for i in rng.permutation(len(dates))[: spec.s1_n_nodata_stripe_dates]
    }
    # Sentinel-1A: 175 orbits per 12-day cycle; relative = (absolute - 73) mod 175 + 1 (ESA).
    # Anchored on a real pass (absolute orbit 53498 on 2024-04-19, the PC fixture); the
    # relative orbit itself is arbitrary (synthetic).
    relative = 38
    estimate = 53498 + round((dates[0] - date(2024, 4, 19)).days * 175 / 12) if dates else 0
    absolute = estimate - ((estimate - 73) % 175 + 1 - relative)
    return _S1Static(dates, texture.astype(np.float32), gravel, stripes, relative, absolute)


def _db(name: str) -> np.ndarray:
    """Linear gamma0 (VV, VH) of a surface in :data:`S1_BACKSCATTER_DB`."""
    return (10 ** (np.asarray(S1_BACKSCATTER_DB[name], np.float64) / 10)).astype(np.float32)


def _render_s1(scene: _Scene, s1: _S1Static, when: date, rng: np.random.Generator) -> np.ndarray:
    """Linear gamma0 ``(2, ny, nx)`` (VV, VH) of one Sentinel-1 date, speckle included.

    Surfaces mix in linear power with the same fractions as the optical scene. Speckle is
    multiplicative, unit mean, with ``spec.s1_enl`` equivalent looks: gamma-distributed
    noise (shape ``enl * sum(w**2)``) smoothed by the separable kernel ``w`` so that it is
    spatially correlated over about two pixels, as in 10 m IW GRDH pixels whose resolution
    cell is about 20 m; smoothing gamma(k) noise by ``w`` divides its variance by
    ``1 / sum(w**2)``, which brings the looks back to ``enl``. Clouds have no effect.
    """
    spec = scene.spec
    g = min(_seasonal(GREENNESS, when) * scene.year_amp[when.year], 1.0)
    wet = _seasonal(WETNESS, when)
    moist = (10 ** (np.asarray(S1_MOISTURE_DB) * wet / 10)).astype(np.float32)
    gpx = np.clip(g + scene.pheno, 0.0, 1.0)[None]
    grass = _col(_db("grass_dry")) + _col(_db("grass_green") - _db("grass_dry")) * gpx
    tree = _col(_db("tree_dry")) + _col(_db("tree_green") - _db("tree_dry")) * (0.55 + 0.45 * gpx)
    sig = scene.tree * tree + scene.grass * grass + scene.soil * _col(_db("soil") * moist)
    sig *= s1.texture
    _paint(sig, scene.forest, _db("forest"))
    for river in scene.rivers:
        dist = river.distance
        if river.sandy_bed:
            _paint(sig, np.clip(river.width_wet / 2 - dist + 0.5, 0, 1), _db("sand") * moist)
        width = river.width_dry + (river.width_wet - river.width_dry) * wet
        _paint(sig, np.clip(width / 2 - dist + 0.5, 0, 1), _db("water"))

    t = when.toordinal()
    for p in scene.patches:
        sub = sig[(slice(None), *p.window)]
        if p.kind == "settlement":
            _paint(sub, p.mask.astype(np.float32), _db("settlement"))
        elif p.kind == "bare_outcrop":
            _paint(sub, p.mask.astype(np.float32), _db("laterite") * moist)
        elif p.kind == "burn_scar" and p.event and p.end and t >= p.event.toordinal():
            rains = p.end - dt.timedelta(days=75)  # same char curve as the optical scene
            if when < rains:
                char = 1.0 - 0.3 * (t - p.event.toordinal()) / max((rains - p.event).days, 1)
            else:
                char = 0.7 * max(0.0, 1.0 - (when - rains).days / 75)
            sub *= (10 ** (S1_BURN_DB * char * p.mask / 10)).astype(np.float32)
        elif p.kind == "cleared_field" and p.event and when >= p.event:
            _paint(sub, p.mask.astype(np.float32), _field_backscatter(when, moist))

    # Calm pit ponds and rivers vary a little with wind from date to date.
    pond = _db("water") * np.float32(10 ** (rng.uniform(-1.0, 1.0) / 10))
    for pit, gravel in zip(scene.pits, s1.pit_gravel, strict=True):
        if when < pit.opened:
            continue
        days = (when - pit.opened).days
        frac = 0.3 + 0.7 * min(1.0, days / pit.grow_days)
        open_mask = pit.rank <= frac
        sub = sig[(slice(None), *pit.window)]
        _paint(sub, open_mask.astype(np.float32),
               (gravel * moist).astype(np.float32)[:, None, None] * pit.texture)
        if pit.flood_date and when >= pit.flood_date:
            fill = min(1.0, (when - pit.flood_date).days / 30)
            share = pit.flood_share * fill * (0.75 + 0.25 * wet)
            _paint(sub, (open_mask & (pit.rank <= share)).astype(np.float32), pond)
        if pit.abandon_date and when >= pit.abandon_date:
            span = max((spec.end - pit.abandon_date).days, 1)
            cover = 0.5 * min(1.0, (when - pit.abandon_date).days / span) ** 0.8
            pioneer = _db("grass_dry") + (_db("grass_green") - _db("grass_dry")) * g
            _paint(sub, open_mask * np.float32(cover), pioneer)

    ny, nx = scene.grid.shape
    w = _S1_SPECKLE_KERNEL
    shape = spec.s1_enl * float(np.sum(w**2)) ** 2
    raw = rng.gamma(shape, 1.0 / shape, (len(S1_BANDS), ny + 2, nx + 2))
    speckle = w[0] * raw[:, :, :-2] + w[1] * raw[:, :, 1:-1] + w[2] * raw[:, :, 2:]
    speckle = w[0] * speckle[:, :-2] + w[1] * speckle[:, 1:-1] + w[2] * speckle[:, 2:]
    return (sig * speckle).astype(np.float32)


def _field_backscatter(when: date, moist: np.ndarray) -> np.ndarray:
    """Crop calendar of :func:`_field_spectrum` in radar: bare Feb-May (like a pit), crop
    Jun-Sep, harvest Oct, stubble Nov-Jan."""
    doy = when.timetuple().tm_yday
    soil, crop, stubble = _db("field_soil") * moist, _db("crop"), _db("stubble")
    if 32 <= doy < 152:
        return soil
    if 152 <= doy < 268:
        c = 0.8 * min(1.0, (doy - 152) / 49)
        return soil * (1 - c) + crop * c
    if 268 <= doy < 304:
        c = 0.8 * (304 - doy) / 36
        return soil * 0.2 + crop * c + stubble * (0.8 - c)
    return soil * 0.5 + stubble * 0.5


def _s1_item_id(start: dt.datetime, end: dt.datetime, absolute: int) -> str:
    take = (absolute * 7919) % 0xFFFFFF  # datatake id: synthetic, stable
    return (f"S1A_IW_GRDH_1SDV_{start:%Y%m%dT%H%M%S}_{end:%Y%m%dT%H%M%S}_"
            f"{absolute:06d}_{take:06X}_rtc")


def _s1_item_dict(scene: _Scene, s1: _S1Static, index: int) -> dict[str, Any]:
    grid, spec, when = scene.grid, scene.spec, s1.dates[index]
    start = dt.datetime.combine(when, S1_PASS_UTC[spec.s1_orbit_state])
    end = start + dt.timedelta(seconds=25)
    # 175 orbits per 12 days: exact for the 12-day revisit, approximate otherwise.
    absolute = s1.first_absolute_orbit + round((when - s1.dates[0]).days * 175 / 12)
    item_id = _s1_item_id(start, end, absolute)
    geometry, bbox = _footprint_4326(grid)
    iso = "%Y-%m-%dT%H:%M:%S.%fZ"
    properties: dict[str, Any] = {
        "datetime": (start + dt.timedelta(seconds=12.5)).strftime(iso),
        "start_datetime": start.strftime(iso), "end_datetime": end.strftime(iso),
        "platform": "sentinel-1a", "constellation": "sentinel-1", "instruments": ["c-sar"],
        "sar:instrument_mode": "IW", "sar:frequency_band": "C", "sar:center_frequency": 5.405,
        "sar:polarizations": ["VV", "VH"], "sar:product_type": "GRD",
        "sar:resolution_range": 20, "sar:resolution_azimuth": 22,
        "sar:pixel_spacing_range": 10, "sar:pixel_spacing_azimuth": 10,
        "sar:looks_range": 5, "sar:looks_azimuth": 1,
        "sar:looks_equivalent_number": spec.s1_enl, "sar:observation_direction": "right",
        "sat:orbit_state": spec.s1_orbit_state, "sat:relative_orbit": s1.relative_orbit,
        "sat:absolute_orbit": absolute,
        "proj:epsg": grid.epsg, "proj:code": f"EPSG:{grid.epsg}",
        "kp:synthetic": True,
    }
    assets: dict[str, Any] = {}
    for band in S1_BANDS:
        pol = band.upper()
        assets[band] = {
            "href": f"./{band}.tif", "type": COG_MEDIA_TYPE, "roles": ["data"],
            "title": f"{pol}: vertical transmit, {'vertical' if pol == 'VV' else 'horizontal'} receive",
            "description": f"Terrain-corrected gamma naught ({pol}), linear power. SYNTHETIC.",
            "proj:shape": list(grid.shape),
            "proj:transform": [grid.transform.a, grid.transform.b, grid.transform.c,
                               grid.transform.d, grid.transform.e, grid.transform.f],
            "raster:bands": [{"nodata": S1_NODATA, "data_type": "float32", "spatial_resolution": 10.0}],
        }
    return {
        "type": "Feature", "stac_version": pystac.get_stac_version(),
        "stac_extensions": list(S1_STAC_EXTENSIONS), "id": item_id,
        "geometry": geometry, "bbox": bbox, "properties": properties, "links": [],
        "assets": assets, "collection": S1_COLLECTION_ID,
    }


def _s1_collection(scene: _Scene, items: list[pystac.Item]) -> pystac.Collection:
    _, bbox = _footprint_4326(scene.grid)
    times = [it.datetime for it in items if it.datetime is not None]
    interval: list[dt.datetime | None] = [min(times), max(times)] if times else [None, None]
    collection = pystac.Collection(
        id=S1_COLLECTION_ID,
        title="Sentinel-1 RTC (SYNTHETIC DEMONSTRATION)",
        description=("Synthetic Sentinel-1 IW radiometrically terrain-corrected gamma0 (VV, VH, "
                     "linear power, float32) following the Planetary Computer sentinel-1-rtc "
                     "conventions, written by pipeline.scenario. DEMONSTRATION - SYNTHETIC IMAGERY."),
        extent=pystac.Extent(pystac.SpatialExtent([bbox]), pystac.TemporalExtent([interval])),
        license="proprietary",
        keywords=["sentinel", "radar", "synthetic", "demo"],
        summaries=pystac.Summaries({"platform": ["sentinel-1a"], "constellation": ["sentinel-1"],
                                    "instruments": ["c-sar"], "sar:instrument_mode": ["IW"],
                                    "sar:polarizations": ["VV", "VH"], "gsd": [10]}),
    )
    collection.add_items(items)
    return collection


# ============================================================================================
# Small helpers
# ============================================================================================


def _wave(rng: np.random.Generator, t: np.ndarray, wavelength: float) -> np.ndarray:
    """A sine of ``t`` with the given wavelength and a random phase (river meanders)."""
    return np.sin(2 * np.pi * t / wavelength + rng.uniform(0, 2 * np.pi))


def _e(name: str) -> np.ndarray:
    return np.asarray(ENDMEMBERS[name], np.float32)


def _col(values: tuple[float, ...] | np.ndarray) -> np.ndarray:
    return np.asarray(values, np.float32)[:, None, None]


def _paint(refl: np.ndarray, frac: np.ndarray, spectrum: np.ndarray) -> None:
    """Linear mixing in place: ``refl = (1 - frac) * refl + frac * spectrum``."""
    spec = spectrum if spectrum.ndim == 3 else spectrum[:, None, None]
    refl += frac * (spec - refl)


def _smooth(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Spatially correlated noise, zero mean and unit standard deviation (float32)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape, np.float32), sigma, mode="reflect")
    return ((field - field.mean()) / max(float(field.std()), 1e-12)).astype(np.float32)


def _block_mean(arr: np.ndarray) -> np.ndarray:
    """2 x 2 block mean over the last two axes: the 20 m view of a 10 m array."""
    *lead, ny, nx = arr.shape
    return arr.reshape(*lead, ny // 2, 2, nx // 2, 2).mean(axis=(-3, -1), dtype=np.float32)


def _seasonal(knots: tuple[float, ...], when: date) -> float:
    doy = when.timetuple().tm_yday
    centres = 15.2 + 30.44 * np.arange(12)
    return float(np.interp(doy, centres, knots, period=365.25))


def _next_day_on_or_after(d: date, month: int, day: int) -> date:
    candidate = date(d.year, month, day)
    return candidate if candidate >= d else date(d.year + 1, month, day)


def _distance_to_line(shape: tuple[int, int], ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Distance in pixels to a densely sampled polyline (parts may fall outside the image)."""
    ny, nx = shape
    line = np.zeros((ny + 20, nx + 20), bool)  # margin so off-image parts still count
    r, c = np.rint(ys).astype(int) + 10, np.rint(xs).astype(int) + 10
    ok = (r >= 0) & (r < ny + 20) & (c >= 0) & (c < nx + 20)
    line[r[ok], c[ok]] = True
    return ndimage.distance_transform_edt(~line)[10:-10, 10:-10].astype(np.float32)


def _blob(rng: np.random.Generator, n_px: float, *, lobes: int, roughness: float,
          elongation: float = 1.4, angle: float | None = None) -> np.ndarray:
    """Irregular connected mask of about ``n_px`` pixels: a union of ellipses, noisy edges."""
    n = max(int(round(n_px)), 4)
    r0 = math.sqrt(n / math.pi)
    half = int(2.6 * r0 * max(elongation, 1.0) ** 0.5) + 4
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    score = np.full(yy.shape, -np.inf, np.float32)
    for k in range(lobes):
        cy, cx = (0.0, 0.0) if k == 0 else rng.normal(0, 0.45 * r0, 2)
        theta = rng.uniform(0, math.pi) if angle is None else angle + rng.normal(0, 0.2)
        a = r0 * rng.uniform(0.7, 1.0) * elongation ** 0.5
        b = r0 * rng.uniform(0.6, 0.9) / elongation ** 0.5
        u = (xx - cx) * math.cos(theta) + (yy - cy) * math.sin(theta)
        v = -(xx - cx) * math.sin(theta) + (yy - cy) * math.cos(theta)
        score = np.maximum(score, 1.0 - np.hypot(u / a, v / b))
    score += roughness * _smooth(rng, yy.shape, 1.5)
    flat = score.ravel()
    mask = np.zeros(flat.shape, bool)
    mask[np.argpartition(-flat, n - 1)[:n]] = True
    labels, count = ndimage.label(mask.reshape(score.shape))
    if count > 1:  # keep the largest piece: one pit, one polygon
        sizes = ndimage.sum_labels(np.ones_like(labels), labels, range(1, count + 1))
        mask = labels == int(np.argmax(sizes)) + 1
    mask = ndimage.binary_fill_holes(mask.reshape(score.shape))
    rows, cols = np.nonzero(mask)
    return mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def _rectangle(rng: np.random.Generator, n_px: float) -> np.ndarray:
    """Slightly rotated rectangle of about ``n_px`` pixels (a cleared field)."""
    aspect = rng.uniform(1.2, 2.5)
    width = math.sqrt(n_px / aspect)
    length = width * aspect
    theta = rng.uniform(-0.35, 0.35) + (math.pi / 2 if rng.random() < 0.5 else 0.0)
    half = int(math.hypot(length, width) / 2) + 2
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    u = xx * math.cos(theta) + yy * math.sin(theta)
    v = -xx * math.sin(theta) + yy * math.cos(theta)
    mask = (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)
    rows, cols = np.nonzero(mask)
    return mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def _place(rng: np.random.Generator, occupied: np.ndarray, mask: np.ndarray, *, buffer_px: int,
           prefer: np.ndarray | None = None, tries: int = 400) -> tuple[slice, slice] | None:
    """Random window where ``mask`` (grown by ``buffer_px``) touches nothing occupied."""
    ny, nx = occupied.shape
    h, w = mask.shape
    if h + 2 > ny or w + 2 > nx:
        return None
    grown = ndimage.binary_dilation(np.pad(mask, buffer_px), iterations=buffer_px)
    padded = np.pad(occupied, buffer_px, constant_values=False)
    for attempt in range(tries):
        y0, x0 = int(rng.integers(1, ny - h)), int(rng.integers(1, nx - w))
        if prefer is not None and attempt < tries // 2 and not prefer[y0 + h // 2, x0 + w // 2]:
            continue
        if not (padded[y0:y0 + h + 2 * buffer_px, x0:x0 + w + 2 * buffer_px] & grown).any():
            return slice(y0, y0 + h), slice(x0, x0 + w)
    return None


def _mgrs_tile(lon: float, lat: float) -> str:
    """MGRS 100 km square of a point (``29PQK``): how Sentinel-2 tiles are named."""
    zone = int((lon + 180) // 6) + 1
    band = "CDEFGHJKLMNPQRSTUVWX"[min(max(int((lat + 80) // 8), 0), 19)]
    epsg = (32600 if lat >= 0 else 32700) + zone
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    column = ("STUVWXYZ", "ABCDEFGH", "JKLMNPQR")[zone % 3][int(x // 100_000) - 1]
    row = "ABCDEFGHJKLMNPQRSTUV"[(int(y // 100_000) + (5 if zone % 2 == 0 else 0)) % 20]
    return f"{zone:02d}{band}{column}{row}"


def _footprint_4326(grid: _Grid) -> tuple[dict[str, Any], list[float]]:
    geom = _to_4326(shapely.geometry.box(*grid.bounds), grid.epsg)
    return geom, [round(v, 8) for v in shapely.geometry.shape(geom).bounds]


def _to_4326(geom: shapely.Geometry, epsg: int) -> dict[str, Any]:
    to_wgs84 = Transformer.from_crs(epsg, 4326, always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs84.transform(xy[:, 0], xy[:, 1])
        return np.round(np.column_stack([lon, lat]), 8)

    # RFC 7946: exterior rings counter-clockwise.
    out = shapely.orient_polygons(shapely.transform(geom, project), exterior_cw=False)
    return dict(shapely.geometry.mapping(out))


def _mask_geometry(mask: np.ndarray, window: tuple[slice, slice], grid: _Grid) -> dict[str, Any]:
    """Vectorise a window mask on the 10 m grid and return it as GeoJSON in EPSG:4326."""
    transform = grid.transform @ Affine.translation(window[1].start, window[0].start)
    polys = [shapely.geometry.shape(g) for g, v in
             rasterio.features.shapes(mask.astype(np.uint8), mask=mask, transform=transform) if v]
    return _to_4326(shapely.union_all(polys), grid.epsg)


def _feature(geometry: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False, default=_json_default) + "\n",
                    encoding="utf-8")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, date):
        return obj.isoformat()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _spec_json(spec: ScenarioSpec) -> dict[str, Any]:
    data = json.loads(json.dumps(dataclasses.asdict(spec), default=_json_default))
    if not spec.with_s1:
        # Radar off: its knobs change nothing, so they stay out of the hash and the manifest
        # (the default demo keeps the digest and bytes it had before radar existed).
        for name in S1_SPEC_FIELDS:
            data.pop(name, None)
    return data


def _read_cached(out: Path, digest: str) -> ScenarioResult | None:
    manifest = out / "scenario.json"
    if not (manifest.exists() and (out / "catalog" / "catalog.json").exists()):
        return None
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("spec_hash") != digest:
        return None
    return _result(out, int(meta["n_items"]), int(meta["epsg"]), tuple(meta["bounds_utm"]),
                   int(meta.get("n_s1_items", 0)))


def _result(out: Path, n_items: int, epsg: int, bounds: tuple[float, ...],
            n_s1_items: int = 0) -> ScenarioResult:
    left, bottom, right, top = (float(v) for v in bounds)
    return ScenarioResult(
        catalog_path=out / "catalog" / "catalog.json", aoi_path=out / "aoi.geojson",
        truth_path=out / "truth.geojson", n_items=n_items, epsg=epsg,
        bounds_utm=(left, bottom, right, top), n_s1_items=n_s1_items,
    )
