"""PURE: round output tables to the precision their values carry, and no further.

Float arithmetic leaves noise (``2115.0000000000005``, ``0.8932983616527922``) that a reader
takes for precision. The written tables round each column to what the measurement supports;
computations (flags, ratios) use the unrounded values before writing.

- hectares to 0.01 ha (one 10 m pixel is 0.01 ha);
- fractions, ratios and confidences to 0.01;
- carat estimates to 2 significant figures: their low-high range spans a factor of tens
  (:mod:`pipeline.crosscheck`), so a third digit says nothing;
- declared carats are kept as published;
- coordinates: 7 decimals of a degree (:data:`pipeline.geometry.COORD_DECIMALS_DEG`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "ACTIVITY_PRECISION",
    "CROSSCHECK_PRECISION",
    "SITE_PRECISION",
    "Precision",
    "round_significant",
    "round_table",
]

#: ``("dp", n)``: n decimal places; ``("sf", n)``: n significant figures.
Precision = tuple[Literal["dp", "sf"], int]

SITE_PRECISION: dict[str, Precision] = {"area_ha": ("dp", 2), "confidence": ("dp", 2)}
ACTIVITY_PRECISION: dict[str, Precision] = {
    "disturbed_ha": ("dp", 2), "new_ha": ("dp", 2), "valid_fraction": ("dp", 2),
}
CROSSCHECK_PRECISION: dict[str, Precision] = {
    "disturbed_ha": ("dp", 2),
    "est_carats_low": ("sf", 2),
    "est_carats_high": ("sf", 2),
    "ratio": ("dp", 2),
    "coverage_frac": ("dp", 2),
}


def round_significant(value: Any, digits: int = 2) -> float:
    """``value`` rounded to ``digits`` significant figures (NaN, inf and 0 unchanged).

    >>> round_significant(2141.2500000000005), round_significant(123336.00000000003), round_significant(0.0)
    (2100.0, 120000.0, 0.0)
    >>> round_significant(641.25, 3)
    641.0
    """
    v = float(value)
    if not math.isfinite(v) or v == 0:
        return v
    exponent = math.floor(math.log10(abs(v)))
    return float(round(v, digits - 1 - exponent))


def round_table(frame: pd.DataFrame, precision: Mapping[str, Precision]) -> pd.DataFrame:
    """A copy of ``frame`` with each column of ``precision`` that it has rounded as given
    (non-numeric cells are left alone).

    >>> round_table(pd.DataFrame({"ratio": [0.8932983616527922], "x": ["a"]}), {"ratio": ("dp", 2)})
       ratio  x
    0   0.89  a
    """
    out = frame.copy()
    for column, (kind, digits) in precision.items():
        if column not in out.columns:
            continue
        values = pd.to_numeric(out[column], errors="coerce")
        if kind == "dp":
            rounded = values.round(digits)
        else:
            rounded = values.map(lambda v, d=digits: round_significant(v, d) if pd.notna(v) else v)
        keep = values.isna() & out[column].notna()  # text the column held: left as it was
        out[column] = np.where(keep, out[column], rounded) if keep.any() else rounded
    return out
