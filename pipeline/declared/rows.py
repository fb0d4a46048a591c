"""One row of a statistics or windows table -> a record, or the reason it is rejected.

Row parsers return ``(record, reason)``: ``reason`` is ``None`` for a good row, else one
sentence naming the field at fault (the record is then discarded). Window rows have no
rejection: a malformed window raises :class:`~pipeline.errors.DeclaredStatsError`.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ..errors import DeclaredStatsError
from .cells import _number, _text, _window_date
from .columns import WINDOW_KINDS
from .participants import KP_PARTICIPANTS, _iso3_for_name
from .periods import canonical_period, parse_period, period_bounds
from .sources import source_problem

_CARAT_UNITS = frozenset({"carats", "carat", "ct", "cts", "ct.", "cts."})


def _declared_row(row: pd.Series, *, known: frozenset[str]) -> tuple[dict[str, Any], str | None]:
    """A production row: participant, period (year or half-year), unit and amounts."""
    rec, why = _parse_common(row, known=known, allow_quarter=False)
    if why is None:
        rec, why = _parse_amounts(row, rec)
    if why is None:
        rec["basis"] = _text(row.get("basis"))
        rec["preferred_over"] = _text(row.get("preferred_over"))
    return rec, why


def _trade_row(row: pd.Series, *, known: frozenset[str]) -> tuple[dict[str, Any], str | None]:
    """A trade row: as a production row (quarters allowed), plus flow and certificates."""
    rec, why = _parse_common(row, known=known, allow_quarter=True)
    if why is None:
        why = _parse_flow(row, rec)
    if why is None:
        rec, why = _parse_amounts(row, rec)
    if why is None:
        why = _parse_certificates(row, rec)
    return rec, why


def _parse_common(
    row: pd.Series, *, known: frozenset[str], allow_quarter: bool
) -> tuple[dict[str, Any], str | None]:
    rec: dict[str, Any] = {}
    if bool(row.get("_extra", False)):
        return rec, "row has more cells than the header; quote cells that contain commas"
    why = _parse_participant(row, rec, known=known)
    if why is None:
        why = _parse_period_cell(row, rec, allow_quarter=allow_quarter)
    if why is None:
        why = _parse_unit(row, rec)
    return rec, why


def _parse_participant(row: pd.Series, rec: dict[str, Any], *, known: frozenset[str]) -> str | None:
    iso3 = _text(row.get("participant_iso3")).upper()
    name = _text(row.get("participant"))
    if not iso3 and name:
        iso3 = _iso3_for_name(name)
        if not iso3:
            return (
                f"unknown participant {name!r}: no ISO3 code for this name; add a "
                "participant_iso3 column"
            )
    if not iso3:
        return "participant_iso3 is empty"
    if iso3 not in known:
        return (
            f"unknown participant {iso3!r}: not in the KP participant list; fix the code "
            "or pass known_participants="
        )
    rec["participant_iso3"] = iso3
    rec["participant"] = name or KP_PARTICIPANTS.get(iso3, iso3)
    return None


def _parse_period_cell(row: pd.Series, rec: dict[str, Any], *, allow_quarter: bool) -> str | None:
    try:
        kind, year, sub = parse_period(_text(row.get("period")))
    except ValueError as exc:
        return str(exc)
    if kind == "quarter" and not allow_quarter:
        return (
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
    return None


def _parse_unit(row: pd.Series, rec: dict[str, Any]) -> str | None:
    unit = _text(row.get("unit"))
    if unit and unit.lower() not in _CARAT_UNITS:
        return f"unit {unit!r} is not carats (a table must not mix units); convert the row to carats"
    rec["unit"] = "carats"
    rec["source"] = _text(row.get("source"))
    rec["note"] = _text(row.get("note"))
    # A figure read from a staging copy of a site or from a blog cannot be cited.
    return source_problem(rec["source"])


def _parse_amounts(row: pd.Series, rec: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    for col in ("carats", "value_usd", "usd_per_carat"):
        value, why = _number(row.get(col), col)
        if why is not None:
            return rec, why
        rec[col] = value
    if all(math.isnan(rec[c]) for c in ("carats", "value_usd", "usd_per_carat")):
        return rec, "carats is empty and no value_usd or usd_per_carat is given; nothing to use"
    return rec, None


def _parse_flow(row: pd.Series, rec: dict[str, Any]) -> str | None:
    flow = _text(row.get("flow")).lower()
    flow = {"imports": "import", "exports": "export"}.get(flow, flow)
    rec["flow"] = flow
    if flow not in ("import", "export"):
        return f"flow {_text(row.get('flow'))!r} is not 'import' or 'export'"
    return None


def _parse_certificates(row: pd.Series, rec: dict[str, Any]) -> str | None:
    certs, why = _number(row.get("certificates"), "certificates")
    if why is None and not math.isnan(certs) and certs != round(certs):
        why = f"certificates {_text(row.get('certificates'))!r} is not a whole number"
    rec["certificates"] = certs
    return why


def _window_row(r: pd.Series, *, where: str, line: int, seen: dict[str, int]) -> dict[str, Any]:
    """One sanctions window; raises on the first fault (``seen``: window ids -> line so far)."""
    if bool(r.get("_extra", False)):
        raise DeclaredStatsError(f"{where}: more cells than the header; quote cells with commas")
    wid = _text(r.get("window_id"))
    if not wid:
        raise DeclaredStatsError(f"{where}: window_id is empty; give every window an id")
    if wid in seen:
        raise DeclaredStatsError(f"{where}: window_id {wid!r} repeats line {seen[wid]}")
    seen[wid] = line
    kind = _text(r.get("kind")).lower()
    if kind not in WINDOW_KINDS:
        raise DeclaredStatsError(f"{where}: kind {kind!r} must be one of {', '.join(WINDOW_KINDS)}")
    iso3 = _text(r.get("participant_iso3")).upper()
    if not iso3:
        raise DeclaredStatsError(f"{where}: participant_iso3 is empty")
    start = _window_date(_text(r.get("start")), end=False, where=f"{where}: start")
    if start is None:
        raise DeclaredStatsError(f"{where}: start is empty; every window needs a first day")
    end = _window_date(_text(r.get("end")), end=True, where=f"{where}: end")
    if end is not None and end < start:
        raise DeclaredStatsError(f"{where}: end {end.date()} is before start {start.date()}")
    return {
        "window_id": wid,
        "participant_iso3": iso3,
        "zone": _text(r.get("zone")),
        "kind": kind,
        "start": start,
        "end": end if end is not None else pd.NaT,
        "description": _text(r.get("description")),
        "source": _text(r.get("source")),
    }
