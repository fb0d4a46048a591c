"""Building the scene once: grid, savanna, rivers, village, outcrops, fires, fields, pits, weather.

Every random draw comes from one stream seeded by ``[spec.seed, 0]``, in the order of
:func:`_build_scene`; changing that order changes every output byte. The harder cases
(:mod:`~pipeline.demo.sandbars`, :mod:`~pipeline.demo.dryseason`,
:mod:`~pipeline.demo.artifacts`) draw from streams of their own and only when switched on.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from datetime import date

import numpy as np
from affine import Affine
from pyproj import Transformer

from ..errors import ConfigError
from .artifacts import _plan_jitter, _plan_missed_haze
from .conventions import BANDS
from .dryseason import _add_fire_returns
from .sandbars import _make_sandbar_river, _sandbar_patches
from .scene import _PIXEL_HA, _Grid, _Patch, _Pit, _River, _Scene
from .shapes import _blob, _distance_to_line, _place, _rectangle, _smooth, _wave
from .spec import ScenarioSpec
from .surfaces import PIT_GRAVEL_RANGE, WETNESS, _e, _seasonal


@dataclass
class _Layout:
    """Free space and static cover while the village, outcrops, fires and fields are placed."""

    occupied: np.ndarray  # bool (ny, nx): river channels and everything placed so far
    woods: np.ndarray  # bool (ny, nx): gallery forest, kept free of everything but pits
    static_frac: np.ndarray  # bowal + village cover
    static_spec: np.ndarray  # (7, ny, nx)
    patches: list[_Patch]


def _build_scene(spec: ScenarioSpec) -> _Scene:
    """Everything that does not change from date to date, plus the per-date weather plan."""
    rng = np.random.default_rng([spec.seed, 0])
    grid = _grid_for(spec)
    ny, nx = grid.shape
    dates = [spec.start + dt.timedelta(days=d)
             for d in range(0, (spec.end - spec.start).days + 1, spec.revisit_days)]
    tree, soil, pheno, texture = _savanna(rng, (ny, nx))
    rivers, forest, channel = _make_rivers(rng, spec, (ny, nx))
    # Pits may cut into gallery forest (alluvial digging follows streams); the village,
    # outcrops, fires and fields are placed in open savanna only.
    layout = _Layout(occupied=channel.copy(), woods=forest > 0,
                     static_frac=np.zeros((ny, nx), np.float32),
                     static_spec=np.zeros((7, ny, nx), np.float32), patches=[])
    # Harder cases (own random streams; nothing drawn when off): a sandy river everything avoids.
    sandbar = _make_sandbar_river(spec, (ny, nx), channel) if spec.sandbar_river else None
    if sandbar is not None:
        layout.occupied |= sandbar.footprint
    if spec.village:
        _place_village(rng, rivers, layout)
    _place_outcrops(rng, spec, layout)
    _place_burn_scars(rng, spec, layout)
    if spec.burns_every_year:
        _add_fire_returns(spec, layout.patches, layout.occupied)
    _place_fields(rng, spec, layout)
    pits = _make_pits(rng, spec, layout.occupied)
    cloud_cover, cloud_sigma, stripes = _plan_weather(rng, spec, dates)
    years = range(spec.start.year, spec.end.year + 1)
    return _Scene(
        spec=spec, grid=grid, tile=spec.mgrs_tile or _mgrs_tile(*spec.center_lonlat),
        dates=dates, year_amp={y: float(rng.uniform(0.93, 1.05)) for y in years},
        tree=tree.astype(np.float32), grass=(1 - tree - soil).astype(np.float32),
        soil=soil.astype(np.float32), pheno=pheno, texture=texture, forest=forest,
        rivers=rivers, static_frac=layout.static_frac, static_spec=layout.static_spec, pits=pits,
        patches=layout.patches + (_sandbar_patches(sandbar) if sandbar is not None else []),
        cloud_cover=cloud_cover, cloud_sigma=cloud_sigma, stripes=stripes, sandbar=sandbar,
        haze=_plan_missed_haze(spec, cloud_cover), jitter=_plan_jitter(spec, len(dates)),
    )


# --- Grid -----------------------------------------------------------------------------------


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


def _mgrs_tile(lon: float, lat: float) -> str:
    """MGRS 100 km square of a point (``29PQK``): how Sentinel-2 tiles are named."""
    zone = int((lon + 180) // 6) + 1
    band = "CDEFGHJKLMNPQRSTUVWX"[min(max(int((lat + 80) // 8), 0), 19)]
    epsg = (32600 if lat >= 0 else 32700) + zone
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    column = ("STUVWXYZ", "ABCDEFGH", "JKLMNPQR")[zone % 3][int(x // 100_000) - 1]
    row = "ABCDEFGHJKLMNPQRSTUV"[(int(y // 100_000) + (5 if zone % 2 == 0 else 0)) % 20]
    return f"{zone:02d}{band}{column}{row}"


# --- Land cover -----------------------------------------------------------------------------


def _savanna(
    rng: np.random.Generator, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tree and bare-soil fractions, greenness offset and texture of the open savanna."""
    n_large, n_fine, n_soil = (_smooth(rng, shape, s) for s in (15.0, 1.5, 6.0))
    tree = np.clip(0.18 + 0.08 * n_large + 0.06 * n_fine, 0.03, 0.45)
    soil = np.clip(0.10 + 0.04 * n_soil, 0.02, 0.20)
    pheno = 0.07 * _smooth(rng, shape, 20.0)
    texture = 1.0 + 0.03 * _smooth(rng, shape, 1.0)
    return tree, soil, pheno, texture


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


