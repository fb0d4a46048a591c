"""EDGE + PURE: analyst label polygons -> training labels of candidate sites.

:func:`read_labels` reads a GeoJSON FeatureCollection (RFC 7946: WGS84 longitude/latitude)
of polygons labelled ``mining`` or ``not_mining`` by an analyst; :func:`assign_labels` gives
each candidate polygon the label of the label polygon it overlaps most. The label polygon a
candidate took is its *group*: candidates of one label polygon are never split between the
training and test folds of the cross-validation (they share ground and time).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.geometry
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from pipeline.errors import ConfigError, CRSMismatchError
from pipeline.limits import special_file

__all__ = ["LABEL_VALUES", "LabelAssignment", "assign_labels", "read_labels"]

#: Allowed values of the ``label`` property, and the training target each maps to.
LABEL_VALUES: dict[str, int] = {"mining": 1, "not_mining": 0}
#: ``crs`` members that still mean WGS84 longitude/latitude (GeoJSON 2008 style).
_WGS84_NAMES = (
    "urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "EPSG:4326", "urn:ogc:def:crs:EPSG::4326",
)
_COLUMNS = ["label_id", "label", "class", "y", "geometry"]


def read_labels(path: str | Path) -> gpd.GeoDataFrame:
    """Read analyst label polygons from a GeoJSON file.

    Parameters
    ----------
    path
        GeoJSON FeatureCollection in WGS84 longitude/latitude (RFC 7946; a ``crs`` member is
        accepted only when it names WGS84). Each feature is a Polygon or MultiPolygon with
        property ``label`` (``"mining"`` or ``"not_mining"``), optional ``class`` (free text:
        ``"river"``, ``"farm"``, ``"burn"``) and optional ``id`` (a feature ``id`` or an ``id``
        property).

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, one row per feature in file order: ``label_id`` (str: the ``id``, else the
        feature index), ``label``, ``class`` (str; missing values are NA), ``y`` (1 mining, 0 not_mining) and
        ``geometry`` (made valid with :func:`shapely.make_valid`, polygonal parts only).

    Raises
    ------
    ConfigError
        One line naming the file, the feature index and the field at fault, and the fix.
    """
    path = Path(path)
    doc = _read_json(path)
    features = _features(doc, path)
    rows = [_parse_feature(feat, k, path) for k, feat in enumerate(features)]
    seen: dict[str, int] = {}
    for k, row in enumerate(rows):
        first = seen.setdefault(row["label_id"], k)
        if first != k:
            raise ConfigError(
                f"labels {path}: feature {k}: 'id' {row['label_id']!r} is also feature {first}'s; make ids unique"
            )
    return gpd.GeoDataFrame(rows, columns=_COLUMNS, geometry="geometry", crs="EPSG:4326")


@dataclass(frozen=True)
class LabelAssignment:
    """The labels candidates took (:func:`assign_labels`)."""

    y: pd.Series
    """Per candidate (index = the candidates' index): 1 mining, 0 not_mining, ``<NA>`` unlabelled (Int8)."""
    group: pd.Series
    """Per candidate: the ``label_id`` of the label polygon it took (``None`` when unlabelled)."""
    overlap_m2: pd.Series
    """Per candidate: area (m²) shared with that label polygon (0 when unlabelled)."""
    missed: gpd.GeoDataFrame
    """Label polygons (in the candidates' CRS) that no candidate overlaps: missed ``mining``
    polygons are false negatives of the candidate generator, untouched ``not_mining``
    polygons are correctly rejected negatives."""

    @property
    def labelled(self) -> np.ndarray:
        """bool per candidate: took a label (used for training)."""
        return np.asarray(self.y.notna(), dtype=bool)

    @property
    def unlabelled(self) -> pd.Index:
        """Index of the candidates that overlap no label polygon (excluded from training)."""
        return self.y.index[~self.labelled]

    def summary(self) -> dict[str, int]:
        """Counts for the model card and the training report."""
        lab = self.labelled
        y = self.y[lab].astype(int)
        groups = self.group[lab]
        missed = self.missed["label"].value_counts()
        return {
            "n_candidates": len(self.y),
            "n_labelled": int(lab.sum()),
            "n_unlabelled": int((~lab).sum()),
            "n_mining": int((y == 1).sum()),
            "n_not_mining": int((y == 0).sum()),
            "n_groups": int(groups.nunique()),
            "n_groups_mining": int(groups[y == 1].nunique()),
            "n_groups_not_mining": int(groups[y == 0].nunique()),
            "n_missed_mining": int(missed.get("mining", 0)),
            "n_rejected_not_mining": int(missed.get("not_mining", 0)),
        }


def assign_labels(candidates: gpd.GeoDataFrame, labels: gpd.GeoDataFrame) -> LabelAssignment:
    """Give each candidate the label of the label polygon it overlaps most (by area).

    Parameters
    ----------
    candidates
        Candidate polygons in a projected CRS (UTM, metres).
    labels
        Output of :func:`read_labels` (any CRS; reprojected to the candidates' CRS).

    Returns
    -------
    LabelAssignment
        Candidates overlapping no label polygon (by a positive area) are unlabelled; ties
        go to the label polygon listed first.

    Examples
    --------
    >>> lab = gpd.GeoDataFrame({"label_id": ["a", "b"], "label": ["mining", "not_mining"],
    ...     "class": [None, "farm"], "y": [1, 0]},
    ...     geometry=[shapely.box(0, 0, 10, 10), shapely.box(100, 0, 110, 10)], crs="EPSG:32629")
    >>> cand = gpd.GeoDataFrame(geometry=[shapely.box(5, 0, 15, 10), shapely.box(50, 0, 60, 10)], crs="EPSG:32629")
    >>> out = assign_labels(cand, lab)
    >>> out.y.tolist(), out.group.tolist(), out.missed["label_id"].tolist()
    ([1, <NA>], ['a', None], ['b'])
    """
    if candidates.crs is None or not CRS.from_user_input(candidates.crs).is_projected:
        raise CRSMismatchError(f"candidates CRS {candidates.crs} is not projected; reproject them to UTM (to_crs)")
    if labels.crs is None:
        raise CRSMismatchError("label polygons have no CRS; read them with read_labels() (EPSG:4326)")
    lab = labels.to_crs(candidates.crs).reset_index(drop=True)
    cand_geoms = np.asarray(candidates.geometry.to_numpy(), dtype=object)
    lab_geoms = np.asarray(lab.geometry.to_numpy(), dtype=object)
    ci, li = shapely.STRtree(lab_geoms).query(cand_geoms, predicate="intersects")
    area = shapely.area(shapely.intersection(cand_geoms[ci], lab_geoms[li])) if ci.size else np.zeros(0)
    pos = area > 0
    ci, li, area = ci[pos], li[pos], area[pos]
    # Largest overlap first, then the label listed first: a stable, documented tie-break.
    order = np.lexsort((li, -area, ci))
    ci, li, area = ci[order], li[order], area[order]
    first = np.r_[True, ci[1:] != ci[:-1]] if ci.size else np.zeros(0, dtype=bool)
    best_c, best_l, best_a = ci[first], li[first], area[first]
    n = len(candidates)
    y = pd.Series(pd.array([pd.NA] * n, dtype="Int8"), index=candidates.index)
    group = pd.Series([None] * n, index=candidates.index, dtype=object)
    overlap = pd.Series(np.zeros(n), index=candidates.index)
    y.iloc[best_c] = lab["y"].to_numpy()[best_l]
    group.iloc[best_c] = lab["label_id"].to_numpy()[best_l]
    overlap.iloc[best_c] = best_a
    touched = np.zeros(len(lab), dtype=bool)
    touched[li] = True
    return LabelAssignment(y=y, group=group, overlap_m2=overlap, missed=lab[~touched].reset_index(drop=True))


def _read_json(path: Path) -> Any:
    if special_file(path):
        raise ConfigError(f"labels {path} is not a regular file (a pipe or a device); check the --labels path")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read labels {path}: {exc.strerror or exc}; check the --labels path") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"labels {path}: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); fix the JSON syntax"
        ) from None


