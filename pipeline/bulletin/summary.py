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
from .formatting import _DASH, _clauses, _ha, _join, _long_date, _pct, _text, _value
from .i18n import _, ngettext
from .selection import covered_participants, split_anomalies
from .wording import confirmable_gap, declared_statement, failure_text, rule_title, used_declared

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
        if facts["provisional"]["n"]:
            sentences.append(_provisional_sentence(facts))
        sentences.append(_newly_disturbed_sentence(facts))
        sentences.extend(_confirmable_sentence(a) for a in context.aois if confirmable_gap(a))
        sentences.extend(_unseen_sentence(row) for row in facts["latest_unseen"])
    sentences.append(_crosscheck_sentence(context, facts))
    sentences.extend(_participant_sentence(a) for a in context.aois if a.participant_outside)
    sentences.append(_anomaly_sentence(context))
    for a in context.aois:
        if a.error is not None:
            sentences.append(_("Processing failed for {name}: {reason} (the run's log gives the details).",
                               name=a.name, reason=failure_text(a.failure)))
    sentences.append(_previous_sentence(context, facts))
    sentences.append(_settings_sentence(context))
    sentences.append(_revision_sentence(context))
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
        return _("This is a demonstration: its imagery is synthetic and describes no real place; "
                 "no declared figure is compared.")
    if real:
        return _("This is a demonstration: its imagery is synthetic and describes no real place; "
                 "the declared figures it compares with are real, as published.")
    return _("This is a demonstration: its imagery is synthetic and describes no real place; "
             "its declared figures are synthetic too.")


def demonstration_sentence(context: BulletinContext, facts: dict[str, Any]) -> str:
    """What a demonstration bulletin is made of: synthetic imagery, and which declared figures."""
    participants = {a.participant_iso3: a.participant for a in context.aois}
    used = used_declared(context.declared_sources, facts["comparisons"])
    return (_("This is a demonstration on synthetic imagery: its sites, hectares and carat estimates "
              "describe no real place.") + " " + declared_statement(used, participants))


def assessment_sentence(assessment: dict[str, Any] | None) -> str:
    """What the accuracy assessment says about the excavated area, or that there is none.

    An assessment (``python -m pipeline assess``) checks a map that exists: the one of a bulletin
    already issued. So a new bulletin's map is never assessed yet; the sentence reports the
    assessment of the previous one when it exists.
    """
    if not assessment:
        return _("Area estimate: this bulletin's map is not yet assessed (a stratified sample of points "
                 "checked by an analyst), so its hectares are mapped areas without a confidence interval.")
    n, number = assessment.get("n_points"), assessment.get("bulletin_number")
    return _(
        "Area estimate: this bulletin's map is not yet assessed; the map of bulletin {number} was: "
        "excavated area {area} ha ± {ci} (95 % CI, n = {n} checked points; mapped {mapped} ha).",
        number=number, area=assessment.get("area_ha"), ci=assessment.get("area_ci95_ha"), n=n,
        mapped=assessment.get("mapped_area_ha"),
    ) + unseen_clause(assessment)


def unseen_clause(assessment: dict[str, Any]) -> str:
    """What the interval cannot show: mining unseen in strata whose sampled points all said
    ``not_mining`` (rule of three; :func:`pipeline.assess.runs.unanimous_strata`)."""
    unseen = {h: v for h, v in (assessment.get("unanimous_strata") or {}).items() if v.get("other_label") == "mining"}
    if not unseen:
        return ""
    parts = [_("{ha} ha in the {stratum} stratum", ha=v["other_label_ha_max"], stratum=h)
             for h, v in sorted(unseen.items())]
    return " " + _("No sampled point of {strata} was mining, which the interval cannot weigh: by the "
                   "rule of three, up to {parts} could still be (95 % confidence).",
                   strata=_join(sorted(unseen)), parts=_join(parts))


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
    parts = [ngettext("analysts have confirmed {confirmed} of the {n} site as mining",
                      "analysts have confirmed {confirmed} of the {n} sites as mining", total, confirmed=confirmed)]
    if uncertain:
        parts.append(_("judged {n} uncertain", n=uncertain))
    if n_dismissed:
        ha = sum(float(pd.to_numeric(d["area_ha"], errors="coerce").sum()) for d in dismissed)
        parts.append(ngettext("dismissed {n} further site ({ha} ha) as a false alarm, which no figure of this "
                              "bulletin counts",
                              "dismissed {n} further sites ({ha} ha) as false alarms, which no figure of this "
                              "bulletin counts", n_dismissed, ha=_ha(ha)))
    unreviewed = total - confirmed - uncertain
    rest = ngettext("; {unreviewed} of the {n} site is unreviewed", "; {unreviewed} of the {n} sites are unreviewed",
                    total, unreviewed=unreviewed) if unreviewed else ""
    if unreviewed and unreviewed == 1 and total != 1:
        rest = _("; {unreviewed} of the {n} sites is unreviewed", unreviewed=unreviewed, n=total)
    return _("Review: {parts}{rest}.", parts=_join(parts), rest=rest)


