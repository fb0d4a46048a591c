"""A harsher dry season: savanna that cures to straw (``ScenarioSpec.dry_season_browning``) and
fires that return every year (``ScenarioSpec.burns_every_year``).

Cured grass is dry vegetation, not soil: bright, NDVI and BSI close to pit gravel, but with
the cellulose-lignin absorption near 2.1 um that keeps SWIR2 well below SWIR1 (Daughtry et al.
2005; NDTI, Van Deventer et al. 1997). The fire returns draw from their own random stream,
seeded by ``[spec.seed, FIRE_SEED]``; curing draws nothing.
"""

from __future__ import annotations

import datetime as dt
from datetime import date

import numpy as np
from scipy import ndimage

from .scene import _Patch
from .shapes import _largest_piece, _smooth
from .spec import ScenarioSpec
from .surfaces import CURING, _col, _e, _seasonal

FIRE_SEED = 7302
#: How far (pixels) a returning fire's edge strays from the first scar's edge, at most.
_FIRE_EDGE_PX = 3
_FIRE_NOTE = ("dry-season fire that returns every year to about the same place: dark char "
              "(NBR < 0), fading until the rains, then regrowth")


def _cured(grass: np.ndarray, tree: np.ndarray, gpx: np.ndarray, browning: float,
           when: date) -> tuple[np.ndarray, np.ndarray]:
    """Grass and tree spectra ``(7, ny, nx)`` after dry-season curing.

    The grass turns to straw in proportion to ``browning``, the season (:data:`CURING`) and
    how dry each pixel is (``1 - gpx``); deciduous trees shed half their leaves as much, and
    the crowns show the cured litter beneath.
    """
    cure = (browning * _seasonal(CURING, when)) * (1.0 - gpx)
    straw = _col(_e("grass_cured"))
    return grass + (straw - grass) * cure, tree + (straw - tree) * (0.5 * cure)


def _add_fire_returns(spec: ScenarioSpec, patches: list[_Patch], occupied: np.ndarray) -> None:
    """Burn every scar in ``patches`` again in the other dry seasons of the period, in place.

    Each return is a new ``burn_scar`` patch with the scar's truth id (the truth merges them),
    burned between mid-December and early February, on the first scar's footprint with a
    ragged edge; ``occupied`` grows to cover it so later features keep clear.
    """
    rng = np.random.default_rng([spec.seed, FIRE_SEED])
    for scar in [p for p in patches if p.kind == "burn_scar"]:
        assert scar.event is not None
        returns: list[_Patch] = []
        for year in range(spec.start.year, spec.end.year + 1):
            burned = date(year, 1, 10) + dt.timedelta(days=int(rng.integers(-25, 31)))
            recovered = date(year, 4, 25) + dt.timedelta(days=75)  # as _place_burn_scars
            window, mask = _ragged_copy(rng, scar, occupied.shape)
            if year == scar.event.year or burned > spec.end or recovered < spec.start:
                continue
            occupied[window] |= mask
            returns.append(_Patch(scar.truth_id, "burn_scar", window, mask, burned, recovered,
                                  note=_FIRE_NOTE))
        if returns:
            scar.note = _FIRE_NOTE
        patches.extend(returns)


def _ragged_copy(rng: np.random.Generator, scar: _Patch,
                 shape: tuple[int, int]) -> tuple[tuple[slice, slice], np.ndarray]:
    """(window, mask) of a fire that burns the scar's footprint again, edge moved by up to
    :data:`_FIRE_EDGE_PX` pixels, cropped to the scene."""
    m = _FIRE_EDGE_PX
    padded = np.pad(scar.mask, m)
    signed = (ndimage.distance_transform_edt(padded)
              - ndimage.distance_transform_edt(~padded))  # > 0 inside the first scar
    mask = (signed + 1.5 * _smooth(rng, padded.shape, 2.0) > 0) & (signed >= -m)
    y0, x0 = scar.window[0].start - m, scar.window[1].start - m
    ys = slice(max(y0, 0), min(y0 + mask.shape[0], shape[0]))
    xs = slice(max(x0, 0), min(x0 + mask.shape[1], shape[1]))
    mask = mask[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
    piece = _largest_piece(mask) if mask.any() else mask
    return (ys, xs), piece
