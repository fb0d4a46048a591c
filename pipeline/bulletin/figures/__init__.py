"""Matplotlib figures of the monitoring bulletin.

Every plotting function here takes in-memory objects (numpy arrays, GeoDataFrames,
DataFrames) and returns a :class:`matplotlib.figure.Figure`; nothing is read
from or written to disk. :func:`figure_png` turns a figure into PNG bytes,
which :func:`pipeline.bulletin.render_bulletin` both writes under ``figures/`` and
embeds in the HTML as a data URI.

Figures are built with the object-oriented API (``Figure`` plus an Agg
canvas), never ``pyplot``: no global state, no GUI backend, safe to call from
worker threads. No ``matplotlib.use(...)`` either: every figure gets its own Agg
canvas, so no backend is needed, and selecting one here would switch a notebook's
inline backend off.

Conventions
-----------
- Images are ``(H, W, 3)`` float arrays of reflectance (or any linear value),
  row 0 at the top (north), NaN where there is no valid observation.
- ``extent`` is ``(left, bottom, right, top)`` in the metres of the AOI's UTM
  CRS, given by ``epsg`` (the rasterio ``BoundingBox`` order, *not*
  matplotlib's ``(left, right, bottom, top)``).
- Site geometries passed to drawing functions are in that same UTM CRS.

Modules: :mod:`.png` (figure to PNG bytes), :mod:`.imagery` (display stretch, drawing
and cropping composites), :mod:`.overlays` (site outlines and labels, scale bar, north
arrow), :mod:`.graticule` (lat/lon grid over UTM maps), :mod:`.maps` (site map,
before/after chips), :mod:`.charts` (activity chart).
"""

from __future__ import annotations

from ..statuses import STATUS_COLOURS, STATUS_ORDER
from .charts import plot_activity
from .imagery import NODATA_COLOUR, STRETCH_PERCENTILES, stretch_limits, stretch_rgb
from .maps import plot_site_chips, plot_site_map
from .overlays import short_site_label
from .png import figure_png

__all__ = [
    "NODATA_COLOUR",
    "STATUS_COLOURS",
    "STATUS_ORDER",
    "STRETCH_PERCENTILES",
    "figure_png",
    "plot_activity",
    "plot_site_chips",
    "plot_site_map",
    "short_site_label",
    "stretch_limits",
    "stretch_rgb",
]