# --- Static features and distractors --------------------------------------------------------


def _place_village(rng: np.random.Generator, rivers: list[_River], layout: _Layout) -> None:
    near = np.zeros(layout.occupied.shape, bool)
    if rivers:
        near = (rivers[0].distance > 15) & (rivers[0].distance < 45)  # a riverside village
    mask = _blob(rng, rng.uniform(1.0, 2.0) / _PIXEL_HA, lobes=3, roughness=0.2)
    win = _place(rng, layout.occupied | layout.woods, mask, buffer_px=3, prefer=near)
    if win is None:
        return
    roofs = rng.uniform(0.2, 0.5, mask.shape)
    spec_px = (_e("roof")[:, None, None] * roofs + _e("tree_green")[:, None, None] * 0.15
               + _e("compound")[:, None, None] * (0.85 - roofs))
    _stamp_static(layout, win, mask, spec_px)
    layout.occupied[win] |= mask
    layout.patches.append(_Patch("village-01", "settlement", win, mask))


def _place_outcrops(rng: np.random.Generator, spec: ScenarioSpec, layout: _Layout) -> None:
    for k in range(spec.n_bare_patches):
        mask = _blob(rng, rng.uniform(*spec.bare_patch_area_ha) / _PIXEL_HA, lobes=3, roughness=0.4)
        win = _place(rng, layout.occupied | layout.woods, mask, buffer_px=4)
        if win is None:
            continue
        tex = 1.0 + 0.05 * _smooth(rng, mask.shape, 1.5)
        _stamp_static(layout, win, mask, _e("laterite")[:, None, None] * tex)
        layout.occupied[win] |= mask
        layout.patches.append(_Patch(f"bowal-{k + 1:02d}", "bare_outcrop", win, mask))


def _stamp_static(layout: _Layout, win: tuple[slice, slice], mask: np.ndarray,
                  spectrum: np.ndarray) -> None:
    """Cover ``mask`` (in window ``win``) with a static surface of the given spectrum."""
    layout.static_frac[win] = np.maximum(layout.static_frac[win], mask)
    bands_win = (slice(None), *win)
    layout.static_spec[bands_win] = np.where(mask, spectrum, layout.static_spec[bands_win])


