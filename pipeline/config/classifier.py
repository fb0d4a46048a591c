"""The site classifier: its features and how it is trained and applied."""

from __future__ import annotations

from typing import Literal

from ._base import _DESIGN, _JUDGEMENT, _param, _Section

CalibrationMethod = Literal["isotonic", "sigmoid"]


class FeatureParams(_Section):
    """How the per-pixel feature rasters and the per-candidate features are computed.

    The spectral indices themselves are fixed (see :mod:`pipeline.classify.features`):
    NDVI (Rouse et al. 1974), BSI (Rikimaru et al. 2002), MNDWI (Xu 2006), NBR
    (Key & Benson 2006), NDTI = (SWIR1 - SWIR2) / (SWIR1 + SWIR2) (Van Deventer et al.
    1997), SWIR2/SWIR1, red/green and brightness = mean(red, NIR, SWIR1).
    """

    recent_days: int = _param(90, unit="days", source=_DESIGN, ge=10, le=730)
    """The *recent* state of a pixel is the median of its clear monitoring observations in the
    last ``recent_days`` before the end of the series (90: one season, about nine Sentinel-2
    revisits at 10 days, so the median outvotes residual cloud)."""
    recent_min_obs: int = _param(5, unit="observations", source=_DESIGN, ge=1, le=50)
    """Where the last ``recent_days`` hold fewer clear observations than this (a series ending
    in the rains, or in a gap of the optical record), the recent window of that pixel reaches
    back to its last ``recent_min_obs`` clear monitoring observations. Without it the recent
    state is missing there, a value no training example had: on the wet-season-gap validation
    scene (no Sentinel-2 for the last five months of the run) the calendar window held no
    clear observation at all, for every candidate. 5: a median that outvotes two residually
    cloudy observations."""
    post_obs: int = _param(5, unit="observations", source=_DESIGN, ge=1, le=50)
    """Clear monitoring observations from a pixel's change date on whose median is its
    *post-change* state (the ``*_post`` features): what the ground looked like once changed.
    Unlike the recent state it does not move when a pit is abandoned and grass returns, which
    makes the recent features of an abandoned pit look like those of a re-greening field or
    burn: the jitter validation scene's two abandoned pits scored 0.47 and 0.65 without these
    features, 0.59 and 0.75 with them (same training scenes, ``max_features`` 0.2). 5, as
    ``recent_min_obs``."""
    bare_ndvi_max: float = _param(0.2, unit="NDVI", source=_DESIGN, ge=-1, le=1)
    """NDVI at or below which a clear, non-water observation counts as bare ground; the same
    value as ``detect.bare_ndvi_max`` so the classifier sees what the rules saw."""
    water_mndwi_min: float = _param(0.2, unit="MNDWI", source="Xu 2006", ge=-1, le=1)
    """MNDWI (G - SWIR1) / (G + SWIR1) at or above which an observation counts as open water
    (Xu 2006; 0 is the nominal threshold, 0.2 leaves a margin for turbid pit water; the same
    value as ``detect.water_mndwi_min``)."""
    permanent_water_frac: float = _param(0.8, unit="fraction (0–1)", source=_JUDGEMENT, gt=0, le=1)
    """A pixel is *permanent water* when at least this share of its clear baseline observations
    were water. Judgement, not sourced: 0.8 keeps rivers and reservoirs, which dry back a
    little at the end of the dry season, and drops seasonal wetlands. Distance to it is a
    context feature (alluvial diggings follow rivers; so do sandbars)."""
    regreen_ndvi_margin: float = _param(0.12, unit="NDVI", source="USGS OFR 2018-1088", gt=0, le=1)
    """A monitoring observation counts as *re-greened* when its NDVI is within this margin of
    the pixel's baseline median NDVI (only where the baseline was vegetated); the same value
    as ``detect.regrowth_ndvi_margin`` (crops and burns come back within a season, pits do
    not; USGS OFR 2018-1088)."""
    pixel_class_min_frac: float = _param(0.5, unit="fraction (0–1)", source=_DESIGN, gt=0, le=1)
    """For the texture features, a pixel inside a candidate counts as *water* (or *bare*)
    when at least this share of its clear monitoring observations were water (or bare):
    0.5 is the majority. Pits, spoil heaps and ponds make a water/bare mosaic."""
    ring_m: float = _param(30.0, unit="m", source=_DESIGN, gt=0, le=1000)
    """Width of the ring around a candidate (m) whose pixels, minus every candidate's own
    pixels, are its surroundings for the ring means and the inside-minus-ring contrasts.
    30 m is three 10 m pixels: wide enough for a stable mean, narrow enough to stay in the
    same land cover. Part of the feature spec because it changes the ring features."""


