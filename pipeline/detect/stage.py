"""The detect stage of one AOI, as the run and the notebooks call it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import xarray as xr

from ..config import DetectParams, RadarParams
from ..radar import fuse_evidence
from . import blockwise
from .confirm import confirm_change
from .evidence import score_change
from .flags import flag_excavation

#: 0-d threshold variables :func:`detect_change` returns with the change rasters, and units.
APPLIED_THRESHOLDS: dict[str, str] = {
    "ndvi_drop_threshold": "NDVI units",
    "vh_drop_threshold_db": "dB",
}


def detect_change(
    masked: xr.Dataset,
    *,
    start: dt.date,
    params: DetectParams,
    radar: xr.Dataset | None = None,
    radar_params: RadarParams | None = None,
) -> tuple[xr.DataArray, xr.Dataset]:
    """The lazy detect stage of one AOI: evidence (fused with radar when given), confirmation, flags.

    The notebooks' detection (:func:`pipeline.explore.detect_sites`); a run computes the
    change rasters alone (:func:`change_rasters`) and makes the flags from them. Lazy in,
    lazy out: nothing is computed.

    Parameters
    ----------
    masked
        Cloud-masked ``(time, y, x)`` reflectance cube (:func:`pipeline.workflow.open_aoi_scenes`).
    start
        First day of the monitoring period.
    params
        Detection thresholds.
    radar
        Output of :func:`pipeline.radar.score_radar_change` on the same grid (see
        :func:`pipeline.aoi_radar.open_aoi_radar`), or ``None`` for optical evidence only.
        Radar evidence is merged on the optical time axis by
        :func:`pipeline.radar.fuse_evidence`, and the re-vegetation seen by either sensor is
        merged the same way.
    radar_params
        ``radar_role`` and ``optical_gap_days`` for the fusion (default :class:`RadarParams`).

    Returns
    -------
    flags, change
        Lazy ``(y, x)`` flags from :func:`flag_excavation` and change rasters from
        :func:`confirm_change`, plus the 0-d thresholds applied: ``ndvi_drop_threshold``
        (NDVI units) and, with radar, ``vh_drop_threshold_db`` (dB); names are those of
        :data:`APPLIED_THRESHOLDS`.
    """
    change = change_rasters(masked, start=start, params=params, radar=radar, radar_params=radar_params)
    return flag_excavation(change, params=params), change


def change_rasters(
    masked: xr.Dataset,
    *,
    start: dt.date,
    params: DetectParams,
    radar: xr.Dataset | None = None,
    radar_params: RadarParams | None = None,
) -> xr.Dataset:
    """The change rasters of :func:`detect_change` (same arguments) without its flags: a run
    computes these and makes the flags from the computed rasters with
    :func:`flag_excavation` (their opening costs a dozen tasks a chunk in a graph, and
    milliseconds in NumPy). Lazy."""
    if blockwise.supported(masked, params, radar):
        # The same rules in two tasks per spatial chunk instead of ~150 (pipeline.detect.blockwise).
        return blockwise.change_blockwise(masked, start=start, params=params, confirm=confirm_options(params))
    scored = score_change(masked, monitoring_start=start, params=params)
    evidence, valid, regrowth = scored["evidence"], scored["valid"], scored["regrowth"]
    if radar is not None:
        rp = radar_params if radar_params is not None else RadarParams()
        evidence, valid, regrowth = fuse_evidence(
            evidence,
            valid,
            radar["evidence"],
            radar["valid"],
            radar_role=rp.radar_role,
            optical_gap_days=rp.optical_gap_days,
            regrowth=(regrowth, radar["regrowth"]),
        )
    change = confirm_change(evidence, valid, regrowth=regrowth, **confirm_options(params))
    # The thresholds actually applied (fixed, or the AOI's Otsu value) travel with the change
    # rasters as 0-d variables, computed in the same pass, for the manifest and the bulletin.
    change["ndvi_drop_threshold"] = scored["ndvi_drop_threshold"]
    if radar is not None:
        change["vh_drop_threshold_db"] = radar["vh_threshold_db"]
    return change


def resumable(params: DetectParams, radar: Any = None) -> bool:
    """Whether :func:`resume_change` applies to these settings: the ``fixed`` NDVI-drop
    threshold and no radar (each monitoring date's evidence then depends on that date and the
    baseline alone)."""
    return blockwise.supported_params(params, radar)


def not_resumable(params: DetectParams, radar: Any = None) -> str | None:
    """Why :func:`resume_change` does not apply to these settings (:func:`resumable`), in words
    for the run's log and manifest; ``None`` when it does."""
    if radar is not None:
        return "radar is fused: its scores are not stored"
    if not resumable(params, radar):
        return f"detect.threshold_method {params.threshold_method}: the threshold depends on every date"
    return None


def resume_change(
    masked: xr.Dataset, *, start: dt.date, params: DetectParams, take: Sequence[int], resume: blockwise.Resume,
) -> tuple[xr.DataArray, xr.Dataset]:
    """:func:`detect_change` of the monitoring dates after a stored confirmation state, as
    one pass over all of them gives it (:class:`pipeline.detect.blockwise.Resume`; the
    incremental runs of :mod:`pipeline.incremental`). ``take``: positions in ``masked`` of the
    baseline dates and of the monitoring dates to step over. Lazy; settings as :func:`resumable`."""
    change = resumed_change_rasters(masked, start=start, params=params, take=take, resume=resume)
    return flag_excavation(change, params=params), change


def resumed_change_rasters(
    masked: xr.Dataset, *, start: dt.date, params: DetectParams, take: Sequence[int], resume: blockwise.Resume,
) -> xr.Dataset:
    """The change rasters of :func:`resume_change` (same arguments) without its flags, as
    :func:`change_rasters` is to :func:`detect_change`. Lazy."""
    return blockwise.change_blockwise(masked, start=start, params=params, confirm=confirm_options(params),
                                      take=take, resume=resume)


def confirm_options(params: DetectParams) -> dict[str, Any]:
    """The keyword arguments of :func:`confirm_change` that ``params`` sets."""
    return {
        "min_confirmations": params.min_confirmations,
        "min_regrowth_obs": params.regrowth_min_obs,
        "window_days": params.persistence_window_days,
        "rearm": params.rearm_after_regrowth,
        # The seasonal-recurrence guard belongs to re-arming (DetectParams.rearm_after_regrowth).
        # Without re-arming it only ever met runs too short to confirm, and one evidence date on
        # cured grass in January then hid a pit dug there the next January.
        "rearm_season_gap_days": params.season_window_days if params.rearm_after_regrowth else 0.0,
    }
