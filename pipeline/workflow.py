"""One AOI's workflow: search -> window cache -> lazy cube -> detect -> sites -> :class:`AOIResult`.

:func:`run_aoi` is what :func:`pipeline.run.run_monitor` does for each AOI; the notebooks
(:mod:`pipeline.explore`) use the first half of it, :func:`open_aoi_scenes` and
:func:`pipeline.aoi_radar.open_aoi_radar`, so both look at the same cube. Candidates and the
site classifier are in :mod:`pipeline.candidates`, the window-cache calls shared with the radar
path in :mod:`pipeline.aoi_windows`. Everything an AOI needs to know (configuration with its
overrides, dates, grid) comes in an :class:`~pipeline.jobs.AOIJob`.

Only the search and the window cache touch the source; the cube is lazy until its graph is
computed, in one pass (change rasters and composites together; the excavation flags are then
made from the computed change rasters).
A :class:`~pipeline.errors.MonitorError` ends the AOI, not the run: :func:`run_aoi`
records it on the result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import pystac
import rasterio.errors
import rasterio.features
import xarray as xr

from . import acquire, composites, detect, preprocess, register, search, sites
from . import cache as window_cache
from .aoi_radar import open_aoi_radar, open_radar_or_none, radar_source
from .aoi_records import COMPOSITES_DIR, applied_thresholds, composite_records, rgb_view
from .aoi_records import season_views as _season_views
from .aoi_windows import SEARCH_LOCK, localise_aoi
from .cache import ItemFailure
from .candidates import AOICandidates, aoi_candidates, classify_candidates
from .classify import SiteModel, feature_rasters, model_summary, radar_rasters
from .composites import CompositeView
from .config import MonitorConfig
from .errors import MonitorError, failure_kind, unreadable_imagery, unreadable_imagery_message
from .incremental import IncrementalPlan, build_incremental, supports_incremental
from .io import BackgroundWrites
from .jobs import AOIGrid, AOIJob, participant_outside
from .numbering import bulletin_issue
from .site_history import earlier_sites
from .types import OPTICAL_BANDS

log = logging.getLogger("pipeline")

__all__ = [
    "COMPOSITES_DIR",
    "AOICandidates",
    "AOIResult",
    "AOIScenes",
    "CandidateEvidence",
    "aoi_candidates",
    "candidate_evidence",
    "classify_candidates",
    "PreparedAOI",
    "finish_aoi",
    "open_aoi_radar",
    "open_aoi_scenes",
    "prepare_aoi",
    "radar_source",
    "run_aoi",
]



@dataclass
class AOIResult:
    """What one AOI produced (eager, small)."""

    aoi_id: str
    row: dict[str, Any]
    sites: gpd.GeoDataFrame | None = None
    activity: pd.DataFrame | None = None
    items: list[pystac.Item] = field(default_factory=list)
    rgb_before: np.ndarray | None = None
    rgb_after: np.ndarray | None = None
    view_method: str = ""
    """Composite method (``composites.method``) of ``rgb_before``/``rgb_after``."""
    extent_utm: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    epsg: int = 4326
    error: str | None = None
    """Why the AOI failed, for the operator (one line: the file or item and the fix); ``None``: it did not."""
    failure: str | None = None
    """The kind of that failure (:func:`pipeline.errors.failure_kind`), which the bulletin words."""
    timings: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    """Items skipped after repeated read failures (one line each, no secrets)."""
    radar_items: list[pystac.Item] = field(default_factory=list)
    """Sentinel-1 items whose evidence was fused (empty when radar is off or unavailable)."""
    composites: list[dict[str, Any]] = field(default_factory=list)
    """Named composites of this AOI: ``product``, ``start``, ``end``, ``method``,
    ``clear_obs_median`` and ``filled_frac`` (inside the AOI: median clear observations per
    pixel, share of pixels with at least ``composites.min_valid_obs``) and ``file``
    (relative to the output folder, ``None`` when not written)."""
    thresholds: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Thresholds applied to this AOI (names of :data:`pipeline.detect.APPLIED_THRESHOLDS`),
    each ``{"value", "unit", "method"}``: ``fixed`` (the configured value or the AOI file's
    override) or ``otsu`` (found in this run's imagery)."""
    radar_status: str = "off"
    """``off``, ``used`` or ``unavailable: <one-line reason>`` (radar is optional: a run
    whose radar fails goes on with optical evidence only)."""
    site_model: dict[str, Any] | None = None
    """The site classifier that scored this AOI's candidates (:func:`pipeline.classify.model_summary`),
    ``None`` when the rules alone decided."""
    n_candidates: int = 0
    """Candidates the rules proposed (with a site model: before the classifier's cut)."""
    boundary: Any = None
    """The AOI's geometry as its file gives it (EPSG:4326), for the bulletin's map."""
    dismissed: gpd.GeoDataFrame | None = None
    """Sites an analyst judged ``false_alarm`` (:mod:`pipeline.register`), in the AOI's UTM CRS:
    out of :attr:`sites` and of the activity series, listed apart."""
    season_views: list[CompositeView] = field(default_factory=list)
    """The dry-season named composites (``composites.products``), red, green and blue only, oldest
    first: the bulletin's same-season before/after chips. Empty when none was computed."""
    uncovered_frac: float | None = None
    """Share of the AOI's area outside the footprint of every scene used (0..1); ``None`` until
    the scenes are known (an AOI whose search failed)."""
    coverage_warning: bool = False
    """``uncovered_frac`` reached ``search.warn_uncovered_frac``: the run warned, the bulletin says so."""
    confirmable_frac: float | None = None
    """Share of the AOI with at least ``detect.min_confirmations`` (:attr:`confirmations`) clear
    optical observations over the covering period (:func:`pipeline.sites.confirmable_share`):
    elsewhere no change can be confirmed. ``None``: not measured (the AOI failed)."""
    confirmations: int = 0
    """``detect.min_confirmations`` of this AOI."""
    participant_outside: dict[str, Any] | None = None
    """``{"km", "country"}``: the AOI lies that far outside the outline of the country its
    ``participant_iso3`` names (beyond ``participant_outline_km``; :func:`pipeline.jobs.participant_outside`),
    yet its activity is compared with that participant's declared production. ``None``: it does not."""
    state: dict[str, int | str] = field(default_factory=dict)
    """With ``incremental``: dates and composite windows computed and reused from the stored
    state, and the stored blocks read (:class:`pipeline.incremental.IncrementalPlan`)."""

    @classmethod
    def for_job(cls, job: AOIJob) -> AOIResult:
        outside = participant_outside(job.row, job.geometry, tolerance_km=job.cfg.participant_outline_km)
        return cls(aoi_id=job.aoi_id, row=job.row.drop(labels="geometry").to_dict(),
                   boundary=job.row.get("geometry"),
                   participant_outside=None if outside is None else {"km": round(outside[0]), "country": outside[1]})


