"""Static STAC catalogs on disk (``catalog.json`` / ``collection.json``): the demo and test path.

Nothing is signed or downloaded; assets are local files (or whatever hrefs the catalog
holds, read like any other provider's).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pystac
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from ..config import SearchParams
from ..errors import MissingBandError, NoCollectionError, SearchError
from .base import BaseProvider, SourceCheck

__all__ = ["StaticProvider", "catalog_path"]


def catalog_path(url: str) -> Path:
    """Local path of a static catalog URL (``file://`` or a plain path)."""
    return Path(url[len("file://"):] if url.startswith("file://") else url)


class StaticProvider(BaseProvider):
    """Walk a local static catalog with :mod:`pystac` and filter client-side."""

    name: ClassVar[str] = "static"

    def search(
        self,
        aoi: BaseGeometry,
        start: dt.date,
        end: dt.date,
        *,
        params: SearchParams,
        bands: Sequence[str] = (),
        collection: str | None = None,
    ) -> list[pystac.Item]:
        path = catalog_path(self.url)
        if not path.exists():
            raise SearchError(
                f"static catalog {path} does not exist; pass --source a STAC API URL or a catalog.json path"
            )
        coll = collection or self.collection
        with _CATALOGS.lock:
            root = _CATALOGS.read(path)
            # A static catalog is already a selection: narrow it to the configured collection
            # only when the catalog holds a collection of that id (e.g. S2 next to S1), at any depth.
            child = _find_collection(root, coll)
            found: list[pystac.Item] = []
            for item in (child or root).get_items(recursive=True):
                if item.geometry is None or not shapely.geometry.shape(item.geometry).intersects(aoi):
                    continue
                if _in_period(item, start, end) and _cloud_ok(item, params.max_cloud_frac):
                    item.make_asset_hrefs_absolute()
                    found.append(item)
        try:
            return self.normalise(found, bands=bands)
        except MissingBandError as exc:
            if child is not None:
                raise
            # Not the collection asked for (e.g. Sentinel-1 searched in a Sentinel-2-only catalog):
            # say so, rather than that the other collection's items lack a band.
            raise NoCollectionError(_no_collection_message(path, coll, found, bands, missing=str(exc))) from None

    def check(self) -> list[SourceCheck]:
        from ..errors import MonitorError
        from ..validate_inputs import check_catalog_documents  # (imports this module)

        path = catalog_path(self.url)
        try:
            _, n_items = check_catalog_documents(self.url)
        except MonitorError as exc:  # what monitor would refuse, said in the table
            return [SourceCheck(self.name, str(path), False, None, " ".join(str(exc).split()))]
        if n_items == 0:  # valid, but every run on it would find no scenes
            return [SourceCheck(self.name, str(path), False, None,
                                "catalog holds no items: a run would find no scenes; pass --source a catalog "
                                "with Sentinel-2 items")]
        count = "" if n_items is None else f" ({n_items:,} item{'' if n_items == 1 else 's'})"
        with _CATALOGS.lock:
            root = _CATALOGS.read(path)
            held = [] if _find_collection(root, self.collection) else sorted(
                {c.id for c in ([root] if isinstance(root, pystac.Collection) else root.get_all_collections())})
        if len(held) > 1:  # several collections, not the configured one: a run cannot tell which it means
            return [SourceCheck(self.name, str(path), False, None,
                                f"catalog has no collection {self.collection!r} (source.collection) but holds "
                                f"{', '.join(held)}; set source.collection to one of them")]
        note = f"; no collection {self.collection!r}: all its items are searched" if held else ""
        return [SourceCheck(self.name, str(path), True, None,
                            f"catalog and every document it links are valid{count}{note}")]


class _CatalogMemo:
    """Parsed static catalogs, reused while none of their documents changed.

    One run reads its catalog in the pre-flight coverage check and again in each AOI's search;
    parsing it (every item file through :mod:`pystac`) costs about 5 ms an item. A memo is
    keyed by the catalog's path and checked against the inode, size and modification time of
    every document it was read from, so an edited, added or removed item (its parent's links change)
    is read again. Catalogs linking documents that are not local files are never memoised.
    Callers hold :attr:`lock` while they walk the returned catalog (pystac resolves links
    lazily and is not thread-safe); they must not change its items (searches return copies).
    """

    def __init__(self, size: int = 4) -> None:
        self.lock = threading.RLock()
        self.size = size
        self._memo: OrderedDict[Path, tuple[tuple[tuple[str, int, int, int], ...], pystac.Catalog]] = OrderedDict()

    def read(self, path: Path) -> pystac.Catalog:
        key = path.resolve()
        held = self._memo.get(key)
        if held is not None and _signature_of(sig[0] for sig in held[0]) == held[0]:
            self._memo.move_to_end(key)
            return held[1]
        self._memo.pop(key, None)
        try:
            root = pystac.read_file(str(path))
        except Exception as exc:  # pystac raises many types for bad JSON / STAC
            raise SearchError(f"cannot read static catalog {path}: {str(exc).splitlines()[0][:200]}") from None
        if not isinstance(root, pystac.Catalog):
            raise SearchError(f"{path} is a {type(root).__name__}, not a catalog or collection")
        try:
            documents = _documents(root)
        except Exception:  # a broken document elsewhere in the catalog: searched as before, not memoised
            documents = None
        if documents is not None:
            self._memo[key] = (_signature_of(documents), root)
            while len(self._memo) > self.size:
                self._memo.popitem(last=False)
        return root

    def clear(self) -> None:
        with self.lock:
            self._memo.clear()


def _documents(root: pystac.Catalog) -> list[str] | None:
    """Local paths of every document of ``root`` (read now if not yet), or ``None`` when one is
    not a local file."""
    hrefs: list[str | None] = []
    for catalog, _children, items in root.walk():
        hrefs.append(catalog.get_self_href())
        hrefs.extend(item.get_self_href() for item in items)
    paths = [h.removeprefix("file://") if h else None for h in hrefs]
    if any(p is None or "://" in p or not os.path.isfile(p) for p in paths):
        return None
    return paths  # type: ignore[return-value]


def _signature_of(paths: Sequence[str] | Any) -> tuple[tuple[str, int, int, int], ...]:
    """(path, inode, size, mtime in ns) of each path; ``-1`` for all three when a path is gone."""
    out = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            out.append((p, -1, -1, -1))
        else:
            out.append((p, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


#: The parsed static catalogs of this process.
_CATALOGS = _CatalogMemo()


#: Asset names that only radar (Sentinel-1) items carry.
RADAR_ASSETS = frozenset({"vv", "vh", "hh", "hv"})


def _find_collection(root: pystac.Catalog, collection_id: str) -> pystac.Catalog | None:
    """The collection ``collection_id`` of a static catalog, at any depth (the root itself when it
    is that collection; ``None`` when the root is another collection or holds none of that id)."""
    if isinstance(root, pystac.Collection):
        return root if root.id == collection_id else None
    return next((c for c in root.get_all_collections() if c.id == collection_id), None)


def _no_collection_message(
    path: Path, collection_id: str, found: Sequence[pystac.Item], bands: Sequence[str], *, missing: str
) -> str:
    """One line: the catalog has no collection ``collection_id`` (a Sentinel-1 one when radar bands
    were asked for), and where its items are instead."""
    kind = "Sentinel-1 collection" if RADAR_ASSETS & set(bands) else "collection"
    others = sorted({str(it.collection_id) for it in found if it.collection_id and it.collection_id != collection_id})
    where = (
        f"its items are in {', '.join(others)}" if others
        else f"its {len(found)} items in the period are not in any collection ({missing})"
    )
    return (
        f"static catalog {path} has no {kind} {collection_id!r} ({where}); "
        f"add a {collection_id!r} collection to it or point the source at a catalog that has one"
    )


def item_datetime(item: pystac.Item) -> dt.datetime:
    when = item.datetime or pystac.utils.str_to_datetime(item.properties["start_datetime"])
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _in_period(item: pystac.Item, start: dt.date, end: dt.date) -> bool:
    day = item_datetime(item).astimezone(dt.UTC).date()
    return start <= day <= end


def _cloud_ok(item: pystac.Item, max_cloud_frac: float) -> bool:
    cc = item.properties.get("eo:cloud_cover")
    return cc is None or float(cc) <= max_cloud_frac * 100.0
