"""Orchestration: config -> stages -> outputs. The only place that computes.

``run_monitor`` creates the one ``dask.distributed`` client (a local cluster, or
``--scheduler ADDRESS``), builds each AOI's lazy graph from the pure stage
functions, computes it once at the stage boundary where eager work begins
(flags and change rasters for polygonising, composites for the bulletin), then
writes every output atomically. A :class:`~pipeline.errors.MonitorError` in one
AOI is recorded and the others go on (exit status 1); anything else is a bug
and propagates.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import logging
import platform
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import pystac
import rasterio.features
import xarray as xr

from . import acquire, composites, detect, preprocess, search, sites
from .aoi import OVERRIDE_PROPERTIES, read_aois, utm_crs_for
from .config import DetectParams, MonitorConfig, RadarParams, SitesParams, SourceParams, aoi_config
from .errors import MonitorError, SearchError
from .evaluate import evaluate_sites, read_truth
from .io import atomic_path, write_csv, write_geojson, write_json
from .types import OPTICAL_BANDS

log = logging.getLogger("pipeline")

__all__ = [
    "AOIResult",
    "AOIScenes",
    "APPLIED_THRESHOLDS",
    "RunReport",
    "aoi_config_for",
    "aoi_overrides",
    "delineate_sites",
    "detect_change",
    "open_aoi_radar",
    "open_aoi_scenes",
    "radar_source",
    "run_monitor",
]

#: Sub-folder of the output folder holding the named composites (Cloud-Optimised GeoTIFFs).
COMPOSITES_DIR = "composites"

#: 0-d threshold variables :func:`detect_change` returns with the change rasters, and units.
APPLIED_THRESHOLDS: dict[str, str] = {
    "ndvi_drop_threshold": "NDVI units",
    "vh_drop_threshold_db": "dB",
}

SOFTWARE = (
    "numpy",
    "xarray",
    "dask",
    "distributed",
    "rasterio",
    "odc-stac",
    "pystac",
    "pystac-client",
    "geopandas",
    "shapely",
    "scikit-image",
    "pandas",
    "weasyprint",
)


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
    """Thresholds applied to this AOI (names of :data:`APPLIED_THRESHOLDS`), each
    ``{"value", "unit", "method"}``: ``fixed`` (the configured value or the AOI file's
    override) or ``otsu`` (found in this run's imagery)."""
    radar_status: str = "off"
    """``off``, ``used`` or ``unavailable: <one-line reason>`` (radar is optional: a run
    whose radar fails goes on with optical evidence only)."""


@dataclass
class RunReport:
    """Summary of a run, returned to the CLI."""

    out_dir: Path
    outputs: dict[str, Path]
    failures: dict[str, str]
    bulletin_number: int
    validation: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


def run_monitor(
    cfg: MonitorConfig,
    *,
    truth: Path | None = None,
    today: dt.date | None = None,
) -> RunReport:
    """Run every stage for every AOI of ``cfg`` and write the outputs.

    Parameters
    ----------
    cfg
        Validated configuration (command-line overrides already applied).
    truth
        Optional ground-truth GeoJSON; when given, validation figures go into the
        bulletin and the report (the demo passes its scenario's truth).
    today
        Reference date for open-ended periods (tests pin it).

    Raises
    ------
    MonitorError
        Bad input found before anything is written (AOI files, unreachable source).
    """
    t0 = time.perf_counter()
    aois = read_aois(cfg.aois)
    # Per-AOI overrides from the AOI files are bad input like the config: checked now,
    # before anything is written.
    aoi_cfgs = {str(row["aoi_id"]): aoi_config_for(row, cfg) for _, row in aois.iterrows()}
    start, end = cfg.period.resolved(today)
    periods = preprocess.reporting_periods(start, end, months=cfg.period.period_months)
    search_start = start - dt.timedelta(days=cfg.detect.baseline_days)
    _preflight_source(cfg)
    radar_down = _preflight_radar(cfg)
    # The client comes first: a scheduler that cannot be reached is bad input, and
    # nothing may be written before bad input is found.
    with _dask_client(cfg) as client, acquire.gdal_env(cfg.gdal_options):
        out_dir = cfg.out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        handler = _attach_log(out_dir / "run.log")
        try:
            log.info(
                "run: %d AOI(s), period %s..%s (baseline from %s), source %s",
                len(aois),
                start,
                end,
                search_start,
                cfg.source.url,
            )
            _configure_workers(client, cfg)
            dask_info = {
                "scheduler": "local" if not cfg.dask.scheduler else cfg.dask.scheduler,
                "scheduler_address": client.scheduler.address,
                "workers": len(client.scheduler_info()["workers"]),
            }
            results = [
                _run_aoi(
                    row,
                    aoi_cfgs[str(row["aoi_id"])],
                    start=start,
                    end=end,
                    search_start=start - dt.timedelta(days=aoi_cfgs[str(row["aoi_id"])].detect.baseline_days),
                    periods=periods,
                    radar_down=radar_down,
                )
                for _, row in aois.iterrows()
            ]
            return _write_outputs(
                results, aois, cfg, periods=periods, start=start, end=end, truth=truth, t0=t0, dask_info=dask_info
            )
        finally:
            log.removeHandler(handler)
            handler.close()


def aoi_config_for(row: pd.Series, cfg: MonitorConfig) -> MonitorConfig:
    """``cfg`` with the overrides of one AOI file feature (a row of :func:`read_aois`) applied.

    Raises
    ------
    ConfigError
        An override names an unknown key or an invalid value (one line naming the AOI file,
        the ``aoi_id`` and the ``section.key``).
    """
    overrides = {name: row.get(name) for name in OVERRIDE_PROPERTIES if isinstance(row.get(name), dict)}
    where = f"AOI file {row.get('source_file', '?')} (aoi_id '{row['aoi_id']}')"
    return aoi_config(cfg, overrides, where=where)


def aoi_overrides(row: pd.Series | dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-AOI overrides a row of :func:`read_aois` carries (section -> settings)."""
    return {name: dict(row[name]) for name in OVERRIDE_PROPERTIES if isinstance(row.get(name), dict) and row[name]}


def _run_aoi(
    row: pd.Series,
    cfg: MonitorConfig,
    *,
    start: dt.date,
    end: dt.date,
    search_start: dt.date,
    periods: Sequence[tuple[dt.date, dt.date]],
    radar_down: str | None = None,
) -> AOIResult:
    aoi_id = str(row["aoi_id"])
    result = AOIResult(aoi_id=aoi_id, row=row.drop(labels="geometry").to_dict())
    try:
        _process_aoi(
            result, row, cfg, start=start, end=end, search_start=search_start, periods=periods, radar_down=radar_down
        )
    except MonitorError as exc:
        result.error = " ".join(str(exc).split())
        log.error("AOI %s failed: %s", aoi_id, result.error)
    return result


@dataclass
class AOIScenes:
    """One AOI's lazy, cloud-masked scene cube and its grid (from :func:`open_aoi_scenes`)."""

    masked: xr.Dataset
    """``(time, y, x)`` reflectance of the optical bands, NaN where invalid, plus ``scl``
    and ``valid`` (bool). Lazy, one chunk along ``time``."""
    geobox: Any
    """The AOI's UTM pixel grid (``odc.geo.geobox.GeoBox``), margin included."""
    items: list[pystac.Item]
    """The items opened (after the window cache: hrefs on local files)."""
    epsg: int
    aoi_utm: Any
    """AOI polygon in ``EPSG:{epsg}`` (shapely)."""


def open_aoi_scenes(
    row: pd.Series,
    cfg: MonitorConfig,
    *,
    search_start: dt.date,
    end: dt.date,
    result: AOIResult | None = None,
) -> AOIScenes:
    """Search, cache the AOI windows, and open one AOI's lazy cloud-masked cube.

    The first half of every AOI's processing, shared by :func:`run_monitor` and the
    notebooks (:mod:`pipeline.explore`), so both look at the same cube. ``row`` is one
    row of :func:`pipeline.aoi.read_aois`. When ``result`` is given, items and timings
    are recorded on it as they come (an AOI that fails later still reports what was
    found). Only the search and the window cache touch the source; nothing is computed.
    """
    result = result if result is not None else AOIResult(aoi_id=str(row["aoi_id"]), row={})
    aoi_id = result.aoi_id
    geom = row.geometry
    crs = utm_crs_for(geom)
    code = crs.to_epsg()
    assert code is not None  # utm_crs_for returns WGS 84 / UTM zones, which all have EPSG codes
    epsg = int(code)
    aoi_utm = gpd.GeoSeries([geom], crs=4326).to_crs(epsg).iloc[0]
    bands = list(cfg.acquire.bands)
    optical = [b for b in bands if b in OPTICAL_BANDS]

    tick = time.perf_counter()
    items = search.search_items(geom, search_start, end, source=cfg.source, params=cfg.search, bands=bands)
    result.items = items
    result.timings["search_s"] = time.perf_counter() - tick
    log.info("AOI %s: %d items %s..%s", aoi_id, len(items), search_start, end)

    left, bottom, right, top = aoi_utm.bounds
    m = cfg.acquire.margin_m
    geobox = acquire.aoi_geobox(
        (left - m, bottom - m, right + m, top + m), epsg=epsg, resolution_m=cfg.acquire.resolution_m
    )
    # Window-only acquisition: each band's AOI window goes into the local cache once; the
    # scenes are then read from disk. Items that keep failing are skipped and reported.
    from . import cache as window_cache
    from .providers import get_provider

    tick = time.perf_counter()
    items, skipped = window_cache.localise_items(
        items,
        geobox=geobox,
        bands=bands,
        cache_dir=window_cache.resolve_cache_dir(cfg.cache_dir),
        provider=get_provider(cfg.source),
        gdal_options=cfg.gdal_options,
    )
    used = {it.id for it in items}
    result.items = [it for it in result.items if it.id in used]
    result.timings["fetch_s"] = time.perf_counter() - tick
    for failure in skipped:
        log.warning("AOI %s: skipped %s", aoi_id, failure)
    result.skipped = [str(f) for f in skipped]
    # Read with one task per date and band (I/O parallelism), then hold each spatial chunk's
    # whole time series in one block: every later step is per-pixel over time, and this keeps
    # the graph small (a few tasks per chunk instead of a few per chunk and date).
    scenes = acquire.open_scenes(items, geobox=geobox, bands=bands, chunk_px=cfg.acquire.chunk_px)
    scenes = scenes.chunk({"time": -1})
    refl = preprocess.to_reflectance(scenes, bands=optical)
    masked = preprocess.mask_clouds(
        refl, bands=optical, mask_classes=cfg.preprocess.scl_mask_classes, buffer_px=cfg.preprocess.cloud_buffer_px
    )
    return AOIScenes(masked=masked, geobox=geobox, items=list(items), epsg=epsg, aoi_utm=aoi_utm)


def radar_source(cfg: MonitorConfig) -> SourceParams:
    """The :class:`SourceParams` to search Sentinel-1 with (``radar.source_url`` or ``source``)."""
    radar = cfg.radar
    if radar.source_url is None or radar.source_url == cfg.source.url:
        return cfg.source.model_copy(update={"collection": radar.collection})
    return SourceParams(
        url=radar.source_url,
        collection=radar.collection,
        timeout_s=cfg.source.timeout_s,
        max_retries=cfg.source.max_retries,
    )


def open_aoi_radar(
    row: pd.Series,
    cfg: MonitorConfig,
    *,
    geobox: Any,
    start: dt.date,
    end: dt.date,
    result: AOIResult | None = None,
) -> xr.Dataset:
    """Search, cache and score one AOI's Sentinel-1 RTC scenes on the optical ``geobox``.

    Returns the lazy output of :func:`pipeline.radar.score_radar_change` (``evidence`` and
    ``valid`` per radar observation since ``start``). Items are searched from
    ``start - radar.baseline_days`` to ``end``. When ``result`` is given, the items used
    are recorded on it.

    Raises
    ------
    MonitorError
        No radar scene, unreachable radar source, missing bands or no baseline; the
        caller decides whether that is fatal (:func:`run_monitor` goes on optical only).
    """
    from . import cache as window_cache
    from . import radar
    from .providers import get_provider

    params = cfg.radar
    source = radar_source(cfg)
    bands = list(params.bands)
    first = start - dt.timedelta(days=params.baseline_days)
    items = search.search_items(row.geometry, first, end, source=source, params=cfg.search, bands=bands)
    items, skipped = window_cache.localise_items(
        items,
        geobox=geobox,
        bands=bands,
        cache_dir=window_cache.resolve_cache_dir(cfg.cache_dir),
        provider=get_provider(source),
        gdal_options=cfg.gdal_options,
    )
    if result is not None:
        result.radar_items = list(items)
        result.skipped += [f"radar: {f}" for f in skipped]
    s1 = acquire.open_scenes(items, geobox=geobox, bands=bands, chunk_px=cfg.acquire.chunk_px)
    db = radar.to_db(
        s1.chunk({"time": -1}),
        speckle_filter=params.speckle_filter,
        window_px=params.speckle_window_px,
        enl=params.enl,
        mask_valid_values=params.mask_valid_values,
    )
    return radar.score_radar_change(db, monitoring_start=start, params=params)


def _process_aoi(
    result: AOIResult,
    row: pd.Series,
    cfg: MonitorConfig,
    *,
    start: dt.date,
    end: dt.date,
    search_start: dt.date,
    periods: Sequence[tuple[dt.date, dt.date]],
    radar_down: str | None = None,
) -> None:
    aoi_id = result.aoi_id
    cube = open_aoi_scenes(row, cfg, search_start=search_start, end=end, result=result)
    masked, geobox, epsg, aoi_utm = cube.masked, cube.geobox, cube.epsg, cube.aoi_utm
    # the before/after views: one composite per reporting period, by the composites' method
    composite = preprocess.composite_periods(
        masked,
        bands=["red", "green", "blue"],
        periods=periods,
        method=cfg.composites.method,
        min_valid_obs=cfg.preprocess.min_valid_obs,
    )
    windows = composites.composite_windows(
        search_start, end, products=cfg.composites.products, dry_season_months=cfg.composites.dry_season_months
    )
    named = (
        composites.composite(
            masked,
            bands=cfg.composite_bands,
            windows=windows,
            method=cfg.composites.method,
            min_valid_obs=cfg.composites.min_valid_obs,
        )
        if windows
        else None
    )
    radar_scored = None
    if cfg.radar.enabled:
        radar_scored = _radar_or_none(result, row, cfg, geobox, start, end, down=radar_down)
    flags, change = detect_change(masked, start=start, params=cfg.detect, radar=radar_scored, radar_params=cfg.radar)

    tick = time.perf_counter()
    log.info("AOI %s: computing %s pixels x %d dates", aoi_id, "x".join(map(str, geobox.shape)), masked.sizes["time"])
    flags_np, change_np, composite_np, named_np = dask.compute(flags, change, composite, named)
    result.timings["compute_s"] = time.perf_counter() - tick
    if named_np is not None:
        result.composites = _composite_records(named_np, cfg, aoi_id=aoi_id, aoi_utm=aoi_utm)
    methods = {"ndvi_drop_threshold": cfg.detect.threshold_method, "vh_drop_threshold_db": cfg.radar.threshold_method}
    result.thresholds = {
        name: {"value": round(float(change_np[name]), 4), "unit": unit, "method": methods[name]}
        for name, unit in APPLIED_THRESHOLDS.items()
        if name in change_np
    }

    tick = time.perf_counter()
    site_gdf, site_mask, change_np = delineate_sites(
        flags_np,
        change_np,
        aoi_id=aoi_id,
        aoi_utm=aoi_utm,
        crs=f"EPSG:{epsg}",
        last_period_start=periods[-1][0],
        detect_params=cfg.detect,
        sites_params=cfg.sites,
    )
    previous = _previous_sites(cfg.out_dir, aoi_id)
    site_gdf = sites.track_sites(site_gdf, previous)
    transform = sites.grid_transform(flags_np)
    aoi_mask = rasterio.features.geometry_mask([aoi_utm], out_shape=site_mask.shape, transform=transform, invert=True)
    result.activity = sites.activity_series(
        site_mask,
        np.asarray(change_np["first_change"].values),
        np.asarray(composite_np["valid_count"].values),
        aoi_mask=aoi_mask,
        periods=periods,
        pixel_area_m2=abs(transform.a * transform.e),
        aoi_id=aoi_id,
    )
    result.sites = site_gdf
    result.rgb_before = _rgb(composite_np, 0)
    result.rgb_after = _rgb(composite_np, -1)
    result.view_method = cfg.composites.method
    result.extent_utm = tuple(float(v) for v in geobox.extent.boundingbox)  # type: ignore[assignment]
    result.epsg = epsg
    result.timings["sites_s"] = time.perf_counter() - tick
    log.info("AOI %s: %d sites, %.2f ha disturbed", aoi_id, len(site_gdf), float(site_gdf["area_ha"].sum()))


def _composite_records(named: xr.Dataset, cfg: MonitorConfig, *, aoi_id: str, aoi_utm: Any) -> list[dict[str, Any]]:
    """Write the AOI's computed named composites (when configured) and describe them."""
    files = (
        composites.write_composites(named, out_dir=cfg.out_dir / COMPOSITES_DIR, aoi_id=aoi_id)
        if cfg.composites.write
        else [None] * named.sizes["composite"]
    )
    transform = sites.grid_transform(named["valid_count"].isel(composite=0))
    inside = rasterio.features.geometry_mask(
        [aoi_utm], out_shape=named["valid_count"].shape[1:], transform=transform, invert=True
    )
    records = []
    for i, path in enumerate(files):
        one = named.isel(composite=i)
        count = np.asarray(one["valid_count"].values)[inside]
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


def detect_change(
    masked: xr.Dataset,
    *,
    start: dt.date,
    params: DetectParams,
    radar: xr.Dataset | None = None,
    radar_params: RadarParams | None = None,
) -> tuple[xr.DataArray, xr.Dataset]:
    """The lazy detect stage of one AOI: evidence (fused with radar when given), confirmation, flags.

    Shared by :func:`run_monitor` and the notebooks (:func:`pipeline.explore.detect_sites`).

    Parameters
    ----------
    masked
        Cloud-masked reflectance cube from :func:`open_aoi_scenes`.
    start
        First day of the monitoring period.
    params
        Detection thresholds.
    radar
        Output of :func:`pipeline.radar.score_radar_change` on the same grid (see
        :func:`open_aoi_radar`), or ``None`` for optical evidence only. Radar evidence is
        merged on the optical time axis by :func:`pipeline.radar.fuse_evidence`, and the
        re-vegetation seen by either sensor is merged the same way.
    radar_params
        ``radar_role`` and ``optical_gap_days`` for the fusion (default :class:`RadarParams`).

    Returns
    -------
    flags, change
        Lazy ``(y, x)`` flags from :func:`pipeline.detect.flag_excavation` and change
        rasters from :func:`pipeline.detect.confirm_change`, plus the 0-d thresholds
        applied: ``ndvi_drop_threshold`` (NDVI units) and, with radar,
        ``vh_drop_threshold_db`` (dB). Names are those of :data:`APPLIED_THRESHOLDS`.
    """
    from . import radar as radar_mod

    scored = detect.score_change(masked, monitoring_start=start, params=params)
    evidence, valid, regrowth = scored["evidence"], scored["valid"], scored["regrowth"]
    if radar is not None:
        rp = radar_params if radar_params is not None else RadarParams()
        evidence, valid, regrowth = radar_mod.fuse_evidence(
            evidence,
            valid,
            radar["evidence"],
            radar["valid"],
            radar_role=rp.radar_role,
            optical_gap_days=rp.optical_gap_days,
            regrowth=(regrowth, radar["regrowth"]),
        )
    change = detect.confirm_change(
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
    return detect.flag_excavation(change, params=params), change


def delineate_sites(
    flags: xr.DataArray,
    change: xr.Dataset,
    *,
    aoi_id: str,
    aoi_utm: Any,
    crs: str,
    last_period_start: dt.date,
    detect_params: DetectParams,
    sites_params: SitesParams,
) -> tuple[gpd.GeoDataFrame, np.ndarray, xr.Dataset]:
    """Computed flags -> grown sites -> polygons (:func:`pipeline.sites.grow_sites`, then
    :func:`pipeline.sites.polygonise_flags`); also returns the change rasters as grown."""
    flags, change = sites.grow_sites(
        flags, change, min_obs=sites_params.grow_min_obs, min_persistence_frac=detect_params.min_persistence_frac
    )
    site_gdf, site_mask = sites.polygonise_flags(
        flags,
        change,
        aoi_id=aoi_id,
        aoi_utm=aoi_utm,
        crs=crs,
        last_period_start=last_period_start,
        min_confirmations=detect_params.min_confirmations,
        params=sites_params,
    )
    return site_gdf, site_mask, change


def _radar_or_none(
    result: AOIResult,
    row: pd.Series,
    cfg: MonitorConfig,
    geobox: Any,
    start: dt.date,
    end: dt.date,
    *,
    down: str | None = None,
) -> xr.Dataset | None:
    """This AOI's scored radar, or ``None`` (recorded and logged) when radar fails or its
    source was found unreachable before the run (``down``: the reason)."""
    tick = time.perf_counter()
    try:
        if down is not None:
            raise SearchError(down)
        scored = open_aoi_radar(row, cfg, geobox=geobox, start=start, end=end, result=result)
    except MonitorError as exc:
        reason = " ".join(str(exc).split())
        result.radar_status = f"unavailable: {reason}"
        result.radar_items = []
        log.warning("AOI %s: radar unavailable, optical evidence only: %s", result.aoi_id, reason)
        return None
    result.timings["radar_fetch_s"] = time.perf_counter() - tick
    result.radar_status = "used"
    log.info("AOI %s: radar fused, %d Sentinel-1 scenes", result.aoi_id, len(result.radar_items))
    return scored


def _rgb(composite: xr.Dataset, index: int) -> np.ndarray:
    rgb = np.stack([composite[b].isel(period=index).values for b in ("red", "green", "blue")], axis=-1)
    return rgb.astype("float32")


def _previous_sites(out_dir: Path, aoi_id: str) -> gpd.GeoDataFrame | None:
    path = out_dir / "sites.geojson"
    if not path.exists():
        return None
    from .evaluate import read_sites

    prev = read_sites(path)
    if prev.empty or "aoi_id" not in prev:
        return None
    return prev[prev["aoi_id"] == aoi_id]


def _write_outputs(
    results: list[AOIResult],
    aois: gpd.GeoDataFrame,
    cfg: MonitorConfig,
    *,
    periods: Sequence[tuple[dt.date, dt.date]],
    start: dt.date,
    end: dt.date,
    truth: Path | None,
    t0: float,
    dask_info: dict[str, Any] | None = None,
) -> RunReport:
    from . import bulletin as bl
    from .crosscheck import crosscheck_production, review_statistics
    from .declared import read_declared_production, read_trade, read_windows

    out_dir = cfg.out_dir
    ok = [r for r in results if r.error is None]
    failures = {r.aoi_id: r.error for r in results if r.error is not None}
    columns = [*sites.SITE_COLUMNS, "n_occluded", "geometry"]
    parts = [r.sites.to_crs(4326)[columns] for r in ok if r.sites is not None and not r.sites.empty]
    all_sites = (
        gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=4326)
        if parts
        else gpd.GeoDataFrame({c: [] for c in columns[:-1]}, geometry=[], crs=4326)
    )
    activity = (
        pd.concat([r.activity for r in ok if r.activity is not None], ignore_index=True)
        if ok
        else pd.DataFrame(columns=["aoi_id", "period_start", "period_end", "disturbed_ha", "new_ha", "valid_fraction"])
    )

    declared = read_declared_production(cfg.crosscheck.declared_production)
    windows = read_windows(cfg.crosscheck.sanctions_windows)
    trade = read_trade(cfg.crosscheck.trade_statistics)
    for table in (declared, trade):
        for rejected in table.rejected:
            log.warning("declared statistics: rejected %s line %s: %s", rejected.file, rejected.line, rejected.reason)
    aoi_table = pd.DataFrame(aois.drop(columns="geometry"))
    crosscheck, flags = crosscheck_production(activity, aoi_table, declared.good, windows, params=cfg.crosscheck)
    anomalies = review_statistics(declared.good, trade.good, params=cfg.crosscheck)

    validation = None
    if truth is not None:
        validation = evaluate_sites(all_sites, read_truth(truth), aoi=aois)

    previous_number, previous_ids = _previous_bulletin(out_dir)
    number = cfg.bulletin.number or (previous_number or 0) + 1
    new_since = sorted(set(all_sites["site_id"]) - previous_ids) if previous_number else []

    outputs: dict[str, Path] = {}
    outputs["sites.geojson"] = write_geojson(all_sites, out_dir / "sites.geojson")
    outputs["activity.csv"] = write_csv(activity, out_dir / "activity.csv")
    outputs["crosscheck.csv"] = write_csv(crosscheck, out_dir / "crosscheck.csv")
    outputs["flags.csv"] = write_csv(pd.concat([flags, anomalies], ignore_index=True), out_dir / "flags.csv")
    if not all_sites.empty:
        with atomic_path(out_dir / "sites.gpkg", suffix=".gpkg") as tmp:
            all_sites.to_file(tmp, driver="GPKG", layer="sites")
        outputs["sites.gpkg"] = out_dir / "sites.gpkg"

    scenes = pd.DataFrame(
        [
            {
                "aoi_id": r.aoi_id,
                "sensor": sensor,
                "item_id": it.id,
                "datetime": it.datetime.isoformat() if it.datetime else "",
                "cloud_cover": it.properties.get("eo:cloud_cover"),
                "href": it.assets[band].href if band in it.assets else "",
            }
            for r in results
            for sensor, band, items in (("Sentinel-2 L2A", "red", r.items), ("Sentinel-1 RTC", "vh", r.radar_items))
            for it in items
        ],
        columns=["aoi_id", "sensor", "item_id", "datetime", "cloud_cover", "href"],
    )
    software = _software()
    reports = []
    for r in results:
        row = r.row
        aoi_sites = (
            r.sites if r.sites is not None else gpd.GeoDataFrame({c: [] for c in columns[:-1]}, geometry=[], crs=4326)
        )
        reports.append(
            bl.AOIReport(
                aoi_id=r.aoi_id,
                name=str(row.get("name", r.aoi_id)),
                participant=str(row.get("participant", "")),
                participant_iso3=str(row.get("participant_iso3", "")),
                sites=aoi_sites.to_crs(4326),
                sites_utm=aoi_sites,
                activity=r.activity if r.activity is not None else activity.iloc[0:0],
                rgb_before=r.rgb_before,
                rgb_after=r.rgb_after,
                view_method=r.view_method,
                extent_utm=r.extent_utm,
                epsg=r.epsg,
                new_since_previous=[s for s in new_since if r.sites is not None and s in set(r.sites["site_id"])],
                error=r.error,
                radar_status=r.radar_status,
                n_radar_scenes=len(r.radar_items),
                composites=r.composites,
            )
        )
    context = bl.BulletinContext(
        number=number,
        title="WGM satellite monitoring bulletin",
        period_start=start,
        period_end=end,
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        distribution=cfg.bulletin.distribution,
        demonstration=cfg.bulletin.demonstration,
        aois=reports,
        crosscheck=crosscheck,
        flags=flags,
        anomalies=anomalies,
        declared_sources=declared.good,
        scenes=scenes,
        thresholds=_thresholds(cfg) + _aoi_threshold_rows(results),
        validation=validation,
        software=software,
        config_digest=cfg.digest(),
        previous_number=previous_number,
    )
    outputs.update(bl.render_bulletin(context, out_dir, pdf=cfg.bulletin.pdf))

    manifest = {
        "bulletin_number": number,
        "generated_at": context.generated_at.isoformat(),
        "period": {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "reporting_periods": [[a.isoformat(), b.isoformat()] for a, b in periods],
        },
        "source": {"url": cfg.source.url, "collection": cfg.source.collection, "naming": cfg.source.naming},
        "config_digest": cfg.digest(),
        "config": json.loads(cfg.model_dump_json()),
        "aois": {
            r.aoi_id: {
                "status": "failed" if r.error else "ok",
                "error": r.error,
                "timings_s": r.timings,
                "n_items": len(r.items),
                "n_sites": 0 if r.sites is None else len(r.sites),
                "skipped_items": r.skipped,
                "radar": {"status": r.radar_status, "n_items": len(r.radar_items)},
                "overrides": aoi_overrides(r.row),
                "composites": r.composites,
                "thresholds": r.thresholds,
            }
            for r in results
        },
        "items": [
            {
                "aoi_id": r.aoi_id,
                "id": it.id,
                "datetime": it.datetime.isoformat() if it.datetime else None,
                "sensor": sensor,
                "assets": {k: it.assets[k].href for k in bands if k in it.assets},
            }
            for r in results
            for sensor, bands, items in (
                ("sentinel-2", cfg.acquire.bands, r.items),
                ("sentinel-1", cfg.radar.bands, r.radar_items),
            )
            for it in items
        ],
        "software": software,
        "dask": dask_info or {},
        "validation": validation,
        "timings_s": {"total": round(time.perf_counter() - t0, 3)},
        "outputs": sorted(outputs),
    }
    outputs["manifest.json"] = write_json(manifest, out_dir / "manifest.json")
    _archive_bulletin(out_dir, number, outputs)
    log.info("run finished: bulletin %d, %d site(s), %d failed AOI(s)", number, len(all_sites), len(failures))
    return RunReport(out_dir=out_dir, outputs=outputs, failures=failures, bulletin_number=number, validation=validation)


def _previous_bulletin(out_dir: Path) -> tuple[int | None, set[str]]:
    # The last archived bulletin's number, and the site ids "new since" is measured against:
    # per AOI, those of the latest bulletin in which that AOI was processed, so that an AOI
    # that failed last quarter (all cloud, say) does not make all its sites "new" this quarter.
    archive = out_dir / "archive"
    numbers = (
        sorted(int(p.name.split("-")[-1]) for p in archive.glob("bulletin-*") if p.name.split("-")[-1].isdigit())
        if archive.exists()
        else []
    )
    if not numbers:
        return None, set()
    ids: set[str] = set()
    settled: set[str] = set()  # AOIs whose latest processed bulletin has been read
    for n in reversed(numbers):
        folder = archive / f"bulletin-{n:04d}"
        sites_path, manifest_path = folder / "sites.geojson", folder / "manifest.json"
        features = json.loads(sites_path.read_text(encoding="utf-8")).get("features", []) if sites_path.exists() else []
        statuses = (
            json.loads(manifest_path.read_text(encoding="utf-8")).get("aois", {}) if manifest_path.exists() else {}
        )
        processed = (
            {a for a, info in statuses.items() if info.get("status") == "ok"}
            if statuses
            else {str(f["properties"].get("aoi_id", "")) for f in features}
        )
        ids |= {
            f["properties"]["site_id"]
            for f in features
            if str(f["properties"].get("aoi_id", "")) in processed - settled
        }
        settled |= processed
    return numbers[-1], ids


def _archive_bulletin(out_dir: Path, number: int, outputs: dict[str, Path]) -> None:
    # The archive is written last: a bulletin number exists only for a complete run.
    final = out_dir / "archive" / f"bulletin-{number:04d}"
    staging = out_dir / "archive" / f".bulletin-{number:04d}.part"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, path in outputs.items():
        if path.is_file():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, staging / name)
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)


