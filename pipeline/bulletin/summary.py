"""Executive summary: plain sentences generated from the data (:func:`summarise`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .context import AOIReport, BulletinContext
from .formatting import _count, _ha, _join, _text
from .selection import _latest_or_sum, _sites_with, _status_counts, covered_participants, split_anomalies
from .statuses import STATUS_ORDER

__all__ = ["summarise"]


def summarise(context: BulletinContext) -> list[str]:
    """Executive summary: plain sentences generated from the data.

    Covers new and expanding sites (count, hectares, where), the total tracked
    area, cross-check flags and statistical anomalies, AOIs that failed, and the
    comparison with the previous bulletin.
    """
    ok = [a for a in context.aois if a.error is None]
    sentences = [_scope_sentence(context)]
    sentences += _new_and_expanding_sentences(ok)
    if ok:
        sentences += _total_sentences(ok)
    sentences.append(_flag_sentence(context))
    sentences.append(_anomaly_sentence(context))
    for a in context.aois:
        if a.error is not None:
            sentences.append(f"Processing failed for {a.name}: {str(a.error).rstrip('. ')}.")
    sentences.append(_previous_sentence(context))
    sentences.append(assessment_sentence(context.assessment))
    review = review_sentence(ok)
    if review:
        sentences.append(review)
    if context.demonstration:
        sentences.append(
            "This is a demonstration on synthetic imagery: its figures describe no real place."
        )
    return sentences


def assessment_sentence(assessment: dict[str, Any] | None) -> str:
    """What the accuracy assessment says about the excavated area, or that there is none.

    An assessment (``python -m pipeline assess``) checks a map that exists: the one of a bulletin
    already issued. So a new bulletin's map is never assessed yet; the sentence reports the
    assessment of the previous one when it exists.
    """
    if not assessment:
        return ("Area estimate: this bulletin's map is not yet assessed (a stratified sample of points "
                "checked by an analyst), so its hectares are mapped areas without a confidence interval.")
    n, number = assessment.get("n_points"), assessment.get("bulletin_number")
    return (
        f"Area estimate: this bulletin's map is not yet assessed; the map of bulletin {number} was: "
        f"excavated area {assessment.get('area_ha')} ha ± {assessment.get('area_ci95_ha')} "
        f"(95 % CI, n = {n} checked points; mapped {assessment.get('mapped_area_ha')} ha)."
        + unseen_clause(assessment)
    )


def unseen_clause(assessment: dict[str, Any]) -> str:
    """What the interval cannot show: mining unseen in strata whose sampled points all said
    ``not_mining`` (rule of three; :func:`pipeline.assess.runs.unanimous_strata`)."""
    unseen = {h: v for h, v in (assessment.get("unanimous_strata") or {}).items() if v.get("other_label") == "mining"}
    if not unseen:
        return ""
    parts = [f"{v['other_label_ha_max']} ha in the {h} stratum" for h, v in sorted(unseen.items())]
    return (f" No sampled point of {_join(sorted(unseen))} was mining, which the interval cannot weigh: by the "
            f"rule of three, up to {_join(parts)} could still be (95 % confidence).")


def review_sentence(aois: list[AOIReport]) -> str:
    """What analysts' verdicts changed: sites confirmed, and false alarms left out of the
    figures ("" when no site of these AOIs has been judged)."""
    verdicts = pd.Series(
        [v for a in aois if a.sites is not None
         for v in (a.sites["verdict"] if "verdict" in a.sites else ["unreviewed"] * len(a.sites))],
        dtype=object,
    )
    confirmed = int((verdicts == "confirmed").sum())
    uncertain = int((verdicts == "uncertain").sum())
    dismissed = [a.dismissed for a in aois if a.dismissed is not None and not a.dismissed.empty]
    n_dismissed = sum(len(d) for d in dismissed)
    if not (confirmed or uncertain or n_dismissed):
        return ""
    total = len(verdicts)
    parts = [f"analysts have confirmed {confirmed} of the {_count(total, 'site')} as mining"]
    if uncertain:
        parts.append(f"judged {uncertain} uncertain")
    if n_dismissed:
        ha = sum(float(pd.to_numeric(d["area_ha"], errors="coerce").sum()) for d in dismissed)
        alarm = "a false alarm" if n_dismissed == 1 else "false alarms"
        parts.append(f"dismissed {_count(n_dismissed, 'further site')} ({_ha(ha)} ha) as {alarm}, which no "
                     "figure of this bulletin counts")
    unreviewed = total - confirmed - uncertain
    rest = f"; {unreviewed} of the {_count(total, 'site')} {'is' if unreviewed == 1 else 'are'} unreviewed" \
        if unreviewed else ""
    return "Review: " + _join(parts) + rest + "."


def _scope_sentence(context: BulletinContext) -> str:
    """Number, period, and how many AOIs of which participants."""
    participants = sorted({a.participant for a in context.aois})
    return (
        f"Bulletin {context.number} covers {context.period_start:%Y-%m-%d} to "
        f"{context.period_end:%Y-%m-%d}: {_count(len(context.aois), 'area')} of interest in "
        f"{_count(len(participants), 'participant')} ({_join(participants)})."
    )


def _new_and_expanding_sentences(ok: list[AOIReport]) -> list[str]:
    """New sites (always, even 0) and expanding sites (when any): count, hectares, where."""
    sentences = []
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
    return sentences


def _total_sentences(ok: list[AOIReport]) -> list[str]:
    """Sites tracked (by status) and their area; newly disturbed ground over the period."""
    total_n = sum(len(a.sites) for a in ok)
    total_ha = sum(float(pd.to_numeric(a.sites["area_ha"], errors="coerce").sum())
                   for a in ok if not a.sites.empty)
    by_status = _status_counts(pd.concat([a.sites[["status"]] for a in ok if not
                                          a.sites.empty] or [pd.DataFrame({"status": []})]))
    parts = [f"{by_status[s]} {s}" for s in STATUS_ORDER if by_status.get(s)]
    detail = f" ({', '.join(parts)})" if parts else ""
    new_ha = sum(_latest_or_sum(a.activity, "new_ha", latest=False) for a in ok)
    return [
        f"In total {_count(total_n, 'site')}{detail} covering {_ha(total_ha)} ha are tracked.",
        f"Newly disturbed ground over the covering period amounts to {_ha(new_ha)} ha.",
    ]


def _flag_sentence(context: BulletinContext) -> str:
    """The cross-check flags, by rule, with where they were raised."""
    flags = context.flags if context.flags is not None else pd.DataFrame()
    if flags.empty:
        return "The cross-check against declared production raised no flags."
    parts = []
    for rule, rows in flags.groupby("rule", sort=True):
        places = _join(sorted({_place(r, context) for r in rows.itertuples()}))
        parts.append(f"{rule} ({places})")
    return f"The cross-check raised {_count(len(flags), 'flag')}: {'; '.join(parts)}."


def _place(row: Any, context: BulletinContext) -> str:
    """Where a flag was raised: the AOI's name (else the participant) and the period."""
    names = {a.aoi_id: a.name for a in context.aois}
    aoi = _text(getattr(row, "aoi_id", ""))
    who = names.get(aoi, aoi) or _text(getattr(row, "participant_iso3", ""))
    period = _text(getattr(row, "period", ""))
    return f"{who} {period}".strip()


def _anomaly_sentence(context: BulletinContext) -> str:
    """Anomalies of the covered participants, and how many more are left to ``flags.csv``."""
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


def _previous_sentence(context: BulletinContext) -> str:
    """How many sites appeared since the previous bulletin (or that there is none)."""
    new_prev = [sid for a in context.aois for sid in a.new_since_previous]
    if context.previous_number is None:
        return "This is the first bulletin; there is no previous bulletin to compare."
    if new_prev:
        return (f"Since bulletin {context.previous_number}, {_count(len(new_prev), 'site')} "
                f"{'has' if len(new_prev) == 1 else 'have'} appeared.")
    return f"No site has appeared since bulletin {context.previous_number}."
