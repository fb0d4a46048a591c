"""EDGE: the sites earlier bulletins of an output root listed, read from its archive.

Every complete run is archived as ``archive/bulletin-NNNN[-rR]/`` (:mod:`pipeline.numbering`);
of each number, the latest revision counts. A new bulletin asks three things of them:

- :func:`previous_sites`: the sites of the bulletin before it, per AOI the latest bulletin that
  processed that AOI: those it no longer lists are "no longer listed";
- :func:`reported_sites`: every site any earlier bulletin listed: a site in none of them is
  "reported for the first time", and one listed earlier but not in the bulletin before is
  "listed again";
- :func:`earlier_sites`: one AOI's site records of every earlier bulletin and of the folder's
  current ``sites.geojson``, which :func:`pipeline.sites.track_sites` matches a run's sites
  against (ids from each id's latest polygon, dates from the records a site contains). A site that an earlier
  bulletin listed, that a later one did not (merged into a neighbour, below the minimum area for
  a while, outside a shifted period), and that this run finds again keeps its id and its date,
  and is not called new.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely.geometry

from .errors import InputDataError, MonitorError
from .numbering import ArchivedBulletin, archived_bulletins

__all__ = ["SinceEarlier", "compare_with_earlier", "earlier_sites", "previous_sites", "reported_sites",
           "revision_changes", "settings_changed"]

#: Why an unreadable file of the archive stops the run rather than being skipped.
_HINT = " (an archived bulletin's sites decide which sites are new)"


@dataclass(frozen=True)
class SinceEarlier:
    """A bulletin's sites against the earlier bulletins of its output root."""

    previous_number: int | None
    """The previous bulletin's number; ``None`` for a first bulletin (then both lists are empty)."""
    previous: dict[str, str]
    """:func:`previous_sites`: ``{site_id: aoi_id}``, per AOI of the last bulletin that processed it."""
    first_time: list[str]
    """The bulletin's sites that no earlier bulletin listed ("reported for the first time")."""
    listed_again: list[str]
    """Its sites that an earlier bulletin listed but ``previous`` does not."""


def compare_with_earlier(out_dir: Path, site_ids: Iterable[str], *, before: int) -> SinceEarlier:
    """The sites ``site_ids`` of bulletin ``before`` against the archived bulletins below it.

    >>> import tempfile
    >>> compare_with_earlier(Path(tempfile.mkdtemp()), ["a-1"], before=1).previous_number is None
    True
    """
    number, previous = previous_sites(out_dir, before=before)
    if number is None:
        return SinceEarlier(None, {}, [], [])
    listed, reported = {str(s) for s in site_ids}, reported_sites(out_dir, before=before).keys()
    return SinceEarlier(number, previous, sorted(listed - reported), sorted((listed & reported) - previous.keys()))


def previous_sites(out_dir: Path, *, before: int | None = None) -> tuple[int | None, dict[str, str]]:
    """The last archived bulletin's number (below ``before`` when given), and the sites a new
    bulletin is compared with, as ``{site_id: aoi_id}``.

    Per AOI, those of the latest bulletin in which that AOI was processed, so that an AOI
    that failed last quarter (all cloud, say) does not make all its sites "no longer listed"
    this quarter. Of a revised bulletin, its latest revision counts.
    """
    latest = _latest(out_dir, before=before)
    if not latest:
        return None, {}
    sites: dict[str, str] = {}
    settled: set[str] = set()  # AOIs whose latest processed bulletin has been read
    for issue in reversed(latest):
        features, processed = _archived_sites(issue.folder)
        for f in features:
            aoi = _aoi_of(f)
            if aoi in processed - settled:
                sites[_site_id_of(f)] = aoi
        settled |= processed
    return latest[-1].number, sites


def reported_sites(out_dir: Path, *, before: int | None = None) -> dict[str, str]:
    """Every site any archived bulletin below ``before`` listed (the latest revision of each
    number), as ``{site_id: aoi_id}``."""
    return {_site_id_of(f): _aoi_of(f) for issue in _latest(out_dir, before=before)
            for f in _archived_sites(issue.folder)[0]}


