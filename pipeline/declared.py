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
    :func:`build_declared_production` from ``kp_production.csv`` (KP figures as
    copied by the trade press, ``basis`` = ``KP``) and the Côte d'Ivoire national
    series in ``non_kp_figures.csv`` (``basis`` = ``national (DGMG)``). Where
    both exist for a year the KP figure is kept and ``preferred_over`` names
    the national figure it replaced. Every row keeps its ``source``.
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
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .errors import DeclaredStatsError

__all__ = [
    "DATA_DIR",
    "KP_PARTICIPANTS",
    "PRODUCTION_COLUMNS",
    "TRADE_COLUMNS",
    "WINDOW_COLUMNS",
    "WINDOW_KINDS",
    "DeclaredTable",
    "RejectedRow",
    "annual_declared",
    "annual_trade",
    "build_declared_production",
    "parse_period",
    "read_declared_production",
    "read_trade",
    "read_windows",
    "validate_declared",
    "validate_trade",
    "validate_windows",
]

#: Folder of the shipped, sourced tables.
DATA_DIR = importlib.resources.files("pipeline") / "data"

PeriodKind = Literal["year", "half", "quarter"]
WindowKind = Literal["embargo", "suspension", "monitoring"]
#: Window kinds; ``embargo`` and ``suspension`` raise ``activity_in_embargo``.
WINDOW_KINDS: tuple[str, ...] = ("embargo", "suspension", "monitoring")

#: Columns of the good-rows frame of a production table, in order.
PRODUCTION_COLUMNS: tuple[str, ...] = (
    "participant_iso3",
    "participant",
    "period",
    "period_kind",
    "year",
    "period_start",
    "period_end",
    "carats",
    "value_usd",
    "usd_per_carat",
    "unit",
    "basis",
    "source",
    "note",
    "preferred_over",
    "file",
    "line",
)
#: Columns of the good-rows frame of a trade table, in order.
TRADE_COLUMNS: tuple[str, ...] = (
    "participant_iso3",
    "participant",
    "period",
    "period_kind",
    "year",
    "period_start",
    "period_end",
    "flow",
    "carats",
    "value_usd",
    "usd_per_carat",
    "certificates",
    "unit",
    "source",
    "note",
    "file",
    "line",
)
#: Columns of a sanctions-windows table, in order.
WINDOW_COLUMNS: tuple[str, ...] = (
    "window_id",
    "participant_iso3",
    "zone",
    "kind",
    "start",
    "end",
    "description",
    "source",
)

#: KP participants (ISO 3166-1 alpha-3; the European Union as ``EU``, one participant
#: for all its member states; Chinese Taipei's rough-diamond trading entity as ``TWN``).
#: Union of the 31 Oct 2003 list (Chair's notice, https://rapaportfairtrade.com/2003/10/31/updated-kp-participants-list/,
#: which includes states that later joined the EU) and participants admitted since
#: (https://www.kimberleyprocess.com/en/participants-et-observateurs lists the current
#: ones). Not exhaustive for recent admissions: pass ``known_participants=`` to extend.
KP_PARTICIPANTS: Mapping[str, str] = {
    "AGO": "Angola",
    "ARE": "United Arab Emirates",
    "ARM": "Armenia",
    "AUS": "Australia",
    "BGD": "Bangladesh",
    "BGR": "Bulgaria",
    "BLR": "Belarus",
    "BRA": "Brazil",
    "BWA": "Botswana",
    "CAF": "Central African Republic",
    "CAN": "Canada",
    "CHE": "Switzerland",
    "CHN": "China",
    "CIV": "Côte d'Ivoire",
    "CMR": "Cameroon",
    "COD": "Democratic Republic of the Congo",
    "COG": "Republic of the Congo",
    "EU": "European Union",
    "GAB": "Gabon",
    "GBR": "United Kingdom",
    "GHA": "Ghana",
    "GIN": "Guinea",
    "GUY": "Guyana",
    "HRV": "Croatia",
    "HUN": "Hungary",
    "IDN": "Indonesia",
    "IND": "India",
    "ISR": "Israel",
    "JPN": "Japan",
    "KAZ": "Kazakhstan",
    "KHM": "Cambodia",
    "KOR": "Republic of Korea",
    "LAO": "Lao People's Democratic Republic",
    "LBN": "Lebanon",
    "LBR": "Liberia",
    "LKA": "Sri Lanka",
    "LSO": "Lesotho",
    "MEX": "Mexico",
    "MLI": "Mali",
    "MUS": "Mauritius",
    "MYS": "Malaysia",
    "NAM": "Namibia",
    "NOR": "Norway",
    "NZL": "New Zealand",
    "PAN": "Panama",
    "POL": "Poland",
    "ROU": "Romania",
    "RUS": "Russian Federation",
    "SGP": "Singapore",
    "SLE": "Sierra Leone",
    "SVN": "Slovenia",
    "SWZ": "Eswatini",
    "TGO": "Togo",
    "THA": "Thailand",
    "TUR": "Türkiye",
    "TWN": "Chinese Taipei",
    "TZA": "Tanzania",
    "UKR": "Ukraine",
    "USA": "United States",
    "VEN": "Venezuela",
    "VNM": "Viet Nam",
    "ZAF": "South Africa",
    "ZWE": "Zimbabwe",
}

