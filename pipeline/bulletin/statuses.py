"""Site statuses as the bulletin shows them: listing order, outline colours, definitions.

The statuses themselves, and their order (most urgent first), are
:data:`pipeline.types.SITE_STATUSES` (the values of :data:`pipeline.types.SiteStatus`),
shared with :mod:`pipeline.sites`. The tables here follow that order; adding or removing a
status there without a colour and a definition here fails at import (``zip(strict=True)``).
"""

from __future__ import annotations

from ..types import SITE_STATUSES

__all__ = ["DISMISSED_COLOUR", "STATUS_COLOURS", "STATUS_DEFINITIONS", "STATUS_ORDER", "VERDICT_DEFINITIONS",
           "VERDICT_LINESTYLES", "VERDICT_MARKS"]

#: Order in which statuses are listed (most urgent first).
STATUS_ORDER: tuple[str, ...] = SITE_STATUSES
#: Outline colour of each site status (Okabe-Ito palette: distinguishable with
#: the common colour-vision deficiencies, and visible over imagery).
STATUS_COLOURS: dict[str, str] = dict(zip(SITE_STATUSES, (
    "#D55E00",  # new: vermillion
    "#F0E442",  # expanding: yellow
    "#56B4E9",  # active: sky blue
    "#CCCCCC",  # dormant: light grey
), strict=True))
#: Plain-language meaning of each site status, printed under the site tables.
STATUS_DEFINITIONS: dict[str, str] = dict(zip(SITE_STATUSES, (
    "first detected in the latest period",  # new
    "known before and grew in the latest period",  # expanding
    "known before, fresh disturbance confirmed in the latest period without growth",  # active
    "no fresh disturbance in the latest period",  # dormant
), strict=True))

#: Analysts' verdicts (:mod:`pipeline.register`) as the map draws them: the outline's line
#: style, and a mark after the site's label. Unreviewed sites look as they always did.
VERDICT_LINESTYLES: dict[str, str] = {"unreviewed": "-", "confirmed": "-", "uncertain": "--"}
VERDICT_MARKS: dict[str, str] = {"unreviewed": "", "confirmed": " \u2713", "uncertain": " ?"}
#: Outline colour of sites analysts dismissed as false alarms (drawn dotted, not findings).
DISMISSED_COLOUR = "#FFFFFF"
#: Plain-language meaning of each verdict, printed under the site tables.
VERDICT_DEFINITIONS: dict[str, str] = {
    "unreviewed": "no analyst has judged the site yet",
    "confirmed": "an analyst judged it mining (\u2713 on the map)",
    "uncertain": "an analyst looked and could not decide (dashed outline, ? on the map)",
    "false_alarm": "an analyst judged it not mining: it is listed apart and left out of every count and area",
}
