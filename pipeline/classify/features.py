"""Features of candidate sites: per-pixel feature rasters (lazy), then per-candidate statistics (eager).

Two steps, split where the pipeline materialises:

1. :func:`feature_rasters` (PURE, lazy): the cloud-masked ``(time, y, x)`` cube -> ``(y, x)``
   float32 rasters (:data:`RASTER_VARS`): for each index of :data:`INDICES` its baseline median,
   recent median and their difference, and its median just after the pixel's change date (the
   ground as the rules first saw it changed) and that minus the baseline, plus the shares of
   clear monitoring observations that were bare, water or re-greened, the colour of the water
   seen, the baseline recurrence of bare ground and water, clear-observation counts (also
   since the change date) and a permanent-water mask.
2. :func:`candidate_features` (PURE, eager by design like :mod:`pipeline.sites`): the computed
   rasters and the candidate polygons -> one row per candidate with the columns
   :data:`FEATURE_NAMES`: zonal means and standard deviations inside, means in a ring around,
   inside-minus-ring contrasts, texture, shape and context.

Indices (unitless; ratios are NaN where the denominator is 0):

- NDVI = (NIR - Red) / (NIR + Red) (Rouse et al. 1974)
- BSI = ((SWIR1 + Red) - (NIR + Blue)) / ((SWIR1 + Red) + (NIR + Blue)) (Rikimaru et al. 2002)
- MNDWI = (Green - SWIR1) / (Green + SWIR1) (Xu 2006)
- NBR = (NIR - SWIR2) / (NIR + SWIR2) (Key & Benson 2006): low over char and bare soil
- NDTI = (SWIR1 - SWIR2) / (SWIR1 + SWIR2) (Van Deventer et al. 1997, tillage index): high over
  dry vegetation residue and char, low over mineral soil and gravel
- swir_ratio = SWIR2 / SWIR1: clay and iron minerals of fresh spoil
- red_green = Red / Green: turbidity of water (suspended sediment of mining ponds)
- brightness = mean(Red, NIR, SWIR1) (as ``bright`` in :func:`pipeline.detect.spectral_indices`)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from pipeline.detect import spectral_indices
from pipeline.errors import MissingBandError, MissingDimensionError
from pipeline.sites import grid_transform

from ..config import FeatureParams
from ..preprocess import observation_windows
from ._zonal import Zones, check_grid, rasterise_zones, ring_zones, shape_features, water_distance, zonal_mean_std

__all__ = [
    "CONTRAST_VARS",
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "INDICES",
    "RADAR_VARS",
    "RASTER_VARS",
    "candidate_features",
    "feature_rasters",
    "feature_spec",
    "feature_spec_digest",
    "radar_rasters",
    "spec_digest",
]

#: Bumped whenever a feature's definition changes, so old models refuse new features.
FEATURE_VERSION = 2
#: Per-observation spectral indices (see the module docstring).
INDICES: tuple[str, ...] = ("ndvi", "bsi", "mndwi", "nbr", "ndti", "swir_ratio", "red_green", "brightness")
#: ``(y, x)`` rasters of :func:`feature_rasters` that are not per-index medians.
_STATE_VARS: tuple[str, ...] = (
    "bare_frac",  # share of clear monitoring observations that were bare (not water)
    "water_frac",  # share of clear monitoring observations that were water
    "bare_major",  # 1 where bare_frac >= pixel_class_min_frac (0 elsewhere, NaN: never clear)
    "water_major",  # 1 where water_frac >= pixel_class_min_frac
    "water_red_green",  # median red/green over the monitoring water observations (NaN: no water)
    "water_red",  # median red reflectance over the monitoring water observations
    "base_bare_frac",  # share of clear baseline observations that were bare
    "base_water_frac",  # share of clear baseline observations that were water
    "regreen_frac",  # share of clear monitoring observations back to a green baseline
    "n_clear",  # clear monitoring observations
    "n_clear_base",  # clear baseline observations
    "n_clear_post",  # clear monitoring observations from the change date on (NaN: no change date)
    "permanent_water",  # 1 where base_water_frac >= permanent_water_frac
)
#: Every ``(y, x)`` variable :func:`feature_rasters` returns (float32).
RASTER_VARS: tuple[str, ...] = (
    *(f"{i}_{s}" for i in INDICES for s in ("base", "recent", "diff", "post", "post_diff")),
    *_STATE_VARS,
)
#: Rasters whose inside-minus-ring difference is a feature (``<var>_contrast``).
CONTRAST_VARS: tuple[str, ...] = (
    "bare_frac", "brightness_recent", "bsi_recent", "mndwi_recent", "nbr_recent",
    "ndti_recent", "ndvi_diff", "ndvi_recent", "water_frac",
)
#: ``(y, x)`` radar rasters (:func:`radar_rasters`) whose inside means are features (``radar_<var>_mean``).
RADAR_VARS: tuple[str, ...] = ("baseline_vh_db", "baseline_vv_db", "evidence_frac", "vh_db", "vh_drop_db", "vv_drop_db")
_SHAPE = ("area_ha", "compactness", "elongation", "n_parts", "n_pixels", "perimeter_m")
_CONTEXT = ("dist_permanent_water_m", "mosaic_water_bare", "site_n_obs", "site_n_occluded", "site_persistence")
_SITE_FIELDS = ("n_obs", "n_occluded", "persistence")
#: Coordinates kept on the rasters: the grid, and the CRS (odc-geo's ``spatial_ref``).
_KEEP_COORDS = ("y", "x", "spatial_ref")
#: Columns of :func:`candidate_features`, sorted: the model's input contract.
FEATURE_NAMES: tuple[str, ...] = tuple(sorted((
    *(f"{v}_{s}" for v in RASTER_VARS for s in ("mean", "std", "ring")),
    *(f"{v}_contrast" for v in CONTRAST_VARS),
    *(f"radar_{v}_mean" for v in RADAR_VARS),
    *_SHAPE,
    *_CONTEXT,
)))


def feature_rasters(
    masked: xr.Dataset,
    *,
    start: dt.date,
    baseline_days: int,
    params: FeatureParams,
    change_day: xr.DataArray | None = None,
) -> xr.Dataset:
    """Per-pixel feature rasters of a cloud-masked reflectance cube. Lazy: nothing is computed.

    Parameters
    ----------
    masked
        ``(time, y, x)`` reflectance (0..1, NaN where invalid) ``blue, green, red, nir, swir16,
        swir22`` and bool ``valid`` (:func:`pipeline.preprocess.mask_clouds`); any projected CRS.
    start, baseline_days
        First day of the monitoring period; observations from ``start`` on are the monitoring
        period, those in the ``baseline_days`` (``detect.baseline_days``) before it the baseline.
    params
        Thresholds (:class:`FeatureParams`): ``recent_days`` and ``recent_min_obs`` set the
        recent window (the last ``recent_days`` of the series, reaching further back, pixel by
        pixel, until it holds ``recent_min_obs`` clear monitoring observations), ``post_obs``
        the post-change window.
    change_day
        ``(y, x)`` change date of each pixel in days since 1970-01-01, NaN where none
        (``first_change`` of :func:`pipeline.detect.confirm_change`, lazy is fine). The
        *post-change* state of an index is its median over the first ``post_obs`` clear
        monitoring observations from that day on: what the ground looked like once changed,
        which stays the same when a pit is later abandoned and grass comes back. ``None``:
        the ``*_post`` rasters are NaN.

    Returns
    -------
    xarray.Dataset
        float32 ``(y, x)`` variables :data:`RASTER_VARS` on the input's ``y``/``x`` (and ``spatial_ref``).
        Shares are 0..1 of the *clear* observations (valid, all bands finite), NaN where a
        pixel has none; ``*_diff`` is recent minus baseline and ``*_post_diff`` post-change minus
        baseline; ``n_clear_post`` counts the clear monitoring observations from the change date on
        (NaN without one); ``regreen_frac`` is 0 where the baseline was not vegetated (median NDVI
        <= ``bare_ndvi_max``).

    Raises
    ------
    MissingDimensionError, MissingBandError, NoValidPixelsError
        The cube lacks a dimension or a band; no observation in the baseline or monitoring period.

    Examples
    --------
    >>> t = pd.to_datetime(["2022-06-01", "2022-09-01", "2023-02-01", "2023-03-01"])
    >>> veg, soil = [0.03, 0.06, 0.04, 0.40, 0.20, 0.10], [0.10, 0.14, 0.22, 0.28, 0.34, 0.29]
    >>> cube = np.array([veg, veg, soil, soil], "float32")[:, :, None, None] * np.ones((1, 1, 4, 4), "float32")
    >>> ds = xr.Dataset({b: (("time", "y", "x"), cube[:, k]) for k, b in enumerate(
    ...     ("blue", "green", "red", "nir", "swir16", "swir22"))}, coords={"time": t})
    >>> ds["valid"] = ds["red"].notnull()
    >>> out = feature_rasters(ds, start=dt.date(2023, 1, 1), baseline_days=365, params=FeatureParams())
    >>> float(out["bare_frac"][0, 0]), round(float(out["ndvi_diff"][0, 0]), 2)
    (1.0, -0.7)
    """
    _check_cube(masked)
    base_idx, mon_idx = observation_windows(masked, monitoring_start=start, baseline_days=baseline_days)
    if masked.chunks:
        masked = masked.chunk({"time": -1})
    idx = _indices(masked)
    medians = idx[list(INDICES)]
    mon = medians.isel(time=mon_idx)
    clear = mon.to_array("index").notnull().all("index")
    days = (mon["time"] - np.datetime64("1970-01-01")) / np.timedelta64(1, "D")
    out: dict[str, xr.DataArray] = {}
    with warnings.catch_warnings():  # all-NaN medians (never clear) are NaN on purpose
        warnings.simplefilter("ignore", RuntimeWarning)
        base = medians.isel(time=base_idx).median("time", skipna=True)
        recent = mon.where(_recent_window(clear, days, params=params)).median("time", skipna=True)
        post, n_post = _post_change(mon, clear, days, change_day, post_obs=params.post_obs)
        for name in INDICES:
            out[f"{name}_base"], out[f"{name}_recent"] = base[name], recent[name]
            out[f"{name}_diff"] = recent[name] - base[name]
            out[f"{name}_post"] = post[name]
            out[f"{name}_post_diff"] = post[name] - base[name]
        out["n_clear_post"] = n_post
        out.update(_state_rasters(idx.isel(time=mon_idx), idx.isel(time=base_idx), base["ndvi"], params=params))
    ds = xr.Dataset({k: v.astype("float32").transpose("y", "x") for k, v in out.items()})
    return ds.drop_vars([c for c in ds.coords if c not in _KEEP_COORDS])[list(RASTER_VARS)]


def radar_rasters(scored: xr.Dataset) -> xr.Dataset:
    """``(y, x)`` radar rasters for :func:`candidate_features` from radar change scores. Lazy.

    Parameters
    ----------
    scored
        Output of :func:`pipeline.radar.score_radar_change` (monitoring observations, dB),
        on the optical grid.

    Returns
    -------
    xarray.Dataset
        float32 ``(y, x)`` :data:`RADAR_VARS`: medians over valid monitoring observations of
        ``vh_drop_db``, ``vv_drop_db`` and ``vh_db`` (dB), the share of valid observations with
        radar evidence (``evidence_frac``, 0..1) and the baseline medians (dB).
    """
    valid = scored["valid"].astype(bool)
    n = valid.sum("time")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = {v: scored[v].where(valid).median("time", skipna=True) for v in ("vh_drop_db", "vv_drop_db", "vh_db")}
    out["evidence_frac"] = (scored["evidence"] & valid).sum("time") / n.where(n > 0)
    out["baseline_vh_db"], out["baseline_vv_db"] = scored["baseline_vh_db"], scored["baseline_vv_db"]
    ds = xr.Dataset({k: v.astype("float32").transpose("y", "x") for k, v in out.items()})
    return ds.drop_vars([c for c in ds.coords if c not in _KEEP_COORDS])[list(RADAR_VARS)]


def candidate_features(
    rasters: xr.Dataset, candidates: gpd.GeoDataFrame, *, ring_m: float, radar: xr.Dataset | None = None
) -> pd.DataFrame:
    """One row of :data:`FEATURE_NAMES` per candidate polygon. Eager by design.

    Parameters
    ----------
    rasters
        Computed (NumPy-backed) output of :func:`feature_rasters`, ``(y, x)`` with pixel-centre
        ``x``/``y`` coordinates in metres of a projected CRS.
    candidates
        Candidate polygons in the rasters' CRS (:func:`pipeline.sites.polygonise_flags`); its
        ``n_obs``, ``persistence`` and ``n_occluded`` columns become ``site_*`` features when
        present (NaN otherwise).
    ring_m
        Ring width in metres (``FeatureParams.ring_m``): the ring is every pixel whose centre lies
        within ``ring_m`` of a candidate pixel's centre, minus every candidate's pixels.
    radar
        Optional computed ``(y, x)`` radar rasters on the same grid (:func:`radar_rasters`);
        ``radar_*`` columns are NaN without it.

    Returns
    -------
    pandas.DataFrame
        Index ``candidates.index``, float64 columns :data:`FEATURE_NAMES`: ``<var>_mean`` /
        ``<var>_std`` inside and ``<var>_ring`` around for each of :data:`RASTER_VARS` (NaN
        ignored); ``<var>_contrast`` = inside minus ring for :data:`CONTRAST_VARS`; shape
        (``area_ha``, ``perimeter_m``, ``compactness`` = 4 pi A / P^2, ``elongation`` = long /
        short side of the minimum rotated rectangle, ``n_parts``, ``n_pixels``); context
        (``dist_permanent_water_m``: metres between the nearest pixel centres of candidate and
        permanent water, NaN when the grid has none; ``mosaic_water_bare``: 1 - |w - b| / (w + b)
        of the inside shares w, b of water- and bare-majority pixels, 0 when neither).
        A candidate owns the pixels whose centre it contains (the later one where candidates
        overlap); one covering no pixel centre gets the pixel under its centroid.
    """
    transform = grid_transform(rasters[RASTER_VARS[0]])
    shape = check_grid(rasters, candidates, RASTER_VARS, what="feature rasters")
    geoms = np.asarray(candidates.geometry.to_numpy(), dtype=object)
    zones = rasterise_zones(geoms, transform, shape)
    ring = ring_zones(zones, ring_m=ring_m, transform=transform, shape=shape)
    cols: dict[str, np.ndarray] = {}
    for var in RASTER_VARS:
        flat = np.asarray(rasters[var].values, dtype="float64").ravel()
        cols[f"{var}_mean"], cols[f"{var}_std"] = zonal_mean_std(flat, zones)
        cols[f"{var}_ring"] = zonal_mean_std(flat, ring)[0]
    for var in CONTRAST_VARS:
        cols[f"{var}_contrast"] = cols[f"{var}_mean"] - cols[f"{var}_ring"]
    w, b = cols["water_major_mean"], cols["bare_major_mean"]
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["mosaic_water_bare"] = np.where(w + b > 0, 1 - np.abs(w - b) / (w + b), 0.0)
    cols.update(shape_features(geoms, zones.counts))
    cols["dist_permanent_water_m"] = water_distance(rasters, zones)
    for field in _SITE_FIELDS:
        present = field in candidates.columns
        cols[f"site_{field}"] = candidates[field].to_numpy(dtype="float64") if present else np.full(zones.n, np.nan)
    cols.update(_radar_features(radar, rasters, candidates, zones))
    return pd.DataFrame({k: cols[k] for k in FEATURE_NAMES}, index=candidates.index, dtype="float64")


def feature_spec(params: FeatureParams, *, baseline_days: int | None = None) -> dict[str, Any]:
    """The feature contract a model is trained on: feature version, names and settings.

    ``baseline_days`` (``detect.baseline_days``, passed to :func:`feature_rasters`) is recorded
    when given, so pass it both when training and when applying a model.

    Examples
    --------
    >>> spec = feature_spec(FeatureParams())
    >>> spec["params"]["ring_m"], len(spec["feature_names"]) == len(FEATURE_NAMES)
    (30.0, True)
    """
    settings: dict[str, Any] = params.model_dump(mode="json")
    if baseline_days is not None:
        settings["baseline_days"] = int(baseline_days)
    return {"feature_version": FEATURE_VERSION, "feature_names": list(FEATURE_NAMES), "params": settings}


def spec_digest(spec: dict[str, Any]) -> str:
    """SHA-256 (hex) of a feature spec's canonical JSON (sorted keys)."""
    blob = json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def feature_spec_digest(params: FeatureParams, *, baseline_days: int | None = None) -> str:
    """SHA-256 (hex) of :func:`feature_spec`: equal digests, identical features.

    Examples
    --------
    >>> feature_spec_digest(FeatureParams()) == feature_spec_digest(FeatureParams(ring_m=40.0))
    False
    """
    return spec_digest(feature_spec(params, baseline_days=baseline_days))


