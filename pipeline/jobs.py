"""Value objects of one AOI's run: what to compute (:class:`AOIJob`) and on which grid (:class:`AOIGrid`).

An :class:`AOIJob` is one row of :func:`pipeline.aoi.read_aois` with the configuration
that applies to it (the AOI file's overrides merged in) and its dates: the monitoring
period, the reporting periods and the first date searched (the baseline). It is the one
place where ``search_start`` is derived, for the run and for the notebooks alike.

An :class:`AOIGrid` is the AOI's UTM pixel grid: the ``odc.geo`` GeoBox the cube is read
on, its EPSG code, the AOI polygon in that CRS, and, computed once, the affine transform
and the boolean AOI mask every later stage needs (sites outside the AOI, activity and
composite statistics inside it).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
from affine import Affine
from odc.geo.geobox import GeoBox
from shapely.geometry.base import BaseGeometry

from . import preprocess
from .acquire import aoi_geobox
from .aoi import aoi_bounds_utm, utm_crs_for
from .config import AOI_OVERRIDE_SECTIONS, MonitorConfig, aoi_config
from .countries import km_outside

__all__ = ["AOIGrid", "AOIJob", "aoi_config_for", "aoi_overrides", "monitoring_period", "plan_jobs",
           "warn_aois", "warn_participant", "warn_too_small"]

log = logging.getLogger("pipeline")


@dataclass(frozen=True, eq=False)
class AOIGrid:
    """One AOI's UTM pixel grid. Build it with :meth:`for_aoi`.

    ``geobox`` covers the AOI plus the read margin; ``aoi_utm`` is the AOI polygon in
    ``EPSG:{epsg}``. :attr:`transform` and :attr:`aoi_mask` are computed on first use and
    kept.
    """

    geobox: GeoBox
    epsg: int
    aoi_utm: BaseGeometry

    @classmethod
    def for_aoi(cls, geometry: BaseGeometry, *, margin_m: float, resolution_m: float) -> AOIGrid:
        """The grid of an AOI polygon given in EPSG:4326: its UTM zone, its bounds plus
        ``margin_m`` on every side (:func:`pipeline.aoi.aoi_bounds_utm`, edges densified),
        snapped outwards to ``resolution_m`` (:func:`pipeline.acquire.aoi_geobox`)."""
        code = utm_crs_for(geometry).to_epsg()
        assert code is not None  # utm_crs_for returns WGS 84 / UTM zones, which all have EPSG codes
        epsg = int(code)
        aoi_utm = gpd.GeoSeries([geometry], crs=4326).to_crs(epsg).iloc[0]
        bounds = aoi_bounds_utm(geometry, margin_m=margin_m)
        return cls(geobox=aoi_geobox(bounds, epsg=epsg, resolution_m=resolution_m), epsg=epsg, aoi_utm=aoi_utm)

    @property
    def crs(self) -> str:
        """``"EPSG:{epsg}"``."""
        return f"EPSG:{self.epsg}"

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` pixels."""
        ny, nx = self.geobox.shape
        return int(ny), int(nx)

    @cached_property
    def transform(self) -> Affine:
        """Affine transform of the grid (pixel corner, metres)."""
        return Affine(*tuple(self.geobox.affine)[:6])

    @cached_property
    def aoi_mask(self) -> np.ndarray:
        """bool ``(y, x)``: pixels whose centre lies inside the AOI polygon."""
        return rasterio.features.geometry_mask(
            [self.aoi_utm], out_shape=self.shape, transform=self.transform, invert=True
        )

    @property
    def pixel_area_m2(self) -> float:
        return abs(self.transform.a * self.transform.e)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of the grid, metres."""
        return tuple(float(v) for v in self.geobox.extent.boundingbox)  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class AOIJob:
    """One AOI's work order: its row, the configuration that applies to it, its dates.

    ``cfg`` has the AOI file's overrides applied (:func:`aoi_config_for`). ``periods`` are
    the reporting periods of ``start..end``; the search starts ``detect.baseline_days``
    before ``start`` (:attr:`search_start`), so the per-pixel baseline has imagery.
    """

    row: pd.Series
    cfg: MonitorConfig
    start: dt.date
    end: dt.date
    periods: tuple[tuple[dt.date, dt.date], ...]

    @classmethod
    def plan(cls, row: pd.Series, cfg: MonitorConfig, *, today: dt.date | None = None) -> AOIJob:
        """The job of one row of :func:`pipeline.aoi.read_aois` under ``cfg``.

        Raises
        ------
        ConfigError
            The AOI file's overrides are invalid (one line naming the file and key).
        """
        start, end, periods = monitoring_period(cfg, today=today)
        return cls(row=row, cfg=aoi_config_for(row, cfg), start=start, end=end, periods=periods)

    @property
    def aoi_id(self) -> str:
        return str(self.row["aoi_id"])

    @property
    def name(self) -> str:
        return str(self.row.get("name", self.aoi_id))

    @property
    def geometry(self) -> BaseGeometry:
        """The AOI polygon, EPSG:4326."""
        return self.row.geometry

    @property
    def search_start(self) -> dt.date:
        """First date searched: the baseline of ``detect.baseline_days`` before ``start``."""
        return self.start - dt.timedelta(days=self.cfg.detect.baseline_days)

    @property
    def last_period_start(self) -> dt.date:
        return self.periods[-1][0]

    def grid(self) -> AOIGrid:
        """The AOI's pixel grid (``acquire.margin_m``, ``acquire.resolution_m``)."""
        return AOIGrid.for_aoi(
            self.geometry, margin_m=self.cfg.acquire.margin_m, resolution_m=self.cfg.acquire.resolution_m
        )


