"""EDGE: find Sentinel-2 L2A items for an AOI and period.

Two kinds of source, one result type (a list of :class:`pystac.Item`):

- a STAC API root URL, searched with :mod:`pystac_client` (paging, retries with
  back-off through ``StacApiIO(max_retries=...)``);
- a static STAC catalog on disk (``catalog.json`` or ``collection.json``, a path or
  ``file://`` URL), walked with :mod:`pystac`. The offline demo uses this path.

Items from every provider are normalised to the Earth Search ``sentinel-2-c1-l2a``
band names (:data:`pipeline.types.BAND_ALIASES`) and carry per-asset scale,
offset and nodata in ``raster:bands`` (see :func:`band_scaling`), so that the
later stages never need to know where an item came from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import pystac
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from .config import SearchParams, SourceParams
from .errors import MissingBandError, NoScenesError, SearchError
from .types import BAND_ALIASES, ProviderNaming

__all__ = [
    "band_scaling",
    "is_static_source",
    "normalise_item",
    "search_items",
]

#: Processing baselines from 04.00 (25 Jan 2022) add BOA_ADD_OFFSET = -1000 DN
#: (ESA, "Sentinel-2 L2A products: new processing baseline 04.00"). Keyed on the
#: baseline, never on the acquisition date: reprocessed archives carry new baselines.
BOA_OFFSET_BASELINE = (4, 0)
L2A_SCALE = 1e-4
L2A_OFFSET_NEW = -0.1


def search_items(
    aoi: BaseGeometry,
    start: dt.date,
    end: dt.date,
    *,
    source: SourceParams,
    params: SearchParams,
    bands: Sequence[str],
) -> list[pystac.Item]:
    """Find the items covering ``aoi`` between ``start`` and ``end`` (inclusive).

    Parameters
    ----------
    aoi
        AOI geometry in EPSG:4326 (lon/lat).
    start, end
        First and last acquisition day (UTC, inclusive).
    source
        Where to search: STAC API URL or static catalog path, collection, naming.
    params
        Cloud-cover and count limits.
    bands
        Band names (Earth Search naming) every returned item must provide.

    Returns
    -------
    list of pystac.Item
        Sorted by datetime then id, duplicates removed, assets renamed to
        Earth Search band names.

    Raises
    ------
    SearchError
        The source cannot be reached or answered badly (one line naming it).
    NoScenesError
        Nothing matched; the message names the AOI bounds and the period.
    MissingBandError
        An item lacks a required band.
    """
    if is_static_source(source.url):
        raw = _search_static(aoi, start, end, source=source, params=params)
    else:
        raw = _search_api(aoi, start, end, source=source, params=params)
    items = [normalise_item(it, naming=source.naming, bands=bands) for it in raw]
    unique = {it.id: it for it in items}
    out = sorted(unique.values(), key=lambda it: (_item_datetime(it), it.id))
    if not out:
        raise NoScenesError(
            f"no {source.collection} items in {source.url} for bounds "
            f"{tuple(round(b, 4) for b in aoi.bounds)} between {start} and {end} with "
            f"cloud cover <= {params.max_cloud_frac:.0%}; widen the period or check the source"
        )
    return out[: params.max_items]


def is_static_source(url: str) -> bool:
    """True when ``url`` names a local static catalog rather than a STAC API."""
    parsed = urlparse(url)
    return parsed.scheme in ("", "file") or len(parsed.scheme) == 1  # drive letter


def normalise_item(
    item: pystac.Item, *, naming: ProviderNaming = "earth-search", bands: Sequence[str] = ()
) -> pystac.Item:
    """Return a copy of ``item`` with assets renamed to Earth Search band names.

    Assets that already use Earth Search keys are kept. Each required band gets a
    ``raster:bands`` entry with ``scale``, ``offset`` and ``nodata`` from
    :func:`band_scaling` (so Planetary Computer items, which have none, are harmonised
    by processing baseline).

    Raises
    ------
    MissingBandError
        When one of ``bands`` cannot be found under any known name.
    """
    out = item.clone()
    aliases = BAND_ALIASES.get(naming, {})
    renamed: dict[str, pystac.Asset] = {}
    for key, asset in out.assets.items():
        renamed[aliases.get(key, key)] = asset
    out.assets = renamed
    for band in bands:
        if band not in out.assets:
            known = ", ".join(sorted(renamed)) or "none"
            raise MissingBandError(
                f"item {item.id}: band {band!r} missing (assets: {known}); "
                f"set source.naming to the provider's scheme or drop the band from acquire.bands"
            )
        asset = out.assets[band]
        scale, offset, nodata = band_scaling(out, band)
        rb = dict((asset.extra_fields.get("raster:bands") or [{}])[0])
        rb.update({"scale": scale, "offset": offset, "nodata": nodata})
        asset.extra_fields["raster:bands"] = [rb]
    return out


def band_scaling(item: pystac.Item, band: str) -> tuple[float, float, float]:
    """Return ``(scale, offset, nodata)`` that turn the band's DN into reflectance.

    Trusts ``raster:bands`` when it carries a scale; otherwise derives them from the
    processing baseline (``s2:processing_baseline``): 1e-4 scale, and an offset of
    -0.1 (BOA_ADD_OFFSET -1000 DN) from baseline 04.00 on, unless the provider says the
    offset was already applied (``earthsearch:boa_offset_applied``). The SCL band is
    categorical: scale 1, offset 0.
    """
    asset = item.assets[band]
    rb = (asset.extra_fields.get("raster:bands") or [{}])[0]
    nodata = float(rb.get("nodata", 0))
    if band == "scl":
        return 1.0, 0.0, nodata
    if "scale" in rb:
        return float(rb["scale"]), float(rb.get("offset", 0.0)), nodata
    baseline = _baseline(item)
    applied = bool(item.properties.get("earthsearch:boa_offset_applied", False))
    offset = L2A_OFFSET_NEW if baseline >= BOA_OFFSET_BASELINE and not applied else 0.0
    return L2A_SCALE, offset, nodata


def _baseline(item: pystac.Item) -> tuple[int, int]:
    raw = item.properties.get("s2:processing_baseline")
    if raw is None:
        # Planetary Computer keeps it in the product URI: ..._N0510_...
        uri = str(item.properties.get("s2:product_uri", ""))
        for part in uri.split("_"):
            if len(part) == 5 and part[0] == "N" and part[1:].isdigit():
                raw = f"{part[1:3]}.{part[3:]}"
    if raw is None:
        return (0, 0)
    major, _, minor = str(raw).partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        return (0, 0)


def _item_datetime(item: pystac.Item) -> dt.datetime:
    when = item.datetime or pystac.utils.str_to_datetime(item.properties["start_datetime"])
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _in_period(item: pystac.Item, start: dt.date, end: dt.date) -> bool:
    day = _item_datetime(item).astimezone(dt.UTC).date()
    return start <= day <= end


def _cloud_ok(item: pystac.Item, max_cloud_frac: float) -> bool:
    cc = item.properties.get("eo:cloud_cover")
    return cc is None or float(cc) <= max_cloud_frac * 100.0


def _search_static(
    aoi: BaseGeometry, start: dt.date, end: dt.date, *, source: SourceParams, params: SearchParams
) -> list[pystac.Item]:
    path = source.url[len("file://") :] if source.url.startswith("file://") else source.url
    if not Path(path).exists():
        raise SearchError(
            f"static catalog {path} does not exist; pass --source a STAC API URL or a catalog.json path"
        )
    try:
        root = pystac.read_file(path)
    except Exception as exc:  # pystac raises many types for bad JSON / STAC
        raise SearchError(f"cannot read static catalog {path}: {str(exc).splitlines()[0][:200]}") from None
    if not isinstance(root, pystac.Catalog):
        raise SearchError(f"{path} is a {type(root).__name__}, not a catalog or collection")
    # A static catalog is already a selection: narrow it to the configured collection only
    # when the catalog holds a collection of that id (e.g. S2 next to S1).
    child = root.get_child(source.collection) if not isinstance(root, pystac.Collection) else None
    found: list[pystac.Item] = []
    for item in (child or root).get_items(recursive=True):
        if item.geometry is None or not shapely.geometry.shape(item.geometry).intersects(aoi):
            continue
        if _in_period(item, start, end) and _cloud_ok(item, params.max_cloud_frac):
            found.append(item)
    return found


def _search_api(
    aoi: BaseGeometry, start: dt.date, end: dt.date, *, source: SourceParams, params: SearchParams
) -> list[pystac.Item]:
    # Imported here so that static-catalog users do not pay for the client import.
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO

    io = StacApiIO(timeout=source.timeout_s, max_retries=source.max_retries)
    try:
        client = Client.open(source.url, stac_io=io)
        search = client.search(
            collections=[source.collection],
            intersects=shapely.geometry.mapping(aoi),
            datetime=f"{start.isoformat()}T00:00:00Z/{end.isoformat()}T23:59:59Z",
            query={"eo:cloud_cover": {"lte": params.max_cloud_frac * 100.0}},
            max_items=params.max_items,
            limit=min(100, params.max_items),
        )
        return list(search.items())
    except SearchError:
        raise
    except Exception as exc:  # requests / pystac_client errors: one line naming the endpoint
        raise SearchError.from_exception(source.url, exc) from None
