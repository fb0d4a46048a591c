"""EDGE: small helpers for notebooks: one AOI's lazy cube, one-stage re-runs, an HTML site map.

Notebooks import the same stage functions as ``run.py``; this module only saves them
the bookkeeping around those calls:

- :func:`demo_config`: the configuration ``python -m pipeline demo --out DIR`` runs with;
- :func:`open_aoi`: config + AOI -> :class:`AOICube`, the lazy cloud-masked reflectance
  cube of one AOI (search -> window cache -> ``open_scenes`` -> ``to_reflectance`` ->
  ``mask_clouds``), through :func:`pipeline.workflow.open_aoi_scenes`, the very function the
  pipeline uses, so a notebook looks at the cube the bulletin was made from;
- :func:`detect_sites`: detect -> sites on a cube with any :class:`DetectParams` /
  :class:`SitesParams` (the calls ``run.py`` makes, without tracking against a previous
  run), so a threshold can be tuned without re-running the whole pipeline;
- :func:`sites_map_html`: an HTML map of sites over a composite (inline SVG: hover a
  site for its id, status, area and dates; click it to jump to its table row). It needs
  no JavaScript and no network, so it shows in any notebook front end and offline.

Nothing here creates a Dask client: a notebook computes with the default threaded
scheduler (or its own ``distributed.Client``).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.image import imsave
from odc.geo.geobox import GeoBox
from shapely.geometry.base import BaseGeometry

from .acquire import gdal_env
from .aoi import read_aois
from .aoi_radar import open_radar_or_none
from .bulletin.figures import STATUS_COLOURS, stretch_limits, stretch_rgb
from .config import DetectParams, MonitorConfig, SitesParams, load_config
from .detect import detect_change
from .errors import ConfigError
from .jobs import AOIGrid, AOIJob
from .sites import delineate_sites
from .workflow import named_composites as workflow_named_composites
from .workflow import open_aoi_scenes

__all__ = [
    "DEMO_CONFIG",
    "REPO_ROOT",
    "AOICube",
    "DetectResult",
    "demo_config",
    "detect_sites",
    "named_composites",
    "open_aoi",
    "sites_map_html",
]

#: The repository root (``configs/``, ``aois/``, ``notebooks/`` live here).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: The configuration ``python -m pipeline demo`` uses.
DEMO_CONFIG = REPO_ROOT / "configs" / "demo.yaml"


@dataclass(frozen=True, eq=False)
class AOICube:
    """One AOI's lazy cube and everything needed to run the later stages on it.

    ``masked`` is ``(time, y, x)`` reflectance of the optical bands (NaN where cloudy,
    shadowed or missing), plus ``scl`` and ``valid`` (bool), on the AOI's UTM grid
    (``grid``, ``EPSG:{epsg}``). Lazy: nothing has been read. ``job`` holds the AOI's
    row, its configuration (AOI file overrides applied) and dates, as the run uses them.
    """

    job: AOIJob
    grid: AOIGrid
    masked: xr.Dataset
    items: list[Any]
    radar: xr.Dataset | None = None
    """Scored Sentinel-1 evidence on the same grid (:func:`pipeline.aoi_radar.open_aoi_radar`),
    when the config enables radar and it could be opened; lazy."""
    radar_status: str = "off"
    """``off``, ``used`` or ``unavailable: <reason>``, as in the run's manifest."""

    @property
    def aoi_id(self) -> str:
        return self.job.aoi_id

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def participant_iso3(self) -> str:
        return str(self.job.row.get("participant_iso3", ""))

    @property
    def row(self) -> pd.Series:
        return self.job.row

    @property
    def cfg(self) -> MonitorConfig:
        return self.job.cfg

    @property
    def start(self) -> dt.date:
        return self.job.start

    @property
    def end(self) -> dt.date:
        return self.job.end

    @property
    def periods(self) -> list[tuple[dt.date, dt.date]]:
        return list(self.job.periods)

    @property
    def geobox(self) -> GeoBox:
        return self.grid.geobox

    @property
    def epsg(self) -> int:
        return self.grid.epsg

    @property
    def aoi_utm(self) -> BaseGeometry:
        return self.grid.aoi_utm

    @property
    def crs(self) -> str:
        return self.grid.crs


@dataclass(frozen=True, eq=False)
class DetectResult:
    """What :func:`detect_sites` returns: sites (UTM) and the computed rasters behind them."""

    sites: gpd.GeoDataFrame
    """Sites in the cube's UTM CRS, :data:`pipeline.sites.SITE_COLUMNS` + geometry."""
    flags: xr.DataArray
    """bool ``(y, x)`` excavation flags (computed)."""
    change: xr.Dataset
    """``(y, x)`` change rasters of :func:`pipeline.detect.confirm_change` (computed)."""
    site_mask: np.ndarray
    """bool ``(y, x)``: pixels in retained sites."""


