"""Detection throughput, parallel speed-up and memory as the AOI grows.

Prints ratios taken in one run (absolute numbers depend on the machine):

- ``pipeline / numpy``: pixels x dates per second of the pipeline's lazy detect stage
  (``score_change`` -> ``confirm_change`` -> ``flag_excavation`` through Dask, one thread)
  against a fused single-pass NumPy reference of the same rules (:func:`fused_numpy_full`);
- ``speed-up``: the same graph on 2 threads against 1;
- ``peak memory``: peak RSS of a subprocess running detect on a 16x larger AOI (same chunks)
  against the base AOI: flat memory means out-of-core, chunked processing.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

import dask
import numpy as np
import pandas as pd

from pipeline import detect
from pipeline.config import DetectParams
from pipeline.detect.baselines import _nanquantile_np
from pipeline.detect.confirm import _confirm_np
from pipeline.testing import make_scene

PARAMS = DetectParams(baseline_days=365)
MON_START = dt.date(2022, 1, 1) + dt.timedelta(days=10 * 20)


def _graph(scenes):  # type: ignore[no-untyped-def]
    """The detect stage as a run builds it (:func:`pipeline.detect.detect_change`)."""
    flags, _ = detect.detect_change(scenes, start=MON_START, params=PARAMS)
    return flags


def fused_numpy(scenes) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The first single-pass NumPy reference (2026-11), kept for comparison with the tables of
    then: the rules of that time (no season-matched baseline, no widespread-date test, no
    greener-gravel allowance, no re-greening), ``np.nanmedian``. :func:`fused_numpy_full` is
    the reference of the rules the detect stage applies now."""
    b, g, r, n, s1 = (scenes[k].values for k in ("blue", "green", "red", "nir", "swir16"))
    valid = scenes["valid"].values
    nbase = 20
    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi = (n - r) / (n + r)
        base = _nanquantile_np(np.moveaxis(ndvi[:nbase], 0, -1), q=PARAMS.baseline_quantile)
        mndwi = (g - s1) / (g + s1)
        bsi = ((s1 + r) - (n + b)) / ((s1 + r) + (n + b))
        bright = (r + n + s1) / 3
        base_water = np.nanmax(mndwi[:nbase], axis=0)
        base_swir = np.nanmedian(s1[:nbase], axis=0)
        m = slice(nbase, None)
        veg = (base - ndvi[m]) >= PARAMS.ndvi_drop_min
        bare = (ndvi[m] <= PARAMS.bare_ndvi_max) & (bsi[m] >= PARAMS.bare_bsi_min) & (bright[m] >= PARAMS.bright_min)
        water = mndwi[m] >= PARAMS.water_mndwi_min
        was_water = base_water >= PARAMS.water_mndwi_min
        soil = (base <= PARAMS.bare_ndvi_max) & ~was_water & (np.abs(s1[m] - base_swir) >= PARAMS.swir_change_min)
        ev = ((veg & (bare | water)) | (water & ~was_water) | soil) & valid[m]
    days = np.arange(ev.shape[0], dtype=float)
    ev_t, ok_t = np.moveaxis(ev, 0, -1), np.moveaxis(valid[m], 0, -1)
    first, _, n_obs, n_clear, _, confirmed, *_ = _confirm_np(ev_t, ok_t, days=days, k=PARAMS.min_confirmations)
    return confirmed & (n_obs / np.maximum(n_clear, 1) >= PARAMS.min_persistence_frac)


