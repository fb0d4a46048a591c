"""Matplotlib figure helpers for the monitoring bulletin.

Every function here takes in-memory objects (numpy arrays, GeoDataFrames,
DataFrames) and returns a :class:`matplotlib.figure.Figure`; nothing is read
from or written to disk. :func:`figure_png` turns a figure into PNG bytes,
which :mod:`pipeline.bulletin` both writes under ``figures/`` and embeds in
the HTML as a data URI.

Figures are built with the object-oriented API (``Figure`` plus an Agg
canvas), never ``pyplot``: no global state, no GUI backend, safe to call from
worker threads.

Conventions
-----------
- Images are ``(H, W, 3)`` float arrays of reflectance (or any linear value),
  row 0 at the top (north), NaN where there is no valid observation.
- ``extent`` is ``(left, bottom, right, top)`` in the metres of the AOI's UTM
  CRS, given by ``epsg`` (the rasterio ``BoundingBox`` order, *not*
  matplotlib's ``(left, right, bottom, top)``).
- Site geometries passed to drawing functions are in that same UTM CRS.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Sequence
from typing import Any

# No ``matplotlib.use(...)``: every figure gets its own Agg canvas, so no backend is
# needed, and selecting one here would switch a notebook's inline backend off.
import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter
from pyproj import Transformer

__all__ = [
    "STATUS_COLOURS",
    "STATUS_ORDER",
    "STRETCH_PERCENTILES",
    "figure_png",
    "plot_activity",
    "plot_site_chips",
    "plot_site_map",
    "short_site_label",
    "stretch_rgb",
    "stretch_limits",
]

#: Outline colour of each site status (Okabe-Ito palette: distinguishable with
#: the common colour-vision deficiencies, and visible over imagery).
STATUS_COLOURS: dict[str, str] = {
    "new": "#D55E00",  # vermillion
    "expanding": "#F0E442",  # yellow
    "active": "#56B4E9",  # sky blue
    "dormant": "#CCCCCC",  # light grey
}
#: Order in which statuses are listed (most urgent first).
STATUS_ORDER: tuple[str, ...] = ("new", "expanding", "active", "dormant")
#: Default display stretch of true-colour composites: (low, high) percentiles.
STRETCH_PERCENTILES: tuple[float, float] = (1.0, 99.5)
#: Colour for areas with no valid observation.
NODATA_COLOUR = "#BDBDBD"
_HALO = [patheffects.Stroke(linewidth=3.2, foreground="black"), patheffects.Normal()]
_TEXT_HALO = [patheffects.withStroke(linewidth=2.5, foreground="black")]
_DPI = 150


# --------------------------------------------------------------------------- public


def figure_png(fig: Figure, *, dpi: int = _DPI) -> bytes:
    """Render ``fig`` to PNG bytes (Agg, ``dpi`` dots per inch)."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    # No "Software" metadata: identical inputs give identical bytes across matplotlib builds.
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def stretch_limits(
    *images: np.ndarray | None,
    low_pct: float = STRETCH_PERCENTILES[0],
    high_pct: float = STRETCH_PERCENTILES[1],
) -> tuple[float, float]:
    """Robust display limits shared by several true-colour composites.

    One ``(low, high)`` pair over all three bands of all ``images`` (so hues are
    kept and a before/after pair is stretched identically: a change in the
    picture is a change on the ground, not in the stretch). NaNs are ignored.
    Falls back to ``(0, 0.3)`` (typical reflectance range) when nothing is valid.
    """
    values = [np.asarray(im, dtype="float32").ravel() for im in images if im is not None]
    if not values:
        return 0.0, 0.3
    flat = np.concatenate(values)
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 0.0, 0.3
    if flat.size > 2_000_000:  # a regular subsample is plenty for two percentiles
        flat = flat[:: flat.size // 1_000_000]
    lo, hi = np.percentile(flat, [low_pct, high_pct])
    if not hi > lo:
        hi = lo + 1e-6
    return float(lo), float(hi)


def stretch_rgb(
    rgb: np.ndarray, limits: tuple[float, float], *, gamma: float = 1.3
) -> np.ndarray:
    """Linear stretch to ``limits`` then gamma; returns RGBA float32 in 0..1.

    ``out = clip((x - low) / (high - low), 0, 1) ** (1 / gamma)``; ``gamma > 1``
    brightens the dark vegetated and excavated surfaces typical of the AOIs.
    Pixels with any NaN band get alpha 0 (the axes background shows through).

    Examples
    --------
    >>> rgb = np.full((4, 4, 3), 0.1, dtype="float32"); rgb[0, 0] = np.nan
    >>> out = stretch_rgb(rgb, (0.0, 0.2), gamma=1.0)
    >>> out.shape, float(out[1, 1, 0]), float(out[0, 0, 3])
    ((4, 4, 4), 0.5, 0.0)
    """
    arr = np.asarray(rgb, dtype="float32")
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) array, got shape {arr.shape}")
    lo, hi = limits
    valid = np.isfinite(arr).all(axis=2)
    scaled = np.clip((np.nan_to_num(arr, nan=lo) - lo) / (hi - lo), 0.0, 1.0)
    if gamma != 1.0:
        scaled = scaled ** (1.0 / gamma)
    out = np.empty(arr.shape[:2] + (4,), dtype="float32")
    out[..., :3] = scaled
    out[..., 3] = valid.astype("float32")
    return out


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


