"""Number formatting for the evidence and explanation text of flags."""

from __future__ import annotations

import math


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