def _scope_sentence(context: BulletinContext) -> str:
    """Number (and revision), period, and how many AOIs of which participants."""
    participants = sorted({a.participant for a in context.aois})
    revision = _(", revision {n},", n=context.revision) if context.revision > 1 else ""
    return _(
        "Bulletin {number}{revision} covers {start} to {end}: {areas} in {participants} ({names}).",
        number=context.number, revision=revision, start=_long_date(context.period_start),
        end=_long_date(context.period_end),
        areas=ngettext("{n} area of interest", "{n} areas of interest", len(context.aois)),
        participants=ngettext("{n} participant", "{n} participants", len(participants)),
        names=_join(participants),
    )


def _sites_sentence(facts: dict[str, Any]) -> str:
    """How many sites, how much area, and how many were first detected in the covering period."""
    n, inside, before = facts["n_sites"], facts["first_detected_in_period"], facts["first_detected_before"]
    if n == 0:
        return _("No excavation site is tracked.")
    head = ngettext("{n} excavation site covering {ha} ha is tracked",
                    "{n} excavation sites covering {ha} ha are tracked", n, ha=_ha(facts["site_area_ha"]))
    if inside["n"] == n:
        when = ngettext("it was first detected during the covering period ({start} to {end})",
                        "all were first detected during the covering period ({start} to {end})", n,
                        start=_long_date(facts["covering_period"][0]), end=_long_date(facts["covering_period"][1]))
    else:
        when = ngettext("{n} ({ha} ha) was first detected during the covering period and {m} ({ha_m} ha) before it",
                        "{n} ({ha} ha) were first detected during the covering period and {m} ({ha_m} ha) before it",
                        inside["n"], ha=_ha(inside["area_ha"]), m=before["n"], ha_m=_ha(before["area_ha"]))
    return _("{head}; {when}.", head=head, when=when)


def _participant_sentence(aoi: AOIReport) -> str:
    """An AOI compared with the declared production of a participant whose country it lies outside."""
    out = aoi.participant_outside or {}
    return _("{name} lies {km} km outside {country}, whose declared production it is compared with: check the "
             "AOI file's participant.", name=aoi.name, km=out.get("km"), country=out.get("country"))


def _confirmable_sentence(aoi: AOIReport) -> str:
    """Part of an AOI had too few clear observations for any change to be confirmed there
    (:func:`pipeline.bulletin.wording.confirmable_gap`): what the site counts cannot say."""
    return _("In {name}, only {share} of the area had the {k} clear observations a change needs to be confirmed "
             "over the covering period; the absence of sites elsewhere in it is not evidence that no excavation "
             "took place.", name=aoi.name, share=_pct(aoi.confirmable_frac), k=aoi.confirmations)


def _unseen_sentence(row: dict[str, Any]) -> str:
    """An AOI barely seen clear in its latest reporting period (``facts["latest_unseen"]``):
    "dormant" there may mean under cloud, and digging begun then may not be detected yet."""
    lead = _("In {name}, only {share} of the area was seen clear in the latest reporting period ({start} to {end})",
             name=row["name"], share=_pct(row["seen_frac"]), start=_long_date(row["period"][0]),
             end=_long_date(row["period"][1]))
    if row["n_dormant"]:
        tail = ngettext("its dormant site may have been under cloud rather than idle, and digging begun then may "
                        "not be detected yet",
                        "its {n} dormant sites may have been under cloud rather than idle, and digging begun then may "
                        "not be detected yet", row["n_dormant"])
    else:
        tail = _("digging begun then may not be detected yet")
    return _("{lead}: {tail}.", lead=lead, tail=tail)