def plot_site_map(
    rgb: np.ndarray | None,
    extent: Sequence[float],
    sites_utm: gpd.GeoDataFrame,
    *,
    epsg: int,
    aoi_id: str = "",
    limits: tuple[float, float] | None = None,
    title: str | None = None,
    width_in: float = 7.0,
) -> Figure:
    """Map of site outlines over a true-colour composite.

    Parameters
    ----------
    rgb
        ``(H, W, 3)`` float composite, row 0 north; ``None``: outlines on a plain
        background.
    extent
        ``(left, bottom, right, top)`` of ``rgb`` in UTM metres (``epsg``).
    sites_utm
        Sites in the same CRS with columns ``site_id`` and ``status``; may be empty.
    epsg
        EPSG code of the UTM CRS; used for the lat/lon graticule and north arrow.
    limits
        Display stretch (see :func:`stretch_limits`); computed from ``rgb`` if ``None``.

    Returns
    -------
    Figure
        Outlines coloured by status (:data:`STATUS_COLOURS`), labelled with
        :func:`short_site_label`; a scale bar, a north arrow pointing to true
        north, and a graticule labelled in decimal degrees (WGS 84).
    """
    left, bottom, right, top = (float(v) for v in extent)
    aspect = (top - bottom) / max(right - left, 1e-9)
    height_in = min(max(width_in * aspect, 3.0), 9.0) + 0.9
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    _draw_image(ax, rgb, (left, bottom, right, top), limits)
    _draw_sites(ax, sites_utm, aoi_id=aoi_id, labels=True, linewidth=1.4,
                extent=(left, bottom, right, top))
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    _draw_graticule(ax, (left, bottom, right, top), epsg)
    # Scale bar and north arrow go in the corners with the least site area under them.
    box = (left, bottom, right, top)
    _draw_scale_bar(ax, box, corner=_free_corner(sites_utm, box, ("lower left", "lower right")))
    _draw_north_arrow(ax, box, epsg, corner=_free_corner(sites_utm, box, ("upper right", "upper left")))
    handles: list[Artist] = [
        Line2D([], [], color=STATUS_COLOURS[s], lw=2.2, path_effects=_HALO, label=s)
        for s in STATUS_ORDER
    ]
    if rgb is not None and not np.isfinite(np.asarray(rgb, dtype="float32")).all():
        handles.append(Rectangle((0, 0), 1, 1, fc=NODATA_COLOUR, ec="none", label="no data"))
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=len(handles),
        frameon=False,
        fontsize=8,
        handlelength=1.6,
    )
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return fig


