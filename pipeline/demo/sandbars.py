"""A seasonal sandy river (``ScenarioSpec.sandbar_river``): sandbars and banks that are bare
bright sand in the dry season, grassy in the rains and flooded at high water, every year alike.

Its geometry draws from its own random stream, seeded by ``[spec.seed, SANDBAR_SEED]``: with
the option off nothing is drawn, and with it on the other features' random draws are
untouched (only their placement changes, as they keep clear of the river). Both sensors paint
it from the same seasonal state (:func:`_sandbar_state`).
"""

from __future__ import annotations

from datetime import date

import numpy as np
from scipy import ndimage

from .scene import _Patch, _SandbarRiver
from .shapes import _distance_to_line, _smooth, _wave
from .spec import ScenarioSpec
from .surfaces import (
    MOISTURE_DARKENING,
    SANDBAR_FLOOD,
    SANDBAR_GREEN,
    _db,
    _e,
    _paint,
    _seasonal,
)

SANDBAR_SEED = 7301
#: Half-width of the low-water channel, pixels (a 30 m wide stream in the dry season).
_CHANNEL_HALF = 1.5
#: Bars narrower than this (pixels) are left out: the bank is just savanna there.
_MIN_BAR_PX = 1.0
#: Bar pieces smaller than this (pixels) are dropped.
_MIN_PIECE_PX = 8


def _make_sandbar_river(
    spec: ScenarioSpec, shape: tuple[int, int], other_channels: np.ndarray
) -> _SandbarRiver:
    """A meandering west-east river with bars 0-60 m wide along both sides of its channel.

    The bars keep clear of ``other_channels`` (the channels and banks of the scene's other
    rivers), so a crossing reads as a confluence.
    """
    rng = np.random.default_rng([spec.seed, SANDBAR_SEED])
    ny, nx = shape
    xx = np.arange(-5, nx + 5, 0.25)
    bend = (0.06 * ny * _wave(rng, xx, rng.uniform(0.5, 0.9) * nx)
            + 0.02 * ny * _wave(rng, xx, rng.uniform(0.12, 0.25) * nx))
    width = np.clip(3.6 + 2.0 * _smooth(rng, shape, 8.0), 0.0, 6.0)  # bar width per side, px
    rough = 0.12 * _smooth(rng, shape, 2.0)
    cover = np.clip(0.85 + 0.1 * _smooth(rng, shape, 3.0), 0.6, 1.0)
    dist = _quietest_course(rng, shape, xx, bend, other_channels)
    channel = np.clip(_CHANNEL_HALF - dist + 0.5, 0.0, 1.0)
    bars = ((dist > _CHANNEL_HALF) & (dist <= _CHANNEL_HALF + width) & (width >= _MIN_BAR_PX)
            & ~other_channels)
    bars = _drop_specks(bars, _MIN_PIECE_PX)
    level = np.clip((dist - _CHANNEL_HALF) / np.maximum(width, _MIN_BAR_PX) + rough, 0.0, 1.0)
    return _SandbarRiver(channel.astype(np.float32), bars, level.astype(np.float32),
                         cover.astype(np.float32))


def _quietest_course(
    rng: np.random.Generator, shape: tuple[int, int], xx: np.ndarray, bend: np.ndarray,
    other_channels: np.ndarray,
) -> np.ndarray:
    """Distance to the river's centre line, at the latitude (of a few random ones) where its
    corridor overlaps the other rivers least."""
    ny = shape[0]
    best: tuple[int, np.ndarray] | None = None
    for y0 in rng.uniform(0.2, 0.8, 5) * ny:
        dist = _distance_to_line(shape, y0 + bend, xx)
        overlap = int((other_channels & (dist < 10)).sum())
        if best is None or overlap < best[0]:
            best = (overlap, dist)
    assert best is not None
    return best[1]


def _drop_specks(mask: np.ndarray, min_px: int) -> np.ndarray:
    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, range(1, count + 1))
    keep = np.concatenate([[False], sizes >= min_px])
    return keep[labels]


def _sandbar_patches(river: _SandbarRiver) -> list[_Patch]:
    """One truth distractor per bar (connected piece of the bars), in raster order."""
    labels, _ = ndimage.label(river.bars)
    patches: list[_Patch] = []
    for k, win in enumerate(ndimage.find_objects(labels), start=1):
        if win is None:
            continue
        window = (win[0], win[1])
        patches.append(_Patch(f"sandbar-{len(patches) + 1:02d}", "river_sandbar", window,
                              labels[window] == k))
    return patches


def _sandbar_state(when: date) -> tuple[float, float]:
    """(flood level as a share of bar height, grass cover) on ``when``; the same every year."""
    return _seasonal(SANDBAR_FLOOD, when), _seasonal(SANDBAR_GREEN, when)


def _paint_sandbars(refl: np.ndarray, river: _SandbarRiver, when: date, wet: float) -> None:
    """Optical: bare (damp when wet) sand or grass on the bars, then the flood and the channel."""
    flood, green = _sandbar_state(when)
    sand = _e("sandbar") * (1.0 - np.asarray(MOISTURE_DARKENING, np.float32) * wet)
    bars = river.bars.astype(np.float32)
    grass = green * river.cover
    on_bars = sand[:, None, None] + (_e("grass_green") - sand)[:, None, None] * grass
    _paint(refl, bars, on_bars)
    water = _e("water_clear") + (_e("water_river_wet") - _e("water_clear")) * wet
    _paint(refl, (river.bars & (river.level < flood)).astype(np.float32), water)
    _paint(refl, river.channel, water)


def _s1_sandbars(sig: np.ndarray, river: _SandbarRiver, when: date, moist: np.ndarray) -> None:
    """Radar: the same states in (VV, VH) linear gamma0: sand, grass, calm water."""
    flood, green = _sandbar_state(when)
    sand = _db("sand") * moist
    grass = green * river.cover
    on_bars = sand[:, None, None] + (_db("grass_green") - sand)[:, None, None] * grass
    _paint(sig, river.bars.astype(np.float32), on_bars.astype(np.float32))
    _paint(sig, (river.bars & (river.level < flood)).astype(np.float32), _db("water"))
    _paint(sig, river.channel, _db("water"))
