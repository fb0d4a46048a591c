"""``MODEL_CARD.md``: a readable model card from the metadata of ``model_card.json``.

After Mitchell et al. 2019, *Model Cards for Model Reporting* (intended use, training data,
evaluation with its uncertainty, limitations).
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_card"]

_LIMITATIONS = (
    "Only candidates the rule-based generator proposed are scored: a pit the rules missed is "
    "never seen by the classifier, so its recall is bounded by the generator's (see the missed "
    "`mining` label polygons above).",
    "Probabilities are calibrated to the mix of `mining` and `not_mining` candidates in the "
    "training labels, not to how common mining is in a new area; rank by them, do not read them "
    "as the share of true sites.",
    "The cross-validation keeps each label polygon in one fold, but neighbouring polygons still "
    "share ground, season and analyst: figures for a new region, year or analyst can be lower. "
    "Check a sample of its output before relying on a model elsewhere.",
    "Labels are analysts' interpretations of imagery, not field visits; their errors are learnt.",
    "Radar features are missing (NaN) when radar was not available; a model trained with radar "
    "and applied without it (or the reverse) falls back on its optical features.",
)


def render_card(card: dict[str, Any], *, name: str) -> str:
    """Markdown text of a model card (``card`` is the content of ``model_card.json``)."""
    lines = [
        f"# Site classifier: {name}",
        "",
        f"- Created: {card['created']}",
        f"- Model file: `model.skops`, SHA-256 `{card['model_sha256']}`",
        f"- Feature spec digest: `{card['spec_digest']}` (feature version {card['spec']['feature_version']})",
        "",
        "## Intended use",
        "",
        "Ranks the candidate excavation sites proposed by the rule-based detector of Sentinel-2 time",
        "series, so that analysts of the Kimberley Process review the likeliest artisanal diamond pits",
        "first. Its output is a calibrated probability that a candidate is a mining site, given the",
        "features below. It is a screening aid, **not proof** of mining, of diamond production or of",
        "any breach; every site reported needs an analyst's review of the imagery.",
        "",
        "## Model",
        "",
        f"Gradient-boosted trees (scikit-learn `HistGradientBoostingClassifier`, balanced class weights)"
        f" with {card['params']['calibration']} probability calibration (`CalibratedClassifierCV`) on"
        " spatially grouped folds. Candidates below probability"
        f" {card['params']['min_probability']} are dropped.",
        "",
        _table(["setting", "value"], [[k, v] for k, v in sorted(card["params"].items()) if k != "features"]),
        "",
        "## Features",
        "",
        f"{len(card['feature_names'])} features per candidate polygon: zonal means and standard deviations"
        " of per-pixel rasters (baseline, recent and change of NDVI, BSI, MNDWI, NBR, NDTI, SWIR2/SWIR1,"
        " red/green and brightness; shares of bare, water and re-greened observations; water colour;"
        " baseline recurrence of bare ground and water), means in a ring around the candidate and"
        " inside-minus-ring contrasts, texture, shape, distance to permanent water and the detector's"
        " own counts. Settings:",
        "",
        _table(["setting", "value"], sorted(card["spec"]["params"].items())),
        "",
        "## Training data",
        "",
        _table(["count", "value"], sorted(card["training_summary"].items())),
        "",
        *_cv_section(card["cv_metrics"]),
        "## Limitations",
        "",
        *(f"- {text}" for text in _LIMITATIONS),
        "",
        "## Software",
        "",
        _table(["package", "version"], sorted(card["software"].items())),
        "",
    ]
    return "\n".join(lines)


def _cv_section(cv: dict[str, Any]) -> list[str]:
    return [
        "## Cross-validated performance",
        "",
        f"Measured on the out-of-fold calibrated probabilities of {cv['n_candidates']} labelled candidates"
        f" ({cv['n_mining']} mining, {cv['n_not_mining']} not mining) in {cv['n_groups']} label polygons,"
        f" {cv['n_folds']}-fold cross-validation grouped by label polygon (no polygon in both training and"
        f" test); precision, recall and F1 at probability >= {cv['threshold']}. 95 % intervals: percentiles"
        f" of a bootstrap resampling whole label polygons ({cv['bootstrap_n']} resamples).",
        "",
        _table(["figure", "value", "95 % CI"], [_metric_row(k, v) for k, v in cv["metrics"].items()]),
        "",
    ]


def _metric_row(name: str, m: dict[str, Any]) -> list[str]:
    lo, hi = m["ci95"]
    return [name, _num(m["value"]), f"{_num(lo)} – {_num(hi)}"]


def _num(v: Any) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _table(header: list[str], rows: list[Any]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)
