"""How single values print in the bulletin: numbers, dates, ranges, links, markup.

Every formatter takes whatever an input frame holds (``None``, NaN, numpy scalars,
strings) and returns text; missing values print as an en dash (``_DASH``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from ..precision import round_significant

_DASH = "–"
_METHOD_NAMES: dict[str, str] = {"geomedian": "geometric median", "median": "per-band median"}


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )


def _text(value: Any) -> str:
    return "" if _is_missing(value) else str(value)


def _ha(value: Any) -> str:
    """Hectares with thousands separators and one decimal."""
    if _is_missing(value):
        return _DASH
    try:
        return f"{float(value):,.1f}"
    except (TypeError, ValueError):
        return str(value)


def _int(value: Any) -> str:
    if _is_missing(value):
        return _DASH
    try:
        return f"{round(float(value)):,d}"
    except (TypeError, ValueError):
        return str(value)


def _year(value: Any) -> str:
    """Years print without a thousands separator."""
    if _is_missing(value):
        return _DASH
    try:
        return str(int(float(value)))
    except (TypeError, ValueError):
        return str(value)


def _num(value: Any, decimals: int, *, strip: bool = False) -> str:
    if _is_missing(value):
        return _DASH
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,d}"
    text = f"{v:,.{decimals}f}"
    if strip and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _value(value: Any) -> str:
    """A configuration value: numbers with separators, sequences comma-joined."""
    if _is_number(value):
        return _num(value, 4, strip=True)
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_value(v) for v in value)
    return _text(value)


def _ratio(value: Any) -> str:
    if _is_number(value) and math.isinf(float(value)):
        return "∞"  # estimate > 0 against a declared zero
    return _num(value, 2)


def _pct(value: Any) -> str:
    if _is_missing(value):
        return _DASH
    return f"{float(value) * 100:.0f} %"


def _range(low: Any, high: Any) -> str:
    if _is_missing(low) and _is_missing(high):
        return _DASH
    return f"{_int(low)} {_DASH} {_int(high)}"


def _sig(value: Any, digits: int = 2) -> str:
    """A number to ``digits`` significant figures, with thousands separators.

    >>> _sig(2141.25), _sig(123336.0), _sig(0.0), _sig(None)
    ('2,100', '120,000', '0', '–')
    """
    if _is_missing(value):
        return _DASH
    try:
        v = round_significant(float(value), digits)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return str(v)
    return f"{v:,.0f}" if abs(v) >= 10 ** (digits - 1) or v == 0 else f"{v:,.{digits}g}"


def _carats(low: Any, high: Any) -> str:
    """An estimated carat range, each end to 2 significant figures (the range spans a factor of tens)."""
    if _is_missing(low) and _is_missing(high):
        return _DASH
    return f"{_sig(low)} {_DASH} {_sig(high)}"


def _date(value: Any) -> str:
    if _is_missing(value) or value == "":
        return _DASH
    try:
        return f"{pd.Timestamp(value):%Y-%m-%d}"
    except (TypeError, ValueError):
        return str(value)


def _timestamp(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
        return f"{value:%Y-%m-%d %H:%M} UTC"
    return f"{value:%Y-%m-%d %H:%M}"


def _lonlat(lon: float, lat: float) -> str:
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return _DASH
    return (f"{abs(lat):.4f}°{'N' if lat >= 0 else 'S'} "
            f"{abs(lon):.4f}°{'E' if lon >= 0 else 'W'}")


def _period_text(activity: pd.DataFrame, *, first: bool) -> str:
    """Dates of the first (or last) period of ``activity``."""
    if activity is None or activity.empty:
        return "first period" if first else "last period"
    frame = activity.sort_values("period_start")
    r = frame.iloc[0] if first else frame.iloc[-1]
    return f"{_date(r['period_start'])} – {_date(r['period_end'])}"


def _method_name(method: Any) -> str:
    """Reader's name of a composite method (``geomedian`` -> ``geometric median``)."""
    return _METHOD_NAMES.get(_text(method), _text(method))


def _split_flags(value: Any) -> list[str]:
    if _is_missing(value):
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if str(v)]
    return [p.strip() for p in str(value).split(";") if p.strip()]


def _safe_href(value: Any) -> str | None:
    """``value`` if it is a plain http(s) URL (never ``javascript:`` etc.), else ``None``."""
    text = _text(value).strip()
    if re.fullmatch(r"https?://[^\s<>\"']+", text):
        return text
    return None


def _breakable(value: Any) -> Markup:
    """Escape ``value`` and allow line breaks after underscores (long rule names)."""
    return Markup("_<wbr>").join(escape(part) for part in _text(value).split("_"))


def _inline_markup(text: str) -> Markup:
    """Escape ``text``; render reStructuredText ````code```` and ``*emphasis*`` (docstrings)."""
    out = str(escape(text))
    out = re.sub(r"``(.+?)``", r'<code>\1</code>', out)
    out = re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"<em>\1</em>", out)
    return Markup(out)


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def _join(items: Iterable[str]) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _slug(text: str) -> str:
    """File-name-safe version of an id (ids come from input files)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("._")
    return slug[:80] or "x"
