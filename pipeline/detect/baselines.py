"""The temporal rules on NDVI: peak and season-matched baselines, vegetation loss, re-greening."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import xarray as xr

from ..config import DetectParams
from ..preprocess import observation_windows
from ..thresholds import otsu_threshold

#: Per date, the clear pixels with evidence and with strict evidence, and the grid's pixel count
#: (:func:`widespread_counts`).
WidespreadCounts = tuple[xr.DataArray, xr.DataArray | None, int]

def ndvi_change(
    ndvi: xr.DataArray, valid: xr.DataArray, *, monitoring_start: dt.date, params: DetectParams
) -> xr.Dataset:
    """The temporal rules on NDVI alone: vegetation loss and re-greening against the baselines.

    Parameters
    ----------
    ndvi, valid
        ``(time, y, x)`` NDVI (NaN where not clear) and clear-observation mask; observations
        before ``monitoring_start`` (within ``baseline_days``) form the baseline.
    monitoring_start
        First day on which change can be reported.
    params
        ``baseline_*``, ``ndvi_drop_min`` or the Otsu settings, ``season_*``,
        ``regrowth_ndvi_margin``.

    Returns
    -------
    xarray.Dataset
        Monitoring observations only: ``loss`` (bool ``(time, y, x)``: at least the NDVI-drop
        threshold below the peak baseline and, where one exists, ``season_drop_min`` below
        the season-matched baseline), ``valid``, ``regrowth`` (back within
        ``regrowth_ndvi_margin`` of the peak), ``baseline_ndvi`` (float32 ``(y, x)``) and
        ``ndvi_drop_threshold`` (0-d). Lazy. The Otsu threshold, when chosen, is found on the
        drops of pixels whose baseline was vegetated (above ``bare_ndvi_max``).
    """
    base_idx, mon_idx = _windows(ndvi, monitoring_start=monitoring_start, baseline_days=params.baseline_days)
    base_ndvi = ndvi.isel(time=base_idx)
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
    mon_ndvi = ndvi.isel(time=mon_idx)
    ok = valid.isel(time=mon_idx)
    drop = (baseline - mon_ndvi).astype("float32")
    threshold = _ndvi_threshold(drop.where(ok & (baseline > params.bare_ndvi_max)), params)
    loss = drop >= threshold
    if params.season_drop_min is not None:
        # only where the peak sees a loss: elsewhere the season-matched baseline cannot change it
        seasonal = seasonal_baseline(base_ndvi, mon_ndvi["time"], params=params, where=loss & ok)
        # Unusual for the season, or no clear view of this season before (then the peak decides).
        loss = loss & (((seasonal - mon_ndvi) >= params.season_drop_min) | seasonal.isnull())
    return xr.Dataset(
        {
            "loss": loss & ok,
            "valid": ok,
            "regrowth": (mon_ndvi >= baseline - params.regrowth_ndvi_margin) & ok,
            "baseline_ndvi": baseline.astype("float32"),
            "ndvi_drop_threshold": threshold.astype("float32"),
        }
    )


def drop_widespread(
    evidence: xr.DataArray,
    valid: xr.DataArray,
    *,
    max_frac: float | None,
    strict: xr.DataArray | None = None,
    counts: WidespreadCounts | None = None,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Dates on which evidence covers more than ``max_frac`` of the grid are not judged.

    Leaf fall, snow, a regional fire season or haze move the whole landscape at once,
    excavation a few per cent of it. On such a date every pixel's observation becomes "not
    clear" (``valid`` false, no evidence): it neither counts nor breaks a run. The share is
    of the whole ``(y, x)`` grid, not of the clear pixels, since on a partly cloudy date the few
    clear pixels may all be a pit. ``max_frac`` None: unchanged. Lazy.

    ``strict``: the part of ``evidence`` that needs no allowance (bool, same dims; e.g. gravel
    at NDVI <= ``bare_ndvi_max``, water). On a date where the whole evidence is widespread but
    the strict part is not (the dry-season savanna has NDVI 0.2-0.3 and passes the greener
    allowance everywhere), only the pixels with nothing but the allowance are not judged; the
    strict evidence and the pixels without evidence are judged as usual. Where the strict part
    is widespread too, the whole date is not judged.

    ``counts``: ``(evidence, strict, size)`` from :func:`widespread_counts` summed over the whole
    grid when ``evidence`` is one spatial chunk of it (:mod:`pipeline.detect.blockwise`);
    default: counted on these arrays.

    Examples
    --------
    >>> t = pd.date_range("2023-01-01", periods=2, freq="10D")
    >>> ev = xr.DataArray(np.array([[[1, 1, 1, 0]], [[1, 0, 0, 0]]], bool), dims=("time", "y", "x"),
    ...                   coords={"time": t})
    >>> strict = ev & xr.DataArray(np.array([1, 0, 0, 0], bool), dims="x")
    >>> e, ok = drop_widespread(ev, xr.ones_like(ev), max_frac=0.5, strict=strict)
    >>> e.values.astype(int).tolist(), ok.values.astype(int).tolist()
    ([[[1, 0, 0, 0]], [[1, 0, 0, 0]]], [[[1, 0, 0, 1]], [[1, 1, 1, 1]]])
    """
    if max_frac is None:
        return evidence, valid
    n_evidence, n_strict, size = counts if counts is not None else widespread_counts(evidence, valid, strict)
    wide = n_evidence / size > max_frac
    if strict is None:
        judged = valid & ~wide
        return evidence & judged, judged
    assert n_strict is not None
    strict = strict & evidence
    strict_wide = n_strict / size > max_frac
    judged = valid & ~strict_wide & ~(wide & evidence & ~strict)
    return xr.where(wide, strict, evidence) & judged, judged