def fused_numpy_full(bands: dict[str, np.ndarray], valid: np.ndarray, times: np.ndarray, *,
                     params: DetectParams, start: dt.date) -> dict[str, np.ndarray]:
    """Single-pass NumPy reference of every rule the detect stage applies with ``params``: the
    peak and season-matched baselines, the greener-gravel allowance and its strict part, the
    SWIR change of bare ground, re-greening, the widespread-evidence test and the persistence
    window, on whole arrays in ``(time, y, x)`` order without xarray or Dask. The kernels of the
    quantiles, the index ratios and the confirmation are the pipeline's own; the rules' arithmetic is written
    out here. Returns the flags before the opening (``flags``) and the confirmation's
    :data:`pipeline.detect.confirm.CHANGE_VARS`. Supports the thresholds ``fixed``, no NDTI
    test, no radar (what :func:`pipeline.detect.stage.change_rasters` runs blockwise)."""
    from pipeline.detect.baselines import _nanmedian_np, _seasonal_quantile_np
    from pipeline.detect.confirm import CHANGE_VARS, kernel_options
    from pipeline.detect.indices import _ratio_np
    from pipeline.detect.stage import confirm_options

    assert params.threshold_method == "fixed" and params.gravel_ndti_max is None
    p = params
    t = pd.DatetimeIndex(times)
    base_sel = (t < pd.Timestamp(start)) & (t >= pd.Timestamp(start) - pd.Timedelta(days=p.baseline_days))
    bi, mi = np.flatnonzero(base_sel), np.flatnonzero(t >= pd.Timestamp(start))
    b, g, r, n, s1 = (bands[k] for k in ("blue", "green", "red", "nir", "swir16"))

    with np.errstate(invalid="ignore", divide="ignore"):
        ndvi, mndwi = _ratio_np(n - r, n + r), _ratio_np(g - s1, g + s1)
        sr, nb = s1 + r, n + b
        bsi, bright = _ratio_np(sr - nb, sr + nb), (r + n + s1) / 3
        base_ndvi = np.moveaxis(ndvi[bi], 0, -1)  # (y, x, time): the kernels' layout
        base = _nanquantile_np(base_ndvi, q=p.baseline_quantile)
        ok, ndvi_m = valid[mi], ndvi[mi]
        loss = (base - ndvi_m).astype(np.float32) >= np.float32(p.ndvi_drop_min)
        if p.season_drop_min is not None:
            doy = t.day_of_year.to_numpy()
            seasonal = np.moveaxis(_seasonal_quantile_np(
                base_ndvi, np.moveaxis(loss & ok, 0, -1), base_doy=doy[bi], mon_doy=doy[mi],
                q=p.baseline_quantile, window_days=p.season_window_days, min_obs=p.season_min_obs), -1, 0)
            loss &= ((seasonal - ndvi_m) >= p.season_drop_min) | np.isnan(seasonal)
        loss &= ok
        regrowth = (ndvi_m >= base - p.regrowth_ndvi_margin) & ok
        was_water = (mndwi[bi] >= p.water_mndwi_min).any(axis=0)
        was_bare = (base <= p.bare_ndvi_max) & ~was_water
        water = mndwi[mi] >= p.water_mndwi_min
        gravel = (ndvi_m <= p.gravel_ndvi_max) & (bsi[mi] >= p.bare_bsi_min) & (bright[mi] >= p.bright_min)
        new_water = water & ~was_water
        evidence = (loss & (gravel | water)) | new_water
        strict = (loss & ((gravel & (ndvi_m <= p.bare_ndvi_max)) | water)) | new_water
        if p.swir_change_min is not None:
            base_swir = _nanmedian_np(np.moveaxis(s1[bi], 0, -1))
            disturbed = was_bare & (np.abs(s1[mi] - base_swir) >= p.swir_change_min)
            evidence, strict = evidence | disturbed, strict | disturbed
        evidence, strict, regrowth = evidence & ok, strict & ok, regrowth & ~was_bare
        if p.widespread_loss_max_frac is not None:
            size = ok.shape[1] * ok.shape[2]
            strict &= evidence
            wide = (evidence.sum(axis=(1, 2)) / size > p.widespread_loss_max_frac)[:, None, None]
            strict_wide = (strict.sum(axis=(1, 2)) / size > p.widespread_loss_max_frac)[:, None, None]
            judged = ok & ~strict_wide & ~(wide & evidence & ~strict)
            evidence, ok = np.where(wide, strict, evidence) & judged, judged
        regrowth &= ok
    days = (t[mi] - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    outs = _confirm_np(*(np.moveaxis(a, 0, -1) for a in (evidence, ok, regrowth)),
                       **kernel_options(days, **confirm_options(p)))
    change = dict(zip(CHANGE_VARS, outs, strict=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = change["n_obs"] / np.where(change["n_clear_after"] > 0, change["n_clear_after"], np.nan)
    change["flags"] = change["confirmed"] & (frac >= p.min_persistence_frac) & ~change["regrown"]
    return change


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def lazy_scene(size: int, *, n_time: int = 40, chunk: int = 256):  # type: ignore[no-untyped-def]
    """A scene cube generated chunk by chunk (Dask random), never whole in memory."""
    import dask.array as da
    import pandas as pd
    import xarray as xr

    from pipeline.testing import BANDS, SPECTRA

    shape, chunks = (n_time, size, size), (n_time, chunk, chunk)
    rs = da.random.RandomState(0)
    pit = da.zeros(shape, chunks=chunks, dtype=bool)
    yy = da.arange(size, chunks=chunk)[None, :, None]
    xx = da.arange(size, chunks=chunk)[None, None, :]
    tt = da.arange(n_time, chunks=n_time)[:, None, None]
    pit = (yy % 97 < 12) & (xx % 89 < 15) & (tt >= 25)
    data = {}
    for i, band in enumerate(BANDS):
        base = SPECTRA["vegetation"][i] + (SPECTRA["gravel"][i] - SPECTRA["vegetation"][i]) * pit
        data[band] = (("time", "y", "x"), (base + rs.normal(0, 0.005, shape, chunks=chunks)).astype("float32"))
    data["valid"] = (("time", "y", "x"), rs.random_sample(shape, chunks=chunks) > 0.1)
    times = pd.date_range("2022-01-01", periods=n_time, freq="10D")
    return xr.Dataset(data, coords={"time": times, "y": np.arange(size) * -10.0, "x": np.arange(size) * 10.0})


def _peak_rss_mb(size: int) -> float:
    code = (
        "import resource, dask, benchmarks.bench_detect as b;"
        "dask.config.set(scheduler='threads', num_workers=1);"
        f"b._graph(b.lazy_scene({size})).sum().compute();"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> dict[str, float]:
    shape = (40, 512, 512)
    eager, _ = make_scene(shape, pit=np.s_[100:140, 200:260])
    lazy, _ = make_scene(shape, pit=np.s_[100:140, 200:260], chunks={"time": -1, "y": 256, "x": 256})
    px = shape[0] * shape[1] * shape[2]
    bands = {b: eager[b].values for b in ("blue", "green", "red", "nir", "swir16")}

    def reference() -> dict[str, np.ndarray]:
        return fused_numpy_full(bands, eager["valid"].values, eager["time"].values, params=PARAMS, start=MON_START)

    t_np = min(_timed(reference) for _ in range(2))
    with dask.config.set(scheduler="threads", num_workers=1):
        t_1 = min(_timed(lambda: _graph(lazy).compute()) for _ in range(2))
    with dask.config.set(scheduler="threads", num_workers=2):
        t_2 = min(_timed(lambda: _graph(lazy).compute()) for _ in range(2))
    np.testing.assert_array_equal(
        _graph(eager).values | ~reference()["flags"], np.ones(shape[1:], bool)
    )  # the pipeline's flags are the reference's minus the speckle opening
    small, large = _peak_rss_mb(512), _peak_rss_mb(2048)
    result = {
        "numpy_pixel_dates_per_s": round(px / t_np),
        "pipeline_pixel_dates_per_s_1thread": round(px / t_1),
        "pipeline_over_numpy": round(t_np / t_1, 3),
        "speedup_2_threads": round(t_1 / t_2, 3),
        "peak_rss_mb_512px": round(small, 1),
        "peak_rss_mb_2048px": round(large, 1),
        "peak_memory_ratio_16x_area": round(large / small, 3),
    }
    return result


if __name__ == "__main__":
    res = main()
    print(json.dumps(res, indent=2))
