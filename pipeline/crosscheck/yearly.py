"""PURE yearly aggregation: reporting periods -> AOI-years (new area split by days), the
capacity model per AOI-year, and the participant's declared production for each year."""

from __future__ import annotations

import calendar
import math
from typing import Any

import numpy as np
import pandas as pd

from .capacity import Range, estimate_carats

#: Columns of the AOI-year frame built by :func:`_years_of`.
_YEARLY_COLUMNS = (
    "participant_iso3",
    "aoi_id",
    "year",
    "disturbed_ha",
    "est_carats_low",
    "est_carats_high",
    "coverage_frac",
    "valid_frac",
    "thickness",
    "grade",
)


def _years_of(act: pd.DataFrame, aoi: pd.DataFrame, *, recovery_frac: Range) -> pd.DataFrame:
    """Split periods into calendar years (by days) and apply the capacity model per AOI-year."""
    parts = _split_years(act)
    rows = []
    records = aoi.to_dict("index")
    for (aoi_id, year), (new_ha, days, valid_days) in sorted(parts.items()):
        a = records[aoi_id]
        low, high = estimate_carats(
            new_ha,
            thickness_m=a["gravel_thickness_m"],
            grade_ct_per_m3=a["grade_ct_per_m3"],
            recovery_frac=recovery_frac,
        )
        days_in_year = 366 if calendar.isleap(year) else 365
        rows.append(
            {
                "participant_iso3": a["participant_iso3"],
                "aoi_id": aoi_id,
                "year": year,
                "disturbed_ha": new_ha,
                "est_carats_low": low,
                "est_carats_high": high,
                "coverage_frac": min(days / days_in_year, 1.0),
                "valid_frac": valid_days / days if days else math.nan,
                "thickness": a["gravel_thickness_m"],
                "grade": a["grade_ct_per_m3"],
            }
        )
    return pd.DataFrame(rows, columns=list(_YEARLY_COLUMNS))


def _split_years(act: pd.DataFrame) -> dict[tuple[str, int], list[float]]:
    """Per AOI and calendar year: ``[new_ha, days observed, valid days]``; a period spanning
    several years is split in proportion to its days."""
    parts: dict[tuple[str, int], list[float]] = {}
    for r in act.itertuples(index=False):
        s, e = r.period_start, r.period_end
        total = (e - s).days + 1
        for year in range(s.year, e.year + 1):
            ys, ye = (
                max(s, pd.Timestamp(year=year, month=1, day=1)),
                min(e, pd.Timestamp(year=year, month=12, day=31)),
            )
            days = (ye - ys).days + 1
            acc = parts.setdefault((r.aoi_id, year), [0.0, 0.0, 0.0])
            acc[0] += r.new_ha * days / total
            acc[1] += days
            acc[2] += (r.valid_fraction if math.isfinite(r.valid_fraction) else 0.0) * days
    return parts


def _declared_years(decl: pd.DataFrame) -> tuple[dict[tuple[str, int], Any], dict[str, tuple[int, int]]]:
    """Annual declared rows by ``(participant, year)``, and each participant's first and last year."""
    years_index = {(r.participant_iso3, int(r.year)): r for r in decl.itertuples(index=False)}
    span = {
        iso3: (int(g["year"].min()), int(g["year"].max())) for iso3, g in decl.groupby("participant_iso3", sort=True)
    }
    return years_index, span


def _add_declared(
    yearly: pd.DataFrame, years_index: dict[tuple[str, int], Any], *, min_coverage_frac: float = 0.0
) -> None:
    """Add ``declared_carats`` (complete years only, else NaN) and ``ratio`` to ``yearly``, in place;
    ``ratio`` is NaN for years covered less than ``min_coverage_frac`` (not comparable)."""
    declared_ct = []
    for r in yearly.itertuples(index=False):
        d = years_index.get((r.participant_iso3, int(r.year)))
        declared_ct.append(float(d.carats) if d is not None and d.complete else math.nan)
    yearly["declared_carats"] = np.asarray(declared_ct, dtype=float)
    yearly["ratio"] = [
        _ratio(lo, d) if cov >= min_coverage_frac else math.nan
        for lo, d, cov in zip(yearly["est_carats_low"], yearly["declared_carats"], yearly["coverage_frac"], strict=True)
    ]


def _ratio(low: float, declared: float) -> float:
    if math.isnan(declared):
        return math.nan
    if low == 0:
        return 0.0
    if declared == 0:
        return math.inf
    return low / declared
