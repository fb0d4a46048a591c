"""Validate STAC JSON against the schemas it declares, offline.

The schemas are local copies in ``tests/data/stac-schemas/`` (see its README): the core
STAC 1.1.0 item, collection and catalog schemas with their parts and the GeoJSON schemas
(as pystac ships them), and every extension schema the demo scenario declares. They are
registered under their canonical URLs in a :class:`referencing.Registry` whose ``retrieve``
refuses every other URL, so a validation never reaches the network; an item that declares
an extension without a local copy fails with the URL named.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
from referencing.jsonschema import DRAFT7

SCHEMAS = Path(__file__).with_name("data") / "stac-schemas"

#: Core schema of each STAC object type (``{version}`` from the object's ``stac_version``).
_CORE = {
    "Feature": "https://schemas.stacspec.org/v{version}/item-spec/json-schema/item.json",
    "Collection": "https://schemas.stacspec.org/v{version}/collection-spec/json-schema/collection.json",
    "Catalog": "https://schemas.stacspec.org/v{version}/catalog-spec/json-schema/catalog.json",
}
#: Files of the core schemas whose ``$id`` is not the URL that refers to them.
_CORE_FILES = {
    "item-spec/json-schema/common.json": "common.json",  # its $id has a typo upstream ("commonjson")
}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def registry() -> referencing.Registry:
    """Every local schema under its canonical URL (``$id`` without a trailing ``#``)."""
    resources: dict[str, referencing.Resource[Any]] = {}

    def add(uri: str, contents: dict[str, Any]) -> None:
        resources[uri.rstrip("#")] = DRAFT7.create_resource(contents)

    for path in sorted((SCHEMAS / "extensions").glob("*.json")):
        contents = _load(path)
        add(contents["$id"], contents)
    for path in sorted((SCHEMAS / "geojson").glob("*.json")):
        contents = _load(path)
        add(contents["$id"], contents)
    for path in sorted((SCHEMAS / "stac-spec").glob("v*/*.json")):
        version = path.parent.name.removeprefix("v")
        spec = {"item": "item-spec", "collection": "collection-spec", "catalog": "catalog-spec"}
        folder = spec.get(path.stem, "item-spec")
        add(f"https://schemas.stacspec.org/v{version}/{folder}/json-schema/{path.name}", _load(path))

    def refuse(uri: str) -> referencing.Resource[Any]:
        raise referencing.exceptions.NoSuchResource(ref=f"{uri} (no local copy in {SCHEMAS}; no network)")

    return referencing.Registry(retrieve=refuse).with_resources(resources.items())  # type: ignore[call-arg]


def declared_schemas(obj: dict[str, Any]) -> list[str]:
    """The core schema of ``obj``'s type and version, then every ``stac_extensions`` URL."""
    core = _CORE[obj["type"]].format(version=obj["stac_version"])
    return [core, *obj.get("stac_extensions", [])]


def stac_errors(obj: dict[str, Any]) -> list[str]:
    """One line per violation of any schema ``obj`` declares (empty: valid)."""
    errors = []
    for uri in declared_schemas(obj):
        schema = {"$ref": uri}
        validator = jsonschema.Draft7Validator(schema, registry=registry())
        try:
            for err in validator.iter_errors(obj):
                # oneOf/anyOf failures: name the deepest reason, not the whole object.
                err = jsonschema.exceptions.best_match([err, *err.context]) if err.context else err
                where = "/".join(str(p) for p in err.absolute_path) or "(root)"
                errors.append(f"{uri}: {where}: {err.message[:200]}")
        except referencing.exceptions.Unresolvable as exc:
            errors.append(f"{uri}: no local copy of a schema it needs ({exc}); no network is used")
    return errors
