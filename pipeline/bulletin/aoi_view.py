"""One AOI's section of the bulletin: counts, map, before/after chips, activity, site table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from matplotlib.figure import Figure
from pyproj import Transformer

from . import figures as fg
from .chips import chip_pair, chips_note
from .context import AOIReport
from .formatting import _DASH, _date, _ha, _long_date, _method_name, _num, _pct, _period_text, _slug
from .i18n import _, ngettext
from .interactive import map_payload
from .selection import MAX_CHIPS, _chip_sites, _latest_or_sum, _status_counts
from .statuses import STATUS_ORDER, label
from .tables import _dismissed_rows, _site_rows
from .wording import confirmable_text, failure_text, participant_text

__all__ = ["coverage_text", "evidence_text"]

#: Writes a figure under a file name and returns what the ``<img src>`` gets (a data URI).
SaveFigure = Callable[[Figure, str], str]


def evidence_text(radar_status: str, n_radar_scenes: int) -> str:
    """One sentence on which sensors the AOI's detections rest on.

    >>> evidence_text("used", 31)
    'Sentinel-2 optical and Sentinel-1 radar (31 scenes) fused before confirmation.'
    >>> evidence_text("unavailable: no sentinel-1-rtc items", 0)
    'Sentinel-2 optical only; radar was requested but unavailable: no sentinel-1-rtc items.'
    """
    if radar_status == "used":
        return ngettext("Sentinel-2 optical and Sentinel-1 radar ({n} scene) fused before confirmation.",
                        "Sentinel-2 optical and Sentinel-1 radar ({n} scenes) fused before confirmation.",
                        n_radar_scenes)
    if radar_status.startswith("unavailable"):
        reason = radar_status.partition(":")[2].strip().rstrip(".")
        return _("Sentinel-2 optical only; radar was requested but unavailable: {reason}.", reason=reason)
    return _("Sentinel-2 optical only (radar not enabled).")


def coverage_text(uncovered_frac: float) -> str:
    """One sentence on the part of the AOI that no scene used covers.

    >>> import textwrap
    >>> print(textwrap.fill(coverage_text(0.4962), 88))
    50 % of this area of interest lies outside the footprint of every scene used: nothing is
    observed there, so no site can be detected, and that part counts as not seen clear.
    """
    return _("{share} of this area of interest lies outside the footprint of every scene used: nothing is "
             "observed there, so no site can be detected, and that part counts as not seen clear.",
             share=_pct(uncovered_frac))


def skipped_text(n_items: int) -> str:
    """One sentence on the items of an AOI left out because their imagery could not be read.

    >>> import textwrap
    >>> print(textwrap.fill(skipped_text(2), 88))
    2 items found for this area of interest were left out: their imagery could not be read.
    Each is listed, with the reason, in manifest.json (skipped_items).
    """
    return ngettext("{n} item found for this area of interest was left out: its imagery could not be read. "
                    "It is listed, with the reason, in manifest.json (skipped_items).",
                    "{n} items found for this area of interest were left out: their imagery could not be read. "
                    "Each is listed, with the reason, in manifest.json (skipped_items).", n_items)


def _aoi_view(report: AOIReport, save: SaveFigure, *, max_chips: int = MAX_CHIPS) -> dict[str, Any]:
    """Format one AOI for the template; renders and saves its figures via ``save``."""
    slug = _slug(report.aoi_id)
    sites = report.sites if report.sites is not None else gpd.GeoDataFrame()
    sites_utm = report.sites_utm if report.sites_utm is not None else gpd.GeoDataFrame()
    activity = report.activity if report.activity is not None else pd.DataFrame()
    view = _aoi_header(report, slug, sites, activity)
    if report.error is not None:
        return view
    limits = fg.stretch_limits(report.rgb_before, report.rgb_after)
    view["map"] = _site_map(report, sites_utm, limits, slug, save)
    view["has_inset"] = bool(view["map"]) and _boundary_and_location(report)[1] is not None
    view["interactive"] = map_payload(
        report, limits,
        _("Before: {period}", period=_period_text(activity, first=True)),
        _("After: {period}", period=_period_text(activity, first=False)),
    ) if view["map"] else None
    view["chips_note"], view["chips"] = _chips(report, sites_utm, activity, limits, slug, save, max_chips)
    if not activity.empty:
        view["activity_chart"] = save(fg.plot_activity(activity), f"activity_{slug}.png")
        view["activity_rows"] = _activity_rows(activity)
    view["site_rows"] = _site_rows(sites, report)
    view["dismissed_rows"] = _dismissed_rows(report.dismissed)
    return view


def _aoi_header(
    report: AOIReport, slug: str, sites: gpd.GeoDataFrame, activity: pd.DataFrame
) -> dict[str, Any]:
    """The AOI's identity and counts, with empty figures and tables (all a failed AOI shows)."""
    counts = _status_counts(sites)
    return {
        "aoi_id": report.aoi_id,
        "anchor": f"aoi-{slug}",
        "name": report.name,
        "participant": report.participant,
        "participant_iso3": report.participant_iso3,
        "epsg": report.epsg,
        "error": failure_text(report.failure) if report.error is not None else None,
        "evidence": evidence_text(report.radar_status, report.n_radar_scenes),
        "coverage": coverage_text(report.uncovered_frac)
        if report.coverage_warning and report.uncovered_frac is not None else "",
        "skipped": skipped_text(report.skipped_items) if report.skipped_items else "",
        "confirmable": confirmable_text(report),
        "participant_note": participant_text(report),
        "view_method": _method_name(report.view_method),
        "map": None,
        "has_inset": False,
        "interactive": None,
        "chips": [],
        "chips_note": "",
        "activity_chart": None,
        "activity_rows": [],
        "site_rows": [],
        "dismissed_rows": [],
        "counts": {s: counts.get(s, 0) for s in STATUS_ORDER},
        "total_ha": _DASH if sites.empty
        # Sums at the tables' precision (0.01 ha), as the summary states them (facts.py).
        else _ha(round(float(pd.to_numeric(sites["area_ha"], errors="coerce").sum()), 2)),
        "new_ha": _DASH if activity.empty else _ha(round(_latest_or_sum(activity, "new_ha", latest=False), 2)),
        "latest_valid": _DASH if activity.empty
        else _pct(activity.sort_values("period_start").iloc[-1].get("valid_fraction")),
    }


