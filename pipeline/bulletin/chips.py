"""Before/after chips: which composites a site's chips compare, and the sentences about them.

A chip pair compares the same season: the latest dry-season composite that ended before the
site was first seen (else the earliest), and the latest dry-season composite. Comparing a
dry-season quarter with a wet-season one would show the season (green-up, burn scars,
flooding), not the excavation. When no such pair exists (no dry-season composite, or none
before and after the change), the chips fall back to the first and last reporting periods,
and the caption says so.

A composite is a median of every clear view in its window. When the site was first seen in the
second half of the "after" window, most of that window precedes the change, and its composite
may show the ground as it was: the caption says so (an outside tester's chip of a site first
seen 20 days before its window ended showed no change and said nothing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..composites import CompositeView
from .formatting import _DASH, _long_date
from .i18n import _, ngettext

__all__ = ["ChipPair", "chip_pair", "chips_note"]


@dataclass(frozen=True, eq=False)
class ChipPair:
    """The two images of a site's chips, their window labels and the caption sentence."""

    before: np.ndarray | None
    after: np.ndarray | None
    windows: tuple[str, str]
    """``start – end`` of each image's window (ISO dates), printed under each chip."""
    caption: str
    same_season: bool


def chip_pair(views: Sequence[CompositeView], first_seen: Any, *, fallback: tuple[Any, Any],
              periods: tuple[str, str], last_period: tuple[dt.date, dt.date] | None = None,
              first_period: tuple[dt.date, dt.date] | None = None) -> ChipPair:
    """The composites a site's chips compare (see the module's docstring).

    ``views``: the AOI's dry-season composites; ``first_seen``: the site's first detection
    (date or ISO text); ``fallback``: the first and last reporting periods' images, and
    ``periods`` their windows as text, used when no dry-season pair brackets the change;
    ``last_period``: the last period's first and last day (for the caption's warning that the
    change came late in it); ``first_period``: the first period's (for the warning that the
    "before" image may already show it).

    >>> v = [CompositeView("dry_season", dt.date(y, 5, 1), dt.date(y, 10, 31), np.zeros((1, 1, 3)))
    ...      for y in (2022, 2023, 2024)]
    >>> chip_pair(v, "2024-02-10", fallback=(None, None), periods=("", "")).windows
    ('2023-05-01 – 2023-10-31', '2024-05-01 – 2024-10-31')
    >>> chip_pair(v[:1], "2024-02-10", fallback=(None, None), periods=("a", "b")).same_season
    False
    """
    seen = _as_date(first_seen)
    pair = _dry_season_pair(views, seen)
    if pair is not None:
        before, after = pair
        windows = (_window(before), _window(after))
        caption = _("Same season: before, the dry-season composite from {before_start} to {before_end}; "
                    "after, that from {after_start} to {after_end}.",
                    before_start=_long_date(before.start), before_end=_long_date(before.end),
                    after_start=_long_date(after.start), after_end=_long_date(after.end))
        warning = _early_change(seen, before.end) or _late_change(seen, (after.start, after.end))
        return ChipPair(before.rgb, after.rgb, windows, caption + warning, True)
    if not views:
        reason = _("No dry-season composite was computed for this area")
    else:
        reason = _("No dry-season composite precedes this site's first detection and another follows it")
    caption = _("{reason}: before is the first reporting period ({first}), after the last ({last}); "
                "their seasons may differ.", reason=reason, first=periods[0], last=periods[1])
    warning = _early_change(seen, first_period[1] if first_period else None) or _late_change(seen, last_period)
    return ChipPair(fallback[0], fallback[1], periods, caption + warning, False)


def chips_note(shown: int, total: int) -> str:
    """How many of the latest period's new or expanding sites have chips.

    >>> chips_note(3, 3)
    'Each of the 3 new or expanding sites of the latest period.'
    >>> chips_note(12, 40).split(" (")[0]
    'The 12 most significant of the 40 new or expanding sites of the latest period'
    """
    if shown >= total:
        return ngettext("The one new or expanding site of the latest period.",
                        "Each of the {n} new or expanding sites of the latest period.", total)
    return _("The {shown} most significant of the {total} new or expanding sites of the latest period "
             "(largest area times confidence); all are in the site table.", shown=shown, total=total)


def _dry_season_pair(views: Sequence[CompositeView], first_seen: dt.date | None,
                     ) -> tuple[CompositeView, CompositeView] | None:
    """``(before, after)``: the latest window ending before ``first_seen`` (else the earliest)
    and the latest; ``None`` when they are the same composite (one window, or the latest
    ended before the change)."""
    ordered = sorted(views, key=lambda v: (v.end, v.start))
    if not ordered:
        return None
    after = ordered[-1]
    earlier = [v for v in ordered if first_seen is not None and v.end < first_seen]
    before = earlier[-1] if earlier else ordered[0]
    return None if before is after else (before, after)


def _early_change(first_seen: dt.date | None, before_end: dt.date | None) -> str:
    """`` <warning>`` when ``first_seen`` is on or before the last day of the "before" window:
    that image may already show the site (an outside tester's fallback chip), else ``""``.

    >>> _early_change(dt.date(2023, 8, 2), dt.date(2023, 10, 31))[:60]
    ' First seen on 2023-08-02, by the end of the before window: '
    >>> _early_change(dt.date(2023, 11, 2), dt.date(2023, 10, 31))
    ''
    """
    if first_seen is None or before_end is None or first_seen > before_end:
        return ""
    return " " + _("First seen on {date}, by the end of the before window: the before image may already show it.",
                   date=_long_date(first_seen))


def _late_change(first_seen: dt.date | None, window: tuple[dt.date, dt.date] | None) -> str:
    """`` <warning>`` when ``first_seen`` falls in the second half of the "after" ``window``
    (first and last day), else ``""``.

    >>> _late_change(dt.date(2024, 10, 11), (dt.date(2024, 5, 1), dt.date(2024, 10, 31)))[:68]
    ' First seen on 2024-10-11, 20 days before the after window ended: mo'
    >>> _late_change(dt.date(2024, 6, 1), (dt.date(2024, 5, 1), dt.date(2024, 10, 31)))
    ''
    """
    if first_seen is None or window is None:
        return ""
    start, end = window
    if not (start <= first_seen <= end) or (end - first_seen) * 2 >= (end - start):
        return ""
    return " " + ngettext(
        "First seen on {date}, {n} day before the after window ended: most of that window precedes the change, "
        "and its composite, the median of all its clear views, may not show it.",
        "First seen on {date}, {n} days before the after window ended: most of that window precedes the change, "
        "and its composite, the median of all its clear views, may not show it.",
        (end - first_seen).days, date=_long_date(first_seen))


def _as_date(value: Any) -> dt.date | None:
    stamp = pd.to_datetime(value, errors="coerce")
    return None if pd.isna(stamp) else stamp.date()


def _window(view: CompositeView) -> str:
    """``start – end`` in ISO dates (under the chip, like the tables: both languages)."""
    return f"{view.start.isoformat()} {_DASH} {view.end.isoformat()}"
