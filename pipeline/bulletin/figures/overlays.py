"""What is drawn over the imagery: site outlines and labels, scale bar, north arrow."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle
from pyproj import Transformer
from shapely.geometry import box

from ..statuses import DISMISSED_COLOUR, STATUS_COLOURS, STATUS_ORDER, VERDICT_LINESTYLES, VERDICT_MARKS
from .labels import SiteLabel

__all__ = ["short_site_label"]

#: Dark halo around outlines (and legend lines), so they stand out over any imagery.
HALO = [patheffects.Stroke(linewidth=3.2, foreground="black"), patheffects.Normal()]
#: ``gid`` of the scale bar's and north arrow's backgrounds: site labels keep off them.
FURNITURE_GID = "map-furniture"


def short_site_label(site_id: str, aoi_id: str = "") -> str:
    """Short label for a site on a map: the id without its AOI prefix.

    ``short_site_label("kasai-001-0007", "kasai-001")`` -> ``"0007"``; ids with no
    AOI prefix keep their last 8 characters.
    """
    text = str(site_id)
    for sep in ("-", "_", ":", "/", "."):
        prefix = f"{aoi_id}{sep}" if aoi_id else ""
        if prefix and text.startswith(prefix) and len(text) > len(prefix):
            return text[len(prefix) :]
    return text if len(text) <= 8 else text[-8:]


def _draw_sites(ax: Axes, sites: gpd.GeoDataFrame, *, aoi_id: str, linewidth: float) -> list[SiteLabel]:
    """Outline every site in its status colour, most urgent on top; return their labels, most
    urgent first (placed later, once the layout is final: :func:`~.labels.place_labels`)."""
    if sites is None or sites.empty:
        return []
    # Dormant first so that new and expanding outlines are drawn on top.
    rank = {s: i for i, s in enumerate(reversed(STATUS_ORDER))}
    order = sorted(range(len(sites)), key=lambda i: rank.get(str(sites["status"].iloc[i]), -1))
    labels = []
    for i in order:
        row = sites.iloc[i]
        geom = row.geometry
        if geom is None or geom.is_empty:
            continue
        verdict = str(row.get("verdict", "unreviewed"))
        if verdict == "false_alarm":
            colour, style, mark = DISMISSED_COLOUR, ":", " \u00d7"
        else:
            colour = STATUS_COLOURS.get(str(row["status"]), "white")
            style, mark = VERDICT_LINESTYLES.get(verdict, "-"), VERDICT_MARKS.get(verdict, "")
        _plot_outline(ax, geom, color=colour, linewidth=linewidth, linestyle=style)
        labels.append(SiteLabel(short_site_label(row["site_id"], aoi_id) + mark, tuple(geom.bounds)))
    return labels[::-1]


def _map_frame(extent: Sequence[float], geoms: Iterable[Any], *, pad_frac: float = 0.03,
               touch_frac: float = 0.01) -> tuple[float, float, float, float]:
    """The map's limits: ``extent`` grown to hold every one of ``geoms`` whole.

    A side that a geometry crosses or nears (within ``touch_frac`` of the frame's larger side:
    a site on the imagery's last pixels, where the AOI boundary runs) moves out to it plus
    ``pad_frac`` of that side, so the outline and its halo stand clear of the frame and the
    boundary; the other sides stay on the imagery.

    >>> _map_frame((0, 0, 100, 50), [box(90, 10, 110, 20)])
    (0.0, 0.0, 113.0, 50.0)
    >>> _map_frame((0, 0, 100, 50), [box(0, 10, 20, 20)])
    (-3.0, 0.0, 100.0, 50.0)
    """
    left, bottom, right, top = (float(v) for v in extent)
    size = max(right - left, top - bottom)
    pad, tol = pad_frac * size, touch_frac * size
    out = [left, bottom, right, top]
    for geom in geoms:
        if geom is None or geom.is_empty:
            continue
        minx, miny, maxx, maxy = geom.bounds
        out[0] = min(out[0], minx - pad) if minx < left + tol else out[0]
        out[1] = min(out[1], miny - pad) if miny < bottom + tol else out[1]
        out[2] = max(out[2], maxx + pad) if maxx > right - tol else out[2]
        out[3] = max(out[3], maxy + pad) if maxy > top - tol else out[3]
    return out[0], out[1], out[2], out[3]


def _plot_outline(ax: Axes, geom: Any, *, color: str, linewidth: float, linestyle: str = "-") -> None:
    """Draw every ring of a (Multi)Polygon with a dark halo (no GeoPandas: it forces redraws)."""
    polygons = getattr(geom, "geoms", [geom])
    for poly in polygons:
        rings = [poly.exterior, *poly.interiors] if hasattr(poly, "exterior") else [poly]
        for ring in rings:
            xy = np.asarray(ring.coords)
            if xy.size:
                ax.plot(xy[:, 0], xy[:, 1], color=color, linewidth=linewidth, linestyle=linestyle,
                        path_effects=HALO, zorder=3, solid_joinstyle="miter")


def _nice_length(target: float) -> float:
    """Largest 1, 2 or 5 x 10^n not above ``target``."""
    if target <= 0:
        return 1.0
    exp = math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * 10**exp <= target:
            return float(m * 10**exp)
    return float(10**exp)


def _format_distance(metres: float) -> str:
    if metres >= 1000:
        km = metres / 1000
        return f"{km:g} km"
    return f"{metres:g} m"


def _free_corner(
    sites: gpd.GeoDataFrame | None, extent: Sequence[float], corners: Sequence[str],
    *, frac: float = 0.3,
) -> str:
    """The first of ``corners`` whose ``frac`` x ``frac`` box covers the least site area."""
    if sites is None or sites.empty:
        return corners[0]
    left, bottom, right, top = extent
    w, h = (right - left) * frac, (top - bottom) * frac
    boxes = {
        "lower left": box(left, bottom, left + w, bottom + h),
        "lower right": box(right - w, bottom, right, bottom + h),
        "upper left": box(left, top - h, left + w, top),
        "upper right": box(right - w, top - h, right, top),
    }
    geoms = [g for g in sites.geometry if g is not None and not g.is_empty]
    covered = {c: sum(g.intersection(boxes[c]).area for g in geoms) for c in corners}
    return min(corners, key=lambda c: (covered[c], corners.index(c)))


def _draw_scale_bar(
    ax: Axes, extent: Sequence[float], *, fontsize: float = 7.5, corner: str = "lower left"
) -> None:
    """Four-segment black/white bar in a lower corner, length a round number of metres."""
    left, bottom, right, top = extent
    width, height = right - left, top - bottom
    length = _nice_length(width * 0.25)
    x0 = left + width * 0.04 if corner != "lower right" else right - width * 0.04 - length
    y0 = bottom + height * 0.05
    bar_h = height * 0.012 + 1e-9
    pad = width * 0.015
    ax.add_patch(Rectangle((x0 - pad, y0 - pad), length + 2 * pad, bar_h + height * 0.07 + pad,
                           fc="white", ec="none", alpha=0.8, zorder=5, gid=FURNITURE_GID))
    n = 4
    for k in range(n):
        ax.add_patch(Rectangle((x0 + k * length / n, y0), length / n, bar_h,
                               fc="black" if k % 2 == 0 else "white", ec="black", lw=0.6,
                               zorder=6))
    ax.text(x0 + length / 2, y0 + bar_h + height * 0.01, _format_distance(length),
            ha="center", va="bottom", fontsize=fontsize, zorder=6)


def _true_north_angle(extent: Sequence[float], epsg: int) -> float:
    """Angle of true north at the centre of ``extent``, clockwise from UTM grid north (radians).

    Grid north differs from true north by the meridian convergence.
    """
    left, bottom, right, top = extent
    try:
        to_ll = Transformer.from_crs(epsg, 4326, always_xy=True)
        to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
        cx, cy = (left + right) / 2, (bottom + top) / 2
        lon, lat = to_ll.transform(cx, cy)
        nx, ny = to_utm.transform(lon, min(lat + 0.01, 89.9))
        return math.atan2(nx - cx, ny - cy)
    except Exception:  # pragma: no cover - a bad EPSG still gets a grid-north arrow
        return 0.0


def _draw_north_arrow(
    ax: Axes, extent: Sequence[float], epsg: int, *, corner: str = "upper right"
) -> None:
    """Arrow to true north in an upper corner."""
    left, bottom, right, top = extent
    width, height = right - left, top - bottom
    angle = _true_north_angle(extent, epsg)
    size = min(width, height) * 0.09
    ax_x = left + width * 0.07 if corner == "upper left" else right - width * 0.07
    ax_y = top - height * 0.06 - size
    dx, dy = size * math.sin(angle), size * math.cos(angle)
    ax.add_patch(Rectangle((ax_x - size * 0.45, ax_y - size * 0.2), size * 0.9, size * 1.75,
                           fc="white", ec="none", alpha=0.7, zorder=5, gid=FURNITURE_GID))
    ax.annotate("", xy=(ax_x + dx, ax_y + dy), xytext=(ax_x, ax_y),
                arrowprops={"arrowstyle": "-|>,head_width=0.35,head_length=0.7", "lw": 1.6,
                            "color": "black"}, zorder=6)
    ax.text(ax_x + dx * 1.15, ax_y + dy * 1.15 + size * 0.05, "N", ha="center", va="bottom",
            fontsize=9, fontweight="bold", zorder=6)