def _latest_period_sentence(facts: dict[str, Any]) -> str:
    """The statuses of the latest reporting period, with the new and expanding sites' areas and places."""
    latest = facts["latest_period"]
    if latest is None:
        return ""
    st = facts["status"]
    parts = []
    for status in ("new", "expanding"):
        n = st[status]["n"]
        where = _join(f"{name} ({k})" for name, k in st[status]["by_aoi"].items())
        ha = _ha(st[status]["area_ha"])
        if status == "new":
            parts.append(ngettext("{n} site ({ha} ha) was new: {where}", "{n} sites ({ha} ha) were new: {where}",
                                  n, ha=ha, where=where) + _undated_clause(facts) if n else _("no site was new"))
        else:
            parts.append(ngettext("{n} site ({ha} ha) was expanding: {where}",
                                  "{n} sites ({ha} ha) were expanding: {where}", n, ha=ha, where=where)
                         if n else _("no site was expanding"))
    parts.append(ngettext("{n} was active and {dormant} dormant", "{n} were active and {dormant} dormant",
                          st["active"]["n"], dormant=st["dormant"]["n"]))
    return _("In the latest reporting period ({start} to {end}) {parts} (statuses as defined under "
             "\u201cHow to read this bulletin\u201d).", start=_long_date(latest[0]), end=_long_date(latest[1]),
             parts=_clauses(parts))


def _undated_clause(facts: dict[str, Any]) -> str:
    """Of the new sites, those already changed at their first clear view of the monitoring
    period: first detected in the latest period, but their digging may predate it (an outside
    reviewer's one-quarter run called pits dug months before "new")."""
    u, n = facts["new_undated"], facts["status"]["new"]["n"]
    if not u["n"]:
        return ""
    if u["n"] == n:
        return " " + ngettext("(already disturbed at its first clear view of the monitoring period: it may be older)",
                              "(all already disturbed at their first clear view of the monitoring period: they may "
                              "be older)", n)
    return " " + ngettext("({n} of them, {ha} ha, already disturbed at its first clear view of the monitoring "
                          "period: it may be older)",
                          "({n} of them, {ha} ha, already disturbed at their first clear view of the monitoring "
                          "period: they may be older)", u["n"], ha=_ha(u["area_ha"]))


def _provisional_sentence(facts: dict[str, Any]) -> str:
    """How many sites were confirmed too close to the end of the record to show whether they persist."""
    p = facts["provisional"]
    if p["n"] == facts["n_sites"]:
        return ngettext("The site ({ha} ha) is provisional: its change was confirmed too near the end of the record "
                        "for enough clear observations to follow and show whether it persists (marked in the site "
                        "tables).",
                        "All {n} sites ({ha} ha) are provisional: their changes were confirmed too near the end of "
                        "the record for enough clear observations to follow and show whether they persist (marked "
                        "in the site tables).",
                        p["n"], ha=_ha(p["area_ha"]))
    return ngettext("{n} of the {total} sites ({ha} ha) is provisional: its change was confirmed too near the end "
                    "of the record for enough clear observations to follow and show whether it persists (marked "
                    "in the site tables).",
                    "{n} of the {total} sites ({ha} ha) are provisional: their changes were confirmed too near the "
                    "end of the record for enough clear observations to follow and show whether they persist "
                    "(marked in the site tables).",
                    p["n"], total=facts["n_sites"], ha=_ha(p["area_ha"]))


def _newly_disturbed_sentence(facts: dict[str, Any]) -> str:
    return _("Newly disturbed ground over the covering period amounts to {ha} ha "
             "(the sum over its reporting periods of the ground first disturbed in each).",
             ha=_ha(facts["newly_disturbed_ha"]))


