"""Input normalisers of :func:`~pipeline.crosscheck.crosscheck_production`: activity, AOI and
windows tables -> checked frames with fixed columns and a deterministic order, or
:class:`~pipeline.errors.InputDataError` naming what is wrong."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..config import CrosscheckParams
from ..errors import InputDataError
from .capacity import Range, _as_range
from .columns import ACTIVITY_COLUMNS


def _as_activity(activity: pd.DataFrame) -> pd.DataFrame:
    need = ("aoi_id", "period_start", "period_end", "new_ha")
    missing = [c for c in need if c not in activity.columns]
    if missing:
        raise InputDataError(
            f"activity lacks column(s) {', '.join(missing)}; expected the activity.csv contract "
            f"({', '.join(ACTIVITY_COLUMNS)})"
        )
    act = pd.DataFrame(
        {
            "aoi_id": activity["aoi_id"].astype(str).to_numpy(),
            "period_start": _days(activity["period_start"], "period_start"),
            "period_end": _days(activity["period_end"], "period_end"),
            "new_ha": pd.to_numeric(activity["new_ha"], errors="coerce").to_numpy(dtype=float, na_value=np.nan),
            "valid_fraction": (
                pd.to_numeric(activity["valid_fraction"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                if "valid_fraction" in activity.columns
                else np.ones(len(activity))
            ),
        }
    )
    _check_activity(act)
    act = act.sort_values(
        ["aoi_id", "period_start", "period_end", "new_ha", "valid_fraction"],
        kind="mergesort",
        na_position="last",
    ).reset_index(drop=True)
    dup = act.duplicated(["aoi_id", "period_start", "period_end"])
    if dup.any():
        r = act[dup].iloc[0]
        raise InputDataError(
            f"activity has two rows for AOI {r.aoi_id} period {r.period_start.date()}/"
            f"{r.period_end.date()}; keep one row per AOI and period"
        )
    return act


def _check_activity(act: pd.DataFrame) -> None:
    """Raise on the first row with a negative or missing area, or ending before it starts."""
    bad = act[~np.isfinite(act["new_ha"]) | (act["new_ha"] < 0)]
    if len(bad):
        r = bad.iloc[0]
        raise InputDataError(
            f"activity new_ha for AOI {r.aoi_id} from {r.period_start.date()} "
            "is negative or not a number; it must be hectares >= 0"
        )
    if (act["period_end"] < act["period_start"]).any():
        r = act[act["period_end"] < act["period_start"]].iloc[0]
        raise InputDataError(
            f"activity period for AOI {r.aoi_id} ends before it starts "
            f"({r.period_start.date()} > {r.period_end.date()})"
        )


def _days(values: pd.Series, name: str) -> pd.Series:
    try:
        ts = pd.to_datetime(values, utc=True)
    except (ValueError, TypeError) as exc:
        raise InputDataError(f"activity {name} is not a date: {exc}") from None
    if ts.isna().any():
        raise InputDataError(f"activity {name} has empty dates; every period needs start and end")
    return pd.Series(ts.dt.tz_convert(None).dt.normalize().to_numpy(dtype="datetime64[ns]"))


def _as_aois(aois: pd.DataFrame, *, params: CrosscheckParams) -> pd.DataFrame:
    need = ("aoi_id", "participant_iso3")
    missing = [c for c in need if c not in aois.columns]
    if missing:
        raise InputDataError(f"AOI table lacks column(s) {', '.join(missing)}; pass read_aois() output")
    rows = []
    for r in aois.to_dict("records"):
        aoi_id = str(r["aoi_id"])
        iso3 = str(r["participant_iso3"]).strip().upper()
        zone = r.get("zone")
        zone = "" if zone is None or (isinstance(zone, float) and math.isnan(zone)) else str(zone).strip()
        ranges = _aoi_ranges(r, aoi_id, params=params)
        rows.append({"aoi_id": aoi_id, "participant_iso3": iso3, "zone": zone, **ranges})
    frame = pd.DataFrame(
        rows,
        columns=["aoi_id", "participant_iso3", "zone", "gravel_thickness_m", "grade_ct_per_m3"],
    )
    dup = frame["aoi_id"].duplicated()
    if dup.any():
        raise InputDataError(f"AOI table lists aoi_id {frame['aoi_id'][dup].iloc[0]!r} twice; ids must be unique")
    return frame.set_index("aoi_id").sort_index(kind="mergesort")


def _aoi_ranges(r: dict[Any, Any], aoi_id: str, *, params: CrosscheckParams) -> dict[str, Range]:
    """The AOI's gravel thickness and grade ranges (missing: the ``params`` defaults)."""
    ranges: dict[str, Range] = {}
    for key, default in (
        ("gravel_thickness_m", params.gravel_thickness_m),
        ("grade_ct_per_m3", params.grade_ct_per_m3),
    ):
        value = r.get(key)
        if value is None or (np.ndim(value) == 0 and not isinstance(value, str) and pd.isna(value)):
            ranges[key] = _as_range(default, key)
        else:
            try:
                ranges[key] = _as_range(value, key)
            except InputDataError as exc:
                raise InputDataError(f"AOI {aoi_id}: {exc}") from None
    return ranges


def _check_known_aois(act: pd.DataFrame, aoi: pd.DataFrame) -> None:
    """Every AOI named in the activity must be in the AOI table."""
    unknown = sorted(set(act["aoi_id"]) - set(aoi.index))
    if unknown:
        raise InputDataError(f"activity names AOIs not in the AOI table: {', '.join(unknown)}; pass their AOI files")


def _as_windows(windows: pd.DataFrame) -> pd.DataFrame:
    need = ("window_id", "participant_iso3", "kind", "start", "end")
    missing = [c for c in need if c not in windows.columns]
    if missing:
        raise InputDataError(f"windows lack column(s) {', '.join(missing)}; pass read_windows() output")
    w = pd.DataFrame(
        {
            "window_id": windows["window_id"].astype(str).to_numpy(),
            "participant_iso3": windows["participant_iso3"].astype(str).str.upper().to_numpy(),
            "zone": windows["zone"].fillna("").astype(str).str.strip().to_numpy()
            if "zone" in windows.columns
            else np.full(len(windows), ""),
            "kind": windows["kind"].astype(str).str.lower().to_numpy(),
            "start": pd.to_datetime(windows["start"]).dt.normalize().to_numpy(dtype="datetime64[ns]"),
            "end": pd.to_datetime(windows["end"]).dt.normalize().to_numpy(dtype="datetime64[ns]"),
            "description": windows["description"].fillna("").astype(str).to_numpy()
            if "description" in windows.columns
            else np.full(len(windows), ""),
        }
    )
    if w["start"].isna().any():
        raise InputDataError("a window has no start date; every window needs a first day")
    return w.sort_values("window_id", kind="mergesort").reset_index(drop=True)
