"""The site classifier: training with spatially grouped cross-validation, saving, loading.

Gradient-boosted trees (:class:`~sklearn.ensemble.HistGradientBoostingClassifier`, which takes
the NaN of missing features as they are) wrapped in
:class:`~sklearn.calibration.CalibratedClassifierCV`, so that a candidate's ``confidence`` is
a calibrated probability. Candidates that took the same label polygon share ground, time and
analyst, so every split (the cross-validation and the calibration folds) keeps each label
polygon (*group*) on one side: :func:`grouped_folds`. The cross-validated figures come from
out-of-fold calibrated probabilities, with 95 % intervals from a bootstrap over groups.

A model folder holds ``model.skops`` (:mod:`skops.io`, which loads without pickle's arbitrary
code execution), ``model_card.json`` (metadata and the SHA-256 of ``model.skops``) and
``MODEL_CARD.md``. Loading checks the digest, trusts only scikit-learn and NumPy types, and
refuses a feature spec other than the model's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.errors import ConfigError

from ..config import ClassifierParams
from ..io import nearest_existing, probe_writable
from . import _store
from ._card import render_card
from ._metrics import bootstrap_metrics
from ._store import CARD_FILE, CARD_MD, FORMAT, MODEL_FILE, short
from ._training import calibrated, feature_matrix, threads, training_arrays
from .features import spec_digest

if TYPE_CHECKING:  # scikit-learn and skops are imported where a model is trained, saved or loaded
    from sklearn.calibration import CalibratedClassifierCV

__all__ = ["MIN_GROUPS_PER_CLASS", "SiteModel", "check_model_dir", "grouped_folds", "load_site_model", "model_summary",
           "train_site_model"]

#: Label polygons of each class a model needs: 3, so that every cross-validation training
#: fold still holds two polygons of each class for its own grouped calibration folds.
MIN_GROUPS_PER_CLASS = 3


@dataclass
class SiteModel:
    """A trained site classifier and everything its card records."""

    estimator: CalibratedClassifierCV
    feature_names: tuple[str, ...]
    spec: dict[str, Any]
    spec_digest: str
    cv_metrics: dict[str, Any]
    training_summary: dict[str, Any]
    params: dict[str, Any]
    created: str
    software: dict[str, str]
    model_sha256: str | None = None
    """SHA-256 of ``model.skops`` (set by :meth:`save` and :func:`load_site_model`)."""
    model_dir: Path | None = None
    """Folder it was saved to or loaded from."""

    @property
    def min_probability(self) -> float:
        """Probability below which a candidate is dropped (``ClassifierParams.min_probability``)."""
        return float(self.params["min_probability"])

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """Calibrated probability (0..1) that each candidate is a mining site.

        Parameters
        ----------
        features
            One row per candidate with the columns :attr:`feature_names`
            (:func:`pipeline.classify.features.candidate_features`); column order is not
            significant (the columns are taken by name).

        Returns
        -------
        numpy.ndarray
            float64, shape ``(len(features),)``, in row order.

        Raises
        ------
        ConfigError
            Columns missing or extra, named in one line.
        """
        cols = [str(c) for c in features.columns]
        missing = [c for c in self.feature_names if c not in set(cols)]
        extra = [c for c in cols if c not in set(self.feature_names)]
        if missing or extra:
            raise ConfigError(
                f"features do not match model {self.model_dir or '(unsaved)'}: missing {short(missing)}, "
                f"extra {short(extra)}; compute them with candidate_features() of the model's feature version"
            )
        if features.empty:
            return np.zeros(0, dtype="float64")
        X = feature_matrix(features.loc[:, list(self.feature_names)])
        with threads(self.params.get("n_threads", 1)):
            return np.asarray(self.estimator.predict_proba(X)[:, 1], dtype="float64")

    def card(self) -> dict[str, Any]:
        """The metadata written to ``model_card.json`` (JSON-safe)."""
        return {
            **FORMAT,
            "created": self.created,
            "feature_names": list(self.feature_names),
            "spec": self.spec,
            "spec_digest": self.spec_digest,
            "cv_metrics": self.cv_metrics,
            "training_summary": self.training_summary,
            "params": self.params,
            "software": self.software,
            "model_file": MODEL_FILE,
            "model_sha256": self.model_sha256,
        }

    def save(self, model_dir: str | Path) -> Path:
        """Write ``model.skops``, ``model_card.json`` and ``MODEL_CARD.md`` to ``model_dir``.

        The three files are written to a temporary folder beside ``model_dir`` and renamed
        into place, so a reader never sees a half-written model. An existing model folder is
        replaced; a folder holding anything else is refused (``ConfigError``).
        """
        target = Path(model_dir)
        check_model_dir(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            import skops.io

            blob = skops.io.dumps(self.estimator)
            digest = hashlib.sha256(blob).hexdigest()
            (tmp / MODEL_FILE).write_bytes(blob)
            card = {**self.card(), "model_sha256": digest}
            (tmp / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True), encoding="utf-8")
            (tmp / CARD_MD).write_text(render_card(card, name=target.name), encoding="utf-8")
            _store.swap_in(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.model_sha256, self.model_dir = digest, target
        return target


def check_model_dir(target: Path) -> None:
    """``target`` can become a model folder: absent (and creatable, by this user) or a model
    folder already (it is replaced). ``train`` checks before it computes anything, and
    :meth:`SiteModel.save` again before it writes.

    Raises
    ------
    ConfigError
        One line naming the folder and the fix.
    """
    if target.exists() or target.is_symlink():
        others = sorted(p.name for p in target.iterdir()) if target.is_dir() else [target.name]
        if not target.is_dir() or set(others) - {MODEL_FILE, CARD_FILE, CARD_MD}:
            raise ConfigError(f"{target} exists and is not a model folder ({others[:3]}); choose a new --out")
    probe = nearest_existing(target.parent)
    if not probe.is_dir():
        raise ConfigError(f"cannot create model folder {target}: {probe} is not a folder; choose another --out")
    try:
        probe_writable(probe)  # what save() will do (a temporary folder beside the target)
    except OSError as exc:
        raise ConfigError(f"cannot write model folder {target} in {probe} ({exc.strerror or exc}); choose an --out "
                          "this user can write") from None


def grouped_folds(y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds that never split a group: ``[(train_idx, test_idx), ...]``.

    Parameters
    ----------
    y
        0/1 labels.
    groups
        Group of each sample (the label polygon it took).
    n_splits
        Folds (at most the number of groups of the rarer class).
    seed
        Shuffles the groups before they are dealt to folds.

    Raises
    ------
    ConfigError
        A training fold would hold a single class.

    Examples
    --------
    >>> y = np.array([0, 0, 1, 1, 0, 1, 0, 1]); g = np.array([1, 1, 2, 2, 3, 4, 5, 6])
    >>> folds = grouped_folds(y, g, 2, 0)
    >>> all(not set(g[tr]) & set(g[te]) for tr, te in folds)
    True
    """
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = [(tr, te) for tr, te in splitter.split(np.zeros((len(y), 1)), y, np.asarray(groups).astype(str))]
    for tr, _ in folds:
        if np.unique(y[tr]).size < 2:
            raise ConfigError(
                f"a training fold of {n_splits}-fold grouped CV holds one class only; "
                "add label polygons of the rarer class"
            )
    return folds