@dataclass
class AOIScenes:
    """One AOI's lazy, cloud-masked scene cube and its grid (from :func:`open_aoi_scenes`)."""

    masked: xr.Dataset
    """``(time, y, x)`` reflectance of the optical bands, NaN where invalid, plus ``scl``
    and ``valid`` (bool). Lazy, one chunk along ``time``."""
    grid: AOIGrid
    """The AOI's UTM pixel grid (margin included), its EPSG code and AOI mask."""
    items: list[pystac.Item]
    """The items opened (after the window cache: hrefs on local files)."""


@dataclass
class _Computed:
    """The eager arrays of one AOI after its single ``dask.compute``."""

    flags: xr.DataArray
    change: xr.Dataset
    views: xr.Dataset | None
    named: xr.Dataset | None
    rasters: xr.Dataset | None = None
    """Feature rasters of the site classifier (:func:`pipeline.classify.feature_rasters`)."""
    radar_rasters: xr.Dataset | None = None

    @classmethod
    def of(cls, outs: Sequence[Any], cfg: MonitorConfig) -> _Computed:
        """From the computed ``(None, change, views, named, rasters, radar_rasters)`` of
        :func:`_build`: the excavation flags are made here, from the computed change rasters.

        :func:`pipeline.detect.flag_excavation` is a per-pixel rule and a square opening; in the
        graph, its halo across chunks cost about 12 tasks per spatial chunk (a tenth of a
        full run's tasks, a fifth of a quarterly re-run's), for what takes milliseconds
        of NumPy over the whole grid here, with the same values (the chunked opening equals
        the whole-grid one, ``tests/test_detect.py``)."""
        flags, change, *rest = outs
        if flags is None:
            flags = detect.flag_excavation(change, params=cfg.detect)
        return cls(flags, change, *rest)


