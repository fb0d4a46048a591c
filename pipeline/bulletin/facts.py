"""The numbers the bulletin's sentences state, computed once from its tables (:func:`summary_facts`).

Every count, area and date in the executive summary and the definitions box comes from here,
and ``bulletin.json`` carries the same dictionary (``facts``), so a test can check each
sentence against the tables it summarises.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .context import AOIReport, BulletinContext
from .statuses import STATUS_ORDER
from .wording import LATEST_SEEN_SAY_BELOW

__all__ = ["comparison_rows", "run_parameter", "summary_facts"]


def summary_facts(context: BulletinContext) -> dict[str, Any]:
    """Counts, areas and dates of the bulletin, as data.

    Returns
    -------
    dict
        ``covering_period`` and ``latest_period`` (ISO ``[start, end]``; the latest is the
        last reporting period of the areas processed, ``None`` without activity);
        ``n_sites`` and ``site_area_ha`` (every site of the AOIs processed); ``status``:
        per status ``{"n", "area_ha", "by_aoi": {name: n}}``; ``first_detected_in_period``
        and ``first_detected_before`` (``{"n", "area_ha"}``: ``first_seen`` on or after the
        covering period's start, or before it); ``newly_disturbed_ha`` (``new_ha`` summed
        over every period); ``provisional`` (``{"n", "area_ha"}``: sites whose record after
        the change is too short to show whether they persist, :func:`pipeline.sites.provisional`);
        ``new_undated`` (``{"n", "area_ha"}``: new sites already changed at their first clear
        view of the monitoring period, whose digging may predate it: ``undated`` in ``sites.geojson``);
        ``comparisons`` (:func:`comparison_rows`); ``n_failed``.
        Area sums are rounded to 0.01 ha, the precision of the tables they add up: otherwise
        the order of a float sum could move a printed 26.15 to 26.1 or 26.2.
    """
    ok = [a for a in context.aois if a.error is None]
    sites = _all_sites(ok)
    area = pd.to_numeric(sites["area_ha"], errors="coerce").fillna(0.0)
    first_seen = pd.to_datetime(sites["first_seen"], errors="coerce")
    in_period = first_seen >= pd.Timestamp(context.period_start)
    provisional = (sites["provisional"].fillna(False).astype(bool) if "provisional" in sites
                   else pd.Series(False, index=sites.index))
    undated = (sites["undated"].fillna(False).astype(bool) if "undated" in sites
               else pd.Series(False, index=sites.index))
    new_undated = undated & (sites["status"].astype(str) == "new")
    status = {}
    for s in STATUS_ORDER:
        mask = sites["status"].astype(str) == s
        by_aoi = {str(name): int(n) for name, n in sites.loc[mask, "_aoi_name"].value_counts(sort=False).items()}
        status[s] = {"n": int(mask.sum()), "area_ha": _ha_sum(area[mask]),
                     "by_aoi": {a.name: by_aoi[a.name] for a in ok if a.name in by_aoi}}
    return {
        "covering_period": [context.period_start.isoformat(), context.period_end.isoformat()],
        "latest_period": _latest_period(ok),
        "n_sites": len(sites),
        "site_area_ha": _ha_sum(area),
        "status": status,
        "first_detected_in_period": {"n": int(in_period.sum()), "area_ha": _ha_sum(area[in_period])},
        "first_detected_before": {"n": int((~in_period & first_seen.notna()).sum()),
                                  "area_ha": _ha_sum(area[~in_period & first_seen.notna()])},
        "provisional": {"n": int(provisional.sum()), "area_ha": _ha_sum(area[provisional])},
        "new_undated": {"n": int(new_undated.sum()), "area_ha": _ha_sum(area[new_undated])},
        "newly_disturbed_ha": round(sum(_new_ha(a) for a in ok), 2),
        "comparisons": comparison_rows(context),
        "n_failed": len(context.aois) - len(ok),
        "latest_unseen": latest_unseen(ok),
    }


def latest_unseen(aois: list[AOIReport]) -> list[dict[str, Any]]:
    """The AOIs seen clear over less than :data:`~pipeline.bulletin.wording.LATEST_SEEN_SAY_BELOW`
    of their area in their latest reporting period, without radar: ``aoi_id``, ``name``,
    ``period`` (ISO ``[start, end]``), ``seen_frac`` (``valid_fraction``) and ``n_dormant``."""
    rows = []
    for a in aois:
        activity = a.activity if a.activity is not None else pd.DataFrame()
        if activity.empty or "valid_fraction" not in activity or a.radar_status == "used":
            continue
        last = activity.sort_values("period_start").iloc[-1]
        seen = pd.to_numeric(pd.Series([last["valid_fraction"]]), errors="coerce").iloc[0]
        # as printed (a whole per cent): 49.96 % would read "only 50 %"
        if pd.isna(seen) or round(float(seen), 2) >= LATEST_SEEN_SAY_BELOW:
            continue
        n_dormant = 0 if a.sites is None or a.sites.empty else int((a.sites["status"].astype(str) == "dormant").sum())
        rows.append({"aoi_id": a.aoi_id, "name": a.name, "period": [str(last["period_start"]), str(last["period_end"])],
                     "seen_frac": round(float(seen), 4), "n_dormant": n_dormant})
    return rows


def comparison_rows(context: BulletinContext) -> list[dict[str, Any]]:
    """Each AOI-year of the cross-check as the bulletin states it: ``aoi`` (name), ``aoi_id``,
    ``participant_iso3``, ``year``, ``coverage_frac`` (share of the year monitored),
    ``declared`` (whether a declared figure exists) and ``comparable`` (a declared figure and
    enough coverage, :func:`run_parameter` ``crosscheck.min_comparison_coverage_frac``)."""
    frame = context.crosscheck
    if frame is None or frame.empty:
        return []
    names = {a.aoi_id: a.name for a in context.aois}
    min_cov = run_parameter(context.thresholds, "crosscheck", "min_comparison_coverage_frac")
    rows = []
    for r in frame.sort_values(["participant_iso3", "aoi_id", "year"]).itertuples():
        cov = float(getattr(r, "coverage_frac", math.nan))
        declared = _finite(getattr(r, "declared_carats", math.nan))
        enough = math.isnan(cov) or min_cov is None or cov >= float(min_cov)
        rows.append({
            "aoi": names.get(str(r.aoi_id), str(r.aoi_id)), "aoi_id": str(r.aoi_id),
            "participant_iso3": str(r.participant_iso3), "year": int(r.year),
            "coverage_frac": None if math.isnan(cov) else cov,
            "declared": declared, "comparable": declared and enough,
        })
    return rows


def run_parameter(thresholds: Sequence[Mapping[str, Any]], section: str, key: str) -> Any:
    """The value of ``section.key`` among the run's threshold rows (``None`` when absent)."""
    for t in thresholds or []:
        if t.get("section") == section and t.get("key") == key:
            return t.get("value")
    return None


