"""One AOI's lazy graph built on its stored state (:mod:`pipeline.state`): only new dates and
changed composite windows are read and computed.

:func:`build_incremental` is what :func:`pipeline.workflow.prepare_aoi` uses when ``incremental``
is on. For the AOI's acquisition dates (solar-day groups of items) it looks up the stored
masked cube; the dates not stored are read from the window cache and masked, and written to
the store (one new block, temporary files) by the tasks that pass each masked chunk on to
detection, in the same computation. The cube over all dates, stored and new, is then exactly the cube a full
run reads from scratch (same values; in larger spatial chunks when it holds fewer dates,
:func:`pipeline.acquire.graph_chunk_px`), so detection, the composites and the
classifier's feature rasters run on it unchanged and the outputs are those of a full run.
Composite windows (the reporting-period views and the named composites) whose items and
settings are unchanged are loaded; the others are computed from the cube, stored dates
included: nothing older is re-read from the imagery. After the computation,
:meth:`IncrementalPlan.assemble` merges stored and computed windows and commits the new
entries. Nothing is committed if the computation fails.

What a re-run with one more quarter reads from the imagery: the new quarter's dates; the
older ones come from the store, one task per variable and spatial chunk. Radar scores are
still computed from all radar dates (they are not stored).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pystac
import xarray as xr
from dask.array.core import normalize_chunks

from . import acquire, composites, preprocess
from .cache import resolve_cache_dir
from .composites import CompositeWindow
from .detect.blockwise import Resume
from .detect.confirm import ConfirmState
from .jobs import AOIJob
from .preprocess import observation_windows
from .state import StateStore, composites_digest, dates_digest, detection_digest

log = logging.getLogger("pipeline")

__all__ = ["DetectionPlan", "IncrementalPlan", "build_incremental", "supports_incremental"]

_RGB = ["red", "green", "blue"]


def supports_incremental(job: AOIJob) -> bool:
    """``incremental`` is on and the cube can be masked (``scl`` is loaded)."""
    return bool(job.cfg.incremental) and "scl" in job.cfg.acquire.bands


@dataclass
class _Windows:
    kind: str
    windows: list[CompositeWindow]
    keys: list[str]
    stored: dict[int, xr.Dataset]
    missing: list[int]


@dataclass(frozen=True)
class DetectionPlan:
    """How detection runs on the cube of :func:`build_incremental`: on the dates at ``take``
    (positions in that cube: the baseline's and the monitoring dates after the stored state),
    from the stored confirmation state and keeping the new one (``resume``; see
    :func:`pipeline.detect.blockwise.change_blockwise`)."""

    take: list[int]
    resume: Resume


@dataclass
class IncrementalPlan:
    """What :func:`build_incremental` decided, and how to finish once the graph is computed."""

    store: StateStore
    views: _Windows
    named: _Windows | None
    periods: Sequence[tuple[Any, Any]]
    stats: dict[str, int | str] = field(default_factory=dict)
    detection: DetectionPlan | None = None
    """Detection resumed from (and kept in) the state, ``None``: detect on the whole cube."""

    def assemble(self, computed: Sequence[Any]) -> list[Any]:
        """Computed ``(flags, change, views, named, rasters, radar)`` with the views and
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
    not_resumable: str | None,
    all_dates: bool = True,
) -> tuple[xr.Dataset, xr.Dataset | None, xr.Dataset | None, IncrementalPlan]:
    """The AOI's masked cube over all dates from the store and the new dates, and the partial
    views and named composites.

    Parameters
    ----------
    job
        The AOI's job (``incremental`` on; see :func:`supports_incremental`).
    masked
        The lazy masked cube of all items (``time`` and ``item_ids`` coordinates; only its
        coordinates, variables and chunks are used here, none of its data).
    items
        The localised items behind ``masked``.
    grid
        :func:`pipeline.cache.grid_key` of the AOI's grid.
    open_masked
        ``open_masked(items, chunk_px) -> xr.Dataset``: the lazy masked cube of some items in
        spatial chunks of ``chunk_px`` (the same function that built ``masked``).
    not_resumable
        Why detection cannot resume from a stored confirmation state
        (:func:`pipeline.detect.not_resumable`); ``None``: it can, and
        :attr:`IncrementalPlan.detection` then says on which dates and from which state.
    all_dates
        The cube must hold every date (the site classifier's feature rasters read them all);
        ``False``: only the dates detection and the composites to compute use.

    Returns
    -------
    cube, views, named, plan
        ``cube``: lazy, the variables and dates of ``masked`` (input of
        :func:`pipeline.detect.detect_change` and the feature rasters), stored dates read
        from the state (with ``resumable`` and not ``all_dates``: only the dates detection and
        the composites to compute use, the new ones always), in spatial chunks as large as
        hold no more pixel-dates than one of ``masked`` (:func:`pipeline.acquire.graph_chunk_px`:
        fewer tasks when it holds fewer dates; values do not depend on chunks); the tasks that mask the new
        dates' chunks also write them to the state (committed by
        :meth:`IncrementalPlan.assemble`); ``views`` and ``named``: lazy composites of the
        windows not stored (``None`` when none); ``plan``: see :class:`IncrementalPlan`.
    """
    cfg = job.cfg
    store = StateStore(resolve_cache_dir(cfg.cache_dir), aoi_id=job.aoi_id, grid=grid)
    ddig = dates_digest(cfg, grid=grid)
    times = pd.DatetimeIndex(masked["time"].values)
    slot_ids = [str(s) for s in masked["item_ids"].values]
    by_id = {it.id: it for it in items}
    bands = list(cfg.acquire.bands)
    prints = [_fingerprint([by_id[i] for i in ids.split(";") if i in by_id], bands) for ids in slot_ids]
    keys = [store.date_key(p, ddig) for p in prints]
    where = store.locate(keys)
    new = [i for i, loc in enumerate(where) if loc is None]

    variables = [str(v) for v in masked.data_vars]
    dtypes = {v: str(masked[v].dtype) for v in variables}
    shape = (masked.sizes["y"], masked.sizes["x"])

    vdig = composites_digest(cfg, dates=ddig, bands=_RGB, min_valid_obs=cfg.preprocess.min_valid_obs)
    views = _plan_windows(store, "view", composites.period_windows(job.periods), times, prints, vdig)
    named_windows = composites.composite_windows(
        job.search_start, job.end, products=cfg.composites.products, dry_season_months=cfg.composites.dry_season_months
    )
    named = None
    if named_windows:
        ndig = composites_digest(cfg, dates=ddig, bands=cfg.composite_bands, min_valid_obs=cfg.composites.min_valid_obs)
        named = _plan_windows(store, "named", named_windows, times, prints, ndig)

    resumable = not_resumable is None
    source, n_resumed, n_stepped, kept = None, 0, 0, None
    det_dates: list[int] = []
    if resumable:
        source, det_dates, n_resumed, n_stepped, kept = _plan_detection(
            job, store, masked, keys, times, dates_digest=ddig)
    if resumable and not all_dates:
        used = set(det_dates) | set(new)
        for w in (views, named):
            if w is not None:
                for i in w.missing:
                    used.update(_slots_in(w.windows[i], times))
        dates = sorted(used)
    else:
        dates = list(range(len(keys)))

    # a first run holds every date: side == chunk_px, the chunks of ``masked``
    side = acquire.graph_chunk_px(cfg.acquire.chunk_px, n_dates=len(keys), n_graph_dates=len(dates))
    chunks = normalize_chunks((side, side), shape)
    detection = None
    if resumable:
        keep = None if kept is None else store.new_detection(kept, shape, ConfirmState.FIELDS, chunks=chunks)
        detection = Resume(source=source, writer=keep)

    fresh = writer = None
    if new:
        # every date new (a first run): the whole cube is the new dates' cube; no second graph
        fresh = masked if len(new) == len(keys) else open_masked(
            [by_id[i] for s in new for i in slot_ids[s].split(";") if i in by_id], side)
        # same solar-day grouping and spatial chunks as the cube (same function, same grid)
        assert fresh.sizes["time"] == len(new) and fresh[variables[0]].data.chunks[1:] == chunks
        writer = store.new_block([keys[s] for s in new], [times[s] for s in new], [slot_ids[s] for s in new],
                                 shape, dtypes, chunks=chunks)
    arrays = store.open_cube([where[d] for d in dates], dtypes=dtypes, chunks=chunks, writer=writer,
                             new=None if fresh is None else {v: fresh[v].data for v in variables})
    data = {v: xr.Variable(("time", "y", "x"), arrays[v], attrs=masked[v].attrs) for v in variables}
    coords: dict[str, Any] = {"time": masked["time"].values[dates], "y": masked["y"], "x": masked["x"],
                              "item_ids": ("time", np.asarray(slot_ids, dtype=object)[dates])}
    if "spatial_ref" in masked.coords:
        coords["spatial_ref"] = masked["spatial_ref"]
    cube = xr.Dataset(data, coords=coords, attrs=masked.attrs)

    lazy_views = lazy_named = None
    if views.missing:
        lazy_views = composites.composite(
            cube, bands=_RGB, windows=[views.windows[i] for i in views.missing], method=cfg.composites.method,
            min_valid_obs=cfg.preprocess.min_valid_obs, geomedian_eps=cfg.composites.geomedian_eps,
            geomedian_max_iters=cfg.composites.geomedian_max_iters)
    if named is not None and named.missing:
        lazy_named = composites.composite(
            cube, bands=cfg.composite_bands, windows=[named.windows[i] for i in named.missing],
            method=cfg.composites.method, min_valid_obs=cfg.composites.min_valid_obs,
            geomedian_eps=cfg.composites.geomedian_eps, geomedian_max_iters=cfg.composites.geomedian_max_iters)

    position = {d: k for k, d in enumerate(dates)}
    plan = IncrementalPlan(store=store, views=views, named=named, periods=job.periods, stats={
        "dates_computed": len(new), "dates_reused": len(keys) - len(new),
        "dates_read_from_state": len(dates) - len(new), "blocks_read": store.n_blocks(where[d] for d in dates),
        "composites_computed": len(views.missing) + (len(named.missing) if named else 0),
        "composites_reused": len(views.stored) + (len(named.stored) if named else 0),
        "chunk_px": int(max(chunks[0])),
    }, detection=None if detection is None else DetectionPlan([position[d] for d in det_dates], detection))
    if detection is not None:
        plan.stats["detection_dates_resumed"] = n_resumed
        plan.stats["detection_dates_stepped"] = n_stepped
    elif not_resumable is not None:
        plan.stats["detection_not_resumable"] = not_resumable
    log.info("AOI %s: state: %d date(s) to compute, %d stored (%d read, %d block(s)); %d composite window(s) to "
             "compute, %d stored; %s", job.aoi_id, len(new), plan.stats["dates_reused"],
             plan.stats["dates_read_from_state"], plan.stats["blocks_read"], plan.stats["composites_computed"],
             plan.stats["composites_reused"], _detection_note(store, not_resumable, n_resumed, n_stepped))
    return cube, lazy_views, lazy_named, plan