def run_aoi(
    job: AOIJob,
    *,
    radar_down: str | None = None,
    model: SiteModel | None = None,
    verdicts: gpd.GeoDataFrame | None = None,
) -> AOIResult:
    """Run one AOI end to end; a :class:`MonitorError` is recorded on the result, not raised.

    ``radar_down``: why the radar source was found unreachable before the run (every AOI
    then runs optical-only without paying retries), or ``None``. ``model``: the site
    classifier that scores the rules' candidates (``detect.site_model``), or ``None``.
    ``verdicts``: the site register's latest verdicts (:meth:`pipeline.register.SiteRegister.latest`),
    or ``None``. This is :func:`prepare_aoi`, one ``dask.compute`` and :func:`finish_aoi` in a
    row; :func:`pipeline.run.run_monitor` runs the AOIs of a run together instead.
    """
    result = AOIResult.for_job(job)
    try:
        prepared = prepare_aoi(job, radar_down=radar_down, model=model, result=result)
        tick = time.perf_counter()
        try:
            computed = dask.compute(*prepared.lazy)
        except MonitorError:
            prepared.abandon()
            raise
        result.timings["compute_s"] = time.perf_counter() - tick
        finish_aoi(prepared, computed, verdicts=verdicts)
    except MonitorError as exc:
        result.error, result.failure = " ".join(str(exc).split()), failure_kind(exc)
        log.error("AOI %s failed: %s", job.aoi_id, result.error)
    except Exception as exc:
        # An image that passed the window cache's checks but cannot be decoded (corrupt
        # tiles): bad data, not a bug; the AOI fails and the others go on.
        if not unreadable_imagery(exc):
            raise
        result.error = unreadable_imagery_message(exc)
        result.failure = failure_kind(exc)
        log.error("AOI %s failed: %s", job.aoi_id, result.error)
    return result


@dataclass
class PreparedAOI:
    """One AOI searched, fetched into the window cache and built as a lazy graph: what
    :func:`pipeline.run.run_monitor` sends to the cluster (:attr:`lazy`, computed together
    with the other AOIs' graphs) before :func:`finish_aoi` turns the computed arrays into
    sites."""

    job: AOIJob
    result: AOIResult
    cube: AOIScenes
    lazy: tuple[Any, ...]
    """``(flags, change, views, named, rasters, radar_rasters)``, lazy; ``None`` where not
    wanted, and the flags always (:func:`finish_aoi` makes them from the computed change
    rasters). With ``incremental``, computing them also writes the new dates to the AOI's
    state. Compute them in one pass and pass the tuple to :func:`finish_aoi`."""
    model: SiteModel | None = None
    plan: IncrementalPlan | None = None
    """The stored state this graph builds on (``incremental``), else ``None``."""

    def abandon(self) -> None:
        """The computation failed: drop the state entries it staged."""
        if self.plan is not None:
            self.plan.discard()