def _site_map(
    report: AOIReport, sites_utm: gpd.GeoDataFrame, limits: tuple[float, float], slug: str,
    save: SaveFigure,
) -> str | None:
    """The site map over the last composite (``None`` with neither imagery nor sites)."""
    has_image = report.rgb_after is not None or report.rgb_before is not None
    if not has_image and sites_utm.empty:
        return None
    after = report.rgb_after if report.rgb_after is not None else report.rgb_before
    if report.dismissed is not None and not report.dismissed.empty:
        # False alarms are drawn too (dotted, marked), so a reader sees what was set aside.
        dismissed = report.dismissed.to_crs(report.epsg)
        sites_utm = gpd.GeoDataFrame(pd.concat([dismissed, sites_utm], ignore_index=True), crs=dismissed.crs)
    boundary_utm, locator = _boundary_and_location(report)
    fig = fg.plot_site_map(after, report.extent_utm, sites_utm, epsg=report.epsg,
                           aoi_id=report.aoi_id, limits=limits, boundary_utm=boundary_utm, locator=locator)
    return save(fig, f"map_{slug}.png")


def _boundary_and_location(report: AOIReport) -> tuple[Any, tuple[float, float] | None]:
    """The AOI boundary in the map's UTM CRS (``None`` when unknown), and the AOI's ``(lon, lat)``
    for the locator inset (the boundary's centroid, else the centre of the map's extent)."""
    tr = Transformer.from_crs(4326, report.epsg, always_xy=True)
    boundary = report.boundary
    if boundary is not None and not getattr(boundary, "is_empty", True):
        centre = boundary.centroid
        utm = shapely.transform(boundary, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))
        return utm, (float(centre.x), float(centre.y))
    left, bottom, right, top = (float(v) for v in report.extent_utm)
    if not (right > left and top > bottom):
        return None, None
    lon, lat = Transformer.from_crs(report.epsg, 4326, always_xy=True).transform((left + right) / 2,
                                                                                 (bottom + top) / 2)
    return None, (float(lon), float(lat))


