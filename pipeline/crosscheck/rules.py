"""PURE cross-check of detected excavation against declared production and sanctions
windows: :func:`crosscheck_production` and its rules (see :mod:`pipeline.crosscheck`)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..config import CrosscheckParams
from ..declared import DeclaredTable, annual_declared
from ..errors import StaleStatisticsWarning
from .capacity import _as_range
from .columns import CROSSCHECK_COLUMNS, _flags_frame
from .inputs import _as_activity, _as_aois, _as_windows, _check_known_aois
from .text import _change, _ct, _num
from .yearly import _add_declared, _declared_years, _years_of

#: Window kinds that stop exports and raise ``activity_in_embargo`` (``monitoring`` does not).
_STOP_KINDS = ("embargo", "suspension")


def crosscheck_production(
    activity: pd.DataFrame, aois: pd.DataFrame, declared: pd.DataFrame | DeclaredTable, windows: pd.DataFrame,
    *, params: CrosscheckParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare detected excavation with declared production and sanctions windows.

    Parameters
    ----------
    activity
        The ``activity.csv`` contract: ``aoi_id, period_start, period_end, disturbed_ha, new_ha (ha),
        valid_fraction (0..1)``; one row per AOI and reporting period; dates inclusive, as ``datetime64``
        or ISO strings (UTC days). ``valid_fraction`` may be absent (then taken as 1).
    aois
        ``aoi_id, participant_iso3, participant`` and optionally ``zone`` (matched, case-insensitively,
        against the ``zone`` of windows), ``gravel_thickness_m`` and ``grade_ct_per_m3`` (``[low, high]``;
        missing: ``params`` defaults). A GeoDataFrame of :func:`pipeline.aoi.read_aois` works as is.
    declared
        Good rows of a production table (:func:`pipeline.declared.read_declared_production`):
        ``participant_iso3, period, carats``. Half-years are summed to years; a year with one half only
        counts as missing.
    windows
        :func:`pipeline.declared.read_windows`: ``window_id, participant_iso3, zone, kind, start, end``
        (``end`` NaT: open).
    params
        ``capacity_ratio_flag``, ``activity_min_new_ha``, ``trend_*`` thresholds and the default model ranges.

    Returns
    -------
    crosscheck : pandas.DataFrame
        One row per participant-AOI-year (:data:`CROSSCHECK_COLUMNS`, each column described there), sorted
        by participant, AOI and year: ``disturbed_ha`` newly excavated in the year, ``est_carats_low/high``
        from :func:`estimate_carats`, ``ratio`` = ``est_carats_low / declared_carats`` (NaN when the
        year's ``coverage_frac`` is below ``params.min_comparison_coverage_frac``: not comparable),
        ``flags``, ``coverage_frac``.
    flags : pandas.DataFrame
        One row per raised flag (:data:`FLAG_COLUMNS`, described there): rule, participant, AOI, period,
        ``evidence`` (``key=value; ...``) and ``explanation`` (a sentence with the numbers). Sorted.

    Warns
    -----
    StaleStatisticsWarning
        Activity falls in years outside the span the declared table covers for that participant (or the
        participant has no rows); such years are not flagged.

    Raises
    ------
    InputDataError
        Missing columns, an ``aoi_id`` absent from ``aois``, duplicate periods, negative or non-finite
        areas, malformed parameter ranges.
    """
    act = _as_activity(activity)
    aoi = _as_aois(aois, params=params)
    _check_known_aois(act, aoi)
    wins = _as_windows(windows)
    decl = annual_declared(declared)
    yearly = _years_of(act, aoi, recovery_frac=_as_range(params.recovery_frac, "recovery_frac", upper=1.0))
    years_index, span = _declared_years(decl)
    _add_declared(yearly, years_index, min_coverage_frac=params.min_comparison_coverage_frac)
    flags = _rule_flags(act, aoi, wins, yearly, years_index, span, params=params)
    _warn_stale(yearly, years_index, span, params=params)
    crosscheck = _crosscheck_frame(yearly, flags)
    return crosscheck, _flags_frame(flags)