# Names as KP statistics and the trade press print them -> ISO3 (normalised: no
# accents, lower case, letters and spaces only).
_NAME_ALIASES: Mapping[str, str] = {
    "cote d ivoire": "CIV",
    "ivory coast": "CIV",
    "congo democratic republic of": "COD",
    "democratic republic of congo": "COD",
    "drc": "COD",
    "congo republic of": "COG",
    "congo": "COG",
    "european community": "EU",
    "european union": "EU",
    "korea republic of": "KOR",
    "south korea": "KOR",
    "laos": "LAO",
    "lao pdr": "LAO",
    "russia": "RUS",
    "swaziland": "SWZ",
    "turkey": "TUR",
    "united states of america": "USA",
    "usa": "USA",
    "uae": "ARE",
    "vietnam": "VNM",
    "tanzania united republic of": "TZA",
    "china peoples republic of": "CHN",
    "taipei": "TWN",
    "uk": "GBR",
}

_CARAT_UNITS = frozenset({"carats", "carat", "ct", "cts", "ct.", "cts."})

_COLUMN_ALIASES: Mapping[str, str] = {
    "iso3": "participant_iso3",
    "iso": "participant_iso3",
    "iso_code": "participant_iso3",
    "participant_code": "participant_iso3",
    "country_iso3": "participant_iso3",
    "country": "participant",
    "name": "participant",
    "participant_name": "participant",
    "volume_carats": "carats",
    "volume_ct": "carats",
    "volume": "carats",
    "production_carats": "carats",
    "quantity_carats": "carats",
    "value": "value_usd",
    "value_us": "value_usd",
    "usd": "value_usd",
    "production_value_usd": "value_usd",
    "value_us_dollars": "value_usd",
    "usd_ct": "usd_per_carat",
    "us_ct": "usd_per_carat",
    "value_usd_ct": "usd_per_carat",
    "usd_per_ct": "usd_per_carat",
    "units": "unit",
    "direction": "flow",
    "certificate_count": "certificates",
    "kp_certificates": "certificates",
    "n_certificates": "certificates",
}

_PERIOD_RE = re.compile(
    r"^\s*(?:"
    r"(?P<y1>\d{4})\s*[-_ ]?\s*(?P<k1>[HQhq])(?P<n1>\d)"  # 2019H1, 2019-Q3
    r"|(?P<k2>[HQhq])(?P<n2>\d)\s*[-_ ]?\s*(?P<y2>\d{4})"  # H1 2019
    r"|(?P<y3>\d{4})"  # 2019
    r")\s*$"
)


@dataclass(frozen=True)
class RejectedRow:
    """A row left out of a statistics table, and why."""

    file: str
    """The file the row came from (or the label given to the validator)."""
    line: int
    """1-based physical line of the row in the file (the header is line 1)."""
    reason: str
    """One sentence naming the field at fault and how to fix it."""


@dataclass(frozen=True)
class DeclaredTable:
    """A validated statistics table: the rows the run uses and the rows it left out."""

    good: pd.DataFrame
    """Good rows (columns :data:`PRODUCTION_COLUMNS` or :data:`TRADE_COLUMNS`), sorted by
    participant, period start (and flow)."""
    rejected: tuple[RejectedRow, ...] = field(default_factory=tuple)
    """Rejected rows in file-line order."""
    file: str = ""
    """Where the table was read from."""

    def rejected_frame(self) -> pd.DataFrame:
        """Rejected rows as a DataFrame with columns ``file, line, reason``."""
        return pd.DataFrame(
            [(r.file, r.line, r.reason) for r in self.rejected], columns=["file", "line", "reason"]
        )


# --------------------------------------------------------------------------- readers (EDGE)


