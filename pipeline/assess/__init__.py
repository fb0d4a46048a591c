"""Accuracy assessment and area estimation of the site map (Olofsson et al. 2014).

Counting mapped pixels is not an area estimate: the map omits some mining and commits
some. Olofsson, Foody, Herold, Stehman, Woodcock & Wulder (2014), "Good practices for
estimating area and assessing accuracy of land change" (Remote Sensing of Environment 148:
42-57), correct it with a probability sample: cut the map into strata, draw random points in
each, have an analyst label each point from reference imagery, and estimate, with the
stratified estimators, the error matrix in area proportions, the overall, user's and
producer's accuracies and the *area of each reference class* with its standard error and
95 % confidence interval (``A p_.j +- 1.96 A S(p_.j)``).

Strata (:func:`stratify`, one AOI at a time, in its UTM zone):

* ``site``: the detected sites (map class ``mining``);
* ``buffer``: a ring of ``assess.buffer_m`` around them (map class ``not_mining``), where
  omitted mining hides, so that it is sampled densely;
* ``stable``: the rest of the AOI (map class ``not_mining``).

Strata differ from the map classes, so the estimators are written per stratum (Stehman
2014); with strata equal to map classes they are exactly the paper's eqs. 5-10.

Workflow::

    strata = stratify(sites, aoi, buffer_m=params.buffer_m)
    points = draw_sample(strata, sizes=plan_sample(strata, params=params), seed=params.seed)
    chips = write_chips(points, composites, out_dir / "chips", size_px=params.chip_size_px)
    write_sample(points, out_dir, chips=chips)               # the analyst fills sample.csv
    labelled = read_labels_csv(labels_csv, sample=points)
    est = estimate_accuracy(count_matrix(labelled), map_class=MAP_CLASS,
                            stratum_areas=dict(zip(strata.stratum, strata.area_ha)), z=params.ci_z)
    est.table()                                              # area (ha) +- CI, accuracies +- CI
"""

from __future__ import annotations

from ..config import AssessParams
from .chips import RGB_BANDS, write_chips
from .design import allocate_sample, draw_sample, expected_overall_se, plan_sample, sample_size, stratify
from .estimate import MAP_CLASS, REFERENCE_CLASSES, STRATA, AccuracyEstimate, count_matrix, estimate_accuracy
from .files import SAMPLE_CSV_COLUMNS, read_labels_csv, write_sample
from .runs import ASSESSMENT_DIR, estimate_run, sample_run

__all__ = [
    "ASSESSMENT_DIR",
    "MAP_CLASS",
    "REFERENCE_CLASSES",
    "RGB_BANDS",
    "SAMPLE_CSV_COLUMNS",
    "STRATA",
    "AccuracyEstimate",
    "AssessParams",
    "allocate_sample",
    "count_matrix",
    "draw_sample",
    "estimate_run",
    "estimate_accuracy",
    "expected_overall_se",
    "plan_sample",
    "read_labels_csv",
    "sample_run",
    "sample_size",
    "stratify",
    "write_chips",
    "write_sample",
]
