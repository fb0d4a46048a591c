"""Latitude/longitude grid over maps drawn in UTM metres."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from pyproj import Transformer

__all__: list[str] = []


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
