"""Capacity model: carat ranges from an excavated area (volume x grade x recovery) or from
labour (miners x days x productivity x grade), and the ``[low, high]`` parameter ranges.

Every parameter is evaluated at its low and its high end, so a range comes out and never
a single number (USGS volume-and-grade tradition, e.g. USGS SIR 2012-5256, SIR 2013-5185).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from typing import Any, overload

import numpy as np

from ..errors import InputDataError

M2_PER_HA = 10_000.0

Range = tuple[float, float]
RangeLike = float | Sequence[float]


@overload
def estimate_carats(
    area_ha: float, *, thickness_m: RangeLike, grade_ct_per_m3: RangeLike, recovery_frac: RangeLike
) -> tuple[float, float]: ...
@overload
def estimate_carats(
    area_ha: np.ndarray | Sequence[float],
    *,
    thickness_m: RangeLike,
    grade_ct_per_m3: RangeLike,
    recovery_frac: RangeLike,
) -> tuple[np.ndarray, np.ndarray]: ...
def estimate_carats(
    area_ha: Any, *, thickness_m: RangeLike, grade_ct_per_m3: RangeLike, recovery_frac: RangeLike
) -> tuple[Any, Any]:
    """Carat range mined from an excavated area (volume x grade x recovery).

    Parameters
    ----------
    area_ha
        Excavated area in hectares (scalar or 1-D array), >= 0.
    thickness_m
        Gravel-bed thickness (m) as ``(low, high)`` or one value.
    grade_ct_per_m3
        Diamond grade (carats per m3 of gravel) as ``(low, high)`` or one value.
    recovery_frac
        Fraction of contained carats recovered, ``(low, high)`` in 0..1, or one value.

    Returns
    -------
    (low, high)
        Carats; floats for a scalar area, arrays for an array. ``low`` multiplies every
        low end, ``high`` every high end. Linear in ``area_ha``.

    Raises
    ------
    InputDataError
        Negative or non-finite area or parameter, ``low > high``, recovery above 1.

    Examples
    --------
    >>> estimate_carats(2.0, thickness_m=(0.5, 2.0), grade_ct_per_m3=(0.1, 0.4),
    ...                 recovery_frac=(0.5, 1.0))
    (500.0, 16000.0)
    """
    t = _as_range(thickness_m, "thickness_m")
    g = _as_range(grade_ct_per_m3, "grade_ct_per_m3")
    r = _as_range(recovery_frac, "recovery_frac", upper=1.0)
    area = np.asarray(area_ha, dtype=float)
    if area.ndim > 1:
        raise InputDataError(f"area_ha must be a scalar or 1-D, got shape {area.shape}")
    if not np.all(np.isfinite(area)) or np.any(area < 0):
        raise InputDataError("area_ha must be finite and >= 0 (hectares)")
    volume_m3 = area * M2_PER_HA
    low = volume_m3 * (t[0] * g[0] * r[0])
    high = volume_m3 * (t[1] * g[1] * r[1])
    if area.ndim == 0:
        return float(low), float(high)
    return low, high


def estimate_carats_labour(
    miners: RangeLike,
    days: RangeLike,
    productivity_m3_per_day: RangeLike,
    grade_ct_per_m3: RangeLike,
    *,
    recovery_frac: RangeLike = (1.0, 1.0),
) -> tuple[float, float]:
    """Production capacity from labour (USGS): miners x days x productivity x grade.

    Parameters
    ----------
    miners
        Number of diggers, ``(low, high)`` or one value.
    days
        Days worked per miner in the period (a year: <= 366), range or value.
    productivity_m3_per_day
        Gravel dug and washed per miner-day (m3), range or value.
    grade_ct_per_m3
        Carats per m3 of gravel, range or value.
    recovery_frac
        Fraction recovered (default 1: the USGS formula folds recovery into grade).

    Returns
    -------
    (low, high)
        Carats for the period.

    Examples
    --------
    >>> estimate_carats_labour((1000, 2000), 200, (0.5, 1.0), (0.1, 0.2))
    (10000.0, 80000.0)
    """
    m = _as_range(miners, "miners")
    d = _as_range(days, "days", upper=366.0)
    p = _as_range(productivity_m3_per_day, "productivity_m3_per_day")
    g = _as_range(grade_ct_per_m3, "grade_ct_per_m3")
    r = _as_range(recovery_frac, "recovery_frac", upper=1.0)
    return float(m[0] * d[0] * p[0] * g[0] * r[0]), float(m[1] * d[1] * p[1] * g[1] * r[1])


def _as_range(value: Any, name: str, *, upper: float | None = None) -> Range:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise InputDataError(f"{name} {value!r} is not a number or [low, high]") from None
    if np.ndim(value) == 0:
        lo = hi = float(value)
    else:
        seq = [float(v) for v in np.asarray(value, dtype=float).ravel()]
        if len(seq) != 2:
            raise InputDataError(f"{name} must be one value or [low, high], got {len(seq)} values")
        lo, hi = seq
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0 or lo > hi:
        raise InputDataError(f"{name} must be [low, high] with 0 <= low <= high, got ({lo}, {hi})")
    if upper is not None and hi > upper:
        raise InputDataError(f"{name} high end {hi} exceeds {upper}")
    return lo, hi
