"""NumPy kernels of :func:`pipeline.classify.features.candidate_features`: zones and zonal statistics.

A *zone* is a set of ``(pixel, candidate)`` pairs (flat pixel index, candidate position), so
that overlapping zones (the rings of neighbouring candidates) need no label image; zonal sums
are one ``np.bincount`` each, with no Python loop over pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import rasterio.features
import rasterio.transform
import shapely
import xarray as xr
from affine import Affine
from pyproj import CRS
from scipy import ndimage
from shapely.geometry.base import BaseGeometry

from pipeline.errors import CRSMismatchError, InputDataError, MissingBandError, MissingDimensionError

__all__ = [
    "Zones",
    "check_grid",
    "elongation",
    "rasterise_zones",
    "ring_zones",
    "shape_features",
    "water_distance",
    "zonal_mean_std",
    "zonal_min",
]


@dataclass(frozen=True)
class Zones:
    """``(pixel, candidate)`` pairs: ``pix`` flat pixel indices, ``lab`` candidate positions 0..n-1."""

    pix: np.ndarray
    lab: np.ndarray
    n: int

    @property
    def counts(self) -> np.ndarray:
        """Pixels per candidate (int64, length ``n``)."""
        return np.bincount(self.lab, minlength=self.n)


def check_grid(
    ds: xr.Dataset,
    candidates: gpd.GeoDataFrame,
    variables: Sequence[str],
    *,
    what: str,
    like: xr.Dataset | None = None,
) -> tuple[int, int]:
    """Validate computed ``(y, x)`` rasters and projected candidates; return ``(ny, nx)``."""
    missing = [v for v in variables if v not in ds]
    if missing:
        raise MissingBandError(f"{what} lack {missing}; pass the output of feature_rasters(...) computed")
    for v in variables:
        if ds[v].dims != ("y", "x"):
            raise MissingDimensionError(f"{what} variable {v!r} has dims {ds[v].dims}; it must be (y, x)")
        if ds[v].chunks:
            raise InputDataError(f"{what} variable {v!r} is a lazy Dask array; compute the rasters first")
    if candidates.crs is None or not CRS.from_user_input(candidates.crs).is_projected:
        raise CRSMismatchError(
            f"candidates CRS {candidates.crs} is not projected; reproject them to the rasters' UTM CRS (to_crs)"
        )
    crs = _raster_crs(ds)
    if crs is not None and crs != CRS.from_user_input(candidates.crs):
        raise CRSMismatchError(
            f"candidates are in {candidates.crs}, {what} in {crs.to_string()}; reproject the candidates (to_crs)"
        )
    if like is not None:
        for dim in ("y", "x"):
            if ds.sizes[dim] != like.sizes[dim] or not np.allclose(ds[dim].values, like[dim].values):
                raise CRSMismatchError(f"{what} are not on the feature rasters' grid ({dim} differs); regrid them")
    return int(ds.sizes["y"]), int(ds.sizes["x"])


def _raster_crs(ds: xr.Dataset) -> CRS | None:
    """CRS of rasters from their ``spatial_ref`` coordinate (odc-geo, rioxarray) or ``crs`` attribute."""
    if "spatial_ref" in ds.coords:
        attrs = ds["spatial_ref"].attrs
        wkt = attrs.get("crs_wkt") or attrs.get("spatial_ref")
        if wkt:
            return CRS.from_user_input(wkt)
    crs = ds.attrs.get("crs")
    return CRS.from_user_input(crs) if crs is not None else None


def rasterise_zones(geoms: np.ndarray, transform: Affine, shape: tuple[int, int]) -> Zones:
    """Each polygon's pixels (centre inside), or its centroid pixel when it covers no centre."""
    n = len(geoms)
    shapes = [(g, i + 1) for i, g in enumerate(geoms) if g is not None and not g.is_empty]
    if shapes:
        image = rasterio.features.rasterize(shapes, out_shape=shape, transform=transform, fill=0, dtype="int32")
    else:
        image = np.zeros(shape, dtype="int32")
    flat = image.ravel()
    pix = np.flatnonzero(flat)
    lab = flat[pix].astype("int64") - 1
    empty = np.flatnonzero(np.bincount(lab, minlength=n) == 0)
    empty = np.array([i for i in empty if geoms[i] is not None and not geoms[i].is_empty], dtype="int64")
    if empty.size:
        cents = shapely.centroid(geoms[empty])
        rows, cols = rasterio.transform.rowcol(transform, shapely.get_x(cents), shapely.get_y(cents))
        rows, cols = np.asarray(rows, dtype="int64"), np.asarray(cols, dtype="int64")
        inside = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
        pix = np.concatenate([pix, rows[inside] * shape[1] + cols[inside]])
        lab = np.concatenate([lab, empty[inside]])
    return Zones(pix=pix, lab=lab, n=n)