def _thresholds(cfg: MonitorConfig) -> list[dict[str, Any]]:
    rows = []
    for section in ("preprocess", "composites", "detect", "radar", "sites", "crosscheck"):
        model = getattr(cfg, section)
        for key, info in type(model).model_fields.items():
            value = getattr(model, key)
            unit = key.rsplit("_", 1)[-1] if key.rsplit("_", 1)[-1] in ("m2", "m", "px", "days", "frac", "m3") else ""
            rows.append(
                {
                    "section": section,
                    "key": key,
                    "value": value if not isinstance(value, Path) else str(value),
                    "unit": unit,
                    "description": " ".join((info.description or "").split()),
                }
            )
    return rows


def _aoi_threshold_rows(results: Sequence[AOIResult]) -> list[dict[str, Any]]:
    """Annex rows for what differs per AOI: the AOI files' overrides, then the thresholds
    applied to each AOI's imagery (the configured value or the Otsu threshold found)."""
    rows: list[dict[str, Any]] = []
    for r in results:
        source = str(r.row.get("source_file", ""))
        for section, values in aoi_overrides(r.row).items():
            for key, value in values.items():
                rows.append({
                    "section": f"{section} ({r.aoi_id})",
                    "key": key,
                    "value": value,
                    "unit": "",
                    "description": f"Set for this AOI in its AOI file ({source}), replacing the configured value.",
                    "source": "AOI file",
                })
        for key, applied in r.thresholds.items():
            rows.append({
                "section": f"applied ({r.aoi_id})",
                "key": key,
                "value": applied["value"],
                "unit": applied["unit"],
                "description": _APPLIED_DESCRIPTIONS[key],
                "source": "Otsu (1979), measured in this run" if applied["method"] == "otsu" else "configured",
            })
    return rows


