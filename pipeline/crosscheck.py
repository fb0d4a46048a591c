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
    participant's declared production for that year (declared > 0).
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
"""

from __future__ import annotations

import ast
import calendar
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any, overload

import numpy as np
import pandas as pd

from .config import CrosscheckParams
from .declared import DeclaredTable, annual_declared, annual_trade, parse_period
from .errors import InputDataError, StaleStatisticsWarning

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

#: ``crosscheck.csv`` contract columns, in order.
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
)
#: ``flags.csv`` columns, in order.
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

M2_PER_HA = 10_000.0
#: MAD -> standard deviation of a normal distribution.
MAD_TO_SIGMA = 1.4826
#: Mean absolute deviation -> standard deviation (Iglewicz & Hoaglin's fallback when MAD = 0).
MEANAD_TO_SIGMA = 1.253314
_STOP_KINDS = ("embargo", "suspension")

Range = tuple[float, float]
RangeLike = float | Sequence[float]


# --------------------------------------------------------------------------- capacity model


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


# --------------------------------------------------------------------------- cross-check


def crosscheck_production(
    activity: pd.DataFrame,
    aois: pd.DataFrame,
    declared: pd.DataFrame | DeclaredTable,
    windows: pd.DataFrame,
    *,
    params: CrosscheckParams,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compare detected excavation with declared production and sanctions windows.

    Parameters
    ----------
    activity
        The ``activity.csv`` contract: ``aoi_id, period_start, period_end, disturbed_ha,
        new_ha (ha), valid_fraction (0..1)``; one row per AOI and reporting period;
        dates inclusive, as ``datetime64`` or ISO strings (UTC days).
        ``valid_fraction`` may be absent (then taken as 1).
    aois
        ``aoi_id, participant_iso3, participant`` and optionally ``zone`` (matched,
        case-insensitively, against the ``zone`` of windows), ``gravel_thickness_m`` and
        ``grade_ct_per_m3`` (``[low, high]``; missing: ``params`` defaults). A
        GeoDataFrame of :func:`pipeline.aoi.read_aois` works as is.
    declared
        Good rows of a production table (:func:`pipeline.declared.read_declared_production`):
        ``participant_iso3, period, carats``. Half-years are summed to years; a year with
        one half only counts as missing.
    windows
        :func:`pipeline.declared.read_windows`: ``window_id, participant_iso3, zone, kind,
        start, end`` (``end`` NaT: open).
    params
        ``capacity_ratio_flag``, ``activity_min_new_ha``, ``trend_*`` thresholds and the
        default model ranges.

    Returns
    -------
    crosscheck : pandas.DataFrame
        One row per participant-AOI-year (:data:`CROSSCHECK_COLUMNS`), sorted by
        participant, AOI and year. ``disturbed_ha`` is the area newly excavated during the
        year (sum of ``new_ha``; a period spanning two years is split in proportion to its
        days): the area whose gravel volume was mined that year, not the cumulative
        footprint. ``est_carats_low/high`` apply :func:`estimate_carats` to it.
        ``declared_carats`` is the participant's national declared production for the
        year (NaN when the table has no complete figure). ``ratio`` =
        ``est_carats_low / declared_carats``: NaN when declared is missing, ``inf`` when
        declared is 0 (0 when the estimate is 0 too). ``flags``: ``;``-joined rule names.
    flags : pandas.DataFrame
        One row per raised flag (:data:`FLAG_COLUMNS`): ``rule, participant_iso3, aoi_id,
        period`` (``YYYY`` or ``start/end`` of the reporting period), ``evidence``
        (``key=value; ...``) and ``explanation`` (a sentence with the numbers). Sorted.

    Warns
    -----
    StaleStatisticsWarning
        Activity falls in years outside the span the declared table covers for that
        participant (or the participant has no rows); such years are not flagged.

    Raises
    ------
    InputDataError
        Missing columns, an ``aoi_id`` absent from ``aois``, duplicate periods, negative
        or non-finite areas, malformed parameter ranges.
    """
    act = _as_activity(activity)
    aoi = _as_aois(aois, params=params)
    unknown = sorted(set(act["aoi_id"]) - set(aoi.index))
    if unknown:
        raise InputDataError(f"activity names AOIs not in the AOI table: {', '.join(unknown)}; pass their AOI files")
    wins = _as_windows(windows)
    decl = annual_declared(declared)
    yearly = _years_of(act, aoi, recovery_frac=_as_range(params.recovery_frac, "recovery_frac", upper=1.0))
    years_index = {(r.participant_iso3, int(r.year)): r for r in decl.itertuples(index=False)}
    span = {
        iso3: (int(g["year"].min()), int(g["year"].max())) for iso3, g in decl.groupby("participant_iso3", sort=True)
    }

    declared_ct = []
    for r in yearly.itertuples(index=False):
        d = years_index.get((r.participant_iso3, int(r.year)))
        declared_ct.append(float(d.carats) if d is not None and d.complete else math.nan)
    yearly["declared_carats"] = np.asarray(declared_ct, dtype=float)
    yearly["ratio"] = [_ratio(lo, d) for lo, d in zip(yearly["est_carats_low"], yearly["declared_carats"], strict=True)]

    flags: list[dict[str, Any]] = []
    flags += _flag_embargo(act, aoi, wins, params=params)
    flags += _flag_capacity(yearly, params=params)
    flags += _flag_trend(yearly, params=params)
    flags += _flag_without_declaration(yearly, years_index, span, params=params)
    _warn_stale(yearly, years_index, span, params=params)

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
    return crosscheck, _flags_frame(flags)