def demo_config(
    demo_dir: str | Path, *, config: str | Path = DEMO_CONFIG, **overrides: Any
) -> MonitorConfig:
    """The configuration ``python -m pipeline demo --out demo_dir`` runs with.

    ``demo_dir/scenario`` must hold the scenario (``aoi.geojson``,
    ``catalog/catalog.json``), as the demo writes it. ``overrides`` are dotted keys for
    :func:`pipeline.config.load_config` (``**{"period.end": "2024-03-31"}``).
    """
    demo_dir = Path(demo_dir).resolve()
    scenario = demo_dir / "scenario"
    catalog = scenario / "catalog" / "catalog.json"
    if not catalog.exists():
        raise ConfigError(
            f"{catalog} does not exist; run `python -m pipeline demo --out {demo_dir}` first "
            "or set KP_DEMO_DIR to a demo output folder"
        )
    base = {"aois": [str(scenario / "aoi.geojson")], "source.url": str(catalog), "out_dir": str(demo_dir)}
    return load_config(config, **{**base, **overrides})


def open_aoi(
    cfg: MonitorConfig, aoi_id: str | None = None, *, today: dt.date | None = None
) -> AOICube:
    """Open one AOI of ``cfg`` as a lazy cloud-masked cube (the first AOI by default).

    The AOI file's overrides (``detect``, ``radar``, ... properties) are applied to
    ``cube.cfg``, as :func:`pipeline.run.run_monitor` applies them (:class:`AOIJob`).

    Runs the search and the window cache (the only I/O), then builds the lazy graph
    ``open_scenes -> to_reflectance -> mask_clouds`` through
    :func:`pipeline.workflow.open_aoi_scenes`, and the scored Sentinel-1 evidence when the
    config enables radar (``cube.radar``; a radar failure leaves it ``None`` and says why
    in ``cube.radar_status``), through the run's own functions.

    Raises
    ------
    ConfigError
        ``aoi_id`` is not in the config's AOI files.
    MonitorError
        Whatever the search or the cache raise (no scenes, unreachable source, ...).
    """
    aois = read_aois(cfg.aois, max_area_km2=cfg.max_aoi_area_km2)
    if aoi_id is None:
        aoi_id = str(aois["aoi_id"].iloc[0])
    match = aois[aois["aoi_id"] == aoi_id]
    if match.empty:
        known = ", ".join(map(str, aois["aoi_id"]))
        raise ConfigError(f"AOI {aoi_id!r} is not in the config's AOI files (known: {known})")
    job = AOIJob.plan(match.iloc[0], cfg, today=today)
    radar, radar_status = None, "off"
    with gdal_env(job.cfg.gdal_options):
        scenes = open_aoi_scenes(job)
        if job.cfg.radar.enabled:
            radar, radar_status = open_radar_or_none(job, grid=scenes.grid)
    return AOICube(
        job=job, grid=scenes.grid, masked=scenes.masked, items=scenes.items, radar=radar, radar_status=radar_status
    )


def detect_sites(
    cube: AOICube,
    *,
    detect_params: DetectParams | None = None,
    sites_params: SitesParams | None = None,
    masked: xr.Dataset | None = None,
) -> DetectResult:
    """Run detect -> sites on one AOI with the given thresholds (default: the cube's config).

    The same stage functions as ``run.py`` (:func:`pipeline.detect.detect_change` with the
    cube's radar when it has some, one ``dask.compute``,
    :func:`pipeline.sites.delineate_sites`) without tracking against a previous run, so
    site ids and statuses are those of a first run. Pass ``masked`` to reuse a cube
    already loaded in memory (``cube.masked.load()``) across several settings.
    """
    dp = detect_params if detect_params is not None else cube.cfg.detect
    sp = sites_params if sites_params is not None else cube.cfg.sites
    data = cube.masked if masked is None else masked
    flags, change = detect_change(data, start=cube.start, params=dp, radar=cube.radar, radar_params=cube.cfg.radar)
    flags_np, change_np = dask.compute(flags, change)
    site_gdf, site_mask, change_np = delineate_sites(
        flags_np, change_np, aoi_id=cube.aoi_id, aoi_mask=cube.grid.aoi_mask, crs=cube.crs,
        last_period_start=cube.job.last_period_start, detect_params=dp, sites_params=sp, record_end=cube.job.end,
    )
    return DetectResult(sites=site_gdf, flags=flags_np, change=change_np, site_mask=site_mask)


