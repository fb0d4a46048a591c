"""EDGE: one retry policy for every network call the pipeline makes.

:func:`make_session` returns a :class:`requests.Session` whose every request
(``get``, ``post``, pystac-client's ``send``) is retried with exponential back-off
and full jitter on

- HTTP 429 and 5xx answers (``Retry-After`` honoured, capped),
- timeouts and connection errors (refused, reset),
- truncated bodies (fewer bytes than ``Content-Length``: urllib3 raises
  ``IncompleteRead``, requests a ``ChunkedEncodingError``).

The same :class:`RetryPolicy` drives :func:`call_with_retries`, which
:mod:`pipeline.cache` wraps around GDAL window reads, so HTTP and GDAL failures
back off the same way.

Credentials never reach a log line or an exception message from here:
:func:`redact` strips query strings (SAS tokens, presigned signatures) and user
info from URLs before they are printed.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

__all__ = [
    "RETRY_STATUSES",
    "RedactCredentials",
    "RetryPolicy",
    "RetryingSession",
    "TransientError",
    "call_with_retries",
    "describe_error",
    "install_log_redaction",
    "make_session",
    "parse_retry_after",
    "redact",
    "redact_credentials",
    "scrub",
    "strip_userinfo",
]

log = logging.getLogger("pipeline.http")

#: Statuses worth retrying: rate limiting and server-side failures.
RETRY_STATUSES: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "kp-monitor-pipeline/0.1 (+Kimberley Process WGM)"

T = TypeVar("T")

#: requests exceptions worth retrying: refused/reset connections, timeouts, and truncated or
#: undecodable bodies (``IncompleteRead`` surfaces as ``ChunkedEncodingError``).
_TRANSIENT_EXCEPTIONS: tuple[type[Exception], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class TransientError(Exception):
    """A failure worth retrying; ``retry_after_s`` when the server said how long to wait."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed request is tried again.

    The wait before retry ``n`` (1-based) is drawn uniformly from
    ``[0, min(backoff_max_s, backoff_s * 2 ** (n - 1))]`` ("full jitter", AWS
    architecture blog, 2015), so many clients failing together do not retry in
    lock-step. A ``Retry-After`` answer replaces the draw (capped at
    ``retry_after_max_s``).
    """

    max_retries: int = 5
    """Retries after the first attempt (0: try once)."""
    backoff_s: float = 0.5
    """Base of the exponential back-off, seconds."""
    backoff_max_s: float = 30.0
    """Upper bound of one back-off wait, seconds."""
    retry_after_max_s: float = 120.0
    """Longest ``Retry-After`` obeyed, seconds; longer requests are capped."""
    timeout_s: float = 30.0
    """Connect and read timeout of one attempt, seconds."""
    statuses: frozenset[int] = RETRY_STATUSES
    """HTTP statuses retried."""
    seed: int | None = None
    """Seed for the jitter (tests); ``None``: system entropy."""
    _rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._rng.seed(self.seed)

    def wait_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if retry_after_s is not None:
            return max(0.0, min(retry_after_s, self.retry_after_max_s))
        cap = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
        return self._rng.uniform(0, cap)


def make_session(
    policy: RetryPolicy | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RetryingSession:
    """A :class:`requests.Session` that retries every request under ``policy``.

    Parameters
    ----------
    policy
        Retry policy; default :class:`RetryPolicy()`.
    headers
        Extra default headers (never put secrets in logs: this module does not log headers).
    sleep
        Sleep function (tests pass a recorder).
    """
    session = RetryingSession(policy or RetryPolicy(), sleep=sleep)
    session.headers["User-Agent"] = USER_AGENT
    if headers:
        session.headers.update(headers)
    return session


class RetryingSession(requests.Session):
    """``requests.Session`` with :class:`RetryPolicy` applied in :meth:`send`.

    ``send`` is the one method every request goes through (``get``, ``post``,
    pystac-client's ``StacApiIO.request``, redirects). A non-streamed answer is
    read inside ``send``, so a truncated body is caught and retried here too;
    streamed downloads are resumed by their caller (see
    :func:`pipeline.providers.cdse.download_product`).
    """

    def __init__(self, policy: RetryPolicy, *, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        self.policy = policy
        self._sleep = sleep
        # urllib3's own retries stay off: this class decides, with one policy.
        adapter = HTTPAdapter(max_retries=0, pool_connections=8, pool_maxsize=16)
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self.retries_done = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.policy.timeout_s)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.policy.timeout_s
        attempt = 0
        while True:
            try:
                resp = super().send(request, **kwargs)
            except _TRANSIENT_EXCEPTIONS as exc:
                err: Exception = exc
                retry_after: float | None = None
            else:
                if resp.status_code not in self.policy.statuses:
                    return resp
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                err = requests.HTTPError(f"HTTP {resp.status_code}", response=resp)
                if attempt >= self.policy.max_retries:
                    return resp  # the caller sees the status and decides
                resp.close()
            if attempt >= self.policy.max_retries:
                raise err
            attempt += 1
            self.retries_done += 1
            wait = self.policy.wait_s(attempt, retry_after)
            log.info("retry %d/%d of %s %s in %.2f s: %s", attempt, self.policy.max_retries,
                     request.method, redact(request.url or ""), wait, describe_error(err))
            self._sleep(wait)
            if request.body is not None and hasattr(request.body, "seek"):
                request.body.seek(0)


def call_with_retries(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    retry_on: tuple[type[BaseException], ...],
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> T:
    """Call ``fn()`` until it succeeds, retrying ``retry_on`` exceptions under ``policy``.

    ``what`` names the operation in log lines (it must not contain secrets; pass a
    :func:`redact`-ed URL). A :class:`TransientError` carrying ``retry_after_s``
    waits that long instead of the jittered back-off. The last exception propagates.
    """
    attempt = 0
    while True:
        try:
            return fn()
        except retry_on as exc:
            if attempt >= policy.max_retries:
                raise
            attempt += 1
            wait = policy.wait_s(attempt, getattr(exc, "retry_after_s", None))
            log.info("retry %d/%d of %s in %.2f s: %s", attempt, policy.max_retries, what, wait, describe_error(exc))
            if on_retry is not None:
                on_retry(attempt, exc)
            sleep(wait)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def redact(url: str) -> str:
    """``url`` without query string, fragment or user info: safe to log and to print.

    Examples
    --------
    >>> redact("https://user:pw@host.example/a/b.tif?sv=2024&sig=SECRET")
    'https://host.example/a/b.tif'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if not parts.scheme:
        return url.split("?", 1)[0]
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every non-empty secret in ``text`` by ``***`` (last line of defence)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


_SOCKET_REASON = re.compile(r"\[Errno -?\d+\] [^'\"()\]]+")


def describe_error(exc: BaseException) -> str:
    """One line naming the failure, without URLs' query strings (safe to log and raise)."""
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    text = " ".join(str(exc).split())
    # A refused or unresolvable connection: urllib3 wraps the socket's reason in three reprs;
    # the reason is what a reader needs ("[Errno 111] Connection refused").
    reason = _SOCKET_REASON.search(text) if isinstance(exc, requests.ConnectionError) else None
    if reason:
        return f"{type(exc).__name__}: {reason.group(0).rstrip('.')}"
    # requests' messages repeat the URL (with its query string): keep the class and a gist.
    if "?" in text:
        text = text.split("?", 1)[0] + "?<redacted>"
    return f"{type(exc).__name__}: {text[:160]}"


_QUERY_IN_URL = re.compile(r"((?:https?|s3|gs|az)://[^\s?'\"<>]+)\?[^\s'\"<>]*")


class RedactQueryStrings(logging.Filter):
    """Rewrites log records so that no URL keeps its query string (SAS tokens, signatures)
    or its user info (``user:password@``).

    GDAL reports HTTP errors with the full URL ("HTTP error code: 500 - https://...?sig=..."),
    and rasterio forwards them to Python logging at WARNING level.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        if "://" in message and ("?" in message or "@" in message):
            record.msg, record.args = RedactCredentials.scrub(message), None
        return True


#: ``scheme://user:password@`` in any URL: the user info goes, the rest of the URL stays.
_USERINFO_IN_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"<>]+@")


def strip_userinfo(text: str) -> str:
    """``text`` with ``user:password@`` removed from every URL in it.

    Examples
    --------
    >>> strip_userinfo("source https://analyst:s3cret@stac.example/v1 (and s3://k@bucket/x)")
    'source https://stac.example/v1 (and s3://bucket/x)'
    """
    return _USERINFO_IN_URL.sub(r"\1", text) if "@" in text else text


def redact_credentials(obj: Any) -> Any:
    """A copy of a JSON-like structure (dicts, lists, strings...) with the user info removed
    from every URL in every string (:func:`strip_userinfo`): what the manifest and the
    bulletin's data are written from, so that ``--source https://user:password@host/``
    reaches no output file."""
    if isinstance(obj, str):
        return strip_userinfo(obj)
    if isinstance(obj, dict):
        return {k: redact_credentials(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_credentials(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(redact_credentials(v) for v in obj)
    return obj


class RedactCredentials(logging.Filter):
    """Handler filter for the run log and the console: no URL keeps its user info
    (``https://user:password@host``) or its query string (signatures, SAS tokens).

    On the handlers, not the loggers, so it sees every record the handler writes,
    whichever logger it came from (the pipeline logs the source URL as given).
    """

    @staticmethod
    def scrub(text: str) -> str:
        text = strip_userinfo(text)
        if "://" in text and "?" in text:
            text = _QUERY_IN_URL.sub(r"\1?<redacted>", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        if "://" in message:
            clean = self.scrub(message)
            if clean != message:
                record.msg, record.args = clean, None
        return True


_REDACTING_LOGGERS = ("rasterio", "rasterio._env", "rasterio._err", "rasterio._base", "rasterio._io",
                      "rasterio.env", "rasterio._filepath", "urllib3.connectionpool", "sentinelsat",
                      "pystac_client", "odc.loader", "odc.stac")
_FILTER = RedactQueryStrings()


def install_log_redaction() -> None:
    """Attach :class:`RedactQueryStrings` to the loggers of the libraries that print URLs.

    Idempotent. Logger filters see only records logged to that exact logger, hence the list.
    """
    for name in _REDACTING_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)

