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
from pipeline.bulletin.i18n import use_language
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


@pytest.mark.parametrize("where", ["right", "top", "left", "on the bottom edge"])
def test_site_straddling_the_image_edge_is_whole_in_the_frame(where: str) -> None:
    """A site crossing the imagery's edge, or lying on its last row of pixels, widens the map's
    limits to hold it whole, halo included; its label stays inside the map."""
    width, height = EXTENT[2] - EXTENT[0], EXTENT[3] - EXTENT[1]
    x, y = {"right": (width - 60, 700), "top": (1000, height - 50), "left": (-80, 700),
            "on the bottom edge": (1000, 0)}[where]
    sites = _sites([("0001", x, y, 150, "new"), ("0002", 300, 300, 80, "active")])
    fig = plot_site_map(_rgb(), EXTENT, sites, epsg=EPSG, aoi_id="cd-kasai-01", locator=(20.79, -6.42))
    ax = fig.axes[0]
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    for minx, miny, maxx, maxy in sites.geometry.bounds.to_numpy():
        assert x0 < minx and maxx < x1 and y0 < miny and maxy < y1
    assert x0 <= EXTENT[0] and x1 >= EXTENT[2] and y0 <= EXTENT[1] and y1 >= EXTENT[3]
    assert "no data" in [t.get_text() for t in fig.legends[0].get_texts()]  # the grey beyond the imagery
    frame = ax.get_window_extent()
    for b in _label_boxes(fig):
        assert frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1


# --------------------------------------------------------------------------- chips

def _views(*years: int, rgb_shape: tuple[int, int] = (80, 120)) -> list:
    """Dry-season composites (May-October) of ``years``, each a distinct flat image."""
    import datetime as dt

    from pipeline.composites import CompositeView

    return [CompositeView("dry_season", dt.date(y, 5, 1), dt.date(y, 10, 31),
                          np.full(rgb_shape + (3,), 0.01 * (y - 2000), dtype="float32")) for y in years]


def test_chip_pair_compares_the_same_season() -> None:
    """Before: the latest dry-season composite that ended before the site's first detection
    (else the earliest); after: the latest. The caption names both windows."""
    import datetime as dt

    from pipeline.bulletin.chips import chip_pair

    views = _views(2022, 2023, 2024)
    fallback = (np.zeros((1, 1, 3)), np.ones((1, 1, 3)))
    periods = ("2024-01-01 – 2024-03-31", "2024-10-01 – 2024-12-31")
    pair = chip_pair(views, "2024-02-10", fallback=fallback, periods=periods)
    assert pair.same_season and pair.before is views[1].rgb and pair.after is views[2].rgb
    assert pair.windows == ("2023-05-01 – 2023-10-31", "2024-05-01 – 2024-10-31")
    assert pair.caption == ("Same season: before, the dry-season composite from 2023-05-01 to 2023-10-31; "
                            "after, that from 2024-05-01 to 2024-10-31.")
    # First seen before every window ended: the earliest is the before, and the caption says that
    # it may already show the site (an outside tester).
    early = chip_pair(views, "2022-06-01", fallback=fallback, periods=periods)
    assert early.before is views[0].rgb and early.caption.endswith(
        "First seen on 2022-06-01, by the end of the before window: the before image may already show it.")
    fell_early = chip_pair(views, "2024-11-20", fallback=fallback, periods=periods,
                           first_period=(dt.date(2024, 10, 1), dt.date(2024, 12, 31)))
    assert not fell_early.same_season and "by the end of the before window" in fell_early.caption
    assert "First seen" not in chip_pair(views, "2024-11-20", fallback=fallback, periods=periods,
                                         first_period=(dt.date(2024, 1, 1), dt.date(2024, 3, 31))).caption
    # Seen after the last dry season ended: no same-season pair brackets the change.
    late = chip_pair(views, "2024-11-20", fallback=fallback, periods=periods)
    assert not late.same_season and late.before is fallback[0] and late.windows == periods
    assert "precedes this site's first detection" in late.caption and "seasons may differ" in late.caption
    none = chip_pair([], "2024-02-10", fallback=fallback, periods=periods)
    assert not none.same_season and "No dry-season composite was computed" in none.caption
    with use_language("fr"):
        assert chip_pair(views, "2024-02-10", fallback=fallback, periods=periods).caption == (
            "Même saison : avant, le composite de saison sèche du 1er mai 2023 au 31 octobre 2023 ; "
            "après, celui du 1er mai 2024 au 31 octobre 2024.")
        assert chip_pair([], "2024-02-10", fallback=fallback, periods=periods).caption.startswith(
            "Aucun composite de saison sèche n'a été calculé pour cette zone : avant, la première période")