_APPLIED_DESCRIPTIONS: dict[str, str] = {
    "ndvi_drop_threshold": "NDVI drop below the baseline that counted as vegetation loss in this AOI: "
    "detect.ndvi_drop_min, or with detect.threshold_method otsu the Otsu threshold of the AOI's pooled "
    "NDVI drops, bounded by detect.otsu_ndvi_drop_floor and detect.otsu_ndvi_drop_ceiling.",
    "vh_drop_threshold_db": "Sentinel-1 VH backscatter drop below the baseline that counted as change in "
    "this AOI: radar.vh_drop_min_db, or with radar.threshold_method otsu the Otsu threshold of the AOI's "
    "pooled VH drops, never below radar.otsu_floor_db.",
}


def _software() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in SOFTWARE:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    import rasterio

    out["gdal"] = rasterio.__gdal_version__
    return out


def _preflight_source(cfg: MonitorConfig) -> None:
    """Fail fast, before writing anything, when the imagery source cannot be reached."""
    if search.is_static_source(cfg.source.url):
        path = cfg.source.url.removeprefix("file://")
        if not Path(path).exists():
            raise SearchError(
                f"static catalog {path} does not exist; pass --source a STAC API URL or a catalog.json path"
            )
        return
    from .providers import get_provider

    provider = get_provider(cfg.source)
    check = provider.probe(provider.url, what="imagery source")
    if not check.reachable:
        raise SearchError(f"cannot reach imagery source {check.endpoint}: {check.detail}")