# --------------------------------------------------------------------------- statistical review


def review_statistics(
    declared: pd.DataFrame | DeclaredTable,
    trade: pd.DataFrame | DeclaredTable | None,
    *,
    params: CrosscheckParams,
) -> pd.DataFrame:
    """WGS-style anomaly review of declared statistics (the 2010 Plenary's pilot).

    Parameters
    ----------
    declared
        Production rows: ``participant_iso3, period (YYYY | YYYYH1), carats`` and
        optionally ``value_usd``, ``usd_per_carat``.
    trade
        Trade rows (``participant_iso3, period, flow, carats`` and optionally
        ``value_usd``, ``certificates``), or ``None``.
    params
        ``review_robust_z_max``, ``review_min_history_n``, ``review_min_peers_n``,
        ``review_min_change_factor``, ``review_export_tolerance_frac``.

    Returns
    -------
    pandas.DataFrame
        :data:`FLAG_COLUMNS`, ``aoi_id`` empty, sorted. Robust z is leave-one-out:
        ``(x - median(others)) / (1.4826 MAD(others))`` (MAD 0: 1.2533 x mean absolute
        deviation), so one outlier cannot mask itself in a short series. Jumps use the
        log change per period step between consecutive available periods of the same
        kind (a gap of k periods divides the log change by k); zero or missing values
        are skipped. A flag also needs the change (or price gap) to exceed
        ``review_min_change_factor``.

    Examples
    --------
    >>> import pandas as pd
    >>> from pipeline.config import CrosscheckParams
    >>> d = pd.DataFrame({"participant_iso3": "ZWE", "period": [str(y) for y in range(2010, 2016)],
    ...                   "carats": [10.0, 11.0, 10.0, 11.0, 10.0, 40.0]})
    >>> review_statistics(d, None, params=CrosscheckParams())["rule"].tolist()
    ['statistics_jump']
    """
    prod = _review_frame(declared, trade=False)
    trd = _review_frame(trade, trade=True) if trade is not None else None
    flags: list[dict[str, Any]] = []
    for (iso3, _kind), g in prod.groupby(["participant_iso3", "kind"], sort=True):
        for col, what, unit in (
            ("carats", "declared production", "ct"),
            ("value_usd", "declared production value", "USD"),
        ):
            flags += _jumps(g, col, iso3=iso3, what=what, unit=unit, params=params)
    if trd is not None:
        for (iso3, flow, _kind), g in trd.groupby(["participant_iso3", "flow", "kind"], sort=True):
            for col, what, unit in (
                ("carats", f"{flow}s", "ct"),
                ("value_usd", f"{flow} value", "USD"),
                ("certificates", f"{flow} certificate count", "certificates"),
            ):
                flags += _jumps(g, col, iso3=iso3, what=what, unit=unit, params=params)
    flags += _price_flags(prod, params=params)
    if trd is not None:
        flags += _export_flags(prod, trd, params=params)
    for f in flags:
        f.pop("_years", None)
    return _flags_frame(flags)


