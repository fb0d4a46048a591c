"""One AOI's candidate sites and their judgement by the site classifier.

:func:`aoi_candidates` turns an AOI's computed flags into the rules' sites or, for a site
model, into candidates with their features; :func:`classify_candidates` scores them. Used by
:mod:`pipeline.workflow` for monitor runs and for training
(:func:`pipeline.workflow.candidate_evidence`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import xarray as xr

from . import sites
from .classify import SiteModel, candidate_features
from .config import MonitorConfig
from .jobs import AOIGrid, AOIJob

log = logging.getLogger("pipeline")

__all__ = ["AOICandidates", "aoi_candidates", "classify_candidates"]


@dataclass
class AOICandidates:
    """One AOI's candidate sites (UTM), the pixels behind them and, for a classifier, their features."""

    sites: gpd.GeoDataFrame
    site_mask: np.ndarray
    change: xr.Dataset
    features: pd.DataFrame | None


def aoi_candidates(job: AOIJob, computed: Any, grid: AOIGrid, *, for_model: bool) -> AOICandidates:
    """The rules' sites of one AOI; for a classifier (``for_model``) the candidates instead:
    down to ``classifier.candidate_min_area_m2`` and without the isolation rule (the
    classifier judges), with their features. ``computed``: the AOI's computed arrays
    (``flags``, ``change``, ``rasters``, ``radar_rasters``, as :mod:`pipeline.workflow` computes
    them). Eager."""
    cfg = job.cfg
    sites_params = cfg.sites
    if for_model:
        sites_params = sites_params.model_copy(
            update={"min_area_m2": cfg.classifier.candidate_min_area_m2, "isolated_min_confidence": 0.0}
        )
    found, site_mask, change = sites.delineate_sites(
        computed.flags,
        computed.change,
        aoi_id=job.aoi_id,
        aoi_mask=grid.aoi_mask,
        crs=grid.crs,
        last_period_start=job.last_period_start,
        detect_params=cfg.detect,
        sites_params=sites_params,
        record_end=job.end,
    )
    features = None
    if for_model and computed.rasters is not None and not found.empty:
        features = candidate_features(computed.rasters, found, ring_m=cfg.features.ring_m, radar=computed.radar_rasters)
    return AOICandidates(sites=found, site_mask=site_mask, change=change, features=features)


def classify_candidates(
    cands: AOICandidates, model: SiteModel, cfg: MonitorConfig, *, grid: AOIGrid
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Score candidates with the site classifier: ``confidence`` becomes its calibrated
    probability; candidates under ``classifier.min_probability`` go, and those under the
    minimum mapping unit stay only at ``classifier.small_site_min_probability``.

    Candidates with fewer than ``classifier.min_optical_views`` clear optical observations
    since their change date (confirmed by radar under cloud) are not the classifier's to
    judge: the rules decide them as in a run without a model (minimum mapping unit, isolation
    rule, heuristic confidence)."""
    if cands.features is None or cands.sites.empty:
        return cands.sites, cands.site_mask
    proba = model.predict_proba(cands.features)
    area_m2 = cands.sites["area_ha"].to_numpy() * 1e4
    params = cfg.classifier
    keep = (proba >= params.min_probability) & (
        (area_m2 >= cfg.sites.min_area_m2) | (proba >= params.small_site_min_probability)
    )
    unseen = ~(cands.features["n_clear_post_mean"].to_numpy() >= params.min_optical_views)
    if unseen.any():
        by_rules = _rules_keep(cands.sites, cfg)
        keep = np.where(unseen, by_rules, keep)
        proba = np.where(unseen, cands.sites["confidence"].to_numpy(), proba)
        log.info("site model: %d of %d candidates had fewer than %d optical views since their change; "
                 "the rules decided them (%d kept)", int(unseen.sum()), len(unseen), params.min_optical_views,
                 int((unseen & by_rules).sum()))
    kept = cands.sites.assign(confidence=np.round(proba, 3))[keep].reset_index(drop=True)
    if kept.empty:
        return kept, np.zeros_like(cands.site_mask)
    inside = rasterio.features.rasterize(
        [(g, 1) for g in kept.geometry], out_shape=cands.site_mask.shape, transform=grid.transform, dtype="uint8"
    ).astype(bool)
    return kept, cands.site_mask & inside


def _rules_keep(candidates: gpd.GeoDataFrame, cfg: MonitorConfig) -> np.ndarray:
    """Which candidates the rules alone would report: the minimum mapping unit, then the
    isolation rule among those (:func:`pipeline.sites.polygonise_flags`)."""
    big = candidates["area_ha"].to_numpy() * 1e4 >= cfg.sites.min_area_m2
    keep = np.zeros(len(candidates), dtype=bool)
    keep[np.flatnonzero(big)] = sites.isolation_keep(candidates[big], cfg.sites)
    return keep