def read_declared_production(
    path: str | Path | None = None, *, known_participants: Iterable[str] | None = None
) -> DeclaredTable:
    """Read and validate a declared-production table in the KP public-statistics shape.

    Parameters
    ----------
    path
        CSV file; ``None``: the shipped, sourced ``pipeline/data/declared_production.csv``.
    known_participants
        ISO3 codes accepted as participants; ``None``: :data:`KP_PARTICIPANTS`.

    Returns
    -------
    DeclaredTable
        ``good``: one row per participant and period, carats (may be NaN when only the
        value was published), ``value_usd``, ``source``...; ``rejected``: file, line and
        reason for every row left out (see :func:`validate_declared`).

    Raises
    ------
    DeclaredStatsError
        The file cannot be read, lacks a required column, or has no usable row.
    """
    label, raw = _read_cells(path, default="declared_production.csv")
    return validate_declared(raw, file=label, known_participants=known_participants)


def read_trade(
    path: str | Path | None = None, *, known_participants: Iterable[str] | None = None
) -> DeclaredTable:
    """Read and validate a trade table (KP shape, long form: one row per participant,
    period and flow).

    Columns: ``participant_iso3, period (YYYY, YYYYH1, YYYYQ1), flow (import|export),
    carats, value_usd[, usd_per_carat, certificates, source, note]``. ``path=None``
    reads the shipped ``pipeline/data/kp_trade.csv``.
    """
    label, raw = _read_cells(path, default="kp_trade.csv")
    return validate_trade(raw, file=label, known_participants=known_participants)


def read_windows(path: str | Path | None = None) -> pd.DataFrame:
    """Read the sanctions and status windows (``None``: the shipped
    ``pipeline/data/sanctions_windows.csv``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`WINDOW_COLUMNS`; ``start``/``end`` as ``datetime64`` days
        (``end`` NaT: still open), ``zone`` ``""`` for the whole participant.

    Raises
    ------
    DeclaredStatsError
        On the first malformed row (file and line named). Windows are never silently
        dropped: a missing embargo window would hide activity that must be flagged.
    """
    label, raw = _read_cells(path, default="sanctions_windows.csv")
    return validate_windows(raw, file=label)


# --------------------------------------------------------------------------- validators (PURE)


def validate_declared(
    raw: pd.DataFrame, *, file: str = "<frame>", known_participants: Iterable[str] | None = None
) -> DeclaredTable:
    """Validate a production table given as text cells.

    Parameters
    ----------
    raw
        One row per record; cells as strings (or numbers). An optional ``_line``
        column gives each row's line in ``file`` (default: row number + 2, as in a
        CSV with one header line).
    file
        Name used in rejection reasons and error messages.
    known_participants
        Accepted ISO3 codes; ``None``: :data:`KP_PARTICIPANTS`.

    Returns
    -------
    DeclaredTable
        Rows are rejected for: unknown participant, unparseable period, a unit other
        than carats (a table mixing units), non-numeric / negative / infinite carats,
        value or USD per carat, neither carats nor a value, and duplicate periods:
        an exact repeat of an earlier row is dropped (the earlier one is kept), while
        rows for the same or overlapping periods (``2019`` and ``2019H1``) with
        different figures are all rejected, since the table cannot say which is right.

    Raises
    ------
    DeclaredStatsError
        A required column is missing, or no row is usable.
    """
    frame, lines = _normalise_columns(raw, file=file)
    _require(
        frame,
        ("participant_iso3|participant", "period", "carats"),
        file=file,
        shape="participant_iso3, period, carats, value_usd, source",
    )
    known = _known(known_participants)
    rejected: dict[int, str] = {}
    records: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        row = frame.iloc[i]
        rec, why = _parse_common(row, known=known, allow_quarter=False)
        if why is None:
            rec, why = _parse_amounts(row, rec)
        if why is not None:
            rejected[line] = why
            continue
        rec["basis"] = _text(row.get("basis"))
        rec["preferred_over"] = _text(row.get("preferred_over"))
        rec["file"], rec["line"] = file, line
        records.append(rec)
    keep = _reject_duplicates(records, rejected, key=("participant_iso3",), file=file)
    return _finish(
        keep,
        rejected,
        file=file,
        columns=PRODUCTION_COLUMNS,
        sort=["participant_iso3", "period_start", "line"],
    )