def test_chip_caption_warns_when_the_change_came_late_in_the_after_window() -> None:
    """An outside tester: a site first seen 20 days before its "after" window ended showed no
    change in its chips, and nothing said why. The composite is a median of the whole window."""
    import datetime as dt

    from pipeline.bulletin.chips import chip_pair

    views = _views(2023, 2024)  # dry seasons 1 May - 31 October
    fallback = (np.zeros((1, 1, 3)), np.ones((1, 1, 3)))
    periods = ("2023-01-01 – 2023-03-31", "2024-10-01 – 2024-12-31")
    late = chip_pair(views, "2024-10-11", fallback=fallback, periods=periods)
    assert late.same_season and late.caption.endswith(
        "First seen on 2024-10-11, 20 days before the after window ended: most of that window precedes the "
        "change, and its composite, the median of all its clear views, may not show it.")
    # In the first half of the window, or before it: no warning.
    assert "First seen" not in chip_pair(views, "2024-07-31", fallback=fallback, periods=periods).caption
    assert "First seen" not in chip_pair(views, "2024-02-10", fallback=fallback, periods=periods).caption
    # The fallback's "after" is the last reporting period: its dates decide.
    last = (dt.date(2024, 10, 1), dt.date(2024, 12, 31))
    fell = chip_pair(views, "2024-12-30", fallback=fallback, periods=periods, last_period=last)
    assert not fell.same_season and fell.caption.endswith(
        "First seen on 2024-12-30, 1 day before the after window ended: most of that window precedes the "
        "change, and its composite, the median of all its clear views, may not show it.")
    assert "First seen" not in chip_pair(views, "2024-11-01", fallback=fallback, periods=periods,
                                         last_period=last).caption
    with use_language("fr"):
        assert "Vu pour la première fois le 11 octobre 2024, 20 jours avant la fin de la fenêtre « après »" in (
            chip_pair(views, "2024-10-11", fallback=fallback, periods=periods).caption)