# --------------------------------------------------------------------------- input normalisation


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


def _as_activity(activity: pd.DataFrame) -> pd.DataFrame:
    need = ("aoi_id", "period_start", "period_end", "new_ha")
    missing = [c for c in need if c not in activity.columns]
    if missing:
        raise InputDataError(
            f"activity lacks column(s) {', '.join(missing)}; expected the activity.csv contract "
            f"({', '.join(ACTIVITY_COLUMNS)})"
        )
    act = pd.DataFrame(
        {
            "aoi_id": activity["aoi_id"].astype(str).to_numpy(),
            "period_start": _days(activity["period_start"], "period_start"),
            "period_end": _days(activity["period_end"], "period_end"),
            "new_ha": pd.to_numeric(activity["new_ha"], errors="coerce").to_numpy(dtype=float, na_value=np.nan),
            "valid_fraction": (
                pd.to_numeric(activity["valid_fraction"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                if "valid_fraction" in activity.columns
                else np.ones(len(activity))
            ),
        }
    )
    bad = act[~np.isfinite(act["new_ha"]) | (act["new_ha"] < 0)]
    if len(bad):
        r = bad.iloc[0]
        raise InputDataError(
            f"activity new_ha for AOI {r.aoi_id} from {r.period_start.date()} "
            "is negative or not a number; it must be hectares >= 0"
        )
    if (act["period_end"] < act["period_start"]).any():
        r = act[act["period_end"] < act["period_start"]].iloc[0]
        raise InputDataError(
            f"activity period for AOI {r.aoi_id} ends before it starts "
            f"({r.period_start.date()} > {r.period_end.date()})"
        )
    act = act.sort_values(
        ["aoi_id", "period_start", "period_end", "new_ha", "valid_fraction"],
        kind="mergesort",
        na_position="last",
    ).reset_index(drop=True)
    dup = act.duplicated(["aoi_id", "period_start", "period_end"])
    if dup.any():
        r = act[dup].iloc[0]
        raise InputDataError(
            f"activity has two rows for AOI {r.aoi_id} period {r.period_start.date()}/"
            f"{r.period_end.date()}; keep one row per AOI and period"
        )
    return act


def _days(values: pd.Series, name: str) -> pd.Series:
    try:
        ts = pd.to_datetime(values, utc=True)
    except (ValueError, TypeError) as exc:
        raise InputDataError(f"activity {name} is not a date: {exc}") from None
    if ts.isna().any():
        raise InputDataError(f"activity {name} has empty dates; every period needs start and end")
    return pd.Series(ts.dt.tz_convert(None).dt.normalize().to_numpy(dtype="datetime64[ns]"))


def _as_aois(aois: pd.DataFrame, *, params: CrosscheckParams) -> pd.DataFrame:
    need = ("aoi_id", "participant_iso3")
    missing = [c for c in need if c not in aois.columns]
    if missing:
        raise InputDataError(f"AOI table lacks column(s) {', '.join(missing)}; pass read_aois() output")
    rows = []
    for r in aois.to_dict("records"):
        aoi_id = str(r["aoi_id"])
        iso3 = str(r["participant_iso3"]).strip().upper()
        zone = r.get("zone")
        zone = "" if zone is None or (isinstance(zone, float) and math.isnan(zone)) else str(zone).strip()
        ranges = {}
        for key, default in (
            ("gravel_thickness_m", params.gravel_thickness_m),
            ("grade_ct_per_m3", params.grade_ct_per_m3),
        ):
            value = r.get(key)
            if value is None or (np.ndim(value) == 0 and not isinstance(value, str) and pd.isna(value)):
                ranges[key] = _as_range(default, key)
            else:
                try:
                    ranges[key] = _as_range(value, key)
                except InputDataError as exc:
                    raise InputDataError(f"AOI {aoi_id}: {exc}") from None
        rows.append({"aoi_id": aoi_id, "participant_iso3": iso3, "zone": zone, **ranges})
    frame = pd.DataFrame(
        rows,
        columns=["aoi_id", "participant_iso3", "zone", "gravel_thickness_m", "grade_ct_per_m3"],
    )
    dup = frame["aoi_id"].duplicated()
    if dup.any():
        raise InputDataError(f"AOI table lists aoi_id {frame['aoi_id'][dup].iloc[0]!r} twice; ids must be unique")
    return frame.set_index("aoi_id").sort_index(kind="mergesort")


def _as_windows(windows: pd.DataFrame) -> pd.DataFrame:
    need = ("window_id", "participant_iso3", "kind", "start", "end")
    missing = [c for c in need if c not in windows.columns]
    if missing:
        raise InputDataError(f"windows lack column(s) {', '.join(missing)}; pass read_windows() output")
    w = pd.DataFrame(
        {
            "window_id": windows["window_id"].astype(str).to_numpy(),
            "participant_iso3": windows["participant_iso3"].astype(str).str.upper().to_numpy(),
            "zone": windows["zone"].fillna("").astype(str).str.strip().to_numpy()
            if "zone" in windows.columns
            else np.full(len(windows), ""),
            "kind": windows["kind"].astype(str).str.lower().to_numpy(),
            "start": pd.to_datetime(windows["start"]).dt.normalize().to_numpy(dtype="datetime64[ns]"),
            "end": pd.to_datetime(windows["end"]).dt.normalize().to_numpy(dtype="datetime64[ns]"),
            "description": windows["description"].fillna("").astype(str).to_numpy()
            if "description" in windows.columns
            else np.full(len(windows), ""),
        }
    )
    if w["start"].isna().any():
        raise InputDataError("a window has no start date; every window needs a first day")
    return w.sort_values("window_id", kind="mergesort").reset_index(drop=True)


def _years_of(act: pd.DataFrame, aoi: pd.DataFrame, *, recovery_frac: Range) -> pd.DataFrame:
    """Split periods into calendar years (by days) and apply the capacity model per AOI-year."""
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
    cols = [
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
    ]
    return pd.DataFrame(rows, columns=cols)


def _ratio(low: float, declared: float) -> float:
    if math.isnan(declared):
        return math.nan
    if low == 0:
        return 0.0
    if declared == 0:
        return math.inf
    return low / declared


# --------------------------------------------------------------------------- cross-check rules


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
        hits = []
        for w in stops.get(iso3, []):
            if w.zone and zone and w.zone.casefold() != zone.casefold():
                continue
            if w.start > r.period_end or (not pd.isna(w.end) and w.end < r.period_start):
                continue
            hits.append(w)
        if not hits:
            continue
        total = (r.period_end - r.period_start).days + 1
        years: set[int] = set()
        parts, ev = [], []
        for w in hits:
            o_start = max(r.period_start, w.start)
            o_end = r.period_end if pd.isna(w.end) else min(r.period_end, w.end)
            years.update(range(o_start.year, o_end.year + 1))
            days = (o_end - o_start).days + 1
            until = "still in force" if pd.isna(w.end) else f"to {w.end.date()}"
            scope = f"zone '{w.zone}'" if w.zone else "the whole participant"
            note = ""
            if w.zone and not zone:
                note = (
                    " The AOI has no zone, so this zone window is applied because the AOI cannot"
                    " be shown to lie outside it."
                )
            parts.append(
                f"{w.kind} {w.window_id} ({w.start.date()} {until}, {scope}) on {days} of its {total} days.{note}"
            )
            ev.append(f"{w.window_id}:{o_start.date()}/{o_end.date()}")
        period = f"{r.period_start.date()}/{r.period_end.date()}"
        flags.append(
            {
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
        )
    return flags


def _flag_capacity(yearly: pd.DataFrame, *, params: CrosscheckParams) -> list[dict[str, Any]]:
    flags = []
    factor = params.capacity_ratio_flag
    for r in yearly.itertuples(index=False):
        d = r.declared_carats
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


# --------------------------------------------------------------------------- review rules


def _review_frame(table: pd.DataFrame | DeclaredTable | None, *, trade: bool) -> pd.DataFrame:
    frame = table.good if isinstance(table, DeclaredTable) else table
    cols = [
        "participant_iso3",
        "period",
        "kind",
        "year",
        "index",
        "carats",
        "value_usd",
        "usd_per_carat",
        "certificates",
        "flow",
        "basis",
    ]
    if frame is None or len(frame) == 0:
        return pd.DataFrame(columns=cols)
    need = ["participant_iso3", "period", "carats"] + (["flow"] if trade else [])
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise InputDataError(f"{'trade' if trade else 'declared'} table lacks column(s) {', '.join(missing)}")
    parsed = []
    for p in frame["period"].astype(str):
        try:
            parsed.append(parse_period(p))
        except ValueError as exc:
            raise InputDataError(f"{exc}; validate the table with pipeline.declared first") from None
    per_year = {"year": 1, "half": 2, "quarter": 4}

    def num(col: str) -> np.ndarray:
        if col not in frame.columns:
            return np.full(len(frame), np.nan)
        return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    out = pd.DataFrame(
        {
            "participant_iso3": frame["participant_iso3"].astype(str).str.upper().to_numpy(),
            "period": [str(y) if k == "year" else f"{y}{'H' if k == 'half' else 'Q'}{s}" for k, y, s in parsed],
            "kind": [k for k, _, _ in parsed],
            "year": [y for _, y, _ in parsed],
            "index": [y * per_year[k] + max(s - 1, 0) for k, y, s in parsed],
            "carats": num("carats"),
            "value_usd": num("value_usd"),
            "usd_per_carat": num("usd_per_carat"),
            "certificates": num("certificates"),
            "flow": frame["flow"].astype(str).str.lower().to_numpy() if trade else "",
            "basis": frame["basis"].fillna("").astype(str).to_numpy() if "basis" in frame.columns else "",
        }
    )
    return out.sort_values(
        ["participant_iso3", "flow", "kind", "index", "carats", "value_usd"],
        kind="mergesort",
        na_position="last",
    ).reset_index(drop=True)


def _robust_z(x: float, others: np.ndarray) -> tuple[float, float, float]:
    """Leave-one-out robust z of ``x`` against ``others``: (z, median, scale)."""
    med = float(np.median(others))
    dev = np.abs(others - med)
    scale = MAD_TO_SIGMA * float(np.median(dev))
    if scale == 0:
        scale = MEANAD_TO_SIGMA * float(np.mean(dev))
    if scale == 0:
        return (0.0 if x == med else math.copysign(math.inf, x - med)), med, 0.0
    return (x - med) / scale, med, scale


def _jumps(
    g: pd.DataFrame, col: str, *, iso3: str, what: str, unit: str, params: CrosscheckParams
) -> list[dict[str, Any]]:
    s = g[np.isfinite(g[col]) & (g[col] > 0)]
    if len(s) < 2:
        return []
    s = s.drop_duplicates("index", keep="first")
    idx, vals, labels = s["index"].to_numpy(), s[col].to_numpy(dtype=float), s["period"].to_numpy()
    bases = s["basis"].to_numpy() if "basis" in s.columns else np.full(len(s), "")
    flow_tag = f":{what.split()[0]}" if what.startswith(("import", "export")) else ""
    steps = np.diff(idx)
    rates = np.log(vals[1:] / vals[:-1]) / steps
    flags = []
    min_log = math.log(params.review_min_change_factor)
    for j, rate in enumerate(rates):
        others = np.delete(rates, j)
        if len(others) < params.review_min_history_n:
            continue
        z, med, scale = _robust_z(float(rate), others)
        if not (abs(z) > params.review_robust_z_max and abs(rate) >= min_log):
            continue
        a, b, k = vals[j], vals[j + 1], int(steps[j])
        verb = "rose" if rate > 0 else "fell"
        over = "" if k == 1 else f" over {k} periods, {_pct(rate)} a period"
        basis = ""
        if bases[j] != bases[j + 1]:
            basis = (
                f" The two figures have different bases ({bases[j] or 'unstated'} then "
                f"{bases[j + 1] or 'unstated'}), which may explain part of the change."
            )
        flags.append(
            {
                "rule": "statistics_jump",
                "participant_iso3": iso3,
                "aoi_id": "",
                "period": str(labels[j + 1]),
                "evidence": (
                    f"series={col}{flow_tag}; "
                    f"from={labels[j]}; {_amount(a)}->{_amount(b)} {unit}; log_rate={rate:.3f}; "
                    f"robust_z={_z(z)}; median_log_rate={med:.3f}; n_other_changes={len(others)}"
                ),
                "explanation": (
                    f"{iso3} {what} {verb} from {_amount(a)} {unit} in {labels[j]} to "
                    f"{_amount(b)} {unit} in {labels[j + 1]} (x{b / a:.2f}{over}); against its "
                    f"{len(others)} other period-to-period changes (median {_pct(med)}) that is "
                    f"a robust z of {_z(z)}, beyond the {params.review_robust_z_max:g} "
                    f"threshold.{basis} Check the figure against the KP statistics as published."
                ),
            }
        )
    return flags


def _price_flags(prod: pd.DataFrame, *, params: CrosscheckParams) -> list[dict[str, Any]]:
    if prod.empty:
        return []
    p = prod.copy()
    derived = np.where((p["value_usd"] > 0) & (p["carats"] > 0), p["value_usd"] / p["carats"], np.nan)
    p["price"] = np.where(np.isfinite(derived), derived, np.where(p["usd_per_carat"] > 0, p["usd_per_carat"], np.nan))
    p["how"] = np.where(np.isfinite(derived), "value/carats", "as published")
    p = p[np.isfinite(p["price"])].reset_index(drop=True)
    p["log"] = np.log(p["price"])
    min_log = math.log(params.review_min_change_factor)
    history = _leave_one_out_price_flags(
        p,
        by="participant_iso3",
        min_n=params.review_min_history_n,
        rule="usd_per_carat_vs_history",
        against=lambda key, n: f"its {n} other periods",
        min_log=min_log,
        params=params,
    )
    peers = _leave_one_out_price_flags(
        p,
        by="period",
        min_n=params.review_min_peers_n,
        rule="usd_per_carat_vs_peers",
        against=lambda key, n: f"{n} other participants in {key}",
        min_log=min_log,
        params=params,
    )
    return history + peers


def _leave_one_out_price_flags(
    p: pd.DataFrame,
    *,
    by: str,
    min_n: int,
    rule: str,
    against: Callable[[Any, int], str],
    min_log: float,
    params: CrosscheckParams,
) -> list[dict[str, Any]]:
    """Flag log USD/ct far (robust z) from the rest of its group (a participant's history, or a period's peers)."""
    flags: list[dict[str, Any]] = []
    for key, g in p.groupby(by, sort=True):
        logs = g["log"].to_numpy()
        for j, r in enumerate(g.itertuples(index=False)):
            others = np.delete(logs, j)
            if len(others) < min_n:
                continue
            z, med, _ = _robust_z(r.log, others)
            if abs(z) > params.review_robust_z_max and abs(r.log - med) >= min_log:
                flags.append(_price_flag(rule, r, z, med, len(others), against(key, len(others)), params))
    return flags


def _price_flag(
    rule: str, r: Any, z: float, med: float, n: int, against: str, params: CrosscheckParams
) -> dict[str, Any]:
    ref = math.exp(med)
    return {
        "rule": rule,
        "participant_iso3": r.participant_iso3,
        "aoi_id": "",
        "period": r.period,
        "evidence": (f"usd_per_carat={r.price:.2f} ({r.how}); median={ref:.2f}; robust_z={_z(z)}; n={n}"),
        "explanation": (
            f"{r.participant_iso3} declared production for {r.period} is worth {r.price:.2f} "
            f"USD/ct ({r.how}), x{r.price / ref:.2f} the median of {ref:.2f} USD/ct over "
            f"{against}: a robust z of {_z(z)}, beyond the {params.review_robust_z_max:g} "
            "threshold. A price far from the norm can "
            "mean mis-declared value, mixed-origin parcels or a typing error."
        ),
    }


def _export_flags(prod: pd.DataFrame, trd: pd.DataFrame, *, params: CrosscheckParams) -> list[dict[str, Any]]:
    trade_years = annual_trade(trd)
    if trade_years.empty:
        return []
    prod_years = annual_declared(prod)
    producers = set(prod["participant_iso3"])
    pidx = {(r.participant_iso3, int(r.year)): r for r in prod_years.itertuples(index=False)}
    flows = {(r.participant_iso3, int(r.year), r.flow): r for r in trade_years.itertuples(index=False)}
    tol = params.review_export_tolerance_frac
    flags = []
    for (iso3, year, flow), r in sorted(flows.items()):
        if flow != "export" or not (math.isfinite(r.carats) and r.carats > 0):
            continue
        if iso3 not in producers:
            production = 0.0
        else:
            d = pidx.get((iso3, year))
            if d is None or not math.isfinite(d.carats):
                continue
            production = float(d.carats)
        imp = flows.get((iso3, year, "import"))
        has_imports = imp is not None and math.isfinite(imp.carats)
        imports = float(imp.carats) if imp is not None and has_imports else 0.0
        supply = production + imports
        if not r.carats > supply * (1 + tol):
            continue
        imports_text = (
            f"imports of {_amount(imports)} ct" if has_imports else "no import figure in the trade table (counted as 0)"
        )
        producer_text = (
            f"its declared production of {_amount(production)} ct"
            if iso3 in producers
            else f"production of 0 ct ({iso3} has no production rows in the declared table)"
        )
        excess = (r.carats / supply - 1) * 100 if supply else math.inf
        flags.append(
            {
                "rule": "exports_exceed_supply",
                "participant_iso3": iso3,
                "aoi_id": "",
                "period": str(year),
                "evidence": (
                    f"exports_carats={_amount(r.carats)}; production_carats={_amount(production)}; "
                    f"imports_carats={_amount(imports) if has_imports else 'missing'}; "
                    f"tolerance={tol:.0%}"
                ),
                "explanation": (
                    f"{iso3} exported {_amount(r.carats)} ct in {year}, more than {producer_text} "
                    f"plus {imports_text}, by {_amount(r.carats - supply)} ct ({excess:.0f}%, "
                    f"tolerance {tol:.0%}). Exports beyond supply need stock drawdown, re-exported "
                    "goods or undeclared production "
                    "to explain them."
                ),
            }
        )
    return flags


# --------------------------------------------------------------------------- output helpers


def _flags_frame(flags: Iterable[dict[str, Any]]) -> pd.DataFrame:
    rows = [{c: str(f.get(c, "")) for c in FLAG_COLUMNS} for f in flags]
    frame = pd.DataFrame(rows, columns=list(FLAG_COLUMNS))
    frame = frame.astype({c: str for c in FLAG_COLUMNS})
    return frame.sort_values(list(FLAG_COLUMNS), kind="mergesort").drop_duplicates().reset_index(drop=True)


def _num(x: float) -> str:
    return f"{x:,.2f}"


def _ct(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def _amount(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def _z(z: float) -> str:
    return f"{z:+.1f}" if math.isfinite(z) else ("+inf" if z > 0 else "-inf")


def _pct(log_rate: float) -> str:
    return f"{(math.exp(log_rate) - 1) * 100:+.0f}%"


def _change(x0: float, x1: float) -> str:
    if x0 == 0:
        return "from zero" if x1 > 0 else "+0%"
    return f"{(x1 / x0 - 1) * 100:+.0f}%"