def ring_zones(zones: Zones, *, ring_m: float, transform: Affine, shape: tuple[int, int]) -> Zones:
    """Pixels whose centre is within ``ring_m`` of a zone pixel's centre, minus every zone's pixels.

    One small distance transform per candidate, on a window around it.
    """
    ny, nx = shape
    dy, dx = abs(transform.e), abs(transform.a)
    pad = int(np.ceil(ring_m / min(dx, dy))) + 1
    taken = np.zeros(ny * nx, dtype=bool)
    taken[zones.pix] = True
    taken2d = taken.reshape(shape)
    order = np.argsort(zones.lab, kind="stable")
    starts = np.searchsorted(zones.lab[order], np.arange(zones.n + 1))
    pix_out: list[np.ndarray] = []
    lab_out: list[np.ndarray] = []
    for i in range(zones.n):
        own = zones.pix[order[starts[i] : starts[i + 1]]]
        if own.size == 0:
            continue
        rows, cols = np.divmod(own, nx)
        r0, c0 = max(rows.min() - pad, 0), max(cols.min() - pad, 0)
        r1, c1 = min(rows.max() + pad + 1, ny), min(cols.max() + pad + 1, nx)
        window = np.zeros((r1 - r0, c1 - c0), dtype=bool)
        window[rows - r0, cols - c0] = True
        dist = ndimage.distance_transform_edt(~window, sampling=(dy, dx))
        ring = (np.asarray(dist) <= ring_m) & ~taken2d[r0:r1, c0:c1]
        rr, cc = np.nonzero(ring)
        pix_out.append((rr + r0) * nx + (cc + c0))
        lab_out.append(np.full(rr.size, i, dtype="int64"))
    if not pix_out:
        return Zones(pix=np.zeros(0, "int64"), lab=np.zeros(0, "int64"), n=zones.n)
    return Zones(pix=np.concatenate(pix_out), lab=np.concatenate(lab_out), n=zones.n)


def zonal_mean_std(flat: np.ndarray, zones: Zones) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation of ``flat`` per zone, NaN ignored (NaN: no value).

    Examples
    --------
    >>> z = Zones(pix=np.array([0, 1, 2, 3]), lab=np.array([0, 0, 1, 1]), n=3)
    >>> m, s = zonal_mean_std(np.array([1.0, 3.0, 5.0, np.nan]), z)
    >>> m.tolist(), s.tolist()[:2]
    ([2.0, 5.0, nan], [1.0, 0.0])
    """
    v = flat[zones.pix]
    ok = np.isfinite(v)
    v0 = np.where(ok, v, 0.0)
    n = np.bincount(zones.lab, weights=ok.astype("float64"), minlength=zones.n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(zones.lab, weights=v0, minlength=zones.n) / n
        # Two passes: subtracting the mean first keeps the variance exact for large values.
        dev = np.where(ok, v0 - mean[zones.lab], 0.0)
        var = np.bincount(zones.lab, weights=dev * dev, minlength=zones.n) / n
    mean[n == 0] = np.nan
    return mean, np.sqrt(np.where(n > 0, var, np.nan))


def zonal_min(flat: np.ndarray, zones: Zones) -> np.ndarray:
    """Minimum of ``flat`` per zone (NaN: empty zone)."""
    out = np.full(zones.n, np.inf)
    np.minimum.at(out, zones.lab, flat[zones.pix])
    out[~np.isfinite(out)] = np.nan
    return out


def elongation(geom: BaseGeometry | None) -> float:
    """Long over short side of the minimum rotated rectangle (1: square or round; NaN: degenerate).

    Examples
    --------
    >>> elongation(shapely.box(0, 0, 40, 10))
    4.0
    """
    if geom is None or geom.is_empty:
        return float("nan")
    rect = shapely.minimum_rotated_rectangle(geom)
    if not isinstance(rect, shapely.Polygon):
        return float("nan")
    xy = np.asarray(rect.exterior.coords)
    sides = np.hypot(*np.diff(xy[:3], axis=0).T)
    short, long_ = float(sides.min()), float(sides.max())
    return long_ / short if short > 0 else float("nan")


def shape_features(geoms: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Area (ha), perimeter (m), compactness, elongation, parts and pixels of each polygon."""
    area = shapely.area(geoms)
    perimeter = shapely.length(geoms)
    with np.errstate(invalid="ignore", divide="ignore"):
        compactness = np.where(perimeter > 0, 4 * np.pi * area / perimeter**2, np.nan)
    return {
        "area_ha": area / 1e4,
        "perimeter_m": perimeter,
        "compactness": compactness,
        "elongation": np.array([elongation(g) for g in geoms], dtype="float64"),
        "n_parts": shapely.get_num_geometries(geoms).astype("float64"),
        "n_pixels": counts.astype("float64"),
    }


def water_distance(rasters: xr.Dataset, zones: Zones) -> np.ndarray:
    """Metres from each candidate to the nearest permanent-water pixel (NaN: none on the grid)."""
    perm = np.asarray(rasters["permanent_water"].values) > 0.5
    if not perm.any():
        return np.full(zones.n, np.nan)
    x, y = np.asarray(rasters["x"].values), np.asarray(rasters["y"].values)
    dist = ndimage.distance_transform_edt(~perm, sampling=(abs(y[1] - y[0]), abs(x[1] - x[0])))
    return zonal_min(np.asarray(dist, dtype="float64").ravel(), zones)