def prepare_aoi(
    job: AOIJob,
    *,
    radar_down: str | None = None,
    model: SiteModel | None = None,
    result: AOIResult | None = None,
    progress: Any = None,
    skip: Mapping[str, ItemFailure] | None = None,
) -> PreparedAOI:
    """Search, fetch and build one AOI's lazy graph (:class:`PreparedAOI`); nothing is computed.

    ``progress``: a :class:`pipeline.progress.RunProgress` told the search and fetch counts.
    ``skip``: items left out (by id), each with why (an earlier computation could not decode
    one of its images): listed with the items that could not be fetched.

    Raises
    ------
    MonitorError
        No scenes, unreachable source, no baseline, ...: the AOI fails, not the run.
    """
    result = result if result is not None else AOIResult.for_job(job)
    cube = open_aoi_scenes(job, result=result, progress=progress, skip=skip)
    scored_radar = None
    if job.cfg.radar.enabled:
        scored_radar, _ = open_radar_or_none(job, grid=cube.grid, result=result, down=radar_down)
    plan = None
    if supports_incremental(job):
        lazy, plan = _build_incremental(job, cube, scored_radar, features=model is not None)
    else:
        lazy = _build(job, cube, scored_radar, features=model is not None)
    log.info(
        "AOI %s: graph of %s pixels x %d dates ready",
        job.aoi_id,
        "x".join(map(str, cube.grid.geobox.shape)),
        cube.masked.sizes["time"],
    )
    return PreparedAOI(job=job, result=result, cube=cube, lazy=lazy, model=model, plan=plan)


def finish_aoi(
    prepared: PreparedAOI, computed: Sequence[Any], *, verdicts: gpd.GeoDataFrame | None = None,
    writes: BackgroundWrites | None = None,
) -> AOIResult:
    """The eager end of one AOI once its graph is computed: composites written, candidates,
    the classifier, tracking against the previous bulletin, analysts' verdicts (``verdicts``:
    :meth:`pipeline.register.SiteRegister.latest`, or ``None``), activity. Returns the result.
    ``writes``: the composites are queued there (:class:`pipeline.io.BackgroundWrites`) instead
    of written before this returns.

    Raises
    ------
    MonitorError
        As the sites stage raises it (the AOI fails, not the run).
    """
    job, result, cube, model = prepared.job, prepared.result, prepared.cube, prepared.model
    cfg = job.cfg
    outs = list(computed)
    if prepared.plan is not None:
        outs = prepared.plan.assemble(outs)
        result.state = dict(prepared.plan.stats)
    done = _Computed.of(outs[:6], cfg)
    if done.named is not None:
        result.composites = composite_records(done.named, cfg, aoi_id=job.aoi_id, grid=cube.grid, writes=writes)
        result.season_views = _season_views(done.named, product="dry_season")
    result.thresholds = applied_thresholds(done.change, cfg)

    tick = time.perf_counter()
    cands = aoi_candidates(job, done, cube.grid, for_model=model is not None)
    result.n_candidates = len(cands.sites)
    site_gdf, site_mask = cands.sites, cands.site_mask
    if model is not None:
        site_gdf, site_mask = classify_candidates(cands, model, cfg, grid=cube.grid)
        result.site_model = model_summary(model)
        log.info("AOI %s: site model %s kept %d of %d candidates", job.aoi_id, result.site_model["name"],
                 len(site_gdf), len(cands.sites))
    # against the bulletins before the one this run makes (a revision: not the issue it replaces)
    number = bulletin_issue(cfg.out_dir, job.start.isoformat(), job.end.isoformat(), number=cfg.bulletin.number,
                            reissue=cfg.bulletin.reissue).number
    site_gdf = sites.track_sites(site_gdf, earlier_sites(cfg.out_dir, job.aoi_id, before=number),
                                 last_period_start=job.last_period_start)
    own_verdicts = verdicts[verdicts["aoi_id"] == job.aoi_id] if verdicts is not None else None
    site_gdf = register.apply_verdicts(site_gdf, own_verdicts, min_overlap_frac=cfg.review.match_overlap_frac)
    dismissed = site_gdf["verdict"] == "false_alarm"
    if dismissed.any():
        result.dismissed = site_gdf[dismissed].reset_index(drop=True)
        site_gdf = site_gdf[~dismissed].reset_index(drop=True)
        site_mask = site_mask & _outside(result.dismissed, cube.grid, shape=site_mask.shape)
        log.info("AOI %s: %d site(s) dismissed as false alarms by analysts", job.aoi_id, len(result.dismissed))
    assert done.views is not None
    result.confirmations = cfg.detect.min_confirmations
    result.confirmable_frac = sites.confirmable_share(np.asarray(done.views["valid_count"].values),
                                                      aoi_mask=cube.grid.aoi_mask,
                                                      min_confirmations=cfg.detect.min_confirmations)
    result.activity = sites.activity_series(
        site_mask,
        np.asarray(cands.change["first_change"].values),
        np.asarray(done.views["valid_count"].values),
        aoi_mask=cube.grid.aoi_mask,
        periods=job.periods,
        pixel_area_m2=cube.grid.pixel_area_m2,
        aoi_id=job.aoi_id,
        first_clear=np.asarray(cands.change["first_clear"].values) if "first_clear" in cands.change else None,
    )
    result.sites = site_gdf
    result.rgb_before, result.rgb_after = rgb_view(done.views, 0), rgb_view(done.views, -1)
    result.view_method = cfg.composites.method
    result.extent_utm, result.epsg = cube.grid.extent, cube.grid.epsg
    result.timings["sites_s"] = time.perf_counter() - tick
    log.info("AOI %s: %d sites, %.2f ha disturbed", job.aoi_id, len(site_gdf), float(site_gdf["area_ha"].sum()))
    return result


