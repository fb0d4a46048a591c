"""PURE: disturbed area -> carat ranges, compared with declared production, sanctions
windows and a statistical review of the declared figures themselves.

Everything here takes pandas objects plus keyword parameters and returns new
DataFrames; nothing reads files (see :mod:`pipeline.declared` for the readers).
Outputs never depend on the order of input rows: inputs are sorted on their keys
first and every output is sorted deterministically.

Capacity model (USGS volume-and-grade tradition, Chirico and colleagues, e.g. USGS SIR
2012-5256 and SIR 2013-5185)::

    carats = area (m2) x gravel thickness (m) x grade (ct/m3) x recovery (fraction)

evaluated at the low and the high end of every parameter, so a range comes out and
never a single number. The labour-based alternative (USGS production capacity) is
``miners x days worked x productivity (m3 per miner-day) x grade``.

Rules of :func:`crosscheck_production` (one row of the flags frame per raised flag):

``activity_in_embargo``
    New excavation (``new_ha`` > ``activity_min_new_ha``) in a reporting period that
    overlaps an ``embargo`` or ``suspension`` window of the AOI's participant, for the
    whole participant or for the AOI's zone. Dates are inclusive at both ends.
``capacity_exceeds_declared``
    The LOW carat estimate of an AOI-year exceeds ``capacity_ratio_flag`` times the
    participant's declared production for that year (declared > 0), in a year the monitored
    periods cover at least ``min_comparison_coverage_frac`` of (otherwise the year is not
    comparable, and its ``ratio`` is empty).
``trend_divergence``
    Between two consecutive, well-observed years the AOI's new excavation rises by at
    least ``trend_min_change_frac`` while declared production falls by at least as
    much, or the reverse.
``activity_without_declaration``
    New excavation in a year for which the participant declared zero, or for which the
    table has no figure although it has figures for that participant before and after
    (a gap). Years outside the participant's reported span raise
    :class:`~pipeline.errors.StaleStatisticsWarning` instead of a flag.

Rules of :func:`review_statistics` (the WGS-style review; ``aoi_id`` empty):

``statistics_jump``
    A period-to-period change of production, trade or certificate counts whose log
    rate is a robust outlier (median / MAD) among the participant's other changes.
``usd_per_carat_vs_history`` / ``usd_per_carat_vs_peers``
    A declared USD per carat that is a robust outlier against the participant's other
    periods, or against other participants in the same period.
``exports_exceed_supply``
    Exported carats above production plus imports for the year.

Modules: :mod:`~pipeline.crosscheck.capacity` (capacity model and parameter ranges),
:mod:`~pipeline.crosscheck.rules` (:func:`crosscheck_production` and its rules, with
:mod:`~pipeline.crosscheck.inputs` normalising its inputs and
:mod:`~pipeline.crosscheck.yearly` aggregating to AOI-years),
:mod:`~pipeline.crosscheck.review` (:func:`review_statistics`),
:mod:`~pipeline.crosscheck.columns` (output columns, rule names, the flags frame) and
:mod:`~pipeline.crosscheck.text` (number formatting in flag explanations).
"""

from __future__ import annotations

from .capacity import M2_PER_HA as M2_PER_HA
from .capacity import Range as Range
from .capacity import RangeLike as RangeLike
from .capacity import estimate_carats, estimate_carats_labour
from .columns import ACTIVITY_COLUMNS, CROSSCHECK_COLUMNS, CROSSCHECK_RULES, FLAG_COLUMNS, REVIEW_RULES
from .review import MAD_TO_SIGMA as MAD_TO_SIGMA
from .review import MEANAD_TO_SIGMA as MEANAD_TO_SIGMA
from .review import _robust_z as _robust_z  # used by tests/test_crosscheck.py
from .review import review_statistics
from .rules import crosscheck_production

__all__ = [
    "ACTIVITY_COLUMNS",
    "CROSSCHECK_COLUMNS",
    "CROSSCHECK_RULES",
    "FLAG_COLUMNS",
    "REVIEW_RULES",
    "crosscheck_production",
    "estimate_carats",
    "estimate_carats_labour",
    "review_statistics",
]
