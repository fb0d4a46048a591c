"""Which rows the bulletin shows, and the sums and counts it quotes.

The bulletin computes no statistics beyond these sums and counts: everything else
comes computed in the :class:`~pipeline.bulletin.context.BulletinContext`.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from .context import AOIReport, BulletinContext

__all__ = ["MAX_CHIPS", "covered_participants", "split_anomalies"]

#: Default of ``bulletin.max_chips``: most new/expanding sites with before/after chips, per AOI.
MAX_CHIPS = 12


def covered_participants(context: BulletinContext) -> set[str]:
    """ISO3 codes of the participants whose areas of interest this bulletin covers."""
    return {a.participant_iso3 for a in context.aois if a.participant_iso3}


def split_anomalies(context: BulletinContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(shown, elsewhere)``: statistical anomalies of covered participants, and the rest.

    The review runs over every participant in the declared tables; the bulletin shows
    the anomalies of the participants it covers and counts the others, which stay in
    ``flags.csv`` (the run writes every anomaly there).
    """
    anomalies = context.anomalies if context.anomalies is not None else pd.DataFrame()
    if anomalies.empty or "participant_iso3" not in anomalies:
        return anomalies, anomalies.iloc[0:0]
    mask = anomalies["participant_iso3"].astype(str).isin(covered_participants(context))
    return anomalies[mask], anomalies[~mask]


def _chip_sites(sites_utm: gpd.GeoDataFrame, limit: int = MAX_CHIPS) -> tuple[gpd.GeoDataFrame, int]:
    """``(shown, total)``: the new or expanding sites with chips, largest ``area x confidence``
    first, at most ``limit`` of them; and how many new or expanding sites there are."""
    if sites_utm is None or sites_utm.empty:
        return gpd.GeoDataFrame(), 0
    cand = sites_utm[sites_utm["status"].isin(["new", "expanding"])]
    cand = cand[cand.geometry.notna() & ~cand.geometry.is_empty]
    if cand.empty:
        return cand, 0
    area = pd.to_numeric(cand["area_ha"], errors="coerce").fillna(0.0)
    conf = pd.to_numeric(cand.get("confidence", 1.0), errors="coerce").fillna(0.0)
    ranked = cand.assign(_score=area * conf).sort_values(["_score", "site_id"], ascending=[False, True])
    return ranked.head(limit), len(ranked)


def _sites_with(report: AOIReport, status: str) -> pd.DataFrame:
    """The AOI's sites of one ``status`` (an empty frame with ``area_ha`` when none)."""
    if report.sites is None or report.sites.empty:
        return pd.DataFrame({"area_ha": []})
    return report.sites[report.sites["status"] == status]


def _status_counts(sites: pd.DataFrame) -> dict[str, int]:
    if sites is None or sites.empty or "status" not in sites:
        return {}
    return {str(k): int(v) for k, v in sites["status"].value_counts().items()}


def _latest_or_sum(activity: pd.DataFrame, column: str, *, latest: bool) -> float:
    if activity is None or activity.empty or column not in activity:
        return 0.0
    values = pd.to_numeric(activity.sort_values("period_start")[column], errors="coerce")
    return float(values.iloc[-1]) if latest else float(values.sum())
