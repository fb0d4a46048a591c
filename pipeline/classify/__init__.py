"""Site classifier: candidate polygons -> calibrated probability of being a mining site.

Two stages:

1. **Candidate generator** (the rules of :mod:`pipeline.detect` and :mod:`pipeline.sites`),
   tuned for *recall*: it should propose every excavation, and may propose river sandbars,
   cleared fields and burn scars with them.
2. **Site classifier** (this package), tuned for *precision*: it scores every candidate
   polygon from features of the cloud-masked time series around it
   (:func:`feature_rasters` -> :func:`candidate_features`) with gradient-boosted trees whose
   output is calibrated (:func:`train_site_model`). A site's ``confidence`` is that
   calibrated probability; candidates below ``ClassifierParams.min_probability`` are dropped.

Training labels are analysts' polygons (:func:`read_labels`); each candidate takes the
label of the polygon it overlaps most (:func:`assign_labels`), and cross-validation keeps
every label polygon on one side of each split (:func:`grouped_folds`), so the reported
figures are not inflated by neighbouring, near-identical candidates. A saved model
(:meth:`SiteModel.save`, :func:`load_site_model`) records the feature spec it was trained on
(:func:`feature_spec`) and refuses features computed with other settings.
"""

from __future__ import annotations

from ..config import CalibrationMethod, ClassifierParams, FeatureParams
from .features import (
    FEATURE_NAMES,
    FEATURE_VERSION,
    RADAR_VARS,
    RASTER_VARS,
    candidate_features,
    feature_rasters,
    feature_spec,
    feature_spec_digest,
    radar_rasters,
    spec_digest,
)
from .labels import LABEL_VALUES, LabelAssignment, assign_labels, read_labels
from .model import SiteModel, check_model_dir, grouped_folds, load_site_model, model_summary, train_site_model

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "LABEL_VALUES",
    "RADAR_VARS",
    "RASTER_VARS",
    "CalibrationMethod",
    "ClassifierParams",
    "FeatureParams",
    "LabelAssignment",
    "SiteModel",
    "assign_labels",
    "candidate_features",
    "check_model_dir",
    "feature_rasters",
    "feature_spec",
    "feature_spec_digest",
    "grouped_folds",
    "load_site_model",
    "model_summary",
    "radar_rasters",
    "read_labels",
    "spec_digest",
    "train_site_model",
]