def _place_burn_scars(rng: np.random.Generator, spec: ScenarioSpec, layout: _Layout) -> None:
    burn_day = _next_day_on_or_after(spec.monitoring_start, 1, 10)
    for k in range(spec.n_burn_scars):
        # Harmattan-driven fire fronts run NE-SW: elongated, ragged scars.
        mask = _blob(rng, rng.uniform(*spec.burn_area_ha) / _PIXEL_HA, lobes=3,
                     roughness=0.35, elongation=2.0, angle=math.radians(45))
        win = _place(rng, layout.occupied | layout.woods, mask, buffer_px=6)
        burned = burn_day + dt.timedelta(days=int(rng.integers(0, 31)))
        if win is None or burned > spec.end:
            continue
        layout.occupied[win] |= mask
        rains = date(burned.year, 4, 25)
        layout.patches.append(_Patch(f"burn-{k + 1:02d}", "burn_scar", win, mask, burned,
                                     rains + dt.timedelta(days=75)))


def _place_fields(rng: np.random.Generator, spec: ScenarioSpec, layout: _Layout) -> None:
    clear_day = _next_day_on_or_after(spec.monitoring_start, 2, 1)
    for k in range(spec.n_fields):
        mask = _rectangle(rng, rng.uniform(*spec.field_area_ha) / _PIXEL_HA)
        win = _place(rng, layout.occupied | layout.woods, mask, buffer_px=6)
        cleared = clear_day + dt.timedelta(days=int(rng.integers(0, 41)))
        if win is None or cleared > spec.end:
            continue
        layout.occupied[win] |= mask
        layout.patches.append(_Patch(f"field-{k + 1:02d}", "cleared_field", win, mask, cleared,
                                     date(cleared.year, 10, 31)))


def _next_day_on_or_after(d: date, month: int, day: int) -> date:
    candidate = date(d.year, month, day)
    return candidate if candidate >= d else date(d.year + 1, month, day)


# --- Pits -----------------------------------------------------------------------------------


def _make_pits(rng: np.random.Generator, spec: ScenarioSpec, occupied: np.ndarray) -> list[_Pit]:
    span = (spec.end - spec.monitoring_start).days - spec.pit_open_margin_days
    offsets = np.sort(rng.integers(0, span + 1, spec.n_pits))
    # Abandonment goes to the earliest pits; flooding to a random share of the rest.
    n_flood = round(spec.flooded_fraction * max(spec.n_pits - spec.n_abandoned, 0))
    rest = list(range(min(spec.n_abandoned, spec.n_pits), spec.n_pits))
    flooded = set(rng.permutation(rest)[:n_flood].tolist()) if rest else set()
    pits: list[_Pit] = []
    for k, off in enumerate(offsets):
        win, mask = _dig_site(rng, spec, occupied, k)
        occupied[win] |= mask
        rank = _growth_rank(rng, mask)
        opened = spec.monitoring_start + dt.timedelta(days=int(off))
        gravel = _pit_gravel(rng)
        texture = 1.0 + 0.06 * _smooth(rng, mask.shape, 1.0)
        pit = _Pit(f"pit-{k + 1:02d}", win, rank, texture, opened, int(rng.integers(90, 211)),
                   "active", gravel)
        _decide_fate(rng, spec, pit, k, flooded)
        pits.append(pit)
    return pits


