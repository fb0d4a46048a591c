"""Site tracking: this run's sites against the sites earlier bulletins listed.

Ids by likeness (intersection over union, each earlier id once, none used twice) and dates by
what earlier bulletins saw of each site's ground (:func:`track_sites`). The records come from
:func:`pipeline.site_history.earlier_sites`; :mod:`pipeline.sites` re-exports :func:`track_sites`.
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["track_sites"]


def track_sites(
    sites: gpd.GeoDataFrame, previous: gpd.GeoDataFrame | None, *, min_overlap_frac: float = 0.1,
    contained_frac: float = 0.5, shared_frac: float = 0.25, last_period_start: dt.date | None = None,
) -> gpd.GeoDataFrame:
    """Give sites the id of the earlier site they are most alike, and the dates earlier
    bulletins saw their ground changed.

    Parameters
    ----------
    sites
        This run's sites (any CRS).
    previous
        The earlier sites of the same AOI (any CRS), or None: a previous run's sites, or the
        records of every earlier bulletin, an id in several rows
        (:func:`pipeline.site_history.earlier_sites`); ``first_seen``, ``last_seen`` and
        ``undated`` are read when present.
    min_overlap_frac
        Overlap, as a share of the smaller polygon, needed to call a site and an earlier record
        the same. Ids go to the most alike pairs first (intersection over union, against every
        record of an id, so a pit that grew and split again keeps its id on its own ground),
        each earlier id used once. A site that matches none keeps its position-derived id
        unless another site took it, holds it too, or an earlier record holds it; then it gets
        a suffix (``-2``, ``-3``...): no id is ever used twice (outside testers gave two sites
        one id through a split, and through two pits whose earliest pixels share a 20 m cell).
    contained_frac
        A site takes an earlier record's ``first_seen`` (and ``undated``) when earlier than its
        own if the site alone holds a share of that record (below) and either holds ``contained_frac`` of
        it (the pit is part of this site: a merge takes the earliest of the pits it covers) or
        lies ``contained_frac`` inside it (the same site, shrunk). A site lying
        ``contained_frac`` inside a record it does not alone hold (a merged site split again,
        which part its date belongs to being unknown) takes that record's ``last_seen`` as an
        upper bound, ``undated``: its ground was changed by then.
    shared_frac
        The share of an earlier record a site must hold to hold it; when two sites hold it, or
        none does, the record's ``first_seen`` goes to none of them (an outside tester's unequal touching
        pits, merged and split again, gave a pit its neighbour's date). The pits a merged
        record covered, when an earlier bulletin listed them apart, give each part its own date.
    last_period_start
        Start of this run's last reporting period. A ``new`` site so dated before this period
        is ``active``: it is in this period's evidence, and an earlier bulletin saw its ground
        changed before (a run over a later period, whose baseline already held a pit an earlier
        bulletin reported, called it "new" again: an outside reviewer). Taking an earlier id
        alone changes neither date nor status.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with ``site_id``, ``first_seen``, ``undated`` and ``status`` carried over.
    """
    out = sites.copy()
    if out.empty:
        return out
    ids = [str(s) for s in out["site_id"]]
    if previous is None or previous.empty:
        out["site_id"] = _unique_ids(ids, set(), held=set())
        return out
    records = previous.to_crs(out.crs).reset_index(drop=True)
    rec_ids = records["site_id"].astype(str).to_numpy()
    first_of = _dates(records, "first_seen")
    last_of = _dates(records, "last_seen")
    undated_of = records.get("undated", pd.Series(False, records.index)).fillna(False).astype(bool).to_numpy()
    here = np.asarray(out.geometry.values)
    there = np.asarray(records.geometry.values)
    i_all, j_all = records.sindex.query(here, predicate="intersects")
    inter = shapely.area(shapely.intersection(here[i_all], there[j_all]))
    area_here, area_there = shapely.area(here[i_all]), shapely.area(there[j_all])
    tol = 1 - 1e-6  # shares measured after a round trip through EPSG:4326: 0.5 comes back as 0.4999999

    # Ids: the most alike pairs first, each site and each earlier id once.
    same = (inter > 0) & (inter >= tol * min_overlap_frac * np.minimum(area_here, area_there))
    iou = inter / np.maximum(area_here + area_there - inter, 1e-12)
    matched: set[int] = set()
    taken: set[str] = set()
    for k in sorted(np.flatnonzero(same), key=lambda k: (iou[k], inter[k]), reverse=True):
        i, sid = int(i_all[k]), str(rec_ids[j_all[k]])
        if i not in matched and sid not in taken:
            ids[i] = sid
            matched.add(i)
            taken.add(sid)
    out["site_id"] = _unique_ids(ids, matched, held=taken | set(rec_ids))

    # Dates: what earlier bulletins saw of each site's ground.
    first = list(out["first_seen"]) if "first_seen" in out else None
    status = list(out["status"]) if "status" in out else None
    undated = list(out["undated"]) if "undated" in out else None
    if first is not None:
        holds = (inter > 0) & (inter >= tol * shared_frac * area_there)
        n_holders = pd.Series(i_all[holds]).groupby(j_all[holds]).nunique()
        # the one site holding a share of the record (five pits merged and split again each hold
        # a fifth: none holds the merged record, whose date is the earliest pit's)
        alone = holds & np.array([n_holders.get(j, 0) == 1 for j in j_all], dtype=bool)
        part = (inter > 0) & (inter >= tol * contained_frac * area_there)  # the record is part of the site
        within = (inter > 0) & (inter >= tol * contained_frac * area_here)  # the site lies in the record
        candidates = [(first_of[j], undated_of[j], i) for i, j, ok in
                      zip(i_all, j_all, alone & (part | within), strict=True) if ok and first_of[j]]
        candidates += [(last_of[j], True, i) for i, j, ok in zip(i_all, j_all, ~alone & within, strict=True)
                       if ok and last_of[j]]
        for date, was_undated, i in sorted(candidates):  # each site's earliest candidate first
            own = first[i] if isinstance(first[i], str) else ""
            if not own or date < own:
                first[i] = date
                if undated is not None:  # the date is an earlier run's: so is whether it could be dated
                    undated[i] = bool(was_undated)
            elif date == own and undated is not None and not was_undated:
                undated[i] = False  # an earlier run saw the same date with a clear view before it
        out["first_seen"] = first
        if undated is not None:
            out["undated"] = undated
    if status is not None and first is not None and last_period_start is not None:
        start = last_period_start.isoformat()
        out["status"] = ["active" if s == "new" and isinstance(f, str) and f and f < start else s
                         for s, f in zip(status, first, strict=True)]
    return out


def _dates(records: pd.DataFrame, column: str) -> np.ndarray:
    """ISO dates of ``column`` as text, ``""`` where missing."""
    if column not in records:
        return np.full(len(records), "", dtype=object)
    return records[column].map(lambda v: v if isinstance(v, str) else "").to_numpy(dtype=object)


def _unique_ids(ids: list[str], matched: set[int], *, held: set[str]) -> list[str]:
    """``ids`` with a suffix (``-2``, ``-3``...) on each unmatched one that ``held`` or an
    earlier site of the list already holds.

    >>> _unique_ids(["a", "a", "b"], set(), held=set()), _unique_ids(["a", "x"], {1}, held={"a", "x"})
    (['a', 'a-2', 'b'], ['a-2', 'x'])
    """
    out = list(ids)
    used = set(held) | {ids[i] for i in matched}
    for i in range(len(out)):
        if i in matched:
            continue
        if out[i] in used:
            base, n = out[i], 2
            while f"{base}-{n}" in used:
                n += 1
            out[i] = f"{base}-{n}"
        used.add(out[i])
    return out