def train_site_model(
    features: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    params: ClassifierParams,
    spec: dict[str, Any],
    training_summary: dict[str, Any],
) -> SiteModel:
    """Cross-validate and fit the site classifier on labelled candidates.

    Parameters
    ----------
    features
        Labelled candidates' features, columns ``spec["feature_names"]`` in that order
        (:func:`pipeline.classify.features.candidate_features`).
    y, groups
        Per row: 1 mining / 0 not_mining, and the label polygon (``label_id``) it took
        (:class:`~pipeline.classify.labels.LabelAssignment`).
    params, spec
        Classifier settings; :func:`~pipeline.classify.features.feature_spec` of the features' settings.
    training_summary
        Counts for the card (:meth:`LabelAssignment.summary`, labels file, AOIs...), JSON-safe.

    Returns
    -------
    SiteModel
        Fitted on all rows; out-of-fold CV figures with 95 % group-bootstrap CIs: precision, recall,
        F1 at ``min_probability``, ROC AUC, average precision, Brier score.

    Raises
    ------
    ConfigError
        Columns differ from the spec, or too few label polygons of a class (counts and fix, one line).
    """
    X, y, groups = training_arrays(features, y, groups, spec=spec)
    n_splits = _n_splits(y, groups, params.cv_folds)
    with threads(params.n_threads):
        oof = _out_of_fold(X, y, groups, params=params, n_splits=n_splits)
        final = calibrated(params, grouped_folds(y, groups, n_splits, params.random_state)).fit(X, y)
    metrics = bootstrap_metrics(y, oof, groups, threshold=params.min_probability, n_boot=params.bootstrap_n,
                                seed=params.random_state)
    cv = {"threshold": params.min_probability, "n_folds": n_splits, **_counts(y, groups),
          "bootstrap_n": params.bootstrap_n, "metrics": metrics}
    return SiteModel(
        estimator=final,
        feature_names=tuple(spec["feature_names"]),
        spec=spec,
        spec_digest=spec_digest(spec),
        cv_metrics=cv,
        training_summary=dict(training_summary),
        params=params.model_dump(mode="json"),
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        software=_store.software(),
    )