def _report(n_sites: int, views: list) -> object:
    from pipeline.bulletin import AOIReport

    specs = [(f"{k:04d}", 150 + 180 * (k % 12), 150 + 400 * (k // 12), 60 + k, "new" if k % 2 else "expanding")
             for k in range(n_sites)] + [("0900", 100, 1300, 50, "active")]
    sites = _sites(specs).assign(first_seen="2024-02-10", confidence=0.8, aoi_id="cd-kasai-01")
    activity = pd.DataFrame({"aoi_id": "cd-kasai-01", "period_start": ["2023-10-01", "2024-10-01"],
                             "period_end": ["2023-12-31", "2024-12-31"], "disturbed_ha": [1.0, 2.0],
                             "new_ha": [1.0, 1.0], "valid_fraction": [0.9, 0.9]})
    return AOIReport(aoi_id="cd-kasai-01", name="Tshikapa", participant="DRC", participant_iso3="COD",
                     sites=sites.to_crs(4326), sites_utm=sites, activity=activity, rgb_before=_rgb(),
                     rgb_after=_rgb(), extent_utm=EXTENT, epsg=EPSG, season_views=views)


@pytest.mark.parametrize(("n_sites", "max_chips", "shown"), [(15, 12, 12), (5, 12, 5)])
def test_chips_for_every_new_or_expanding_site_or_the_top_n(monkeypatch: pytest.MonkeyPatch, n_sites: int,
                                                               max_chips: int, shown: int) -> None:
    """Every new or expanding site gets chips, up to ``bulletin.max_chips`` (then the largest by
    area x confidence, and a sentence says how many of how many); each chip pair is the two
    dry-season composites around the site's change, not the reporting periods."""
    from pipeline.bulletin import aoi_view

    views = _views(2023, 2024)
    drawn = []
    monkeypatch.setattr(aoi_view.fg, "plot_site_chips", lambda before, after, *a, **k: drawn.append((before, after)))
    view = aoi_view._aoi_view(_report(n_sites, views), lambda fig, name: name, max_chips=max_chips)
    assert len(view["chips"]) == len(drawn) == shown
    assert all(b is views[0].rgb and a is views[1].rgb for b, a in drawn)
    assert all(ch["same_season"] and "from 2023-05-01 to 2023-10-31" in ch["windows"] for ch in view["chips"])
    if shown < n_sites:
        assert view["chips_note"].startswith(f"The {shown} most significant of the {n_sites} new or expanding")
        largest = sorted(range(n_sites), key=lambda k: -k)[:shown]  # sides grow with k
        assert sorted(ch["label"] for ch in view["chips"]) == sorted(f"{k:04d}" for k in largest)
    else:
        assert view["chips_note"] == f"Each of the {n_sites} new or expanding sites of the latest period."
    assert "0900" not in {ch["label"] for ch in view["chips"]}  # active: no chips


def test_chips_fall_back_to_the_periods_without_dry_season(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.bulletin import aoi_view

    report = _report(2, [])
    drawn = []
    monkeypatch.setattr(aoi_view.fg, "plot_site_chips", lambda before, after, *a, **k: drawn.append((before, after)))
    view = aoi_view._aoi_view(report, lambda fig, name: name)
    assert all(b is report.rgb_before and a is report.rgb_after for b, a in drawn) and len(drawn) == 2
    assert all(not ch["same_season"] and "No dry-season composite was computed" in ch["windows"]
               for ch in view["chips"])


def test_dry_season_views_travel_from_the_run_to_the_bulletin() -> None:
    """``workflow._season_views`` keeps the dry-season composites' red, green and blue only,
    oldest first; ``outputs._aoi_report`` hands them to the bulletin."""
    import xarray as xr

    from pipeline.outputs import _aoi_report
    from pipeline.workflow import AOIResult, _season_views

    n, shape = 3, (4, 5)
    data = {b: (("composite", "y", "x"), np.stack([np.full(shape, v + i, "float32") for i in range(n)]))
            for v, b in ((0.1, "red"), (0.2, "green"), (0.3, "blue"), (0.4, "nir"))}
    named = xr.Dataset(data, coords={
        "product": ("composite", ["dry_season", "semiannual", "dry_season"]),
        "start": ("composite", pd.to_datetime(["2024-05-01", "2024-01-01", "2023-05-01"])),
        "end": ("composite", pd.to_datetime(["2024-10-31", "2024-06-30", "2023-10-31"]))})
    views = _season_views(named, product="dry_season")
    assert [(v.start.isoformat(), v.end.isoformat()) for v in views] == [("2023-05-01", "2023-10-31"),
                                                                         ("2024-05-01", "2024-10-31")]
    assert views[0].rgb.shape == shape + (3,) and views[0].rgb.dtype == np.float32
    assert views[0].rgb[0, 0].tolist() == pytest.approx([2.1, 2.2, 2.3])
    assert _season_views(named.drop_vars("blue"), product="dry_season") == []
    result = AOIResult(aoi_id="a", row={}, season_views=views, epsg=EPSG)
    assert _aoi_report(result, [], empty_activity=pd.DataFrame()).season_views is views


def test_max_chips_config_field() -> None:
    from pipeline.config.reporting import BulletinParams

    field = BulletinParams.model_fields["max_chips"]
    assert BulletinParams().max_chips == 12 and field.json_schema_extra["unit"] == "sites per area of interest"
    with pytest.raises(ValueError):
        BulletinParams(max_chips=0)


def _best_spot_one_pair_at_a_time(site, width, height, frame, taken, others, dpi):  # type: ignore[no-untyped-def]
    """The label placement's choice as first written: each box tested against each other box
    with matplotlib's own ``Bbox.overlaps``."""
    from pipeline.bulletin.figures import labels as lb

    def contains(outer, inner):  # type: ignore[no-untyped-def]
        return inner.x0 >= outer.x0 and inner.x1 <= outer.x1 and inner.y0 >= outer.y0 and inner.y1 <= outer.y1

    def area(a, b):  # type: ignore[no-untyped-def]
        return max(min(a.x1, b.x1) - max(a.x0, b.x0), 0.0) * max(min(a.y1, b.y1) - max(a.y0, b.y0), 0.0)

    candidates = [lb._candidate(site, width, height, d, r, dpi) for r in lb._RINGS_PT for d in lb._DIRECTIONS]
    inside = [c for c in candidates if contains(frame, c.box)] or candidates
    free = [c for c in inside if not any(c.box.overlaps(t) for t in taken)]
    clear = [c for c in free if not any(c.box.overlaps(o) for o in others)]
    if clear or free:
        return (clear or free)[0]
    return min(inside, key=lambda c: sum(area(c.box, t) for t in taken))


@pytest.mark.parametrize("seed", range(48))
def test_label_placement_on_arrays_chooses_as_box_by_box(seed: int) -> None:
    """The vectorised choice equals the box-by-box one, crowded maps (no free spot) included."""
    from matplotlib.transforms import Bbox

    from pipeline.bulletin.figures import labels as lb

    rng = np.random.default_rng(seed)
    frame = Bbox.from_extents(0, 0, 400, 300)

    def boxes(n: int, size: float) -> list:  # type: ignore[type-arg]
        xy = rng.uniform(-20, 380, (n, 2))
        wh = rng.uniform(2, size, (n, 2))
        # some given corner-first the other way round, as display boxes of flipped axes are
        return [Bbox.from_extents(x + w, y + h, x, y) if rng.random() < 0.2 else Bbox.from_bounds(x, y, w, h)
                for (x, y), (w, h) in zip(xy, wh, strict=True)]

    site = boxes(1, 30)[0]
    # from empty to crowded maps: 35 of these 48 cases have a clear spot, 5 only a free one and
    # 8 none (the least overlapping then)
    taken, others = boxes((0, 60, 250, 600)[seed % 4], 60), boxes((0, 80, 600)[(seed // 4) % 3], 60)
    width, height = rng.uniform(10, 60), rng.uniform(6, 14)
    got = lb._best_spot(site, width, height, frame, taken, others, 100.0)
    expected = _best_spot_one_pair_at_a_time(site, width, height, frame, taken, others, 100.0)
    assert (tuple(got.box.extents), got.anchor, got.ha, got.va, got.distance_pt) == (
        tuple(expected.box.extents), expected.anchor, expected.ha, expected.va, expected.distance_pt)


def test_locator_draws_its_outlines_without_drawing_the_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    """GeoDataFrame.plot ends with canvas.draw_idle(), a full draw on Agg: drawn into the site
    map's figure, the locator's two outline layers rendered that figure twice more. The outlines
    are added as collections instead; holes stay holes (South Africa's ring around Lesotho), and
    are left open whatever the winding of the rings as given, and polygons inside a collection
    (what make_valid may return) are drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.path import Path as MplPath

    from pipeline.bulletin.figures.locator import _outlines, draw_locator
    from pipeline.countries import countries, country_at

    fig = Figure()
    canvas = FigureCanvasAgg(fig)
    draws = []
    monkeypatch.setattr(canvas, "draw", lambda *a, **k: draws.append(1))
    inset = fig.add_subplot()
    assert draw_locator(inset, 20.79, -6.42) and not draws
    assert len(inset.collections) == 2

    south_africa = countries().geometry.iloc[country_at(25.0, -30.0)]
    assert len(south_africa.interiors) == 1  # Lesotho
    (path,) = _outlines([south_africa]).get_paths()
    assert (path.codes == MplPath.MOVETO).sum() == 2  # one path: the exterior and the hole
    assert len(path.vertices) == len(south_africa.exterior.coords) + len(south_africa.interiors[0].coords)

    from shapely.geometry import GeometryCollection, LineString, MultiPolygon, Polygon

    ring, hole = [(0, 0), (10, 0), (10, 10), (0, 10)], [(3, 3), (7, 3), (7, 7), (3, 7)]  # both counter-clockwise
    shapes = GeometryCollection([MultiPolygon([Polygon(ring, [hole])]), LineString([(0, 0), (1, 1)])])
    collection = _outlines([shapes], facecolor="black", edgecolor="none")
    assert len(collection.get_paths()) == 1
    fig = Figure(figsize=(1, 1), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.add_collection(collection)
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())
    assert pixels[50, 50, :3].tolist() == [255, 255, 255]  # the hole, open
    assert pixels[90, 10, :3].tolist() == [0, 0, 0]  # the ring, filled
