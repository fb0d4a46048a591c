"""Training the site classifier from analysts' label polygons: ``python -m pipeline train``.

The same AOIs, period and source as ``monitor`` (the same options), the same candidate
generator (the rules with ``classifier.candidate_min_area_m2``) and the same features
(:mod:`pipeline.classify`), so a model sees at training what it will see in a run:

1. per AOI, :func:`pipeline.workflow.candidate_evidence` (search, window cache, one
   ``dask.compute`` of the change and feature rasters, candidates with their features);
2. each candidate takes the label of the label polygon it overlaps most
   (:func:`pipeline.classify.assign_labels`); label polygons inside the AOI that no candidate
   touched still teach: they are described by the same features over their own footprint
   (``source = label_polygon``), and the mining ones are counted as the candidate
   generator's misses;
3. :func:`pipeline.classify.train_site_model`: gradient-boosted trees, calibrated, with
   spatially grouped cross-validation (a label polygon never on both sides of a split);
4. the model, its card (``model_card.json``, ``MODEL_CARD.md``) and digest are written to
   ``--out`` atomically.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features

from . import acquire
from .aoi import read_aois
from .cache import resolve_cache_dir
from .cache_use import cache_in_use
from .classify import (
    SiteModel,
    assign_labels,
    candidate_features,
    check_model_dir,
    feature_spec,
    read_labels,
    train_site_model,
)
from .classify.model import MIN_GROUPS_PER_CLASS
from .cluster import configure_workers, dask_client
from .config import MonitorConfig
from .errors import ConfigError, MonitorError
from .jobs import AOIJob, plan_jobs
from .register import SiteRegister, verdict_labels
from .run import preflight_radar, preflight_source
from .validate_inputs import preflight_dry_run
from .workflow import CandidateEvidence, candidate_evidence

log = logging.getLogger("pipeline")

__all__ = ["TrainReport", "collect_training_rows", "fit_site_model", "train_model", "training_rows"]


@dataclass
class TrainReport:
    """What ``train`` did, for the command line."""

    model_dir: Path
    model: SiteModel
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


def train_model(
    cfg: MonitorConfig,
    *,
    labels: Path | None = None,
    register: SiteRegister | None = None,
    out_dir: Path,
    today: dt.date | None = None,
) -> TrainReport:
    """Train a site classifier over the AOIs of ``cfg`` on the label polygons ``labels``, the
    analysts' verdicts of ``register`` (:func:`pipeline.register.verdict_labels`), or both.

    Raises
    ------
    ConfigError
        Neither labels nor verdicts, a bad labels file, no labelled candidate in any AOI, too
        few label polygons of a class (one line with the counts), or every AOI failed.
    MonitorError
        Bad AOI files or an unreachable source, before anything is computed.
    """
    check_model_dir(out_dir)  # before the work, not after it
    label_polys = training_labels(labels, register)
    table, failures = collect_training_rows(cfg, label_polys, today=today)
    model = fit_site_model(cfg, table, label_polys, failures=failures)
    path = model.save(out_dir)
    log.info("train: model written to %s (%d rows, %d label polygons)", path, len(table), table["group"].nunique())
    return TrainReport(model_dir=path, model=model, failures=failures)


def training_labels(labels: Path | None, register: SiteRegister | None) -> gpd.GeoDataFrame:
    """The label polygons of a labels file and of a register's verdicts, together.

    Raises
    ------
    ConfigError
        Neither given, or the register holds no ``confirmed`` / ``false_alarm`` verdict.
    """
    parts = []
    if labels is not None:
        parts.append(read_labels(labels))
    if register is not None:
        if not register.path.is_file():
            raise ConfigError(f"site register {register.path} does not exist; pass --from-register the register "
                              "`python -m pipeline review record` wrote (by default site_register.sqlite in the "
                              "run's output folder)")
        verdicts = verdict_labels(register)
        if verdicts.empty:
            raise ConfigError(f"site register {register.path}: no confirmed or false_alarm verdict to learn from; "
                              "record verdicts with `python -m pipeline review record` first")
        parts.append(verdicts)
    if not parts:
        raise ConfigError("train needs --labels LABELS.geojson, --from-register, or both")
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=4326)


def check_label_classes(label_polys: gpd.GeoDataFrame) -> None:
    """Refuse labels with fewer than ``MIN_GROUPS_PER_CLASS`` polygons of a class: the grouped
    cross-validation needs that many of each (:func:`pipeline.classify.train_site_model`), and
    only polygons that candidates overlap count there, never more than the labels hold. Without
    this, ``train`` computed every AOI (and filled the cache) before it refused one-class labels.

    Raises
    ------
    ConfigError
        One line with the counts of each class.
    """
    n_mining = int((label_polys["y"] == 1).sum())
    n_not = int((label_polys["y"] == 0).sum())
    if min(n_mining, n_not) < MIN_GROUPS_PER_CLASS:
        raise ConfigError(
            f"too few label polygons to train: {n_mining} mining, {n_not} not_mining (labels and verdicts "
            f"together); label at least {MIN_GROUPS_PER_CLASS} polygons of each class (not_mining over rivers, "
            "farms, burns; mining over pits)"
        )


def collect_training_rows(
    cfg: MonitorConfig, labels: gpd.GeoDataFrame, *, today: dt.date | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Labelled feature rows of every AOI of ``cfg`` (:func:`training_rows`), and the AOIs that
    failed (one line each). Runs the candidate generator with its own Dask client."""
    aois = read_aois(cfg.aois, max_area_km2=cfg.max_aoi_area_km2)
    jobs = plan_jobs(aois, cfg, today=today)
    preflight_dry_run(cfg, jobs, today=today)  # what monitor would refuse in the inputs it reads
    check_label_classes(labels)  # a class with too few polygons cannot be learnt: say so before computing
    preflight_source(cfg)
    radar_down = preflight_radar(cfg)
    tables: list[pd.DataFrame] = []
    failures: dict[str, str] = {}
    with cache_in_use(resolve_cache_dir(cfg.cache_dir)), dask_client(cfg) as client, \
            acquire.gdal_env(cfg.gdal_options):
        configure_workers(client, cfg)
        for job in jobs:
            try:
                tables.append(training_rows(job, candidate_evidence(job, radar_down=radar_down), labels))
            except MonitorError as exc:
                failures[job.aoi_id] = " ".join(str(exc).split())
                log.error("AOI %s failed: %s", job.aoi_id, failures[job.aoi_id])
    if not tables:
        raise ConfigError(f"train: every AOI failed ({'; '.join(f'{k}: {v}' for k, v in failures.items())})")
    return pd.concat(tables, ignore_index=True), failures