def _rule_flags(
    act: pd.DataFrame,
    aoi: pd.DataFrame,
    wins: pd.DataFrame,
    yearly: pd.DataFrame,
    years_index: dict[tuple[str, int], Any],
    span: dict[str, tuple[int, int]],
    *,
    params: CrosscheckParams,
) -> list[dict[str, Any]]:
    """Every rule's flags, in rule order; each flag carries the years it marks in ``_years``."""
    flags: list[dict[str, Any]] = []
    flags += _flag_embargo(act, aoi, wins, params=params)
    flags += _flag_capacity(yearly, params=params)
    flags += _flag_trend(yearly, params=params)
    flags += _flag_without_declaration(yearly, years_index, span, params=params)
    return flags


def _crosscheck_frame(yearly: pd.DataFrame, flags: list[dict[str, Any]]) -> pd.DataFrame:
    """The ``crosscheck.csv`` frame: ``yearly`` with the rules raised for each AOI-year in ``flags``
    (pops each flag's ``_years``)."""
    by_row: dict[tuple[str, int], set[str]] = {}
    for f in flags:
        for year in f.pop("_years"):
            by_row.setdefault((f["aoi_id"], year), set()).add(f["rule"])
    yearly["flags"] = [
        ";".join(sorted(by_row.get((a, int(y)), ()))) for a, y in zip(yearly["aoi_id"], yearly["year"], strict=True)
    ]
    crosscheck = (
        yearly[list(CROSSCHECK_COLUMNS)]
        .sort_values(["participant_iso3", "aoi_id", "year"], kind="mergesort")
        .reset_index(drop=True)
    )
    crosscheck["year"] = crosscheck["year"].astype(int)
    return crosscheck


def _flag_embargo(
    act: pd.DataFrame, aoi: pd.DataFrame, wins: pd.DataFrame, *, params: CrosscheckParams
) -> list[dict[str, Any]]:
    flags: list[dict[str, Any]] = []
    stops: dict[str, list[Any]] = {}
    for w in wins[wins["kind"].isin(_STOP_KINDS)].itertuples(index=False):
        stops.setdefault(w.participant_iso3, []).append(w)
    records = aoi.to_dict("index")
    for r in act.itertuples(index=False):
        if not r.new_ha > params.activity_min_new_ha:
            continue
        a = records[r.aoi_id]
        iso3, zone = a["participant_iso3"], a["zone"]
        hits = _windows_hit(stops.get(iso3, []), r, zone=zone)
        if hits:
            flags.append(_embargo_flag(r, iso3, zone, hits))
    return flags


def _windows_hit(stops: list[Any], r: Any, *, zone: str) -> list[Any]:
    """The stop windows that overlap the activity period ``r`` and apply to the AOI's zone."""
    hits = []
    for w in stops:
        if w.zone and zone and w.zone.casefold() != zone.casefold():
            continue
        if w.start > r.period_end or (not pd.isna(w.end) and w.end < r.period_start):
            continue
        hits.append(w)
    return hits


def _embargo_flag(r: Any, iso3: str, zone: str, hits: list[Any]) -> dict[str, Any]:
    """The ``activity_in_embargo`` flag of activity row ``r`` overlapping the windows ``hits``."""
    total = (r.period_end - r.period_start).days + 1
    years: set[int] = set()
    parts, ev = [], []
    for w in hits:
        o_start = max(r.period_start, w.start)
        o_end = r.period_end if pd.isna(w.end) else min(r.period_end, w.end)
        years.update(range(o_start.year, o_end.year + 1))
        parts.append(_window_overlap(w, days=(o_end - o_start).days + 1, total=total, zone=zone))
        ev.append(f"{w.window_id}:{o_start.date()}/{o_end.date()}")
    period = f"{r.period_start.date()}/{r.period_end.date()}"
    return {
        "rule": "activity_in_embargo",
        "participant_iso3": iso3,
        "aoi_id": r.aoi_id,
        "period": period,
        "evidence": f"new_ha={_num(r.new_ha)}; zone={zone or '-'}; windows={','.join(ev)}",
        "explanation": (
            f"AOI {r.aoi_id} ({iso3}) gained {_num(r.new_ha)} ha of newly excavated "
            "ground between "
            f"{r.period_start.date()} and {r.period_end.date()}, a period that overlaps "
            + " It also overlaps ".join(parts)
            + " Rough diamonds dug while the window was in force could not be exported"
            " with a valid"
            " KP certificate; the new area cannot be dated more finely than the period."
        ),
        "_years": sorted(years),
    }


