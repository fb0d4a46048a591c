"""What each surface looks like to the two sensors, how the seasons move it, and how surfaces mix.

Optical reflectance spectra are in the band order of :data:`~pipeline.demo.conventions.BANDS`;
radar backscatter is (VV, VH) gamma0 in dB. Seasonal curves are month-centred (Jan..Dec).
"""

from __future__ import annotations

from datetime import date

import numpy as np

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
    # Harder cases (ScenarioSpec.dry_season_browning, .sandbar_river).
    "grass_cured": (0.090, 0.120, 0.180, 0.225, 0.240, 0.320, 0.215),  # straw: NDTI 0.2
    "sandbar": (0.130, 0.170, 0.210, 0.250, 0.265, 0.320, 0.275),  # dry quartz sand
}
#: Exposed gravel/laterite of pits: (low, high) per band; drawn once per pit.
PIT_GRAVEL_RANGE: dict[str, tuple[float, float]] = {
    "blue": (0.08, 0.11), "red": (0.18, 0.25), "nir": (0.25, 0.30),
    "swir16": (0.30, 0.38), "swir22": (0.25, 0.32),
}
#: Darkening of wet gravel at full wetness (water absorbs most in the SWIR).
MOISTURE_DARKENING = (0.06, 0.06, 0.07, 0.08, 0.08, 0.12, 0.12)
# Month-centred seasonal curves (Jan..Dec), northern Côte d'Ivoire.
GREENNESS = (0.12, 0.04, 0.00, 0.08, 0.30, 0.55, 0.80, 0.95, 1.00, 0.88, 0.55, 0.28)
WETNESS = (0.05, 0.00, 0.00, 0.10, 0.30, 0.50, 0.70, 0.90, 1.00, 0.85, 0.40, 0.15)
HARMATTAN = (0.90, 0.70, 0.35, 0.10, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.25, 0.70)
#: Share of the grass cured to straw at full ``dry_season_browning`` (before the greenness
#: offset of each pixel): the grass dries out from November and resprouts with the rains.
CURING = (0.85, 1.00, 1.00, 0.65, 0.15, 0.00, 0.00, 0.00, 0.00, 0.00, 0.20, 0.55)
#: Seasonal sandy river (``sandbar_river``), the same every year: flood level as a share of
#: the bar height (over 1: every bar under water; high water Aug-Oct) ...
SANDBAR_FLOOD = (0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.05, 0.55, 1.15, 0.85, 0.10, 0.00)
#: ... and grass cover on the bars (bare sand Nov-Apr, grassy in the rains).
SANDBAR_GREEN = (0.00, 0.00, 0.00, 0.05, 0.25, 0.60, 0.85, 0.85, 0.70, 0.45, 0.10, 0.00)

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


def _e(name: str) -> np.ndarray:
    return np.asarray(ENDMEMBERS[name], np.float32)


def _db(name: str) -> np.ndarray:
    """Linear gamma0 (VV, VH) of a surface in :data:`S1_BACKSCATTER_DB`."""
    return (10 ** (np.asarray(S1_BACKSCATTER_DB[name], np.float64) / 10)).astype(np.float32)


def _col(values: tuple[float, ...] | np.ndarray) -> np.ndarray:
    return np.asarray(values, np.float32)[:, None, None]


def _paint(refl: np.ndarray, frac: np.ndarray, spectrum: np.ndarray) -> None:
    """Linear mixing in place: ``refl = (1 - frac) * refl + frac * spectrum``."""
    spec = spectrum if spectrum.ndim == 3 else spectrum[:, None, None]
    refl += frac * (spec - refl)


def _seasonal(knots: tuple[float, ...], when: date) -> float:
    doy = when.timetuple().tm_yday
    centres = 15.2 + 30.44 * np.arange(12)
    return float(np.interp(doy, centres, knots, period=365.25))


def _crop_calendar(when: date, soil: np.ndarray, crop: np.ndarray, residue: np.ndarray) -> np.ndarray:
    """A cleared field through the year: bare Feb-May, crop Jun-Sep, harvest Oct, residue Nov-Jan.

    The same calendar for both sensors: give it the optical spectra or the radar backscatter.
    """
    doy = when.timetuple().tm_yday
    if 32 <= doy < 152:
        return soil
    if 152 <= doy < 268:
        c = 0.8 * min(1.0, (doy - 152) / 49)
        return soil * (1 - c) + crop * c
    if 268 <= doy < 304:
        c = 0.8 * (304 - doy) / 36
        return soil * 0.2 + crop * c + residue * (0.8 - c)
    return soil * 0.5 + residue * 0.5