def widespread_counts(
    evidence: xr.DataArray, valid: xr.DataArray, strict: xr.DataArray | None = None
) -> WidespreadCounts:
    """Per date, the clear pixels with evidence and with ``strict`` evidence (int64, ``time``),
    and the number of pixels of the ``(y, x)`` grid: what :func:`drop_widespread` judges by."""
    size = evidence.sizes["y"] * evidence.sizes["x"]
    n_evidence = (evidence & valid).sum(("y", "x"))
    n_strict = None if strict is None else ((strict & evidence) & valid).sum(("y", "x"))
    return n_evidence, n_strict, size


def seasonal_baseline(
    base_ndvi: xr.DataArray, times: xr.DataArray, *, params: DetectParams, where: xr.DataArray | None = None
) -> xr.DataArray:
    """Season-matched NDVI baseline of each monitoring observation.

    Parameters
    ----------
    base_ndvi
        ``(time, y, x)`` NDVI of the baseline observations (NaN where not clear).
    times
        The monitoring observations' ``time`` coordinate.
    params
        ``baseline_quantile``, ``season_window_days`` and ``season_min_obs``.
    where
        Optional bool ``(time, y, x)`` on ``times``: the observations whose baseline is needed.
        It is matched to ``times`` and to ``base_ndvi``'s grid by position, not by coordinate
        labels (it goes in bare, so that lazy coordinates are not merged): give it the same
        ``time`` order and the same ``(y, x)`` shape and chunks. A pixel's window is then
        computed only when one of its observations of that day of the year is needed (the
        windows are the cost: a sort per window and pixel); the others are NaN.

    Returns
    -------
    xarray.DataArray
        float32 ``(time, y, x)`` on ``times``: per pixel, the ``baseline_quantile`` of the
        baseline NDVI within ``season_window_days`` (day of year, either side, across the
        new year) of the observation's own day of the year; NaN where fewer than
        ``season_min_obs`` clear baseline observations fall in that window (or not needed,
        with ``where``). Lazy.

    Notes
    -----
    Centred on the observation's own day, not on the middle of its calendar month: where the
    savanna browns or greens by 0.05 NDVI in ten days (the end of the rains), a window centred
    a fortnight later reaches a month further into the green season, and the high quantile
    then expects a greenness the place never had on that day. On the browning validation
    scene (savanna NDVI 0.20 in early April, 0.30-0.45 in May) the cured savanna passed the
    seasonal test over more than a quarter of the grid on 17 monitoring dates with
    month-centred windows (14 centred on the day), each dropped whole by the
    widespread-evidence test; two pits opened in early 2024 went unconfirmed (site F1 0.91,
    1.00 centred on the day).

    Examples
    --------
    >>> t = pd.to_datetime(["2022-02-10", "2022-08-10", "2023-02-05"])
    >>> base = xr.DataArray(np.array([0.2, 0.8], "float32")[:, None, None], dims=("time", "y", "x"),
    ...                     coords={"time": t[:2]})
    >>> p = DetectParams(season_window_days=45, season_min_obs=1)
    >>> seasonal_baseline(base, xr.DataArray(t[2:], dims="time"), params=p).values.ravel().tolist()
    [0.20000000298023224]
    """
    base_doy = pd.DatetimeIndex(base_ndvi["time"].values).day_of_year.to_numpy()
    mon_doy = pd.DatetimeIndex(times.values).day_of_year.to_numpy()
    data = base_ndvi.chunk({"time": -1}) if base_ndvi.chunks else base_ndvi
    inputs, core = [data], [["time"]]
    if where is not None:
        # the mask alone, without coordinates: its per-date coordinates (a harmonised cube's
        # lazy band scales and item ids, on the monitoring dates) would be merged with the
        # baseline's of the same names on other dates, which computes them to compare
        need = xr.DataArray(where.data, dims=["mon_time" if d == "time" else d for d in where.dims])
        inputs.append(need.chunk({"mon_time": -1}) if need.chunks else need)
        core.append(["mon_time"])
    out = xr.apply_ufunc(
        _seasonal_quantile_np,
        *inputs,
        kwargs={"base_doy": base_doy, "mon_doy": mon_doy, "q": params.baseline_quantile,
                "window_days": params.season_window_days, "min_obs": params.season_min_obs},
        input_core_dims=core,
        output_core_dims=[["mon_time"]],
        dask="parallelized",
        output_dtypes=[np.float32],
        dask_gufunc_kwargs={"output_sizes": {"mon_time": len(mon_doy)}},
    )
    out = out.rename(mon_time="time").assign_coords(time=times.values)
    return out.transpose("time", ...)