def _dig_site(
    rng: np.random.Generator, spec: ScenarioSpec, occupied: np.ndarray, k: int
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Window and final-extent mask of pit ``k``, squeezed in if the scene is crowded."""
    n_px = rng.uniform(*spec.pit_area_ha) / _PIXEL_HA
    lobes = int(rng.integers(2, 5))
    for attempt in range(4):  # crowded scene: squeeze closer, then dig smaller
        mask = _blob(rng, n_px * 0.7**attempt, lobes=lobes, roughness=0.15)
        win = _place(rng, occupied, mask, buffer_px=5 if attempt == 0 else 2)
        if win is not None:
            return win, mask
    raise ConfigError(
        f"ScenarioSpec: no room for pit {k + 1} of {spec.n_pits}; enlarge shape_px or "
        "reduce n_pits / pit_area_ha / distractor counts")


def _growth_rank(rng: np.random.Generator, mask: np.ndarray) -> np.ndarray:
    """Order in which the pit's pixels are dug: in (0, 1] inside ``mask``, inf outside."""
    # Digging spreads out from where it started: rank by distance + a little noise.
    yy, xx = np.nonzero(mask)
    seed_y, seed_x = yy[len(yy) // 3], xx[len(xx) // 3]
    score = np.hypot(yy - seed_y, xx - seed_x) + 1.5 * _smooth(rng, mask.shape, 2.0)[yy, xx]
    rank = np.full(mask.shape, np.inf, np.float32)
    rank[yy, xx] = (np.argsort(np.argsort(score)) + 1) / len(score)
    return rank


def _pit_gravel(rng: np.random.Generator) -> np.ndarray:
    """Dry reflectance (7,) of one pit's exposed gravel."""
    gravel = {b: rng.uniform(*PIT_GRAVEL_RANGE[b]) for b in PIT_GRAVEL_RANGE}
    gravel["green"] = (gravel["blue"] + gravel["red"]) / 2 + 0.01
    gravel["nir08"] = gravel["nir"] + rng.uniform(0.01, 0.02)
    gravel["swir22"] = min(gravel["swir22"], gravel["swir16"] - 0.02)
    return np.array([gravel[b] for b in BANDS], np.float32)


def _decide_fate(rng: np.random.Generator, spec: ScenarioSpec, pit: _Pit, k: int,
                 flooded: set[int]) -> None:
    """Abandon or flood pit ``k`` in place (if the period allows it); else it stays active."""
    abandon = pit.opened + dt.timedelta(days=int(rng.integers(180, 271)))
    flood = pit.opened + dt.timedelta(days=int(rng.integers(60, 151)))
    if k < spec.n_abandoned and abandon <= spec.end - dt.timedelta(days=60):
        pit.fate, pit.abandon_date = "abandoned", abandon
        # Diggers leave once the pit is worked out: full extent before abandonment.
        pit.grow_days = min(pit.grow_days, (abandon - pit.opened).days - 30)
    elif k in flooded and flood <= spec.end - dt.timedelta(days=20):
        pit.fate, pit.flood_date = "flooded", flood
        pit.flood_share = float(rng.uniform(0.25, 0.5))


# --- Weather --------------------------------------------------------------------------------


def _plan_weather(
    rng: np.random.Generator, spec: ScenarioSpec, dates: list[date]
) -> tuple[list[float], list[float], dict[int, tuple[int, float, float]]]:
    """Per date: cloud cover and cloud size; then the full-cloud and no-data stripe dates."""
    cover: list[float] = []
    sigma: list[float] = []
    for d in dates:
        date_cover, date_sigma = _draw_clouds(rng, spec, d)
        cover.append(date_cover)
        sigma.append(date_sigma)
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


def _draw_clouds(rng: np.random.Generator, spec: ScenarioSpec, d: date) -> tuple[float, float]:
    """(cover fraction, smoothing sigma in pixels) of the clouds on date ``d``; (0, 0) if clear."""
    wet = _seasonal(WETNESS, d)
    if rng.random() < spec.cloud_prob_by_month[d.month - 1]:
        # Wet-season cloud decks are larger: up to ~95 % cover in September.
        return float(rng.uniform(0.15 + 0.2 * wet, 0.4 + 0.55 * wet)), float(rng.uniform(12, 30))
    if rng.random() < spec.scattered_cloud_prob:
        # Small fair-weather cumulus.
        return float(rng.uniform(0.005, 0.03)), float(rng.uniform(4, 7))
    return 0.0, 0.0
