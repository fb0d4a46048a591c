"""Executive summary: plain sentences generated from the data (:func:`summarise`).

Every number in a sentence comes from :func:`pipeline.bulletin.facts.summary_facts`, which
``bulletin.json`` also carries; the statuses are the ones the bulletin defines in its
"How to read this bulletin" box (:mod:`.statuses`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .context import AOIReport, BulletinContext
from .facts import summary_facts
from .formatting import _count, _ha, _join, _text
from .selection import covered_participants, split_anomalies
from .wording import declared_statement, rule_title, used_declared

__all__ = ["assessment_sentence", "summarise"]


def summarise(context: BulletinContext, facts: dict[str, Any] | None = None) -> list[str]:
    """Executive summary: plain sentences generated from the data.

    Scope; the sites tracked and when they were first detected; the statuses of the latest
    reporting period (new, expanding, active, dormant, as the bulletin defines them); newly
    disturbed ground; the cross-check (which years were compared, which were not comparable,
    the flags raised); the statistical review; failed AOIs; the comparison with the previous
    bulletin; the area assessment; for a demonstration, what is synthetic and what is real.
    """
    facts = facts if facts is not None else summary_facts(context)
    sentences = [_scope_sentence(context)]
    if facts["n_sites"] or facts["n_failed"] < len(context.aois):
        sentences.append(_sites_sentence(facts))
        sentences.append(_latest_period_sentence(facts))
        sentences.append(_newly_disturbed_sentence(facts))
    sentences.append(_crosscheck_sentence(context, facts))
    sentences.append(_anomaly_sentence(context))
    for a in context.aois:
        if a.error is not None:
            sentences.append(f"Processing failed for {a.name}: {str(a.error).rstrip('. ')}.")
    sentences.append(_previous_sentence(context, facts))
    sentences.append(assessment_sentence(context.assessment))
    review = review_sentence([a for a in context.aois if a.error is None])
    if review:
        sentences.append(review)
    if context.demonstration:
        sentences.append(_demonstration_short(context, facts))
    return [s for s in sentences if s]


def _demonstration_short(context: BulletinContext, facts: dict[str, Any]) -> str:
    """The summary's line on a demonstration (the marking box under the title says it in full)."""
    used = used_declared(context.declared_sources, facts["comparisons"])
    real = [r for r in used if not str(r.get("basis") or "").lower().startswith("synthetic")]
    if not used:
        figures = "no declared figure is compared"
    elif real:
        figures = "the declared figures it compares with are real, as published"
    else:
        figures = "its declared figures are synthetic too"
    return f"This is a demonstration: its imagery is synthetic and describes no real place; {figures}."


def demonstration_sentence(context: BulletinContext, facts: dict[str, Any]) -> str:
    """What a demonstration bulletin is made of: synthetic imagery, and which declared figures."""
    participants = {a.participant_iso3: a.participant for a in context.aois}
    used = used_declared(context.declared_sources, facts["comparisons"])
    return ("This is a demonstration on synthetic imagery: its sites, hectares and carat estimates "
            "describe no real place. " + declared_statement(used, participants))


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
    """Number (and revision), period, and how many AOIs of which participants."""
    participants = sorted({a.participant for a in context.aois})
    revision = f", revision {context.revision}," if context.revision > 1 else ""
    return (
        f"Bulletin {context.number}{revision} covers {context.period_start:%Y-%m-%d} to "
        f"{context.period_end:%Y-%m-%d}: {_count(len(context.aois), 'area')} of interest in "
        f"{_count(len(participants), 'participant')} ({_join(participants)})."
    )


def _sites_sentence(facts: dict[str, Any]) -> str:
    """How many sites, how much area, and how many were first detected in the covering period."""
    n, inside, before = facts["n_sites"], facts["first_detected_in_period"], facts["first_detected_before"]
    if n == 0:
        return "No excavation site is tracked."
    verb = "is" if n == 1 else "are"
    head = f"{_count(n, 'excavation site')} covering {_ha(facts['site_area_ha'])} ha {verb} tracked"
    if inside["n"] == n:
        when = (f"{'it was' if n == 1 else 'all were'} first detected during the covering period "
                f"({facts['covering_period'][0]} to {facts['covering_period'][1]})")
    else:
        when = (f"{inside['n']} ({_ha(inside['area_ha'])} ha) {'was' if inside['n'] == 1 else 'were'} first "
                f"detected during the covering period and {before['n']} ({_ha(before['area_ha'])} ha) before it")
    return f"{head}; {when}."


