"""Writing the scenario: build the scene, render and write every date, catalog, truth, manifest.

Also the cache: a folder whose ``scenario.json`` records the same spec hash is left alone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pystac

from .cogs import _write_frame_cogs, _write_s1_cogs
from .conventions import COLLECTION_ID, S1_COLLECTION_ID
from .landscape import _build_scene
from .radar import _s1_frame, _s1_static
from .render import _render_frame
from .scene import _Scene
from .spec import GENERATOR_VERSION, ScenarioResult, ScenarioSpec, _json_default, _spec_json
from .stac import _build_catalog, _item_dict, _item_id, _s1_item_dict
from .truth import _aoi_collection, _truth_collection, _write_opened_tif

#: Top-level paths of a written scenario besides ``scenario.json`` (which is moved last).
_OUTPUTS = ("catalog", "truth_opened.tif", "truth.geojson", "aoi.geojson")


def write_scenario(out_dir: str | Path, spec: ScenarioSpec = ScenarioSpec()) -> ScenarioResult:  # noqa: B008
    """Write the demo scenario (COGs, static STAC catalog, AOI and truth) into ``out_dir``.

    Parameters
    ----------
    out_dir
        Directory to write into; created if missing. Only the paths listed in the
        :mod:`pipeline.demo` docstring are written or replaced; anything else in it is left alone.
    spec
        What to build. The default is the bundled Séguéla demo (92 dates, 300 x 400 px).

    Returns
    -------
    ScenarioResult
        Paths and grid. Rasters are on the AOI's UTM zone (``EPSG:326zz``/``327zz``), origin
        snapped to 20 m; blue/green/red/nir at 10 m, nir08/swir16/swir22/scl at 20 m.
        Reflectance = DN * 0.0001 - 0.1 (DN 0 is nodata).

    Notes
    -----
    Eager, single-threaded, deterministic in ``spec.seed``. If ``out_dir/scenario.json``
    records the same spec hash and the catalog exists, nothing is rewritten (idempotent demo
    re-runs). Otherwise everything is built in ``out_dir/.scenario-build`` and moved into
    place with ``scenario.json`` last, so an interrupted run is rebuilt next time.

    Examples
    --------
    >>> from datetime import date
    >>> spec = ScenarioSpec(shape_px=(60, 80), start=date(2022, 11, 1), end=date(2023, 4, 30),
    ...                     n_pits=2, n_fields=1, n_burn_scars=0, n_bare_patches=1)
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     res = write_scenario(tmp, spec)
    ...     catalog = pystac.Catalog.from_file(res.catalog_path)
    ...     print(res.n_items, len(list(catalog.get_items(recursive=True))), res.epsg)
    19 19 32629
    """
    out = Path(out_dir)
    digest = spec.digest()
    cached = _read_cached(out, digest)
    if cached is not None:
        return cached
    build = _fresh_build_dir(out)
    scene = _build_scene(spec)
    items, stats = _write_s2_items(scene, build / "catalog" / COLLECTION_ID)
    s1_items: list[pystac.Item] = []
    if spec.with_s1:
        s1_items = _write_s1_items(scene, build / "catalog" / S1_COLLECTION_ID)
    _save_catalog(scene, items, digest, s1_items, build / "catalog")
    _write_truth(scene, build)
    _write_json(build / "scenario.json", _manifest(scene, digest, items, stats, s1_items))
    _swap_into_place(build, out)
    return _result(out, len(items), scene.grid.epsg, scene.grid.bounds, len(s1_items))


def _fresh_build_dir(out: Path) -> Path:
    """An empty ``out/.scenario-build`` (``out`` created if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    build = out / ".scenario-build"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir()
    return build


def _write_s2_items(scene: _Scene, coll_dir: Path) -> tuple[list[pystac.Item], list[dict[str, Any]]]:
    """Render and write every Sentinel-2 date; return the items and their cloud statistics."""
    items: list[pystac.Item] = []
    stats: list[dict[str, Any]] = []
    for index in range(len(scene.dates)):
        frame = _render_frame(scene, index)
        item_id = _item_id(scene, index)
        item_dir = coll_dir / item_id
        item_dir.mkdir(parents=True)
        _write_frame_cogs(frame, scene.grid, item_dir)
        item_dict = _item_dict(scene, index, frame, item_id)
        # migrate=False: keep the item as written (projection v1.1.0, proj:epsg), not pystac's v2 form.
        items.append(pystac.Item.from_dict(item_dict, migrate=False, preserve_dict=False))
        stats.append({"id": item_id, "date": scene.dates[index].isoformat(),
                      "eo:cloud_cover": item_dict["properties"]["eo:cloud_cover"],
                      "scl_flagged_cloud_pct": round(frame.flagged_cloud_pct, 3)})
    return items, stats


def _write_s1_items(scene: _Scene, coll_dir: Path) -> list[pystac.Item]:
    """Render and write every Sentinel-1 date; return the items (not yet in a catalog)."""
    s1 = _s1_static(scene)
    items: list[pystac.Item] = []
    for index in range(len(s1.dates)):
        gamma0 = _s1_frame(scene, s1, index)
        item_dict = _s1_item_dict(scene, s1, index)
        item_dir = coll_dir / item_dict["id"]
        item_dir.mkdir(parents=True)
        _write_s1_cogs(gamma0, scene.grid, item_dir)
        items.append(pystac.Item.from_dict(item_dict, migrate=False, preserve_dict=False))
    return items


def _save_catalog(scene: _Scene, items: list[pystac.Item], digest: str,
                  s1_items: list[pystac.Item], catalog_dir: Path) -> None:
    catalog = _build_catalog(scene.spec, scene, items, digest, s1_items=s1_items)
    catalog.normalize_hrefs(str(catalog_dir))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    # ^ The COGs were written where pystac's best-practice layout puts each item's JSON,
    #   so the relative asset hrefs ("./B02.tif") resolve.
    coll_dir = catalog_dir / COLLECTION_ID
    assert all((coll_dir / it.id / f"{it.id}.json").exists() for it in items[:1])


def _write_truth(scene: _Scene, build: Path) -> None:
    """``truth_opened.tif``, ``truth.geojson`` and ``aoi.geojson``."""
    _write_opened_tif(scene, build / "truth_opened.tif")
    _write_json(build / "truth.geojson", _truth_collection(scene))
    _write_json(build / "aoi.geojson", _aoi_collection(scene.spec, scene.grid))


def _manifest(scene: _Scene, digest: str, items: list[pystac.Item], stats: list[dict[str, Any]],
              s1_items: list[pystac.Item]) -> dict[str, Any]:
    """Contents of ``scenario.json``: spec, spec hash, grid and per-item cloud statistics."""
    spec, grid = scene.spec, scene.grid
    manifest: dict[str, Any] = {
        # "pipeline.scenario" (the generator's former module) is part of the output: keep it.
        "generator": "pipeline.scenario", "generator_version": GENERATOR_VERSION,
        "spec_hash": digest, "spec": _spec_json(spec), "n_items": len(items),
        "epsg": grid.epsg, "bounds_utm": list(grid.bounds), "mgrs_tile": scene.tile,
        "items": stats, "synthetic": True,
    }
    if spec.with_s1:
        manifest["n_s1_items"] = len(s1_items)
        manifest["s1_items"] = [it.id for it in s1_items]
    return manifest


def _swap_into_place(build: Path, out: Path) -> None:
    """Move the finished outputs from ``build`` into ``out``, replacing older ones."""
    # The marker goes first and comes back last: a run killed half-way through the swap
    # leaves no scenario.json, so the next run rebuilds instead of trusting a mixed folder.
    (out / "scenario.json").unlink(missing_ok=True)
    for name in _OUTPUTS:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        (build / name).replace(target)
    (build / "scenario.json").replace(out / "scenario.json")
    shutil.rmtree(build, ignore_errors=True)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False, default=_json_default) + "\n",
                    encoding="utf-8")


def _read_cached(out: Path, digest: str) -> ScenarioResult | None:
    manifest = out / "scenario.json"
    if not (manifest.exists() and (out / "catalog" / "catalog.json").exists()):
        return None
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("spec_hash") != digest:
        return None
    return _result(out, int(meta["n_items"]), int(meta["epsg"]), tuple(meta["bounds_utm"]),
                   int(meta.get("n_s1_items", 0)))


def _result(out: Path, n_items: int, epsg: int, bounds: tuple[float, ...],
            n_s1_items: int = 0) -> ScenarioResult:
    left, bottom, right, top = (float(v) for v in bounds)
    return ScenarioResult(
        catalog_path=out / "catalog" / "catalog.json", aoi_path=out / "aoi.geojson",
        truth_path=out / "truth.geojson", n_items=n_items, epsg=epsg,
        bounds_utm=(left, bottom, right, top), n_s1_items=n_s1_items,
    )