def open_aoi_scenes(job: AOIJob, *, result: AOIResult | None = None, progress: Any = None,
                    skip: Mapping[str, ItemFailure] | None = None) -> AOIScenes:
    """Search, cache the AOI windows, and open one AOI's lazy cloud-masked cube.

    The first half of every AOI's processing, shared by :func:`run_aoi` and the notebooks
    (:mod:`pipeline.explore`), so both look at the same cube. Items are searched from
    ``job.search_start`` to ``job.end``. When ``result`` is given, items, skipped items and
    timings are recorded on it as they come (an AOI that fails later still reports what
    was found). ``progress`` (a :class:`pipeline.progress.RunProgress`) is told the items
    found and the items fetched. Only the search and the window cache touch the source;
    nothing is done. Items whose id is in ``skip`` are left out after the search, each listed
    with its reason among the skipped items.
    """
    result = result if result is not None else AOIResult(aoi_id=job.aoi_id, row={})
    cfg = job.cfg
    bands = list(cfg.acquire.bands)
    grid = job.grid()

    tick = time.perf_counter()
    if progress is not None:
        progress.update(job.aoi_id, "search", 0, None, unit="items found")
    with SEARCH_LOCK:
        items = search.search_items(
            job.geometry, job.search_start, job.end, source=cfg.source, params=cfg.search, bands=bands
        )
    left_out = [skip[it.id] for it in items if skip and it.id in skip]
    if left_out:
        items = [it for it in items if it.id not in (skip or {})]
    result.items = items
    result.timings["search_s"] = time.perf_counter() - tick
    log.info("AOI %s: %d items %s..%s", job.aoi_id, len(items), job.search_start, job.end)
    if progress is not None:
        progress.update(job.aoi_id, "search", len(items), len(items), unit="items found")

    # Window-only acquisition: each band's AOI window goes into the local cache once; the
    # scenes are then read from disk. Items that keep failing are skipped and reported.
    tick = time.perf_counter()
    on_item = None
    if progress is not None:
        def on_item(done: int, total: int) -> None:
            progress.update(job.aoi_id, "fetch", done, total, unit="items")

        on_item(0, len(items))
    items, fetch_failed = localise_aoi(items, cfg, source=cfg.source, grid=grid, bands=bands, on_item=on_item)
    skipped = [*left_out, *fetch_failed]
    used = {it.id for it in items}
    result.items = [it for it in result.items if it.id in used]
    result.timings["fetch_s"] = time.perf_counter() - tick
    for failure in skipped:
        log.warning("AOI %s: skipped %s", job.aoi_id, failure)
    result.skipped = [str(f) for f in skipped]
    result.uncovered_frac = search.uncovered_share(job.geometry, items, epsg=grid.epsg)
    result.coverage_warning = bool(items) and result.uncovered_frac >= cfg.search.warn_uncovered_frac
    if result.coverage_warning:
        log.warning("AOI %s: %.0f%% of its area lies outside the footprint of every scene used (%d scenes); no "
                    "site can be detected there: check the AOI against the source's coverage", job.aoi_id,
                    100 * result.uncovered_frac, len(items))
    return AOIScenes(masked=_masked_cube(items, cfg, grid=grid, bands=bands), grid=grid, items=list(items))