def _features(doc: Any, path: Path) -> list[Any]:
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise ConfigError(f"labels {path}: top level must be a GeoJSON FeatureCollection; wrap the features in one")
    crs = doc.get("crs")
    if crs is not None:
        name = crs.get("properties", {}).get("name") if isinstance(crs, dict) else None
        if name not in _WGS84_NAMES:
            raise ConfigError(
                f"labels {path}: 'crs' member names {name or crs!r}; GeoJSON is WGS84 longitude/latitude "
                "(RFC 7946): reproject the file to EPSG:4326 and drop the 'crs' member"
            )
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise ConfigError(f"labels {path}: no features; add Polygon features with a 'label' property")
    return features


def _parse_feature(feat: Any, k: int, path: Path) -> dict[str, Any]:
    where = f"labels {path}: feature {k}"
    if not isinstance(feat, dict) or feat.get("type") != "Feature":
        raise ConfigError(f"{where}: not a GeoJSON Feature; give it \"type\": \"Feature\"")
    props = feat.get("properties") or {}
    if not isinstance(props, dict):
        raise ConfigError(f"{where}: 'properties' must be an object; set it to {{\"label\": \"mining\"}}")
    label = props.get("label")
    if label is None:
        raise ConfigError(f"{where}: property 'label' missing; set it to 'mining' or 'not_mining'")
    if label not in LABEL_VALUES:
        raise ConfigError(f"{where}: property 'label' is {label!r}; use 'mining' or 'not_mining'")
    klass = props.get("class")
    if klass is not None and not isinstance(klass, str):
        raise ConfigError(f"{where}: property 'class' is {klass!r}; use free text such as 'river' or drop it")
    fid = props.get("id", feat.get("id"))
    if fid is not None and not isinstance(fid, str | int):
        raise ConfigError(f"{where}: 'id' is {fid!r}; use a string or an integer")
    return {
        "label_id": str(fid) if fid is not None else str(k),
        "label": label,
        "class": klass,
        "y": LABEL_VALUES[label],
        "geometry": _geometry(feat.get("geometry"), where),
    }


