"""Tests for the bulletin's static site map and chips (:mod:`pipeline.bulletin.figures`):
labels that never collide, a palette the imagery cannot take, every site whole in the frame."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from shapely.geometry import box

from pipeline.bulletin.figures import plot_site_map
from pipeline.bulletin.figures.labels import LABEL_GID
from pipeline.bulletin.statuses import STATUS_COLOURS, STATUS_ORDER

EPSG = 32734
EXTENT = (500_000.0, 9_290_000.0, 502_400.0, 9_291_600.0)  # 2.4 x 1.6 km, non-square

#: Typical surfaces of the AOIs' true-colour composites (8-bit sRGB): laterite and fresh
#: excavations, burn scars, vegetation, bare sand and water.
SURFACES: dict[str, tuple[int, int, int]] = {
    "laterite red": (160, 70, 45), "laterite orange": (205, 115, 50), "ochre soil": (190, 140, 80),
    "burn black": (25, 22, 20), "burn brown": (85, 60, 45), "dry grass": (170, 160, 110),
    "vegetation green": (55, 95, 40), "forest green": (30, 70, 35), "bare sand": (215, 195, 160),
    "turbid water": (120, 110, 80),
}


def _lab(rgb: tuple[float, float, float]) -> np.ndarray:
    """CIELAB (D65) of an sRGB colour in 0..1."""
    c = np.asarray(rgb, dtype=float)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ lin
    f = np.cbrt(xyz / np.array([0.95047, 1.0, 1.08883]))
    f = np.where(xyz / np.array([0.95047, 1.0, 1.08883]) > 0.008856, f,
                 7.787 * xyz / np.array([0.95047, 1.0, 1.08883]) + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _sites(specs: list[tuple[str, float, float, float, str]]) -> gpd.GeoDataFrame:
    """Square sites ``(suffix, x offset, y offset, side, status)`` from the extent's lower left (m)."""
    rows = [{"site_id": f"cd-kasai-01-{s}", "status": st, "area_ha": side**2 / 1e4} for s, _x, _y, side, st in specs]
    geoms = [box(EXTENT[0] + x, EXTENT[1] + y, EXTENT[0] + x + side, EXTENT[1] + y + side)
             for _s, x, y, side, _st in specs]
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=EPSG)


def _rgb(shape: tuple[int, int] = (80, 120)) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (np.array([0.05, 0.07, 0.04]) + rng.normal(0, 0.01, shape + (3,))).astype("float32")


def _label_boxes(fig: Figure) -> list:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    from matplotlib.text import Text

    # The text's own box (Text.get_window_extent): an annotation's would include its leader line.
    return [Text.get_window_extent(t, renderer) for ax in fig.axes for t in ax.texts if t.get_gid() == LABEL_GID]


def test_labels_of_close_sites_do_not_collide() -> None:
    """Twenty sites in a tight cluster: every label is placed, inside the map, and no two label
    boxes (matplotlib ``get_window_extent``) overlap."""
    specs = [(f"{k:04d}", 900 + 70 * (k % 5), 600 + 70 * (k // 5), 40, STATUS_ORDER[k % 4]) for k in range(20)]
    fig = plot_site_map(_rgb(), EXTENT, _sites(specs), epsg=EPSG, aoi_id="cd-kasai-01", locator=(20.79, -6.42))
    boxes = _label_boxes(fig)
    assert len(boxes) == 20
    overlaps = [(i, j) for (i, a), (j, b) in itertools.combinations(enumerate(boxes), 2) if a.overlaps(b)]
    assert overlaps == []
    frame = fig.axes[0].get_window_extent()
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
    texts = sorted(t.get_text() for t in fig.axes[0].texts if t.get_gid() == LABEL_GID)
    assert texts == [f"{k:04d}" for k in range(20)]


def test_legend_palette_is_far_from_the_imagery() -> None:
    """The status colours of the legend are saturated hues (or white) at least 40 CIELAB units
    (CIE76) from laterite, burn, vegetation and sand; the outlines carry a dark halo."""
    fig = plot_site_map(_rgb(), EXTENT, _sites([("0001", 500, 500, 100, "new")]), epsg=EPSG)
    legend = fig.legends[0]
    colours = {t.get_text(): to_rgb(h.get_color()) for t, h in zip(legend.get_texts(), legend.legend_handles,
                                                                      strict=True)}
    statuses = [colours[s] for s in STATUS_ORDER]
    assert statuses == [to_rgb(STATUS_COLOURS[s]) for s in STATUS_ORDER]
    for status, rgb in zip(STATUS_ORDER, statuses, strict=True):
        for surface, ref in SURFACES.items():
            distance = float(np.linalg.norm(_lab(rgb) - _lab(tuple(v / 255 for v in ref))))
            assert distance >= 40, f"{status} {rgb} is {distance:.0f} from {surface}"
        hi, lo = max(rgb), min(rgb)
        assert hi == 1.0 and (hi - lo >= 0.9 or lo == 1.0), f"{status}: not a saturated hue or white"
    outline = next(line for line in fig.axes[0].lines if to_rgb(line.get_color()) == to_rgb(STATUS_COLOURS["new"]))
    assert outline.get_path_effects()[0]._gc["foreground"] == "black"


@pytest.mark.parametrize("where", ["right", "top", "left"])
def test_site_straddling_the_image_edge_is_whole_in_the_frame(where: str) -> None:
    """A site crossing the imagery's edge widens the map's limits to hold it whole; its label
    stays inside the map."""
    width, height = EXTENT[2] - EXTENT[0], EXTENT[3] - EXTENT[1]
    x, y = {"right": (width - 60, 700), "top": (1000, height - 50), "left": (-80, 700)}[where]
    sites = _sites([("0001", x, y, 150, "new"), ("0002", 300, 300, 80, "active")])
    fig = plot_site_map(_rgb(), EXTENT, sites, epsg=EPSG, aoi_id="cd-kasai-01", locator=(20.79, -6.42))
    ax = fig.axes[0]
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    for minx, miny, maxx, maxy in sites.geometry.bounds.to_numpy():
        assert x0 < minx and maxx < x1 and y0 < miny and maxy < y1
    assert x0 <= EXTENT[0] and x1 >= EXTENT[2] and y0 <= EXTENT[1] and y1 >= EXTENT[3]
    frame = ax.get_window_extent()
    for b in _label_boxes(fig):
        assert frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1