def named_composites(cube: AOICube) -> xr.Dataset:
    """The AOI's named composites (``cube.cfg.composites``: semiannual, dry season) over the
    searched span, lazy: the same windows and method as the run writes under
    ``composites/`` (:func:`pipeline.workflow.named_composites`).

    Raises
    ------
    ConfigError
        The searched span holds no composite window.
    """
    named = workflow_named_composites(cube.job, cube.masked)
    if named is None:
        raise ConfigError(
            f"no composite window of composites.products fits {cube.job.search_start}..{cube.end}; "
            "lengthen the period or detect.baseline_days"
        )
    return named


def sites_map_html(
    rgb: np.ndarray,
    extent_utm: tuple[float, float, float, float],
    site_gdf: gpd.GeoDataFrame,
    *,
    title: str = "",
    width_px: int = 720,
) -> str:
    """An HTML map: sites as SVG outlines over a true-colour image, with a linked table.

    Parameters
    ----------
    rgb
        ``(H, W, 3)`` reflectance (NaN: no data), row 0 north, covering ``extent_utm``.
    extent_utm
        ``(left, bottom, right, top)`` in the metres of the sites' CRS.
    site_gdf
        Sites in the same (projected) CRS with :data:`pipeline.sites.SITE_COLUMNS`.
    title
        Caption (escaped: AOI names come from input files).
    width_px
        Display width of the map.

    Returns
    -------
    str
        Self-contained HTML (the image as a PNG data URI, no script, nothing fetched).
        Hovering a site shows its id, status, area and dates; clicking it jumps to its
        row in the table, which also gives each site's centre in degrees.
    """
    h, w = rgb.shape[:2]
    img = stretch_rgb(rgb, stretch_limits(rgb))  # RGBA; no data is transparent
    buf = io.BytesIO()
    imsave(buf, img, format="png")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    left, bottom, right, top = extent_utm
    sx, sy = w / (right - left), h / (top - bottom)

    def path_of(geom: Any) -> str:
        polys = getattr(geom, "geoms", [geom])
        parts = []
        for poly in polys:
            for ring in [poly.exterior, *poly.interiors]:
                pts = " L".join(f"{(x - left) * sx:.1f},{(top - y) * sy:.1f}" for x, y in ring.coords)
                parts.append(f"M{pts} Z")
        return " ".join(parts)

    e = html.escape
    shapes, rows = [], []
    if not site_gdf.empty:
        lonlat = site_gdf.geometry.representative_point().to_crs(4326)
        for k, (r, pt) in enumerate(zip(site_gdf.itertuples(), lonlat, strict=True)):
            colour = STATUS_COLOURS.get(str(r.status), "#ffffff")
            tip = (f"{r.site_id}: {r.status}, {float(r.area_ha):.2f} ha, "
                   f"first seen {r.first_seen}, last seen {r.last_seen}")
            shapes.append(
                f'<a href="#site-{k}"><path d="{path_of(r.geometry)}" fill="{colour}" fill-opacity="0.25" '
                f'stroke="{colour}" stroke-width="2" fill-rule="evenodd"><title>{e(tip)}</title></path></a>'
            )
            rows.append(
                f'<tr id="site-{k}"><td><span style="color:{colour}">&#9632;</span> {e(str(r.site_id))}</td>'
                f"<td>{e(str(r.status))}</td><td style='text-align:right'>{float(r.area_ha):.2f}</td>"
                f"<td>{e(str(r.first_seen))}</td><td>{e(str(r.last_seen))}</td>"
                f"<td style='text-align:right'>{float(r.confidence):.2f}</td>"
                f"<td>{pt.y:.5f}, {pt.x:.5f}</td></tr>"
            )
    height_px = round(width_px * h / w)
    return (
        f'<figure style="margin:0"><svg xmlns="http://www.w3.org/2000/svg" width="{width_px}" '
        f'height="{height_px}" viewBox="0 0 {w} {h}"><image href="{uri}" width="{w}" height="{h}"/>'
        f'{"".join(shapes)}</svg><figcaption>{e(title)} &middot; {len(rows)} site(s); hover a site for '
        "its details, click it for its row</figcaption></figure>"
        '<table><thead><tr><th>site_id</th><th>status</th><th>area (ha)</th><th>first seen</th>'
        "<th>last seen</th><th>confidence</th><th>lat, lon (deg)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
