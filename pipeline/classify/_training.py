"""Training helpers of :mod:`pipeline.classify.model`: input checks, the estimator, thread limits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.errors import ConfigError

from ..config import ClassifierParams
from ._store import short

if TYPE_CHECKING:
    from sklearn.calibration import CalibratedClassifierCV

__all__ = ["calibrated", "threads", "training_arrays"]


def training_arrays(
    features: pd.DataFrame, y: np.ndarray, groups: np.ndarray, *, spec: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    names = [str(c) for c in features.columns]
    if names != list(spec["feature_names"]):
        missing = [c for c in spec["feature_names"] if c not in names]
        raise ConfigError(
            f"training features differ from the feature spec (missing {short(missing)}, "
            f"{len(names)} columns given); compute them with candidate_features()"
        )
    y = np.asarray(y)
    groups = np.asarray(groups, dtype=object)
    if len(y) != len(features) or len(groups) != len(features):
        raise ConfigError(f"{len(features)} feature rows, {len(y)} labels and {len(groups)} groups; pass one of each")
    if not np.isin(y, (0, 1)).all() or pd.isna(groups).any():
        raise ConfigError("labels must be 0/1 and every row needs a group; drop unlabelled candidates before training")
    return feature_matrix(features), y.astype("int64"), groups.astype(str)


#: Value that stands for a missing feature (no water in a candidate, no radar, ...). The trees
#: split it off like any low value; NaN itself is not used because scikit-learn's binning fails
#: on a column that is NaN in every row of a training fold (radar features without radar).
MISSING = -1.0e9


def feature_matrix(features: pd.DataFrame) -> np.ndarray:
    """The float64 matrix the trees see: missing values (NaN, inf) as :data:`MISSING`."""
    X = features.to_numpy(dtype="float64")
    return np.where(np.isfinite(X), X, MISSING)


@contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Limit the OpenMP threads of the trees to ``n`` (``None``: leave them alone)."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="openmp"):
        yield


def calibrated(params: ClassifierParams, folds: list[tuple[np.ndarray, np.ndarray]]) -> CalibratedClassifierCV:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier

    trees = HistGradientBoostingClassifier(
        max_iter=params.max_iter,
        learning_rate=params.learning_rate,
        max_leaf_nodes=params.max_leaf_nodes,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        max_features=params.max_features,
        class_weight="balanced",
        early_stopping=False,
        random_state=params.random_state,
    )
    return CalibratedClassifierCV(trees, method=params.calibration, cv=folds)