def _all_sites(ok: list[AOIReport]) -> pd.DataFrame:
    parts = [
        pd.DataFrame(a.sites.drop(columns="geometry", errors="ignore")).assign(_aoi_name=a.name)
        for a in ok if a.sites is not None and not a.sites.empty
    ]
    if not parts:
        return pd.DataFrame({"status": [], "area_ha": [], "first_seen": [], "_aoi_name": []})
    return pd.concat(parts, ignore_index=True)


def _latest_period(ok: list[AOIReport]) -> list[str] | None:
    ends: list[tuple[dt.date, dt.date]] = []
    for a in ok:
        if a.activity is None or a.activity.empty:
            continue
        last = a.activity.assign(_s=pd.to_datetime(a.activity["period_start"])).sort_values("_s").iloc[-1]
        ends.append((pd.Timestamp(last["period_start"]).date(), pd.Timestamp(last["period_end"]).date()))
    if not ends:
        return None
    start, end = max(ends)
    return [start.isoformat(), end.isoformat()]


def _ha_sum(values: pd.Series) -> float:
    """A sum of hectares at the tables' precision (0.01 ha)."""
    return round(float(values.sum()), 2)


def _new_ha(a: AOIReport) -> float:
    if a.activity is None or a.activity.empty or "new_ha" not in a.activity:
        return 0.0
    return float(pd.to_numeric(a.activity["new_ha"], errors="coerce").fillna(0.0).sum())


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
