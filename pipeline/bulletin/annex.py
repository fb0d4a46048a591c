"""Rows of the annexes: thresholds, composites, scenes, sources of declared figures, validation.

Each function turns part of the context into a list of display rows for the template
(which escapes every string; descriptions come as :class:`~markupsafe.Markup`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..declared import source_kind, source_kind_label
from .context import AOIReport
from .formatting import (
    _DASH,
    _ha,
    _inline_markup,
    _int,
    _is_missing,
    _is_number,
    _long_date,
    _method_name,
    _num,
    _pct,
    _percent_sign,
    _safe_href,
    _text,
    _value,
    _year,
)
from .i18n import N_, _
from .summary import unseen_clause
from .wording import basis_wording

#: The strata of an assessment in reading order (:data:`pipeline.assess.STRATA`).
_STRATUM_ORDER = {"site": 0, "buffer": 1, "stable": 2}

__all__: list[str] = []

_PRODUCT_NAMES: dict[str, str] = {"semiannual": N_("Half-year"), "dry_season": N_("Dry season")}


#: Parameters the findings rest on: always listed in the annex, whatever their value.
KEY_PARAMETERS: frozenset[tuple[str, str]] = frozenset({
    ("detect", "threshold_method"), ("detect", "ndvi_drop_min"), ("detect", "min_confirmations"),
    ("detect", "min_persistence_frac"), ("detect", "baseline_days"), ("radar", "enabled"),
    ("radar", "vh_drop_min_db"), ("sites", "min_area_m2"), ("sites", "expanding_growth_frac"),
    ("crosscheck", "gravel_thickness_m"), ("crosscheck", "grade_ct_per_m3"), ("crosscheck", "recovery_frac"),
    ("crosscheck", "capacity_ratio_flag"), ("crosscheck", "min_comparison_coverage_frac"),
})


def _threshold_rows(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Annex rows: the thresholds the findings rest on (:data:`KEY_PARAMETERS`), every one set to
    another value than its default, and the per-AOI rows; each with value, unit and source.

    Items carry their final ``unit`` and ``source`` (see
    :class:`~pipeline.bulletin.context.BulletinContext`); an empty unit prints as a dash.
    Rows whose unit is ``"CSV file"`` are input tables (``table``), listed apart. Items without
    a ``default`` are always shown. The complete list is in ``bulletin.json`` (``thresholds``).
    """
    rows = []
    for t in items or []:
        if not _shown(t):
            continue
        description = _text(t.get("description"))
        unit = _text(t.get("unit"))
        rows.append({
            "section": _section(_text(t.get("section"))),
            "key": _text(t.get("key")),
            "value": (value := _threshold_value(t.get("value"), unit=unit, description=description)),
            "default": "" if "default" not in t or _same(t.get("value"), t.get("default"))
            else _threshold_value(t.get("default"), unit=unit, description=description),
            "long": len(value) > 12,  # lists of names or months: may wrap
            "unit": _(unit) if unit else _DASH,
            "description": _inline_markup(_meaning(description, t.get("description_args"))),
            "source": _source_text(_text(t.get("source"))),
            "table": unit == "CSV file",
        })
    return rows


def _section(section: str) -> str:
    """A row's stage: the configuration section (an identifier, as given), or "applied (AOI)"
    for the values one AOI's run applied (:func:`pipeline.outputs` writes ``applied (aoi_id)``)."""
    if (m := re.fullmatch(r"applied \((.+)\)", section)) is not None:
        return _("applied ({aoi})", aoi=m.group(1))
    return section


def _source_text(source: str) -> str:
    """A parameter's source in the reader's language: each ``;``-separated part looked up in
    the catalog (citations such as ``Xu 2006`` print as given)."""
    return "; ".join(_(part.strip()) for part in source.split(";")) if source else ""


def _meaning(description: str, args: Mapping[str, Any] | None) -> str:
    """A parameter's meaning in the reader's language: the first sentence of its description,
    looked up in the catalog (``tools/i18n_catalog.py`` puts every configuration field's there),
    its ``{placeholders}`` filled from ``args``. A description the catalog lacks prints as given."""
    text = _(_first_sentence(description))
    return text.format(**{k: _text(v) for k, v in args.items()}) if args else text


def _n_thresholds_hidden(items: Iterable[Mapping[str, Any]]) -> int:
    """How many thresholds the annex leaves to ``bulletin.json`` (at their defaults, not key)."""
    return len([t for t in items or [] if not _shown(t)])


def _shown(t: Mapping[str, Any]) -> bool:
    section = str(t.get("section", ""))
    return ("default" not in t or "(" in section or t.get("unit") == "CSV file"
            or (section, str(t.get("key", ""))) in KEY_PARAMETERS or not _same(t.get("value"), t.get("default")))


def _same(a: Any, b: Any) -> bool:
    """Equal values, a tuple equal to the same list (defaults are tuples, YAML gives lists)."""
    return bool(_as_list(a) == _as_list(b))


def _as_list(v: Any) -> Any:
    return list(v) if isinstance(v, tuple | list) else v


def _first_sentence(text: str) -> str:
    """The first sentence of a field docstring (the annex's "Meaning"; the rest is in the code).

    >>> _first_sentence("Loss of NDVI (Lobo et al. 2016, e.g. 0.25). More detail here.")
    'Loss of NDVI (Lobo et al. 2016, e.g. 0.25).'
    """
    for match in re.finditer(r"[.](?=\s+[A-Z(`*\"])", text):
        head = text[: match.end()]
        if (re.search(r"\b(al|e\.g|i\.e|cf|approx|No|vs)\.$", head) or head.count("(") > head.count(")")
                or head.count("``") % 2):
            continue
        return head
    return text


def _threshold_data(items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The thresholds as ``bulletin.json`` lists them: every one, raw values (and defaults),
    units and sources as given."""
    return [
        {
            "section": str(t.get("section", "")),
            "key": str(t.get("key", "")),
            "value": t.get("value"),
            **({"default": t.get("default")} if "default" in t else {}),
            "unit": str(t.get("unit") or ""),
            "source": str(t.get("source") or ""),
        }
        for t in items or []
    ]


def _threshold_value(value: Any, *, unit: str, description: str) -> str:
    """A threshold's value as printed: file name of a table, ``low – high`` of a range."""
    if unit == "CSV file":
        return _("shipped table") if _is_missing(value) or value == "" else Path(str(value)).name
    if (isinstance(value, list | tuple) and len(value) == 2 and all(_is_number(v) for v in value)
            and re.search(r"\brange\b|\(low, high\)", description)):
        return f"{_value(value[0])} {_DASH} {_value(value[1])}"
    return _value(value)


def _composite_rows(aois: Iterable[AOIReport]) -> list[dict[str, str]]:
    """Annex rows: one per named composite of every AOI (all text escaped by the template)."""
    rows = []
    for a in aois:
        for c in a.composites:
            rows.append({
                "aoi": _text(a.name or a.aoi_id),
                "product": _(_PRODUCT_NAMES[str(c.get("product"))]) if str(c.get("product")) in _PRODUCT_NAMES
                else _text(c.get("product")),
                "window": f"{_text(c.get('start'))} {_DASH} {_text(c.get('end'))}",
                "method": _method_name(c.get("method")),
                "clear_obs": f"{float(c.get('clear_obs_median') or 0):g}",
                "filled": _pct(c.get("filled_frac")),
                "file": _text(Path(str(c["file"])).name if c.get("file") else _("not written")),
            })
    return rows


def _scene_summary(frame: pd.DataFrame | None, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Scenes per AOI, summarised by month and platform (the item list is in ``manifest.json``).

    One group per AOI: ``platforms`` (column order: Sentinel-2 units, then Sentinel-1), and one
    row per month with the number of scenes of each platform and the median cloud cover of the
    optical ones (percent, as the provider reports it).
    """
    if frame is None or frame.empty:
        return []
    scenes = frame.assign(
        t_utc=pd.to_datetime(frame["datetime"], utc=True, errors="coerce"),
        platform=[_platform(i, s) for i, s in zip(frame["item_id"], frame.get("sensor", [""] * len(frame)),
                                                   strict=True)],
    ).dropna(subset=["t_utc"])
    scenes["month"] = scenes["t_utc"].dt.strftime("%Y-%m")
    groups = []
    for aoi_id, rows in scenes.groupby("aoi_id", sort=True):
        platforms = sorted(rows["platform"].unique(), key=lambda p: (not p.startswith("S2"), p))
        months = []
        for month, m in rows.groupby("month", sort=True):
            counts = m["platform"].value_counts()
            optical = pd.to_numeric(m.loc[m["platform"].str.startswith("S2"), "cloud_cover"], errors="coerce")
            months.append({
                "month": month,
                "counts": [int(counts.get(p, 0)) for p in platforms],
                "cloud": _num(optical.median(), 0) if optical.notna().any() else _DASH,
            })
        groups.append({
            "aoi": names.get(str(aoi_id), str(aoi_id)),
            "platforms": platforms,
            "totals": [int((rows["platform"] == p).sum()) for p in platforms],
            "first": f"{rows['t_utc'].min():%Y-%m-%d}", "last": f"{rows['t_utc'].max():%Y-%m-%d}",
            "months": months,
        })
    return groups


def _platform(item_id: Any, sensor: Any) -> str:
    """``S2A``, ``S2B``, ``S1A``... from a Sentinel item id, else the sensor's name."""
    match = re.match(r"^(S[12][A-D])_", str(item_id))
    return match.group(1) if match else (_text(sensor) or "other")


def _assessment_view(assessment: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The accuracy assessment (``assess estimate``) as the annex shows it: area with its
    confidence interval, sample per stratum, error matrix in counts, accuracies with theirs."""
    if not assessment:
        return None

    def pct(value: Any, ci: Any) -> str:
        if not _is_number(value):
            return _DASH
        return (_num(100 * float(value), 1) + _percent_sign()
                + (f" ± {_num(100 * float(ci), 1)}" if _is_number(ci) else ""))

    counts = assessment.get("error_matrix_counts") or {}
    references = sorted({ref for row in counts.values() for ref in row})
    users, users_ci = assessment.get("users_accuracy") or {}, assessment.get("users_accuracy_ci95") or {}
    producers = assessment.get("producers_accuracy") or {}
    producers_ci = assessment.get("producers_accuracy_ci95") or {}
    n_per = assessment.get("n_per_stratum") or {}
    areas = assessment.get("stratum_area_ha") or {}
    return {
        "bulletin_number": assessment.get("bulletin_number"),
        "area": f"{_num(assessment.get('area_ha'), 2)} ha ± {_num(assessment.get('area_ci95_ha'), 2)}",
        "mapped": f"{_num(assessment.get('mapped_area_ha'), 2)} ha",
        "n_points": _int(assessment.get("n_points")),
        "strata": [{"stratum": str(h), "area_ha": _ha(areas.get(h)), "n": _int(n_per.get(h, 0))}
                   for h in sorted(areas, key=lambda h: (_STRATUM_ORDER.get(h, 9), h))],
        "references": references,
        "matrix": [{"map": str(m), "cells": [_int(row.get(ref, 0)) for ref in references],
                    "n": _int(sum(int(v) for v in row.values()))} for m, row in counts.items()],
        "accuracy": [{"cls": str(c), "users": pct(users.get(c), users_ci.get(c)),
                      "producers": pct(producers.get(c), producers_ci.get(c))}
                     for c in sorted(set(users) | set(producers))],
        "overall": pct(assessment.get("overall_accuracy"), assessment.get("overall_accuracy_ci95")),
        "unseen": unseen_clause(dict(assessment)).strip(),
    }


def _validation_rows(validation: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """``(metric, value)`` pairs of the validation against ground truth."""
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
    cites the figures it uses, not the whole table. Each row says what its basis means
    (:func:`~pipeline.bulletin.wording.basis_wording`) and what kind of publisher its
    source is (:func:`pipeline.declared.source_kind`).
    """
    if frame is None or frame.empty:
        return [], {}
    if participants is not None:
        frame = frame[frame["participant_iso3"].astype(str).isin(participants)]
    sort = [c for c in ("participant_iso3", "year", "period") if c in frame.columns]
    rows: list[dict[str, Any]] = []
    index: dict[tuple[str, str], list[int]] = {}
    for n, (_row, r) in enumerate(frame.sort_values(sort, kind="stable").iterrows(), 1):
        source = _text(r.get("source"))
        year = _year(r.get("year"))
        period = _text(r.get("period")) or year
        basis = _text(r.get("basis"))
        rows.append({
            "n": n,
            "participant_iso3": _text(r.get("participant_iso3")),
            "period": period,
            # as published: 2367.63 ct read "2,368" under a caption saying "as published" (an outside reviewer)
            "carats": _num(r.get("carats"), 2, strip=True),
            "basis": basis,
            "basis_text": basis_wording(basis) if basis else "",
            "kind": source_kind_label(source_kind(source)),
            "source": source,
            "href": _safe_href(source),
            "note": _text(r.get("note")),
        })
        index.setdefault((_text(r.get("participant_iso3")), year), []).append(n)
    return rows, index


def _bases(frame: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    """``(iso3, year) -> basis`` of the declared figures (``KP``, ``national (DGMG)``...)."""
    if frame is None or frame.empty or "basis" not in frame:
        return {}
    return {(_text(r.get("participant_iso3")), _year(r.get("year"))): _text(r.get("basis"))
            for _key, r in frame.iterrows()}


#: Cross-validated figures of a site classifier shown in the bulletin, with their names.
_CV_SHOWN: tuple[tuple[str, str], ...] = (("precision", N_("precision")), ("recall", N_("recall")),
                                          ("roc_auc", N_("ROC AUC")))


def detection_sentences(site_models: Iterable[Mapping[str, Any]]) -> list[str]:
    """How sites were decided, in the bulletin's words: by the rules alone (confidence is a
    heuristic), or scored by a named site classifier with its grouped cross-validation figures."""
    models = list(site_models)
    if not models:
        return [_(
            "No site classifier was applied: the sites are the candidates of the rules above, and a "
            "site's confidence is a heuristic (the persistence of its evidence, scaled by the number of "
            "confirming observations), not a calibrated probability."
        )]
    return [_model_sentence(m) for m in models]


def _model_sentence(model: Mapping[str, Any]) -> str:
    """One site classifier, in the reader's language: what it was trained on, how it decided,
    and its spatially grouped cross-validation figures with their 95 % intervals."""
    created = str(model.get("created") or "")[:10]
    values = {
        "name": model.get("name"), "digest": model.get("digest"),
        "created": _long_date(created) if _is_date(created) else created,
        "n": _int(model.get("n_training_candidates")), "groups": _int(model.get("n_training_groups")),
        "aois": ", ".join(str(a) for a in model.get("aois", [])),
        "threshold": _num(float(model.get("threshold") or 0), 2),
    }
    figures = _cv_figures(model.get("cv") or {})
    if not figures:
        return _('Site classifier "{name}" (model digest {digest}, trained {created} on {n} labelled examples '
                 "from {groups} label polygons) scored the candidates of {aois}: a site's confidence is its "
                 "calibrated probability, and candidates under {threshold} were dropped.", **values)
    return _('Site classifier "{name}" (model digest {digest}, trained {created} on {n} labelled examples '
             "from {groups} label polygons) scored the candidates of {aois}: a site's confidence is its "
             "calibrated probability, and candidates under {threshold} were dropped; its spatially grouped "
             "cross-validation (a label polygon never on both sides of a split) gave {figures}.",
             figures=", ".join(figures), **values)


def _cv_figures(cv: Mapping[str, Any]) -> list[str]:
    """``precision 0.91 (95 % CI 0.85-0.95)``... for the figures of :data:`_CV_SHOWN` the model has."""
    figures = []
    for key, name in _CV_SHOWN:
        fig = cv.get(key) or {}
        value, (low, high) = fig.get("value"), (fig.get("ci95") or [None, None])
        if value is None:
            continue
        if low is None or high is None:
            figures.append(f"{_(name)} {_num(value, 2)}")
        else:
            figures.append(_("{name} {value} (95 % CI {low}-{high})", name=_(name), value=_num(value, 2),
                             low=_num(low, 2), high=_num(high, 2)))
    return figures


def _is_date(text: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text))