def _windows(
    data: xr.Dataset | xr.DataArray, *, monitoring_start: dt.date, baseline_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the baseline and the monitoring observations (:func:`pipeline.preprocess.observation_windows`)."""
    return observation_windows(data, monitoring_start=monitoring_start, baseline_days=baseline_days)


def _ndvi_threshold(drops: xr.DataArray, params: DetectParams) -> xr.DataArray:
    """The NDVI drop that counts as vegetation loss: fixed, or the AOI's bounded Otsu threshold."""
    if params.threshold_method == "otsu":
        return otsu_threshold(
            drops,
            value_range=params.otsu_ndvi_drop_range,
            bins=params.otsu_ndvi_drop_bins,
            floor=params.otsu_ndvi_drop_floor,
            ceiling=params.otsu_ndvi_drop_ceiling,
        )
    return xr.DataArray(np.float32(params.ndvi_drop_min))


def nanmedian_time(values: xr.DataArray) -> xr.DataArray:
    """The median over ``time`` ignoring NaN (``median("time", skipna=True)``, value for value),
    with :func:`_nanmedian_np`. Lazy when the input is."""
    data = values.chunk({"time": -1}) if values.chunks else values
    return xr.apply_ufunc(_nanmedian_np, data, input_core_dims=[["time"]], dask="parallelized",
                          output_dtypes=[values.dtype])


def _nanmedian_np(values: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN, as ``np.nanmedian`` computes it (the middle value,
    or the two middle values' sum halved in the input's dtype; NaN where none is valid),
    vectorised: sort once, NaNs go last. ``np.nanmedian`` goes through masked arrays for series
    shorter than 600, several times slower."""
    if values.shape[-1] == 0:
        return np.full(values.shape[:-1], np.nan, dtype=values.dtype)
    ordered = np.sort(values, axis=-1)
    n_valid = np.sum(~np.isnan(values), axis=-1)
    hi = n_valid // 2
    lo = np.where(n_valid % 2 == 1, hi, hi - 1)
    v_lo = np.take_along_axis(ordered, np.maximum(lo, 0)[..., np.newaxis], axis=-1)[..., 0]
    v_hi = np.take_along_axis(ordered, np.minimum(hi, values.shape[-1] - 1)[..., np.newaxis], axis=-1)[..., 0]
    return np.where(n_valid > 0, np.true_divide(v_lo + v_hi, 2.0, dtype=values.dtype), np.nan).astype(values.dtype)


def _nanquantile_np(values: np.ndarray, *, q: float) -> np.ndarray:
    """Quantile over the last axis ignoring NaN, linear interpolation (``np.nanquantile``'s
    default), vectorised: sort once, NaNs go last, index by each pixel's valid count.
    ``np.nanquantile`` falls back to a per-pixel Python loop when NaNs are present, about
    50x slower on a cloud-masked time series."""
    return _quantile_of_sorted(np.sort(values, axis=-1), q=q)


def _quantile_of_sorted(ordered: np.ndarray, *, q: float) -> np.ndarray:
    """:func:`_nanquantile_np` of values already sorted along the last axis (NaNs last)."""
    n_valid = np.sum(~np.isnan(ordered), axis=-1)
    pos = q * np.maximum(n_valid - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n_valid - 1, 0))
    v_lo = np.take_along_axis(ordered, lo[..., np.newaxis], axis=-1)[..., 0]
    v_hi = np.take_along_axis(ordered, hi[..., np.newaxis], axis=-1)[..., 0]
    out = v_lo + (v_hi - v_lo) * (pos - lo)
    return np.where(n_valid > 0, out, np.nan).astype(np.float32)


def _seasonal_quantile_np(
    base: np.ndarray, need: np.ndarray | None = None, *, base_doy: np.ndarray, mon_doy: np.ndarray, q: float,
    window_days: int, min_obs: int,
) -> np.ndarray:
    """NumPy kernel of :func:`seasonal_baseline`: ``base`` is ``(..., time)``; returns
    ``(..., n_monitoring)``, one quantile per day of the year of the monitoring observations;
    ``need`` (bool ``(..., n_monitoring)``, optional): only the pixels with a needed
    observation of that day get their window's quantile, the rest stay NaN.

    Each window's values are sorted anew: sorting the baseline once and picking each window's
    values out of it in order (the same dates in every pixel) gave the same values but took
    twice as long (boolean indexing of the sorted stack costs more than a sort of ~10 values)."""
    out = np.full((*base.shape[:-1], mon_doy.size), np.nan, dtype=np.float32)
    if base.shape[-1] == 0 or mon_doy.size == 0 or out.size == 0:
        return out
    flat_base = base.reshape(-1, base.shape[-1])
    flat_out = out.reshape(-1, mon_doy.size)  # a view: out is new and contiguous
    flat_need = None if need is None else need.reshape(-1, mon_doy.size)
    for centre in np.unique(mon_doy):
        gap = np.abs(base_doy - centre)
        sel = np.flatnonzero(np.minimum(gap, 365.25 - gap) <= window_days)
        if not sel.size:
            continue
        cols = np.flatnonzero(mon_doy == centre)
        if flat_need is None:
            sub = flat_base[:, sel]
        else:
            rows = np.flatnonzero(flat_need[:, cols].any(axis=1))
            if not rows.size:
                continue
            sub = flat_base[np.ix_(rows, sel)]
        value = np.where(np.sum(~np.isnan(sub), axis=-1) >= min_obs, _nanquantile_np(sub, q=q), np.nan)
        if flat_need is None:
            flat_out[:, cols] = value[:, np.newaxis]
        else:
            flat_out[np.ix_(rows, cols)] = value[:, np.newaxis]
    return out
