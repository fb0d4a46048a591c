"""Imperfections of real time series that the SCL does not flag: thin haze on clear dates
(``ScenarioSpec.missed_haze_frac``) and co-registration jitter (``ScenarioSpec.jitter_px``).

Both plan their dates once per scene from their own random streams (``[seed, HAZE_SEED]``,
``[seed, JITTER_SEED]``) and draw the haze pattern of a date from ``[seed, HAZE_SEED, date
ordinal]``; at their defaults they plan nothing and draw nothing.
"""

from __future__ import annotations

from datetime import date

import numpy as np
from scipy import ndimage

from .shapes import _smooth
from .spec import ScenarioSpec
from .surfaces import _col

HAZE_SEED = 7303
JITTER_SEED = 7304
#: Additive path radiance of thin haze at strength 1 (aerosol scattering: strongest in the blue).
THIN_HAZE = (0.050, 0.038, 0.026, 0.014, 0.012, 0.005, 0.003)
#: Share of the surface signal the same haze takes away (transmission loss).
THIN_HAZE_LOSS = (0.060, 0.050, 0.045, 0.035, 0.035, 0.020, 0.015)
#: Dates below this cloud cover count as clear for the missed haze.
_CLEAR_COVER = 0.05


def _plan_missed_haze(spec: ScenarioSpec, cloud_cover: list[float]) -> dict[int, float]:
    """Date index -> haze strength (0.5-1) for ``missed_haze_frac`` of the clear dates."""
    if spec.missed_haze_frac <= 0:
        return {}
    rng = np.random.default_rng([spec.seed, HAZE_SEED])
    clear = [i for i, cover in enumerate(cloud_cover) if cover < _CLEAR_COVER]
    chosen = rng.permutation(clear)[: round(spec.missed_haze_frac * len(clear))]
    return {int(i): float(rng.uniform(0.5, 1.0)) for i in sorted(chosen.tolist())}


def _add_missed_haze(refl: np.ndarray, spec: ScenarioSpec, when: date, strength: float) -> None:
    """Thin patchy haze over the whole frame ``(7, ny, nx)``, in place (no cloud truth, so the
    SCL leaves it unflagged)."""
    rng = np.random.default_rng([spec.seed, HAZE_SEED, when.toordinal()])
    pattern = strength * np.clip(0.8 + 0.3 * _smooth(rng, refl.shape[1:], 25.0), 0.3, 1.3)
    refl *= 1.0 - _col(THIN_HAZE_LOSS) * pattern
    refl += _col(THIN_HAZE) * pattern


def _plan_jitter(spec: ScenarioSpec, n_dates: int) -> dict[int, tuple[float, float]]:
    """Date index -> (dy, dx) shift in 10 m pixels, normal with ``jitter_px`` per axis."""
    if spec.jitter_px <= 0:
        return {}
    rng = np.random.default_rng([spec.seed, JITTER_SEED])
    shifts = rng.normal(0.0, spec.jitter_px, (n_dates, 2))
    return {i: (float(dy), float(dx)) for i, (dy, dx) in enumerate(shifts)}


def _jitter(refl: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """``refl (7, ny, nx)`` moved by ``shift`` (dy, dx) pixels, bilinear, edges repeated."""
    return ndimage.shift(refl, (0.0, *shift), order=1, mode="nearest")
