"""Declared KP statistics, trade statistics and sanctions windows: readers and validation.

EDGE readers (``read_*``) open a CSV and hand its cells, as text with their line
numbers, to PURE validators (``validate_*``) that return a :class:`DeclaredTable`:
the good rows as a DataFrame plus the rejected rows, each with file, line and
reason. The run uses the good rows and lists the rejected ones; a file with no
usable row at all, or without the columns of the KP shape, raises
:class:`~pipeline.errors.DeclaredStatsError`.

Shipped tables (``pipeline/data/``, read through :mod:`importlib.resources`):

``declared_production.csv``
    Declared rough-diamond production per participant and period, built by
    ``tools/build_declared_production.py`` (a repository script, not shipped) from
    ``kp_production.csv`` (KP figures as copied by the trade press, ``basis`` =
    ``KP``) and the Côte d'Ivoire national series in ``non_kp_figures.csv``
    (``basis`` = ``national (DGMG)``). Where both exist for a year the KP figure is
    kept and ``preferred_over`` names the national figure it replaced. Every row
    keeps its ``source``.
``kp_trade.csv``
    A few participant-level import/export figures (KP trade shape, long form:
    one row per participant, period and flow).
``sanctions_windows.csv``
    Dated embargo, suspension and monitoring windows from
    ``sanctions_kp_timeline.csv``, each with its source (see :func:`read_windows`).

KP shape of a production table (column names are matched case-insensitively;
common aliases such as ``iso3``, ``year``, ``volume_carats`` are accepted):
``participant_iso3, participant, period, carats, value_usd[, usd_per_carat,
unit, basis, source, note]``. ``period`` is a year (``2019``) or a half-year
(``2019H1``); trade tables also accept quarters (``2019Q3``).

Sources: rows whose ``source`` is a staging copy of a site or a blog are rejected
(:mod:`~pipeline.declared.sources`, which also names the kind of every other source: KP, UN,
government, or a secondary copy).

Modules: :mod:`~pipeline.declared.read` (readers), :mod:`~pipeline.declared.validate`
(validators, with row parsing in :mod:`~pipeline.declared.rows` and
:mod:`~pipeline.declared.cells`), :mod:`~pipeline.declared.annual` (calendar-year
totals), :mod:`~pipeline.declared.periods`, :mod:`~pipeline.declared.participants`,
:mod:`~pipeline.declared.columns` (column contracts) and :mod:`~pipeline.declared.tables`
(:class:`DeclaredTable`).
"""

from __future__ import annotations

from .annual import annual_declared, annual_trade
from .columns import PRODUCTION_COLUMNS, TRADE_COLUMNS, WINDOW_COLUMNS, WINDOW_KINDS
from .columns import WindowKind as WindowKind
from .participants import KP_PARTICIPANTS
from .periods import PeriodKind as PeriodKind
from .periods import canonical_period as canonical_period
from .periods import parse_period
from .periods import period_bounds as period_bounds
from .read import DATA_DIR, read_declared_production, read_trade, read_windows
from .sources import SourceKind, source_kind, source_kind_label, source_problem
from .tables import CrosscheckTables, DeclaredTable, RejectedRow
from .validate import validate_declared, validate_trade, validate_windows

__all__ = [
    "DATA_DIR",
    "KP_PARTICIPANTS",
    "PRODUCTION_COLUMNS",
    "TRADE_COLUMNS",
    "WINDOW_COLUMNS",
    "WINDOW_KINDS",
    "CrosscheckTables",
    "DeclaredTable",
    "RejectedRow",
    "SourceKind",
    "annual_declared",
    "annual_trade",
    "parse_period",
    "read_declared_production",
    "read_trade",
    "read_windows",
    "source_kind",
    "source_kind_label",
    "source_problem",
    "validate_declared",
    "validate_trade",
    "validate_windows",
]
