"""The locator inset of the site map: the country around an AOI, and where the AOI lies in it.

Country outlines: Natural Earth 1:110m Admin 0 (public domain) as shipped by world-atlas 2.0.2
(ISC), read by :mod:`pipeline.countries`. The country drawn is the one containing the AOI (the nearest one when a
110m coastline leaves a coastal AOI just outside every outline).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import shapely
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.path import Path
from shapely.geometry.polygon import orient

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
    inset.add_collection(_outlines(near.geometry, facecolor="#e3e3e3", edgecolor="#8c8c8c", linewidth=0.4))
    inset.add_collection(_outlines([country], facecolor="#fbfbf7", edgecolor="#222222", linewidth=0.9))
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


def _outlines(geoms: Iterable[Any], **style: Any) -> PathCollection:
    """The polygons of ``geoms`` as one collection (each polygon one path: its exterior and
    holes, as geopandas draws them; exteriors clockwise and holes counter-clockwise, as
    geopandas' ``normalize`` leaves them, so that Agg's nonzero fill leaves the holes open).

    Not ``GeoDataFrame.plot``: it ends with ``canvas.draw_idle()``, which on the Agg canvas of
    the bulletin draws the whole figure at once (the site map's, with its constrained layout):
    twice per site map, 2.4 s of the client's time in a run of 8 AOIs, against about 15 ms for
    the outlines alone."""
    paths = []
    for geom in geoms:
        # twice: make_valid may leave a collection holding multipolygons (and lines)
        for part in shapely.get_parts(shapely.get_parts(geom)):
            if part.geom_type != "Polygon" or part.is_empty:
                continue  # points or lines left by make_valid: no area to fill
            part = orient(part, sign=-1.0)
            rings = [part.exterior, *part.interiors]
            paths.append(Path.make_compound_path(*(Path(np.asarray(r.coords)[:, :2], closed=True) for r in rings)))
    return PathCollection(paths, **style)
