"""Unreadable images named: odc-stac's read raises rasterio's error without the file.

A band file whose tile data are damaged (an outside tester overwrote 64 bytes of a tile,
keeping the file's size) passes the checks of :mod:`pipeline.asset_checks` (header, tile
index, size) and fails only when its pixels are decoded, deep in odc-stac's loader, with
GDAL's "Read failed. See previous exception for details.": the failed AOI's one line named
neither the file nor the item. :func:`install` wraps ``odc.loader._rio.rio_read`` (the one
function its rasterio reader reads through) so that the error it raises starts with the
file's address and band. Installed when this module is imported: by :mod:`pipeline.acquire`
on the client and, through :data:`pipeline.workers.WORKER_MODULES`, on every worker.
"""

from __future__ import annotations

import functools
from typing import Any

import rasterio.errors

__all__ = ["install"]


def install() -> bool:
    """Wrap odc-stac's ``rio_read`` (once); ``False`` when odc-stac has no such function."""
    try:
        from odc.loader import _rio
    except ImportError:  # pragma: no cover - odc-stac moved it: errors stay as they are
        return False
    original = getattr(_rio, "rio_read", None)
    if original is None:  # pragma: no cover
        return False
    if getattr(original, "_names_files", False):
        return True

    @functools.wraps(original)
    def rio_read(src: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(src, *args, **kwargs)
        except rasterio.errors.RasterioError as exc:
            uri = str(getattr(src, "uri", "") or "")
            if not uri or uri in str(exc):
                raise
            if "://" in uri:  # a remote address: no signature or password in the message
                from .http import redact

                uri = redact(uri)
            reason = str(exc).replace(" See previous exception for details.", "")  # GDAL's: none is shown
            raise rasterio.errors.RasterioIOError(
                f"{uri} (band {getattr(src, 'band', '?')}) could not be decoded: {reason}") from exc

    rio_read._names_files = True  # type: ignore[attr-defined]
    _rio.rio_read = rio_read
    return True


install()
