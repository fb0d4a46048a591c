"""The optional Sentinel-1 part: per-scene radar state and one date's VV/VH gamma0 with speckle.

Radar sees the same pits, distractors, rivers and seasons as the optical scene, through the
clouds. It draws from its own random streams (``[seed, 2]`` once, ``[seed, 3, date ordinal]``
per date), so turning it on leaves every optical byte unchanged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import date

import numpy as np

from .conventions import S1_BANDS, S1_NODATA
from .sandbars import _s1_sandbars
from .scene import _burn_char, _pit_open_mask, _pond_share, _regrowth_cover, _Scene
from .shapes import _smooth, _swath_edge
from .surfaces import (
    GREENNESS,
    S1_BURN_DB,
    S1_MOISTURE_DB,
    S1_PIT_GRAVEL_DB,
    WETNESS,
    _col,
    _crop_calendar,
    _db,
    _paint,
    _seasonal,
)

#: Separable smoothing kernel that gives the speckle a ~20 m correlation length (IW GRDH
#: resolution is about 20 x 22 m on 10 m pixels), so 3 x 3 windows are not 9 independent looks.
_S1_SPECKLE_KERNEL = np.array([0.25, 0.5, 0.25], np.float64)


@dataclass(frozen=True)
class _S1Static:
    """Per-scene radar state, drawn from its own random stream (the optical one is untouched)."""

    dates: list[date]
    texture: np.ndarray  # (2, ny, nx) multiplicative, ~0.5 dB natural heterogeneity
    pit_gravel: list[np.ndarray]  # per pit: (2,) linear gamma0 of its dry gravel
    stripes: dict[int, tuple[int, float, float]]  # S1 date index -> (side, width frac, slope)
    relative_orbit: int
    first_absolute_orbit: int


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
    relative, absolute = _orbits(dates)
    return _S1Static(dates, texture.astype(np.float32), gravel, stripes, relative, absolute)


def _orbits(dates: list[date]) -> tuple[int, int]:
    """(relative orbit, absolute orbit of the first date) of a Sentinel-1A date series."""
    # Sentinel-1A: 175 orbits per 12-day cycle; relative = (absolute - 73) mod 175 + 1 (ESA).
    # Anchored on a real pass (absolute orbit 53498 on 2024-04-19, the PC fixture); the
    # relative orbit itself is arbitrary (synthetic).
    relative = 38
    estimate = 53498 + round((dates[0] - date(2024, 4, 19)).days * 175 / 12) if dates else 0
    absolute = estimate - ((estimate - 73) % 175 + 1 - relative)
    return relative, absolute


def _s1_frame(scene: _Scene, s1: _S1Static, index: int) -> np.ndarray:
    """Linear gamma0 ``(2, ny, nx)`` of S1 date ``index``, with its no-data stripe if it has one."""
    when = s1.dates[index]
    rng = np.random.default_rng([scene.spec.seed, 3, when.toordinal()])
    gamma0 = _render_s1(scene, s1, when, rng)
    if index in s1.stripes:
        gamma0[:, _swath_edge(scene.grid.shape, *s1.stripes[index])] = S1_NODATA
    return gamma0


def _render_s1(scene: _Scene, s1: _S1Static, when: date, rng: np.random.Generator) -> np.ndarray:
    """Linear gamma0 ``(2, ny, nx)`` (VV, VH) of one Sentinel-1 date, speckle included.

    Surfaces mix in linear power with the same fractions as the optical scene. Speckle is
    multiplicative, unit mean, with ``spec.s1_enl`` equivalent looks: gamma-distributed
    noise (shape ``enl * sum(w**2)``) smoothed by the separable kernel ``w`` so that it is
    spatially correlated over about two pixels, as in 10 m IW GRDH pixels whose resolution
    cell is about 20 m; smoothing gamma(k) noise by ``w`` divides its variance by
    ``1 / sum(w**2)``, which brings the looks back to ``enl``. Clouds have no effect.
    """
    g = min(_seasonal(GREENNESS, when) * scene.year_amp[when.year], 1.0)
    wet = _seasonal(WETNESS, when)
    moist = (10 ** (np.asarray(S1_MOISTURE_DB) * wet / 10)).astype(np.float32)
    sig = _s1_land(scene, s1, g, wet, moist)
    if scene.sandbar is not None:
        _s1_sandbars(sig, scene.sandbar, when, moist)
    _s1_patches(sig, scene, when, moist)
    _s1_pits(sig, scene, s1, when, g, wet, moist, rng)
    return _speckle(sig, scene.spec.s1_enl, rng)


def _s1_land(scene: _Scene, s1: _S1Static, g: float, wet: float, moist: np.ndarray) -> np.ndarray:
    """Backscatter of savanna, gallery forest and rivers (2, ny, nx), linear power."""
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
    return sig


def _s1_patches(sig: np.ndarray, scene: _Scene, when: date, moist: np.ndarray) -> None:
    """Village, outcrops, burn scars and cleared fields, painted in place."""
    t = when.toordinal()
    for p in scene.patches:
        sub = sig[(slice(None), *p.window)]
        if p.kind == "settlement":
            _paint(sub, p.mask.astype(np.float32), _db("settlement"))
        elif p.kind == "bare_outcrop":
            _paint(sub, p.mask.astype(np.float32), _db("laterite") * moist)
        elif p.kind == "burn_scar" and p.event and p.end and t >= p.event.toordinal():
            char = _burn_char(p, when)  # same char curve as the optical scene
            sub *= (10 ** (S1_BURN_DB * char * p.mask / 10)).astype(np.float32)
        elif p.kind == "cleared_field" and p.event and when >= p.event:
            _paint(sub, p.mask.astype(np.float32), _field_backscatter(when, moist))


def _field_backscatter(when: date, moist: np.ndarray) -> np.ndarray:
    """Crop calendar of :func:`~pipeline.demo.render._field_spectrum` in radar: bare Feb-May
    (like a pit), crop Jun-Sep, harvest Oct, stubble Nov-Jan."""
    return _crop_calendar(when, _db("field_soil") * moist, _db("crop"), _db("stubble"))


def _s1_pits(sig: np.ndarray, scene: _Scene, s1: _S1Static, when: date, g: float, wet: float,
             moist: np.ndarray, rng: np.random.Generator) -> None:
    """Gravel of the part of each pit dug so far, then its pond or pioneer grass, in place."""
    # Calm pit ponds and rivers vary a little with wind from date to date.
    pond = _db("water") * np.float32(10 ** (rng.uniform(-1.0, 1.0) / 10))
    for pit, gravel in zip(scene.pits, s1.pit_gravel, strict=True):
        if when < pit.opened:
            continue
        open_mask = _pit_open_mask(pit, when)
        sub = sig[(slice(None), *pit.window)]
        _paint(sub, open_mask.astype(np.float32),
               (gravel * moist).astype(np.float32)[:, None, None] * pit.texture)
        if pit.flood_date and when >= pit.flood_date:
            share = _pond_share(pit, when, wet)
            _paint(sub, (open_mask & (pit.rank <= share)).astype(np.float32), pond)
        if pit.abandon_date and when >= pit.abandon_date:
            cover = _regrowth_cover(pit, when, scene.spec.end)
            pioneer = _db("grass_dry") + (_db("grass_green") - _db("grass_dry")) * g
            _paint(sub, open_mask * np.float32(cover), pioneer)


def _speckle(sig: np.ndarray, enl: float, rng: np.random.Generator) -> np.ndarray:
    """``sig`` times unit-mean, spatially correlated gamma speckle of ``enl`` looks (float32)."""
    _, ny, nx = sig.shape
    w = _S1_SPECKLE_KERNEL
    shape = enl * float(np.sum(w**2)) ** 2
    raw = rng.gamma(shape, 1.0 / shape, (len(S1_BANDS), ny + 2, nx + 2))
    speckle = w[0] * raw[:, :, :-2] + w[1] * raw[:, :, 1:-1] + w[2] * raw[:, :, 2:]
    speckle = w[0] * speckle[:, :-2] + w[1] * speckle[:, 1:-1] + w[2] * speckle[:, 2:]
    return (sig * speckle).astype(np.float32)