def earlier_sites(out_dir: Path, aoi_id: str, *, before: int | None = None) -> gpd.GeoDataFrame | None:
    """The sites of ``aoi_id`` that the archived bulletins (the latest revision of each number,
    below ``before`` when given) and the folder's current ``sites.geojson`` listed, in EPSG:4326,
    oldest bulletin first: every record (``site_id``, ``first_seen``, ``last_seen``,
    ``undated``, polygon), a site id in as many rows as it has different records, which
    :func:`pipeline.sites.track_sites` matches a run's sites against. ``None`` when there is none.

    ``before``: the number of the bulletin being made. A revision of bulletin N is tracked
    against the bulletins before N, not against the issue it replaces (nor the folder's copy
    of it): a wrong date in revision 1 passed into revision 2 and every later bulletin (an
    outside tester), and "reported for the first time" is measured the same way
    (:func:`compare_with_earlier`)."""
    issues = _latest(out_dir, before=before)
    newer = before is not None and any(b.number >= before for b in _latest(out_dir))
    sources = [issue.folder / "sites.geojson" for issue in issues]
    sources += [] if newer else [Path(out_dir) / "sites.geojson"]
    rows = [
        {"site_id": _site_id_of(f), "first_seen": str(f["properties"].get("first_seen") or ""),
         "last_seen": str(f["properties"].get("last_seen") or ""),
         "undated": bool(f["properties"].get("undated") or False),
         "geometry_json": json.dumps(f["geometry"], sort_keys=True), "feature": f}
        for path in sources if path.is_file()
        for f in _features(path) if _aoi_of(f) == aoi_id and f.get("geometry")
    ]
    if not rows:
        return None
    # The same record in several bulletins (a site unchanged, the folder's copy of the last
    # bulletin) counts once, at its latest place.
    table = pd.DataFrame(rows).drop_duplicates(["site_id", "first_seen", "last_seen", "undated", "geometry_json"],
                                               keep="last")
    return gpd.GeoDataFrame(
        table[["site_id", "first_seen", "last_seen", "undated"]].assign(aoi_id=aoi_id).reset_index(drop=True),
        geometry=[shapely.geometry.shape(f["geometry"]) for f in table["feature"]], crs="EPSG:4326")


def revision_changes(revises: ArchivedBulletin | None, site_ids: Iterable[str]) -> dict[str, Any] | None:
    """What a revision changes in the sites of the issue it replaces (``revises``): ``{"revision":
    its revision, "added": [...], "removed": [...]}`` (site ids, sorted), ``None`` for a first
    issue. Readers of a revision were not told what changed (an outside tester).

    >>> revision_changes(None, ["a-1"]) is None
    True
    """
    if revises is None:
        return None
    before = {_site_id_of(f) for f in _archived_sites(revises.folder)[0]}
    now = {str(s) for s in site_ids}
    return {"revision": revises.revision, "added": sorted(now - before), "removed": sorted(before - now)}