def _latest_period_sentence(facts: dict[str, Any]) -> str:
    """The statuses of the latest reporting period, with the new and expanding sites' areas and places."""
    latest = facts["latest_period"]
    if latest is None:
        return ""
    st = facts["status"]
    parts = []
    for status in ("new", "expanding"):
        n = st[status]["n"]
        if n == 0:
            parts.append(f"no site was {status}")
            continue
        where = _join(f"{name} ({k})" for name, k in st[status]["by_aoi"].items())
        parts.append(f"{_count(n, 'site')} ({_ha(st[status]['area_ha'])} ha) {'was' if n == 1 else 'were'} "
                     f"{status}: {where}")
    parts.append(f"{st['active']['n']} {'was' if st['active']['n'] == 1 else 'were'} active and "
                 f"{st['dormant']['n']} dormant")
    return (f"In the latest reporting period ({latest[0]} to {latest[1]}) " + "; ".join(parts)
            + " (statuses as defined under \u201cHow to read this bulletin\u201d).")


def _newly_disturbed_sentence(facts: dict[str, Any]) -> str:
    return (f"Newly disturbed ground over the covering period amounts to {_ha(facts['newly_disturbed_ha'])} ha "
            "(the sum over its reporting periods of the ground first disturbed in each).")


def _crosscheck_sentence(context: BulletinContext, facts: dict[str, Any]) -> str:
    """Which AOI-years were compared with declared production, which were not, and the flags."""
    rows = facts["comparisons"]
    compared = [r for r in rows if r["comparable"]]
    short = [r for r in rows if r["declared"] and not r["comparable"]]
    undeclared = [r for r in rows if not r["declared"]]
    parts = []
    if compared:
        parts.append("set detected activity against declared production for "
                     + _join(f"{r['aoi']} {r['year']}{_cover(r)}" for r in compared))
    if short:
        parts.append(_join(f"{r['aoi']} {r['year']}{_cover(r)}" for r in short)
                     + f" {'is' if len(short) == 1 else 'are'} not comparable with a whole year's declaration")
    if undeclared:
        parts.append(_join(f"{r['aoi']} {r['year']}{_cover(r)}" for r in undeclared)
                     + f" {'has' if len(undeclared) == 1 else 'have'} no declared figure to compare")
    head = ("The cross-check " + "; ".join(parts) + ". ") if parts else "The cross-check had no activity to compare. "
    flags = context.flags if context.flags is not None else pd.DataFrame()
    if flags.empty:
        return head + "It raised no flags."
    groups = []
    for rule, g in flags.groupby("rule", sort=True):
        places = _join(sorted({_place(r, context) for r in g.itertuples()}))
        groups.append(f"{rule_title(rule)} ({places})")
    return head + f"It raised {_count(len(flags), 'flag')}: {'; '.join(groups)}."


def _cover(row: dict[str, Any]) -> str:
    """`` (49 % of the year monitored)``, or nothing when the coverage is unknown."""
    cov = row.get("coverage_frac")
    return "" if cov is None else f" ({cov * 100:.0f} % of the year monitored)"


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
    titles = _join(sorted({rule_title(r) for r in shown["rule"]}))
    return (f"The statistical review of the declared figures of {who} found "
            f"{_count(len(shown), 'anomaly', 'anomalies')} ({titles}){others}.")


def _previous_sentence(context: BulletinContext, facts: dict[str, Any]) -> str:
    """How many sites are reported for the first time (absent from the previous bulletin)."""
    new_prev = [sid for a in context.aois for sid in a.new_since_previous]
    if context.previous_number is None:
        n = facts["n_sites"]
        return ("This is the first bulletin: every site in it is reported for the first time"
                + (f" ({n})." if n else "."))
    if new_prev:
        return (f"{_count(len(new_prev), 'site')} {'is' if len(new_prev) == 1 else 'are'} reported for the "
                f"first time (absent from bulletin {context.previous_number}).")
    return f"No site is reported for the first time: all were in bulletin {context.previous_number}."