def plot_site_chips(
    rgb_before: np.ndarray | None,
    rgb_after: np.ndarray | None,
    extent: Sequence[float],
    site: pd.Series | dict[str, Any],
    *,
    geometry: Any,
    aoi_id: str = "",
    limits: tuple[float, float] | None = None,
    labels: tuple[str, str] = ("before", "after"),
    sublabels: tuple[str, str] = ("", ""),
    margin_frac: float = 0.75,
    min_size_m: float = 400.0,
    width_in: float = 3.6,
) -> Figure:
    """Before/after chips of one site, cropped around its bounding box.

    The window is a square centred on the site's bounding box, ``1 + 2 *
    margin_frac`` times its larger side and at least ``min_size_m`` metres wide,
    clipped to ``extent``. Both chips use the same stretch (``limits``) and show
    the site outline (UTM ``geometry``) in its status colour, plus a scale bar.
    """
    left, bottom, right, top = (float(v) for v in extent)
    minx, miny, maxx, maxy = geometry.bounds
    cx, cy = (minx + maxx) / 2.0, (miny + maxy) / 2.0
    half = max(max(maxx - minx, maxy - miny) * (0.5 + margin_frac), min_size_m / 2.0)
    # Keep the window square and inside the image when the site sits near an edge.
    half = min(half, (right - left) / 2.0, (top - bottom) / 2.0)
    cx = min(max(cx, left + half), right - half)
    cy = min(max(cy, bottom + half), top - half)
    window = (cx - half, cy - half, cx + half, cy + half)

    # A fixed layout: constrained layout costs more than drawing these small figures.
    height_in = width_in / 2.0 + 0.3
    fig = Figure(figsize=(width_in, height_in))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.3 / height_in, wspace=0.04)
    status = str(site.get("status", ""))
    colour = STATUS_COLOURS.get(status, "white")
    for ax, img, label, sub in zip(axes, (rgb_before, rgb_after), labels, sublabels, strict=True):
        crop, crop_extent = _crop(img, (left, bottom, right, top), window)
        _draw_image(ax, crop, crop_extent, limits)
        _plot_outline(ax, geometry, color=colour, linewidth=1.3)
        ax.set_xlim(window[0], window[2])
        ax.set_ylim(window[1], window[3])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{label}\n{sub}" if sub else label, fontsize=6.5, pad=2, linespacing=1.1)
    _draw_scale_bar(axes[0], window, fontsize=6)
    return fig


def plot_activity(
    activity: pd.DataFrame, *, title: str | None = None, width_in: float = 7.0
) -> Figure:
    """Disturbed and newly disturbed area per period.

    Bars: ``new_ha`` (area first disturbed in the period); line: ``disturbed_ha``
    (all area disturbed at the end of the period). Periods whose
    ``valid_fraction`` is below 0.5 are hatched and marked: their figures rest on
    little clear imagery. ``activity`` has the ``activity.csv`` columns.
    """
    fig = Figure(figsize=(width_in, 2.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    frame = activity.sort_values("period_start").reset_index(drop=True)
    if frame.empty:
        ax.text(0.5, 0.5, "no activity recorded", ha="center", va="center",
                transform=ax.transAxes, fontsize=9, color="0.4")
        ax.set_axis_off()
        return fig
    x = np.arange(len(frame))
    new = pd.to_numeric(frame["new_ha"], errors="coerce").fillna(0.0).to_numpy()
    disturbed = pd.to_numeric(frame["disturbed_ha"], errors="coerce").to_numpy()
    valid = pd.to_numeric(
        frame.get("valid_fraction", pd.Series(1.0, index=frame.index)), errors="coerce"
    ).fillna(1.0).to_numpy()
    low = valid < 0.5
    bars = ax.bar(x, new, width=0.6, color="#E69F00", edgecolor="#8a5d00", linewidth=0.6,
                  label="newly disturbed (ha)", zorder=2)
    for bar, is_low in zip(bars, low, strict=True):
        if is_low:
            bar.set_hatch("////")
            bar.set_alpha(0.55)
    ax.plot(x, disturbed, color="#0072B2", marker="o", markersize=4, linewidth=1.8,
            label="disturbed at period end (ha)", zorder=3)
    ax.set_ylabel("hectares", fontsize=8)
    ax.set_ylim(bottom=0, top=max(float(np.nanmax(disturbed)) if np.isfinite(disturbed).any()
                                  else 0.0, float(new.max()), 1e-3) * 1.15)
    ax.set_xticks(x, [_period_label(r.period_start, r.period_end) for r in frame.itertuples()],
                  fontsize=7, rotation=0 if len(frame) <= 6 else 45,
                  ha="center" if len(frame) <= 6 else "right")
    ax.tick_params(axis="y", labelsize=7)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"
                                                                 if v >= 10 else f"{v:,.1f}"))
    ax.grid(axis="y", color="0.88", linewidth=0.6, zorder=0)
    ax.spines[["top", "right"]].set_visible(False)
    handles, _ = ax.get_legend_handles_labels()
    if low.any():
        handles.append(Rectangle((0, 0), 1, 1, fc="white", ec="0.4", hatch="////",
                                 label="< 50 % clear observations"))
    ax.legend(handles=handles, fontsize=7, frameon=False, loc="upper left")
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return fig


# --------------------------------------------------------------------------- helpers


def _period_label(start: Any, end: Any) -> str:
    s, e = pd.Timestamp(start), pd.Timestamp(end)
    return f"{s:%Y-%m-%d}\n{e:%Y-%m-%d}"