def _crosscheck_sentence(context: BulletinContext, facts: dict[str, Any]) -> str:
    """Which AOI-years were compared with declared production, which were not, and the flags."""
    rows = facts["comparisons"]
    compared = [r for r in rows if r["comparable"]]
    short = [r for r in rows if r["declared"] and not r["comparable"]]
    undeclared = [r for r in rows if not r["declared"]]
    parts = []
    if compared:
        parts.append(_("detected activity was set against declared production for {which}",
                       which=_join(f"{r['aoi']} {r['year']}{_cover(r)}" for r in compared)))
    if short:
        parts.append(ngettext("{which} is not comparable with a whole year's declaration",
                              "{which} are not comparable with a whole year's declaration", len(short),
                              which=_join(f"{r['aoi']} {r['year']}{_cover(r)}" for r in short)))
    if undeclared:
        parts.append(ngettext("{which} has no declared figure to compare",
                              "{which} have no declared figure to compare", len(undeclared),
                              which=_join(f"{r['aoi']} {r['year']}{_cover(r)}" for r in undeclared)))
    head = (_("In the cross-check, {parts}.", parts=_clauses(parts)) + " ") if parts \
        else _("The cross-check had no activity to compare.") + " "
    flags = context.flags if context.flags is not None else pd.DataFrame()
    if flags.empty:
        return head + _("It raised no flags.")
    groups = []
    for rule, g in flags.groupby("rule", sort=True):
        places = _join(sorted({_place(r, context) for r in g.itertuples()}))
        groups.append(f"{rule_title(rule)} ({places})")
    return head + ngettext("It raised {n} flag: {groups}.", "It raised {n} flags: {groups}.", len(flags),
                           groups=_clauses(groups))


def _cover(row: dict[str, Any]) -> str:
    """`` (49 % of the year monitored)``, or nothing when the coverage is unknown."""
    cov = row.get("coverage_frac")
    return "" if cov is None else " " + _("({pct} % of the year monitored)", pct=f"{cov * 100:.0f}")


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
    who = _join(sorted(covered_participants(context))) or _("the participants covered")
    others = ""
    if not elsewhere.empty:
        n = len(elsewhere)
        others = ngettext("; {n} further anomaly, for participants without an area of interest in this "
                          "bulletin, is listed in flags.csv",
                          "; {n} further anomalies, for participants without an area of interest in this "
                          "bulletin, are listed in flags.csv", n)
    if shown.empty:
        return _("The statistical review found no anomaly in the declared figures of {who}{others}.",
                 who=who, others=others)
    titles = _join(sorted({rule_title(r) for r in shown["rule"]}))
    return ngettext("The statistical review of the declared figures of {who} found {n} anomaly ({titles}){others}.",
                    "The statistical review of the declared figures of {who} found {n} anomalies ({titles}){others}.",
                    len(shown), who=who, titles=titles, others=others)


#: Site ids a summary sentence names before it says "N more".
_MAX_IDS = 10