def monitoring_period(
    cfg: MonitorConfig, *, today: dt.date | None = None
) -> tuple[dt.date, dt.date, tuple[tuple[dt.date, dt.date], ...]]:
    """``(start, end, reporting periods)`` of a run (``period``; ``today`` ends open periods)."""
    start, end = cfg.period.resolved(today)
    periods = preprocess.reporting_periods(start, end, months=cfg.period.period_months)
    return start, end, tuple(periods)


def plan_jobs(aois: pd.DataFrame, cfg: MonitorConfig, *, today: dt.date | None = None) -> list[AOIJob]:
    """One :class:`AOIJob` per AOI row; every AOI file's overrides are checked here, up front."""
    return [AOIJob.plan(row, cfg, today=today) for _, row in aois.iterrows()]


def warn_aois(jobs: Sequence[AOIJob], cfg: MonitorConfig) -> None:
    """The warnings about each AOI before a run: :func:`warn_participant` (unless
    ``participant_outline_km`` is ``None``) and :func:`warn_too_small`. Called once the inputs
    passed their checks: a refused run says one line, not these too."""
    for job in jobs:
        if cfg.participant_outline_km is not None:
            warn_participant(job.row, job.geometry, tolerance_km=cfg.participant_outline_km)
        warn_too_small(job)


def warn_too_small(job: AOIJob) -> bool:
    """Log a warning when the AOI's area is below the minimum mapping unit (``sites.min_area_m2``):
    no site can be mapped in it, and its bulletin section would read as quiet; ``True`` if it did."""
    area_m2 = float(job.row.get("area_km2", float("nan"))) * 1e6
    least = job.cfg.sites.min_area_m2
    if not area_m2 < least:
        return False
    log.warning("AOI file %s (aoi_id '%s'): its area, %.0f m², is below sites.min_area_m2 (%.0f m²): no site can be "
                "mapped in it, so its bulletin section can only read as quiet; draw the AOI around the whole "
                "diggings", job.row.get("source_file", "?"), job.aoi_id, area_m2, least)
    return True


def warn_participant(row: Mapping[str, Any], geometry: BaseGeometry, *, tolerance_km: float) -> bool:
    """Log a warning when ``geometry`` lies more than ``tolerance_km`` outside the outline of the
    country the AOI's ``participant_iso3`` names (``participant_outline_km``); ``True`` if it did.
    A code no outline carries is not checked."""
    found = participant_outside(row, geometry, tolerance_km=tolerance_km)
    if found is None:
        return False
    km, name = found
    iso3 = str(row.get("participant_iso3") or "")
    log.warning("AOI file %s (aoi_id '%s'): participant_iso3 %s names %s, but the AOI lies %.0f km outside its "
                "outline (Natural Earth 1:110m); its activity is compared with %s's declared production: check "
                "participant_iso3 and the coordinates", row.get("source_file", "?"), row.get("aoi_id", "?"), iso3,
                name, km, iso3)
    return True


def participant_outside(row: Mapping[str, Any], geometry: BaseGeometry, *,
                        tolerance_km: float | None) -> tuple[float, str] | None:
    """How far (km) ``geometry`` lies outside the outline of the country the AOI's
    ``participant_iso3`` names, and that country's name, when farther than ``tolerance_km``
    (``participant_outline_km``); else ``None`` (also for a code no outline carries, and when
    ``tolerance_km`` is ``None``: no check)."""
    iso3 = str(row.get("participant_iso3") or "")
    if not iso3 or tolerance_km is None:
        return None
    found = km_outside(geometry, iso3)
    return found if found is not None and found[0] > tolerance_km else None


def aoi_config_for(row: pd.Series, cfg: MonitorConfig) -> MonitorConfig:
    """``cfg`` with the overrides of one AOI file feature (a row of :func:`read_aois`) applied.

    Raises
    ------
    ConfigError
        An override names an unknown key or an invalid value (one line naming the AOI file,
        the ``aoi_id`` and the ``section.key``).
    """
    overrides = {name: row.get(name) for name in AOI_OVERRIDE_SECTIONS if isinstance(row.get(name), dict)}
    where = f"AOI file {row.get('source_file', '?')} (aoi_id '{row['aoi_id']}')"
    out = aoi_config(cfg, overrides, where=where)
    model = out.detect.site_model
    if model is not None and not model.is_absolute() and row.get("source_file"):
        # An AOI file's model folder is relative to that file, as the config's are to the YAML.
        resolved = (Path(str(row["source_file"])).parent / model).resolve()
        out = out.model_copy(update={"detect": out.detect.model_copy(update={"site_model": resolved})})
    return out


def aoi_overrides(row: pd.Series | Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-AOI overrides a row of :func:`read_aois` carries (section -> settings)."""
    return {
        name: dict(row[name]) for name in AOI_OVERRIDE_SECTIONS if isinstance(row.get(name), dict) and row[name]
    }
