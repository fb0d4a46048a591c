"""Add each country's ISO 3166-1 alpha-3 code (``iso_a3``) to ``pipeline/data/countries_110m.geojson``,
from the ISO 3166-1 numeric ``id`` the file already carries, and write the whole ISO 3166-1
table (``alpha_3``, ``name``) to ``pipeline/data/iso3166_alpha3.csv``, against which an AOI's
``participant_iso3`` is checked.

Run once, at development time, with ``pycountry`` (the ISO 3166 tables as Debian's iso-codes
ship them; not a dependency of the product, which reads only the output)::

    python -m pip install pycountry
    python tools/countries_iso3.py

Outlines without a numeric id (world-atlas gives none to Kosovo, Northern Cyprus and
Somaliland, which have no ISO 3166-1 entry of their own) get no ``iso_a3``. Idempotent.
"""

from __future__ import annotations

import argparse
import csv
import json
from importlib.metadata import version
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "pipeline" / "data" / "countries_110m.geojson"
CODES = OUT.with_name("iso3166_alpha3.csv")


def main(argv: list[str] | None = None) -> int:
    import pycountry

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=OUT)
    parser.add_argument("--codes", type=Path, default=CODES)
    args = parser.parse_args(argv)
    collection = json.loads(args.file.read_text(encoding="utf-8"))
    n = 0
    for feature in collection["features"]:
        props = feature["properties"]
        props.pop("iso_a3", None)
        country = pycountry.countries.get(numeric=feature["id"]) if feature.get("id") else None
        if country is not None:
            props["iso_a3"] = country.alpha_3
            n += 1
    args.file.write_text(json.dumps(collection, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{args.file}: iso_a3 for {n} of {len(collection['features'])} countries")
    source = f"ISO 3166-1 as shipped by pycountry {version('pycountry')} (Debian iso-codes)"
    with args.codes.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["alpha_3", "name", "source"])
        for country in sorted(pycountry.countries, key=lambda c: c.alpha_3):
            writer.writerow([country.alpha_3, country.name, source])
    print(f"{args.codes}: {len(pycountry.countries)} codes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
