"""Per-observation excavation evidence: vegetation loss to exposed gravel or water."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import xarray as xr

from ..config import DetectParams
from .baselines import WidespreadCounts, _windows, drop_widespread, nanmedian_time, ndvi_change
from .indices import spectral_indices

#: The per-date indices :func:`spectral_indices` returns (``ndti``, ``nbr`` with ``swir22``).
INDEX_VARS = ("ndvi", "bsi", "mndwi", "bright", "ndti", "nbr")


def score_change(
    scenes: xr.Dataset,
    *,
    monitoring_start: dt.date,
    params: DetectParams,
    counts: WidespreadCounts | None = None,
) -> xr.Dataset:
    """Per-observation excavation evidence against a per-pixel baseline.

    Parameters
    ----------
    scenes
        Cloud-masked reflectance ``(time, y, x)`` with ``valid`` (from
        :func:`pipeline.preprocess.mask_clouds`), or the per-date indices of
        :func:`spectral_indices` with ``valid`` (and ``swir16``) as :mod:`pipeline.state` keeps
        them. Observations before ``monitoring_start`` form the baseline.
    monitoring_start
        First day on which change can be reported.
    params
        Thresholds (see :class:`pipeline.config.DetectParams`).
    counts
        The widespread-evidence counts of the whole grid (:func:`pipeline.detect.baselines.widespread_counts` of
        :func:`evidence_before_widespread` summed over every chunk) when ``scenes`` is one
        spatial chunk of it (:mod:`pipeline.detect.blockwise`); default: counted on ``scenes``.

    Returns
    -------
    xarray.Dataset
        ``evidence`` (bool, ``(time, y, x)``, monitoring observations only),
        ``valid`` (bool, same), ``regrowth`` (bool, same: back to baseline greenness),
        ``baseline_ndvi`` (float32, ``(y, x)``), ``ndvi_drop_threshold`` (0-d float32: the
        NDVI drop that counted as vegetation loss, ``ndvi_drop_min`` or the AOI's Otsu
        threshold) and the per-observation indices ``ndvi, bsi, mndwi, bright``. Lazy.

    Raises
    ------
    NoValidPixelsError
        When no observation falls in the baseline window or the monitoring period.
    """
    parts = evidence_before_widespread(scenes, monitoring_start=monitoring_start, params=params)
    evidence, valid, regrowth = judge_dates(parts.evidence, parts.strict, parts.valid, parts.regrowth,
                                            params=params, counts=counts)
    out = parts.mon.copy()
    out["evidence"] = evidence
    out["valid"] = valid
    out["regrowth"] = regrowth
    out["baseline_ndvi"] = parts.loss["baseline_ndvi"]
    out["ndvi_drop_threshold"] = parts.loss["ndvi_drop_threshold"]
    return out


def judge_dates(
    evidence: xr.DataArray,
    strict: xr.DataArray,
    valid: xr.DataArray,
    regrowth: xr.DataArray,
    *,
    params: DetectParams,
    counts: WidespreadCounts | None = None,
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """The fields of :class:`EvidenceParts` after the widespread-evidence test
    (:func:`pipeline.detect.baselines.drop_widespread`, ``counts`` as there): evidence, clear
    views and re-greening on the dates (and pixels) judged."""
    evidence, valid = drop_widespread(
        evidence, valid, max_frac=params.widespread_loss_max_frac, strict=strict, counts=counts
    )
    return evidence, valid, regrowth & valid


@dataclass
class EvidenceParts:
    """:func:`score_change` before the widespread-evidence test (monitoring observations)."""

    mon: xr.Dataset
    """The per-date indices."""
    loss: xr.Dataset
    """:func:`pipeline.detect.baselines.ndvi_change`."""
    evidence: xr.DataArray
    """Evidence on clear observations."""
    strict: xr.DataArray
    """The part of it that needs no greener-gravel allowance, on clear observations."""
    valid: xr.DataArray
    regrowth: xr.DataArray
    """Back to baseline greenness, where the baseline was green (in bare ground, sand,
    laterite or desert, the NDVI of a pit and of its surroundings are alike)."""


def evidence_before_widespread(scenes: xr.Dataset, *, monitoring_start: dt.date, params: DetectParams) -> EvidenceParts:
    """The evidence of :func:`score_change` before dates of widespread evidence are dropped. Lazy."""
    # Indices computed earlier (the per-date state of an incremental run) are used as they are.
    idx = scenes[[v for v in INDEX_VARS if v in scenes]] if "ndvi" in scenes else spectral_indices(scenes)
    loss = ndvi_change(idx["ndvi"], scenes["valid"], monitoring_start=monitoring_start, params=params)
    base_idx, mon_idx = _windows(scenes, monitoring_start=monitoring_start, baseline_days=params.baseline_days)
    mon = idx.isel(time=mon_idx)
    valid = loss["valid"]
    water = mon["mndwi"] >= params.water_mndwi_min
    # "any date at or above" is "the maximum at or above" without NumPy's all-NaN warning
    was_water = (idx["mndwi"].isel(time=base_idx) >= params.water_mndwi_min).any("time")
    was_bare = (loss["baseline_ndvi"] <= params.bare_ndvi_max) & ~was_water
    gravel = _gravel(mon, params)
    new_water = water & ~was_water
    evidence = (loss["loss"] & (gravel | water)) | new_water
    # Without the allowance of greener gravel (NDVI in (bare_ndvi_max, gravel_ndvi_max]).
    strict = (loss["loss"] & ((gravel & (mon["ndvi"] <= params.bare_ndvi_max)) | water)) | new_water
    if params.swir_change_min is not None:
        base_swir = nanmedian_time(scenes["swir16"].isel(time=base_idx))
        swir_change = abs(scenes["swir16"].isel(time=mon_idx) - base_swir)
        disturbed = was_bare & (swir_change >= params.swir_change_min)
        evidence, strict = evidence | disturbed, strict | disturbed
    return EvidenceParts(mon=mon, loss=loss, evidence=evidence & valid, strict=strict & valid, valid=valid,
                         regrowth=loss["regrowth"] & ~was_bare)


def indices_read(params: DetectParams) -> list[str]:
    """The per-date indices :func:`evidence_before_widespread` reads with these settings (what a
    caller computing them ahead, one chunk at a time, needs; NBR is the classifier's)."""
    return ["ndvi", "bsi", "mndwi", "bright"] + (["ndti"] if params.gravel_ndti_max is not None else [])


def _gravel(idx: xr.Dataset, params: DetectParams) -> xr.DataArray:
    """Exposed gravel or laterite: unvegetated, bare, bright, and not dry plant matter."""
    unvegetated = idx["ndvi"] <= params.gravel_ndvi_max
    bare = unvegetated & (idx["bsi"] >= params.bare_bsi_min) & (idx["bright"] >= params.bright_min)
    if params.gravel_ndti_max is not None and "ndti" in idx:
        bare = bare & (idx["ndti"] <= params.gravel_ndti_max)
    return bare
