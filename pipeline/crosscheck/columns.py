"""Column contracts of the cross-check outputs, rule names with their meaning, and the
builder of the flags frame shared by both rule sets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

#: ``crosscheck.csv`` contract columns, in order; one row per participant-AOI-year.
#: ``disturbed_ha`` is the area newly excavated during the year (sum of ``new_ha``; a period spanning two
#: years is split in proportion to its days): the area whose gravel volume was mined that year, not the
#: cumulative footprint. ``est_carats_low/high`` apply :func:`estimate_carats` to it. ``declared_carats``
#: is the participant's national declared production for the year (NaN when the table has no complete
#: figure). ``ratio`` = ``est_carats_low / declared_carats``: NaN when declared is missing, ``inf`` when
#: declared is 0 (0 when the estimate is 0 too), and NaN too when the year is not comparable (``coverage_frac``
#: below ``crosscheck.min_comparison_coverage_frac``). ``flags``: ``;``-joined rule names. ``coverage_frac``
#: (an extension after the contract columns): share of the calendar year's days the monitored periods cover.
CROSSCHECK_COLUMNS: tuple[str, ...] = (
    "participant_iso3",
    "aoi_id",
    "year",
    "disturbed_ha",
    "est_carats_low",
    "est_carats_high",
    "declared_carats",
    "ratio",
    "flags",
    "coverage_frac",
)
#: ``flags.csv`` columns, in order: ``rule, participant_iso3, aoi_id, period`` (``YYYY`` or
#: ``start/end`` of the reporting period), ``evidence`` (``key=value; ...``) and ``explanation``
#: (a sentence with the numbers). ``aoi_id`` is empty for the flags of the statistical review.
FLAG_COLUMNS: tuple[str, ...] = (
    "rule",
    "participant_iso3",
    "aoi_id",
    "period",
    "evidence",
    "explanation",
)
#: ``activity.csv`` contract columns.
ACTIVITY_COLUMNS: tuple[str, ...] = (
    "aoi_id",
    "period_start",
    "period_end",
    "disturbed_ha",
    "new_ha",
    "valid_fraction",
)
#: Rules of :func:`crosscheck_production` -> one-line meaning (for bulletins).
CROSSCHECK_RULES: dict[str, str] = {
    "activity_in_embargo": "new excavation in a period overlapping an embargo or suspension",
    "capacity_exceeds_declared": ("low carat estimate above the configured multiple of declared production"),
    "trend_divergence": "excavation and declared production moving in opposite directions",
    "activity_without_declaration": "new excavation in a year with zero or no declared production",
}
#: Rules of :func:`review_statistics` -> one-line meaning.
REVIEW_RULES: dict[str, str] = {
    "statistics_jump": "period-to-period jump that is a robust outlier in the participant's series",
    "usd_per_carat_vs_history": "USD per carat far from the participant's other periods",
    "usd_per_carat_vs_peers": "USD per carat far from other participants in the same period",
    "exports_exceed_supply": "exports above production plus imports",
}


def _flags_frame(flags: Iterable[dict[str, Any]]) -> pd.DataFrame:
    rows = [{c: str(f.get(c, "")) for c in FLAG_COLUMNS} for f in flags]
    frame = pd.DataFrame(rows, columns=list(FLAG_COLUMNS))
    frame = frame.astype({c: str for c in FLAG_COLUMNS})
    return frame.sort_values(list(FLAG_COLUMNS), kind="mergesort").drop_duplicates().reset_index(drop=True)
