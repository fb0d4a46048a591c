"""PURE statistical review of declared statistics (the WGS-style review): robust outliers in
period-to-period changes and in USD per carat, and exports beyond supply. See
:func:`review_statistics` and the rules listed in :mod:`pipeline.crosscheck`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..config import CrosscheckParams
from ..declared import DeclaredTable, annual_declared, annual_trade, parse_period
from ..errors import InputDataError
from .columns import _flags_frame
from .text import _amount, _pct, _z

#: MAD -> standard deviation of a normal distribution.
MAD_TO_SIGMA = 1.4826
#: Mean absolute deviation -> standard deviation (Iglewicz & Hoaglin's fallback when MAD = 0).
MEANAD_TO_SIGMA = 1.253314

#: Columns of the frame the review rules work on (:func:`_review_frame`).
_REVIEW_COLUMNS = (
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
)


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
    flags = _jump_flags(prod, trd, params=params)
    flags += _price_flags(prod, params=params)
    if trd is not None:
        flags += _export_flags(prod, trd, params=params)
    for f in flags:
        f.pop("_years", None)
    return _flags_frame(flags)


def _jump_flags(prod: pd.DataFrame, trd: pd.DataFrame | None, *, params: CrosscheckParams) -> list[dict[str, Any]]:
    """``statistics_jump`` flags of every production series, then of every trade series."""
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
    return flags


def _review_frame(table: pd.DataFrame | DeclaredTable | None, *, trade: bool) -> pd.DataFrame:
    """Production or trade rows with parsed periods (``kind``, ``year``, a period ``index`` that
    counts up across years) and numeric amounts, sorted by participant, flow, kind and period."""
    frame = table.good if isinstance(table, DeclaredTable) else table
    if frame is None or len(frame) == 0:
        return pd.DataFrame(columns=list(_REVIEW_COLUMNS))
    need = ["participant_iso3", "period", "carats"] + (["flow"] if trade else [])
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise InputDataError(f"{'trade' if trade else 'declared'} table lacks column(s) {', '.join(missing)}")
    parsed = _parsed_periods(frame)
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


def _parsed_periods(frame: pd.DataFrame) -> list[tuple[str, int, int]]:
    """``parse_period`` of every row; an unparseable period raises :class:`InputDataError`."""
    parsed: list[tuple[str, int, int]] = []
    for p in frame["period"].astype(str):
        try:
            parsed.append(parse_period(p))
        except ValueError as exc:
            raise InputDataError(f"{exc}; validate the table with pipeline.declared first") from None
    return parsed


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
        flags.append(
            _export_flag(
                iso3, year, float(r.carats), production, imports if has_imports else None, iso3 in producers, tol
            )
        )
    return flags


def _export_flag(
    iso3: str, year: int, exported: float, production: float, imports: float | None, producer: bool, tol: float
) -> dict[str, Any]:
    """The ``exports_exceed_supply`` flag (``imports`` None: no import figure, counted as 0;
    ``producer`` False: the participant has no production rows, counted as 0)."""
    has_imports = imports is not None
    imports = imports if imports is not None else 0.0
    supply = production + imports
    imports_text = (
        f"imports of {_amount(imports)} ct" if has_imports else "no import figure in the trade table (counted as 0)"
    )
    producer_text = (
        f"its declared production of {_amount(production)} ct"
        if producer
        else f"production of 0 ct ({iso3} has no production rows in the declared table)"
    )
    excess = (exported / supply - 1) * 100 if supply else math.inf
    return {
        "rule": "exports_exceed_supply",
        "participant_iso3": iso3,
        "aoi_id": "",
        "period": str(year),
        "evidence": (
            f"exports_carats={_amount(exported)}; production_carats={_amount(production)}; "
            f"imports_carats={_amount(imports) if has_imports else 'missing'}; "
            f"tolerance={tol:.0%}"
        ),
        "explanation": (
            f"{iso3} exported {_amount(exported)} ct in {year}, more than {producer_text} "
            f"plus {imports_text}, by {_amount(exported - supply)} ct ({excess:.0f}%, "
            f"tolerance {tol:.0%}). Exports beyond supply need stock drawdown, re-exported "
            "goods or undeclared production "
            "to explain them."
        ),
    }
