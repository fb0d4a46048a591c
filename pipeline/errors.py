"""Exceptions and warnings raised on purpose by :mod:`pipeline`.

One root (:class:`MonitorError`) so that ``run.py`` can catch every error the
package raises deliberately, record it per AOI and carry on; builtin co-parents
(``ValueError``, ``OSError``) so that callers who do not know this package can
still catch them sensibly (as ``rasterio.errors.RasterioIOError`` does).

Every message is one line that names the file, field or item at fault and says
how to fix it.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Root: every error this package raises on purpose."""


class ConfigError(MonitorError, ValueError):
    """A configuration file or command-line value is invalid."""


class AOIError(MonitorError, ValueError):
    """An area-of-interest file is invalid (geometry, CRS, properties, size)."""


class SearchError(MonitorError):
    """A STAC search failed (endpoint unreachable, bad answer)."""

    @classmethod
    def from_exception(cls, endpoint: str, exc: BaseException) -> SearchError:
        """Wrap a client exception into a one-line message naming the endpoint."""
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return cls(f"cannot reach imagery source {endpoint}: {reason[:200]}")


class NoScenesError(SearchError):
    """A search returned no items for an AOI and period."""


class NoCollectionError(NoScenesError):
    """A static catalog has no collection of the configured id and its other items do not
    serve (:func:`pipeline.providers.static._no_collection_message`): the configuration's
    collection is at fault, not the AOI or the period."""


class DownloadError(MonitorError, OSError):
    """Reading an asset failed after retries; keeps the cause in ``__cause__``."""


class ChecksumError(DownloadError):
    """A downloaded product does not match the checksum the catalogue publishes."""


class InputDataError(MonitorError, ValueError):
    """Base for bad arrays or frames handed to a stage function."""


class MissingDimensionError(InputDataError):
    """An array lacks a dimension the stage needs (``time``, ``y``, ``x``)."""


class MissingBandError(InputDataError):
    """A band the stage needs is not in the dataset or the item."""


class CRSMismatchError(InputDataError):
    """Two inputs are on different coordinate reference systems."""


class NoValidPixelsError(InputDataError):
    """Every observation in a period is masked (all cloud or nodata)."""


class UnsafeArchiveError(InputDataError):
    """An archive member would escape the target folder, or the archive is not sane."""


class DeclaredStatsError(MonitorError, ValueError):
    """A declared-production table is malformed."""


class ResourcesError(MonitorError):
    """The workers running an AOI died (memory, or killed): resources, not a bug."""


#: The kinds of an AOI's failure (:func:`failure_kind`): what the bulletin tells its reader,
#: in words it can translate, while ``manifest.json`` and ``run.log`` keep the message itself
#: (paths, items, the fix), which is the operator's.
FAILURE_KINDS: tuple[str, ...] = (
    "no_imagery", "search_failed", "imagery_unreadable", "no_clear_observation", "input_data", "resources",
    "failed",
)


def unreadable_imagery(exc: BaseException) -> bool:
    """Whether ``exc`` says an image could not be decoded (rasterio's ``RasterioIOError``), also
    as ``distributed`` hands it back from a worker: a plain ``Exception`` whose message is the
    original's repr (an outside tester's corrupt file, which passed the window cache's checks,
    ended the whole run with "internal error; this is a bug").

    >>> unreadable_imagery(Exception("RasterioIOError('x.tif' not recognized)")), unreadable_imagery(Exception("x"))
    (True, False)
    """
    import rasterio.errors

    if isinstance(exc, rasterio.errors.RasterioIOError):
        return True
    return type(exc) is Exception and str(exc).startswith("RasterioIOError(")


def unreadable_imagery_message(exc: BaseException) -> str:
    """The failed AOI's line for an :func:`unreadable_imagery` error: its message (not the repr
    ``distributed`` hands back), which names the file (:mod:`pipeline.read_errors`), and the fix.

    >>> unreadable_imagery_message(Exception("RasterioIOError('b.tif (band 1) could not be decoded')"))[:63]
    'reading imagery failed: b.tif (band 1) could not be decoded; re'
    """
    return (f"reading imagery failed: {unreadable_imagery_text(exc)[:300]}; restore or re-fetch the file named (a "
            "cached window: `cache clear`)")


def unreadable_imagery_text(exc: BaseException) -> str:
    """The message of an :func:`unreadable_imagery` error on one line, without the repr
    ``distributed`` wraps it in.

    >>> unreadable_imagery_text(Exception("RasterioIOError('b.tif (band 1) could not be decoded')"))
    'b.tif (band 1) could not be decoded'
    """
    text = " ".join(str(exc).split())
    if type(exc) is Exception and text.startswith("RasterioIOError(") and text.endswith(")"):
        text = text.removeprefix("RasterioIOError(").removesuffix(")").strip("'\"")
    return text


def failure_kind(exc: BaseException) -> str:
    """The kind (:data:`FAILURE_KINDS`) of the error that failed an AOI.

    >>> failure_kind(NoScenesError("x")), failure_kind(OSError("x"))
    ('no_imagery', 'failed')
    """
    import rasterio.errors

    kinds: tuple[tuple[type[BaseException], str], ...] = (
        (NoScenesError, "no_imagery"), (SearchError, "search_failed"), (DownloadError, "imagery_unreadable"),
        (rasterio.errors.RasterioIOError, "imagery_unreadable"), (NoValidPixelsError, "no_clear_observation"),
        (InputDataError, "input_data"), (AOIError, "input_data"), (ConfigError, "input_data"),
        (ResourcesError, "resources"),
    )
    if unreadable_imagery(exc):
        return "imagery_unreadable"
    return next((kind for cls, kind in kinds if isinstance(exc, cls)), "failed")


class MonitorWarning(UserWarning):
    """Root of the warnings this package emits."""


class StaleStatisticsWarning(MonitorWarning):
    """Declared statistics do not cover the monitoring period."""
