"""Sample design: strata from the detected sites, sample size, allocation, random points.

The map to assess is the site layer of one AOI. It is cut into three strata (Olofsson et al.
2014; strata need not be the map classes, Stehman 2014):

* ``site``: the detected sites (map class ``mining``);
* ``buffer``: a ring of ``buffer_m`` around them (map class ``not_mining``), where omitted
  mining hides (rims, young pits, diggings of the same gravel bed);
* ``stable``: the rest of the AOI (map class ``not_mining``).

The total sample size follows Olofsson et al. (2014) eq. 13 (after Cochran 1977); the
allocation is the paper's compromise: a minimum for the rare strata, the rest in proportion
to area. Points are drawn uniformly at random inside each stratum (rejection sampling in its
bounding box, in the AOI's UTM zone, so "uniform" means uniform in area).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from pipeline.aoi import utm_crs_for
from pipeline.errors import ConfigError

from ..config import AssessParams
from .estimate import MAP_CLASS, STRATA

__all__ = [
    "allocate_sample",
    "draw_sample",
    "expected_overall_se",
    "plan_sample",
    "sample_size",
    "stratify",
]

#: Columns of :func:`draw_sample`'s result (plus ``geometry``).
SAMPLE_COLUMNS: tuple[str, ...] = ("point_id", "lon", "lat", "stratum", "label")
#: Rejection-sampling rounds before a stratum counts as too thin to sample.
_MAX_ROUNDS = 200


def sample_size(weights: Mapping[str, float], users_accuracy: Mapping[str, float], *, target_se: float) -> int:
    """Total sample size ``n = (sum_h W_h S_h / S(O))^2`` (Olofsson et al. 2014 eq. 13).

    ``S_h = sqrt(U_h (1 - U_h))`` from the conjectured user's accuracy ``U_h`` of each
    stratum (for strata that are not map classes: the share of its points expected to agree
    with its map class). This is Cochran's (1977) size for a Neyman allocation; an
    allocation with minimums for rare strata gets a somewhat larger standard error
    (:func:`expected_overall_se` tells how much).

    Parameters
    ----------
    weights
        Area share ``W_h`` of each stratum (normalised here; areas work too).
    users_accuracy
        Conjectured ``U_h`` per stratum, in (0, 1).
    target_se
        Target standard error ``S(O)`` of the overall accuracy (fraction, e.g. 0.01).

    Returns
    -------
    int
        ``n`` rounded up.

    Examples
    --------
    The worked example of Olofsson et al. (2014):

    >>> sample_size({"a": 0.02, "b": 0.015, "c": 0.32, "d": 0.645},
    ...             {"a": 0.7, "b": 0.6, "c": 0.9, "d": 0.95}, target_se=0.01)
    641
    """
    w = _weights(weights)
    if not 0 < target_se < 1:
        raise ConfigError(f"target_se is {target_se}; give the target standard error as a fraction, e.g. 0.01")
    missing = sorted(set(w.index) - set(users_accuracy))
    if missing:
        raise ConfigError(f"users_accuracy has no value for stratum(s) {missing}; conjecture one per stratum")
    u = pd.Series({h: float(users_accuracy[h]) for h in w.index})
    if not ((u > 0) & (u < 1)).all():
        raise ConfigError(f"users_accuracy {u.to_dict()} must lie strictly between 0 and 1")
    return math.ceil((float((w * np.sqrt(u * (1 - u))).sum()) / target_se) ** 2 - 1e-9)


def allocate_sample(n_total: int, weights: Mapping[str, float], *, minimums: Mapping[str, int]) -> dict[str, int]:
    """Split ``n_total`` points between strata: minimums for rare strata, the rest by area.

    A stratum whose proportional share of the points still to allocate is below its minimum
    gets the minimum; the others share what is left in proportion to area (largest
    remainders). Repeated until stable. Strata of zero area get no points; strata without a
    minimum get at least 2 (the variance needs 2).

    Examples
    --------
    >>> allocate_sample(641, {"a": 0.02, "b": 0.015, "c": 0.32, "d": 0.645}, minimums={"a": 75, "b": 75})
    {'a': 75, 'b': 75, 'c': 163, 'd': 328}
    """
    w = _weights(weights)
    mins = {h: int(minimums.get(h, 2)) for h in w.index if w[h] > 0}
    if sum(mins.values()) > n_total:
        raise ConfigError(
            f"a sample of {n_total} points cannot give every stratum its minimum ({sum(mins.values())} in all); "
            "raise the sample size or lower the minimums"
        )
    fixed: dict[str, int] = {}
    while True:
        free = [h for h in mins if h not in fixed]
        left = n_total - sum(fixed.values())
        short = [h for h in free if left * w[h] / w[free].sum() < mins[h]]
        if not short:
            break
        fixed.update({h: mins[h] for h in short})
    sizes = {h: 0 for h in w.index} | fixed
    if free:
        share = left * w[free] / w[free].sum()
        base = np.floor(share).astype(int)
        extra = (share - base).sort_values(ascending=False, kind="stable").index[: left - int(base.sum())]
        sizes.update({h: int(base[h]) + int(h in extra) for h in free})
    return sizes


def plan_sample(strata: gpd.GeoDataFrame, *, params: AssessParams) -> dict[str, int]:
    """Sample size per stratum for :func:`stratify`'s strata and the ``assess`` parameters.

    The total is :func:`sample_size` of the conjectured user's accuracies and the target
    standard error, raised to the sum of the minimums when smaller; :func:`allocate_sample`
    splits it. Strata of zero area (no sites) get no points.
    """
    weights = _stratum_weights(strata)
    present = {h: w for h, w in weights.items() if w > 0}
    minimums = {h: m for h, m in params.minimums().items() if h in present}
    n = max(sample_size(present, params.users_accuracy(), target_se=params.target_overall_se), sum(minimums.values()))
    return {h: 0 for h in weights} | allocate_sample(n, present, minimums=minimums)


def expected_overall_se(
    sizes: Mapping[str, int], weights: Mapping[str, float], users_accuracy: Mapping[str, float]
) -> float:
    """Anticipated standard error of the overall accuracy, ``sqrt(sum_h W_h^2 U_h (1 - U_h) / n_h)``.

    Cochran (1977), variance of a stratified mean, with the conjectured ``U_h``; compare it with the target of
    :func:`sample_size` to see what an allocation costs.

    Examples
    --------
    >>> round(expected_overall_se({"a": 100, "b": 100}, {"a": 0.5, "b": 0.5}, {"a": 0.9, "b": 0.9}), 4)
    0.0212
    """
    w = _weights(weights)
    terms = [w[h] ** 2 * users_accuracy[h] * (1 - users_accuracy[h]) / sizes[h] for h in w.index if w[h] > 0]
    return float(math.sqrt(sum(terms)))


def stratify(sites: gpd.GeoDataFrame, aoi: BaseGeometry, *, buffer_m: float) -> gpd.GeoDataFrame:
    """Cut an AOI into the ``site``, ``buffer`` and ``stable`` strata.

    Parameters
    ----------
    sites
        Detected site polygons of this AOI (``sites.geojson`` rows of one ``aoi_id``), any
        CRS (EPSG:4326 in the outputs). Parts outside the AOI are ignored.
    aoi
        AOI polygon in EPSG:4326 (lon/lat).
    buffer_m
        Width of the ring around the sites (m).

    Returns
    -------
    geopandas.GeoDataFrame
        Three rows in :data:`STRATA` order, in the AOI's UTM zone (:func:`pipeline.aoi.utm_crs_for`):
        ``stratum``, ``map_class``, ``area_ha`` and a valid (Multi)Polygon ``geometry``
        (empty for ``site`` and ``buffer`` when there are no sites). The strata do not
        overlap and together cover the AOI.
    """
    if sites.crs is None:
        raise ConfigError("sites have no CRS; set it (sites.geojson is EPSG:4326: sites.set_crs(4326))")
    if not buffer_m > 0:
        raise ConfigError(f"buffer_m is {buffer_m}; give the buffer ring's width in metres (> 0), e.g. 100")
    if aoi is None or aoi.is_empty or aoi.geom_type not in ("Polygon", "MultiPolygon"):
        raise ConfigError("aoi must be a non-empty Polygon or MultiPolygon in EPSG:4326; pass the AOI file's geometry")
    crs = utm_crs_for(aoi)
    region = _polygonal(gpd.GeoSeries([aoi], crs=4326).to_crs(crs).iloc[0])
    parts = sites.to_crs(crs).geometry.dropna()
    mined = _polygonal(shapely.union_all(shapely.make_valid(parts.to_numpy())).intersection(region))
    grown = _polygonal(mined.buffer(buffer_m).intersection(region)) if not mined.is_empty else mined
    pieces = [mined, _polygonal(grown.difference(mined)), _polygonal(region.difference(grown))]
    return gpd.GeoDataFrame(
        {
            "stratum": list(STRATA),
            "map_class": [MAP_CLASS[s] for s in STRATA],
            "area_ha": [g.area / 1e4 for g in pieces],
        },
        geometry=pieces,
        crs=crs,
    )


def draw_sample(strata: gpd.GeoDataFrame, *, sizes: Mapping[str, int], seed: int) -> gpd.GeoDataFrame:
    """Draw points uniformly at random inside each stratum.

    Parameters
    ----------
    strata
        :func:`stratify`'s result (a projected CRS, metres; columns ``stratum``, ``geometry``).
    sizes
        Points per stratum (:func:`plan_sample`); strata not named get none.
    seed
        Seed of ``numpy.random.default_rng``: the same strata and seed give the same points.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, one row per point, strata in ``strata`` order: ``point_id`` (``P0001``,
        ...), ``lon``, ``lat`` (degrees, 7 decimals, about 1 cm), ``stratum``, ``label`` (empty,
        for the analyst) and the exact point ``geometry``.
    """
    if "stratum" not in strata.columns or strata.crs is None or not strata.crs.is_projected:
        raise ConfigError("strata must be stratify()'s result: a 'stratum' column in a projected CRS (metres)")
    names = [str(s) for s in strata["stratum"]]
    unknown = sorted(set(sizes) - set(names))
    if unknown:
        raise ConfigError(f"sizes name stratum(s) {unknown} that are not in the strata {names}; use those names")
    rng = np.random.default_rng(seed)
    xs, ys, labels = [], [], []
    for name, geom in zip(names, strata.geometry, strict=True):
        k = int(sizes.get(name, 0))
        if k < 0:
            raise ConfigError(f"sizes[{name!r}] is {k}; give a number of points >= 0")
        x, y = _uniform_points(geom, k, rng, name=name)
        xs.append(x)
        ys.append(y)
        labels += [name] * k
    lon, lat = pyproj.Transformer.from_crs(strata.crs, 4326, always_xy=True).transform(
        np.concatenate(xs), np.concatenate(ys)
    )
    width = max(4, len(str(len(labels))))
    frame = pd.DataFrame(
        {
            "point_id": [f"P{i + 1:0{width}d}" for i in range(len(labels))],
            "lon": np.round(lon, 7),
            "lat": np.round(lat, 7),
            "stratum": labels,
            "label": pd.Series([""] * len(labels), dtype=object),
        }
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(lon, lat), crs=4326)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _uniform_points(geom: BaseGeometry, k: int, rng: np.random.Generator, *, name: str) -> tuple[np.ndarray, ...]:
    """``k`` points uniform in ``geom``: uniform in its bounds, rejected outside it (vectorised)."""
    if k == 0:
        return np.empty(0), np.empty(0)
    if geom is None or geom.is_empty or geom.area <= 0:
        raise ConfigError(f"stratum {name!r} is empty but sizes asks for {k} point(s); give it 0 points")
    minx, miny, maxx, maxy = geom.bounds
    fill = geom.area / ((maxx - minx) * (maxy - miny))
    shapely.prepare(geom)
    xs, ys, got = [], [], 0
    for _ in range(_MAX_ROUNDS):
        batch = int(min(max(1.2 * (k - got) / fill, 64), 1_000_000))
        x, y = rng.uniform(minx, maxx, batch), rng.uniform(miny, maxy, batch)
        inside = shapely.contains_xy(geom, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
        got += int(inside.sum())
        if got >= k:
            return np.concatenate(xs)[:k], np.concatenate(ys)[:k]
    raise ConfigError(f"stratum {name!r} is too thin to sample {k} points ({geom.area:.1f} m2); ask for fewer")


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """The polygonal part of ``geom``, made valid (overlays leave slivers of lines and points)."""
    geom = shapely.make_valid(geom)
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    polys = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(polys) if polys else shapely.Polygon()


def _weights(weights: Mapping[str, float]) -> pd.Series:
    w = pd.Series({str(h): float(v) for h, v in weights.items()}, dtype="float64")
    if w.empty or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ConfigError(f"stratum weights {w.to_dict()} must be finite, non-negative and not all zero")
    return w / w.sum()


def _stratum_weights(strata: gpd.GeoDataFrame) -> dict[str, float]:
    if not {"stratum", "area_ha"} <= set(strata.columns):
        raise ConfigError("strata need columns 'stratum' and 'area_ha'; pass stratify()'s result")
    return {str(s): float(a) for s, a in zip(strata["stratum"], strata["area_ha"], strict=True)}