def validate_trade(
    raw: pd.DataFrame, *, file: str = "<frame>", known_participants: Iterable[str] | None = None
) -> DeclaredTable:
    """Validate a trade table given as text cells (see :func:`validate_declared`).

    Adds ``flow`` (``import`` | ``export``; rows with another flow are rejected) and the
    optional non-negative integer ``certificates``. Duplicate periods are checked per
    participant and flow; periods may also be quarters.
    """
    frame, lines = _normalise_columns(raw, file=file)
    _require(
        frame,
        ("participant_iso3|participant", "period", "flow", "carats"),
        file=file,
        shape="participant_iso3, period, flow, carats, value_usd, certificates, source",
    )
    known = _known(known_participants)
    rejected: dict[int, str] = {}
    records: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        row = frame.iloc[i]
        rec, why = _parse_common(row, known=known, allow_quarter=True)
        if why is None:
            flow = _text(row.get("flow")).lower()
            flow = {"imports": "import", "exports": "export"}.get(flow, flow)
            if flow not in ("import", "export"):
                why = f"flow {_text(row.get('flow'))!r} is not 'import' or 'export'"
            rec["flow"] = flow
        if why is None:
            rec, why = _parse_amounts(row, rec)
        if why is None:
            certs, why = _number(row.get("certificates"), "certificates")
            if why is None and not math.isnan(certs) and certs != round(certs):
                why = f"certificates {_text(row.get('certificates'))!r} is not a whole number"
            rec["certificates"] = certs
        if why is not None:
            rejected[line] = why
            continue
        rec["file"], rec["line"] = file, line
        records.append(rec)
    keep = _reject_duplicates(records, rejected, key=("participant_iso3", "flow"), file=file)
    return _finish(
        keep,
        rejected,
        file=file,
        columns=TRADE_COLUMNS,
        sort=["participant_iso3", "flow", "period_start", "line"],
    )


def validate_windows(raw: pd.DataFrame, *, file: str = "<frame>") -> pd.DataFrame:
    """Validate sanctions windows given as text cells; see :func:`read_windows`.

    ``start``/``end`` are ISO dates; a month (``2013-04``) is widened to its first
    day for ``start`` and its last day for ``end`` (the widest reading of a month-
    precision source). Both ends are inclusive. ``zone`` empty: the whole participant.
    """
    frame, lines = _normalise_columns(raw, file=file)
    _require(frame, WINDOW_COLUMNS[:6], file=file, shape=", ".join(WINDOW_COLUMNS))
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, line in enumerate(lines):
        r = frame.iloc[i]
        where = f"{file} line {line}"
        if bool(r.get("_extra", False)):
            raise DeclaredStatsError(
                f"{where}: more cells than the header; quote cells with commas"
            )
        wid = _text(r.get("window_id"))
        if not wid:
            raise DeclaredStatsError(f"{where}: window_id is empty; give every window an id")
        if wid in seen:
            raise DeclaredStatsError(f"{where}: window_id {wid!r} repeats line {seen[wid]}")
        seen[wid] = line
        kind = _text(r.get("kind")).lower()
        if kind not in WINDOW_KINDS:
            raise DeclaredStatsError(
                f"{where}: kind {kind!r} must be one of {', '.join(WINDOW_KINDS)}"
            )
        iso3 = _text(r.get("participant_iso3")).upper()
        if not iso3:
            raise DeclaredStatsError(f"{where}: participant_iso3 is empty")
        start = _window_date(_text(r.get("start")), end=False, where=f"{where}: start")
        if start is None:
            raise DeclaredStatsError(f"{where}: start is empty; every window needs a first day")
        end = _window_date(_text(r.get("end")), end=True, where=f"{where}: end")
        if end is not None and end < start:
            raise DeclaredStatsError(f"{where}: end {end.date()} is before start {start.date()}")
        rows.append(
            {
                "window_id": wid,
                "participant_iso3": iso3,
                "zone": _text(r.get("zone")),
                "kind": kind,
                "start": start,
                "end": end if end is not None else pd.NaT,
                "description": _text(r.get("description")),
                "source": _text(r.get("source")),
            }
        )
    out = pd.DataFrame(rows, columns=list(WINDOW_COLUMNS))
    out["start"] = pd.to_datetime(out["start"]).astype("datetime64[ns]")
    out["end"] = pd.to_datetime(out["end"]).astype("datetime64[ns]")
    return out.sort_values(
        ["participant_iso3", "start", "window_id"], kind="mergesort"
    ).reset_index(drop=True)


# --------------------------------------------------------------------------- aggregation (PURE)


def annual_declared(declared: pd.DataFrame | DeclaredTable) -> pd.DataFrame:
    """Declared production per participant and calendar year.

    Parameters
    ----------
    declared
        Good rows of a production table (needs ``participant_iso3``, ``period``,
        ``carats``; ``value_usd`` optional).

    Returns
    -------
    pandas.DataFrame
        ``participant_iso3, year, carats, value_usd, complete, periods``. A year is
        ``complete`` when a full-year row or both half-years are present; ``carats``
        is NaN for incomplete years (a single half-year would understate the year)
        and whenever a component has no carats. Sorted by participant and year.
    """
    frame = _frame(declared)
    cols = ["participant_iso3", "year", "carats", "value_usd", "complete", "periods"]
    if frame.empty:
        return pd.DataFrame(columns=cols)
    parsed = [parse_period(str(p)) for p in frame["period"]]
    work = pd.DataFrame(
        {
            "participant_iso3": frame["participant_iso3"].astype(str).to_numpy(),
            "year": [p[1] for p in parsed],
            "kind": [p[0] for p in parsed],
            "sub": [p[2] for p in parsed],
            "period": frame["period"].astype(str).to_numpy(),
            "carats": _floats(frame, "carats"),
            "value_usd": _floats(frame, "value_usd"),
        }
    )
    out = []
    for (iso3, year), g in work.sort_values(["participant_iso3", "year", "period"]).groupby(
        ["participant_iso3", "year"], sort=True
    ):
        kinds = set(g["kind"])
        complete = ("year" in kinds and len(g) == 1) or (
            kinds == {"half"} and sorted(g["sub"]) == [1, 2]
        )
        carats = float(g["carats"].sum()) if complete and g["carats"].notna().all() else math.nan
        value = (
            float(g["value_usd"].sum()) if complete and g["value_usd"].notna().all() else math.nan
        )
        out.append((iso3, int(year), carats, value, bool(complete), ";".join(g["period"])))
    return pd.DataFrame(out, columns=cols)