def _check_cube(masked: xr.Dataset) -> None:
    for dim in ("time", "y", "x"):
        if dim not in masked.dims:
            raise MissingDimensionError(f"feature rasters need a {dim!r} dimension; pass the (time, y, x) masked cube")
    for band in ("blue", "green", "red", "nir", "swir16", "swir22", "valid"):
        if band not in masked:
            raise MissingBandError(f"{band!r} missing for the classifier's features; add it to acquire.bands")


def _recent_window(clear: xr.DataArray, days: xr.DataArray, *, params: FeatureParams) -> xr.DataArray:
    """Monitoring observations in each pixel's recent window (bool ``(time, y, x)``): the clear ones
    of the last ``recent_days``, or, where those are fewer than ``recent_min_obs``, the pixel's
    last ``recent_min_obs`` clear ones. A calendar window alone is empty over a cloudy end of the
    series (a run ending in the rains), and a recent state of NaN is not one the model learnt."""
    last_days = days > float(days.max()) - params.recent_days
    from_end = clear.isel(time=slice(None, None, -1)).cumsum("time").isel(time=slice(None, None, -1))
    return clear & (last_days | (from_end <= params.recent_min_obs))


def _post_change(
    mon: xr.Dataset, clear: xr.DataArray, days: xr.DataArray, change_day: xr.DataArray | None, *, post_obs: int
) -> tuple[xr.Dataset, xr.DataArray]:
    """Median of each index over the first ``post_obs`` clear observations from the pixel's change
    day on, and the number of clear observations from that day on (NaN: no change day)."""
    if change_day is None:
        nan = xr.full_like(clear.isel(time=0), np.nan, dtype="float32").drop_vars("time", errors="ignore")
        return xr.Dataset({k: nan for k in mon.data_vars}), nan
    after = clear & (days >= change_day)
    first = after & (after.cumsum("time") <= post_obs)
    post = mon.where(first).median("time", skipna=True)
    return post, after.sum("time").where(change_day.notnull())