def _preflight_radar(cfg: MonitorConfig) -> str | None:
    """Probe a separate radar source once: the reason it is unreachable, else ``None``.

    Radar is optional, so an unreachable radar source is not an error: every AOI then
    runs optical-only and says why, without paying each AOI's retries and back-off.
    """
    if not cfg.radar.enabled or cfg.radar.source_url in (None, cfg.source.url):
        return None
    source = radar_source(cfg)
    if search.is_static_source(source.url):
        path = Path(source.url.removeprefix("file://"))
        return None if path.exists() else f"radar catalog {path} does not exist"
    from .providers import get_provider

    provider = get_provider(source)
    check = provider.probe(provider.url, what="radar source")
    if check.reachable:
        return None
    log.warning("radar source unreachable, every AOI runs optical-only: %s", check.detail)
    return f"cannot reach radar source {check.endpoint}: {check.detail}"


@contextlib.contextmanager
def _dask_client(cfg: MonitorConfig) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    if cfg.dask.scheduler:
        try:
            client = Client(cfg.dask.scheduler, timeout="10s")
        except OSError as exc:
            raise MonitorError(
                f"cannot connect to Dask scheduler {cfg.dask.scheduler}: {exc}; check --scheduler"
            ) from None
        log.info("dask: joined scheduler %s (%d workers)", cfg.dask.scheduler, len(client.scheduler_info()["workers"]))
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=cfg.dask.n_workers,
        threads_per_worker=cfg.dask.threads_per_worker,
        memory_limit=cfg.dask.memory_limit,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    log.info("dask: local cluster, %d workers x %d threads", cfg.dask.n_workers, cfg.dask.threads_per_worker)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _configure_workers(client: Any, cfg: MonitorConfig) -> None:
    # GDAL options must reach the worker processes, where the reads happen.
    import odc.stac

    options: dict[str, Any] = dict(cfg.gdal_options)
    odc.stac.configure_rio(cloud_defaults=False, client=client, **options)


def _attach_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler
