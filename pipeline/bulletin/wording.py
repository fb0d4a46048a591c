"""The bulletin's words for things the data name with identifiers: rules, figures' bases, and
what a demonstration compares against.

Reader text never shows a rule id (``statistics_jump``) or an evidence string
(``log_rate=2.153``): those stay in ``flags.csv`` for the analyst.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from ..declared import source_kind
from .formatting import _pct
from .i18n import N_, _

__all__ = ["CONFIRMABLE_SAY_BELOW", "FAILURE_TEXTS", "LATEST_SEEN_SAY_BELOW", "RULE_TITLES", "basis_wording",
           "confirmable_gap", "confirmable_text", "declared_statement", "failure_text", "participant_text",
           "rule_title"]

#: What the bulletin says of an AOI that failed, by kind (:data:`pipeline.errors.FAILURE_KINDS`).
#: The error itself (files, items, the fix) is the operator's: ``run.log`` and ``manifest.json``.
FAILURE_TEXTS: dict[str, str] = {
    "no_imagery": N_("no imagery was found for its period"),
    "search_failed": N_("the imagery search failed"),
    "imagery_unreadable": N_("its imagery could not be fetched or read"),
    "no_clear_observation": N_("its imagery held no clear observation where one was needed"),
    "input_data": N_("its input data could not be used"),
    "resources": N_("the computers running it ran out of resources"),
    "failed": N_("an error stopped it"),
}


def failure_text(kind: str) -> str:
    """The reader's words for a failure of kind ``kind`` (in the bulletin's language).

    >>> failure_text("no_imagery"), failure_text("unheard of")
    ('no imagery was found for its period', 'an error stopped it')
    """
    return _(FAILURE_TEXTS.get(kind, FAILURE_TEXTS["failed"]))

#: Reader's title of each cross-check and review rule (:mod:`pipeline.crosscheck`).
RULE_TITLES: dict[str, str] = {
    "activity_in_embargo": N_("Excavation during an embargo or suspension"),
    "capacity_exceeds_declared": N_("Estimated output above declared production"),
    "trend_divergence": N_("Excavation and declared production moving apart"),
    "activity_without_declaration": N_("Excavation in a year without declared production"),
    "statistics_jump": N_("Unusual jump in declared statistics"),
    "usd_per_carat_vs_history": N_("Price per carat unlike the participant's other years"),
    "usd_per_carat_vs_peers": N_("Price per carat unlike other participants'"),
    "exports_exceed_supply": N_("Exports above production plus imports"),
}


def rule_title(rule: Any) -> str:
    """The reader's title of a rule; an unknown id is spelled out in words.

    >>> rule_title("statistics_jump"), rule_title("BENFORD_FIRST_DIGIT")
    ('Unusual jump in declared statistics', 'Benford first digit')
    """
    text = str(rule or "")
    if text in RULE_TITLES:
        return _(RULE_TITLES[text])
    words = re.sub(r"[_\s]+", " ", text).strip().lower()
    return words[:1].upper() + words[1:]


def basis_wording(basis: Any) -> str:
    """What a declared figure's ``basis`` means, in the bulletin's words.

    >>> basis_wording("KP")
    'production as reported to the Kimberley Process (KP statistics)'
    >>> basis_wording("national (DGMG)")
    'national production figure published by DGMG, not a KP statistic'
    """
    text = str(basis or "").strip()
    if text.upper() == "KP":
        return _("production as reported to the Kimberley Process (KP statistics)")
    if text.lower().startswith("national"):
        inner = re.search(r"\((.*)\)", text)
        who = inner.group(1) if inner else _("the national authority")
        return _("national production figure published by {who}, not a KP statistic", who=who)
    if text.lower().startswith("synthetic"):
        return _("synthetic figure written for the demonstration; not a declaration")
    return _("basis as given: {text}", text=text) if text else _("basis not stated")


def declared_statement(
    rows: Iterable[Mapping[str, Any]], participants: Mapping[str, str]
) -> str:
    """What a demonstration bulletin compares its synthetic detections with.

    ``rows``: the declared figures the bulletin uses (``participant_iso3``, ``period``,
    ``basis``, ``source``); ``participants``: ISO3 -> name. Synthetic figures (``basis`` or
    ``source`` says so) are called synthetic; real ones are named, with their basis.

    >>> text = declared_statement([{"participant_iso3": "CIV", "period": "2023", "basis": "national (DGMG)",
    ...                             "source": "https://economie-ivoirienne.ci/x"}], {"CIV": "Côte d'Ivoire"})
    >>> text.split(": ", 1)[1].split(", as published")[0]
    "Côte d'Ivoire 2023 (national production figure published by DGMG, not a KP statistic)"
    """
    rows = list(rows)
    real = [r for r in rows if not _synthetic(r)]
    if not rows:
        return _("No declared production figure is compared with the synthetic detections.")
    if not real:
        return _("The declared production it is set against is synthetic too.")
    parts = []
    for r in real:
        who = participants.get(str(r.get("participant_iso3")), str(r.get("participant_iso3")))
        parts.append(f"{who} {r.get('period')} ({basis_wording(r.get('basis'))})")
    return _(
        "The declared production it is set against is real: {parts}, as published; "
        "against synthetic detections the comparison shows how the method works and says nothing "
        "about that production.", parts="; ".join(parts))


def _synthetic(row: Mapping[str, Any]) -> bool:
    basis = str(row.get("basis") or "").lower()
    return basis.startswith("synthetic") or source_kind(str(row.get("source") or "")) == "synthetic"


def used_declared(declared: pd.DataFrame | None, comparisons: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The declared-figure rows behind the cross-check's comparisons (participant and year)."""
    if declared is None or declared.empty:
        return []
    wanted = {(c["participant_iso3"], int(c["year"])) for c in comparisons if c.get("declared")}
    years = pd.to_numeric(declared.get("year", declared.get("period")), errors="coerce")
    out = []
    for (_row, r), y in zip(declared.iterrows(), years, strict=True):
        if pd.notna(y) and (str(r.get("participant_iso3")), int(y)) in wanted:
            out.append({"participant_iso3": str(r.get("participant_iso3")),
                        "period": str(r.get("period") or int(y)), "basis": r.get("basis"),
                        "source": r.get("source")})
    return out


#: Below this share of an AOI seen clear at least once in the latest reporting period
#: (``activity.csv`` ``valid_fraction``), the summary says that its dormant sites may be under
#: cloud rather than idle: an outside tester's AOI without a clear scene that period had every
#: site "dormant" and a summary that did not say why. Half the area: a judgement, not a measure.
LATEST_SEEN_SAY_BELOW = 0.5

#: Below this share of the AOI with enough clear observations to confirm a change (rounded to
#: a whole per cent: below 100 %), the AOI's section and the summary say so.
CONFIRMABLE_SAY_BELOW = 0.995


def confirmable_gap(report: Any) -> bool:
    """Part of the AOI had too few clear optical observations over the covering period for any
    change to be confirmed there (:attr:`pipeline.bulletin.context.AOIReport.confirmable_frac`), and radar, which sees
    through cloud, did not add its own."""
    return (report.error is None and report.confirmable_frac is not None and report.radar_status != "used"
            and report.confirmable_frac < CONFIRMABLE_SAY_BELOW)


def confirmable_text(report: Any) -> str:
    """The AOI section's sentence on :func:`confirmable_gap` (empty when there is none).

    An outside reviewer's September run said "No excavation site is tracked" and "Seen clear
    100 %" where no pixel had the three clear views a confirmation needs.

    >>> import types, textwrap
    >>> r = types.SimpleNamespace(error=None, confirmable_frac=0.0, radar_status="off", confirmations=3)
    >>> print(textwrap.fill(confirmable_text(r), 88))
    Only 0 % of this area of interest had the 3 clear observations a change needs to be
    confirmed over the covering period: elsewhere no change could be confirmed, so the
    absence of sites there is not evidence that no excavation took place.
    """
    if not confirmable_gap(report):
        return ""
    return _("Only {share} of this area of interest had the {k} clear observations a change needs to be confirmed "
             "over the covering period: elsewhere no change could be confirmed, so the absence of sites there is "
             "not evidence that no excavation took place.", share=_pct(report.confirmable_frac),
             k=report.confirmations)


def participant_text(report: Any) -> str:
    """The AOI section's sentence when the AOI lies outside the country its participant names
    (empty otherwise). An outside reviewer's AOI, edited to name Zimbabwe, lay 4,522 km outside
    it; the warning went to the run's log only, while the bulletin compared its activity with
    Zimbabwe's declared production."""
    out = report.participant_outside
    if not out:
        return ""
    return _("This area of interest lies {km} km outside the outline of {country}, the country its file names as "
             "participant ({iso3}), yet its activity is compared with that participant's declared production: "
             "check the file's participant_iso3 and coordinates.", km=out["km"], country=out["country"],
             iso3=report.participant_iso3)
