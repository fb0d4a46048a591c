"""Convert world-atlas ``countries-110m.json`` (TopoJSON) into the compact GeoJSON the bulletin's
locator inset draws (``pipeline/data/countries_110m.geojson``).

Run once, at development time, on the npm package (the product reads only the output)::

    cd /tmp && npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    python tools/countries_geojson.py /tmp/package/countries-110m.json

world-atlas 2.0.2 (Mike Bostock, ISC licence) is Natural Earth's 1:110m Admin 0 countries
(public domain) in TopoJSON. The output keeps each country's ``name`` and ISO 3166-1 numeric
``id``; coordinates are rounded to 0.01° (about 1 km, far below what a 110m outline resolves).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "pipeline" / "data" / "countries_110m.geojson"


def decode_arcs(topology: dict[str, Any]) -> list[list[list[float]]]:
    """The topology's arcs in degrees (quantised, delta-encoded positions undone)."""
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x, y = x + dx, y + dy
            points.append([x * sx + tx, y * sy + ty])
        arcs.append(points)
    return arcs


def ring(indices: list[int], arcs: list[list[list[float]]]) -> list[list[float]]:
    """One closed ring from arc indices (``~i``: arc ``i`` reversed); shared end points once."""
    points: list[list[float]] = []
    for i in indices:
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        points.extend(arc if not points else arc[1:])
    return [[round(x, 2), round(y, 2)] for x, y in points]


def convert(topology: dict[str, Any]) -> dict[str, Any]:
    """GeoJSON FeatureCollection of the ``countries`` object."""
    arcs = decode_arcs(topology)
    features = []
    for geom in topology["objects"]["countries"]["geometries"]:
        if geom["type"] == "Polygon":
            coords: Any = [ring(r, arcs) for r in geom["arcs"]]
        elif geom["type"] == "MultiPolygon":
            coords = [[ring(r, arcs) for r in poly] for poly in geom["arcs"]]
        else:
            continue
        features.append({"type": "Feature", "id": geom.get("id"),
                         "properties": {"name": geom.get("properties", {}).get("name", "")},
                         "geometry": {"type": geom["type"], "coordinates": coords}})
    return {"type": "FeatureCollection",
            "source": "Natural Earth 1:110m Admin 0 countries (public domain), via world-atlas 2.0.2 "
                      "countries-110m.json (ISC licence); see countries_110m.LICENSE.md",
            "features": features}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("topojson", type=Path, help="world-atlas countries-110m.json")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    collection = convert(json.loads(args.topojson.read_text(encoding="utf-8")))
    args.out.write_text(json.dumps(collection, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(collection['features'])} countries, {args.out.stat().st_size:,d} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