def _window_overlap(w: Any, *, days: int, total: int, zone: str) -> str:
    """One window's part of the explanation: kind, id, dates, scope and days of overlap."""
    until = "still in force" if pd.isna(w.end) else f"to {w.end.date()}"
    scope = f"zone '{w.zone}'" if w.zone else "the whole participant"
    note = ""
    if w.zone and not zone:
        note = (
            " The AOI has no zone, so this zone window is applied because the AOI cannot"
            " be shown to lie outside it."
        )
    return f"{w.kind} {w.window_id} ({w.start.date()} {until}, {scope}) on {days} of its {total} days.{note}"


def _flag_capacity(yearly: pd.DataFrame, *, params: CrosscheckParams) -> list[dict[str, Any]]:
    flags = []
    factor = params.capacity_ratio_flag
    for r in yearly.itertuples(index=False):
        d = r.declared_carats
        if r.coverage_frac < params.min_comparison_coverage_frac:
            continue  # part of a year against a whole year's declaration: not comparable
        if not (math.isfinite(d) and d > 0 and r.est_carats_low > factor * d):
            continue
        rec = params.recovery_frac
        flags.append(
            {
                "rule": "capacity_exceeds_declared",
                "participant_iso3": r.participant_iso3,
                "aoi_id": r.aoi_id,
                "period": str(r.year),
                "evidence": (
                    f"disturbed_ha={_num(r.disturbed_ha)}; est_carats={_ct(r.est_carats_low)}-"
                    f"{_ct(r.est_carats_high)}; declared_carats={_ct(d)}; ratio={r.ratio:.2f}; "
                    f"threshold={factor:g}"
                ),
                "explanation": (
                    f"In {r.year} the capacity model puts carats mined at AOI {r.aoi_id} at "
                    f"{_ct(r.est_carats_low)} to {_ct(r.est_carats_high)} ct "
                    f"(low end: {_num(r.disturbed_ha)} ha "
                    f"newly excavated x {r.thickness[0]:g} m gravel x {r.grade[0]:g} ct/m3 x "
                    f"{rec[0]:g} recovery), {r.ratio:.1f} times the {_ct(d)} ct "
                    f"{r.participant_iso3} declared "
                    f"for the whole participant; the flag is raised above {factor:g} times."
                ),
                "_years": [int(r.year)],
            }
        )
    return flags


def _flag_trend(yearly: pd.DataFrame, *, params: CrosscheckParams) -> list[dict[str, Any]]:
    flags = []
    thr = params.trend_min_change_frac
    for aoi_id, g in yearly.groupby("aoi_id", sort=True):
        g = g.sort_values("year")
        ok = (
            (g["coverage_frac"] >= params.trend_min_year_coverage_frac)
            & (g["valid_frac"] >= params.trend_min_valid_frac)
            & np.isfinite(g["declared_carats"])
        )
        rows = {int(r.year): r for r, good in zip(g.itertuples(index=False), ok, strict=True) if good}
        for year in sorted(rows):
            prev = rows.get(year - 1)
            if prev is None:
                continue
            cur = rows[year]
            a0, a1 = prev.disturbed_ha, cur.disturbed_ha
            d0, d1 = prev.declared_carats, cur.declared_carats
            act_dir = _direction(a0, a1, thr)
            dec_dir = _direction(d0, d1, thr)
            if act_dir == 0 or dec_dir == 0 or act_dir == dec_dir:
                continue
            verb = {1: "rose", -1: "fell"}
            flags.append(
                {
                    "rule": "trend_divergence",
                    "participant_iso3": cur.participant_iso3,
                    "aoi_id": aoi_id,
                    "period": str(year),
                    "evidence": (
                        f"from={year - 1}; new_ha={_num(a0)}->{_num(a1)} ({_change(a0, a1)}); "
                        f"declared_carats={_ct(d0)}->{_ct(d1)} ({_change(d0, d1)}); "
                        f"threshold={thr:.0%}"
                    ),
                    "explanation": (
                        f"Newly excavated area at AOI {aoi_id} {verb[act_dir]} from {_num(a0)} ha "
                        f"in {year - 1} to {_num(a1)} ha in {year} ({_change(a0, a1)}) while "
                        f"{cur.participant_iso3}'s declared production {verb[dec_dir]} from "
                        f"{_ct(d0)} to {_ct(d1)} ct ({_change(d0, d1)}); the rule "
                        f"flags opposite changes of {thr:.0%} or more."
                    ),
                    "_years": [year],
                }
            )
    return flags