def _indices(masked: xr.Dataset) -> xr.Dataset:
    """Per-observation indices of :data:`INDICES`, NaN where the observation is not valid."""
    valid = masked["valid"].astype(bool)
    bands = masked[["blue", "green", "red", "nir", "swir16", "swir22"]].where(valid)
    idx = spectral_indices(bands).rename({"bright": "brightness"})
    s1, s2 = bands["swir16"], bands["swir22"]
    idx["nbr"] = _ratio(bands["nir"] - s2, bands["nir"] + s2)
    idx["ndti"] = _ratio(s1 - s2, s1 + s2)
    idx["swir_ratio"] = _ratio(s2, s1)
    idx["red_green"] = _ratio(bands["red"], bands["green"])
    idx["red"] = bands["red"]
    return idx


def _state_rasters(
    mon: xr.Dataset, base: xr.Dataset, base_ndvi: xr.DataArray, *, params: FeatureParams
) -> dict[str, xr.DataArray]:
    """Shares, water colour, recurrence, counts and the permanent-water mask (lazy)."""
    out: dict[str, xr.DataArray] = {}
    for name, ds in (("", mon), ("base_", base)):
        clear = ds[list(INDICES)].to_array("index").notnull().all("index")
        water = clear & (ds["mndwi"] >= params.water_mndwi_min)
        bare = clear & (ds["ndvi"] <= params.bare_ndvi_max) & ~water
        n = clear.sum("time")
        out[f"{name}bare_frac"], out[f"{name}water_frac"] = _share(bare, n), _share(water, n)
        out[f"n_clear{'_base' if name else ''}"] = n
        if not name:
            out["water_red_green"] = ds["red_green"].where(water).median("time", skipna=True)
            out["water_red"] = ds["red"].where(water).median("time", skipna=True)
            vegetated = base_ndvi > params.bare_ndvi_max
            regreen = clear & vegetated & (ds["ndvi"] >= base_ndvi - params.regreen_ndvi_margin)
            out["regreen_frac"] = _share(regreen, n)
    for kind in ("bare", "water"):
        frac = out[f"{kind}_frac"]
        out[f"{kind}_major"] = (frac >= params.pixel_class_min_frac).where(frac.notnull())
    out["permanent_water"] = out["base_water_frac"] >= params.permanent_water_frac
    return out


def _share(mask: xr.DataArray, n: xr.DataArray) -> xr.DataArray:
    return mask.sum("time") / n.where(n > 0)


def _ratio(num: xr.DataArray, den: xr.DataArray) -> xr.DataArray:
    return (num / den.where(den != 0)).astype("float32")


def _radar_features(
    radar: xr.Dataset | None, rasters: xr.Dataset, candidates: gpd.GeoDataFrame, zones: Zones
) -> dict[str, np.ndarray]:
    """``radar_<var>_mean`` inside each candidate (NaN without radar or without that variable)."""
    out = {f"radar_{var}_mean": np.full(zones.n, np.nan) for var in RADAR_VARS}
    if radar is None:
        return out
    names = [str(v) for v in radar.data_vars]
    unknown = sorted(set(names) - set(RADAR_VARS))
    if unknown:
        raise MissingBandError(f"radar variables {unknown} are not radar features; pass radar_rasters(...) computed")
    check_grid(radar, candidates, names, what="radar rasters", like=rasters)
    for var in names:
        out[f"radar_{var}_mean"] = zonal_mean_std(np.asarray(radar[var].values, "float64").ravel(), zones)[0]
    return out