def load_site_model(model_dir: str | Path, *, spec: dict[str, Any] | None = None) -> SiteModel:
    """Load a model folder written by :meth:`SiteModel.save`, checking it first.

    Parameters
    ----------
    model_dir
        The folder (``--model``).
    spec
        :func:`pipeline.classify.features.feature_spec` of the current configuration; when given,
        a model trained on other feature settings is refused.

    Raises
    ------
    ConfigError
        One line: missing or unreadable files, a ``model.skops`` whose SHA-256 differs from the
        card (altered or corrupt), types other than scikit-learn's and NumPy's in the file, or a
        feature spec other than the model's (naming the differing settings).
    """
    d = Path(model_dir)
    card = _store.read_card(d)
    try:
        blob = (d / MODEL_FILE).read_bytes()
    except OSError as exc:
        raise ConfigError(f"model {d}: cannot read {MODEL_FILE} ({exc.strerror or exc}); retrain or restore") from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != card.get("model_sha256"):
        raise ConfigError(
            f"model {d}: {MODEL_FILE} has SHA-256 {digest[:12]}, its card says {str(card.get('model_sha256'))[:12]}; "
            "the file was altered or corrupted: retrain or restore the folder"
        )
    estimator = _store.load_estimator(blob, d)
    model = SiteModel(
        estimator=estimator,
        feature_names=tuple(card["feature_names"]),
        spec=card["spec"],
        spec_digest=card["spec_digest"],
        cv_metrics=card["cv_metrics"],
        training_summary=card["training_summary"],
        params=card["params"],
        created=card["created"],
        software=card["software"],
        model_sha256=digest,
        model_dir=d,
    )
    if getattr(estimator, "n_features_in_", len(model.feature_names)) != len(model.feature_names):
        raise ConfigError(f"model {d}: {MODEL_FILE} and {CARD_FILE} disagree on the features; retrain")
    if spec is not None and spec_digest(spec) != model.spec_digest:
        old, new = _store.spec_diff(model.spec, spec)
        raise ConfigError(
            f"model {d} was trained with features {old}; this config computes {new}: "
            "retrain with `python -m pipeline train` or use the matching config"
        )
    return model


def model_summary(model: SiteModel) -> dict[str, Any]:
    """What the run manifest and the bulletin say about the model applied.

    Returns
    -------
    dict
        ``name`` (model folder name), ``digest`` (first 12 hex of the SHA-256 of
        ``model.skops``; None before saving), ``created``, ``calibration``, ``threshold``,
        ``cv`` (``{metric: {"value", "ci95"}}``), ``n_training_candidates``, ``n_training_groups``.
    """
    cv = model.cv_metrics
    return {
        "name": model.model_dir.name if model.model_dir is not None else None,
        "digest": model.model_sha256[:12] if model.model_sha256 else None,
        "created": model.created,
        "calibration": model.params.get("calibration"),
        "threshold": cv["threshold"],
        "cv": cv["metrics"],
        "n_training_candidates": cv["n_candidates"],
        "n_training_groups": cv["n_groups"],
    }


def _out_of_fold(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray, *, params: ClassifierParams, n_splits: int
) -> np.ndarray:
    """Calibrated probabilities of each row from the model of the fold that held it out.

    Each fold's model is calibrated on grouped folds of its own training part, exactly as the
    final model is on all rows, so the figures measure the whole procedure.
    """
    oof = np.full(len(y), np.nan)
    for k, (tr, te) in enumerate(grouped_folds(y, groups, n_splits, params.random_state)):
        inner = grouped_folds(y[tr], groups[tr], _n_splits(y[tr], groups[tr], n_splits), params.random_state + k + 1)
        oof[te] = calibrated(params, inner).fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
    return oof


def _counts(y: np.ndarray, groups: np.ndarray) -> dict[str, int]:
    return {
        "n_candidates": int(len(y)),
        "n_groups": int(np.unique(groups).size),
        "n_mining": int(y.sum()),
        "n_not_mining": int((y == 0).sum()),
    }


def _n_splits(y: np.ndarray, groups: np.ndarray, cv_folds: int) -> int:
    n_pos, n_neg = (int(np.unique(groups[y == c]).size) for c in (1, 0))
    if min(n_pos, n_neg) < MIN_GROUPS_PER_CLASS:
        raise ConfigError(
            f"too few labelled candidates to train: {int((y == 1).sum())} mining in {n_pos} label polygons, "
            f"{int((y == 0).sum())} not_mining in {n_neg} label polygons; label at least {MIN_GROUPS_PER_CLASS} "
            "polygons of each class that candidates overlap (not_mining over rivers, farms, burns; mining over pits)"
        )
    return min(cv_folds, n_pos, n_neg)


