"""The scene model: grid, rivers, pits and other patches, and how each changes over time.

A :class:`_Scene` holds everything that does not change from date to date (built once by
:func:`~pipeline.demo.landscape._build_scene`); the renderers of both sensors read it and
share the timelines below, so optical and radar see the same events on the same days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from affine import Affine

from .spec import ScenarioSpec

_PIXEL_HA = 0.01  # one 10 m pixel


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
    kind: str  # burn_scar | cleared_field | bare_outcrop | settlement | river_sandbar
    window: tuple[slice, slice]
    mask: np.ndarray  # bool, window-shaped
    event: date | None = None
    end: date | None = None  # burn: recovered by; field: end of first green season
    note: str | None = None  # truth description, if not the kind's usual one
    events: tuple[date, ...] = ()  # every event of a recurring distractor (truth only)


@dataclass(frozen=True)
class _River:
    distance: np.ndarray  # pixels from the centre line (ny, nx)
    width_dry: float  # water width in pixels at the driest time of the year
    width_wet: float  # ... and at peak flood (also the width of the channel bed)
    sandy_bed: bool  # a seasonal stream whose bed shows as sand when low


@dataclass(frozen=True)
class _SandbarRiver:
    """A seasonal sandy river (``spec.sandbar_river``): channel, bars, and how the bars flood."""

    channel: np.ndarray  # float32 (ny, nx): low-water channel fraction (water all year)
    bars: np.ndarray  # bool (ny, nx): sandbars and banks
    level: np.ndarray  # float32 (ny, nx): bar height, 0 at the channel .. 1 at the outer bank
    cover: np.ndarray  # float32 (ny, nx): density of the grass on the bars in the rains

    @property
    def footprint(self) -> np.ndarray:
        return self.bars | (self.channel > 0)


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
    # Harder cases, all empty at their spec defaults (see pipeline.demo.spec.HARD_CASE_FIELDS).
    sandbar: _SandbarRiver | None = None
    haze: dict[int, float] = field(default_factory=dict)  # date index -> missed haze strength
    jitter: dict[int, tuple[float, float]] = field(default_factory=dict)  # index -> (dy, dx) px


# --- Timelines shared by the optical and radar renderers ----------------------------------


def _burn_char(p: _Patch, when: date) -> float:
    """Char left on a burn scar (``p.event`` on or before ``when``): 1 when fresh, 0 when gone.

    Ash blows away slowly until the rains (75 days before ``p.end``) wash it out.
    """
    assert p.event is not None and p.end is not None
    t = when.toordinal()
    rains = p.end - dt.timedelta(days=75)
    if when < rains:
        return 1.0 - 0.3 * (t - p.event.toordinal()) / max((rains - p.event).days, 1)
    return 0.7 * max(0.0, 1.0 - (when - rains).days / 75)


def _pit_open_mask(pit: _Pit, when: date) -> np.ndarray:
    """Window-shaped mask of the part of an opened pit dug by ``when`` (see :class:`_Pit`)."""
    days = (when - pit.opened).days
    frac = 0.3 + 0.7 * min(1.0, days / pit.grow_days)
    return pit.rank <= frac


def _pond_share(pit: _Pit, when: date, wet: float) -> float:
    """Rank below which a flooded pit is under water: the pond fills within a month and
    rises with the water table in the rains."""
    assert pit.flood_date is not None
    fill = min(1.0, (when - pit.flood_date).days / 30)
    return pit.flood_share * fill * (0.75 + 0.25 * wet)


def _regrowth_cover(pit: _Pit, when: date, end: date) -> float:
    """Share of an abandoned pit that pioneer grass has covered by ``when`` (0.5 at ``end``)."""
    assert pit.abandon_date is not None
    span = max((end - pit.abandon_date).days, 1)
    return 0.5 * min(1.0, (when - pit.abandon_date).days / span) ** 0.8
