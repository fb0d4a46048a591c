"""An AOI's items into the window cache, shared by the optical and the radar path.

:data:`SEARCH_LOCK` serialises STAC searches in this process; :func:`localise_aoi` caches each
item's AOI window (:func:`pipeline.cache.localise_items`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pystac

from . import cache as window_cache
from .config import MonitorConfig, SourceParams
from .jobs import AOIGrid
from .providers import get_provider

__all__ = ["SEARCH_LOCK", "localise_aoi"]

#: One search at a time in this process: AOIs are prepared in parallel threads
#: (:func:`pipeline.run.run_aois`), and opening STAC clients concurrently raced inside
#: pystac ("dictionary changed size during iteration"). Searches are short; the window
#: fetches that follow run in parallel.
SEARCH_LOCK = threading.Lock()


def localise_aoi(
    items: list[pystac.Item],
    cfg: MonitorConfig,
    *,
    source: SourceParams,
    grid: AOIGrid,
    bands: list[str],
    on_item: Callable[[int, int], None] | None = None,
) -> tuple[list[pystac.Item], list[Any]]:
    """Put each item's AOI window of ``bands`` into the window cache (items that keep failing
    are skipped and returned with the reason)."""
    return window_cache.localise_items(
        items,
        geobox=grid.geobox,
        bands=bands,
        cache_dir=window_cache.resolve_cache_dir(cfg.cache_dir),
        provider=get_provider(source),
        gdal_options=cfg.gdal_options,
        max_workers=cfg.acquire.fetch_threads,
        on_item=on_item,
    )