def _detection_note(store: StateStore, not_resumable: str | None, n_resumed: int, n_stepped: int) -> str:
    """What the state log line says of detection: where it resumes, or why it runs over every
    monitoring date (an outside tester could not tell a changed ``detect.*`` setting from a
    first run)."""
    if not_resumable is not None:
        return f"detection runs over every monitoring date ({not_resumable})"
    if n_resumed:
        return f"detection resumes after {n_resumed} monitoring date(s), {n_stepped} to step over"
    why = ("none stored matches these detect.* settings, baseline and dates" if store.has_detections()
           else "none stored yet")
    return f"detection runs over all {n_stepped} monitoring date(s): no stored confirmation state ({why})"


def _plan_detection(job: AOIJob, store: StateStore, masked: xr.Dataset, keys: list[str], times: pd.DatetimeIndex,
                    *, dates_digest: str) -> tuple[str | None, list[int], int, int, str | None]:
    """Where detection resumes: the stored confirmation state after the longest prefix of this
    run's monitoring dates (:meth:`StateStore.find_detection`). Returns its folder (``None``:
    from the start), the positions of the dates detection reads (the baseline's and the
    monitoring dates after the stored state), the monitoring dates resumed over and stepped
    over, and the key of the state after the last date to keep (``None``: stored already)."""
    base_idx, mon_idx = observation_windows(masked, monitoring_start=job.start,
                                            baseline_days=job.cfg.detect.baseline_days)
    chain = store.detection_chain(detection_digest(job.cfg, dates=dates_digest, start=job.start),
                                  [keys[i] for i in base_idx], [(keys[i], times[i]) for i in mon_idx])
    n_resumed, source = store.find_detection(chain)
    n_stepped = len(mon_idx) - n_resumed
    dates = [int(i) for i in (*base_idx, *mon_idx[n_resumed:])]
    return source, dates, n_resumed, n_stepped, (chain[-1] if n_stepped else None)


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
