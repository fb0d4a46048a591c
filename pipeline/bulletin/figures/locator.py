"""The locator inset of the site map: the country around an AOI, and where the AOI lies in it.

Country outlines: Natural Earth 1:110m Admin 0 (public domain) as shipped by world-atlas 2.0.2
(ISC), read by :mod:`pipeline.countries`. The country drawn is the one containing the AOI (the nearest one when a
110m coastline leaves a coastal AOI just outside every outline).
"""

from __future__ import annotations

import math

from matplotlib.axes import Axes

from ...countries import COUNTRIES, countries, country_at

__all__ = ["COUNTRIES", "country_at", "draw_locator"]



def draw_locator(inset: Axes, lon: float, lat: float) -> bool:
    """Draw the locator into the axes ``inset`` (beside the map: it never hides a site);
    ``False``, and nothing drawn, when no country is found."""
    row = country_at(lon, lat)
    if row is None:
        return False
    frame = countries()
    country = frame.geometry.iloc[row]
    minx, miny, maxx, maxy = country.bounds
    span = max(maxx - minx, maxy - miny, 2.0)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half = span * 0.6
    inset.set_facecolor("#d6e6f2")  # sea
    window = (cx - half, cy - half, cx + half, cy + half)
    near = frame.cx[window[0]:window[2], window[1]:window[3]]
    near.plot(ax=inset, color="#e3e3e3", edgecolor="#8c8c8c", linewidth=0.4)
    frame.iloc[[row]].plot(ax=inset, color="#fbfbf7", edgecolor="#222222", linewidth=0.9)
    inset.plot([lon], [lat], marker="s", markersize=6, color="#D55E00", markeredgecolor="black",
               markeredgewidth=0.8, zorder=5)
    inset.set_xlim(window[0], window[2])
    inset.set_ylim(window[1], window[3])
    inset.set_aspect(1 / max(math.cos(math.radians(cy)), 0.2), anchor="N")
    inset.set_xticks([])
    inset.set_yticks([])
    inset.set_xlabel("")
    inset.set_ylabel("")
    for spine in inset.spines.values():
        spine.set_edgecolor("black")
        spine.set_linewidth(0.8)
    return True
