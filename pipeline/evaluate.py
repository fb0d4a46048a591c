"""Compare detected sites with ground truth: site- and area-level accuracy.

A detected site *matches* a true pit when their polygons overlap. Precision is
the share of detected sites that match a pit, recall the share of pits matched
by at least one detection, F1 their harmonic mean. Distractors (truth features
with ``kind == "distractor"``: burn scars, cleared fields) measure specificity:
the share of distractors no detection touches.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import box

from .errors import InputDataError

__all__ = ["check_truth_placement", "evaluate_sites", "format_metrics", "read_truth"]


def read_truth(path: str | Path) -> gpd.GeoDataFrame:
    """Read a truth GeoJSON (``kind`` = ``pit`` | ``distractor``; ``opened`` ISO date)."""
    path = Path(path)
    try:
        truth = gpd.read_file(path)
    except Exception as exc:
        raise InputDataError(f"cannot read truth file {path}: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(truth, gpd.GeoDataFrame):  # a table with no geometry (a CSV)
        raise InputDataError(f"truth file {path} has no geometries; pass a GeoJSON of polygons with a kind property "
                             "(pit or distractor)")
    # No kind, on the file or on a feature: a pit (a truth file of pits need not say so).
    truth["kind"] = truth["kind"].fillna("pit") if "kind" in truth else "pit"
    _check_features(truth, path, what="truth")
    unknown = sorted(set(truth["kind"].astype(str)) - {"pit", "distractor"})
    if unknown:
        raise InputDataError(f"truth file {path}: kind {unknown[0]!r} is neither 'pit' nor 'distractor'; fix the "
                             "kind property (no kind at all: every feature is a pit)")
    return truth


def _check_features(frame: gpd.GeoDataFrame, path: Path, *, what: str) -> None:
    """Refuse what would give meaningless figures or fail inside the overlay: a feature without
    a polygon, an invalid polygon (shapely's reason), or coordinates that are not longitude and
    latitude in a file read as EPSG:4326 (a projected file without its ``crs`` member)."""
    from shapely.validation import explain_validity

    for i, geom in enumerate(frame.geometry):
        if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            kind = "no geometry" if geom is None or geom.is_empty else f"a {geom.geom_type}"
            raise InputDataError(f"{what} file {path} feature {i}: {kind}; each feature needs a Polygon or "
                                 "MultiPolygon")
        if not geom.is_valid:
            raise InputDataError(f"{what} file {path} feature {i}: invalid polygon ({explain_validity(geom)}); "
                                 "repair it (shapely.make_valid, or QGIS 'Fix geometries')")
    if frame.crs is not None and frame.crs.is_geographic and len(frame):
        minx, miny, maxx, maxy = frame.total_bounds
        if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
            hint = " (or give its crs member)" if what == "truth" else ""
            raise InputDataError(f"{what} file {path}: coordinates up to ({maxx:.0f}, {maxy:.0f}) are not longitude "
                                 f"and latitude; the file looks projected: reproject it to EPSG:4326{hint}")


def check_truth_placement(
    sites: gpd.GeoDataFrame,
    truth: gpd.GeoDataFrame,
    *,
    truth_path: Path,
    aoi: gpd.GeoDataFrame | None = None,
) -> None:
    """Refuse a truth file whose features lie where the figures cannot mean anything:

    - with ``aoi``: none of them in the AOIs (clipped away, recall would read 1.0 of no pit);
    - without: not one of them within the sites' bounding box while the sites have some, when
      the same file read with latitude and longitude swapped lands there (a common export slip;
      GeoJSON is longitude first). Truth elsewhere for any other reason is a result, not an error.

    The message names the file and, when swapping the coordinates would put the truth there,
    says so.

    Raises
    ------
    InputDataError
        As above.
    """
    if truth.empty:
        return
    truth_ll = truth.to_crs(4326) if truth.crs is not None else truth.set_crs(4326)
    swapped = _swapped(truth_ll)
    if aoi is not None and not aoi.empty:
        area = aoi.to_crs(4326).union_all()
        if truth_ll.intersects(area).any():
            return
        where, target = "in the AOIs given (--aoi)", area
    else:
        if sites.empty:
            return
        target = box(*sites.to_crs(4326).total_bounds).buffer(0.01)  # about 1 km around the sites
        if truth_ll.intersects(target).any():
            return
        if not swapped.intersects(target).any():
            return
        where = "near any detected site"
    hint = ("; read with latitude and longitude swapped it would be: GeoJSON gives longitude first, so swap "
            "the coordinates of every feature" if swapped.intersects(target).any() else
            "; check that it belongs to these AOIs and that its coordinates are longitude, latitude")
    minx, miny, maxx, maxy = truth_ll.total_bounds
    raise InputDataError(f"truth file {truth_path}: no feature lies {where} (the features span longitude "
                         f"{minx:.3f}..{maxx:.3f}, latitude {miny:.3f}..{maxy:.3f}){hint}")


def _swapped(frame: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """``frame``'s geometries with x and y exchanged."""
    return gpd.GeoSeries(shapely.transform(frame.geometry.values, lambda xy: xy[:, ::-1]), crs=frame.crs)


def evaluate_sites(
    sites: gpd.GeoDataFrame,
    truth: gpd.GeoDataFrame,
    *,
    min_pit_ha: float = 0.0,
    aoi: gpd.GeoDataFrame | gpd.GeoSeries | None = None,
) -> dict[str, Any]:
    """Site-level precision, recall, F1, distractor specificity and area error.

    Parameters
    ----------
    sites
        Detected sites (``sites.geojson``), any CRS, with ``first_seen``.
    truth
        True pits and distractors, any CRS; pits may carry ``opened`` (ISO date) and
        ``area_ha``.
    min_pit_ha
        Pits smaller than this (by ``area_ha``, else polygon area) are "don't care": they
        count neither for recall nor against precision (a detection on them is ignored).
    aoi
        The monitored area(s), any CRS. The pipeline reports only inside its AOIs, so the
        truth is clipped to them first: a pit straddling the boundary counts with its part
        inside (area, IoU); features wholly outside are left out. Pit size for
        ``min_pit_ha`` stays the whole pit's. ``None``: the truth as given.

    Returns
    -------
    dict
        ``n_detected, n_truth, tp_sites, fp_sites, matched_truth, precision, recall,
        f1, distractors, distractor_hits, specificity, detected_ha, truth_ha,
        area_error_frac, iou, first_seen_error_days_median``.
    """
    det, pits, distractors = _frames_in_utm(sites, truth, aoi=aoi)
    if min_pit_ha > 0 and not pits.empty:
        det, pits = _drop_small_pits(det, pits, min_pit_ha=min_pit_ha)
    det_match = [bool(pits.intersects(g).any()) for g in det.geometry]
    pit_match = [bool(det.intersects(g).any()) for g in pits.geometry]
    tp = int(sum(det_match))
    n_det, n_truth = len(det), len(pits)
    precision = tp / n_det if n_det else (1.0 if n_truth == 0 else 0.0)
    recall = sum(pit_match) / n_truth if n_truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    hits = int(sum(bool(det.intersects(g).any()) for g in distractors.geometry))
    det_ha = float(det.area.sum() / 1e4)
    truth_ha = float(pits.area.sum() / 1e4)
    errors = _first_seen_errors(det, pits)
    return {
        "n_detected": n_det,
        "n_truth": n_truth,
        "tp_sites": tp,
        "fp_sites": n_det - tp,
        "matched_truth": int(sum(pit_match)),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "distractors": len(distractors),
        "distractor_hits": hits,
        "specificity": round(1 - hits / len(distractors), 4) if len(distractors) else 1.0,
        "detected_ha": round(det_ha, 3),
        "truth_ha": round(truth_ha, 3),
        "area_error_frac": round((det_ha - truth_ha) / truth_ha, 4) if truth_ha else float("nan"),
        "iou": round(_iou(det, pits), 4),
        "first_seen_error_days_median": float(np.median(errors)) if errors else float("nan"),
    }


def _frames_in_utm(
    sites: gpd.GeoDataFrame, truth: gpd.GeoDataFrame, *, aoi: gpd.GeoDataFrame | gpd.GeoSeries | None
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Detections, pits and distractors in the truth's UTM zone (truth clipped to ``aoi``)."""
    pits = truth[truth["kind"] == "pit"]
    distractors = truth[truth["kind"] == "distractor"]
    crs = (pits if not pits.empty else truth).estimate_utm_crs() if not truth.empty else "EPSG:3857"
    det = sites.to_crs(crs) if not sites.empty else gpd.GeoDataFrame(geometry=[], crs=crs)
    pits = pits.to_crs(crs)
    distractors = distractors.to_crs(crs)
    if aoi is not None:
        pits, distractors = (_clip(frame, aoi, crs) for frame in (pits, distractors))
    return det, pits, distractors


def _drop_small_pits(
    det: gpd.GeoDataFrame, pits: gpd.GeoDataFrame, *, min_pit_ha: float
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Pits under ``min_pit_ha`` are "don't care": they leave the truth, and detections on
    them only (touching no larger pit) leave the detections."""
    size = pits["area_ha"].astype(float) if "area_ha" in pits else pits.area / 1e4
    small = pits[size < min_pit_ha]
    pits = pits[size >= min_pit_ha]
    if not det.empty and not small.empty:
        on_small = [bool(small.intersects(g).any()) and not bool(pits.intersects(g).any()) for g in det.geometry]
        det = det[[not flag for flag in on_small]]
    return det, pits


def _iou(det: gpd.GeoDataFrame, pits: gpd.GeoDataFrame) -> float:
    """Intersection over union of the detected and the true excavated areas."""
    det_union = det.union_all() if len(det) else None
    pit_union = pits.union_all() if len(pits) else None
    if det_union is not None and pit_union is not None:
        return float(det_union.intersection(pit_union).area / det_union.union(pit_union).area)
    return 1.0 if det_union is None and pit_union is None else 0.0


def _first_seen_errors(det: gpd.GeoDataFrame, pits: gpd.GeoDataFrame) -> list[int]:
    """Days between each detected pit's opening date and the earliest ``first_seen`` on it."""
    errors: list[int] = []
    if "opened" in pits and "first_seen" in det and len(det):
        for g, opened in zip(pits.geometry, pits["opened"], strict=True):
            hit = det[det.intersects(g)]
            if not hit.empty and opened:
                seen = pd.to_datetime(hit["first_seen"]).min()
                errors.append(abs((seen - pd.Timestamp(opened)).days))
    return errors


def _clip(frame: gpd.GeoDataFrame, aoi: gpd.GeoDataFrame | gpd.GeoSeries, crs: Any) -> gpd.GeoDataFrame:
    """``frame`` cut to ``aoi`` (features wholly outside dropped); ``area_ha`` is kept."""
    if frame.empty:
        return frame
    area = aoi.to_crs(crs).union_all()
    clipped = frame.assign(geometry=frame.geometry.intersection(area))
    return clipped[~clipped.geometry.is_empty & (clipped.area > 0)]


def format_metrics(metrics: dict[str, Any]) -> str:
    """Metrics as aligned ``key  value`` lines for the terminal."""
    width = max(len(k) for k in metrics)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in metrics.items())


def read_sites(path: str | Path) -> gpd.GeoDataFrame:
    """Read a ``sites.geojson``; an empty FeatureCollection gives an empty frame."""
    path = Path(path)
    if path.is_dir():
        raise InputDataError(f"sites file {path} is a folder; pass the sites.geojson inside it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputDataError(f"cannot read sites file {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise InputDataError(f"sites file {path} is not a GeoJSON FeatureCollection; pass the sites.geojson a "
                             "monitor run wrote")
    if not data.get("features"):
        return gpd.GeoDataFrame({"first_seen": []}, geometry=[], crs="EPSG:4326")
    try:
        sites = gpd.GeoDataFrame.from_features(data["features"], crs="EPSG:4326")
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise InputDataError(f"sites file {path}: malformed feature ({' '.join(str(exc).split())[:200]}); pass the "
                             "sites.geojson a monitor run wrote") from None
    _check_features(sites, path, what="sites")
    return sites