def _geometry(geom: Any, where: str) -> BaseGeometry:
    if not isinstance(geom, dict) or geom.get("type") not in ("Polygon", "MultiPolygon"):
        kind = geom.get("type") if isinstance(geom, dict) else geom
        raise ConfigError(f"{where}: 'geometry' is {kind!r}; draw a Polygon or MultiPolygon around the site")
    try:
        shape = shapely.geometry.shape(geom)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{where}: 'geometry' coordinates are malformed ({reason}); redraw the polygon") from None
    if shape.is_empty:
        raise ConfigError(f"{where}: 'geometry' is empty; draw the polygon or drop the feature")
    minx, miny, maxx, maxy = shape.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise ConfigError(
            f"{where}: 'geometry' coordinates are outside longitude/latitude range; "
            "the file looks projected: reproject it to EPSG:4326"
        )
    if not shape.is_valid:
        reason = shapely.is_valid_reason(shape)
        fixed = _polygonal(shapely.make_valid(shape))
        if fixed is None:
            raise ConfigError(f"{where}: 'geometry' is invalid ({reason}) and cannot be repaired; redraw the polygon")
        shape = fixed
    return shape


def _polygonal(geom: BaseGeometry) -> BaseGeometry | None:
    """The polygonal parts of a repaired geometry (None when there is no area left)."""
    if isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
        return geom if geom.area > 0 else None
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, shapely.Polygon | shapely.MultiPolygon)]
    merged = shapely.union_all(parts) if parts else None
    return merged if merged is not None and not merged.is_empty and merged.area > 0 else None
