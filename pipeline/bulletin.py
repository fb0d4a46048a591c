"""EDGE: render the numbered WGM monitoring bulletin (HTML, PDF, figures).

``run.py`` assembles a :class:`BulletinContext` (one :class:`AOIReport` per
AOI, the cross-check frames, provenance) and calls :func:`render_bulletin`.
This module only formats and writes; it computes no statistics beyond sums
and counts for the executive summary (:func:`summarise`).

Outputs, in ``out_dir``:

- ``bulletin.html``: self-contained (figures as base64 data URIs, CSS inline,
  no scripts, no fonts or stylesheets fetched; a Content-Security-Policy that
  forbids every external load), opens offline;
- ``bulletin.pdf``: the same HTML rendered by WeasyPrint with the print CSS
  (A4 portrait, running header and footer on every page); WeasyPrint is given
  a URL fetcher that refuses everything but ``data:`` URIs;
- ``bulletin.json``: what the bulletin says, as data (:func:`bulletin_data`: numbering,
  summary, per-AOI counts, the sites new since the previous bulletin);
- ``figures/*.png``: every figure embedded in the bulletin.

Every file is written to a temporary name in its folder, then renamed
(``os.replace``), so it appears complete or not at all.

Every string that came from an input file (AOI names, site ids, notes, flag
explanations, sources) goes through Jinja2 autoescaping; hyperlinks are only
made for ``http``/``https`` URLs.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup, escape
from matplotlib.figure import Figure
from pyproj import Transformer

from . import figures as fg

__all__ = [
    "AOIReport",
    "BulletinContext",
    "DEMONSTRATION_MARKING",
    "STATUS_DEFINITIONS",
    "THRESHOLD_UNITS",
    "bulletin_data",
    "covered_participants",
    "render_bulletin",
    "split_anomalies",
    "summarise",
    "threshold_source",
    "threshold_unit",
]

#: Printed on every page when :attr:`BulletinContext.demonstration` is true.
DEMONSTRATION_MARKING = "DEMONSTRATION - SYNTHETIC IMAGERY"
#: Plain-language meaning of each site status, printed under the site tables.
STATUS_DEFINITIONS: dict[str, str] = {
    "new": "first detected in the latest period",
    "expanding": "known before and grew in the latest period",
    "active": "known before, fresh disturbance confirmed in the latest period without growth",
    "dormant": "no fresh disturbance in the latest period",
}
#: How many new/expanding sites get before/after chips, per AOI.
MAX_CHIPS = 4
#: Units of configuration fields whose name carries none (or an ambiguous one).
THRESHOLD_UNITS: dict[str, str] = {
    "scl_mask_classes": "SCL class codes",
    "min_valid_obs": "observations",
    "baseline_quantile": "quantile (0–1)",
    "ndvi_drop_min": "NDVI",
    "bare_ndvi_max": "NDVI",
    "bare_bsi_min": "BSI",
    "bright_min": "reflectance (0–1)",
    "water_mndwi_min": "MNDWI",
    "swir_change_min": "reflectance (0–1)",
    "min_confirmations": "observations",
    "regrowth_min_obs": "observations",
    "regrowth_ndvi_margin": "NDVI",
    "isolated_min_confidence": "confidence (0–1)",
    "declared_production": "CSV file",
    "trade_statistics": "CSV file",
    "sanctions_windows": "CSV file",
    "capacity_ratio_flag": "ratio (×)",
    "review_robust_z_max": "robust z",
    "review_min_history_n": "periods",
    "review_min_peers_n": "participants",
    "review_min_change_factor": "factor (×)",
    "enabled": "on / off",
    "source_url": "URL",
    "collection": "collection id",
    "bands": "asset names",
    "baseline_min_obs": "observations",
    "speckle_filter": "method",
    "enl": "looks",
    "temporal_mean_obs": "observations",
    "threshold_method": "method",
    "otsu_bins": "bins",
    "mask_valid_values": "mask codes",
    "radar_role": "mode",
    "regrowth_mean_obs": "observations",
    "grow_min_obs": "observations",
    "products": "product names",
    "method": "method",
    "dry_season_months": "calendar months (1–12)",
    "write": "on / off",
}
#: Field-name suffix -> unit (longest first: ``_ct_per_m3`` before ``_m3``).
_UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_ct_per_m3", "ct/m³"), ("_m3_per_day", "m³/day"), ("_km2", "km²"), ("_m2", "m²"),
    ("_m3", "m³"), ("_ha", "ha"), ("_px", "pixels"), ("_days", "days"), ("_frac", "fraction (0–1)"),
    ("_pct", "%"), ("_db", "dB"), ("_s", "s"), ("_m", "m"),
)
_BARE_SUFFIXES = frozenset({"m2", "m3", "m", "px", "days", "frac", "ha", "km2", "s", "pct", "db"})
_CITATION_PATTERNS: tuple[re.Pattern[str], ...] = (
    # Author-year: "Xu 2006", "Rikimaru et al. 2002", "Lobell and Asner 2002", "Iglewicz & Hoaglin (1993)"
    re.compile(r"\b[A-Z][A-Za-z'’-]+(?: et al\.| (?:and|&) [A-Z][A-Za-z'’-]+)? "
               r"(?:\((?:19|20)\d{2}\)|(?:19|20)\d{2}\b)"),
    re.compile(r"\bUSGS (?:OFR|SIR|Open-File Report|Scientific Investigations Report) \d{4}-\d{3,4}"),
    re.compile(r"\bESA Sen2Cor product specification"),
    re.compile(r"\bAmazon Mining Watch"),
    re.compile(r"\bpyeo\b"),
)
_TEMPLATES = Path(__file__).with_name("templates")
_DASH = "–"


@dataclass(frozen=True, eq=False)
class AOIReport:
    """Everything the bulletin shows about one area of interest.

    ``sites`` is EPSG:4326 with the ``sites.geojson`` columns; ``sites_utm`` holds
    the same rows in the AOI's UTM CRS (``epsg``), for drawing on the composites.
    ``rgb_before``/``rgb_after`` are ``(H, W, 3)`` float32 true-colour composites
    (reflectance, NaN = no data) of the first and last period, covering
    ``extent_utm`` = ``(left, bottom, right, top)`` in metres. When ``error`` is
    set, the AOI failed and the bulletin shows that message instead of results.
    """

    aoi_id: str
    name: str
    participant: str
    participant_iso3: str
    sites: gpd.GeoDataFrame
    sites_utm: gpd.GeoDataFrame
    activity: pd.DataFrame
    rgb_before: np.ndarray | None
    rgb_after: np.ndarray | None
    extent_utm: tuple[float, float, float, float]
    epsg: int
    new_since_previous: list[str] = field(default_factory=list)
    error: str | None = None
    radar_status: str = "off"
    """``off``, ``used`` or ``unavailable: <reason>`` (see :class:`pipeline.run.AOIResult`)."""
    n_radar_scenes: int = 0
    composites: list[dict[str, Any]] = field(default_factory=list)
    """Named composites (see :attr:`pipeline.run.AOIResult.composites`)."""
    view_method: str = ""
    """Composite method of ``rgb_before``/``rgb_after`` (``geomedian`` or ``median``; empty
    when unknown)."""


@dataclass(frozen=True, eq=False)
class BulletinContext:
    """One bulletin: numbering, period, markings, per-AOI reports, cross-check, provenance.

    ``scenes.cloud_cover`` is in percent (STAC ``eo:cloud_cover``).
    ``thresholds`` items are ``{"section", "key", "value", "unit", "description"}``
    (optionally ``"source"``). ``validation`` maps metric names to values when ground
    truth exists. ``previous_number`` is ``None`` for the first bulletin of an
    output root.
    """

    number: int
    title: str
    period_start: dt.date
    period_end: dt.date
    generated_at: dt.datetime
    distribution: str
    demonstration: bool
    aois: list[AOIReport]
    crosscheck: pd.DataFrame
    flags: pd.DataFrame
    anomalies: pd.DataFrame
    declared_sources: pd.DataFrame
    scenes: pd.DataFrame
    thresholds: list[dict[str, Any]]
    validation: dict[str, Any] | None
    software: dict[str, str]
    config_digest: str
    previous_number: int | None = None


def render_bulletin(
    context: BulletinContext, out_dir: Path, *, pdf: bool = True
) -> dict[str, Path]:
    """Write ``bulletin.html``, ``bulletin.json``, ``bulletin.pdf`` and ``figures/*.png`` into ``out_dir``.

    Parameters
    ----------
    context
        What to show; see :class:`BulletinContext`.
    out_dir
        Output folder, created if missing. Files are written atomically.
    pdf
        Also render ``bulletin.pdf`` with WeasyPrint.

    Returns
    -------
    dict
        Paths keyed by their name relative to ``out_dir``: ``"bulletin.html"``,
        ``"bulletin.json"``, ``"bulletin.pdf"`` (absent when ``pdf`` is false) and
        ``"figures/<name>.png"``.
    """
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    def save(fig: Figure, name: str) -> str:
        png = fg.figure_png(fig)
        fig.clear()
        path = fig_dir / name
        _write_atomic(path, png)
        written[f"figures/{name}"] = path
        return "data:image/png;base64," + base64.b64encode(png).decode("ascii")

    aoi_views = [_aoi_view(report, save) for report in context.aois]
    html = _render_html(context, aoi_views)
    html_path = out_dir / "bulletin.html"
    _write_atomic(html_path, html.encode("utf-8"))
    json_path = out_dir / "bulletin.json"
    _write_atomic(json_path, json.dumps(bulletin_data(context), indent=1, ensure_ascii=False).encode("utf-8"))
    result = {"bulletin.html": html_path, "bulletin.json": json_path}
    if pdf:
        pdf_path = out_dir / "bulletin.pdf"
        _write_atomic(pdf_path, _html_to_pdf(html, base=out_dir))
        result["bulletin.pdf"] = pdf_path
    result.update(written)
    return result


def bulletin_data(context: BulletinContext) -> dict[str, Any]:
    """What the bulletin says, as data (written as ``bulletin.json`` beside the HTML).

    Numbering, period, markings, the executive summary, and per AOI the site counts and
    the ids of the sites new since the previous bulletin (``new_since_previous``, also
    flattened at the top level: empty when nothing appeared, or for a first bulletin,
    where ``previous_number`` is ``None``). Counts of the flags and anomalies shown, and
    of the anomalies left to ``flags.csv``. Every threshold of the methods annex with its
    value, unit and source (``thresholds``), including the per-AOI rows.
    """
    shown, elsewhere = split_anomalies(context)
    aois: list[dict[str, Any]] = []
    for a in context.aois:
        counts = _status_counts(a.sites)
        aois.append({
            "aoi_id": a.aoi_id, "name": a.name, "participant_iso3": a.participant_iso3,
            "error": a.error,
            "n_sites": 0 if a.sites is None else len(a.sites),
            "status_counts": {s: counts.get(s, 0) for s in fg.STATUS_ORDER},
            "site_area_ha": round(float(pd.to_numeric(a.sites["area_ha"], errors="coerce").sum()), 4)
            if a.sites is not None and not a.sites.empty else 0.0,
            "new_since_previous": [str(s) for s in a.new_since_previous],
            "radar": {"status": a.radar_status, "n_scenes": a.n_radar_scenes},
            "composites": [dict(c) for c in a.composites],
            "view_method": a.view_method or None,
        })
    flags = context.flags if context.flags is not None else pd.DataFrame()
    return {
        "bulletin_number": context.number,
        "title": context.title,
        "period": {"start": context.period_start.isoformat(), "end": context.period_end.isoformat()},
        "generated_at": context.generated_at.isoformat(),
        "distribution": context.distribution,
        "demonstration": context.demonstration,
        "previous_number": context.previous_number,
        "new_since_previous": [str(s) for a in context.aois for s in a.new_since_previous],
        "aois": aois,
        "summary": summarise(context),
        "n_flags": len(flags),
        "flag_rules": sorted({str(r) for r in flags.get("rule", [])}),
        "n_anomalies_shown": len(shown),
        "n_anomalies_elsewhere": len(elsewhere),
        "thresholds": [
            {
                "section": str(t.get("section", "")),
                "key": str(t.get("key", "")),
                "value": t.get("value"),
                "unit": threshold_unit(str(t.get("key", "")), given=str(t.get("unit") or "")),
                "source": str(t.get("source") or "") or threshold_source(str(t.get("description", ""))),
            }
            for t in context.thresholds or []
        ],
        "config_digest": context.config_digest,
    }


def summarise(context: BulletinContext) -> list[str]:
    """Executive summary: plain sentences generated from the data.

    Covers new and expanding sites (count, hectares, where), the total tracked
    area, cross-check flags and statistical anomalies, AOIs that failed, and the
    comparison with the previous bulletin.
    """
    sentences: list[str] = []
    ok = [a for a in context.aois if a.error is None]
    failed = [a for a in context.aois if a.error is not None]
    participants = sorted({a.participant for a in context.aois})
    sentences.append(
        f"Bulletin {context.number} covers {context.period_start:%Y-%m-%d} to "
        f"{context.period_end:%Y-%m-%d}: {_count(len(context.aois), 'area')} of interest in "
        f"{_count(len(participants), 'participant')} ({_join(participants)})."
    )

    for status, label, verb in (("new", "new excavation site", "detected"),
                                ("expanding", "known site", "expanding")):
        per_aoi = [(a, _sites_with(a, status)) for a in ok]
        n = sum(len(s) for _, s in per_aoi)
        ha = sum(float(pd.to_numeric(s["area_ha"], errors="coerce").sum()) for _, s in per_aoi)
        if n == 0:
            if status == "new":
                sentences.append("0 new excavation sites were detected.")
            continue
        where = _join(f"{a.name} ({len(s)})" for a, s in per_aoi if len(s))
        sentences.append(f"{_count(n, label)} {'was' if n == 1 else 'were'} {verb}, "
                         f"covering {_ha(ha)} ha in total: {where}.")

    total_n = sum(len(a.sites) for a in ok)
    total_ha = sum(float(pd.to_numeric(a.sites["area_ha"], errors="coerce").sum())
                   for a in ok if not a.sites.empty)
    if ok:
        by_status = _status_counts(pd.concat([a.sites[["status"]] for a in ok if not
                                              a.sites.empty] or [pd.DataFrame({"status": []})]))
        parts = [f"{by_status[s]} {s}" for s in fg.STATUS_ORDER if by_status.get(s)]
        detail = f" ({', '.join(parts)})" if parts else ""
        sentences.append(
            f"In total {_count(total_n, 'site')}{detail} covering {_ha(total_ha)} ha are tracked."
        )
        new_ha = sum(_latest_or_sum(a.activity, "new_ha", latest=False) for a in ok)
        sentences.append(
            f"Newly disturbed ground over the covering period amounts to {_ha(new_ha)} ha."
        )

    flags = context.flags if context.flags is not None else pd.DataFrame()
    if flags.empty:
        sentences.append("The cross-check against declared production raised no flags.")
    else:
        by_rule = flags.groupby("rule", sort=True)
        parts = []
        for rule, rows in by_rule:
            places = _join(sorted({_place(r, context) for r in rows.itertuples()}))
            parts.append(f"{rule} ({places})")
        sentences.append(
            f"The cross-check raised {_count(len(flags), 'flag')}: {'; '.join(parts)}."
        )
    sentences.append(_anomaly_sentence(context))
    for a in failed:
        sentences.append(f"Processing failed for {a.name}: {str(a.error).rstrip('. ')}.")

    new_prev = [sid for a in context.aois for sid in a.new_since_previous]
    if context.previous_number is None:
        sentences.append("This is the first bulletin; there is no previous bulletin to compare.")
    elif new_prev:
        sentences.append(
            f"Since bulletin {context.previous_number}, {_count(len(new_prev), 'site')} "
            f"{'has' if len(new_prev) == 1 else 'have'} appeared."
        )
    else:
        sentences.append(f"No site has appeared since bulletin {context.previous_number}.")
    if context.demonstration:
        sentences.append(
            "This is a demonstration on synthetic imagery: its figures describe no real place."
        )
    return sentences


def covered_participants(context: BulletinContext) -> set[str]:
    """ISO3 codes of the participants whose areas of interest this bulletin covers."""
    return {a.participant_iso3 for a in context.aois if a.participant_iso3}


def split_anomalies(context: BulletinContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(shown, elsewhere)``: statistical anomalies of covered participants, and the rest.

    The review runs over every participant in the declared tables; the bulletin shows
    the anomalies of the participants it covers and counts the others, which stay in
    ``flags.csv`` (the run writes every anomaly there).
    """
    anomalies = context.anomalies if context.anomalies is not None else pd.DataFrame()
    if anomalies.empty or "participant_iso3" not in anomalies:
        return anomalies, anomalies.iloc[0:0]
    mask = anomalies["participant_iso3"].astype(str).isin(covered_participants(context))
    return anomalies[mask], anomalies[~mask]


def _anomaly_sentence(context: BulletinContext) -> str:
    shown, elsewhere = split_anomalies(context)
    who = _join(sorted(covered_participants(context))) or "the participants covered"
    others = ""
    if not elsewhere.empty:
        n = len(elsewhere)
        others = (f"; {_count(n, 'further anomaly', 'further anomalies')}, for participants "
                  "without an area of interest in this bulletin, "
                  f"{'is' if n == 1 else 'are'} listed in flags.csv")
    if shown.empty:
        return f"The statistical review found no anomaly in the declared figures of {who}{others}."
    rules = _join(sorted({str(r) for r in shown["rule"]}))
    return (f"The statistical review of the declared figures of {who} found "
            f"{_count(len(shown), 'anomaly', 'anomalies')} ({rules}){others}.")


# --------------------------------------------------------------------------- views


def evidence_text(radar_status: str, n_radar_scenes: int) -> str:
    """One sentence on which sensors the AOI's detections rest on.

    >>> evidence_text("used", 31)
    'Sentinel-2 optical and Sentinel-1 radar (31 scenes) fused before confirmation.'
    >>> evidence_text("unavailable: no sentinel-1-rtc items", 0)
    'Sentinel-2 optical only; radar was requested but unavailable: no sentinel-1-rtc items.'
    """
    if radar_status == "used":
        scenes = f"{n_radar_scenes} scene{'' if n_radar_scenes == 1 else 's'}"
        return f"Sentinel-2 optical and Sentinel-1 radar ({scenes}) fused before confirmation."
    if radar_status.startswith("unavailable"):
        reason = radar_status.partition(":")[2].strip().rstrip(".")
        return f"Sentinel-2 optical only; radar was requested but unavailable: {reason}."
    return "Sentinel-2 optical only (radar not enabled)."


def _aoi_view(report: AOIReport, save: Any) -> dict[str, Any]:
    """Format one AOI for the template; renders and saves its figures via ``save``."""
    slug = _slug(report.aoi_id)
    view: dict[str, Any] = {
        "aoi_id": report.aoi_id,
        "anchor": f"aoi-{slug}",
        "name": report.name,
        "participant": report.participant,
        "participant_iso3": report.participant_iso3,
        "epsg": report.epsg,
        "error": report.error,
        "evidence": evidence_text(report.radar_status, report.n_radar_scenes),
        "view_method": _method_name(report.view_method),
        "map": None,
        "chips": [],
        "activity_chart": None,
        "activity_rows": [],
        "site_rows": [],
        "counts": {s: 0 for s in fg.STATUS_ORDER},
        "total_ha": _DASH,
        "new_ha": _DASH,
        "latest_valid": _DASH,
    }
    sites = report.sites if report.sites is not None else gpd.GeoDataFrame()
    sites_utm = report.sites_utm if report.sites_utm is not None else gpd.GeoDataFrame()
    counts = _status_counts(sites)
    view["counts"] = {s: counts.get(s, 0) for s in fg.STATUS_ORDER}
    if not sites.empty:
        view["total_ha"] = _ha(float(pd.to_numeric(sites["area_ha"], errors="coerce").sum()))
    activity = report.activity if report.activity is not None else pd.DataFrame()
    if not activity.empty:
        view["new_ha"] = _ha(_latest_or_sum(activity, "new_ha", latest=False))
        latest = activity.sort_values("period_start").iloc[-1]
        view["latest_valid"] = _pct(latest.get("valid_fraction"))
    if report.error is not None:
        return view

    has_image = report.rgb_after is not None or report.rgb_before is not None
    limits = fg.stretch_limits(report.rgb_before, report.rgb_after)
    after = report.rgb_after if report.rgb_after is not None else report.rgb_before
    if has_image or not sites_utm.empty:
        fig = fg.plot_site_map(after, report.extent_utm, sites_utm, epsg=report.epsg,
                               aoi_id=report.aoi_id, limits=limits)
        view["map"] = save(fig, f"map_{slug}.png")

    for _, row in _significant_sites(sites_utm).iterrows():
        fig = fg.plot_site_chips(
            report.rgb_before, report.rgb_after, report.extent_utm, row,
            geometry=row.geometry, aoi_id=report.aoi_id, limits=limits,
            labels=("before", "after"),
            sublabels=(_period_text(activity, first=True), _period_text(activity, first=False)),
        )
        view["chips"].append({
            "src": save(fig, f"chips_{slug}_{_slug(str(row['site_id']))}.png"),
            "site_id": str(row["site_id"]),
            "label": fg.short_site_label(row["site_id"], report.aoi_id),
            "status": str(row["status"]),
            "area_ha": _ha(row.get("area_ha")),
            "confidence": _num(row.get("confidence"), 2),
        })

    if not activity.empty:
        view["activity_chart"] = save(fg.plot_activity(activity), f"activity_{slug}.png")
        for r in activity.sort_values("period_start").itertuples():
            view["activity_rows"].append({
                "start": _date(r.period_start), "end": _date(r.period_end),
                "disturbed_ha": _ha(r.disturbed_ha), "new_ha": _ha(r.new_ha),
                "valid": _pct(getattr(r, "valid_fraction", None)),
            })
    view["site_rows"] = _site_rows(sites, report)
    return view


def _site_rows(sites: gpd.GeoDataFrame, report: AOIReport) -> list[dict[str, Any]]:
    if sites.empty:
        return []
    rank = {s: i for i, s in enumerate(fg.STATUS_ORDER)}
    frame = sites.assign(
        _rank=sites["status"].map(lambda s: rank.get(str(s), 9)),
        _area=pd.to_numeric(sites["area_ha"], errors="coerce"),
    ).sort_values(["_rank", "_area"], ascending=[True, False])
    lonlat = _centroids_lonlat(frame)
    rows = []
    for (_, r), (lon, lat) in zip(frame.iterrows(), lonlat, strict=True):
        rows.append({
            "label": fg.short_site_label(r["site_id"], report.aoi_id),
            "site_id": str(r["site_id"]),
            "status": str(r["status"]),
            "area_ha": _ha(r.get("area_ha")),
            "first_seen": _date(r.get("first_seen")),
            "last_seen": _date(r.get("last_seen")),
            "confidence": _num(r.get("confidence"), 2),
            "n_obs": _int(r.get("n_obs")),
            "where": _lonlat(lon, lat),
            "note": _text(r.get("note")) if "note" in frame.columns else "",
            "new_since_previous": str(r["site_id"]) in set(report.new_since_previous),
        })
    return rows


def _render_html(context: BulletinContext, aoi_views: list[dict[str, Any]]) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,  # every template, every extension: input strings are untrusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["link"] = _safe_href
    env.filters["breakable"] = _breakable
    names = {a.aoi_id: a.name for a in context.aois}
    cited = {a.participant_iso3 for a in context.aois}
    shown, elsewhere = split_anomalies(context)
    for extra in (context.crosscheck, context.flags, shown):
        if extra is not None and "participant_iso3" in extra:
            cited |= {str(v) for v in extra["participant_iso3"].dropna()}
    sources, source_index = _source_rows(context.declared_sources, cited)
    template = env.get_template("bulletin.html.j2")
    return template.render(
        c=context,
        marking=DEMONSTRATION_MARKING,
        issued=f"{context.generated_at:%Y-%m-%d}",
        generated=_timestamp(context.generated_at),
        period=f"{context.period_start:%Y-%m-%d} to {context.period_end:%Y-%m-%d}",
        summary=summarise(context),
        aois=aoi_views,
        status_order=fg.STATUS_ORDER,
        status_colours=fg.STATUS_COLOURS,
        status_definitions=STATUS_DEFINITIONS,
        crosscheck_rows=_crosscheck_rows(context.crosscheck, names, source_index),
        flag_rows=_flag_rows(context.flags, names),
        anomaly_rows=_flag_rows(shown, names),
        covered=sorted(covered_participants(context)),
        anomalies_elsewhere=len(elsewhere),
        anomaly_participants_elsewhere=sorted({_text(v) for v in elsewhere.get("participant_iso3", [])}),
        new_rows=_new_since_rows(context),
        composite_rows=_composite_rows(context.aois),
        scene_groups=_scene_groups(context.scenes, names),
        n_scenes=0 if context.scenes is None else len(context.scenes),
        thresholds=_threshold_rows(context.thresholds),
        validation=_validation_rows(context.validation),
        software=sorted(context.software.items()),
        sources=sources,
        max_chips=MAX_CHIPS,
        stretch=tuple(f"{p:g}" for p in fg.STRETCH_PERCENTILES),
    )


def _crosscheck_rows(
    frame: pd.DataFrame | None,
    names: Mapping[str, str],
    source_index: Mapping[tuple[str, str], list[int]],
) -> list[dict[str, Any]]:
    if frame is None or frame.empty:
        return []
    rows = []
    for r in frame.sort_values(["participant_iso3", "aoi_id", "year"]).itertuples():
        flags = _split_flags(getattr(r, "flags", ""))
        year = _year(r.year)
        rows.append({
            "participant_iso3": str(r.participant_iso3),
            "aoi": names.get(str(r.aoi_id), str(r.aoi_id)),
            "year": year,
            "disturbed_ha": _ha(r.disturbed_ha),
            "carats": _range(r.est_carats_low, r.est_carats_high),
            "declared": _int(r.declared_carats),
            "ratio": _ratio(r.ratio),
            "flags": flags,
            "sources": source_index.get((str(r.participant_iso3), year), []),
        })
    return rows


def _flag_rows(frame: pd.DataFrame | None, names: Mapping[str, str]) -> list[dict[str, str]]:
    if frame is None or frame.empty:
        return []
    rows = []
    for r in frame.itertuples():
        aoi = _text(getattr(r, "aoi_id", ""))
        rows.append({
            "rule": _text(r.rule),
            "participant_iso3": _text(getattr(r, "participant_iso3", "")),
            "aoi": names.get(aoi, aoi),
            "period": _text(getattr(r, "period", "")),
            "evidence": _text(getattr(r, "evidence", "")),
            "explanation": _text(getattr(r, "explanation", "")),
        })
    return rows


def _new_since_rows(context: BulletinContext) -> list[dict[str, str]]:
    rows = []
    for a in context.aois:
        if not a.new_since_previous:
            continue
        lookup = a.sites.set_index(a.sites["site_id"].astype(str)) if not a.sites.empty else None
        for sid in a.new_since_previous:
            r = lookup.loc[sid] if lookup is not None and sid in lookup.index else None
            if isinstance(r, pd.DataFrame):
                r = r.iloc[0]
            rows.append({
                "aoi": a.name,
                "site_id": sid,
                "label": fg.short_site_label(sid, a.aoi_id),
                "status": _text(r["status"]) if r is not None else _DASH,
                "area_ha": _ha(r["area_ha"]) if r is not None else _DASH,
                "first_seen": _date(r["first_seen"]) if r is not None else _DASH,
            })
    return rows


_PRODUCT_NAMES: dict[str, str] = {"semiannual": "Half-year", "dry_season": "Dry season"}
_METHOD_NAMES: dict[str, str] = {"geomedian": "geometric median", "median": "per-band median"}


def _method_name(method: Any) -> str:
    """Reader's name of a composite method (``geomedian`` -> ``geometric median``)."""
    return _METHOD_NAMES.get(_text(method), _text(method))


def _composite_rows(aois: Iterable[AOIReport]) -> list[dict[str, str]]:
    """Annex rows: one per named composite of every AOI (all text escaped by the template)."""
    rows = []
    for a in aois:
        for c in a.composites:
            rows.append({
                "aoi": _text(a.name or a.aoi_id),
                "product": _PRODUCT_NAMES.get(str(c.get("product")), _text(c.get("product"))),
                "window": f"{_text(c.get('start'))} {_DASH} {_text(c.get('end'))}",
                "method": _method_name(c.get("method")),
                "clear_obs": f"{float(c.get('clear_obs_median') or 0):g}",
                "filled": _pct(c.get("filled_frac")),
                "file": _text(Path(str(c["file"])).name if c.get("file") else "not written"),
            })
    return rows


def _scene_groups(
    frame: pd.DataFrame | None, names: Mapping[str, str]
) -> list[dict[str, Any]]:
    if frame is None or frame.empty:
        return []
    groups = []
    ordered = frame.assign(t_utc=pd.to_datetime(frame["datetime"], utc=True, errors="coerce"))
    if "sensor" not in ordered:
        ordered["sensor"] = ""
    ordered["sensor"] = ordered["sensor"].fillna("").astype(str)
    keys = ["aoi_id", "sensor"]
    # Per AOI: Sentinel-2 before Sentinel-1 (descending sensor name), each by time.
    ordered = ordered.sort_values([*keys, "t_utc"], ascending=[True, False, True], kind="stable")
    for (aoi_id, sensor), rows in ordered.groupby(keys, sort=False):
        hrefs = [_text(h) for h in rows["href"]]
        # Print the folder all assets share once, in the caption, not on every row.
        prefix = os.path.commonprefix(hrefs) if len(hrefs) > 1 and all(hrefs) else ""
        prefix = prefix[: prefix.rfind("/") + 1]
        if len(prefix) < 16:
            prefix = ""
        groups.append({
            "aoi": names.get(str(aoi_id), str(aoi_id)),
            "sensor": _text(sensor),
            "href_prefix": prefix,
            "rows": [{
                "item_id": _text(r.item_id),
                "datetime": f"{r.t_utc:%Y-%m-%d %H:%M}" if pd.notna(r.t_utc) else _DASH,
                "cloud": _num(r.cloud_cover, 1),
                "href": href[len(prefix):],
            } for r, href in zip(rows.itertuples(), hrefs, strict=True)],
        })
    return groups


def _threshold_rows(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Annex rows: every configured threshold with its value, unit and source.

    Items may carry ``unit`` and ``source``; missing ones are derived here (units from
    the field name, as the config names them, or :data:`THRESHOLD_UNITS`; sources from
    the citations in the field's docstring, see :func:`threshold_source`).
    """
    rows = []
    for t in items or []:
        key = _text(t.get("key"))
        description = _text(t.get("description"))
        unit = threshold_unit(key, given=_text(t.get("unit")))
        rows.append({
            "section": _text(t.get("section")),
            "key": key,
            "value": (value := _threshold_value(t.get("value"), unit=unit, description=description)),
            "long": len(value) > 12,  # lists of names or months: may wrap
            "unit": unit or _DASH,
            "description": _inline_markup(description),
            "source": _text(t.get("source")) or threshold_source(description),
            "table": unit == "CSV file",
        })
    return rows


def threshold_unit(key: str, *, given: str = "") -> str:
    """Unit of a configuration field, from its name (units live in field names).

    ``given`` wins when it is more than a bare name suffix (``run.py`` passes
    ``m2``, ``frac`` ...). Returns ``""`` when nothing is known.
    """
    if key in THRESHOLD_UNITS:
        return THRESHOLD_UNITS[key]
    for suffix, unit in _UNIT_SUFFIXES:
        if key.endswith(suffix):
            return unit
    # Thresholds on a spectral index are in that index's (unitless) scale.
    for index in ("mndwi", "ndwi", "ndvi", "bsi", "nbr"):
        if index in key.split("_"):
            return index.upper()
    return given if given and given not in _BARE_SUFFIXES else ""


def threshold_source(description: str) -> str:
    """Where a threshold comes from, read off its docstring.

    The citations the docstring names (author-year references, USGS report numbers,
    product specifications); "judgement, not sourced" when the docstring says the value
    is not sourced; otherwise "design choice" (the docstring gives the reasoning).
    """
    text = " ".join(str(description).split())
    found: list[str] = []
    for pattern in _CITATION_PATTERNS:
        for m in pattern.finditer(text):
            cite = m.group(0).strip(" ,;")
            if cite not in found:
                found.append(cite)
    # "OFR 2018" inside "USGS OFR 2018-1088": keep the longest form only.
    found = [c for c in found if not any(c != o and c in o for o in found)]
    if re.search(r"\bnot sourced\b|\bjudgement\b", text, flags=re.IGNORECASE):
        label = "illustrative default, not sourced" if "Illustrative" in text else "judgement, not sourced"
        return "; ".join([label, *found])
    if found:
        return "; ".join(found)
    if text.startswith("CSV of"):
        return "each row carries its own source (see Sources of declared figures)"
    return "design choice"


def _threshold_value(value: Any, *, unit: str, description: str) -> str:
    if unit == "CSV file":
        return "shipped table" if _is_missing(value) or value == "" else Path(str(value)).name
    if (isinstance(value, list | tuple) and len(value) == 2 and all(_is_number(v) for v in value)
            and re.search(r"\brange\b|\(low, high\)", description)):
        return f"{_value(value[0])} {_DASH} {_value(value[1])}"
    return _value(value)


def _inline_markup(text: str) -> Markup:
    """Escape ``text``; render reStructuredText ````code```` and ``*emphasis*`` (docstrings)."""
    out = str(escape(text))
    out = re.sub(r"``(.+?)``", r'<code>\1</code>', out)
    out = re.sub(r"(?<![\w*])\*([^*\s][^*]*?)\*(?![\w*])", r"<em>\1</em>", out)
    return Markup(out)


def _validation_rows(validation: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if not validation:
        return []
    rows = []
    for key, value in validation.items():
        shown = _num(value, 3, strip=True) if _is_number(value) else _text(value)
        rows.append((str(key).replace("_", " "), shown))
    return rows


def _source_rows(
    frame: pd.DataFrame | None, participants: set[str] | None = None
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], list[int]]]:
    """Numbered declared figures with their sources, and an index (iso3, year) -> numbers.

    ``frame`` has ``participant_iso3, year, carats, source`` and optionally ``period``
    (``2019`` or a half-year), ``basis`` and ``note`` (the declared-production table of
    :mod:`pipeline.declared`). Only ``participants`` are kept when given: the bulletin
    cites the figures it uses, not the whole table.
    """
    if frame is None or frame.empty:
        return [], {}
    if participants is not None:
        frame = frame[frame["participant_iso3"].astype(str).isin(participants)]
    sort = [c for c in ("participant_iso3", "year", "period") if c in frame.columns]
    rows: list[dict[str, Any]] = []
    index: dict[tuple[str, str], list[int]] = {}
    for n, (_, r) in enumerate(frame.sort_values(sort, kind="stable").iterrows(), 1):
        source = _text(r.get("source"))
        year = _year(r.get("year"))
        period = _text(r.get("period")) or year
        rows.append({
            "n": n,
            "participant_iso3": _text(r.get("participant_iso3")),
            "period": period,
            "carats": _int(r.get("carats")),
            "basis": _text(r.get("basis")),
            "source": source,
            "href": _safe_href(source),
            "note": _text(r.get("note")),
        })
        index.setdefault((_text(r.get("participant_iso3")), year), []).append(n)
    return rows, index


# --------------------------------------------------------------------------- selection


def _significant_sites(sites_utm: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Up to :data:`MAX_CHIPS` new or expanding sites, largest ``area x confidence`` first."""
    if sites_utm is None or sites_utm.empty:
        return gpd.GeoDataFrame()
    cand = sites_utm[sites_utm["status"].isin(["new", "expanding"])]
    cand = cand[cand.geometry.notna() & ~cand.geometry.is_empty]
    if cand.empty:
        return cand
    area = pd.to_numeric(cand["area_ha"], errors="coerce").fillna(0.0)
    conf = pd.to_numeric(cand.get("confidence", 1.0), errors="coerce").fillna(0.0)
    score = area * conf
    return cand.assign(_score=score).sort_values(
        ["_score", "site_id"], ascending=[False, True]
    ).head(MAX_CHIPS)


def _sites_with(report: AOIReport, status: str) -> pd.DataFrame:
    if report.sites is None or report.sites.empty:
        return pd.DataFrame({"area_ha": []})
    return report.sites[report.sites["status"] == status]


def _status_counts(sites: pd.DataFrame) -> dict[str, int]:
    if sites is None or sites.empty or "status" not in sites:
        return {}
    return {str(k): int(v) for k, v in sites["status"].value_counts().items()}


def _latest_or_sum(activity: pd.DataFrame, column: str, *, latest: bool) -> float:
    if activity is None or activity.empty or column not in activity:
        return 0.0
    values = pd.to_numeric(activity.sort_values("period_start")[column], errors="coerce")
    return float(values.iloc[-1]) if latest else float(values.sum())


def _centroids_lonlat(sites: gpd.GeoDataFrame) -> list[tuple[float, float]]:
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


def _place(row: Any, context: BulletinContext) -> str:
    names = {a.aoi_id: a.name for a in context.aois}
    aoi = _text(getattr(row, "aoi_id", ""))
    who = names.get(aoi, aoi) or _text(getattr(row, "participant_iso3", ""))
    period = _text(getattr(row, "period", ""))
    return f"{who} {period}".strip()


# --------------------------------------------------------------------------- formatting


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )


def _text(value: Any) -> str:
    return "" if _is_missing(value) else str(value)


def _ha(value: Any) -> str:
    """Hectares with thousands separators and one decimal."""
    if _is_missing(value):
        return _DASH
    try:
        return f"{float(value):,.1f}"
    except (TypeError, ValueError):
        return str(value)


def _int(value: Any) -> str:
    if _is_missing(value):
        return _DASH
    try:
        return f"{round(float(value)):,d}"
    except (TypeError, ValueError):
        return str(value)


def _year(value: Any) -> str:
    """Years print without a thousands separator."""
    if _is_missing(value):
        return _DASH
    try:
        return str(int(float(value)))
    except (TypeError, ValueError):
        return str(value)


def _num(value: Any, decimals: int, *, strip: bool = False) -> str:
    if _is_missing(value):
        return _DASH
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,d}"
    text = f"{v:,.{decimals}f}"
    if strip and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _value(value: Any) -> str:
    """A configuration value: numbers with separators, sequences comma-joined."""
    if _is_number(value):
        return _num(value, 4, strip=True)
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_value(v) for v in value)
    return _text(value)


def _ratio(value: Any) -> str:
    if _is_number(value) and math.isinf(float(value)):
        return "∞"  # estimate > 0 against a declared zero
    return _num(value, 2)


def _pct(value: Any) -> str:
    if _is_missing(value):
        return _DASH
    return f"{float(value) * 100:.0f} %"


def _range(low: Any, high: Any) -> str:
    if _is_missing(low) and _is_missing(high):
        return _DASH
    return f"{_int(low)} {_DASH} {_int(high)}"


def _date(value: Any) -> str:
    if _is_missing(value) or value == "":
        return _DASH
    try:
        return f"{pd.Timestamp(value):%Y-%m-%d}"
    except (TypeError, ValueError):
        return str(value)


def _timestamp(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
        return f"{value:%Y-%m-%d %H:%M} UTC"
    return f"{value:%Y-%m-%d %H:%M}"


def _lonlat(lon: float, lat: float) -> str:
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return _DASH
    return (f"{abs(lat):.4f}°{'N' if lat >= 0 else 'S'} "
            f"{abs(lon):.4f}°{'E' if lon >= 0 else 'W'}")


def _period_text(activity: pd.DataFrame, *, first: bool) -> str:
    if activity is None or activity.empty:
        return "first period" if first else "last period"
    frame = activity.sort_values("period_start")
    r = frame.iloc[0] if first else frame.iloc[-1]
    return f"{_date(r['period_start'])} – {_date(r['period_end'])}"


def _split_flags(value: Any) -> list[str]:
    if _is_missing(value):
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if str(v)]
    return [p.strip() for p in str(value).split(";") if p.strip()]


def _safe_href(value: Any) -> str | None:
    """``value`` if it is a plain http(s) URL (never ``javascript:`` etc.), else ``None``."""
    text = _text(value).strip()
    if re.fullmatch(r"https?://[^\s<>\"']+", text):
        return text
    return None


def _breakable(value: Any) -> Markup:
    """Escape ``value`` and allow line breaks after underscores (long rule names)."""
    return Markup("_<wbr>").join(escape(part) for part in _text(value).split("_"))


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def _join(items: Iterable[str]) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _slug(text: str) -> str:
    """File-name-safe version of an id (ids come from input files)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("._")
    return slug[:80] or "x"


# --------------------------------------------------------------------------- output


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _html_to_pdf(html: str, *, base: Path) -> bytes:
    """Render with WeasyPrint; only ``data:`` URIs may be fetched (no network, no files)."""
    import weasyprint  # heavy import (Pango): only when a PDF is wanted

    fetcher: Any
    try:
        from weasyprint.urls import URLFetcher  # WeasyPrint >= 68

        fetcher = URLFetcher(allowed_protocols={"data"})
    except ImportError:  # pragma: no cover - older WeasyPrint: function fetchers
        from weasyprint import default_url_fetcher

        def fetcher(url: str, *args: Any, **kwargs: Any) -> Any:
            if not url.startswith("data:"):
                raise ValueError(f"bulletin PDF may not load {url[:60]}")
            return default_url_fetcher(url, *args, **kwargs)

    document = weasyprint.HTML(string=html, base_url=str(base), url_fetcher=fetcher)
    return bytes(document.write_pdf())
