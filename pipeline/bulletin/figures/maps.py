"""Site map of an AOI and before/after chips of one site, over true-colour composites."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from ..i18n import _
from ..statuses import DISMISSED_COLOUR, STATUS_COLOURS, STATUS_ORDER
from ..statuses import label as status_label
from .graticule import _draw_graticule
from .imagery import NODATA_COLOUR, _crop, _draw_image
from .labels import place_labels
from .locator import draw_locator
from .overlays import (
    FURNITURE_GID,
    HALO,
    _draw_north_arrow,
    _draw_scale_bar,
    _draw_sites,
    _free_corner,
    _map_frame,
    _plot_outline,
)

__all__ = ["plot_site_chips", "plot_site_map"]

#: Share of the figure's width the map takes when the locator column is beside it.
_MAP_SHARE = 0.8


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
    boundary_utm: Any = None,
    locator: tuple[float, float] | None = None,
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
    boundary_utm
        The AOI's boundary (shapely geometry in the same CRS), drawn dashed; ``None``: not drawn.
    locator
        ``(lon, lat)`` of the AOI: a locator inset shows its country and marks it
        (:func:`~.locator.draw_locator`), in a narrow column right of the map; ``None``: no inset.

    Returns
    -------
    Figure
        Outlines coloured by status (:data:`STATUS_COLOURS`), labelled with
        :func:`short_site_label` where no label hides another (:func:`~.labels.place_labels`,
        leader lines for labels pushed away); a scale bar, a north arrow pointing to true
        north, and a graticule labelled in decimal degrees (WGS 84). The frame holds the
        imagery and every site whole (a site crossing the imagery's edge widens it, the
        area beyond the imagery in the no-data colour). The layout is final (no layout
        engine): the labels were placed on it.
    """
    box = tuple(float(v) for v in extent)
    has_boundary = boundary_utm is not None and not boundary_utm.is_empty
    # Every site whole in the frame, even one straddling the imagery's edge.
    frame = _map_frame(box, [] if sites_utm.empty else list(sites_utm.geometry))
    fig, ax = _map_axes(frame, width_in=width_in, locator=locator)
    _draw_image(ax, rgb, box, limits)
    if has_boundary:
        _plot_outline(ax, boundary_utm, color="white", linewidth=1.1, linestyle="--")
    labels = _draw_sites(ax, sites_utm, aoi_id=aoi_id, linewidth=1.4)
    ax.set_xlim(frame[0], frame[2])
    ax.set_ylim(frame[1], frame[3])
    _draw_graticule(ax, frame, epsg)
    # Scale bar and north arrow go in the corners with the least site area under them.
    _draw_scale_bar(ax, frame, corner=_free_corner(sites_utm, frame, ("lower left", "lower right")))
    _draw_north_arrow(ax, frame, epsg, corner=_free_corner(sites_utm, frame, ("upper right", "upper left")))
    # Beyond the imagery (a frame widened for a site on its edge) the axes show the no-data colour.
    _status_legend(fig, rgb, sites_utm, boundary=has_boundary, beyond=tuple(frame) != box)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    # Labels are placed in display pixels: fix the layout first, then keep it.
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    furniture = [p.get_window_extent() for p in ax.patches if p.get_gid() == FURNITURE_GID]
    place_labels(ax, labels, obstacles=furniture)
    return fig


def _map_axes(frame: Sequence[float], *, width_in: float, locator: tuple[float, float] | None,
              ) -> tuple[Figure, Axes]:
    """The figure, sized to the frame's aspect, and the map's axes (the locator column beside it)."""
    left, bottom, right, top = frame
    aspect = (top - bottom) / max(right - left, 1e-9)
    map_in = width_in * (_MAP_SHARE if locator is not None else 1.0)
    height_in = min(max(map_in * aspect, 3.0), 9.0) + 0.9
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    if locator is None:
        return fig, fig.add_subplot()
    # the locator sits in a narrow column beside the map, hiding nothing
    grid = fig.add_gridspec(1, 2, width_ratios=(_MAP_SHARE, 1 - _MAP_SHARE))
    ax = fig.add_subplot(grid[0])
    ax.set_anchor("N")
    inset = fig.add_subplot(grid[1])
    if not draw_locator(inset, *locator):
        inset.set_visible(False)
    return fig, ax


def _status_legend(fig: Figure, rgb: np.ndarray | None, sites: gpd.GeoDataFrame | None = None,
                   *, boundary: bool = False, beyond: bool = False) -> None:
    """One line per status below the map, the analysts' verdicts shown on it, and "no data"
    when the composite has gaps or the frame reaches ``beyond`` it."""
    handles: list[Artist] = [
        Line2D([], [], color=STATUS_COLOURS[s], lw=2.2, path_effects=HALO, label=status_label(s))
        for s in STATUS_ORDER
    ]
    verdicts = set() if sites is None or "verdict" not in sites else set(sites["verdict"].astype(str))
    if "confirmed" in verdicts:
        handles.append(Line2D([], [], color="none", label=_("\u2713 confirmed by analyst")))
    if "uncertain" in verdicts:
        handles.append(Line2D([], [], color="#999999", lw=2.2, ls="--", path_effects=HALO, label=_("uncertain (?)")))
    if "false_alarm" in verdicts:
        handles.append(Line2D([], [], color=DISMISSED_COLOUR, lw=2.2, ls=":", path_effects=HALO,
                              label=_("\u00d7 false alarm")))
    if boundary:
        handles.append(Line2D([], [], color="#bbbbbb", lw=1.4, ls="--", label=_("area of interest")))
    if beyond or (rgb is not None and not np.isfinite(np.asarray(rgb, dtype="float32")).all()):
        handles.append(Rectangle((0, 0), 1, 1, fc=NODATA_COLOUR, ec="none", label=_("no data")))
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(handles), 5),
        frameon=False,
        fontsize=8,
        handlelength=1.6,
    )


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
    window = _chip_window(geometry.bounds, (left, bottom, right, top),
                          margin_frac=margin_frac, min_size_m=min_size_m)
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


def _chip_window(
    bounds: Sequence[float], extent: Sequence[float], *, margin_frac: float, min_size_m: float
) -> tuple[float, float, float, float]:
    """Square window around a site's ``bounds``, inside ``extent`` (see :func:`plot_site_chips`)."""
    left, bottom, right, top = extent
    minx, miny, maxx, maxy = bounds
    cx, cy = (minx + maxx) / 2.0, (miny + maxy) / 2.0
    half = max(max(maxx - minx, maxy - miny) * (0.5 + margin_frac), min_size_m / 2.0)
    # Keep the window square and inside the image when the site sits near an edge.
    half = min(half, (right - left) / 2.0, (top - bottom) / 2.0)
    cx = min(max(cx, left + half), right - half)
    cy = min(max(cy, bottom + half), top - half)
    return (cx - half, cy - half, cx + half, cy + half)
