"""What the pipeline should find, and where it should look: truth polygons, opening days, AOI."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import shapely.geometry

from .cogs import _write_cog
from .geojson import _feature, _mask_geometry, _to_4326
from .scene import _PIXEL_HA, _Grid, _Patch, _Pit, _Scene
from .spec import ScenarioSpec

_EPOCH = date(1970, 1, 1)
_DISTRACTOR_NOTES = {
    "burn_scar": "dry-season fire: dark char, recovered about 75 days after the rains begin",
    "cleared_field": "cleared in the dry season; bare Feb-May, green crop Jun-Oct, stubble after",
    "bare_outcrop": "laterite outcrop (bowal): bare from the start, never changing",
    "settlement": "village: bright roofs and packed earth, stable",
    "river_sandbar": "seasonal river sandbars/banks: bare bright sand Nov-Apr, grassy in the "
                     "rains, flooded Aug-Oct; the same every year",
}


def _write_opened_tif(scene: _Scene, path: Path) -> None:
    opened = np.zeros(scene.grid.shape, np.int32)
    for pit in scene.pits:
        inside = np.isfinite(pit.rank)
        # A pixel is first exposed when the growing pit reaches its rank (see _pit_open_mask).
        delay = pit.grow_days * np.clip((pit.rank - 0.3) / 0.7, 0.0, 1.0)
        day = (pit.opened - _EPOCH).days + np.ceil(delay).astype(np.int32, copy=False)
        opened[pit.window] = np.where(inside, day, opened[pit.window])
    _write_cog(path, opened, scene.grid.transform, scene.grid.epsg,
               resampling="nearest", nodata=None)


def _truth_collection(scene: _Scene) -> dict[str, Any]:
    aoi_id = scene.spec.aoi_id
    features = [_pit_feature(pit, aoi_id, scene.grid) for pit in scene.pits]
    features += [_patch_feature(p, aoi_id, scene.grid) for p in _one_per_truth_id(scene.patches)]
    return {"type": "FeatureCollection", "name": f"{aoi_id}-truth", "features": features}


def _pit_feature(pit: _Pit, aoi_id: str, grid: _Grid) -> dict[str, Any]:
    """A pit at its final extent, with its opening date and fate."""
    mask = np.isfinite(pit.rank)
    props: dict[str, Any] = {
        "truth_id": pit.truth_id, "kind": "pit", "aoi_id": aoi_id,
        "opened": pit.opened.isoformat(), "area_ha": round(float(mask.sum()) * _PIXEL_HA, 2),
        "fate": pit.fate, "grow_days": pit.grow_days,
        "flooded": pit.flood_date.isoformat() if pit.flood_date else None,
        "abandoned": pit.abandon_date.isoformat() if pit.abandon_date else None,
    }
    return _feature(_mask_geometry(mask, pit.window, grid), props)


def _patch_feature(p: _Patch, aoi_id: str, grid: _Grid) -> dict[str, Any]:
    """A distractor or static feature (not mining), with its dates."""
    props = {"truth_id": p.truth_id, "kind": "distractor", "aoi_id": aoi_id,
             "distractor_type": p.kind, "area_ha": round(float(p.mask.sum()) * _PIXEL_HA, 2),
             "event_date": p.event.isoformat() if p.event else None,
             "end_date": p.end.isoformat() if p.end else None,
             "description": p.note or _DISTRACTOR_NOTES[p.kind]}
    if p.events:
        props["event_dates"] = [d.isoformat() for d in p.events]
    return _feature(_mask_geometry(p.mask, p.window, grid), props)


def _one_per_truth_id(patches: list[_Patch]) -> list[_Patch]:
    """Patches sharing a truth id (the yearly burns of one scar) merged into one, in order."""
    groups: dict[str, list[_Patch]] = {}
    for p in patches:
        groups.setdefault(p.truth_id, []).append(p)
    return [group[0] if len(group) == 1 else _merged(group) for group in groups.values()]


def _merged(group: list[_Patch]) -> _Patch:
    """The union of ``group``'s masks, first event to last end, every event listed."""
    y0, x0 = min(p.window[0].start for p in group), min(p.window[1].start for p in group)
    y1, x1 = max(p.window[0].stop for p in group), max(p.window[1].stop for p in group)
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for p in group:
        mask[p.window[0].start - y0:p.window[0].stop - y0,
             p.window[1].start - x0:p.window[1].stop - x0] |= p.mask
    events = sorted(p.event for p in group if p.event)
    ends = [p.end for p in group if p.end]
    return _Patch(group[0].truth_id, group[0].kind, (slice(y0, y1), slice(x0, x1)), mask,
                  events[0] if events else None, max(ends) if ends else None,
                  note=group[0].note, events=tuple(events))


def _aoi_collection(spec: ScenarioSpec, grid: _Grid) -> dict[str, Any]:
    left, bottom, right, top = grid.bounds
    inner = shapely.geometry.box(left + 100, bottom + 100, right - 100, top - 100)
    props = {
        "aoi_id": spec.aoi_id, "name": spec.name, "participant_iso3": spec.participant_iso3,
        "participant": spec.participant, "gravel_thickness_m": [0.5, 2.0],
        "grade_ct_per_m3": [0.05, 0.4],
        "params_source": "illustrative demo values; see USGS SIR 2013-5185 for Séguéla methods",
        "description": "synthetic demonstration scenario",
    }
    return {"type": "FeatureCollection", "name": spec.aoi_id,
            "features": [_feature(_to_4326(inner, grid.epsg), props)]}
