"""Rows of the bulletin's main tables: sites, cross-check, flags and anomalies, new sites.

Each function turns a frame into a list of dicts of display strings for the template
(which escapes them).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import pandas as pd
from pyproj import Transformer

from .context import AOIReport, BulletinContext
from .figures import short_site_label
from .formatting import _DASH, _carats, _date, _ha, _int, _lonlat, _num, _pct, _ratio, _split_flags, _text, _year
from .i18n import _
from .statuses import STATUS_ORDER, label
from .wording import rule_title

__all__: list[str] = []


def _site_rows(sites: gpd.GeoDataFrame, report: AOIReport) -> list[dict[str, Any]]:
    """One row per site: most urgent status first, then largest first."""
    if sites.empty:
        return []
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    frame = sites.assign(
        _rank=sites["status"].map(lambda s: rank.get(str(s), 9)),
        _area=pd.to_numeric(sites["area_ha"], errors="coerce"),
    ).sort_values(["_rank", "_area"], ascending=[True, False])
    lonlat = _centroids_lonlat(frame)
    rows = []
    for (_row, r), (lon, lat) in zip(frame.iterrows(), lonlat, strict=True):
        rows.append({
            "label": short_site_label(r["site_id"], report.aoi_id),
            "site_id": str(r["site_id"]),
            "status": str(r["status"]),
            "status_label": label(str(r["status"])),
            "area_ha": _ha(r.get("area_ha")),
            "first_seen": _date(r.get("first_seen")),
            "last_seen": _date(r.get("last_seen")),
            "confidence": _num(r.get("confidence"), 2),
            "n_obs": _int(r.get("n_obs")),
            "where": _lonlat(lon, lat),
            "note": _text(r.get("note")) if "note" in frame.columns else "",
            "verdict": _text(r.get("verdict")) or "unreviewed",
            "verdict_label": label(_text(r.get("verdict")) or "unreviewed"),
            "reviewed_on": _date(r.get("reviewed_on")) if r.get("reviewed_on") else "",
            "new_since_previous": str(r["site_id"]) in set(report.new_since_previous),
            "listed_again": str(r["site_id"]) in set(report.listed_again),
            "provisional": bool(pd.notna(r.get("provisional")) and r.get("provisional")),
        })
    return rows


def _dismissed_rows(dismissed: gpd.GeoDataFrame | None) -> list[dict[str, str]]:
    """One row per site analysts dismissed as a false alarm (largest first)."""
    if dismissed is None or dismissed.empty:
        return []
    frame = dismissed.assign(_area=pd.to_numeric(dismissed["area_ha"], errors="coerce")).sort_values(
        "_area", ascending=False)
    return [
        {"site_id": str(r["site_id"]), "area_ha": _ha(r.get("area_ha")), "first_seen": _date(r.get("first_seen")),
         "reviewed_on": _date(r.get("reviewed_on")), "where": _lonlat(lon, lat)}
        for (_row, r), (lon, lat) in zip(frame.iterrows(), _centroids_lonlat(frame), strict=True)
    ]


def _centroids_lonlat(sites: gpd.GeoDataFrame) -> list[tuple[float, float]]:
    """A point inside each site, in longitude and latitude (NaN for empty geometries)."""
    out: list[tuple[float, float]] = []
    if sites.crs is not None and not sites.crs.equals("EPSG:4326"):
        tr = Transformer.from_crs(sites.crs, 4326, always_xy=True)
    else:
        tr = None
    for geom in sites.geometry:
        if geom is None or geom.is_empty:
            out.append((math.nan, math.nan))
            continue
        # Representative point: always inside the polygon, unlike the centroid.
        p = geom.representative_point()
        out.append(tr.transform(p.x, p.y) if tr else (p.x, p.y))
    return out


def _crosscheck_rows(
    frame: pd.DataFrame | None,
    names: Mapping[str, str],
    source_index: Mapping[tuple[str, str], list[int]],
    comparisons: list[dict[str, Any]] | None = None,
    bases: Mapping[tuple[str, str], str] | None = None,
) -> list[dict[str, Any]]:
    """Cross-check rows: carats to 2 significant figures, the share of the year monitored, the
    declared figure with its basis and source numbers, and "not comparable" where the year is
    covered too little (``comparisons``: :func:`pipeline.bulletin.facts.comparison_rows`)."""
    if frame is None or frame.empty:
        return []
    comparable = {(c["aoi_id"], c["year"]): c["comparable"] for c in comparisons or []}
    rows = []
    for r in frame.sort_values(["participant_iso3", "aoi_id", "year"]).itertuples():
        flags = _split_flags(getattr(r, "flags", ""))
        year = _year(r.year)
        declared = _int(r.declared_carats)
        coverage = getattr(r, "coverage_frac", None)
        ok = comparable.get((str(r.aoi_id), int(r.year)), True)
        rows.append({
            "participant_iso3": str(r.participant_iso3),
            "aoi": names.get(str(r.aoi_id), str(r.aoi_id)),
            "year": year,
            "coverage": _pct(coverage),
            "disturbed_ha": _ha(r.disturbed_ha),
            "carats": _carats(r.est_carats_low, r.est_carats_high),
            "declared": declared,
            "basis": (bases or {}).get((str(r.participant_iso3), year), ""),
            "ratio": _ratio(r.ratio) if ok or declared == _DASH else _("not comparable"),
            "comparable": ok,
            "flags": [rule_title(f) for f in flags],
            "sources": source_index.get((str(r.participant_iso3), year), []),
        })
    return rows


def _flag_rows(frame: pd.DataFrame | None, names: Mapping[str, str]) -> list[dict[str, str]]:
    """Flags (or anomalies) in the reader's words: the rule's title, AOI names for AOI ids
    (also inside the explanation). Evidence strings (``key=value``) stay in ``flags.csv``."""
    if frame is None or frame.empty:
        return []
    rows = []
    for r in frame.itertuples():
        aoi = _text(getattr(r, "aoi_id", ""))
        explanation = _text(getattr(r, "explanation", ""))
        if aoi and aoi in names:
            explanation = explanation.replace(f"AOI {aoi}", names[aoi]).replace(aoi, names[aoi])
        rows.append({
            "rule": rule_title(r.rule),
            "participant_iso3": _text(getattr(r, "participant_iso3", "")),
            "aoi": names.get(aoi, aoi),
            "period": _text(getattr(r, "period", "")).replace("/", _(" to ")),
            "explanation": explanation,
        })
    return rows


def _new_since_rows(context: BulletinContext, *, again: bool = False) -> list[dict[str, str]]:
    """The sites reported for the first time (``again``: listed again after an absence), AOI by AOI."""
    rows = []
    for a in context.aois:
        ids = a.listed_again if again else a.new_since_previous
        if not ids:
            continue
        lookup = a.sites.set_index(a.sites["site_id"].astype(str)) if not a.sites.empty else None
        for sid in ids:
            r = lookup.loc[sid] if lookup is not None and sid in lookup.index else None
            if isinstance(r, pd.DataFrame):
                r = r.iloc[0]
            rows.append({
                "aoi": a.name,
                "site_id": sid,
                "label": short_site_label(sid, a.aoi_id),
                "status": _text(r["status"]) if r is not None else _DASH,
                "status_label": label(_text(r["status"])) if r is not None else _DASH,
                "area_ha": _ha(r["area_ha"]) if r is not None else _DASH,
                "first_seen": _date(r["first_seen"]) if r is not None else _DASH,
            })
    return rows
