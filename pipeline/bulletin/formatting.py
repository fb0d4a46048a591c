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
from .i18n import N_, _, babel_locale, current

_DASH = "–"
_METHOD_NAMES: dict[str, str] = {"geomedian": N_("geometric median"),
                                     "median": N_("per-band median")}


def _decimal(value: float, decimals: int, *, strip: bool = False) -> str:
    """``value`` with thousands separators and ``decimals`` decimals in the current language
    (English: ``1,234.5``; French: ``1\u202f234,5``), both by Babel/CLDR, so that both editions
    round alike: on the decimal digits, half to even (17.95 -> 18.0). Python's own formatting
    rounds the binary value (17.95 -> 17.9), and the English edition printed 17.9 where the
    French printed 18,0 (an outside reviewer)."""
    from babel.numbers import format_decimal

    pattern = "#,##0" + ("." + ("#" if strip else "0") * decimals if decimals else "")
    return format_decimal(value, pattern, locale=babel_locale(), decimal_quantization=True)


def _percent_sign() -> str:
    """`` %`` (English) or a narrow no-break space and ``%`` (French typography)."""
    return " %" if current() == "en" else "\u202f%"


def _long_date(value: Any) -> str:
    """A date in running text: ISO in English (``2026-11-30``), spelled out in French
    (``30 novembre 2026``, Babel; the first of a month ``1er novembre 2026``, as French writes it
    and CLDR's pattern does not)."""
    if current() == "en":
        return f"{pd.Timestamp(value):%Y-%m-%d}"
    from babel.dates import format_date

    day = pd.Timestamp(value).date()
    text = format_date(day, "long", locale=babel_locale())
    if babel_locale().startswith("fr") and day.day == 1 and text.startswith("1 "):
        text = "1er " + text[2:]
    return text


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
        return _decimal(float(value), 1)
    except (TypeError, ValueError):
        return str(value)


def _int(value: Any) -> str:
    if _is_missing(value):
        return _DASH
    try:
        return _decimal(round(float(value)), 0)
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
        return _decimal(int(value), 0)
    return _decimal(v, decimals, strip=strip)


def _value(value: Any) -> str:
    """A configuration value: numbers with separators, sequences comma-joined, switches as
    yes/no in the reader's language (not Python's ``True``)."""
    if isinstance(value, bool | np.bool_):
        return _("yes") if value else _("no")
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
    return f"{float(value) * 100:.0f}{_percent_sign()}"


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
    if abs(v) >= 10 ** (digits - 1) or v == 0:
        return _decimal(v, 0)
    text = f"{v:,.{digits}g}"
    return text if current() == "en" else text.replace(",", "\u202f").replace(".", ",")


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
    # Compass letters: N, S, E, and W (English) / O (French, ouest).
    west = "W" if current() == "en" else "O"
    return (f"{_decimal(abs(lat), 4)}°{'N' if lat >= 0 else 'S'} "
            f"{_decimal(abs(lon), 4)}°{'E' if lon >= 0 else west}")


def _period_text(activity: pd.DataFrame, *, first: bool) -> str:
    """Dates of the first (or last) period of ``activity``."""
    if activity is None or activity.empty:
        return _("first period") if first else _("last period")
    frame = activity.sort_values("period_start")
    r = frame.iloc[0] if first else frame.iloc[-1]
    return f"{_date(r['period_start'])} – {_date(r['period_end'])}"


def _method_name(method: Any) -> str:
    """Reader's name of a composite method (``geomedian`` -> ``geometric median``)."""
    name = _METHOD_NAMES.get(_text(method))
    return _(name) if name else _text(method)


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
    return ", ".join(items[:-1]) + _(" and ") + items[-1]


def _clauses(parts: Iterable[str]) -> str:
    """Clauses of one sentence joined by semicolons, as the language writes them (French puts a
    space before: an outside tester's "nouveau; 2 sites")."""
    # TRANSLATORS: the separator between the clauses of one sentence.
    return _("; ").join(str(p) for p in parts)


def _slug(text: str) -> str:
    """File-name-safe version of an id (ids come from input files)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("._")
    return slug[:80] or "x"
