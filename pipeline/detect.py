"""PURE: cloud-masked reflectance -> per-pixel excavation evidence -> confirmed change.

The method is deliberately transparent (each rule is one line, each threshold is
a documented field of :class:`pipeline.config.DetectParams`):

1. **Baseline.** Per pixel, a high quantile of NDVI over the clear observations of
   the baseline window (the ``baseline_days`` before the monitoring period):
   how green the place is at its best.
2. **Evidence** in each clear observation of the monitoring period, any of:
   *vegetation loss* (NDVI at least ``ndvi_drop_min`` below the baseline, or the AOI's Otsu
   threshold of the pooled NDVI drops with ``threshold_method: otsu``) together with
   *exposed gravel* (NDVI <= ``bare_ndvi_max``, Bare Soil Index >= ``bare_bsi_min`` and
   brightness >= ``bright_min``, which excludes dark burn scars) or *open water*
   (MNDWI >= ``water_mndwi_min``); *new water* where the baseline never had water
   (flooded pits in bare ground); *disturbed bare ground*: SWIR1 differs from the
   baseline median by ``swir_change_min`` where the baseline was already bare and never
   water (pits in laterite, sand or desert, which show no vegetation loss).
3. **Confirmation** (as pyeo does): a change is confirmed at the first run of
   ``min_confirmations`` consecutive clear observations with evidence; cloudy
   observations neither count nor break the run. The first observation of that
   run is the change date.
4. **Persistence**: at least ``min_persistence_frac`` of the clear observations
   from the change date on must still show evidence. Pits stay open; burn scars
   and cleared fields re-green within a season.
5. **No re-greening**: ``regrowth_min_obs`` clear observations back within
   ``regrowth_ndvi_margin`` of a green baseline reject the change (crops, burn recovery).
6. **Clean-up**: a morphological opening removes isolated speckle.

Indices (all unitless):
- NDVI = (NIR - Red) / (NIR + Red) (Rouse et al. 1974)
- BSI = ((SWIR1 + Red) - (NIR + Blue)) / ((SWIR1 + Red) + (NIR + Blue)) (Rikimaru et al. 2002)
- MNDWI = (Green - SWIR1) / (Green + SWIR1) (Xu 2006)
- brightness = mean(Red, NIR, SWIR1)
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from .config import DetectParams, RadarParams
from .errors import MissingBandError, NoValidPixelsError
from .radar import fuse_evidence
from .thresholds import otsu_threshold

__all__ = [
    "APPLIED_THRESHOLDS",
    "confirm_change",
    "detect_change",
    "flag_excavation",
    "score_change",
    "spectral_indices",
]

#: 0-d threshold variables :func:`detect_change` returns with the change rasters, and units.
APPLIED_THRESHOLDS: dict[str, str] = {
    "ndvi_drop_threshold": "NDVI units",
    "vh_drop_threshold_db": "dB",
}

#: Variables :func:`confirm_change` returns, with their dtypes.
CHANGE_VARS: dict[str, str] = {
    "first_change": "float64",  # days since 1970-01-01 of the first confirming observation, NaN if none
    "last_evidence": "float64",  # days since 1970-01-01 of the last observation with evidence
    "n_obs": "int16",  # clear observations with evidence from the change date on (confirmations)
    "n_clear_after": "int16",  # clear observations from the change date on
    "n_occluded": "int16",  # cloud/nodata observations from the change date on
    "confirmed": "bool",
    "regrown": "bool",  # a run of min_confirmations re-vegetated clear observations after the change
    "open_run": "int16",  # clear observations with evidence in the run still open at the last clear one
    "open_run_start": "float64",  # days since 1970-01-01 of the first observation of that run, NaN if none
}


def detect_change(
    masked: xr.Dataset,
    *,
    start: dt.date,
    params: DetectParams,
    radar: xr.Dataset | None = None,
    radar_params: RadarParams | None = None,
) -> tuple[xr.DataArray, xr.Dataset]:
    """The lazy detect stage of one AOI: evidence (fused with radar when given), confirmation, flags.

    Shared by :func:`pipeline.run.run_monitor` and the notebooks
    (:func:`pipeline.explore.detect_sites`). Lazy in, lazy out: nothing is computed.

    Parameters
    ----------
    masked
        Cloud-masked ``(time, y, x)`` reflectance cube (:func:`pipeline.workflow.open_aoi_scenes`).
    start
        First day of the monitoring period.
    params
        Detection thresholds.
    radar
        Output of :func:`pipeline.radar.score_radar_change` on the same grid (see
        :func:`pipeline.workflow.open_aoi_radar`), or ``None`` for optical evidence only.
        Radar evidence is merged on the optical time axis by
        :func:`pipeline.radar.fuse_evidence`, and the re-vegetation seen by either sensor is
        merged the same way.
    radar_params
        ``radar_role`` and ``optical_gap_days`` for the fusion (default :class:`RadarParams`).

    Returns
    -------
    flags, change
        Lazy ``(y, x)`` flags from :func:`flag_excavation` and change rasters from
        :func:`confirm_change`, plus the 0-d thresholds applied: ``ndvi_drop_threshold``
        (NDVI units) and, with radar, ``vh_drop_threshold_db`` (dB); names are those of
        :data:`APPLIED_THRESHOLDS`.
    """
    scored = score_change(masked, monitoring_start=start, params=params)
    evidence, valid, regrowth = scored["evidence"], scored["valid"], scored["regrowth"]
    if radar is not None:
        rp = radar_params if radar_params is not None else RadarParams()
        evidence, valid, regrowth = fuse_evidence(
            evidence,
            valid,
            radar["evidence"],
            radar["valid"],
            radar_role=rp.radar_role,
            optical_gap_days=rp.optical_gap_days,
            regrowth=(regrowth, radar["regrowth"]),
        )
    change = confirm_change(
        evidence,
        valid,
        min_confirmations=params.min_confirmations,
        regrowth=regrowth,
        min_regrowth_obs=params.regrowth_min_obs,
    )
    # The thresholds actually applied (fixed, or the AOI's Otsu value) travel with the change
    # rasters as 0-d variables, computed in the same pass, for the manifest and the bulletin.
    change["ndvi_drop_threshold"] = scored["ndvi_drop_threshold"]
    if radar is not None:
        change["vh_drop_threshold_db"] = radar["vh_threshold_db"]
    return flag_excavation(change, params=params), change


def spectral_indices(scenes: xr.Dataset) -> xr.Dataset:
    """NDVI, BSI, MNDWI and brightness of reflectance scenes.

    Parameters
    ----------
    scenes
        Reflectance (0..1) with ``blue, green, red, nir, swir16``; any dims, any CRS.

    Returns
    -------
    xarray.Dataset
        ``ndvi, bsi, mndwi, bright`` (float32, same dims). Lazy.

    Examples
    --------
    >>> ds = xr.Dataset({k: ("x", np.array(v, "float32")) for k, v in dict(
    ...     blue=[0.03, 0.10], green=[0.06, 0.12], red=[0.04, 0.22], nir=[0.40, 0.28],
    ...     swir16=[0.20, 0.34]).items()})
    >>> [round(float(v), 2) for v in spectral_indices(ds)["ndvi"].values]
    [0.82, 0.12]
    """
    for band in ("blue", "green", "red", "nir", "swir16"):
        if band not in scenes:
            raise MissingBandError(f"band {band!r} missing for spectral indices; add it to acquire.bands")
    b, g, r, n, s1 = (scenes[k] for k in ("blue", "green", "red", "nir", "swir16"))
    out = xr.Dataset(
        {
            "ndvi": _ratio(n - r, n + r),
            "bsi": _ratio((s1 + r) - (n + b), (s1 + r) + (n + b)),
            "mndwi": _ratio(g - s1, g + s1),
            "bright": ((r + n + s1) / 3).astype("float32"),
        }
    )
    return out


def score_change(
    scenes: xr.Dataset,
    *,
    monitoring_start: dt.date,
    params: DetectParams,
) -> xr.Dataset:
    """Per-observation excavation evidence against a per-pixel baseline.

    Parameters
    ----------
    scenes
        Cloud-masked reflectance ``(time, y, x)`` with ``valid`` (from
        :func:`pipeline.preprocess.mask_clouds`). Observations before
        ``monitoring_start`` form the baseline.
    monitoring_start
        First day on which change can be reported.
    params
        Thresholds (see :class:`pipeline.config.DetectParams`).

    Returns
    -------
    xarray.Dataset
        ``evidence`` (bool, ``(time, y, x)``, monitoring observations only),
        ``valid`` (bool, same), ``regrowth`` (bool, same: back to baseline greenness),
        ``baseline_ndvi`` (float32, ``(y, x)``), ``ndvi_drop_threshold`` (0-d float32: the
        NDVI drop that counted as vegetation loss, ``ndvi_drop_min`` or the AOI's Otsu
        threshold) and the per-observation indices ``ndvi, bsi, mndwi, bright``. Lazy.

    Raises
    ------
    NoValidPixelsError
        When no observation falls in the baseline window or the monitoring period.
    """
    times = pd.DatetimeIndex(scenes["time"].values)
    start = pd.Timestamp(monitoring_start)
    base_sel = (times < start) & (times >= start - pd.Timedelta(days=params.baseline_days))
    mon_sel = times >= start
    if not base_sel.any():
        raise NoValidPixelsError(
            f"no scene in the {params.baseline_days}-day baseline before {monitoring_start}; "
            "search from earlier (detect.baseline_days) or check the source's coverage"
        )
    if not mon_sel.any():
        raise NoValidPixelsError(f"no scene on or after {monitoring_start}; check period.start/end")
    idx = spectral_indices(scenes)
    base_ndvi = idx["ndvi"].isel(time=np.flatnonzero(base_sel))
    if base_ndvi.chunks:
        base_ndvi = base_ndvi.chunk({"time": -1})
    baseline = xr.apply_ufunc(
        _nanquantile_np,
        base_ndvi,
        kwargs={"q": params.baseline_quantile},
        input_core_dims=[["time"]],
        dask="parallelized",
        output_dtypes=[np.float32],
    )
    base_idx = np.flatnonzero(base_sel)
    base_water = idx["mndwi"].isel(time=base_idx).max("time", skipna=True)
    base_swir = scenes["swir16"].isel(time=base_idx).median("time", skipna=True)
    mon_idx = np.flatnonzero(mon_sel)
    mon = idx.isel(time=mon_idx)
    valid = scenes["valid"].isel(time=mon_idx)
    water = mon["mndwi"] >= params.water_mndwi_min
    was_water = base_water >= params.water_mndwi_min
    was_bare = (baseline <= params.bare_ndvi_max) & ~was_water
    drop = (baseline - mon["ndvi"]).astype("float32")
    if params.threshold_method == "otsu":
        ndvi_threshold = otsu_threshold(
            drop.where(valid & ~was_bare),
            value_range=params.otsu_ndvi_drop_range,
            bins=params.otsu_ndvi_drop_bins,
            floor=params.otsu_ndvi_drop_floor,
            ceiling=params.otsu_ndvi_drop_ceiling,
        )
    else:
        ndvi_threshold = xr.DataArray(np.float32(params.ndvi_drop_min))
    veg_loss = drop >= ndvi_threshold
    bare = (
        (mon["ndvi"] <= params.bare_ndvi_max)
        & (mon["bsi"] >= params.bare_bsi_min)
        & (mon["bright"] >= params.bright_min)
    )
    soil_change = was_bare & (abs(scenes["swir16"].isel(time=mon_idx) - base_swir) >= params.swir_change_min)
    evidence = ((veg_loss & (bare | water)) | (water & ~was_water) | soil_change) & valid
    out = mon.copy()
    out["evidence"] = evidence
    out["valid"] = valid
    # Re-greening only means something where the baseline was green: in bare ground (sand,
    # laterite, desert) the NDVI of a pit and of its surroundings are alike.
    out["regrowth"] = (mon["ndvi"] >= baseline - params.regrowth_ndvi_margin) & ~was_bare & valid
    out["baseline_ndvi"] = baseline.astype("float32")
    out["ndvi_drop_threshold"] = ndvi_threshold.astype("float32")
    return out


def confirm_change(
    evidence: xr.DataArray,
    valid: xr.DataArray,
    *,
    min_confirmations: int,
    regrowth: xr.DataArray | None = None,
    min_regrowth_obs: int = 2,
) -> xr.Dataset:
    """Confirm change over time, pixel by pixel (pyeo-style multi-date confirmation).

    Parameters
    ----------
    evidence, valid
        Boolean ``(time, y, x)``; ``evidence`` implies ``valid``.
    min_confirmations
        Consecutive clear observations with evidence needed to confirm. Invalid
        (cloudy) observations are skipped: they neither count nor break a run.
    regrowth
        Optional boolean ``(time, y, x)``: the observation is back to baseline greenness.
        ``regrown`` is set where at least ``min_regrowth_obs`` clear such observations
        follow the change date (not necessarily consecutive: crops grow in the cloudy
        season, so clear views of them are few).

    Returns
    -------
    xarray.Dataset
        ``(y, x)`` variables of :data:`CHANGE_VARS`. Dates are float days since
        1970-01-01 (NaN: never). Lazy when the input is (``apply_ufunc`` with
        ``dask="parallelized"``; ``time`` is rechunked to a single chunk).

    Examples
    --------
    >>> t = pd.date_range("2023-01-01", periods=5, freq="10D")
    >>> ev = xr.DataArray(np.array([0, 1, 0, 1, 1], bool)[:, None, None], dims=("time", "y", "x"),
    ...                   coords={"time": t})
    >>> ok = xr.DataArray(np.array([1, 1, 0, 1, 1], bool)[:, None, None], dims=ev.dims, coords=ev.coords)
    >>> out = confirm_change(ev, ok, min_confirmations=3)
    >>> str(pd.Timestamp(out["first_change"].item(), unit="D").date()), int(out["n_obs"].item())
    ('2023-01-11', 3)
    """
    days = (pd.DatetimeIndex(evidence["time"].values) - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    if regrowth is None:
        regrowth = xr.zeros_like(evidence)
    if evidence.chunks:
        evidence = evidence.chunk({"time": -1})
        valid = valid.chunk({"time": -1})
        regrowth = regrowth.chunk({"time": -1})
    names = list(CHANGE_VARS)
    results = xr.apply_ufunc(
        _confirm_np,
        evidence,
        valid,
        regrowth,
        kwargs={"days": np.asarray(days, dtype="float64"), "k": int(min_confirmations),
                "k_regrowth": int(min_regrowth_obs)},
        input_core_dims=[["time"], ["time"], ["time"]],
        output_core_dims=[[] for _ in names],
        dask="parallelized",
        output_dtypes=[np.dtype(CHANGE_VARS[n]) for n in names],
    )
    return xr.Dataset(dict(zip(names, results, strict=True)))


def flag_excavation(
    change: xr.Dataset,
    *,
    params: DetectParams,
) -> xr.DataArray:
    """Boolean excavation flags: confirmed, persistent, de-speckled.

    Parameters
    ----------
    change
        Output of :func:`confirm_change` (``(y, x)``).
    params
        ``min_persistence_frac`` and ``open_radius_px`` are used.

    Returns
    -------
    xarray.DataArray
        bool ``(y, x)``. The opening runs through ``map_overlap`` so chunk edges
        stay correct. Lazy.
    """
    frac = change["n_obs"] / change["n_clear_after"].where(change["n_clear_after"] > 0)
    flags = change["confirmed"] & (frac >= params.min_persistence_frac)
    if "regrown" in change:
        flags = flags & ~change["regrown"]
    if params.open_radius_px > 0:
        flags = _open(flags, params.open_radius_px)
    return flags.rename("flags")


def _ratio(num: xr.DataArray, den: xr.DataArray) -> xr.DataArray:
    return (num / den.where(den != 0)).astype("float32")


def _nanquantile_np(values: np.ndarray, *, q: float) -> np.ndarray:
    """Quantile over the last axis ignoring NaN, linear interpolation (``np.nanquantile``'s
    default), vectorised: sort once, NaNs go last, index by each pixel's valid count.
    ``np.nanquantile`` falls back to a per-pixel Python loop when NaNs are present, about
    50x slower on a cloud-masked time series."""
    ordered = np.sort(values, axis=-1)
    n_valid = np.sum(~np.isnan(values), axis=-1)
    pos = q * np.maximum(n_valid - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n_valid - 1, 0))
    v_lo = np.take_along_axis(ordered, lo[..., np.newaxis], axis=-1)[..., 0]
    v_hi = np.take_along_axis(ordered, hi[..., np.newaxis], axis=-1)[..., 0]
    out = v_lo + (v_hi - v_lo) * (pos - lo)
    return np.where(n_valid > 0, out, np.nan).astype(np.float32)


def _confirm_np(
    evidence: np.ndarray,
    valid: np.ndarray,
    regrowth: np.ndarray | None = None,
    *,
    days: np.ndarray,
    k: int,
    k_regrowth: int = 2,
) -> tuple[np.ndarray, ...]:
    """NumPy kernel: inputs are ``(..., time)``; returns per-pixel arrays (see CHANGE_VARS)."""
    shape = evidence.shape[:-1]
    run = np.zeros(shape, dtype=np.int32)
    run_start = np.full(shape, np.nan)
    first = np.full(shape, np.nan)
    last = np.full(shape, np.nan)
    for t in range(evidence.shape[-1]):
        ev = evidence[..., t]
        ok = valid[..., t]
        starting = ok & ev & (run == 0)
        run_start = np.where(starting, days[t], run_start)
        run = np.where(ok, np.where(ev, run + 1, 0), run)
        newly = (run >= k) & np.isnan(first)
        first = np.where(newly, run_start, first)
        last = np.where(ok & ev, days[t], last)
    confirmed = ~np.isnan(first)
    after = days >= np.where(confirmed, first, np.inf)[..., np.newaxis]
    n_obs = (after & evidence & valid).sum(-1).astype("int16")
    n_clear = (after & valid).sum(-1).astype("int16")
    n_occ = (after & ~valid).sum(-1).astype("int16")
    last = np.where(confirmed, last, np.nan)
    regrown = np.zeros(shape, dtype=bool)
    if regrowth is not None:
        regrown = (after & valid & regrowth).sum(-1) >= k_regrowth
    open_start = np.where(run > 0, run_start, np.nan)
    return first, last, n_obs, n_clear, n_occ, confirmed, regrown, run.astype("int16"), open_start


def _open(flags: xr.DataArray, radius: int) -> xr.DataArray:
    # A square element keeps the corners of blocky pits (a disc would shave them off)
    # and still removes anything thinner than 2 * radius + 1 pixels.
    structure = np.ones((2 * radius + 1, 2 * radius + 1), dtype=bool)

    def _open_np(block: np.ndarray) -> np.ndarray:
        return ndimage.binary_opening(block, structure=structure)

    data = flags.data
    if hasattr(data, "map_overlap"):
        opened = data.map_overlap(_open_np, depth=radius + 1, boundary=False, dtype=bool)
    else:
        opened = _open_np(np.asarray(data))
    return flags.copy(data=opened)
