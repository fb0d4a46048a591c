"""EDGE: find Sentinel-2 L2A items for an AOI and period.

:func:`search_items` is the one entry point the pipeline calls. It picks the provider
adapter for ``source`` (:func:`pipeline.providers.get_provider`: Earth Search, Digital
Earth Africa, Copernicus Data Space, Planetary Computer, DHuS hubs, a static catalog on
disk, or any STAC API) and returns one result type, a list of :class:`pystac.Item`.

Items from every provider are normalised to the Earth Search ``sentinel-2-c1-l2a``
band names (:data:`pipeline.types.BAND_ALIASES`) and carry per-asset scale, offset and
nodata in ``raster:bands``, decided in one place, :mod:`pipeline.harmonise`, so that the
later stages never need to know where an item came from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pystac
import shapely
from shapely.geometry.base import BaseGeometry

from .config import SearchParams, SourceParams
from .errors import ConfigError, NoScenesError
from .http import redact
from .providers import get_provider, provider_kind
from .providers import normalise_item as _normalise_item
from .providers.static import item_datetime
from .types import BAND_ALIASES, ProviderNaming

__all__ = [
    "check_collection",
    "collections_text",
    "is_static_source",
    "normalise_item",
    "search_items",
    "uncovered_share",
]

def search_items(
    aoi: BaseGeometry,
    start: dt.date,
    end: dt.date,
    *,
    source: SourceParams,
    params: SearchParams,
    bands: Sequence[str],
    collection: str | None = None,
    collection_key: str = "source.collection",
    **provider_kwargs: Any,
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
    collection
        Another collection of the same provider (one of ``source.extra_collections``,
        e.g. ``s1_rtc`` for radar: no cloud filter, bands such as ``vv``/``vh``);
        default ``source.collection``.
    collection_key
        The setting that named the collection searched (``radar.collection`` for Sentinel-1),
        for the message when the API has no such collection.
    **provider_kwargs
        Passed to the provider adapter (tests inject sessions or trusted hosts).

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
    ConfigError
        The provider needs credentials that the environment does not hold, or (nothing
        matched and) the STAC API answers that it has no such collection.
    """
    provider = get_provider(source, **provider_kwargs)
    items = provider.search(aoi, start, end, params=params, bands=bands, collection=collection)
    unique = {it.id: it for it in items}
    out = sorted(unique.values(), key=lambda it: (item_datetime(it), it.id))
    if not out:
        coll = collection or provider.collection
        others = provider.lacks_collection(coll)
        if others is not None:
            raise ConfigError(_no_such_collection(provider.url, coll, others, key=collection_key))
        fix = "widen the period or check the source"
        if _found_swapped(provider, aoi, start, end, params=params, bands=bands, collection=collection):
            fix = ("items exist with longitude and latitude swapped: GeoJSON positions are [longitude, "
                   "latitude], swap the AOI's coordinates")
        raise NoScenesError(
            f"no {collection or provider.collection} items in {_display(source.url)} for bounds "
            f"{tuple(round(b, 4) for b in aoi.bounds)} between {start} and {end} with "
            f"cloud cover <= {params.max_cloud_frac:.0%}; {fix}"
        )
    return out[: params.max_items]


def check_collection(source: SourceParams, *, key: str = "source.collection", **provider_kwargs: Any) -> None:
    """Refuse ``source.collection`` when the STAC API answers that it has no such collection.

    Nothing is refused when the source is a static catalog (a catalog is a selection already),
    cannot be reached or does not list its collections: the search reports those.

    Raises
    ------
    ConfigError
        One line naming ``key``, the source and the collections it has.
    """
    provider = get_provider(source, **provider_kwargs)
    others = provider.lacks_collection(provider.collection)
    if others is not None:
        raise ConfigError(_no_such_collection(provider.url, provider.collection, others, key=key))


def collections_text(ids: Sequence[str], *, most: int = 12) -> str:
    """``a, b, c``: the first ``most`` collection ids, then how many more."""
    return ", ".join(ids[:most]) + (f" and {len(ids) - most} more" if len(ids) > most else "")


def _no_such_collection(url: str, collection: str, others: Sequence[str], *, key: str) -> str:
    return (f"{key} {collection!r}: {_display(url)} has no such collection (it has {collections_text(others)}); "
            f"set {key} to one of them")


def uncovered_share(aoi: BaseGeometry, items: Sequence[pystac.Item], *, epsg: int) -> float:
    """Share of ``aoi``'s area outside the footprint of every item in ``items`` (0..1).

    ``aoi`` and the items' geometries are EPSG:4326; areas are compared in EPSG ``epsg`` (the
    AOI's UTM zone). An item without a geometry covers nothing; no item leaves it all uncovered.
    """
    shapes = {shapely.to_wkb(shapely.geometry.shape(it.geometry)) for it in items if it.geometry}
    if not shapes:
        return 1.0
    covered = shapely.union_all([shapely.make_valid(shapely.from_wkb(w)) for w in sorted(shapes)])
    import geopandas as gpd

    aoi_area, outside = gpd.GeoSeries([aoi, aoi.difference(covered)], crs=4326).to_crs(epsg).area
    return float(min(1.0, outside / aoi_area)) if aoi_area > 0 else 0.0


def is_static_source(url: str) -> bool:
    """True when ``url`` names a local static catalog rather than a STAC API."""
    return provider_kind(SourceParams(url=url)) == "static"


def normalise_item(
    item: pystac.Item, *, naming: ProviderNaming = "earth-search", bands: Sequence[str] = ()
) -> pystac.Item:
    """Return a copy of ``item`` with assets renamed to Earth Search band names.

    Assets that already use Earth Search keys are kept. Each required band gets a
    ``raster:bands`` entry with ``scale``, ``offset`` and ``nodata`` from
    :func:`pipeline.harmonise.band_scaling` (so Planetary Computer items, which have
    none, are harmonised by processing baseline).

    Raises
    ------
    MissingBandError
        When one of ``bands`` cannot be found under any known name.
    """
    return _normalise_item(item, aliases=BAND_ALIASES.get(naming, {}), bands=bands)


def _found_swapped(provider: Any, aoi: BaseGeometry, start: dt.date, end: dt.date, **kwargs: Any) -> bool:
    """Whether the same search with x and y exchanged finds items (an AOI written [lat, lon]).

    Only asked when a search found nothing; an AOI whose longitudes exceed 90 degrees cannot
    have been swapped."""
    minx, _, maxx, _ = aoi.bounds
    if min(minx, maxx) < -90 or max(minx, maxx) > 90:
        return False
    swapped = shapely.transform(aoi, lambda xy: xy[:, ::-1])
    try:
        return bool(provider.search(swapped, start, end, **kwargs))
    except Exception:  # the hint is a courtesy: whatever fails here, the original error stands
        return False


def _display(url: str) -> str:
    return redact(url)