def named_composites(job: AOIJob, masked: xr.Dataset) -> xr.Dataset | None:
    """The AOI's named composites (``composites``: half-year, dry season) over the searched
    span, lazy; ``None`` when no window fits the span."""
    params = job.cfg.composites
    windows = composites.composite_windows(
        job.search_start, job.end, products=params.products, dry_season_months=params.dry_season_months
    )
    if not windows:
        return None
    return composites.composite(
        masked,
        bands=job.cfg.composite_bands,
        windows=windows,
        method=params.method,
        min_valid_obs=params.min_valid_obs,
        geomedian_eps=params.geomedian_eps,
        geomedian_max_iters=params.geomedian_max_iters,
    )


@dataclass
class CandidateEvidence:
    """What training needs of one AOI: its candidates with features, and the feature rasters
    (to describe label polygons no candidate touched)."""

    candidates: AOICandidates
    grid: AOIGrid
    rasters: xr.Dataset
    radar_rasters: xr.Dataset | None


def candidate_evidence(job: AOIJob, *, radar_down: str | None = None) -> CandidateEvidence:
    """Search, fetch and compute one AOI up to its classifier candidates and their features,
    exactly as a monitor run with a site model does (no composites, nothing written).

    Raises
    ------
    MonitorError
        As :func:`open_aoi_scenes` (no scenes, unreachable source, no baseline, ...).
    """
    result = AOIResult.for_job(job)
    cube = open_aoi_scenes(job, result=result)
    scored_radar = None
    if job.cfg.radar.enabled:
        scored_radar, _ = open_radar_or_none(job, grid=cube.grid, result=result, down=radar_down)
    computed = _compute(job, cube, scored_radar, result, features=True, views=False)
    assert computed.rasters is not None
    cands = aoi_candidates(job, computed, cube.grid, for_model=True)
    return CandidateEvidence(candidates=cands, grid=cube.grid, rasters=computed.rasters,
                             radar_rasters=computed.radar_rasters)


# --------------------------------------------------------------------------- the AOI's stages


def _compute(
    job: AOIJob,
    cube: AOIScenes,
    scored_radar: xr.Dataset | None,
    result: AOIResult,
    *,
    features: bool,
    views: bool = True,
) -> _Computed:
    """:func:`_build` and compute the AOI's lazy outputs in one pass."""
    lazy = _build(job, cube, scored_radar, features=features, views=views)
    tick = time.perf_counter()
    out = dask.compute(*lazy)
    result.timings["compute_s"] = time.perf_counter() - tick
    return _Computed.of(out, job.cfg)


def _build(
    job: AOIJob,
    cube: AOIScenes,
    scored_radar: xr.Dataset | None,
    *,
    features: bool,
    views: bool = True,
) -> tuple[Any, ...]:
    """The AOI's lazy outputs ``(None, change, views, named, rasters, radar_rasters)``
    (``features``: the site classifier's feature rasters too; ``views``: the before/after
    composites and the named composites, which training does without). The flags' slot is
    ``None``: they are made from the computed change rasters (:meth:`_Computed.of`)."""
    cfg = job.cfg
    lazy_views = lazy_named = None
    if views:
        # the before/after views: one composite per reporting period, by the composites' method
        lazy_views = preprocess.composite_periods(
            cube.masked,
            bands=["red", "green", "blue"],
            periods=job.periods,
            method=cfg.composites.method,
            min_valid_obs=cfg.preprocess.min_valid_obs,
            geomedian_eps=cfg.composites.geomedian_eps,
            geomedian_max_iters=cfg.composites.geomedian_max_iters,
        )
        lazy_named = named_composites(job, cube.masked)
    change = detect.change_rasters(
        cube.masked, start=job.start, params=cfg.detect, radar=scored_radar, radar_params=cfg.radar
    )
    rasters = radar_r = None
    if features:
        rasters = feature_rasters(
            cube.masked, start=job.start, baseline_days=cfg.detect.baseline_days, params=cfg.features,
            change_day=change["first_change"],
        )
        radar_r = radar_rasters(scored_radar) if scored_radar is not None else None
    return None, change, lazy_views, lazy_named, rasters, radar_r


