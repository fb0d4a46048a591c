"""PURE aggregation of validated statistics to calendar years (complete years only carry
figures)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .periods import parse_period
from .tables import DeclaredTable


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


def _floats(frame: pd.DataFrame, col: str) -> np.ndarray:
    """Column as a float array (NaN where missing or not a number; all NaN if absent)."""
    if col not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _frame(table: pd.DataFrame | DeclaredTable | None) -> pd.DataFrame:
    if table is None:
        return pd.DataFrame()
    return table.good if isinstance(table, DeclaredTable) else table
