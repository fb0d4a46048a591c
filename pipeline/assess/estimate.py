"""PURE: error matrix, accuracies and area estimates with standard errors (Olofsson et al. 2014).

Stratified random sampling: the map is cut into strata ``h`` of known area ``A_h``
(``W_h = A_h / A``), ``n_h`` points are drawn at random in each and an analyst gives each
point a *reference* class ``j``. Every stratum has one *map* class ``m(h)``. All estimators
are those of Olofsson, Foody, Herold, Stehman, Woodcock & Wulder (2014), "Good practices for
estimating area and assessing accuracy of land change", Remote Sensing of Environment 148:
42-57, written for strata that may differ from the map classes as Stehman (2014, Int. J.
Remote Sens. 35: 4923-4939) shows:

* error matrix in area proportions ``p_ij = sum_{h: m(h)=i} W_h n_hj / n_h`` (rows map class
  ``i``, columns reference class ``j``); with strata = map classes this is ``W_i n_ij / n_i.``;
* overall accuracy ``O = sum_i p_ii``, user's accuracy ``U_i = p_ii / p_i.``, producer's
  accuracy ``P_j = p_jj / p_.j``;
* area proportion of reference class ``j``: ``p_.j = sum_h W_h n_hj / n_h`` (eq. 9, one term
  per *stratum*), standard error ``S(p_.j) = sqrt(sum_h W_h^2 (n_hj/n_h)(1 - n_hj/n_h) /
  (n_h - 1))`` (eq. 10); area ``A p_.j``, 95 % interval ``A p_.j +- 1.96 A S(p_.j)``;
* standard errors of ``O``, ``U_i`` and ``P_j``: Stehman's (2014) variance of a stratified
  ratio estimator ``R = Y / X`` of indicator totals (``V(R) = X^-2 sum_h W_h^2 s_zh^2 / n_h``
  with ``z = y - R x``), which reduces exactly to Olofsson et al.'s eqs. 5, 6 and 7 when
  strata are the map classes (the test reproduces the paper's worked example).

Finite-population corrections are ignored, as in the paper: a map has millions of pixels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.errors import ConfigError

__all__ = [
    "MAP_CLASS",
    "REFERENCE_CLASSES",
    "STRATA",
    "AccuracyEstimate",
    "count_matrix",
    "estimate_accuracy",
]

#: Reference classes an analyst gives a sample point.
REFERENCE_CLASSES: tuple[str, ...] = ("mining", "not_mining")
#: The strata of :func:`pipeline.assess.design.stratify`, in their order.
STRATA: tuple[str, ...] = ("site", "buffer", "stable")
#: Map class of each stratum: detected sites map mining; the ring around them and the rest do not.
MAP_CLASS: dict[str, str] = {"site": "mining", "buffer": "not_mining", "stable": "not_mining"}


@dataclass(frozen=True)
class AccuracyEstimate:
    """Estimates of :func:`estimate_accuracy`. Areas are in the unit of ``stratum_areas``."""

    counts: pd.DataFrame
    """Sample counts ``n_hj``: rows strata, columns reference classes."""
    map_class: pd.Series
    """Map class of each stratum (index: strata)."""
    weights: pd.Series
    """Stratum weights ``W_h = A_h / A`` (index: strata)."""
    total_area: float
    """``A``, the sum of the stratum areas."""
    matrix: pd.DataFrame
    """Error matrix in sample counts: rows map classes (strata of one map class summed), columns reference classes."""
    proportions: pd.DataFrame
    """Error matrix in estimated area proportions ``p_ij`` (rows map, columns reference; sums to 1)."""
    overall_accuracy: float
    """``O = sum_i p_ii``."""
    overall_accuracy_se: float
    """Standard error of ``O`` (Olofsson et al. 2014 eq. 5 when strata are map classes)."""
    users_accuracy: pd.Series
    """``U_i = p_ii / p_i.`` per map class (NaN for a class no stratum maps)."""
    users_accuracy_se: pd.Series
    """Standard error of ``U_i`` (eq. 6 when strata are map classes)."""
    producers_accuracy: pd.Series
    """``P_j = p_jj / p_.j`` per reference class (NaN when ``p_.j = 0``)."""
    producers_accuracy_se: pd.Series
    """Standard error of ``P_j`` (eq. 7 when strata are map classes)."""
    area_proportion: pd.Series
    """Stratified estimate ``p_.j`` of the share of the mapped area of each reference class (eq. 9)."""
    area_proportion_se: pd.Series
    """``S(p_.j)`` (eq. 10)."""
    z: float
    """Normal quantile of the confidence intervals (1.96: 95 %)."""

    @property
    def area(self) -> pd.Series:
        """Estimated area of each reference class, ``A p_.j`` (unit of ``stratum_areas``)."""
        return self.total_area * self.area_proportion

    @property
    def area_se(self) -> pd.Series:
        """Standard error of the area, ``A S(p_.j)``."""
        return self.total_area * self.area_proportion_se

    @property
    def area_ci(self) -> pd.Series:
        """Half-width of the confidence interval of the area, ``z A S(p_.j)``."""
        return self.z * self.area_se

    def table(self) -> pd.DataFrame:
        """One row per class: mapped area, estimated area +- CI, user's and producer's accuracy +- CI."""
        mapped = self.weights.groupby(self.map_class).sum().reindex(self.area.index, fill_value=0.0)
        return pd.DataFrame(
            {
                "mapped_area": self.total_area * mapped,
                "area": self.area,
                "area_se": self.area_se,
                "area_ci": self.area_ci,
                "users_accuracy": self.users_accuracy,
                "users_accuracy_ci": self.z * self.users_accuracy_se,
                "producers_accuracy": self.producers_accuracy,
                "producers_accuracy_ci": self.z * self.producers_accuracy_se,
            }
        )


def count_matrix(
    sample: pd.DataFrame,
    *,
    strata: Sequence[str] = STRATA,
    classes: Sequence[str] = REFERENCE_CLASSES,
    stratum_col: str = "stratum",
    label_col: str = "label",
) -> pd.DataFrame:
    """Count labelled sample points per stratum and reference class.

    Parameters
    ----------
    sample
        One row per labelled point with columns ``stratum_col`` and ``label_col``.
    strata, classes
        Row and column order of the result; values outside them are errors.

    Returns
    -------
    pandas.DataFrame
        ``n_hj``: int counts, index ``strata``, columns ``classes``.

    Raises
    ------
    ConfigError
        A column is missing, or a stratum or label is not one of ``strata`` / ``classes``.

    Examples
    --------
    >>> s = pd.DataFrame({"stratum": ["site", "site", "stable"], "label": ["mining", "not_mining", "not_mining"]})
    >>> count_matrix(s).loc["site"].tolist()
    [1, 1]
    """
    for col in (stratum_col, label_col):
        if col not in sample.columns:
            raise ConfigError(f"sample has no column {col!r}; pass the labelled sample (read_labels_csv)")
    for col, allowed in ((stratum_col, strata), (label_col, classes)):
        bad = sorted(set(sample[col].astype(str)) - set(allowed))
        if bad:
            raise ConfigError(f"sample column {col!r} has value(s) {bad}; use one of {list(allowed)}")
    table = pd.crosstab(sample[stratum_col].astype(str), sample[label_col].astype(str))
    return table.reindex(index=list(strata), columns=list(classes), fill_value=0).astype(int)


def estimate_accuracy(
    counts: pd.DataFrame | np.ndarray,
    *,
    stratum_areas: Mapping[str, float] | pd.Series | Sequence[float],
    map_class: Mapping[str, str] | None = None,
    z: float = 1.96,
) -> AccuracyEstimate:
    """Error matrix, accuracies and areas with standard errors from a stratified sample.

    Parameters
    ----------
    counts
        Sample counts ``n_hj``: rows strata ``h``, columns reference classes ``j`` (:func:`count_matrix`). An
        array is named by ``map_class``'s keys (rows) and values (columns, first seen first), else ``"0", "1"``.
    stratum_areas
        Mapped area ``A_h`` of each stratum in any unit (ha, pixels: areas come out in it);
        keyed by stratum, or a sequence in row order.
    map_class
        Map class (a reference class) of each stratum; ``None``: the strata are the map
        classes, named like the columns (the paper's standard case).
    z
        Normal quantile of the confidence intervals (1.96: 95 %).

    Returns
    -------
    AccuracyEstimate

    Raises
    ------
    ConfigError
        Strata and areas differ, an area is negative, a map class is not a reference class, or
        a stratum of non-zero area has fewer than 2 labelled points.

    Examples
    --------
    >>> areas = {"site": 30.0, "buffer": 70.0, "stable": 900.0}
    >>> est = estimate_accuracy(np.array([[45, 5], [3, 97], [1, 149]]), map_class=MAP_CLASS, stratum_areas=areas)
    >>> round(float(est.area["mining"]), 1), round(float(est.area_ci["mining"]), 1)
    (35.1, 12.3)
    """
    counts, mapped, areas = _prepare(counts, stratum_areas, map_class)
    classes, weights = list(counts.columns), areas / areas.sum()
    n, w = counts.to_numpy(dtype="float64"), weights.to_numpy()
    m = np.array([classes.index(c) for c in mapped])
    keep = w > 0  # strata of zero area carry no weight and may have no points: keep them out of the means
    est = _estimates(n[keep], w[keep], m[keep], len(classes))
    idx = pd.Index(classes)
    return AccuracyEstimate(
        counts=counts,
        map_class=mapped,
        weights=weights,
        total_area=float(areas.sum()),
        matrix=pd.DataFrame(est["nm"].astype(int), index=idx, columns=idx),
        proportions=pd.DataFrame(est["p"], index=idx, columns=idx),
        overall_accuracy=float(est["oa"]),
        overall_accuracy_se=float(est["oa_se"]),
        z=float(z),
        **{key: pd.Series(val, index=idx) for key, val in est.items() if key not in ("oa", "oa_se", "p", "nm")},
    )


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _estimates(n: np.ndarray, w: np.ndarray, m: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Every estimate from counts ``n[h, j]``, weights ``w[h]`` and map class index ``m[h]`` of ``k`` classes.

    Each is a stratified ratio of indicator means (:func:`_ratio`): for class ``c``,
    ``cell`` = point mapped ``c`` and labelled ``c``; ``on_map`` = stratum maps ``c``;
    ``is_ref`` = point labelled ``c``.
    """
    ones = np.ones_like(n)
    on_map = (m[:, None] == np.arange(k)[None, :]).astype(float)  # [h, c]
    oa = _ratio(n, w, np.eye(k)[m], ones)
    ua, ua_se, pa, pa_se, share, share_se = (np.zeros(k) for _ in range(6))
    for c in range(k):
        is_ref = np.broadcast_to((np.arange(k) == c).astype(float), n.shape)
        cell = is_ref * on_map[:, [c]]
        ua[c], ua_se[c] = _ratio(n, w, cell, ones * on_map[:, [c]])
        pa[c], pa_se[c] = _ratio(n, w, cell, is_ref)
        share[c], share_se[c] = _ratio(n, w, is_ref, ones)
    p, nm = np.zeros((k, k)), np.zeros((k, k))
    np.add.at(p, m, w[:, None] * n / n.sum(axis=1, keepdims=True))
    np.add.at(nm, m, n)
    return {
        "oa": np.asarray(oa[0]), "oa_se": np.asarray(oa[1]), "p": p, "nm": nm,
        "users_accuracy": ua, "users_accuracy_se": ua_se,
        "producers_accuracy": pa, "producers_accuracy_se": pa_se,
        "area_proportion": share, "area_proportion_se": share_se,
    }


def _ratio(n: np.ndarray, w: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Stratified ratio estimate ``R = Y / X`` and its standard error (Stehman 2014).

    ``n[h, j]``: sample counts; ``w[h]``: stratum weights; ``y[h, j]``, ``x[h, j]``: values
    of the indicators for a point of reference class ``j`` in stratum ``h``. ``x = 1``
    everywhere makes ``R`` a proportion of the whole map (variance of a stratified mean).
    """
    n_h = n.sum(axis=1)
    y_bar = (n * y).sum(axis=1) / n_h
    x_bar = (n * x).sum(axis=1) / n_h
    big_x = float(w @ x_bar)
    if big_x == 0:
        return float("nan"), float("nan")
    r = float(w @ y_bar) / big_x
    z = y - r * x
    z_bar = (n * z).sum(axis=1) / n_h
    s2 = (n * (z - z_bar[:, None]) ** 2).sum(axis=1) / (n_h - 1)
    return r, float(np.sqrt(np.sum(w**2 * s2 / n_h)) / big_x)


def _prepare(
    counts: pd.DataFrame | np.ndarray,
    stratum_areas: Mapping[str, float] | pd.Series | Sequence[float],
    map_class: Mapping[str, str] | None,
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Checked ``(counts, map class per stratum, area per stratum)``."""
    frame = _as_counts(counts, map_class)
    strata, classes = list(frame.index), list(frame.columns)
    mapped = pd.Series({s: (map_class or {}).get(s, s) for s in strata}, dtype=object)
    bad = sorted(set(mapped) - set(classes))
    if bad:
        raise ConfigError(f"map class(es) {bad} are not reference classes {classes}; map each stratum to one of them")
    areas = _as_areas(stratum_areas, strata)
    _check_sizes(frame.to_numpy().sum(axis=1), (areas / areas.sum()).to_numpy(), strata)
    return frame, mapped, areas


def _as_counts(counts: pd.DataFrame | np.ndarray, map_class: Mapping[str, str] | None) -> pd.DataFrame:
    if isinstance(counts, pd.DataFrame):
        frame = counts.copy()
    else:
        arr = np.asarray(counts)
        if arr.ndim != 2:
            raise ConfigError(f"counts must be a 2-D strata x reference classes table, got shape {arr.shape}")
        strata = list(map_class) if map_class else [str(i) for i in range(arr.shape[0])]
        classes = list(dict.fromkeys(map_class.values())) if map_class else [str(i) for i in range(arr.shape[1])]
        if len(strata) != arr.shape[0] or len(classes) != arr.shape[1]:
            raise ConfigError(
                f"counts have shape {arr.shape} but map_class names {len(strata)} strata and {len(classes)} classes; "
                "pass a DataFrame with named rows and columns"
            )
        frame = pd.DataFrame(arr, index=strata, columns=classes)
    frame.index = frame.index.astype(str)
    frame.columns = frame.columns.astype(str)
    values = frame.to_numpy()
    if not np.issubdtype(values.dtype, np.number) or (values < 0).any() or (values != np.round(values)).any():
        raise ConfigError("counts must be non-negative whole numbers of sample points; pass count_matrix(sample)")
    return frame.astype(int)


def _as_areas(areas: Mapping[str, float] | pd.Series | Sequence[float], strata: list[str]) -> pd.Series:
    if isinstance(areas, Mapping | pd.Series):
        series = pd.Series({str(k): float(v) for k, v in dict(areas).items()}, dtype="float64")
        missing, extra = sorted(set(strata) - set(series.index)), sorted(set(series.index) - set(strata))
        if missing or extra:
            raise ConfigError(
                f"stratum_areas keys {sorted(series.index)} differ from the strata {strata}; give one per stratum"
            )
        series = series.reindex(strata)
    else:
        series = pd.Series([float(v) for v in areas], index=strata[: len(areas)], dtype="float64")
        if len(series) != len(strata):
            raise ConfigError(f"stratum_areas has {len(areas)} values for {len(strata)} strata; give one per stratum")
    if not np.isfinite(series).all() or (series < 0).any() or series.sum() <= 0:
        raise ConfigError(f"stratum_areas {series.to_dict()} must be finite, non-negative and not all zero")
    return series


def _check_sizes(n_h: np.ndarray, w: np.ndarray, strata: list[str]) -> None:
    for name, size, weight in zip(strata, n_h, w, strict=True):
        if weight > 0 and size < 2:
            raise ConfigError(
                f"stratum {name!r} has {int(size)} labelled point(s); the variance needs at least 2 per stratum "
                "of non-zero area: label more of its points"
            )
