"""Per-observation excavation evidence: vegetation loss to exposed gravel or water."""

from __future__ import annotations

import datetime as dt

import xarray as xr

from ..config import DetectParams
from .baselines import _windows, drop_widespread, ndvi_change
from .indices import spectral_indices

#: The per-date indices :func:`spectral_indices` returns (``ndti``, ``nbr`` with ``swir22``).
INDEX_VARS = ("ndvi", "bsi", "mndwi", "bright", "ndti", "nbr")


def score_change(
    scenes: xr.Dataset,
    *,
    monitoring_start: dt.date,
    params: DetectParams,
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
    # Indices computed earlier (the per-date state of an incremental run) are used as they are.
    idx = scenes[[v for v in INDEX_VARS if v in scenes]] if "ndvi" in scenes else spectral_indices(scenes)
    loss = ndvi_change(idx["ndvi"], scenes["valid"], monitoring_start=monitoring_start, params=params)
    base_idx, mon_idx = _windows(scenes, monitoring_start=monitoring_start, baseline_days=params.baseline_days)
    mon = idx.isel(time=mon_idx)
    valid = loss["valid"]
    water = mon["mndwi"] >= params.water_mndwi_min
    was_water = idx["mndwi"].isel(time=base_idx).max("time", skipna=True) >= params.water_mndwi_min
    was_bare = (loss["baseline_ndvi"] <= params.bare_ndvi_max) & ~was_water
    gravel = _gravel(mon, params)
    new_water = water & ~was_water
    evidence = (loss["loss"] & (gravel | water)) | new_water
    # Without the allowance of greener gravel (NDVI in (bare_ndvi_max, gravel_ndvi_max]).
    strict = (loss["loss"] & ((gravel & (mon["ndvi"] <= params.bare_ndvi_max)) | water)) | new_water
    if params.swir_change_min is not None:
        base_swir = scenes["swir16"].isel(time=base_idx).median("time", skipna=True)
        swir_change = abs(scenes["swir16"].isel(time=mon_idx) - base_swir)
        disturbed = was_bare & (swir_change >= params.swir_change_min)
        evidence, strict = evidence | disturbed, strict | disturbed
    evidence, valid = drop_widespread(
        evidence & valid, valid, max_frac=params.widespread_loss_max_frac, strict=strict & valid
    )
    out = mon.copy()
    out["evidence"] = evidence
    out["valid"] = valid
    # Re-greening only means something where the baseline was green: in bare ground (sand,
    # laterite, desert) the NDVI of a pit and of its surroundings are alike.
    out["regrowth"] = loss["regrowth"] & ~was_bare & valid
    out["baseline_ndvi"] = loss["baseline_ndvi"]
    out["ndvi_drop_threshold"] = loss["ndvi_drop_threshold"]
    return out


def _gravel(idx: xr.Dataset, params: DetectParams) -> xr.DataArray:
    """Exposed gravel or laterite: unvegetated, bare, bright, and not dry plant matter."""
    unvegetated = idx["ndvi"] <= params.gravel_ndvi_max
    bare = unvegetated & (idx["bsi"] >= params.bare_bsi_min) & (idx["bright"] >= params.bright_min)
    if params.gravel_ndti_max is not None and "ndti" in idx:
        bare = bare & (idx["ndti"] <= params.gravel_ndti_max)
    return bare
