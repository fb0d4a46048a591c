"""Single text cells of a statistics table: plain text, non-negative numbers, window dates."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DeclaredStatsError


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    if value is pd.NA or value is pd.NaT:
        return ""
    return str(value).strip()


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
