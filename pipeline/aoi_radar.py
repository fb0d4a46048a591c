"""One AOI's Sentinel-1 evidence: search, window cache and scoring on the optical grid.

Radar is optional: :func:`open_radar_or_none` turns a failure into "unavailable: <reason>" and
the AOI goes on with optical evidence only (:mod:`pipeline.workflow`).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING

import xarray as xr

from . import acquire, radar, search
from .aoi_windows import SEARCH_LOCK, localise_aoi
from .config import MonitorConfig, SourceParams
from .errors import MonitorError, SearchError
from .jobs import AOIGrid, AOIJob

if TYPE_CHECKING:
    from .workflow import AOIResult

log = logging.getLogger("pipeline")

__all__ = ["open_aoi_radar", "open_radar_or_none", "radar_source"]


def radar_source(cfg: MonitorConfig) -> SourceParams:
    """The :class:`SourceParams` to search Sentinel-1 with (``radar.source_url`` or ``source``)."""
    params = cfg.radar
    if params.source_url is None or params.source_url == cfg.source.url:
        return cfg.source.model_copy(update={"collection": params.collection})
    return SourceParams(
        url=params.source_url,
        collection=params.collection,
        timeout_s=cfg.source.timeout_s,
        max_retries=cfg.source.max_retries,
    )


def open_aoi_radar(job: AOIJob, *, grid: AOIGrid, result: AOIResult | None = None) -> xr.Dataset:
    """Search, cache and score one AOI's Sentinel-1 RTC scenes on the optical ``grid``.

    Returns the lazy output of :func:`pipeline.radar.score_radar_change` (``evidence`` and
    ``valid`` per radar observation since ``job.start``). Items are searched from
    ``job.start - radar.baseline_days`` to ``job.end``. When ``result`` is given, the
    items used are recorded on it.

    Raises
    ------
    MonitorError
        No radar scene, unreachable radar source, missing bands or no baseline; the
        caller decides whether that is fatal (:func:`run_aoi` goes on optical only).
    """
    cfg = job.cfg
    params = cfg.radar
    source = radar_source(cfg)
    bands = list(params.bands)
    first = job.start - dt.timedelta(days=params.baseline_days)
    with SEARCH_LOCK:
        items = search.search_items(job.geometry, first, job.end, source=source, params=cfg.search, bands=bands,
                                    collection_key="radar.collection")
    items, skipped = localise_aoi(items, cfg, source=source, grid=grid, bands=bands)
    for failure in skipped:
        log.warning("AOI %s: skipped radar %s", job.aoi_id, failure)
    if result is not None:
        result.radar_items = list(items)
        result.skipped += [f"radar: {f}" for f in skipped]
    s1 = acquire.open_scenes(items, geobox=grid.geobox, bands=bands, chunk_px=cfg.acquire.chunk_px)
    db = radar.to_db(
        s1.chunk({"time": -1}),
        speckle_filter=params.speckle_filter,
        window_px=params.speckle_window_px,
        enl=params.enl,
        mask_valid_values=params.mask_valid_values,
    )
    return radar.score_radar_change(db, monitoring_start=job.start, params=params)


def open_radar_or_none(
    job: AOIJob, *, grid: AOIGrid, result: AOIResult | None = None, down: str | None = None
) -> tuple[xr.Dataset | None, str]:
    """This AOI's scored radar and ``"used"``, or ``None`` and ``"unavailable: <reason>"``
    when radar fails or its source was found unreachable before the run (``down``).

    Radar is optional: the failure is logged and recorded on ``result`` (when given), and
    the AOI goes on with optical evidence only.
    """
    tick = time.perf_counter()
    try:
        if down is not None:
            raise SearchError(down)
        scored = open_aoi_radar(job, grid=grid, result=result)
    except MonitorError as exc:
        reason = " ".join(str(exc).split())
        if result is not None:
            result.radar_status, result.radar_items = f"unavailable: {reason}", []
        log.warning("AOI %s: radar unavailable, optical evidence only: %s", job.aoi_id, reason)
        return None, f"unavailable: {reason}"
    if result is not None:
        result.timings["radar_fetch_s"] = time.perf_counter() - tick
        result.radar_status = "used"
        log.info("AOI %s: radar fused, %d Sentinel-1 scenes", job.aoi_id, len(result.radar_items))
    return scored, "used"
