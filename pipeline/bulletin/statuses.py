"""Site statuses as the bulletin shows them: listing order, outline colours, definitions.

The statuses themselves, and their order (most urgent first), are
:data:`pipeline.types.SITE_STATUSES` (the values of :data:`pipeline.types.SiteStatus`),
shared with :mod:`pipeline.sites`. The tables here follow that order; adding or removing a
status there without a colour and a definition here fails at import (``zip(strict=True)``).
"""

from __future__ import annotations

from ..types import SITE_STATUSES
from .i18n import N_, _

__all__ = ["DISMISSED_COLOUR", "STATUS_COLOURS", "STATUS_DEFINITIONS", "STATUS_ORDER", "VERDICT_DEFINITIONS",
           "VERDICT_LINESTYLES", "VERDICT_MARKS", "label", "status_definitions", "verdict_definitions"]

#: Order in which statuses are listed (most urgent first).
STATUS_ORDER: tuple[str, ...] = SITE_STATUSES
#: Outline colour of each site status: saturated hues no surface of the imagery takes
#: (laterite and burnt ground are red, orange, brown or black, vegetation green, bare sand
#: pale tan), drawn with a dark halo so that they hold over bright ground too. White was
#: refused: it is within 30 CIELAB units of bare sand. The four stay at least 30 units apart
#: in Machado et al. (2009) simulations of protanopia, deuteranopia and tritanopia; blue, the
#: darkest, marks dormant sites, the least urgent. ``tests/test_bulletin_maps.py`` checks
#: their CIELAB distance from those surfaces.
STATUS_COLOURS: dict[str, str] = dict(zip(SITE_STATUSES, (
    "#FF00FF",  # new: magenta
    "#FFFF00",  # expanding: yellow
    "#00FFFF",  # active: cyan
    "#0000FF",  # dormant: blue
), strict=True))
#: Plain-language meaning of each site status: the bulletin defines them once, in its
#: "How to read this bulletin" box (:func:`status_definitions` adds the dates and the growth
#: threshold of the run). "New" is about the latest reporting period, never about the bulletin:
#: sites absent from every earlier bulletin are "reported for the first time".
STATUS_DEFINITIONS: dict[str, str] = dict(zip(SITE_STATUSES, (
    N_("first detected in the latest reporting period"),  # new
    N_("first detected before the latest reporting period, and grew during it"),  # expanding
    # active and dormant: whether the site's ground was seen changed against its baseline in the
    # period (pipeline.sites: its last observation with evidence). Ground left bare after the
    # digging stopped is seen changed too: "fresh disturbance" claimed digging the data cannot
    # tell (an outside reviewer: pits the demo's truth abandoned were "active").
    N_("first detected before the latest reporting period; its ground was still seen disturbed during it, "
       "without that growth (bare ground left after digging stops looks the same: this does not say "
       "digging went on)"),  # active
    N_("first detected before the latest reporting period; its ground was not seen disturbed during it "
       "(under cloud, or growing back; the site stays listed)"),  # dormant
), strict=True))

#: Analysts' verdicts (:mod:`pipeline.register`) as the map draws them: the outline's line
#: style, and a mark after the site's label. Unreviewed sites look as they always did.
VERDICT_LINESTYLES: dict[str, str] = {"unreviewed": "-", "confirmed": "-", "uncertain": "--"}
VERDICT_MARKS: dict[str, str] = {"unreviewed": "", "confirmed": " \u2713", "uncertain": " ?"}
#: Outline colour of sites analysts dismissed as false alarms (drawn dotted and marked ×,
#: not findings).
DISMISSED_COLOUR = "#FFFFFF"
#: Plain-language meaning of each verdict, printed under the site tables.
VERDICT_DEFINITIONS: dict[str, str] = {
    "unreviewed": N_("no analyst has judged the site yet"),
    "confirmed": N_("an analyst judged it mining (\u2713 on the map)"),
    "uncertain": N_("an analyst looked and could not decide (dashed outline, ? on the map)"),
    "false_alarm": N_("an analyst judged it not mining: it is listed apart and left out of every count and area"),
}
#: Reader's name of each status and verdict (the data keep the English identifiers).
_LABELS: dict[str, str] = {
    "new": N_("new"), "expanding": N_("expanding"), "active": N_("active"), "dormant": N_("dormant"),
    "unreviewed": N_("unreviewed"), "confirmed": N_("confirmed"), "uncertain": N_("uncertain"),
    "false_alarm": N_("false_alarm"),
}


def label(key: str) -> str:
    """A status or verdict as the reader sees it, in the current language (``new`` -> ``nouveau``)."""
    return _(_LABELS[key]) if key in _LABELS else key


def verdict_definitions() -> dict[str, str]:
    """:data:`VERDICT_DEFINITIONS` in the current language."""
    return {k: _(v) for k, v in VERDICT_DEFINITIONS.items()}

def status_definitions(latest: str | None, growth_frac: float | None) -> dict[str, str]:
    """:data:`STATUS_DEFINITIONS` with the latest period's dates and the growth threshold.

    >>> for part in status_definitions("2024-04-01 to 2024-06-30", 0.1)["expanding"].split(", and "):
    ...     print(part)
    first detected before the latest reporting period (2024-04-01 to 2024-06-30)
    grew during it by at least 10 % of its area
    """
    out = {}
    for status, text in STATUS_DEFINITIONS.items():
        text = _(text)
        if latest:
            period = _("the latest reporting period")
            text = text.replace(period, f"{period} ({latest})", 1)
        if status == "expanding" and growth_frac is not None:
            text += " " + _("by at least {pct} % of its area", pct=f"{growth_frac * 100:.0f}")
        out[status] = text
    return out
