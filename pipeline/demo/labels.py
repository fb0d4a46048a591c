"""Training labels from a scenario's truth: pits are ``mining``, distractors ``not_mining``.

The synthetic scenario knows what every patch is, so it can stand in for an analyst's label
polygons (``python -m pipeline train --labels``) in tests and in ``benchmarks/validate.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["labels_from_truth"]


def labels_from_truth(truth_path: str | Path, out_path: str | Path, *, prefix: str = "") -> Path:
    """Write the label polygons of a scenario's ``truth.geojson`` to ``out_path``.

    Each pit becomes ``label: mining`` (``class: pit``), each distractor ``label: not_mining``
    with its ``distractor_type`` as ``class`` (``burn``, ``field``, ``river_sandbar`` ...);
    ``id`` is ``prefix`` + the truth id, so label polygons stay the groups of cross-validation
    (give scenes of different seeds different prefixes: their truth ids repeat).
    """
    truth = json.loads(Path(truth_path).read_text(encoding="utf-8"))
    features: list[dict[str, Any]] = []
    for feat in truth.get("features", []):
        props = feat.get("properties", {})
        is_pit = props.get("kind") == "pit"
        features.append({
            "type": "Feature",
            "id": f"{prefix}{props.get('truth_id')}",
            "properties": {
                "label": "mining" if is_pit else "not_mining",
                "class": "pit" if is_pit else str(props.get("distractor_type", "other")),
            },
            "geometry": feat["geometry"],
        })
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return out