def _direction(x0: float, x1: float, thr: float) -> int:
    if x1 >= x0 * (1 + thr) and x1 > x0:
        return 1
    if x1 <= x0 * (1 - thr) and x1 < x0:
        return -1
    return 0


def _flag_without_declaration(
    yearly: pd.DataFrame,
    declared: dict[tuple[str, int], Any],
    span: dict[str, tuple[int, int]],
    *,
    params: CrosscheckParams,
) -> list[dict[str, Any]]:
    flags = []
    for r in yearly.itertuples(index=False):
        if not r.disturbed_ha > params.activity_min_new_ha:
            continue
        d = declared.get((r.participant_iso3, int(r.year)))
        if d is None:
            first, last = span.get(r.participant_iso3, (None, None))
            if first is None or last is None or not first <= r.year <= last:
                continue  # outside the participant's reported years: warned as stale, not flagged
            what = (
                f"the declared table has no figure for {r.participant_iso3} in {r.year} "
                f"although it has figures for {r.participant_iso3} from {first} to {last}; check "
                f"whether {r.participant_iso3} declared production as published, since a gap in "
                "this table is not a declaration of zero"
            )
            ev = "declared=missing"
        elif d.complete and d.carats == 0:
            what = f"{r.participant_iso3} declared 0 ct for {r.year} ({d.periods})"
            ev = "declared_carats=0"
        else:
            continue
        flags.append(
            {
                "rule": "activity_without_declaration",
                "participant_iso3": r.participant_iso3,
                "aoi_id": r.aoi_id,
                "period": str(r.year),
                "evidence": f"disturbed_ha={_num(r.disturbed_ha)}; {ev}",
                "explanation": (
                    f"AOI {r.aoi_id} gained {_num(r.disturbed_ha)} ha of newly excavated ground in "
                    f"{r.year}, but {what}."
                ),
                "_years": [int(r.year)],
            }
        )
    return flags


def _warn_stale(
    yearly: pd.DataFrame,
    declared: dict[tuple[str, int], Any],
    span: dict[str, tuple[int, int]],
    *,
    params: CrosscheckParams,
) -> None:
    """Warn about activity in years the declared table does not cover. Call it from
    :func:`crosscheck_production` itself: ``stacklevel=3`` names that function's caller."""
    uncovered: dict[str, list[int]] = {}
    for r in yearly.itertuples(index=False):
        if not r.disturbed_ha > params.activity_min_new_ha:
            continue
        if (r.participant_iso3, int(r.year)) in declared:
            continue
        first, last = span.get(r.participant_iso3, (None, None))
        if first is None or last is None or not first <= r.year <= last:
            uncovered.setdefault(r.participant_iso3, []).append(int(r.year))
    if not uncovered:
        return
    parts = []
    for iso3, years in sorted(uncovered.items()):
        has = f"has {span[iso3][0]}-{span[iso3][1]}" if iso3 in span else "has no rows"
        parts.append(f"{iso3} ({has}; activity in {', '.join(str(y) for y in sorted(set(years)))})")
    warnings.warn(
        "declared statistics do not cover every year with activity: "
        + "; ".join(parts)
        + ". Those years have no declared figure to compare; point "
        "crosscheck.declared_production at statistics that cover them",
        StaleStatisticsWarning,
        stacklevel=3,
    )