def _draw_image(
    ax: Axes,
    rgb: np.ndarray | None,
    extent: Sequence[float],
    limits: tuple[float, float] | None,
) -> None:
    left, bottom, right, top = extent
    ax.set_facecolor(NODATA_COLOUR)
    if rgb is not None and rgb.size:
        lim = limits if limits is not None else stretch_limits(rgb)
        ax.imshow(stretch_rgb(rgb, lim), extent=(left, right, bottom, top), origin="upper",
                  interpolation="nearest", zorder=0)
    ax.set_aspect("equal")


def _draw_sites(
    ax: Axes, sites: gpd.GeoDataFrame, *, aoi_id: str, labels: bool, linewidth: float,
    extent: Sequence[float] | None = None,
) -> None:
    if sites is None or sites.empty:
        return
    # Dormant first so that new and expanding outlines are drawn on top.
    rank = {s: i for i, s in enumerate(reversed(STATUS_ORDER))}
    order = sorted(range(len(sites)), key=lambda i: rank.get(str(sites["status"].iloc[i]), -1))
    for i in order:
        row = sites.iloc[i]
        geom = row.geometry
        if geom is None or geom.is_empty:
            continue
        colour = STATUS_COLOURS.get(str(row["status"]), "white")
        _plot_outline(ax, geom, color=colour, linewidth=linewidth)
        if labels:
            minx, miny, maxx, maxy = geom.bounds
            # Near the right edge the label goes to the left of the site, near the top
            # below it, so that it stays inside the map.
            right_edge = extent is not None and maxx > extent[2] - 0.12 * (extent[2] - extent[0])
            top_edge = extent is not None and maxy > extent[3] - 0.04 * (extent[3] - extent[1])
            ax.annotate(short_site_label(row["site_id"], aoi_id),
                        xy=(minx if right_edge else maxx, miny if top_edge else maxy),
                        xytext=(-2 if right_edge else 2, -2 if top_edge else 2),
                        textcoords="offset points", fontsize=6.5,
                        ha="right" if right_edge else "left", va="top" if top_edge else "bottom",
                        color="white", path_effects=_TEXT_HALO, zorder=7,
                        annotation_clip=True)


def _plot_outline(ax: Axes, geom: Any, *, color: str, linewidth: float) -> None:
    """Draw every ring of a (Multi)Polygon with a dark halo (no GeoPandas: it forces redraws)."""
    polygons = getattr(geom, "geoms", [geom])
    for poly in polygons:
        rings = [poly.exterior, *poly.interiors] if hasattr(poly, "exterior") else [poly]
        for ring in rings:
            xy = np.asarray(ring.coords)
            if xy.size:
                ax.plot(xy[:, 0], xy[:, 1], color=color, linewidth=linewidth,
                        path_effects=_HALO, zorder=3, solid_joinstyle="miter")


def _crop(
    rgb: np.ndarray | None, extent: Sequence[float], window: Sequence[float]
) -> tuple[np.ndarray | None, tuple[float, float, float, float]]:
    """Cut ``window`` (UTM) out of ``rgb``; return the crop and its exact extent."""
    left, bottom, right, top = extent
    if rgb is None:
        return None, (window[0], window[1], window[2], window[3])
    h, w = rgb.shape[:2]
    px, py = (right - left) / w, (top - bottom) / h
    c0 = int(np.clip(math.floor((window[0] - left) / px), 0, w - 1))
    c1 = int(np.clip(math.ceil((window[2] - left) / px), c0 + 1, w))
    r0 = int(np.clip(math.floor((top - window[3]) / py), 0, h - 1))
    r1 = int(np.clip(math.ceil((top - window[1]) / py), r0 + 1, h))
    crop = rgb[r0:r1, c0:c1]
    return crop, (left + c0 * px, top - r1 * py, left + c1 * px, top - r0 * py)


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
    from shapely.geometry import box

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
                           fc="white", ec="none", alpha=0.8, zorder=5))
    n = 4
    for k in range(n):
        ax.add_patch(Rectangle((x0 + k * length / n, y0), length / n, bar_h,
                               fc="black" if k % 2 == 0 else "white", ec="black", lw=0.6,
                               zorder=6))
    ax.text(x0 + length / 2, y0 + bar_h + height * 0.01, _format_distance(length),
            ha="center", va="bottom", fontsize=fontsize, zorder=6)


