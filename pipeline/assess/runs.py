"""``python -m pipeline assess sample|estimate --run OUT_DIR``: the assessment of one monitor run.

``sample`` reads the run's ``manifest.json`` (its AOI files and composites) and
``sites.geojson``, stratifies every AOI (:func:`~pipeline.assess.design.stratify`), sizes the
sample (:func:`~pipeline.assess.design.plan_sample`, or ``--n`` points allocated the same
way), draws it, writes a before/after chip per point and writes, under
``OUT_DIR/assessment/``: ``sample.csv`` (``point_id, lon, lat, stratum, label``; the
analyst fills ``label`` with ``mining`` or ``not_mining``), ``sample.gpkg``, ``chips/`` and
``design.json`` (stratum areas and sizes: what ``estimate`` needs).

Several AOIs are pooled by stratum: each stratum's points are spread over the AOIs in
proportion to that stratum's area in each, so every pooled stratum is sampled at one rate and
the stratified estimators apply to the pooled strata.

``estimate`` reads the labelled CSV, computes the error matrix, accuracies and the
stratified area estimate of mining with its confidence interval, and writes
``OUT_DIR/assessment/estimate.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from ..aoi import read_aois
from ..config import AssessParams
from ..errors import ConfigError
from ..evaluate import read_sites
from ..io import read_run_manifest, write_json
from .chips import write_chips
from .design import allocate_sample, draw_sample, plan_sample, stratify
from .estimate import MAP_CLASS, STRATA, count_matrix, estimate_accuracy
from .files import points_record, read_labels_csv, same_points, write_sample

__all__ = ["ASSESSMENT_DIR", "estimate_run", "sample_run"]

#: Sub-folder of a run's output folder holding its assessment.
ASSESSMENT_DIR = "assessment"


def sample_run(
    run_dir: str | Path, *, n: int | None = None, params: AssessParams | None = None, chips: bool = True
) -> dict[str, Path]:
    """Draw the stratified sample of a run; see the module docstring. Returns the files written.

    ``chips=False`` skips the before/after chips (simulations that label from a known truth).

    Raises
    ------
    ConfigError
        ``run_dir`` is not a monitor run's output folder, or ``n`` is below 2 per stratum.
    """
    run = Path(run_dir)
    manifest = read_run_manifest(run)
    params = params or run_params(manifest)
    strata = _strata(run, manifest, params)
    pooled = strata.groupby("stratum")["area_ha"].sum().reindex(list(STRATA), fill_value=0.0)
    sizes = _sizes(strata, pooled, n=n, params=params)
    points = _draw(strata, pooled, sizes, seed=params.seed)
    out = run / ASSESSMENT_DIR
    chip_table = _write_chips_whole(points, _composites(run, manifest), out, size_px=params.chip_size_px) \
        if chips else None
    written = write_sample(points, out, chips=chip_table)
    design = {
        "method": "Olofsson et al. 2014 stratified estimation (strata: site, buffer, stable)",
        "run": manifest.get("bulletin_number"),
        "stratum_area_ha": {h: round(float(a), 4) for h, a in pooled.items()},
        "sample_size": {h: int(sizes.get(h, 0)) for h in STRATA},
        "params": json.loads(params.model_dump_json()),
        "points": points_record(points),  # checked by estimate: the sample.csv of this design
    }
    # written last: a sample stopped before this leaves the previous design, which estimate
    # then finds does not match the new sample.csv (each file alone is written atomically)
    written["design.json"] = write_json(design, out / "design.json")
    return written


def _write_chips_whole(points: pd.DataFrame, composites: list[Path], out: Path, *, size_px: int) -> pd.DataFrame:
    """:func:`write_chips` into ``out/chips`` as a whole: drawn into a staging folder that then
    replaces the previous sample's chips. Written in place, a sample killed part way left the
    chips of its draw over those of the ``sample.csv`` still there (an outside tester)."""
    final = out / "chips"
    staging = out / f".chips.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        table = write_chips(points, composites, staging, size_px=size_px)
        for col in ("chip_before", "chip_after"):  # the paths the sample files record: the final folder's
            table[col] = [str(final / Path(p).name) if p else "" for p in table[col]]
        old = out / f".chips.{os.getpid()}.{uuid.uuid4().hex[:8]}.old.tmp"
        if final.exists():
            final.rename(old)
        staging.mkdir(parents=True, exist_ok=True)  # (no chip at all: an empty folder still replaces the old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return table


def estimate_run(
    run_dir: str | Path, labels: str | Path, *, params: AssessParams | None = None
) -> dict[str, Any]:
    """Estimate accuracy and the area of mining from the analyst's labels; writes ``estimate.json``.

    Raises
    ------
    ConfigError
        No ``assessment/design.json`` (run ``assess sample`` first), or a bad labels file
        (one line naming the file, the row and the fix).
    """
    params = params or run_params(read_run_manifest(run_dir))
    out = Path(run_dir) / ASSESSMENT_DIR
    design_path = out / "design.json"
    if not design_path.is_file():
        raise ConfigError(f"{design_path} does not exist; run `python -m pipeline assess sample --run {run_dir}` first")
    design = json.loads(design_path.read_text(encoding="utf-8"))
    sample = _drawn_sample(out / "sample.csv", design, run_dir=run_dir)
    labelled = read_labels_csv(labels, sample=sample)
    areas = {h: float(a) for h, a in design["stratum_area_ha"].items() if float(a) > 0}
    counts = count_matrix(labelled, strata=tuple(areas))
    est = estimate_accuracy(counts, stratum_areas=areas, map_class={h: MAP_CLASS[h] for h in areas}, z=params.ci_z)
    unanimous = unanimous_strata(labelled, areas)
    result = {"bulletin_number": design.get("run"),  # the map estimated: the bulletin the sample was drawn on
              **_result(est, labelled), "unanimous_strata": unanimous,
              "area_range_conservative_ha": conservative_range(result_area(est), unanimous)}
    write_json(result, out / "estimate.json")
    return result


def _drawn_sample(path: Path, design: Mapping[str, Any], *, run_dir: str | Path) -> pd.DataFrame:
    """The drawn sample (``assessment/sample.csv``), checked against its ``design.json``
    (``points``; a design written before it recorded them is taken as it is).

    Raises
    ------
    ConfigError
        The file is missing, or holds other points than the design's: an ``assess sample``
        stopped between its files, or a ``sample.csv`` copied in from another sample.
    """
    again = f"run `python -m pipeline assess sample --run {run_dir}` again"
    if not path.is_file():
        raise ConfigError(f"{path} does not exist (the sample {path.with_name('design.json')} describes); {again}")
    sample = pd.read_csv(path, dtype={"point_id": str, "stratum": str, "label": str})
    recorded = design.get("points")
    if recorded is not None and not same_points(sample, recorded):
        raise ConfigError(f"{path} does not hold the points {path.with_name('design.json')} was drawn with (an "
                          f"`assess sample` stopped part way, or a sample.csv from another sample); {again}, "
                          "then label the new sample.csv")
    return sample


def unanimous_strata(labelled: pd.DataFrame, areas: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """Strata whose points all got one label, where the stratified standard error is 0.

    A proportion observed as 0 of ``n`` has an estimated variance of 0, so such a stratum adds
    nothing to the interval although mining (or its absence) may still hide there. For each,
    the rule of three (Hanley & Lippman-Hand 1983) bounds the unseen share at ``3 / n`` with
    95 % confidence: ``other_label_ha_max`` is that share of the stratum's area. Reported next
    to the interval, never folded into it (the estimators stay Olofsson et al.'s).
    """
    out: dict[str, dict[str, Any]] = {}
    for stratum, group in labelled.groupby("stratum", sort=True):
        labels = set(group["label"])
        if len(labels) != 1 or str(stratum) not in areas:
            continue
        label = labels.pop()
        n = len(group)
        out[str(stratum)] = {
            "n": n, "label": label, "other_label": "not_mining" if label == "mining" else "mining",
            "other_label_ha_max": round(3.0 / n * float(areas[str(stratum)]), 2),
        }
    return out


def result_area(est: Any) -> tuple[float, float]:
    """The estimated mining area and the half-width of its interval (ha)."""
    return float(est.area["mining"]), float(est.area_ci["mining"])


def conservative_range(area: tuple[float, float], unanimous: Mapping[str, Mapping[str, Any]]) -> list[float]:
    """``[low, high]`` (ha): the confidence interval widened by the rule-of-three bounds of the
    unanimous strata (:func:`unanimous_strata`): mining that may hide where no sampled point
    found any raises ``high``; commission that may hide in a site stratum whose points all said
    mining lowers ``low`` (never below 0). Measured on synthetic runs labelled from their truth
    (``tests/test_assess_runs.py``), this range held the true area where the interval alone
    often did not; it is wider, and says what a sample of this size cannot rule out.
    """
    value, half = area
    up = sum(float(v["other_label_ha_max"]) for v in unanimous.values() if v.get("other_label") == "mining")
    down = sum(float(v["other_label_ha_max"]) for v in unanimous.values() if v.get("other_label") == "not_mining")
    return [round(max(0.0, value - half - down), 2), round(value + half + up, 2)]


def _result(est: Any, labelled: pd.DataFrame) -> dict[str, Any]:
    def r(x: Any, nd: int = 4) -> float | None:
        return None if x is None or not np.isfinite(float(x)) else round(float(x), nd)

    return {
        "area_ha": r(est.area["mining"], 2),
        "area_ci95_ha": r(est.area_ci["mining"], 2),
        "area_se_ha": r(est.area_se["mining"], 2),
        "mapped_area_ha": r(est.total_area * est.weights[est.map_class == "mining"].sum(), 2),
        "overall_accuracy": r(est.overall_accuracy),
        "overall_accuracy_ci95": r(est.z * est.overall_accuracy_se),
        "users_accuracy": {k: r(v) for k, v in est.users_accuracy.items()},
        "users_accuracy_ci95": {k: r(est.z * v) for k, v in est.users_accuracy_se.items()},
        "producers_accuracy": {k: r(v) for k, v in est.producers_accuracy.items()},
        "producers_accuracy_ci95": {k: r(est.z * v) for k, v in est.producers_accuracy_se.items()},
        "error_matrix_counts": {str(i): {str(j): int(v) for j, v in row.items()} for i, row in est.matrix.iterrows()},
        "error_matrix_proportions": {
            str(i): {str(j): r(v) for j, v in row.items()} for i, row in est.proportions.iterrows()
        },
        "n_points": int(len(labelled)),
        "n_per_stratum": {str(k): int(v) for k, v in labelled["stratum"].value_counts().sort_index().items()},
        "stratum_area_ha": {str(k): r(v * est.total_area, 2) for k, v in est.weights.items()},
        "confidence": 0.95 if abs(est.z - 1.96) < 1e-9 else None,
        "method": "Olofsson et al. 2014, stratified estimators (Stehman 2014 for strata that differ from map classes)",
    }


def run_params(manifest: Mapping[str, Any]) -> AssessParams:
    """The ``assess`` section of the configuration a run recorded (defaults for runs written
    before the section existed)."""
    section = manifest.get("config", {}).get("assess") or {}
    try:
        return AssessParams.model_validate(section)
    except ValueError as exc:
        raise ConfigError(f"manifest.json: its config's assess section is invalid ({' '.join(str(exc).split())}); "
                          "re-run monitor with a valid assess section") from None


def _strata(run: Path, manifest: Mapping[str, Any], params: AssessParams) -> gpd.GeoDataFrame:
    """Strata of every successful AOI of the run (``aoi_id``, ``stratum``, ``area_ha``, geometry in 4326)."""
    # The manifest names files relative to the run folder (older runs: absolute paths).
    files = [run / p for p in manifest.get("config", {}).get("aois", [])]
    missing = [str(p) for p in files if not p.is_file()]
    if not files or missing:
        raise ConfigError(f"{run / 'manifest.json'}: AOI files {missing or '(none)'} not found; assess on the "
                          "machine that ran monitor, or restore the AOI files")
    ok = {a for a, info in manifest.get("aois", {}).items() if info.get("status") == "ok"}
    sites = read_sites(run / "sites.geojson") if (run / "sites.geojson").is_file() else None
    parts = []
    for _, row in read_aois(files).iterrows():
        if str(row["aoi_id"]) not in ok:
            continue
        own = sites[sites["aoi_id"] == row["aoi_id"]] if sites is not None and not sites.empty else None
        own = own if own is not None else gpd.GeoDataFrame(geometry=[], crs=4326)
        strata = stratify(own, row.geometry, buffer_m=params.buffer_m)
        parts.append(strata.to_crs(4326).assign(aoi_id=str(row["aoi_id"])))
    if not parts:
        raise ConfigError(f"{run / 'manifest.json'}: no AOI of this run succeeded; nothing to assess")
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=4326)


def _sizes(strata: gpd.GeoDataFrame, pooled: pd.Series, *, n: int | None, params: AssessParams) -> dict[str, int]:
    if n is None:
        return plan_sample(gpd.GeoDataFrame({"stratum": pooled.index, "area_ha": pooled.values}), params=params)
    present = {h: float(a) for h, a in pooled.items() if a > 0}
    if n > params.max_points:
        raise ConfigError(f"--n {n} is more points than an analyst labels by eye (at most assess.max_points, "
                          f"{params.max_points}, in the run's configuration); give a smaller --n")
    if n < 2 * len(present):
        raise ConfigError(f"--n {n} is too small: at least 2 points per stratum ({2 * len(present)}) are needed")
    floor = max(2, n // (2 * len(present)))
    minimums = {h: min(floor, m) for h, m in params.minimums().items() if h in present}
    total = sum(present.values())
    weights = {h: a / total for h, a in present.items()}
    return {h: 0 for h in pooled.index} | allocate_sample(n, weights, minimums=minimums)


def _draw(strata: gpd.GeoDataFrame, pooled: pd.Series, sizes: Mapping[str, int], *, seed: int) -> gpd.GeoDataFrame:
    """Each pooled stratum's points spread over the AOIs in proportion to its area in each."""
    parts = []
    for k, (aoi_id, own) in enumerate(strata.groupby("aoi_id", sort=True)):
        share = {h: own.loc[own["stratum"] == h, "area_ha"].sum() / pooled[h] if pooled[h] > 0 else 0.0 for h in STRATA}
        names = set(own["stratum"])
        own_sizes = {h: int(round(sizes.get(h, 0) * share[h])) for h in STRATA if h in names}
        utm = own.to_crs(own.estimate_utm_crs())
        parts.append(draw_sample(utm, sizes=own_sizes, seed=seed + k).assign(aoi_id=aoi_id))
    points = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=parts[0].crs)
    points["point_id"] = [f"P{i + 1:04d}" for i in range(len(points))]
    return points


def _composites(run: Path, manifest: Mapping[str, Any]) -> list[Path]:
    files = [c.get("file") for info in manifest.get("aois", {}).values() for c in info.get("composites", [])]
    return [run / f for f in files if f and (run / f).is_file()]
