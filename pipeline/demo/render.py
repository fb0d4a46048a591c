"""Rendering one optical date: surface, cloud shadow, cloud, haze and gain, noise, no-data, SCL.

Each date draws from its own random stream, seeded by ``[spec.seed, 1, date ordinal]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from .artifacts import _add_missed_haze, _jitter
from .dryseason import _cured
from .sandbars import _paint_sandbars
from .scene import _burn_char, _pit_open_mask, _pond_share, _regrowth_cover, _Scene
from .shapes import _smooth, _swath_edge
from .surfaces import (
    GREENNESS,
    HARMATTAN,
    MOISTURE_DARKENING,
    WETNESS,
    _col,
    _crop_calendar,
    _e,
    _paint,
    _seasonal,
)

#: Additive harmattan haze at full strength (path radiance: strongest in the blue).
HAZE = (0.025, 0.018, 0.012, 0.007, 0.006, 0.003, 0.002)
#: Fraction of reflectance a full cloud shadow removes (skylight keeps the blue brighter).
SHADOW_DARKENING = (0.50, 0.55, 0.60, 0.65, 0.65, 0.70, 0.70)


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


def _render_frame(scene: _Scene, index: int) -> _Frame:
    """Surface -> cloud shadow -> cloud -> haze/gain -> noise -> nodata -> SCL (20 m)."""
    spec, when = scene.spec, scene.dates[index]
    rng = np.random.default_rng([spec.seed, 1, when.toordinal()])
    g = min(_seasonal(GREENNESS, when) * scene.year_amp[when.year], 1.0)
    wet = _seasonal(WETNESS, when)
    refl = _surface(scene, when, g, wet)
    if index in scene.jitter:  # co-registration error: the whole ground moves
        refl = _jitter(refl, scene.jitter[index])

    cloud, shadow = _cloud_layers(scene, index, rng)
    _add_atmosphere(refl, scene, when, cloud, shadow, rng)
    if index in scene.haze:  # thin haze that no cloud truth (hence no SCL flag) covers
        _add_missed_haze(refl, spec, when, scene.haze[index])
    refl10, refl20 = _add_sensor_noise(refl, scene.grid.shape, spec.sensor_noise, rng)
    cloud20, shadow20 = _block_mean(cloud), _block_mean(shadow)

    nodata20 = np.zeros(scene.grid.shape20, bool)
    if index in scene.stripes:
        nodata20 = _swath_edge(nodata20.shape, *scene.stripes[index])
    scl, truth_cloud, truth_shadow = _classify(
        _block_mean(refl10), refl20, cloud20, shadow20, nodata20, rng,
        missed_edge=spec.missed_cloud_edge_frac, missed_shadow=spec.missed_shadow_frac)
    return _Frame(refl10, refl20, scl, truth_cloud, truth_shadow, nodata20)


# --- The ground -----------------------------------------------------------------------------


def _surface(scene: _Scene, when: date, g: float, wet: float) -> np.ndarray:
    """Cloud-free surface reflectance (7, ny, nx) on the 10 m grid."""
    refl = _savanna_reflectance(scene, when, g)
    _paint_forest_and_rivers(refl, scene, g, wet)
    if scene.sandbar is not None:
        _paint_sandbars(refl, scene.sandbar, when, wet)
    refl += scene.static_frac * (scene.static_spec - refl)
    _paint_distractors(refl, scene, when)
    _paint_pits(refl, scene, when, g, wet)
    return refl


def _savanna_reflectance(scene: _Scene, when: date, g: float) -> np.ndarray:
    """Trees, grass and bare soil mixed by their fractions, at greenness ``g``."""
    gpx = np.clip(g + scene.pheno, 0.0, 1.0)[None]
    grass = _col(_e("grass_dry")) + _col(_e("grass_green") - _e("grass_dry")) * gpx
    # Savanna trees lose part of their leaves in the dry season.
    tree = _col(_e("tree_dry")) + _col(_e("tree_green") - _e("tree_dry")) * (0.55 + 0.45 * gpx)
    if scene.spec.dry_season_browning > 0:
        grass, tree = _cured(grass, tree, gpx, scene.spec.dry_season_browning, when)
    refl = scene.tree * tree + scene.grass * grass + scene.soil * _col(_e("soil"))
    refl *= scene.texture
    return refl


def _paint_forest_and_rivers(refl: np.ndarray, scene: _Scene, g: float, wet: float) -> None:
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


def _paint_distractors(refl: np.ndarray, scene: _Scene, when: date) -> None:
    """Burn scars and cleared fields (the village and outcrops are in ``static_spec``)."""
    t = when.toordinal()
    for p in scene.patches:
        if p.kind == "burn_scar" and p.event and p.end and t >= p.event.toordinal():
            char = _burn_char(p, when)
            if char > 0:
                _paint(refl[(slice(None), *p.window)], p.mask * char, _e("char"))
        elif p.kind == "cleared_field" and p.event and when >= p.event:
            _paint(refl[(slice(None), *p.window)], p.mask.astype(np.float32), _field_spectrum(when))


def _field_spectrum(when: date) -> np.ndarray:
    """Crop calendar: bare Feb-May, crop Jun-Sep (NDVI ~0.7), harvest Oct, stubble Nov-Jan."""
    return _crop_calendar(when, _e("field_soil"), _e("crop"), _e("grass_dry"))


def _paint_pits(refl: np.ndarray, scene: _Scene, when: date, g: float, wet: float) -> None:
    """Wet or dry gravel of the part dug so far, then its pond or pioneer grass."""
    moist = 1.0 - _col(MOISTURE_DARKENING)[:, 0, 0] * wet
    for pit in scene.pits:
        if when < pit.opened:
            continue
        open_mask = _pit_open_mask(pit, when)
        sub = refl[(slice(None), *pit.window)]
        _paint(sub, open_mask.astype(np.float32), (pit.gravel * moist)[:, None, None] * pit.texture)
        if pit.flood_date and when >= pit.flood_date:
            share = _pond_share(pit, when, wet)
            _paint(sub, (open_mask & (pit.rank <= share)).astype(np.float32), _e("water_turbid"))
        if pit.abandon_date and when >= pit.abandon_date:
            cover = _regrowth_cover(pit, when, scene.spec.end)
            pioneer = _e("grass_dry") + (_e("grass_green") - _e("grass_dry")) * g
            _paint(sub, open_mask * np.float32(cover) * pit.texture, pioneer)


# --- The atmosphere and the sensor ----------------------------------------------------------


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


def _add_atmosphere(refl: np.ndarray, scene: _Scene, when: date, cloud: np.ndarray,
                    shadow: np.ndarray, rng: np.random.Generator) -> None:
    """Darken shadows, blend in clouds, add harmattan haze and a per-band gain, in place."""
    refl *= 1.0 - _col(SHADOW_DARKENING) * (0.9 * shadow)
    brightness = rng.uniform(0.85, 1.1)
    refl += cloud * (_e("cloud")[:, None, None] * brightness - refl)
    haze = _seasonal(HARMATTAN, when) * rng.uniform(0.4, 1.0)
    refl += _col(HAZE) * haze * (1.0 + 0.25 * scene.pheno / 0.07)
    gain = 1.0 + rng.normal(0, 0.015) + rng.normal(0, 0.005, 7)
    refl *= gain.astype(np.float32)[:, None, None]


def _add_sensor_noise(refl: np.ndarray, shape: tuple[int, int], noise: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 10 m bands (4, ny, nx) and 20 m bands (3, ny/2, nx/2) of a (7, ny, nx) scene."""
    ny, nx = shape
    refl10 = refl[:4] + rng.normal(0, noise, (4, ny, nx)).astype(np.float32)
    refl20 = _block_mean(refl[4:])
    refl20 += rng.normal(0, noise, refl20.shape).astype(np.float32)
    return refl10, refl20


def _block_mean(arr: np.ndarray) -> np.ndarray:
    """2 x 2 block mean over the last two axes: the 20 m view of a 10 m array."""
    *lead, ny, nx = arr.shape
    return arr.reshape(*lead, ny // 2, 2, nx // 2, 2).mean(axis=(-3, -1), dtype=np.float32)


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
