"""EDGE: the dry run (``python -m pipeline scenes``): which scenes a run would use, and what they cost.

For each AOI of a configuration (the same options as ``monitor``), :func:`plan_scenes`
searches the source exactly as a run does and describes every item it would use: its date,
whether it falls in the baseline or the monitoring period, its cloud cover over the AOI and
the bytes a run would still have to fetch for it. It then sums up the baseline coverage (the
imagery the per-pixel baselines are built from), and fails the AOI as a run would when its
scenes leave the baseline or the monitoring period empty. Nothing is written: no cache entry,
no output folder; only the table (or JSON) on standard output.

Cloud cover over the AOI comes from the scene's own SCL band where that can be read without
the network: a window already in the window cache (:mod:`pipeline.cache`), or a local file
(a static catalog on disk). It is the share of the AOI's pixels whose SCL class is one of
``preprocess.scl_mask_classes`` (nodata pixels excluded), as the cloud mask of a run counts
them before its buffer. Elsewhere it is the item's ``eo:cloud_cover`` (the whole tile's, in
per cent), and the ``cloud_source`` column says which.

Bytes to fetch are an estimate: for each band not yet in the cache, the AOI window (grid
plus margin, plus the cache's one-pixel pad) at the band's native resolution times its
sample size, i.e. the uncompressed window. The compressed COG tiles a reader actually
fetches can be smaller (DEFLATE) or larger (whole 1024-px tiles around a small window);
``make bench`` measures that ratio (``window_bytes``). Local files cost nothing to fetch.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pystac
import rasterio
import rasterio.errors
import rasterio.features
import rasterio.warp
import rasterio.windows
import shapely
import shapely.geometry
import xarray as xr
from pyproj import Transformer

from . import acquire, preprocess, search
from . import cache as window_cache
from .aoi import read_aois
from .config import MonitorConfig
from .errors import MonitorError
from .jobs import AOIJob, plan_jobs, warn_aois
from .providers.static import item_datetime
from .run import preflight_source
from .validate_inputs import preflight_dry_run

__all__ = ["AOIScenePlan", "ScenePlan", "format_scenes", "plan_scenes", "scenes_json"]

_DTYPE_BYTES = {"uint8": 1, "int8": 1, "uint16": 2, "int16": 2, "uint32": 4, "int32": 4, "float32": 4,
                "float64": 8}


@dataclass
class ScenePlan:
    """One item a run would use."""

    item_id: str
    datetime: str
    """ISO 8601, UTC."""
    window: str
    """``baseline`` (before the monitoring period) or ``monitoring``."""
    cloud_pct: float | None
    """Cloud cover over the AOI (per cent), ``None`` when unknown."""
    cloud_source: str
    """``scl-cache`` or ``scl-local`` (counted on the SCL band over the AOI), ``metadata``
    (the item's ``eo:cloud_cover``, whole tile) or ``none``."""
    fetch_bytes: int
    """Estimated bytes still to fetch for this item's bands (0: all cached or local)."""
    cached_bands: int
    bands: int
    solar_day: str = ""
    """The date a run files this scene under (ISO; local solar day at the AOI's centre): scenes
    of adjacent tiles taken the same day are merged into one date of the cube."""


@dataclass
class AOIScenePlan:
    """What a run would do for one AOI."""

    aoi_id: str
    search_start: str
    start: str
    end: str
    scenes: list[ScenePlan] = field(default_factory=list)
    error: str | None = None
    uncovered_frac: float | None = None
    """Share of the AOI's area outside the footprint of every scene (0..1; ``None``: the search
    failed)."""
    warn_uncovered_frac: float = 0.01
    """``search.warn_uncovered_frac``: from this share on, the listing says so."""

    @property
    def baseline(self) -> list[ScenePlan]:
        return [s for s in self.scenes if s.window == "baseline"]

    def coverage(self) -> dict[str, Any]:
        """Baseline coverage: scenes, the dates they make (same-day scenes of adjacent tiles
        are one date, as in a run), clear-scene equivalents (the sum over dates of the clear
        share of each date's clearest scene), months of the baseline without any scene under
        50 % cloud, and the same counts for the monitoring period."""
        out: dict[str, Any] = {}
        for name in ("baseline", "monitoring"):
            scenes = [s for s in self.scenes if s.window == name]
            by_day: dict[str, list[float]] = {}
            for s in scenes:
                shares = by_day.setdefault(s.solar_day or s.datetime[:10], [])
                if s.cloud_pct is not None:
                    shares.append(1 - s.cloud_pct / 100)
            out[f"{name}_scenes"] = len(scenes)
            out[f"{name}_dates"] = len(by_day)
            out[f"{name}_clear_equiv"] = round(float(sum(max(v) for v in by_day.values() if v)), 2)
        first = dt.date.fromisoformat(self.search_start)
        last = dt.date.fromisoformat(self.start) - dt.timedelta(days=1)
        months = set()
        y, m = first.year, first.month
        while (y, m) <= (last.year, last.month):
            months.add((y, m))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        seen = {(int(s.datetime[:4]), int(s.datetime[5:7])) for s in self.baseline
                if s.cloud_pct is not None and s.cloud_pct < 50}
        out["baseline_months_without_clear_scene"] = [f"{y}-{m:02d}" for y, m in sorted(months - seen)]
        out["fetch_bytes"] = sum(s.fetch_bytes for s in self.scenes)
        out["uncovered_frac"] = None if self.uncovered_frac is None else round(self.uncovered_frac, 4)
        return out


def plan_scenes(cfg: MonitorConfig, *, today: dt.date | None = None) -> list[AOIScenePlan]:
    """Search every AOI of ``cfg`` as a run would and describe the scenes (nothing is written).

    Raises
    ------
    MonitorError
        Bad AOI files, overrides or inputs, or a source that cannot be reached (as ``monitor``);
        an AOI whose search fails is reported on its :class:`AOIScenePlan` (``error``), not raised.
    """
    aois = read_aois(cfg.aois, max_area_km2=cfg.max_aoi_area_km2)
    jobs = plan_jobs(aois, cfg, today=today)
    preflight_dry_run(cfg, jobs, today=today, writes_cache=False)  # what monitor would refuse, refused the same way
    preflight_source(cfg)  # then, as monitor: a remote source that cannot be reached
    warn_aois(jobs, cfg)
    return [_plan_one(job) for job in jobs]


def format_scenes(plans: Sequence[AOIScenePlan]) -> str:
    """The dry run as a plain-text table, one block per AOI."""
    lines: list[str] = []
    head = f"{'scene':<44} {'date':<10} {'window':<10} {'cloud %':>7} {'from':<9} {'fetch':>9} {'cached':>6}"
    for plan in plans:
        lines.append(f"AOI {plan.aoi_id}: baseline {plan.search_start}..{_day_before(plan.start)}, "
                     f"monitoring {plan.start}..{plan.end}")
        if plan.error and not plan.scenes:
            lines.append(f"  failed: {plan.error}")
            lines.append("")
            continue
        lines.append("  " + head)
        for s in plan.scenes:
            cloud = "" if s.cloud_pct is None else f"{s.cloud_pct:.1f}"
            lines.append(f"  {s.item_id[:44]:<44} {s.datetime[:10]:<10} {s.window:<10} {cloud:>7} "
                         f"{s.cloud_source:<9} {_size(s.fetch_bytes):>9} {s.cached_bands:>2}/{s.bands:<3}")
        cov = plan.coverage()
        gaps = cov["baseline_months_without_clear_scene"]
        lines.append(
            f"  baseline coverage: {_scenes_and_dates(cov, 'baseline')}, {cov['baseline_clear_equiv']} clear-scene "
            f"equivalents, months without a scene under 50 % cloud: {', '.join(gaps) if gaps else 'none'}"
        )
        lines.append(f"  monitoring: {_scenes_and_dates(cov, 'monitoring')}, {cov['monitoring_clear_equiv']} "
                     f"clear-scene equivalents; to fetch: {_size(cov['fetch_bytes'])} "
                     "(estimated, uncompressed windows)")
        if plan.uncovered_frac is not None and plan.uncovered_frac >= plan.warn_uncovered_frac:
            lines.append(f"  warning: {100 * plan.uncovered_frac:.0f}% of the AOI lies outside the footprint of every "
                         "scene: no site can be detected there")
        if plan.error:
            lines.append(f"  failed: {plan.error}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def scenes_json(plans: Sequence[AOIScenePlan]) -> str:
    """The dry run as JSON: ``{"aois": [{aoi_id, search_start, start, end, error, coverage, scenes: [...]}]}``."""
    doc = {"aois": [{
        "aoi_id": p.aoi_id, "search_start": p.search_start, "start": p.start, "end": p.end, "error": p.error,
        "coverage": p.coverage() if p.scenes else None,
        "scenes": [dataclasses.asdict(s) for s in p.scenes],
    } for p in plans]}
    return json.dumps(doc, indent=2)


# --------------------------------------------------------------------------- helpers


def _scenes_and_dates(cov: dict[str, Any], window: str) -> str:
    """``12 scenes``, or ``12 scenes on 10 dates`` when same-day scenes of adjacent tiles merge."""
    n, days = cov[f"{window}_scenes"], cov[f"{window}_dates"]
    scenes = f"{n} scene" + ("" if n == 1 else "s")
    if n == days:
        return scenes
    return f"{scenes} on {days} date" + ("" if days == 1 else "s") + " (same-day tiles merged, as in a run)"


def _plan_one(job: AOIJob) -> AOIScenePlan:
    cfg = job.cfg
    plan = AOIScenePlan(aoi_id=job.aoi_id, search_start=job.search_start.isoformat(), start=job.start.isoformat(),
                        end=job.end.isoformat())
    bands = list(cfg.acquire.bands)
    try:
        items = search.search_items(job.geometry, job.search_start, job.end, source=cfg.source,
                                    params=cfg.search, bands=bands)
    except MonitorError as exc:
        plan.error = " ".join(str(exc).split())
        return plan
    grid = job.grid()
    plan.uncovered_frac = search.uncovered_share(job.geometry, items, epsg=grid.epsg)
    plan.warn_uncovered_frac = cfg.search.warn_uncovered_frac
    cache = window_cache.WindowCache(window_cache.resolve_cache_dir(cfg.cache_dir))
    key = window_cache.grid_key(grid.geobox)
    lon = acquire.centre_lon(grid.geobox)
    for item in items:
        when = item_datetime(item)
        scl_path, scl_source = _scl_file(item, cache, key)
        cloud, source = (None, "none")
        if scl_path is not None:
            cloud = _scl_cloud_pct(scl_path, job, mask_classes=cfg.preprocess.scl_mask_classes)
            source = scl_source if cloud is not None else "none"
        if cloud is None and item.properties.get("eo:cloud_cover") is not None:
            cloud, source = float(item.properties["eo:cloud_cover"]), "metadata"
        fetch, cached = 0, 0
        for band in bands:
            if cache.entry(item.id, band, key).exists():
                cached += 1
            elif band in item.assets and not _is_local(item.assets[band]):
                fetch += _window_bytes(item.assets[band], grid.extent, epsg=grid.epsg)
        plan.scenes.append(ScenePlan(
            item_id=item.id, datetime=when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            window="baseline" if when.date() < job.start else "monitoring",
            cloud_pct=None if cloud is None else round(cloud, 2), cloud_source=source,
            fetch_bytes=int(fetch), cached_bands=cached, bands=len(bands),
            solar_day=acquire.solar_day(when.astimezone(dt.UTC), lon).isoformat()))
    plan.error = _window_error(plan, baseline_days=cfg.detect.baseline_days)
    return plan


def _window_error(plan: AOIScenePlan, *, baseline_days: int) -> str | None:
    """Why a run would fail this AOI for want of scenes (no baseline, or none in the monitoring
    period): the check and the words of the run's own (:func:`pipeline.preprocess.observation_windows`),
    on the scenes' acquisition dates. (A run can still find fewer: scenes whose files fail the
    window cache's checks are skipped.)"""
    days = pd.DatetimeIndex(sorted({s.solar_day or s.datetime[:10] for s in plan.scenes}))
    try:
        preprocess.observation_windows(xr.Dataset(coords={"time": days}),
                                       monitoring_start=dt.date.fromisoformat(plan.start), baseline_days=baseline_days)
    except MonitorError as exc:
        return " ".join(str(exc).split())
    return None


def _scl_file(item: pystac.Item, cache: window_cache.WindowCache, key: str) -> tuple[str | None, str]:
    entry = cache.entry(item.id, "scl", key)
    if entry.exists():
        return str(entry), "scl-cache"
    asset = item.assets.get("scl")
    if asset is not None and _is_local(asset):
        href = asset.get_absolute_href() or asset.href
        return href.removeprefix("file://"), "scl-local"
    return None, "none"


def _scl_cloud_pct(path: str, job: AOIJob, *, mask_classes: Sequence[int]) -> float | None:
    """Share (per cent) of the AOI's SCL pixels in ``mask_classes``; ``None`` if unreadable
    or no valid pixel."""
    try:
        with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"), rasterio.open(path) as src:
            to_src = Transformer.from_crs(4326, src.crs, always_xy=True)
            aoi = shapely.transform(job.geometry, lambda xy: np.column_stack(to_src.transform(xy[:, 0], xy[:, 1])))
            left, bottom, right, top = aoi.bounds
            win = rasterio.windows.from_bounds(left, bottom, right, top, src.transform)
            win = win.round_offsets().round_lengths()
            win = win.intersection(rasterio.windows.Window(0, 0, src.width, src.height))
            data = src.read(1, window=win)
            inside = rasterio.features.geometry_mask([shapely.geometry.mapping(aoi)], out_shape=data.shape,
                                                     transform=src.window_transform(win), invert=True)
            nodata = src.nodata if src.nodata is not None else 0
    except (rasterio.errors.RasterioError, OSError, ValueError):
        return None
    ok = inside & (data != nodata)
    if not ok.any():
        return None
    return 100.0 * float(np.isin(data[ok], list(mask_classes)).mean())


def _window_bytes(asset: pystac.Asset, extent: tuple[float, float, float, float], *, epsg: int) -> int:
    """Uncompressed bytes of the AOI window (grid extent, metres in ``epsg``) of one band at
    its native resolution (``gsd``, ``raster:bands`` ``spatial_resolution`` or
    ``proj:transform``; 10 m if none says), plus the cache's pad."""
    fields = asset.extra_fields
    rb = (fields.get("raster:bands") or [{}])[0]
    res = rb.get("spatial_resolution") or fields.get("gsd")
    if res is None and fields.get("proj:transform"):
        res = abs(float(fields["proj:transform"][0]))
    res = float(res or 10.0)
    left, bottom, right, top = extent
    pad = window_cache.PAD_PX
    nx = math.ceil((right - left) / res) + 2 * pad
    ny = math.ceil((top - bottom) / res) + 2 * pad
    return nx * ny * _DTYPE_BYTES.get(str(rb.get("data_type", "uint16")), 2)


def _is_local(asset: pystac.Asset) -> bool:
    href = asset.get_absolute_href() or asset.href
    scheme = href.split("://", 1)[0] if "://" in href else ""
    return scheme in ("", "file") or len(scheme) == 1


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1000  # type: ignore[assignment]
    return f"{n} B"


def _day_before(iso: str) -> str:
    return (dt.date.fromisoformat(iso) - dt.timedelta(days=1)).isoformat()