def annual_trade(trade: pd.DataFrame | DeclaredTable) -> pd.DataFrame:
    """Trade per participant, flow and calendar year (complete years only carry
    figures: a full-year row, both halves or all four quarters).

    Returns ``participant_iso3, flow, year, carats, value_usd, certificates, complete``.
    """
    frame = _frame(trade)
    cols = ["participant_iso3", "flow", "year", "carats", "value_usd", "certificates", "complete"]
    if frame.empty:
        return pd.DataFrame(columns=cols)
    parsed = [parse_period(str(p)) for p in frame["period"]]
    work = pd.DataFrame(
        {
            "participant_iso3": frame["participant_iso3"].astype(str).to_numpy(),
            "flow": frame["flow"].astype(str).to_numpy(),
            "year": [p[1] for p in parsed],
            "kind": [p[0] for p in parsed],
            "sub": [p[2] for p in parsed],
            "carats": _floats(frame, "carats"),
            "value_usd": _floats(frame, "value_usd"),
            "certificates": _floats(frame, "certificates"),
        }
    )
    out = []
    for (iso3, flow, year), g in work.sort_values(
        ["participant_iso3", "flow", "year", "sub"]
    ).groupby(["participant_iso3", "flow", "year"], sort=True):
        kinds = set(g["kind"])
        subs = sorted(g["sub"])
        complete = (
            ("year" in kinds and len(g) == 1)
            or (kinds == {"half"} and subs == [1, 2])
            or (kinds == {"quarter"} and subs == [1, 2, 3, 4])
        )

        def total(col: str, g: pd.DataFrame = g, complete: bool = complete) -> float:
            return float(g[col].sum()) if complete and g[col].notna().all() else math.nan

        out.append(
            (
                iso3,
                flow,
                int(year),
                total("carats"),
                total("value_usd"),
                total("certificates"),
                bool(complete),
            )
        )
    return pd.DataFrame(out, columns=cols)


def parse_period(text: str) -> tuple[PeriodKind, int, int]:
    """Parse a KP statistics period.

    Returns ``(kind, year, sub)``: ``("year", 2019, 0)`` for ``"2019"``,
    ``("half", 2019, 1)`` for ``"2019H1"`` / ``"H1 2019"``, ``("quarter", 2019, 3)``
    for ``"2019Q3"``. Raises ``ValueError`` for anything else (years 1990-2100).

    Examples
    --------
    >>> parse_period("2019-H2")
    ('half', 2019, 2)
    >>> parse_period(" 2014 ")
    ('year', 2014, 0)
    """
    m = _PERIOD_RE.match(str(text))
    if not m:
        raise ValueError(f"period {text!r} is not YYYY, YYYYH1/H2 or YYYYQ1-Q4")
    year = int(m["y1"] or m["y2"] or m["y3"])
    if not 1990 <= year <= 2100:
        raise ValueError(f"period {text!r}: year {year} outside 1990-2100")
    kind_letter = (m["k1"] or m["k2"] or "").upper()
    if not kind_letter:
        return "year", year, 0
    n = int(m["n1"] or m["n2"])
    if kind_letter == "H" and n in (1, 2):
        return "half", year, n
    if kind_letter == "Q" and 1 <= n <= 4:
        return "quarter", year, n
    raise ValueError(f"period {text!r}: {kind_letter}{n} is not a half-year or quarter")


def canonical_period(kind: str, year: int, sub: int) -> str:
    """``("half", 2019, 1) -> "2019H1"``; inverse of :func:`parse_period`."""
    return str(year) if kind == "year" else f"{year}{'H' if kind == 'half' else 'Q'}{sub}"


