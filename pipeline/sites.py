"""PURE (eager by design): excavation flags -> tracked site polygons and area series.

Polygonising needs the whole flag raster in memory: ``run.py`` computes the
``(y, x)`` flags and change rasters, then these functions work on NumPy through
:func:`rasterio.features.shapes`. An AOI of 20 km x 20 km at 10 m is 4 million
pixels, a few tens of MB: eager is the right trade.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
import shapely.geometry
import shapely.ops
import xarray as xr
from affine import Affine
from scipy import ndimage
from shapely.geometry.base import BaseGeometry

from .config import DetectParams, SitesParams
from .errors import InputDataError
from .geometry import valid_polygonal
from .tracking import track_sites
from .types import SiteStatus

__all__ = [
    "SITE_COLUMNS",
    "activity_series",
    "delineate_sites",
    "grid_transform",
    "grow_sites",
    "isolation_keep",
    "polygonise_flags",
    "provisional",
    "track_sites",
]

#: Columns of ``sites.geojson`` (the output contract), geometry last.
SITE_COLUMNS = ("site_id", "aoi_id", "area_ha", "first_seen", "last_seen", "status", "confidence", "n_obs")
EPOCH = pd.Timestamp("1970-01-01")


def grid_transform(da: xr.DataArray) -> Affine:
    """Affine transform of a ``(y, x)`` array from its pixel-centre coordinates."""
    x = np.asarray(da["x"].values, dtype="float64")
    y = np.asarray(da["y"].values, dtype="float64")
    if x.size < 2 or y.size < 2:
        raise InputDataError("flags need at least 2 x 2 pixels to derive a grid; enlarge the AOI")
    rx, ry = x[1] - x[0], y[1] - y[0]
    return Affine(rx, 0.0, x[0] - rx / 2, 0.0, ry, y[0] - ry / 2)


def grow_sites(
    flags: xr.DataArray,
    change: xr.Dataset,
    *,
    min_obs: int,
    min_persistence_frac: float,
) -> tuple[xr.DataArray, xr.Dataset]:
    """Extend confirmed excavations over the disturbed ground connected to them.

    A pit grows at its rim. The rim's pixels were exposed recently, so they have had
    fewer clear observations to confirm on, and mixed rim pixels flicker around the
    thresholds; the pixel-level rules (``min_confirmations`` consecutive observations,
    persistence, the opening) therefore trim every active site. Here, disturbed pixels
    that are 8-connected to a flagged pixel join its site when they are not re-greened
    and either confirmed with at least the weaker persistence ``min_persistence_frac``
    (pixels the opening removed from a site's edge; the last-dug rim of a pit abandoned
    soon after, whose few bare views are outnumbered by those of the returning grass) or
    end in an open run of at least ``min_obs`` clear observations with evidence (their
    newest clear views still show disturbance). Ground that was confirmed once and then
    re-greened (a field next to a pit) does not join. This is hysteresis
    thresholding (Canny 1986), that is binary morphological reconstruction of the
    flags under the weaker mask (Vincent 1993): isolated weak evidence, which is not
    attached to a confirmed site, stays out.

    Parameters
    ----------
    flags
        bool ``(y, x)`` from :func:`pipeline.detect.flag_excavation`, computed.
    change
        ``(y, x)`` rasters from :func:`pipeline.detect.confirm_change`, computed.
    min_obs
        Length of the open evidence run that admits a pixel; 0 disables the growth
        (the flags are returned unchanged).
    min_persistence_frac
        Persistence a confirmed pixel needs to join (``sites.grow_min_persistence_frac``, the
        weak threshold of the hysteresis whose strong one, ``detect.min_persistence_frac``,
        made the flags).

    Returns
    -------
    flags, change
        The grown flags, and ``change`` with ``first_change`` of the newly admitted,
        unconfirmed pixels set to the start of their open run (so the area series dates
        them) and their ``last_evidence`` and ``n_obs`` taken from that run.

    Examples
    --------
    >>> f = xr.DataArray(np.array([[1, 1, 0, 0, 0]], bool), dims=("y", "x"))
    >>> c = xr.Dataset({"confirmed": f.copy(data=np.array([[1, 1, 0, 0, 0]], bool)),
    ...                 "n_clear_after": f.copy(data=np.array([[4, 4, 0, 0, 0]], "int16")),
    ...                 "regrown": f & False,
    ...                 "open_run": f.copy(data=np.array([[4, 4, 2, 0, 2]], "int16")),
    ...                 "open_run_start": f.copy(data=np.array([[1.0, 1, 9, np.nan, 9]])),
    ...                 "first_change": f.copy(data=np.array([[1.0, 1, np.nan, np.nan, np.nan]])),
    ...                 "last_evidence": f.copy(data=np.array([[20.0, 20, 20, np.nan, 20]])),
    ...                 "n_obs": f.copy(data=np.array([[4, 4, 0, 0, 0]], "int16"))})
    >>> grown, c2 = grow_sites(f, c, min_obs=2, min_persistence_frac=0.6)
    >>> grown.values.astype(int).tolist(), c2["first_change"].values.tolist()[0][:3]
    ([[1, 1, 1, 0, 0]], [1.0, 1.0, 9.0])
    """
    seeds = np.asarray(flags.values, dtype=bool)
    if min_obs <= 0 or not seeds.any():
        return flags, change
    confirmed = np.asarray(change["confirmed"].values, dtype=bool)
    regrown = np.asarray(change["regrown"].values, dtype=bool)
    open_run = np.asarray(change["open_run"].values)
    n_clear = np.asarray(change["n_clear_after"].values)
    with np.errstate(invalid="ignore", divide="ignore"):
        persistent = np.asarray(change["n_obs"].values) / np.where(n_clear > 0, n_clear, np.nan) >= min_persistence_frac
    weak = seeds | ((confirmed & persistent) | (open_run >= min_obs)) & ~regrown
    labels = _label8(weak)
    attached = np.unique(labels[seeds])
    grown = np.isin(labels, attached[attached > 0])
    admitted = grown & ~confirmed
    first = np.asarray(change["first_change"].values, dtype="float64")
    update = {
        "first_change": np.where(admitted, np.asarray(change["open_run_start"].values), first),
        "n_obs": np.where(admitted, open_run, np.asarray(change["n_obs"].values)).astype("int16"),
        "n_clear_after": np.where(admitted, open_run, n_clear).astype("int16"),
    }
    out = change.copy()
    for name, values in update.items():
        out[name] = change[name].copy(data=values)
    return flags.copy(data=grown), out


def delineate_sites(
    flags: xr.DataArray,
    change: xr.Dataset,
    *,
    aoi_id: str,
    aoi_mask: np.ndarray | None,
    crs: str,
    last_period_start: dt.date,
    detect_params: DetectParams,
    sites_params: SitesParams,
    record_end: dt.date | None = None,
) -> tuple[gpd.GeoDataFrame, np.ndarray, xr.Dataset]:
    """Computed flags -> grown sites -> polygons (:func:`grow_sites`, then
    :func:`polygonise_flags`, then :func:`provisional`); also returns the change rasters as
    grown. Eager. ``record_end``: the last day of the imagery (the monitoring period's end), for
    :func:`provisional`."""
    flags, change = grow_sites(
        flags, change, min_obs=sites_params.grow_min_obs, min_persistence_frac=sites_params.grow_min_persistence_frac
    )
    site_gdf, site_mask = polygonise_flags(
        flags,
        change,
        aoi_id=aoi_id,
        aoi_mask=aoi_mask,
        crs=crs,
        last_period_start=last_period_start,
        min_confirmations=detect_params.min_confirmations,
        params=sites_params,
    )
    site_gdf["provisional"] = provisional(site_gdf["n_clear_after"], site_gdf["first_seen"], detect_params,
                                          record_end=record_end)
    return site_gdf, site_mask, change


def provisional(n_clear_after: Any, first_seen: Any, params: DetectParams, *,
                record_end: dt.date | None = None) -> np.ndarray:
    """Whether sites are provisional: fewer than ``min_confirmations`` (to confirm the change)
    plus ``regrowth_min_obs`` (to see it re-green) clear observations from the change on
    (``n_clear_after``) leave no room for re-greening to have been observed, so the record does
    not yet show whether the site persists; a change confirmed by the record's last clear
    observations always is (3 + 2 = 5 with the defaults). ``n_clear_after`` counts only
    ``persistence_window_days`` from the change: a site whose window closed before
    ``record_end`` had its whole window observed, however few clear views it held (a cloudy
    AOI), and is not provisional.

    >>> days = ["2024-01-10", "2024-01-10", "2024-01-10", "2022-03-01"]
    >>> provisional([3, 4, 5, 3], days, DetectParams(), record_end=dt.date(2024, 3, 31)).tolist()
    [True, True, False, False]
    """
    few = np.asarray(n_clear_after, dtype=float) < params.min_confirmations + params.regrowth_min_obs
    if record_end is None or params.persistence_window_days is None:
        return few
    closes = pd.to_datetime(pd.Series(first_seen, dtype=object), errors="coerce") + pd.Timedelta(
        days=params.persistence_window_days)
    open_window = ~(closes <= pd.Timestamp(record_end)).to_numpy()
    return few & open_window


def polygonise_flags(
    flags: xr.DataArray,
    change: xr.Dataset,
    *,
    aoi_id: str,
    aoi_mask: np.ndarray | None,
    crs: str,
    last_period_start: dt.date,
    min_confirmations: int,
    params: SitesParams,
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Turn boolean flags into one polygon per excavation site.

    Parameters
    ----------
    flags
        bool ``(y, x)`` on a projected (UTM, metre) grid, computed (NumPy-backed).
    change
        ``(y, x)`` change rasters from :func:`pipeline.detect.confirm_change`
        (``first_change``, ``last_evidence``, ``n_obs``, ``n_clear_after``), computed.
    aoi_id
        Prefix of the site ids.
    aoi_mask
        bool ``(y, x)``, true inside the AOI (:attr:`pipeline.jobs.AOIGrid.aoi_mask`);
        pixels outside are ignored (the read margin). ``None``: the whole grid.
    crs
        CRS of the grid, e.g. ``"EPSG:32629"``.
    last_period_start
        Start of the last reporting period (sets ``new``/``expanding``/``dormant``).
    min_confirmations
        Used to scale confidence.
    params
        Minimum mapping unit, merge distance, growth threshold.

    Returns
    -------
    sites : geopandas.GeoDataFrame
        In ``crs``, columns :data:`SITE_COLUMNS` + geometry, plus ``persistence``,
        ``n_occluded``, ``n_clear_after`` (median clear observations from the change date on)
        and ``area_before_last_ha``; sorted by ``first_seen`` then ``site_id``.
    site_mask : numpy.ndarray
        bool ``(y, x)``: pixels belonging to retained sites.

    Notes
    -----
    Area is the flagged pixel count times the pixel area, so the polygon areas add up
    exactly to the flagged area. Sites smaller than twice the minimum mapping unit with no
    other site within ``isolation_distance_m`` are kept only when their confidence reaches
    ``isolated_min_confidence`` (speckle rule). ``n_occluded`` is the median number of
    cloud-occluded observations since the change. Site status: ``new`` when first seen in the last
    period; ``expanding`` when it grew by ``expanding_growth_frac`` during it;
    ``active`` when it showed evidence during it; ``dormant`` otherwise. Confidence is
    the mean persistence (share of clear observations with evidence since the change)
    times ``1 - 0.5 ** (n_obs / min_confirmations)``.
    """
    mask = np.asarray(flags.values, dtype=bool)
    transform = grid_transform(flags)
    if aoi_mask is not None:
        mask &= aoi_mask
    px_area = abs(transform.a * transform.e)
    labels = _group_pixels(mask, merge_px=int(np.floor(params.merge_distance_m / abs(transform.a) / 2)))
    counts = np.bincount(labels.ravel())
    keep = [lab for lab in range(1, counts.size) if counts[lab] * px_area >= params.min_area_m2]
    site_mask = np.isin(labels, keep) & mask
    shapes = _site_shapes(labels, site_mask, transform)
    pixels = _SitePixels(change, transform=transform, last_period_start=last_period_start)
    # Each site is summarised inside its bounding box: a whole-grid mask per site made the
    # stage grow with sites x pixels.
    boxes = ndimage.find_objects(labels)
    rows = [
        {
            **pixels.attributes(boxes[lab - 1], labels[boxes[lab - 1]] == lab, aoi_id=aoi_id, crs=crs,
                                min_confirmations=min_confirmations, params=params),
            # Pixel outlines touch themselves at corners (invalid rings): repaired here,
            # where the geometry is made, so every later stage and file gets valid polygons.
            "geometry": valid_polygonal([shapely.ops.unary_union(shapes[lab])])[0],
        }
        for lab in keep
    ]
    columns = [*SITE_COLUMNS, "persistence", "n_occluded", "n_clear_after", "area_before_last_ha", "undated",
               "geometry"]
    sites = gpd.GeoDataFrame(rows, columns=columns, geometry="geometry", crs=crs)
    keep_mask = isolation_keep(sites, params)
    if not keep_mask.all():
        dropped = set(np.asarray(keep)[~keep_mask])
        site_mask &= ~np.isin(labels, list(dropped))
        sites = sites[keep_mask]
    sites = sites.sort_values(["first_seen", "site_id"], kind="stable").reset_index(drop=True)
    return sites, site_mask


def _group_pixels(mask: np.ndarray, *, merge_px: int) -> np.ndarray:
    """Site labels of flagged pixels: 8-connected after a dilation of ``merge_px`` pixels,
    so excavations closer than ``merge_distance_m`` form one site (0 = no site)."""
    grouped = ndimage.binary_dilation(mask, iterations=merge_px) if merge_px > 0 else mask
    return _label8(grouped) * mask


def _site_shapes(labels: np.ndarray, site_mask: np.ndarray, transform: Affine) -> dict[int, list[BaseGeometry]]:
    """The polygons of each site label (``rasterio.features.shapes``, 8-connected)."""
    shapes: dict[int, list[BaseGeometry]] = {}
    for geom, value in rasterio.features.shapes(
        labels.astype("int32"), mask=site_mask, transform=transform, connectivity=8
    ):
        shapes.setdefault(int(value), []).append(shapely.geometry.shape(geom))
    return shapes


class _SitePixels:
    """The change rasters of one AOI, summarised over the pixels of one site at a time."""

    def __init__(self, change: xr.Dataset, *, transform: Affine, last_period_start: dt.date) -> None:
        self.first = np.asarray(change["first_change"].values)
        self.last = np.asarray(change["last_evidence"].values)
        self.n_obs = np.asarray(change["n_obs"].values)
        self.n_clear = np.asarray(change["n_clear_after"].values)
        self.n_occ = np.asarray(change["n_occluded"].values) if "n_occluded" in change else None
        self.first_clear = np.asarray(change["first_clear"].values) if "first_clear" in change else None
        self.transform = transform
        self.px_area = abs(transform.a * transform.e)
        self.last_start_days = (pd.Timestamp(last_period_start) - EPOCH) / pd.Timedelta(days=1)

    def attributes(
        self, box: tuple[slice, slice], pix: np.ndarray, *, aoi_id: str, crs: str, min_confirmations: int,
        params: SitesParams,
    ) -> dict[str, Any]:
        """``sites.geojson`` attributes of the site whose pixels are ``pix`` (bool, the shape of
        the grid's window ``box``: the site's bounding box, :func:`scipy.ndimage.find_objects`)."""
        f = self.first[box][pix]
        # The site id is anchored on its earliest pixel, which does not move as the site grows
        # (the first such pixel in row-major order: the same in the box as in the whole grid).
        seed = int(np.flatnonzero(pix.ravel())[np.nanargmin(np.where(np.isnan(f), np.inf, f))])
        sy, sx = divmod(seed, pix.shape[1])
        sy, sx = sy + box[0].start, sx + box[1].start
        sxw, syw = self.transform @ (sx + 0.5, sy + 0.5)
        area_ha = pix.sum() * self.px_area / 1e4
        before = np.sum(f < self.last_start_days) * self.px_area / 1e4
        first_seen = float(np.nanpercentile(f, 10))
        last_seen = float(np.nanmax(self.last[box][pix]))
        n_obs = self.n_obs[box][pix]
        n_clear = self.n_clear[box][pix]
        persistence = float(np.mean(n_obs / np.maximum(n_clear, 1)))
        median_obs = int(np.median(n_obs))
        # No pixel of the site was seen clear before the site was seen changed: when it was dug is
        # not known, and it may predate the monitoring period (its baseline is older still).
        undated = bool(self.first_clear is not None and np.nanmin(f) <= np.nanmin(self.first_clear[box][pix]))
        return {
            "site_id": _site_id(aoi_id, crs, sxw, syw),
            "aoi_id": aoi_id,
            "area_ha": round(float(area_ha), 4),
            "first_seen": _iso(first_seen),
            "last_seen": _iso(last_seen),
            "status": _status(first_seen, last_seen, area_ha, before, self.last_start_days, params),
            "confidence": _confidence(persistence, median_obs, min_confirmations),
            "n_obs": median_obs,
            "n_clear_after": int(np.median(n_clear)),
            "persistence": round(persistence, 3),
            "n_occluded": int(np.median(self.n_occ[box][pix])) if self.n_occ is not None else 0,
            "area_before_last_ha": round(float(before), 4),
            "undated": undated,
        }


def isolation_keep(sites: gpd.GeoDataFrame, params: SitesParams) -> np.ndarray:
    """Boolean keep-mask of the isolation rule: sites smaller than twice ``min_area_m2`` with no
    other site within ``isolation_distance_m`` need ``isolated_min_confidence``."""
    keep = np.ones(len(sites), dtype=bool)
    if sites.empty or params.isolation_distance_m <= 0:
        return keep
    geoms = np.asarray(sites.geometry)
    tree = shapely.STRtree(geoms)  # neighbours looked up, not measured against every site
    for i, geom in enumerate(geoms):
        small = sites["area_ha"].iloc[i] * 1e4 < 2 * params.min_area_m2
        if not small or sites["confidence"].iloc[i] >= params.isolated_min_confidence:
            continue
        near = tree.query(geom, predicate="dwithin", distance=params.isolation_distance_m)
        keep[i] = bool(np.any(near != i))  # another site within the distance
    return keep


def activity_series(
    site_mask: np.ndarray,
    first_change: np.ndarray,
    valid_count: np.ndarray,
    *,
    aoi_mask: np.ndarray,
    periods: Sequence[tuple[dt.date, dt.date]],
    pixel_area_m2: float,
    aoi_id: str,
    first_clear: np.ndarray | None = None,
) -> pd.DataFrame:
    """Disturbed and newly disturbed area per reporting period.

    Parameters
    ----------
    site_mask
        bool ``(y, x)``: pixels in retained sites.
    first_change
        ``(y, x)`` change date (days since 1970-01-01, NaN: none).
    valid_count
        ``(period, y, x)`` valid observations per period (from the composites).
    aoi_mask
        bool ``(y, x)``: pixels inside the AOI.
    periods
        ``(start, end)`` per period, inclusive; same order as ``valid_count``.
    pixel_area_m2
        Area of one pixel.
    aoi_id
        Written in the ``aoi_id`` column.
    first_clear
        ``(y, x)`` day of each pixel's first clear monitoring observation (``first_clear`` of
        :data:`pipeline.detect.confirm.CHANGE_VARS`); a pixel changed already then is not
        newly disturbed in any period (its digging may predate the monitoring period), though
        it is disturbed. ``None``: every change counts as new in its period.

    Returns
    -------
    pandas.DataFrame
        The ``activity.csv`` contract: ``aoi_id, period_start, period_end,
        disturbed_ha`` (site area changed on or before the period end), ``new_ha``
        (site area whose change date falls in the period, after a clear view of it without the
        change: see ``first_clear``), ``valid_fraction`` (share
        of AOI pixels with at least one clear observation in the period).
    """
    fc = np.where(site_mask, first_change, np.nan)
    with np.errstate(invalid="ignore"):
        dated = np.ones(fc.shape, bool) if first_clear is None else ~(fc <= first_clear)
    n_aoi = max(int(aoi_mask.sum()), 1)
    rows = []
    for k, (start, end) in enumerate(periods):
        s = (pd.Timestamp(start) - EPOCH) / pd.Timedelta(days=1)
        e = (pd.Timestamp(end) - EPOCH) / pd.Timedelta(days=1)
        with np.errstate(invalid="ignore"):
            disturbed = np.sum(fc <= e) * pixel_area_m2 / 1e4
            new = np.sum((fc >= s) & (fc <= e) & dated) * pixel_area_m2 / 1e4
        valid_fraction = float(np.sum((valid_count[k] > 0) & aoi_mask) / n_aoi)
        rows.append(
            {
                "aoi_id": aoi_id,
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
                "disturbed_ha": round(float(disturbed), 4),
                "new_ha": round(float(new), 4),
                "valid_fraction": round(valid_fraction, 4),
            }
        )
    return pd.DataFrame(rows)


def confirmable_share(valid_count: np.ndarray, *, aoi_mask: np.ndarray, min_confirmations: int) -> float:
    """Share of the AOI's pixels (0..1) with at least ``min_confirmations`` clear optical
    observations over all the reporting periods: elsewhere no change can be confirmed
    (:func:`pipeline.detect.confirm_change` needs that many clear views with evidence), so no
    site can be found there whatever happens on the ground.

    ``valid_count``: ``(period, y, x)`` clear observations per period, as for :func:`activity_series`.

    >>> counts = np.array([[[1, 3, 0]], [[1, 0, 0]]])  # two periods, one row of three pixels
    >>> confirmable_share(counts, aoi_mask=np.ones((1, 3), bool), min_confirmations=2)
    0.6666666666666666
    """
    total = np.asarray(valid_count).sum(axis=0)
    n_aoi = int(aoi_mask.sum())
    return float(np.sum((total >= min_confirmations) & aoi_mask) / n_aoi) if n_aoi else 0.0


def _site_id(aoi_id: str, crs: str, x: float, y: float) -> str:
    # Keyed on the 20 m cell of the earliest-changed pixel: later observations do not
    # move it, so the id survives re-runs that add periods.
    key = f"{crs}:{int(x // 20)}:{int(y // 20)}"
    return f"{aoi_id}-{hashlib.sha1(key.encode()).hexdigest()[:6]}"


def _label8(mask: np.ndarray) -> np.ndarray:
    """8-connected components of a bool mask (diagonal neighbours join), numbered in raster order."""
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    return labels


def _confidence(persistence: float, n_obs: int, min_confirmations: int) -> float:
    return round(float(np.clip(persistence, 0, 1) * (1 - 0.5 ** (n_obs / min_confirmations))), 3)


def _iso(days: float) -> str:
    return (EPOCH + pd.Timedelta(days=days)).date().isoformat()


def _status(
    first_seen: float, last_seen: float, area_ha: float, before_ha: float, last_start: float, params: SitesParams
) -> SiteStatus:
    if first_seen >= last_start:
        return "new"
    if before_ha > 0 and (area_ha - before_ha) / before_ha >= params.expanding_growth_frac:
        return "expanding"
    if last_seen >= last_start:
        return "active"
    return "dormant"