def _build_incremental(
    job: AOIJob, cube: AOIScenes, scored_radar: xr.Dataset | None, *, features: bool
) -> tuple[tuple[Any, ...], IncrementalPlan]:
    """:func:`_build` on the AOI's stored state (:func:`pipeline.incremental.build_incremental`):
    the same outputs; the new dates are written to the state as they are masked. Detection
    and the feature rasters run on the cube of stored and new dates, which equals
    ``cube.masked`` value for value."""
    cfg = job.cfg
    bands = list(cfg.acquire.bands)

    def open_masked(items: list[pystac.Item], chunk_px: int) -> xr.Dataset:
        return _masked_cube(items, cfg, grid=cube.grid, bands=bands, chunk_px=chunk_px)

    stored, views, named, plan = build_incremental(
        job, cube.masked, cube.items, grid=window_cache.grid_key(cube.grid.geobox), open_masked=open_masked,
        not_resumable=detect.not_resumable(cfg.detect, scored_radar), all_dates=features,
    )
    if plan.detection is not None:
        # only the monitoring dates after the stored confirmation state
        change = detect.resumed_change_rasters(stored, start=job.start, params=cfg.detect,
                                               take=plan.detection.take, resume=plan.detection.resume)
    else:
        change = detect.change_rasters(
            stored, start=job.start, params=cfg.detect, radar=scored_radar, radar_params=cfg.radar
        )
    rasters = radar_r = None
    if features:
        rasters = feature_rasters(
            stored, start=job.start, baseline_days=cfg.detect.baseline_days, params=cfg.features,
            change_day=change["first_change"],
        )
        radar_r = radar_rasters(scored_radar) if scored_radar is not None else None
    return (None, change, views, named, rasters, radar_r), plan


# --------------------------------------------------------------------------- helpers


def _masked_cube(items: list[pystac.Item], cfg: MonitorConfig, *, grid: AOIGrid, bands: list[str],
                 chunk_px: int | None = None) -> xr.Dataset:
    # Read READ_DATES_PER_TASK dates of a band per task (some I/O parallelism along time; one
    # task per date made reading the window cache most of the graph: 1260 of 3539 tasks on the
    # 30-date benchmark scene) over a region of several chunks (acquire.read_px), then hold each
    # spatial chunk's whole time series in one block: every later step is per-pixel over time,
    # and this keeps the graph small (a few tasks per chunk instead of a few per chunk and date).
    optical = [b for b in bands if b in OPTICAL_BANDS]
    chunk = chunk_px or cfg.acquire.chunk_px
    scenes = acquire.open_scenes(items, geobox=grid.geobox, bands=bands,
                                 chunk_px=acquire.read_px(len(items), len(bands), chunk_px=chunk),
                                 dates_per_chunk=acquire.READ_DATES_PER_TASK)
    refl = preprocess.to_reflectance(scenes.chunk({"time": -1, "y": chunk, "x": chunk}), bands=optical)
    return preprocess.mask_clouds(
        refl, bands=optical, mask_classes=cfg.preprocess.scl_mask_classes, buffer_px=cfg.preprocess.cloud_buffer_px
    )


def _outside(shapes: gpd.GeoDataFrame, grid: AOIGrid, *, shape: tuple[int, ...]) -> np.ndarray:
    """True on the grid's pixels outside every polygon of ``shapes`` (any CRS)."""
    return rasterio.features.geometry_mask(
        shapes.to_crs(grid.crs).geometry, out_shape=shape, transform=grid.transform
    )