def period_bounds(kind: str, year: int, sub: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last day (inclusive) of a period."""
    months = {"year": 12, "half": 6, "quarter": 3}[kind]
    first_month = 1 + (sub - 1) * months if sub else 1
    start = pd.Timestamp(year=year, month=first_month, day=1)
    end = start + pd.DateOffset(months=months) - pd.Timedelta(days=1)
    return start, pd.Timestamp(end)


# --------------------------------------------------------------------------- shipped table (PURE)


def build_declared_production(kp_production: pd.DataFrame, national: pd.DataFrame) -> pd.DataFrame:
    """Build the shipped ``declared_production.csv`` from the reference tables.

    Parameters
    ----------
    kp_production
        ``kp_production.csv`` read as text (``dtype=str, keep_default_na=False``): KP
        figures per participant and year (trade-press copies of KP releases); every
        row is kept, with ``basis`` = ``KP``.
    national
        ``non_kp_figures.csv`` read as text: only the Côte d'Ivoire series
        ``production`` in carats for whole years is used (``basis`` =
        ``national (DGMG)``). Where that series has several rows for a year, the
        Ministry of Mines / DGMG page (``economie-ivoirienne.ci``, the live page before
        its ``dev.`` copy) wins over press copies, and the others are named in
        ``note``. Where a KP figure exists for the same year, the KP row is kept and
        its ``preferred_over`` names the national figure it was preferred over.

    Returns
    -------
    pandas.DataFrame
        Text cells in the KP shape: ``participant_iso3, participant, period, carats,
        value_usd, usd_per_carat, unit, basis, source, note, preferred_over``, sorted
        by participant and period. Figures are copied as printed; nothing is estimated
        (value-only rows keep ``carats`` empty).
    """
    out: list[dict[str, str]] = []
    for r in kp_production.itertuples(index=False):
        out.append(
            {
                "participant_iso3": _text(r.iso3),
                "participant": _text(r.participant),
                "period": _text(r.year),
                "carats": _text(r.carats),
                "value_usd": _text(r.value_usd),
                "usd_per_carat": _text(r.usd_per_carat),
                "unit": "carats",
                "basis": "KP",
                "source": _text(r.source),
                "note": _text(r.note),
                "preferred_over": "",
            }
        )
    kp_rows = {(o["participant_iso3"], o["period"]): o for o in out}

    nat = national[
        (national["iso3"].astype(str) == "CIV")
        & (national["series"].astype(str) == "production")
        & (national["unit"].astype(str) == "carats")
        & national["year"].astype(str).str.fullmatch(r"\d{4}")
    ].copy()
    source = nat["source"].astype(str)
    nat["_rank"] = np.where(source.str.contains("//www.dev.", regex=False), 1, 0) + np.where(
        source.str.contains("economie-ivoirienne.ci", regex=False), 0, 2
    )
    for year, g in nat.groupby(nat["year"].astype(str), sort=True):
        g = g.sort_values("_rank", kind="mergesort")
        best = g.iloc[0]
        notes = [_text(best["note"])]
        for o in g.iloc[1:].itertuples(index=False):
            extra = f"other national figure {o.quantity} ct ({o.source})"
            notes.append(f"{extra}: {o.note}" if _text(o.note) else extra)
        basis = "national (DGMG)"
        row = {
            "participant_iso3": "CIV",
            "participant": _text(best["country"]),
            "period": str(year),
            "carats": _text(best["quantity"]),
            "value_usd": "",
            "usd_per_carat": "",
            "unit": "carats",
            "basis": basis,
            "source": _text(best["source"]),
            "note": "; ".join(n for n in notes if n),
            "preferred_over": "",
        }
        kp_row = kp_rows.get(("CIV", str(year)))
        if kp_row is not None:
            kp_row["preferred_over"] = f"{basis} {row['carats']} ct ({row['source']})"
            continue
        out.append(row)
    frame = pd.DataFrame(
        out,
        columns=[
            "participant_iso3",
            "participant",
            "period",
            "carats",
            "value_usd",
            "usd_per_carat",
            "unit",
            "basis",
            "source",
            "note",
            "preferred_over",
        ],
    )
    return frame.sort_values(["participant_iso3", "period"], kind="mergesort").reset_index(
        drop=True
    )


# --------------------------------------------------------------------------- helpers


def _read_cells(path: str | Path | None, *, default: str) -> tuple[str, pd.DataFrame]:
    """Read a CSV as text cells plus the physical line of each record (``_line``)."""
    if path is None:
        resource = DATA_DIR / default
        label = f"pipeline/data/{default}"
        try:
            text = resource.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise DeclaredStatsError(f"cannot read shipped table {label}: {exc}") from None
    else:
        label = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise DeclaredStatsError(
                f"cannot read {label}: {getattr(exc, 'strerror', None) or exc}; "
                "check the path (crosscheck.* in the config) and save the file as UTF-8 CSV"
            ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DeclaredStatsError(f"{label}: file is empty; expected a CSV header line") from None
    except csv.Error as exc:
        raise DeclaredStatsError(f"{label} line 1: {exc}") from None
    rows, lines = [], []
    first = reader.line_num + 1
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                rows.append(record + [""] * (len(header) - len(record)))
                lines.append(first)
            first = reader.line_num + 1
    except csv.Error as exc:
        raise DeclaredStatsError(f"{label} line {reader.line_num}: {exc}") from None
    width = len(header)
    raw = pd.DataFrame([r[:width] for r in rows], columns=header, dtype=object)
    raw["_line"] = lines
    raw["_extra"] = [len(r) > width and any(c.strip() for c in r[width:]) for r in rows]
    return label, raw


def _normalise_columns(raw: pd.DataFrame, *, file: str) -> tuple[pd.DataFrame, list[int]]:
    frame = raw.copy()
    if "_line" in frame.columns:
        lines = [int(v) for v in frame["_line"]]
    else:
        lines = [i + 2 for i in range(len(frame))]
    renamed: dict[str, str] = {}
    for col in frame.columns:
        if col in ("_line", "_extra"):
            continue
        key = re.sub(r"[^a-z0-9]+", "_", str(col).strip().lower()).strip("_")
        key = _COLUMN_ALIASES.get(key, key)
        if key in renamed.values():
            continue  # first spelling wins (e.g. both "iso3" and "participant_iso3")
        renamed[col] = key
    frame = frame.rename(columns=renamed)
    if "period" not in frame.columns and "year" in frame.columns:
        frame["period"] = frame["year"]
    return frame.reset_index(drop=True), lines


def _require(frame: pd.DataFrame, needed: Sequence[str], *, file: str, shape: str) -> None:
    for spec in needed:
        options = spec.split("|")
        if not any(o in frame.columns for o in options):
            raise DeclaredStatsError(
                f"{file}: missing column {' or '.join(repr(o) for o in options)}; "
                f"the KP shape is: {shape}"
            )


def _known(known: Iterable[str] | None) -> frozenset[str]:
    return frozenset(KP_PARTICIPANTS) if known is None else frozenset(str(k).upper() for k in known)


def _parse_common(
    row: pd.Series, *, known: frozenset[str], allow_quarter: bool
) -> tuple[dict[str, Any], str | None]:
    rec: dict[str, Any] = {}
    if bool(row.get("_extra", False)):
        return rec, "row has more cells than the header; quote cells that contain commas"
    iso3 = _text(row.get("participant_iso3")).upper()
    name = _text(row.get("participant"))
    if not iso3 and name:
        iso3 = _iso3_for_name(name)
        if not iso3:
            return rec, (
                f"unknown participant {name!r}: no ISO3 code for this name; add a "
                "participant_iso3 column"
            )
    if not iso3:
        return rec, "participant_iso3 is empty"
    if iso3 not in known:
        return rec, (
            f"unknown participant {iso3!r}: not in the KP participant list; fix the code "
            "or pass known_participants="
        )
    rec["participant_iso3"] = iso3
    rec["participant"] = name or KP_PARTICIPANTS.get(iso3, iso3)
    try:
        kind, year, sub = parse_period(_text(row.get("period")))
    except ValueError as exc:
        return rec, str(exc)
    if kind == "quarter" and not allow_quarter:
        return rec, (
            f"period {_text(row.get('period'))!r}: production is published per year or "
            "half-year, not per quarter"
        )
    start, end = period_bounds(kind, year, sub)
    rec.update(
        period=canonical_period(kind, year, sub),
        period_kind=kind,
        year=year,
        period_start=start,
        period_end=end,
        _sub=sub,
    )
    unit = _text(row.get("unit"))
    if unit and unit.lower() not in _CARAT_UNITS:
        return rec, (
            f"unit {unit!r} is not carats (a table must not mix units); convert the row to carats"
        )
    rec["unit"] = "carats"
    rec["source"] = _text(row.get("source"))
    rec["note"] = _text(row.get("note"))
    return rec, None


def _parse_amounts(row: pd.Series, rec: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    for col in ("carats", "value_usd", "usd_per_carat"):
        value, why = _number(row.get(col), col)
        if why is not None:
            return rec, why
        rec[col] = value
    if all(math.isnan(rec[c]) for c in ("carats", "value_usd", "usd_per_carat")):
        return rec, "carats is empty and no value_usd or usd_per_carat is given; nothing to use"
    return rec, None


def _number(cell: Any, col: str) -> tuple[float, str | None]:
    """Parse a non-negative finite number; empty -> NaN. Thousands commas accepted."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return math.nan, None
    if isinstance(cell, (int, float, np.integer, np.floating)) and not isinstance(cell, bool):
        value = float(cell)
        text = repr(cell)
    else:
        text = str(cell).strip()
        if text == "":
            return math.nan, None
        clean = text.replace(" ", "").replace("\u00a0", "").replace("\u202f", "")
        if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?", clean):
            clean = clean.replace(",", "")
        try:
            value = float(clean)
        except ValueError:
            return math.nan, f"{col} {text!r} is not a number"
    if not math.isfinite(value):
        return math.nan, f"{col} {text!r} is not a finite number"
    if value < 0:
        return math.nan, f"{col} {text!r} is negative"
    return value, None


def _reject_duplicates(
    records: list[dict[str, Any]], rejected: dict[int, str], *, key: tuple[str, ...], file: str
) -> list[dict[str, Any]]:
    """Reject exact repeats (keep the first line) and conflicting overlaps (reject all)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for rec in records:
        groups.setdefault((*[rec[k] for k in key], rec["year"]), []).append(rec)
    drop: dict[int, str] = {}
    for recs in groups.values():
        recs = sorted(recs, key=lambda r: r["line"])
        for i, a in enumerate(recs):
            for b in recs[i + 1 :]:
                overlap = (
                    a["period_start"] <= b["period_end"] and b["period_start"] <= a["period_end"]
                )
                if not overlap:
                    continue
                same = a["period"] == b["period"] and all(
                    _same(a.get(c), b.get(c))
                    for c in ("carats", "value_usd", "usd_per_carat", "certificates")
                )
                if same:
                    drop.setdefault(
                        b["line"], f"duplicate period {b['period']}: repeats line {a['line']}"
                    )
                else:
                    what = (
                        f"duplicate period {a['period']}"
                        if a["period"] == b["period"]
                        else f"overlapping periods {a['period']} and {b['period']}"
                    )
                    for x, y in ((a, b), (b, a)):
                        drop[x["line"]] = (
                            f"{what} with different figures (also line {y['line']}); "
                            "keep one row per period"
                        )
    rejected.update(drop)
    return [r for r in records if r["line"] not in drop]


def _same(a: Any, b: Any) -> bool:
    if a is None and b is None:
        return True
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError):
        return a == b
    return (math.isnan(fa) and math.isnan(fb)) or fa == fb


def _finish(
    records: list[dict[str, Any]],
    rejected: dict[int, str],
    *,
    file: str,
    columns: Sequence[str],
    sort: list[str],
) -> DeclaredTable:
    rej = tuple(
        RejectedRow(file=file, line=line, reason=why) for line, why in sorted(rejected.items())
    )
    if not records:
        first = (
            "; ".join(f"line {r.line}: {r.reason}" for r in rej[:3]) or "the file has no data rows"
        )
        raise DeclaredStatsError(f"{file}: no usable row ({first})")
    frame = pd.DataFrame(records)
    for col in columns:
        if col not in frame.columns:
            frame[col] = ""
    frame = frame[list(columns)].sort_values(sort, kind="mergesort").reset_index(drop=True)
    frame["year"] = frame["year"].astype(int)
    frame["line"] = frame["line"].astype(int)
    for col in ("carats", "value_usd", "usd_per_carat", "certificates"):
        if col in frame.columns:
            frame[col] = frame[col].astype(float)
    return DeclaredTable(good=frame, rejected=rej, file=file)


def _window_date(text: str, *, end: bool, where: str) -> pd.Timestamp | None:
    if not text:
        return None
    if re.fullmatch(r"\d{4}-\d{2}", text):
        start = pd.Timestamp(f"{text}-01")
        return pd.Timestamp(start + pd.offsets.MonthEnd(0)) if end else start
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return pd.Timestamp(text)
        except ValueError:
            pass
    raise DeclaredStatsError(f"{where} {text!r} is not an ISO date (YYYY-MM-DD or YYYY-MM)")


def _iso3_for_name(name: str) -> str:
    key = _norm_name(name)
    if key in _NAME_ALIASES:
        return _NAME_ALIASES[key]
    for iso3, canonical in KP_PARTICIPANTS.items():
        if _norm_name(canonical) == key:
            return iso3
    return ""


def _norm_name(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z]+", " ", text.lower()).split())


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if value is pd.NA or value is pd.NaT:
        return ""
    return str(value).strip()


def _floats(frame: pd.DataFrame, col: str) -> np.ndarray:
    """Column as a float array (NaN where missing or not a number; all NaN if absent)."""
    if col not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _frame(table: pd.DataFrame | DeclaredTable | None) -> pd.DataFrame:
    if table is None:
        return pd.DataFrame()
    return table.good if isinstance(table, DeclaredTable) else table