def fit_site_model(
    cfg: MonitorConfig, table: pd.DataFrame, labels: gpd.GeoDataFrame, *, failures: dict[str, str] | None = None
) -> SiteModel:
    """Fit the classifier of ``cfg.classifier`` on labelled rows (:func:`collect_training_rows`).

    Raises
    ------
    ConfigError
        No labelled row, or too few label polygons of a class (one line with the counts).
    """
    summary = _summary(table, labels, failures or {})
    if summary["n_labelled"] == 0:
        raise ConfigError(
            f"train: no candidate or label polygon lies inside the AOIs ({', '.join(summary['aois']) or 'none'}); "
            "check the labels' coordinates and --aoi"
        )
    spec = feature_spec(cfg.features, baseline_days=cfg.detect.baseline_days)
    names = list(spec["feature_names"])
    return train_site_model(
        table[names], table["y"].to_numpy(dtype=int), table["group"].to_numpy(dtype=str),
        params=cfg.classifier, spec=spec, training_summary=summary,
    )


def training_rows(job: AOIJob, evidence: CandidateEvidence, labels: gpd.GeoDataFrame) -> pd.DataFrame:
    """One AOI's labelled feature rows: the labelled candidates, then the label polygons inside
    the AOI that no candidate touched (``source``: ``candidate`` or ``label_polygon``)."""
    cands = evidence.candidates
    grid = evidence.grid
    inside = labels[labels.to_crs(grid.crs).intersects(grid.aoi_utm)]
    rows = []
    if not cands.sites.empty and cands.features is not None and not inside.empty:
        assignment = assign_labels(cands.sites, inside)
        lab = assignment.labelled
        part = cands.features[lab].copy()
        part["y"] = assignment.y[lab].astype(int).to_numpy()
        part["group"] = assignment.group[lab].astype(str).to_numpy()
        part["source"] = "candidate"
        rows.append(part)
        missed = assignment.missed
    else:
        missed = inside.to_crs(grid.crs)
    if not missed.empty:
        polys = missed.to_crs(grid.crs).reset_index(drop=True)
        polys["geometry"] = polys.geometry.intersection(grid.aoi_utm)
        polys = polys[~polys.geometry.is_empty].reset_index(drop=True)
        if not polys.empty:
            polys = _with_change_fields(polys, cands.change, grid)
            part = candidate_features(evidence.rasters, polys, ring_m=job.cfg.features.ring_m,
                                      radar=evidence.radar_rasters)
            part["y"] = polys["y"].astype(int).to_numpy()
            part["group"] = polys["label_id"].astype(str).to_numpy()
            part["source"] = "label_polygon"
            rows.append(part)
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["y", "group", "source"])
    table["aoi_id"] = job.aoi_id
    log.info("AOI %s: %d candidates, %d training rows", job.aoi_id, len(cands.sites), len(table))
    return table


