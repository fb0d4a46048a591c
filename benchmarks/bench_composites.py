"""Composites: the geometric median against the per-band median, in time and in fidelity.

Prints ratios taken in one run (absolute numbers depend on the machine):

- ``geomedian / median time``: :func:`pipeline.composites.composite` with ``method="geomedian"``
  (geomad, single-threaded) against ``method="median"`` on the same lazy cube, one Dask thread;
- fidelity on a window whose true surface is known: savanna under residual haze that the cloud
  mask missed (a quarter of the clear observations brightened and flattened towards grey), with
  sensor noise. Each method's composite is compared with the clean spectrum: root-mean-square
  reflectance error over the bands, and the absolute error of the composite's NDVI (what the
  detector's baseline thinks of the place).
"""

from __future__ import annotations

import datetime as dt
import time

import dask
import numpy as np

from pipeline import composites
from pipeline.composites import CompositeWindow
from pipeline.testing import BANDS, SPECTRA, make_scene

#: Share of clear observations carrying residual haze the SCL mask missed.
HAZE_FRACTION = 0.25
#: Haze model: observed = (1 - HAZE_WEIGHT) * surface + HAZE_WEIGHT * HAZE_GREY.
HAZE_WEIGHT, HAZE_GREY = 0.35, 0.30


def hazy_scene(shape: tuple[int, int, int] = (24, 512, 512), *, chunks: dict[str, int] | None = None):  # type: ignore[no-untyped-def]
    """A savanna scene (no pit) with 20 % flagged cloud and unflagged haze on some clear dates."""
    scenes, _ = make_scene(shape, pit=np.s_[0:0, 0:0], clouds=0.2, noise=0.01, seed=11)
    rng = np.random.default_rng(12)
    hazy = (rng.random(shape) < HAZE_FRACTION) & scenes["valid"].values
    for band in BANDS:
        values = scenes[band].values
        scenes[band].values = np.where(hazy, (1 - HAZE_WEIGHT) * values + HAZE_WEIGHT * HAZE_GREY, values)
    return scenes.chunk(chunks) if chunks else scenes


def _errors(out, truth: np.ndarray) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    stack = np.stack([out[b].isel(composite=0).values for b in BANDS], axis=-1)
    rmse = float(np.sqrt(np.nanmean((stack - truth) ** 2)))
    ndvi = (stack[..., 3] - stack[..., 2]) / (stack[..., 3] + stack[..., 2])
    true_ndvi = (truth[3] - truth[2]) / (truth[3] + truth[2])
    return rmse, float(np.nanmean(np.abs(ndvi - true_ndvi)))


def main() -> dict[str, float]:
    scenes = hazy_scene(chunks={"time": -1, "y": 256, "x": 256})
    times = scenes["time"].values
    window = [CompositeWindow("semiannual", dt.date(2022, 1, 1), np.datetime64(times[-1], "D").astype(dt.date))]
    truth = np.asarray(SPECTRA["vegetation"], dtype="float64")
    timings, errors = {}, {}
    for method in ("median", "geomedian"):
        graph = composites.composite(scenes, bands=BANDS, windows=window, method=method, min_valid_obs=3)
        with dask.config.set(scheduler="threads", num_workers=1):
            best, out = np.inf, None
            for _ in range(2):
                t0 = time.perf_counter()
                out = graph.compute()
                best = min(best, time.perf_counter() - t0)
        timings[method], errors[method] = best, _errors(out, truth)
    px_dates = scenes.sizes["time"] * scenes.sizes["y"] * scenes.sizes["x"]
    return {
        "median_pixel_dates_per_s": round(px_dates / timings["median"]),
        "geomedian_pixel_dates_per_s": round(px_dates / timings["geomedian"]),
        "geomedian_over_median_time_ratio": round(timings["geomedian"] / timings["median"], 3),
        "median_rmse_reflectance": round(errors["median"][0], 4),
        "geomedian_rmse_reflectance": round(errors["geomedian"][0], 4),
        "geomedian_over_median_rmse_ratio": round(errors["geomedian"][0] / errors["median"][0], 3),
        "median_ndvi_abs_error": round(errors["median"][1], 4),
        "geomedian_ndvi_abs_error": round(errors["geomedian"][1], 4),
    }


if __name__ == "__main__":
    for key, value in main().items():
        print(f"{key:36s} {value}")