def _chips(
    report: AOIReport, sites_utm: gpd.GeoDataFrame, activity: pd.DataFrame, limits: tuple[float, float],
    slug: str, save: SaveFigure, max_chips: int,
) -> tuple[str, list[dict[str, Any]]]:
    """The sentence saying how many new or expanding sites have chips, and their chips."""
    chip_sites, n_candidates = _chip_sites(sites_utm, max_chips)
    # One stretch for every dry-season composite of the AOI: a chip's change is on the ground.
    season_limits = fg.stretch_limits(*(v.rgb for v in report.season_views)) if report.season_views else limits
    chips = [_site_chips(report, row, activity, limits, season_limits, slug, save)
             for _key, row in chip_sites.iterrows()]
    return (chips_note(len(chip_sites), n_candidates) if n_candidates else ""), chips


def _site_chips(
    report: AOIReport, row: pd.Series, activity: pd.DataFrame, limits: tuple[float, float],
    season_limits: tuple[float, float], slug: str, save: SaveFigure,
) -> dict[str, Any]:
    """Before/after chips of one new or expanding site (same season when the dry-season
    composites allow: :func:`~.chips.chip_pair`), with its caption."""
    pair = chip_pair(
        report.season_views, row.get("first_seen"),
        fallback=(report.rgb_before, report.rgb_after),
        periods=(_period_text(activity, first=True), _period_text(activity, first=False)),
        last_period=_period_bounds(activity, first=False), first_period=_period_bounds(activity, first=True),
    )
    fig = fg.plot_site_chips(
        pair.before, pair.after, report.extent_utm, row,
        geometry=row.geometry, aoi_id=report.aoi_id, limits=season_limits if pair.same_season else limits,
        labels=(_("before"), _("after")), sublabels=pair.windows,
    )
    return {
        "src": save(fig, f"chips_{slug}_{_slug(str(row['site_id']))}.png"),
        "site_id": str(row["site_id"]),
        "label": fg.short_site_label(row["site_id"], report.aoi_id),
        "status": str(row["status"]),
        "status_label": label(str(row["status"])),
        "area_ha": _ha(row.get("area_ha")),
        "confidence": _num(row.get("confidence"), 2),
        "first_seen": _DASH if _date(first := row.get("first_seen")) == _DASH else _long_date(first),
        "windows": pair.caption,
        "same_season": pair.same_season,
    }


def _period_bounds(activity: pd.DataFrame, *, first: bool) -> tuple[dt.date, dt.date] | None:
    """First and last day of the first (or last) reporting period of ``activity`` (``None`` when empty)."""
    if activity is None or activity.empty:
        return None
    last = activity.sort_values("period_start").iloc[0 if first else -1]
    start = pd.to_datetime(last["period_start"], errors="coerce")
    end = pd.to_datetime(last["period_end"], errors="coerce")
    return None if pd.isna(start) or pd.isna(end) else (start.date(), end.date())


def _activity_rows(activity: pd.DataFrame) -> list[dict[str, str]]:
    """One row per period: dates, disturbed and new hectares, share of clear observations."""
    return [{
        "start": _date(r.period_start), "end": _date(r.period_end),
        "disturbed_ha": _ha(r.disturbed_ha), "new_ha": _ha(r.new_ha),
        "valid": _pct(getattr(r, "valid_fraction", None)),
    } for r in activity.sort_values("period_start").itertuples()]