def _with_change_fields(polys: gpd.GeoDataFrame, change: Any, grid: Any) -> gpd.GeoDataFrame:
    """Give label polygons the fields a candidate carries (``n_obs``, ``persistence``,
    ``n_occluded``), summarised from the change rasters over their pixels as for a site, so
    that these rows differ from candidates by what the ground did, not by missing columns."""
    zones = rasterio.features.rasterize(
        [(g, i + 1) for i, g in enumerate(polys.geometry)], out_shape=grid.shape, transform=grid.transform,
        dtype="int32",
    )
    n_obs = np.asarray(change["n_obs"].values, dtype="float64")
    n_clear = np.asarray(change["n_clear_after"].values, dtype="float64")
    n_occ = np.asarray(change["n_occluded"].values, dtype="float64")
    persistence = n_obs / np.maximum(n_clear, 1)
    rows = []
    for i in range(len(polys)):
        pix = zones == i + 1
        if not pix.any():
            rows.append((0.0, 0.0, 0.0))
            continue
        rows.append((float(np.median(n_obs[pix])), float(np.mean(persistence[pix])), float(np.median(n_occ[pix]))))
    out = polys.copy()
    out["n_obs"], out["persistence"], out["n_occluded"] = (list(col) for col in zip(*rows, strict=True))
    return out


def _summary(table: pd.DataFrame, labels: gpd.GeoDataFrame, failures: dict[str, str]) -> dict[str, Any]:
    """Training data summary for the model card."""
    by_source = table.groupby("source")["y"]
    cand = table[table["source"] == "candidate"]
    polys = table[table["source"] == "label_polygon"]
    used = set(table["group"])
    return {
        "n_labelled": int(len(table)),
        "n_candidates_labelled": int(len(cand)),
        "n_label_polygon_rows": int(len(polys)),
        "n_mining_rows": int((table["y"] == 1).sum()),
        "n_not_mining_rows": int((table["y"] == 0).sum()),
        "n_label_polygons": int(len(labels)),
        "n_label_polygons_used": int(len(used)),
        "n_label_polygons_outside_aois": int(len(labels) - len(used)),
        "n_mining_polygons_missed_by_rules": int((polys["y"] == 1).sum()),
        "n_not_mining_polygons_rejected_by_rules": int((polys["y"] == 0).sum()),
        "per_source": {str(k): int(v) for k, v in by_source.size().items()},
        "aois": sorted(set(table["aoi_id"])),
        "failed_aois": dict(failures),
        "classes": _classes(labels, used),
        "mining_share": float(np.mean(table["y"] == 1)) if len(table) else 0.0,
    }


def _classes(labels: gpd.GeoDataFrame, used: set[str]) -> dict[str, int]:
    """Label polygons used, by finer class (``class`` property, else the label)."""
    lab = labels[labels["label_id"].astype(str).isin(used)]
    names = lab["class"].astype("string").fillna(lab["label"]).astype(str)
    return {str(k): int(v) for k, v in names.value_counts().sort_index().items()}