def _draw_north_arrow(
    ax: Axes, extent: Sequence[float], epsg: int, *, corner: str = "upper right"
) -> None:
    """Arrow to true north (UTM grid north differs by the meridian convergence)."""
    left, bottom, right, top = extent
    width, height = right - left, top - bottom
    angle = 0.0
    try:
        to_ll = Transformer.from_crs(epsg, 4326, always_xy=True)
        to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
        cx, cy = (left + right) / 2, (bottom + top) / 2
        lon, lat = to_ll.transform(cx, cy)
        nx, ny = to_utm.transform(lon, min(lat + 0.01, 89.9))
        angle = math.atan2(nx - cx, ny - cy)  # clockwise from grid north
    except Exception:  # pragma: no cover - a bad EPSG still gets a grid-north arrow
        angle = 0.0
    size = min(width, height) * 0.09
    ax_x = left + width * 0.07 if corner == "upper left" else right - width * 0.07
    ax_y = top - height * 0.06 - size
    dx, dy = size * math.sin(angle), size * math.cos(angle)
    ax.add_patch(Rectangle((ax_x - size * 0.45, ax_y - size * 0.2), size * 0.9, size * 1.75,
                           fc="white", ec="none", alpha=0.7, zorder=5))
    ax.annotate("", xy=(ax_x + dx, ax_y + dy), xytext=(ax_x, ax_y),
                arrowprops={"arrowstyle": "-|>,head_width=0.35,head_length=0.7", "lw": 1.6,
                            "color": "black"}, zorder=6)
    ax.text(ax_x + dx * 1.15, ax_y + dy * 1.15 + size * 0.05, "N", ha="center", va="bottom",
            fontsize=9, fontweight="bold", zorder=6)


def _graticule_step(span_deg: float) -> float:
    """A round step in degrees giving about 3-5 lines over ``span_deg``."""
    for step in (0.001, 0.002, 0.0025, 0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5,
                 1.0, 2.0, 5.0):
        if span_deg / step <= 5:
            return step
    return 10.0


def _format_degree(value: float, step: float, axis: str) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    if step in (0.0025, 0.025, 0.25):
        decimals += 1
    hemi = ("E" if value >= 0 else "W") if axis == "lon" else ("N" if value >= 0 else "S")
    return f"{abs(value):.{decimals}f}°{hemi}"


def _frange(lo: float, hi: float, step: float) -> Iterable[float]:
    start = math.ceil(lo / step - 1e-9)
    stop = math.floor(hi / step + 1e-9)
    for k in range(start, stop + 1):
        yield round(k * step, 10)


def _draw_graticule(ax: Axes, extent: Sequence[float], epsg: int) -> None:
    """Lat/lon lines over the UTM map; ticks labelled where they meet the frame."""
    left, bottom, right, top = extent
    try:
        to_ll = Transformer.from_crs(epsg, 4326, always_xy=True)
        to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    except Exception:  # pragma: no cover - unknown CRS: metres only
        ax.tick_params(labelsize=7)
        return
    xs = np.array([left, right, right, left])
    ys = np.array([bottom, bottom, top, top])
    lons, lats = to_ll.transform(xs, ys)
    lon_min, lon_max, lat_min, lat_max = min(lons), max(lons), min(lats), max(lats)
    step = _graticule_step(max(lon_max - lon_min, lat_max - lat_min))
    samples = 50
    xticks, xlabels, yticks, ylabels = [], [], [], []
    line_kw: dict[str, Any] = {"color": "white", "linewidth": 0.5, "alpha": 0.55,
                               "linestyle": (0, (4, 3)), "zorder": 2}
    for lon in _frange(lon_min, lon_max, step):
        lat_line = np.linspace(lat_min - step, lat_max + step, samples)
        x, y = to_utm.transform(np.full(samples, lon), lat_line)
        ax.plot(x, y, **line_kw)
        xb = float(np.interp(bottom, y, x))
        if left <= xb <= right:
            xticks.append(xb)
            xlabels.append(_format_degree(lon, step, "lon"))
    for lat in _frange(lat_min, lat_max, step):
        lon_line = np.linspace(lon_min - step, lon_max + step, samples)
        x, y = to_utm.transform(lon_line, np.full(samples, lat))
        ax.plot(x, y, **line_kw)
        yl = float(np.interp(left, x, y))
        if bottom <= yl <= top:
            yticks.append(yl)
            ylabels.append(_format_degree(lat, step, "lat"))
    ax.set_xticks(xticks, xlabels, fontsize=7)
    ax.set_yticks(yticks, ylabels, fontsize=7, rotation=90, va="center")
    ax.tick_params(direction="out", length=3, pad=2)
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
