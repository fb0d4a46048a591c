"""The sites stage's per-site summaries (``python -m benchmarks bench_sites``).

:func:`pipeline.sites.polygonise_flags` summarises each site inside its bounding box
(:func:`scipy.ndimage.find_objects`). Before 2026-12-02 it built a whole-grid mask per site,
so the stage grew with sites x pixels. Both are timed here on the same random field of
rectangular excavations: the old cost is the same call with the whole grid as the box, which
gives the same attributes (``tests/test_sites.py`` checks it value for value).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import numpy as np
import xarray as xr
from scipy import ndimage

from pipeline import sites
from pipeline.config import SitesParams

#: (grid side in pixels, excavations drawn): a 160 km2 AOI at 10 m is about 1 265 px a side.
CASES = ((320, 40), (1280, 300), (4000, 600))


def _field(side: int, n: int, seed: int = 0) -> tuple[xr.DataArray, xr.Dataset]:
    rng = np.random.default_rng(seed)
    mask = np.zeros((side, side), bool)
    for _ in range(n):
        y, x = rng.integers(0, side - 12, 2)
        mask[y:y + rng.integers(4, 12), x:x + rng.integers(4, 12)] = True
    coords = {"y": 900000 - 10.0 * (np.arange(side) + 0.5), "x": 500000 + 10.0 * (np.arange(side) + 0.5)}
    first = np.where(mask, 19000 + rng.integers(0, 900, mask.shape), np.nan)
    change = xr.Dataset({
        "first_change": (("y", "x"), first),
        "last_evidence": (("y", "x"), first + 100),
        "n_obs": (("y", "x"), rng.integers(0, 12, mask.shape).astype("int16")),
        "n_clear_after": (("y", "x"), np.full(mask.shape, 12, "int16")),
    }, coords=coords)
    return xr.DataArray(mask, dims=("y", "x"), coords=coords), change


def main() -> list[dict[str, Any]]:
    rows = []
    params = SitesParams(min_area_m2=0, merge_distance_m=0)
    kw = {"aoi_id": "b", "crs": "EPSG:32629", "min_confirmations": 3, "params": params}
    for side, n in CASES:
        flags, change = _field(side, n)
        labels = sites._group_pixels(np.asarray(flags.values), merge_px=0)
        pixels = sites._SitePixels(change, transform=sites.grid_transform(flags), last_period_start=dt.date(2024, 1, 1))
        boxes = ndimage.find_objects(labels)
        whole = (slice(0, side), slice(0, side))
        t0 = time.perf_counter()
        old = [pixels.attributes(whole, labels == lab, **kw) for lab in range(1, len(boxes) + 1)]
        t1 = time.perf_counter()
        new = [pixels.attributes(box, labels[box] == lab, **kw) for lab, box in enumerate(boxes, start=1)]
        t2 = time.perf_counter()
        assert old == new
        rows.append({"name": f"site summaries, {side}x{side} px, {len(boxes)} sites: whole-grid masks",
                     "value": round(t1 - t0, 3), "unit": "s"})
        rows.append({"name": f"site summaries, {side}x{side} px, {len(boxes)} sites: bounding boxes",
                     "value": round(t2 - t1, 3), "unit": "s", "ratio": round((t2 - t1) / (t1 - t0), 4)})
    return rows


if __name__ == "__main__":
    from benchmarks.__main__ import as_rows, format_rows

    print(format_rows("bench_sites", as_rows(main())))
