"""PURE validators: a statistics or windows table given as text cells -> checked rows.

:func:`validate_declared` and :func:`validate_trade` return a :class:`DeclaredTable`
(good rows plus rejected rows with line and reason); :func:`validate_windows` returns the
windows and raises on the first malformed one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import pandas as pd

from ..errors import DeclaredStatsError
from .columns import PRODUCTION_COLUMNS, TRADE_COLUMNS, WINDOW_COLUMNS, _normalise_columns, _require
from .participants import _known
from .rows import _declared_row, _trade_row, _window_row
from .tables import DeclaredTable, RejectedRow

RowParser = Callable[[pd.Series], tuple[dict[str, Any], str | None]]


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
        than carats (a table mixing units), a source that may not be cited (a staging copy
        of a site or a blog: :func:`pipeline.declared.sources.source_problem`),
        non-numeric / negative / infinite carats, value or USD per carat, neither carats
        nor a value, and duplicate periods:
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
    records, rejected = _parse_rows(frame, lines, file=file, parse=partial(_declared_row, known=known))
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
    records, rejected = _parse_rows(frame, lines, file=file, parse=partial(_trade_row, known=known))
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
    seen: dict[str, int] = {}
    rows = [
        _window_row(frame.iloc[i], where=f"{file} line {line}", line=line, seen=seen)
        for i, line in enumerate(lines)
    ]
    out = pd.DataFrame(rows, columns=list(WINDOW_COLUMNS))
    out["start"] = pd.to_datetime(out["start"]).astype("datetime64[ns]")
    out["end"] = pd.to_datetime(out["end"]).astype("datetime64[ns]")
    return out.sort_values(
        ["participant_iso3", "start", "window_id"], kind="mergesort"
    ).reset_index(drop=True)


def _parse_rows(
    frame: pd.DataFrame, lines: list[int], *, file: str, parse: RowParser
) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """Parse every row: good records (with ``file`` and ``line``) and rejections by line."""
    rejected: dict[int, str] = {}
    records: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        rec, why = parse(frame.iloc[i])
        if why is not None:
            rejected[line] = why
            continue
        rec["file"], rec["line"] = file, line
        records.append(rec)
    return records, rejected


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