def settings_changed(out_dir: Path, previous_number: int | None,
                     thresholds: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``thresholds`` (``{"section", "key", "value", "unit", ...}``) whose value differs from
    that in the ``bulletin.json`` of bulletin ``previous_number`` (its latest revision):
    ``{"section", "key", "before", "after"}`` each, in ``thresholds``' order. Compared as
    ``bulletin.json`` holds them (credentials redacted; numbers by value: 2500 is 2500.0).
    Files and folders (units ``CSV file``, ``model folder``...: paths, which differ between
    machines and are not the reader's), the thresholds measured on each AOI's imagery (section
    ``applied (AOI)``: not settings) and thresholds the previous bulletin did not list are left
    out; so is everything when it has no readable ``bulletin.json`` (an older archive). A changed
    threshold can change which sites are found: a site "no longer listed" may be one a new
    minimum area leaves out (an outside tester).

    >>> import tempfile
    >>> settings_changed(Path(tempfile.mkdtemp()), None, [{"section": "s", "key": "k", "value": 1}])
    []
    """
    from .http import redact_credentials
    from .limits import MAX_JSON_BYTES, load_json, read_text

    issues = [b for b in _latest(out_dir) if b.number == previous_number]
    if previous_number is None or not issues:
        return []
    path = issues[-1].folder / "bulletin.json"
    try:
        doc = load_json(read_text(path, what="archived bulletin", max_bytes=MAX_JSON_BYTES, fix="restore it"),
                        path=path, what="archived bulletin")
    except (MonitorError, OSError):
        return []
    listed = doc.get("thresholds") if isinstance(doc, dict) else None
    before = {(str(t.get("section")), str(t.get("key"))): t.get("value")
              for t in (listed if isinstance(listed, list) else []) if isinstance(t, dict)}
    changed = []
    for t in thresholds:
        key = (str(t.get("section")), str(t.get("key")))
        unit = str(t.get("unit") or "")
        if key not in before or key[0].startswith("applied (") or unit.endswith((" file", " folder")):
            continue
        after = redact_credentials(json.loads(json.dumps(t.get("value"), default=str)))
        if not _same_value(before[key], after):
            changed.append({"section": key[0], "key": key[1], "before": before[key], "after": after})
    return changed


def _same_value(a: Any, b: Any) -> bool:
    """JSON values equal, numbers by value (2500 == 2500.0; booleans are not numbers).

    >>> _same_value([1, 2.0], [1.0, 2]), _same_value(1, True), _same_value("a", "a")
    (True, False, True)
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    return bool(a == b)


def _latest(out_dir: Path, *, before: int | None = None) -> list[ArchivedBulletin]:
    """The latest revision of each archived number (below ``before``), by number."""
    latest = {b.number: b for b in archived_bulletins(Path(out_dir)) if before is None or b.number < before}
    return [latest[n] for n in sorted(latest)]


def _archived_sites(folder: Path) -> tuple[list[dict[str, Any]], set[str]]:
    """An archived bulletin's site features and the AOIs it processed successfully."""
    sites_path, manifest_path = folder / "sites.geojson", folder / "manifest.json"
    if not sites_path.is_file():  # read as "no site", every site of the next bulletin would be "first time"
        raise InputDataError(f"archived bulletin {folder} has no sites.geojson; restore the folder from a copy of "
                             f"the output folder, or move it out of archive/{_HINT}")
    features = _features(sites_path)
    statuses = _document(manifest_path).get("aois", {}) if manifest_path.exists() else {}
    processed = (
        {a for a, info in statuses.items() if isinstance(info, dict) and info.get("status") == "ok"}
        if isinstance(statuses, dict) and statuses
        else {_aoi_of(f) for f in features}
    )
    return features, processed


def _features(path: Path) -> list[dict[str, Any]]:
    """The features of a sites file (read once per version of the file: every AOI of a run asks)."""
    stat = path.stat()
    return _features_of(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=128)
def _features_of(path: str, _mtime_ns: int, _size: int) -> list[dict[str, Any]]:
    features = _document(Path(path)).get("features")
    if not isinstance(features, list) or not all(
            isinstance(f, dict) and isinstance(f.get("properties"), dict) and f["properties"].get("site_id")
            for f in features):
        raise InputDataError(f"sites file {path}: not a FeatureCollection of sites with a site_id each; restore it "
                             f"from a copy of the output folder{_HINT}")
    return features


def _document(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputDataError(f"cannot read {path} ({' '.join(str(exc).split())[:200]}); restore it from a copy of "
                             f"the output folder{_HINT}") from None
    if not isinstance(data, dict):
        raise InputDataError(f"{path} is not a JSON object; restore it from a copy of the output "
                             f"folder{_HINT}")
    return data


def _site_id_of(feature: dict[str, Any]) -> str:
    return str(feature["properties"]["site_id"])


def _aoi_of(feature: dict[str, Any]) -> str:
    return str(feature["properties"].get("aoi_id", ""))
