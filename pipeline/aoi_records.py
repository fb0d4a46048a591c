"""What one AOI's computed arrays say, as the records of its :class:`~pipeline.workflow.AOIResult`:
the thresholds applied, the named composites (written as COGs when configured), the
before/after and same-season views. Eager, after the AOI's one computation
(:func:`pipeline.workflow.finish_aoi`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from . import acquire, composites, detect
from .config import MonitorConfig
from .io import BackgroundWrites
from .jobs import AOIGrid

__all__ = ["COMPOSITES_DIR", "applied_thresholds", "composite_records", "rgb_view", "season_views"]

#: Sub-folder of the output folder holding the named composites (Cloud-Optimised GeoTIFFs).
COMPOSITES_DIR = "composites"


def applied_thresholds(change: xr.Dataset, cfg: MonitorConfig) -> dict[str, dict[str, Any]]:
    """The thresholds applied (:data:`pipeline.detect.APPLIED_THRESHOLDS` in ``change``), each
    ``{"value", "unit", "method"}``."""
    methods = {"ndvi_drop_threshold": cfg.detect.threshold_method, "vh_drop_threshold_db": cfg.radar.threshold_method}
    return {
        name: {"value": round(float(change[name]), 4), "unit": unit, "method": methods[name]}
        for name, unit in detect.APPLIED_THRESHOLDS.items()
        if name in change
    }


def composite_records(named: xr.Dataset, cfg: MonitorConfig, *, aoi_id: str, grid: AOIGrid,
                      writes: BackgroundWrites | None = None) -> list[dict[str, Any]]:
    """Write the AOI's computed named composites (when configured) and describe them.

    ``writes``: the files are queued there (written in the background; the run waits for them
    before its manifest) instead of written before this returns.
    """
    files: list[Path | None] = [None] * named.sizes["composite"]
    if cfg.composites.write:
        out_dir = cfg.out_dir / COMPOSITES_DIR
        files = list(composites.composite_paths(named, out_dir=out_dir, aoi_id=aoi_id))
        if writes is None:
            _write_composites(named, out_dir, aoi_id, cfg.gdal_options)
        else:
            writes.submit(_write_composites, named, out_dir, aoi_id, cfg.gdal_options)
    records = []
    for i, path in enumerate(files):
        one = named.isel(composite=i)
        count = np.asarray(one["valid_count"].values)[grid.aoi_mask]
        records.append({
            "product": str(one["product"].item()),
            "start": pd.Timestamp(one["start"].values).date().isoformat(),
            "end": pd.Timestamp(one["end"].values).date().isoformat(),
            "method": cfg.composites.method,
            "clear_obs_median": float(np.median(count)) if count.size else 0.0,
            "filled_frac": round(float((count >= cfg.composites.min_valid_obs).mean()), 4) if count.size else 0.0,
            "file": None if path is None else f"{COMPOSITES_DIR}/{path.name}",
        })
    return records


def _write_composites(named: xr.Dataset, out_dir: Path, aoi_id: str, gdal_options: Mapping[str, str]) -> None:
    with acquire.gdal_env(gdal_options):  # as the run's own thread has them (a new thread has none)
        composites.write_composites(named, out_dir=out_dir, aoi_id=aoi_id)


def rgb_view(views: xr.Dataset, index: int) -> np.ndarray:
    """Red, green and blue of the ``index``-th reporting period's view, float32 ``(y, x, 3)``."""
    rgb = np.stack([views[b].isel(period=index).values for b in ("red", "green", "blue")], axis=-1)
    return rgb.astype("float32")


def season_views(named: xr.Dataset, *, product: composites.WindowProduct) -> list[composites.CompositeView]:
    """The computed named composites of ``product``, red/green/blue only, oldest first (none
    when ``composites.bands`` leaves a display band out)."""
    if not all(b in named for b in ("red", "green", "blue")):
        return []
    views = []
    for i in range(named.sizes["composite"]):
        one = named.isel(composite=i)
        if str(one["product"].item()) != product:
            continue
        rgb = np.stack([np.asarray(one[b].values) for b in ("red", "green", "blue")], axis=-1).astype("float32")
        views.append(composites.CompositeView(
            product=product, start=pd.Timestamp(one["start"].values).date(),
            end=pd.Timestamp(one["end"].values).date(), rgb=rgb,
        ))
    return sorted(views, key=lambda v: (v.end, v.start))
