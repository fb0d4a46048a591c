"""Periods of KP statistics: parse ``2019``, ``2019H1`` or ``2019Q3``, write them back in
canonical form, and give their first and last day."""

from __future__ import annotations

import re
from typing import Literal

import pandas as pd

PeriodKind = Literal["year", "half", "quarter"]

_PERIOD_RE = re.compile(
    r"^\s*(?:"
    r"(?P<y1>\d{4})\s*[-_ ]?\s*(?P<k1>[HQhq])(?P<n1>\d)"  # 2019H1, 2019-Q3
    r"|(?P<k2>[HQhq])(?P<n2>\d)\s*[-_ ]?\s*(?P<y2>\d{4})"  # H1 2019
    r"|(?P<y3>\d{4})"  # 2019
    r")\s*$"
)


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
