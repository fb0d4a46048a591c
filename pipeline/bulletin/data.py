"""``bulletin.json``: what the bulletin says, as data (:func:`bulletin_data`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .annex import _threshold_data, detection_sentences
from .context import AOIReport, BulletinContext
from .facts import run_parameter, summary_facts
from .selection import _status_counts, split_anomalies
from .statuses import STATUS_ORDER, status_definitions
from .summary import summarise
from .wording import failure_text

__all__ = ["bulletin_data"]


def bulletin_data(context: BulletinContext) -> dict[str, Any]:
    """What the bulletin says, as data (written as ``bulletin.json`` beside the HTML).

    Numbering, period, markings, the executive summary, and per AOI the site counts and
    the ids of the sites reported for the first time, in no earlier bulletin
    (``new_since_previous``, also flattened at the top level: empty when nothing appeared, or
    for a first bulletin, where ``previous_number`` is ``None``), those listed in an earlier
    bulletin but not in the last one that processed their AOI (``listed_again``, likewise),
    and those of the previous bulletin it no longer lists (``gone_since_previous``, likewise).
    Counts of the flags and anomalies shown, and of the anomalies left to ``flags.csv``. Every
    threshold with its value, default, unit and source as given (``thresholds``; the annex
    lists only those the findings rest on or that differ from their defaults), including the
    per-AOI rows. ``facts``: every count, area and
    date the summary states (:func:`~pipeline.bulletin.facts.summary_facts`, with the
    cross-check's comparisons and their coverage); ``definitions``: the site statuses as the
    bulletin defines them; ``revision``: 1, or more for a re-issued period.
    """
    shown, elsewhere = split_anomalies(context)
    flags = context.flags if context.flags is not None else pd.DataFrame()
    facts = summary_facts(context)
    latest = facts["latest_period"]
    growth = run_parameter(context.thresholds, "sites", "expanding_growth_frac")
    return {
        "bulletin_number": context.number,
        "revision": context.revision,
        "title": context.title,
        "period": {"start": context.period_start.isoformat(), "end": context.period_end.isoformat()},
        "generated_at": context.generated_at.isoformat(),
        "distribution": context.distribution,
        "demonstration": context.demonstration,
        "previous_number": context.previous_number,
        "new_since_previous": [str(s) for a in context.aois for s in a.new_since_previous],
        "listed_again": [str(s) for a in context.aois for s in a.listed_again],
        "gone_since_previous": [str(s) for a in context.aois for s in a.gone_since_previous],
        "settings_changed": context.settings_changed,
        "revision_changes": context.revision_changes,
        "aois": [_aoi_data(a) for a in context.aois],
        "summary": summarise(context, facts),
        "facts": facts,
        "definitions": status_definitions(f"{latest[0]} to {latest[1]}" if latest else None,
                                          None if growth is None else float(growth)),
        "n_flags": len(flags),
        "flag_rules": sorted({str(r) for r in flags.get("rule", [])}),
        "n_anomalies_shown": len(shown),
        "n_anomalies_elsewhere": len(elsewhere),
        "thresholds": _threshold_data(context.thresholds),
        "config_digest": context.config_digest,
        "assessment": context.assessment,
        "detection": {
            "mode": "rules + site classifier" if context.site_models else "rules only",
            "site_models": [dict(m) for m in context.site_models],
            "statement": detection_sentences(context.site_models),
        },
    }


def _aoi_data(a: AOIReport) -> dict[str, Any]:
    """One AOI in ``bulletin.json``: counts by status, area, new sites, radar, composites."""
    counts = _status_counts(a.sites)
    return {
        "aoi_id": a.aoi_id, "name": a.name, "participant_iso3": a.participant_iso3,
        "error": failure_text(a.failure) if a.error is not None else None,
        "failure": a.failure if a.error is not None else None,
        "n_sites": 0 if a.sites is None else len(a.sites),
        "status_counts": {s: counts.get(s, 0) for s in STATUS_ORDER},
        "site_area_ha": round(float(pd.to_numeric(a.sites["area_ha"], errors="coerce").sum()), 4)
        if a.sites is not None and not a.sites.empty else 0.0,
        "new_since_previous": [str(s) for s in a.new_since_previous],
        "listed_again": [str(s) for s in a.listed_again],
        "uncovered_frac": None if a.uncovered_frac is None else round(float(a.uncovered_frac), 4),
        "confirmable_frac": None if a.confirmable_frac is None else round(float(a.confirmable_frac), 4),
        "participant_outside": a.participant_outside,
        "coverage_warning": bool(a.coverage_warning),
        "gone_since_previous": [str(s) for s in a.gone_since_previous],
        "verdict_counts": {str(k): int(v) for k, v in a.sites["verdict"].value_counts().sort_index().items()}
        if a.sites is not None and "verdict" in a.sites else {},
        "dismissed_false_alarms": [] if a.dismissed is None else [str(s) for s in a.dismissed["site_id"]],
        "radar": {"status": a.radar_status, "n_scenes": a.n_radar_scenes},
        "composites": [dict(c) for c in a.composites],
        "view_method": a.view_method or None,
    }