def _previous_sentence(context: BulletinContext, facts: dict[str, Any]) -> str:
    """How many sites are reported for the first time (in no earlier bulletin), which are listed
    again after an absence, and which of the previous bulletin's sites this one no longer lists."""
    new_prev = [sid for a in context.aois for sid in a.new_since_previous]
    if context.previous_number is None:
        n = facts["n_sites"]
        if n:
            return _("This is the first bulletin: every site in it is reported for the first time ({n}).", n=n)
        return _("This is the first bulletin: every site in it is reported for the first time.")
    if new_prev:
        first = ngettext("{n} site is reported for the first time (in no earlier bulletin).",
                         "{n} sites are reported for the first time (in no earlier bulletin).", len(new_prev))
    elif facts["n_sites"]:
        first = _("No site is reported for the first time: each was listed in an earlier bulletin.")
    else:
        first = _("No site is listed in this bulletin, so none is reported for the first time.")
    again = [sid for a in context.aois for sid in a.listed_again]
    if again:
        first += " " + ngettext(
            "{n} site listed in an earlier bulletin, but not in the last one covering its area, is listed again: "
            "{ids}.",
            "{n} sites listed in an earlier bulletin, but not in the last one covering their area, are listed "
            "again: {ids}.",
            len(again), ids=_join(_shown(again, "listed_again")))
    gone = [sid for a in context.aois for sid in a.gone_since_previous]
    if not gone:
        return first
    dismissed = {str(s) for a in context.aois if a.dismissed is not None for s in a.dismissed["site_id"]}
    n_dismissed = sum(sid in dismissed for sid in gone)
    # "the last bulletin covering its area", not "bulletin N": an AOI not processed in bulletin N
    # is compared with the last bulletin that processed it (pipeline.site_history.previous_sites)
    text = first + " " + ngettext(
        "{n} site listed in the last bulletin covering its area is not listed in this one: {ids}.",
        "{n} sites listed in the last bulletin covering their area are not listed in this one: {ids}.",
        len(gone), ids=_join(_shown(gone, "gone_since_previous")))
    if n_dismissed == len(gone):
        text += " " + ngettext("It was dismissed by an analyst as a false alarm (sites_dismissed.geojson).",
                               "All {n} were dismissed by an analyst as false alarms (sites_dismissed.geojson).",
                               n_dismissed)
        return text
    if n_dismissed:
        text += " " + ngettext("Of them, {n} was dismissed by an analyst as a false alarm (sites_dismissed.geojson).",
                               "Of them, {n} were dismissed by an analyst as false alarms (sites_dismissed.geojson).",
                               n_dismissed)
    rest = len(gone) - n_dismissed
    if n_dismissed:
        text += " " + ngettext(
            "The other one was not found again as a site of its own with this run's imagery and settings (merged "
            "into a neighbour, under the minimum area, or no longer seen changed).",
            "The other {n} were not found again as sites of their own with this run's imagery and settings (merged "
            "into a neighbour, under the minimum area, or no longer seen changed).", rest)
    else:
        text += " " + ngettext(
            "It was not found again as a site of its own with this run's imagery and settings (merged into a "
            "neighbour, under the minimum area, or no longer seen changed).",
            "They were not found again as sites of their own with this run's imagery and settings (merged into a "
            "neighbour, under the minimum area, or no longer seen changed).", rest)
    return text


def _settings_sentence(context: BulletinContext) -> str:
    """The thresholds changed since the previous bulletin (``context.settings_changed``): they
    change which sites are found, and so what is new or no longer listed."""
    changed = context.settings_changed
    if not changed or context.previous_number is None:
        return ""
    shown = [_("{section}.{key} from {before} to {after}", section=_text(c["section"]), key=_text(c["key"]),
               before=_setting(c["before"]), after=_setting(c["after"])) for c in changed[:_MAX_IDS]]
    if len(changed) > _MAX_IDS:
        shown.append(_("{n} more (bulletin.json, {key})", n=len(changed) - _MAX_IDS, key="settings_changed"))
    return ngettext("{n} setting differs from bulletin No. {number}'s (methods annex): {changes}.",
                    "{n} settings differ from bulletin No. {number}'s (methods annex): {changes}.",
                    len(changed), number=context.previous_number, changes=_join(shown))


def _revision_sentence(context: BulletinContext) -> str:
    """What a revision changes in the sites of the issue it replaces (``context.revision_changes``)."""
    changes = context.revision_changes
    if not changes:
        return ""
    added, removed = changes["added"], changes["removed"]
    lead = _("This revision replaces revision {r} of bulletin No. {number}", r=changes["revision"],
             number=context.number)
    if not added and not removed:
        return _("{lead}: it lists the same sites.", lead=lead)
    parts = []
    if added:
        parts.append(ngettext("it adds {n} site ({ids})", "it adds {n} sites ({ids})", len(added),
                              ids=_join(_shown(added, "revision_changes.added"))))
    if removed:
        parts.append(ngettext("it removes {n} site ({ids})", "it removes {n} sites ({ids})", len(removed),
                              ids=_join(_shown(removed, "revision_changes.removed"))))
    return _("{lead}: {tail}.", lead=lead, tail=_clauses(parts))


def _setting(value: Any) -> str:
    """A threshold's value in a sentence, as the methods annex prints it (unset: a dash)."""
    return _DASH if value is None or value == [] else _value(value)


def _shown(ids: list[str], key: str) -> list[str]:
    """The first ids of a list, and how many more ``bulletin.json`` lists under ``key``."""
    shown = [_text(s) for s in ids[:_MAX_IDS]]
    if len(ids) > _MAX_IDS:
        shown.append(_("{n} more (bulletin.json, {key})", n=len(ids) - _MAX_IDS, key=key))
    return shown