class ClassifierParams(_Section):
    """Training and application of the site classifier (:mod:`pipeline.classify.model`)."""

    min_probability: float = _param(0.5, unit="probability (0–1)", source=_DESIGN, ge=0, le=1)
    """Candidates whose calibrated probability of being a mining site is below this are
    dropped; the cross-validated precision, recall and F1 are reported at this threshold.
    0.5: with calibrated probabilities, more likely mining than not."""
    cv_folds: int = _param(5, unit="folds", source=_DESIGN, ge=2, le=20)
    """Folds of the spatially grouped cross-validation (never fewer label polygons of either
    class than folds: the folds are reduced to fit). 5: 80 % of the label polygons train each
    fold's model."""
    calibration: CalibrationMethod = _param("sigmoid", unit="method", source="Niculescu-Mizil & Caruana 2005")
    """Probability calibration of the boosted trees: ``sigmoid`` (Platt 1999) or ``isotonic``.
    Isotonic regression overfits with fewer than about a thousand calibration samples
    (Niculescu-Mizil & Caruana 2005); hand-labelled training sets are smaller."""
    max_iter: int = _param(200, unit="boosting iterations", source=_JUDGEMENT, ge=1, le=10_000)
    """Boosting iterations of ``HistGradientBoostingClassifier`` (scikit-learn's default is
    100; 200 with half its learning rate). Judgement, not sourced."""
    learning_rate: float = _param(0.05, unit="shrinkage", source=_JUDGEMENT, gt=0, le=1)
    """Shrinkage of each tree (scikit-learn's default is 0.1; smaller steps generalise better
    on small training sets). Judgement, not sourced."""
    max_leaf_nodes: int | None = _param(15, unit="leaves", source=_JUDGEMENT, ge=2)
    """Leaves per tree (scikit-learn's default is 31; fewer for a few hundred candidates).
    Judgement, not sourced. ``None``: unlimited."""
    min_samples_leaf: int = _param(10, unit="candidates", source=_JUDGEMENT, ge=1)
    """Fewest candidates per leaf (scikit-learn's default is 20, which leaves almost no splits
    with a hundred labelled candidates). Judgement, not sourced."""
    l2_regularization: float = _param(1.0, unit="L2 penalty", source=_JUDGEMENT, ge=0)
    """L2 penalty on the leaf values (scikit-learn's default is 0). Judgement, not sourced."""
    max_features: float = _param(
        0.2, unit="share of features (0–1]", source="Breiman 2001; measured on make validate", gt=0, le=1
    )
    """Share of the features, drawn at random for each split, that the split may choose from
    (scikit-learn's default is 1: all). Random feature subsets (Breiman 2001) make the trees
    spread the decision over many features instead of the one that happens to separate a small
    training set perfectly: trained on the two validation training scenes with all features,
    every split used the change of MNDWI, and pits whose MNDWI change fell just under the
    smallest one of training were dropped at probability 0.13-0.26 although every other
    feature said pit; at 0.2 the same pits scored 0.4-0.7. 1.0: every feature at every split."""
    n_threads: int | None = _param(1, unit="threads", source=_DESIGN, ge=1)
    """OpenMP threads of the boosted trees while training and scoring. 1: tables of a few
    thousand candidates train faster on one thread, and more threads contend with the Dask
    workers (a test training went from 3 s to 100 s on two busy cores). ``None``: all cores."""
    random_state: int = _param(0, unit="seed", source=_DESIGN, ge=0)
    """Seed of the folds, the trees and the bootstrap: the same labels give the same model."""
    bootstrap_n: int = _param(1000, unit="resamples", source="Efron & Tibshirani 1993", ge=50, le=100_000)
    """Resamples of the group (cluster) bootstrap behind the 95 % confidence intervals of the
    cross-validated figures (percentile intervals need about a thousand; Efron & Tibshirani
    1993, ch. 13)."""
    candidate_min_area_m2: float = _param(1000.0, unit="m²", source=_DESIGN, gt=0)
    """With a site model, candidates from this area up (m²) are scored, below the minimum
    mapping unit ``sites.min_area_m2``: young and small pits (0.2-0.5 ha) the rules alone
    would drop may stay when the classifier is confident (``small_site_min_probability``).
    1000 m² is ten 10 m pixels."""
    min_optical_views: int = _param(3, unit="observations", source=_DESIGN, ge=0, le=50)
    """The classifier judges a candidate only when its pixels had at least this many clear
    Sentinel-2 observations (mean over the candidate) from their change date on; otherwise the
    rules decide it as without a model (minimum mapping unit, isolation rule, heuristic
    confidence). A pit confirmed by radar under months of cloud has no optical view of its
    change: its optical features describe the ground before it, which no training example of
    a pit looked like. 3: as many views as ``detect.min_confirmations`` needs to confirm a
    change. 0: the classifier judges every candidate."""
    small_site_min_probability: float = _param(0.8, unit="probability (0–1)", source=_DESIGN, ge=0, le=1)
    """A candidate smaller than ``sites.min_area_m2`` is kept only at or above this calibrated
    probability (larger ones at ``min_probability``)."""
