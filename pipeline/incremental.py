"""One AOI's lazy graph built on its stored state (:mod:`pipeline.state`): only new dates and
changed composite windows are read and computed.

:func:`build_incremental` is what :func:`pipeline.workflow.prepare_aoi` uses when ``incremental``
is on. For the AOI's acquisition dates (solar-day groups of items) it looks up the stored
per-date indices; the dates not stored are read from the window cache, masked, turned into
indices, and written to the store by the same computation that detects change (``da.store``
into temporary files). Detection then runs over all dates, stored and new, exactly as on a
cube read from scratch (same float32 arithmetic, same order), so the outputs are those of a
full run. Composite windows (the reporting-period views and the named composites) whose items
and settings are unchanged are loaded; the others are computed from the dates they cover.
After the computation, :meth:`IncrementalPlan.assemble` merges stored and computed windows
and commits the new entries. Nothing is committed if the computation fails.

What a re-run with one more quarter reads: the new quarter's dates, plus the older dates of
a named composite window that the new quarter extends (a half-year or dry season already
begun); nothing else. Radar scores and, with a site model, the classifier's feature rasters
are still computed from all dates (they are not stored).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import pystac
import xarray as xr

from . import composites, preprocess
from .cache import resolve_cache_dir
from .composites import CompositeWindow
from .detect import spectral_indices
from .jobs import AOIJob
from .state import DATE_VARS, StateStore, composites_digest, dates_digest

log = logging.getLogger("pipeline")

__all__ = ["IncrementalPlan", "build_incremental", "supports_incremental"]

#: Bands the stored indices need (spectral_indices with swir22, and the SCL mask).
_NEEDED_BANDS = ("blue", "green", "red", "nir", "swir16", "swir22", "scl")
_RGB = ["red", "green", "blue"]


def supports_incremental(job: AOIJob) -> bool:
    """``incremental`` is on and the loaded bands give every stored variable."""
    return bool(job.cfg.incremental) and all(b in job.cfg.acquire.bands for b in _NEEDED_BANDS)


@dataclass
class _Windows:
    kind: str
    windows: list[CompositeWindow]
    keys: list[str]
    stored: dict[int, xr.Dataset]
    missing: list[int]


@dataclass
class IncrementalPlan:
    """What :func:`build_incremental` decided, and how to finish once the graph is computed."""

    store: StateStore
    views: _Windows
    named: _Windows | None
    periods: Sequence[tuple[Any, Any]]
    stats: dict[str, int] = field(default_factory=dict)

    def assemble(self, computed: Sequence[Any]) -> list[Any]:
        """Computed ``(flags, change, views, named, rasters, radar, stored)`` with the views and
        named composites completed from the store; new windows are staged and everything new
        committed."""
        out = list(computed)
        views = self._merge(self.views, out[2])
        out[2] = preprocess.as_period_composites(views, self.periods)
        if self.named is not None:
            out[3] = self._merge(self.named, out[3])
        self.store.commit()
        return out

    def discard(self) -> None:
        self.store.discard()

    def _merge(self, w: _Windows, computed: xr.Dataset | None) -> xr.Dataset:
        pieces: dict[int, xr.Dataset] = dict(w.stored)
        for j, i in enumerate(w.missing):
            assert computed is not None
            piece = computed.isel(composite=[j])
            self.store.write_composite(w.keys[i], piece)
            pieces[i] = piece
        parts = [pieces[i] for i in range(len(w.windows))]
        out = xr.concat(parts, dim="composite", coords="minimal", compat="override", join="override")
        out.attrs = dict(parts[0].attrs)
        return out


def build_incremental(
    job: AOIJob,
    masked: xr.Dataset,
    items: Sequence[pystac.Item],
    *,
    grid: str,
    open_masked: Any,
) -> tuple[xr.Dataset, xr.Dataset | None, xr.Dataset | None, Any, IncrementalPlan]:
    """The AOI's per-date indices, partial views and named composites, and the store writes.

    Parameters
    ----------
    job
        The AOI's job (``incremental`` on; see :func:`supports_incremental`).
    masked
        The lazy masked cube of all items (``time`` and ``item_ids`` coordinates; only its
        coordinates are used here).
    items
        The localised items behind ``masked``.
    grid
        :func:`pipeline.cache.grid_key` of the AOI's grid.
    open_masked
        ``open_masked(items) -> xr.Dataset``: the lazy masked cube of some items (the same
        function that built ``masked``).

    Returns
    -------
    indices, views, named, stored, plan
        ``indices``: lazy ``(time, y, x)`` ``ndvi bsi mndwi bright ndti nbr swir16 valid``
        over all dates (input of :func:`pipeline.detect.detect_change`); ``views`` and
        ``named``: lazy composites of the windows not stored (``None`` when none); ``stored``:
        a Delayed writing the new dates (``None`` when none); ``plan``: see
        :class:`IncrementalPlan`.
    """
    cfg = job.cfg
    gkey = grid
    store = StateStore(resolve_cache_dir(cfg.cache_dir), aoi_id=job.aoi_id, grid=gkey)
    ddig = dates_digest(cfg, grid=gkey)
    times = pd.DatetimeIndex(masked["time"].values)
    slot_ids = [str(s) for s in masked["item_ids"].values]
    by_id = {it.id: it for it in items}
    bands = list(cfg.acquire.bands)
    prints = [_fingerprint([by_id[i] for i in ids.split(";") if i in by_id], bands) for ids in slot_ids]
    keys = [store.date_key(p, ddig) for p in prints]
    old = [i for i, k in enumerate(keys) if store.has_date(k)]
    new = [i for i, k in enumerate(keys) if not store.has_date(k)]

    vdig = composites_digest(cfg, dates=ddig, bands=_RGB, min_valid_obs=cfg.preprocess.min_valid_obs)
    views = _plan_windows(store, "view", composites.period_windows(job.periods), times, prints, vdig)
    named_windows = composites.composite_windows(
        job.search_start, job.end, products=cfg.composites.products, dry_season_months=cfg.composites.dry_season_months
    )
    named = None
    if named_windows:
        ndig = composites_digest(cfg, dates=ddig, bands=cfg.composite_bands, min_valid_obs=cfg.composites.min_valid_obs)
        named = _plan_windows(store, "named", named_windows, times, prints, ndig)

    # The dates to read: the new ones, and those of composite windows to (re)compute.
    needed = set(new)
    for w in (views, named):
        if w is not None:
            for i in w.missing:
                needed |= set(_slots_in(w.windows[i], times))
    work_slots = sorted(needed)
    work = None
    if work_slots:
        work = open_masked([by_id[i] for s in work_slots for i in slot_ids[s].split(";") if i in by_id])
    spatial = {"y": masked["y"], "x": masked["x"]}

    parts = []
    stored_writes = None
    if new:
        assert work is not None
        pos = [work_slots.index(s) for s in new]
        fresh = _date_vars(work.isel(time=pos))
        shape = (masked.sizes["y"], masked.sizes["x"])
        targets = store.date_targets([keys[s] for s in new], [times[s] for s in new], [slot_ids[s] for s in new], shape)
        stored_writes = da.store([fresh[v].data for v in DATE_VARS], [targets[v] for v in DATE_VARS],  # type: ignore[misc]
                                 lock=False, compute=False)
        parts.append(fresh)
    if old:
        chunk = cfg.acquire.chunk_px
        loaded = store.open_dates([keys[s] for s in old], chunks=(chunk, chunk))
        ds = xr.Dataset({v: (("time", "y", "x"), loaded[v]) for v in DATE_VARS},
                        coords={"time": np.asarray(loaded["time"], dtype="datetime64[ns]"), **spatial})
        parts.append(ds)
    indices = xr.concat(parts, dim="time") if len(parts) > 1 else parts[0]
    indices = indices.sortby("time").chunk({"time": -1})
    if "spatial_ref" in masked.coords:
        indices = indices.assign_coords(spatial_ref=masked["spatial_ref"])

    lazy_views = lazy_named = None
    source = work if work is not None else masked
    if views.missing:
        lazy_views = composites.composite(
            source, bands=_RGB, windows=[views.windows[i] for i in views.missing], method=cfg.composites.method,
            min_valid_obs=cfg.preprocess.min_valid_obs, geomedian_eps=cfg.composites.geomedian_eps,
            geomedian_max_iters=cfg.composites.geomedian_max_iters)
    if named is not None and named.missing:
        lazy_named = composites.composite(
            source, bands=cfg.composite_bands, windows=[named.windows[i] for i in named.missing],
            method=cfg.composites.method, min_valid_obs=cfg.composites.min_valid_obs,
            geomedian_eps=cfg.composites.geomedian_eps, geomedian_max_iters=cfg.composites.geomedian_max_iters)

    reread = len(set(work_slots) - set(new))
    plan = IncrementalPlan(store=store, views=views, named=named, periods=job.periods, stats={
        "dates_computed": len(new), "dates_reused": len(old), "dates_reread_for_composites": reread,
        "composites_computed": len(views.missing) + (len(named.missing) if named else 0),
        "composites_reused": len(views.stored) + (len(named.stored) if named else 0),
    })
    log.info("AOI %s: state: %d date(s) to compute, %d stored; %d composite window(s) to compute "
             "(%d older date(s) re-read for them), %d stored", job.aoi_id, len(new), len(old),
             plan.stats["composites_computed"], reread, plan.stats["composites_reused"])
    return indices, lazy_views, lazy_named, stored_writes, plan


def _fingerprint(items: Sequence[pystac.Item], bands: Sequence[str]) -> str:
    """What identifies a date's pixels: its item ids and, per band, the href read (the window
    cache's file or the source's), with size and modification time for local files. Item ids
    alone are not enough: synthetic scenarios reuse real-looking ids for other pixels, and a
    static catalog can be rewritten in place."""
    parts = []
    for item in items:
        parts.append(item.id)
        for band in bands:
            asset = item.assets.get(band)
            if asset is None:
                continue
            href = asset.href
            path = href.removeprefix("file://") if href.startswith("file://") or "://" not in href else None
            if path is not None:
                try:
                    st = os.stat(path)
                    href = f"{href}|{st.st_size}|{st.st_mtime_ns}"
                except OSError:
                    pass
            parts.append(f"{band}={href}")
    return ";".join(parts)


def _date_vars(masked: xr.Dataset) -> xr.Dataset:
    """The stored per-date variables of a masked cube: indices, ``swir16``, ``valid``."""
    idx = spectral_indices(masked)
    out = xr.Dataset({v: idx[v] for v in idx.data_vars})
    out["swir16"] = masked["swir16"].astype("float32")
    out["valid"] = masked["valid"]
    keep = {"time", "y", "x"}
    return out.drop_vars([c for c in out.coords if c not in keep])[list(DATE_VARS)]


def _slots_in(window: CompositeWindow, times: pd.DatetimeIndex) -> list[int]:
    # the same rule as composites.composite
    sel = (times >= pd.Timestamp(window.start)) & (times < pd.Timestamp(window.end) + pd.Timedelta(days=1))
    return [int(i) for i in np.flatnonzero(sel)]


def _plan_windows(store: StateStore, kind: str, windows: list[CompositeWindow], times: pd.DatetimeIndex,
                  slot_ids: list[str], digest: str) -> _Windows:
    keys, stored, missing = [], {}, []
    for i, w in enumerate(windows):
        ids = [slot_ids[s] for s in _slots_in(w, times)]
        key = store.composite_key(kind, w.label, ids, digest)
        keys.append(key)
        ds = store.read_composite(key)
        if ds is None:
            missing.append(i)
        else:
            stored[i] = ds
    return _Windows(kind=kind, windows=windows, keys=keys, stored=stored, missing=missing)
