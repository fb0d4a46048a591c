"""Loopback HTTP servers that let the real clients (requests, pystac-client, GDAL /vsicurl/,
odc-stac) run against local data in tests, without the internet.

- :class:`RangeFileServer` serves files with HTTP Range support (what GDAL needs for COGs);
- :class:`StacApiServer` is a minimal STAC API (landing page, conformance, collections, search
  with token paging over GET and POST);
- :class:`EgressSink` answers every request (including proxy ``CONNECT``) with 403 and records it;
  ``tests/conftest.py`` points the proxy variables at it so native clients (GDAL/libcurl) that
  pytest-socket cannot see are stopped on the machine too;
- :class:`FaultPlan` injects deterministic failures (500, 503, reset, truncated body, slow).

All servers listen on 127.0.0.1 with an OS-chosen port, run ``serve_forever`` in a daemon
thread, and are context managers (``with RangeFileServer(root) as srv: srv.url``).

Only the standard library is needed, except :class:`StacApiServer`'s ``bbox``/``intersects``
filters, which import shapely when first used.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import json
import os
import random
import re
import socket
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

__all__ = [
    "EgressSink",
    "Fault",
    "FaultPlan",
    "GDAL_LOOPBACK_OPTIONS",
    "RangeFileServer",
    "RequestRecord",
    "StacApiServer",
]

#: GDAL options for reading COGs from a :class:`RangeFileServer` through ``/vsicurl/``:
#: no directory listing, no sidecar probing, parallel single-range requests.
GDAL_LOOPBACK_OPTIONS: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MULTIRANGE": "YES",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
}

_CHUNK = 64 * 1024
_instance_ids = itertools.count(1)


# --------------------------------------------------------------------------------------------
# Fault injection
# --------------------------------------------------------------------------------------------


class Fault(enum.Enum):
    """What a server does to one request."""

    NONE = "none"
    HTTP_500 = "http_500"
    HTTP_503 = "http_503"  #: 503 with ``Retry-After: 1``
    RESET = "reset"  #: close the socket with an RST, no answer
    TRUNCATE = "truncate"  #: full ``Content-Length`` header but only half of the body
    SLOW = "slow"  #: sleep ``FaultPlan.slow_ms`` then answer normally (not a failure)


FAILURES = frozenset({Fault.HTTP_500, Fault.HTTP_503, Fault.RESET, Fault.TRUNCATE})


@dataclass
class FaultPlan:
    """Deterministic per-request fault decisions.

    Request ``n`` (0-based, in arrival order over the server's lifetime) is decided by
    ``random.Random(f"{seed}:{n}")``, so a sequential client sees the same faults on every run.

    - the first ``fail_first`` requests always fail with a fault drawn from ``kinds``
      (e.g. ``FaultPlan(fraction=0, fail_first=2, kinds=(Fault.HTTP_503,))``);
    - after that a request gets a fault drawn from ``kinds`` with probability ``fraction``;
    - no path fails more than ``max_consecutive_failures_per_path`` times in a row (a retrying
      client always gets through); ``SLOW`` is not a failure and resets that count.
    """

    fraction: float = 1 / 3
    seed: int = 0
    kinds: Sequence[Fault] = (
        Fault.HTTP_500,
        Fault.HTTP_503,
        Fault.RESET,
        Fault.TRUNCATE,
        Fault.SLOW,
    )
    max_consecutive_failures_per_path: int = 2
    fail_first: int = 0
    slow_ms: int = 50
    retry_after_s: int = 1
    _consecutive: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"fraction must be in [0, 1], got {self.fraction}")
        if not self.kinds or Fault.NONE in self.kinds:
            raise ValueError("kinds must be non-empty and must not contain Fault.NONE")
        self.kinds = tuple(self.kinds)

    def decide(self, n: int, path: str) -> Fault:
        """Fault for request number ``n`` (0-based) to ``path``."""
        rng = random.Random(f"{self.seed}:{n}")
        with self._lock:
            if n < self.fail_first:
                fault = rng.choice(self.kinds)
            elif rng.random() < self.fraction:
                fault = rng.choice(self.kinds)
                if (
                    fault in FAILURES
                    and self._consecutive.get(path, 0) >= self.max_consecutive_failures_per_path
                ):
                    fault = Fault.NONE
            else:
                fault = Fault.NONE
            if fault in FAILURES:
                self._consecutive[path] = self._consecutive.get(path, 0) + 1
            else:
                self._consecutive[path] = 0
            return fault


# --------------------------------------------------------------------------------------------
# Common server machinery
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One request as seen by a server.

    ``path`` is relative to the server's ``url`` and starts with ``/`` (``/B04.tif``,
    ``/search``); ``target`` is the raw request target; ``bytes_sent`` counts body bytes only.
    """

    method: str
    path: str
    target: str
    range: str | None
    status: int  #: 0 when the connection was reset without an answer
    bytes_sent: int
    fault: Fault


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: _LoopbackServer


class _Handler(BaseHTTPRequestHandler):
    """Handler base: fault injection, body sending, request log. Subclasses implement
    ``route(method) -> _Response``."""

    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, like real object stores
    timeout = 15  # idle keep-alive connections end on their own
    server_version = "LoopbackTestServer/1"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle + delayed ACK add
        # ~40 ms to every keep-alive request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_CONNECT(self) -> None:
        self._dispatch("CONNECT")

    # -- internals ---------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _dispatch(self, method: str) -> None:
        owner = self.server.owner
        self.request_body = self._read_body() if method in ("POST", "PUT") else b""
        rel = owner._relative_path(self.path)
        n = owner._next_request_number()
        fault = owner.faults.decide(n, rel or self.path) if owner.faults else Fault.NONE
        rng = self.headers.get("Range")
        if fault is Fault.TRUNCATE and method == "HEAD":
            fault = Fault.RESET  # nothing to truncate
        if fault is Fault.SLOW:
            time.sleep(owner.faults.slow_ms / 1000 if owner.faults else 0)
        if fault is Fault.RESET:
            owner._record(RequestRecord(method, rel or "", self.path, rng, 0, 0, fault))
            self._reset()
            return
        if fault is Fault.HTTP_500:
            resp = _Response.error(HTTPStatus.INTERNAL_SERVER_ERROR, "injected fault")
        elif fault is Fault.HTTP_503:
            retry_after = owner.faults.retry_after_s if owner.faults else 1
            resp = _Response.error(HTTPStatus.SERVICE_UNAVAILABLE, "injected fault")
            resp.headers["Retry-After"] = str(retry_after)
        elif rel is None:
            resp = _Response.error(HTTPStatus.NOT_FOUND, "not under this server's url")
        else:
            try:
                resp = self.route(method, rel)
            except Exception as exc:  # a bug in a test server must not hang the client
                resp = _Response.error(
                    HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}"
                )
        # The record is written before the body, with the bytes about to be sent, so that a
        # client that has read the whole answer always finds it in the log.
        head, truncate = method == "HEAD", fault is Fault.TRUNCATE
        planned = 0 if head else (resp.length // 2 if truncate else resp.length)
        rec = RequestRecord(method, rel or "", self.path, rng, resp.status, planned, fault)
        owner._record(rec)
        sent = self._send(resp, head=head, truncate=truncate)
        if sent != planned:  # the client went away mid-body
            owner._replace(rec, dataclasses.replace(rec, bytes_sent=sent))

    def route(self, method: str, path: str) -> _Response:
        raise NotImplementedError

    def _reset(self) -> None:
        # SO_LINGER(on, 0) makes close() send an RST instead of a FIN: a "connection reset".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()  # really closed once rfile/wfile are closed in finish()

    def _send(self, resp: _Response, *, head: bool, truncate: bool) -> int:
        length = resp.length
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        if truncate or resp.status >= 500:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if head:
            return 0
        budget = length // 2 if truncate else length
        sent = 0
        try:
            for chunk in resp.iter_body():
                if sent >= budget:
                    break
                chunk = chunk[: budget - sent]
                self.wfile.write(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        return sent


@dataclass
class _Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    #: body parts: bytes, or (path, offset, length) read lazily in chunks
    parts: list[bytes | tuple[Path, int, int]] = field(default_factory=list)

    @property
    def length(self) -> int:
        return sum(len(p) if isinstance(p, bytes) else p[2] for p in self.parts)

    def iter_body(self) -> Iterator[bytes]:
        for part in self.parts:
            if isinstance(part, bytes):
                yield part
                continue
            path, offset, length = part
            with path.open("rb") as f:
                f.seek(offset)
                left = length
                while left > 0:
                    data = f.read(min(_CHUNK, left))
                    if not data:
                        return
                    left -= len(data)
                    yield data

    @classmethod
    def json(cls, obj: Any, status: int = 200, content_type: str = "application/json") -> _Response:
        body = json.dumps(obj, separators=(",", ":")).encode()
        return cls(int(status), {"Content-Type": content_type}, [body])

    @classmethod
    def error(cls, status: HTTPStatus, description: str) -> _Response:
        return cls.json({"code": status.phrase, "description": description}, status=status)


class _LoopbackServer:
    """Start/stop, url, request log and counters shared by all servers."""

    handler: ClassVar[type[_Handler]]

    def __init__(self, *, faults: FaultPlan | None = None, prefix: bool = True) -> None:
        self.faults = faults
        self._lock = threading.Lock()
        self._n = 0
        self._requests: list[RequestRecord] = []
        self._connections: set[socket.socket] = set()
        # A per-instance path prefix keeps every server's URLs unique in this process, so GDAL's
        # per-process /vsicurl/ cache never answers for a new server that reuses a port.
        self.prefix = f"/srv{os.getpid()}-{next(_instance_ids)}" if prefix else ""
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> _LoopbackServer:
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), self.handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}{self.prefix}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:  # end idle keep-alive connections so handler threads exit now
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:41234/srv123-4``."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    # -- stats -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    @property
    def bytes_sent(self) -> int:
        with self._lock:
            return sum(r.bytes_sent for r in self._requests)

    def requests_to(self, path: str, method: str | None = None) -> list[RequestRecord]:
        return [r for r in self.requests if r.path == path and method in (None, r.method)]

    def reset_stats(self) -> None:
        """Forget the request log (the fault counter keeps running)."""
        with self._lock:
            self._requests.clear()

    # -- used by the handler -----------------------------------------------------------------

    def _next_request_number(self) -> int:
        with self._lock:
            n, self._n = self._n, self._n + 1
            return n

    def _record(self, rec: RequestRecord) -> None:
        with self._lock:
            self._requests.append(rec)

    def _replace(self, old: RequestRecord, new: RequestRecord) -> None:
        with self._lock:
            for i in range(len(self._requests) - 1, -1, -1):
                if self._requests[i] is old:
                    self._requests[i] = new
                    return

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def _relative_path(self, target: str) -> str | None:
        """Decoded path after the prefix (starting with ``/``), or None if not under it."""
        path = unquote(urlsplit(target).path)
        if not self.prefix:
            return path or "/"
        if path == self.prefix:
            return "/"
        if path.startswith(self.prefix + "/"):
            return path[len(self.prefix) :]
        return None


# --------------------------------------------------------------------------------------------
# Range-capable static file server
# --------------------------------------------------------------------------------------------

_RANGE_RE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def parse_range(header: str, size: int) -> list[tuple[int, int]] | None:
    """Parse a ``Range`` header into satisfiable inclusive ``(first, last)`` byte ranges.

    Returns None when the header is not a valid bytes range (the server then ignores it and
    answers 200), and ``[]`` when it is valid but nothing is satisfiable (416).
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec.strip():
        return None
    out: list[tuple[int, int]] = []
    for item in spec.split(","):
        m = _RANGE_RE.match(item)
        if not m or (not m[1] and not m[2]):
            return None
        if not m[1]:  # suffix: last n bytes
            n = int(m[2])
            if n > 0 and size > 0:
                out.append((max(0, size - n), size - 1))
            continue
        first = int(m[1])
        if m[2] and int(m[2]) < first:
            return None
        last = int(m[2]) if m[2] else size - 1
        if first < size:
            out.append((first, min(last, size - 1)))
    return out


class _FileHandler(_Handler):
    def route(self, method: str, path: str) -> _Response:
        owner = self.server.owner
        assert isinstance(owner, RangeFileServer)
        if method not in ("GET", "HEAD"):
            return _Response.error(HTTPStatus.METHOD_NOT_ALLOWED, method)
        file = owner.resolve(path)
        if file is None:
            return _Response.error(HTTPStatus.NOT_FOUND, path)
        size = file.stat().st_size
        ctype = owner.content_type(file)
        base = {"Accept-Ranges": "bytes", "Content-Type": ctype}
        header = self.headers.get("Range")
        ranges = parse_range(header, size) if header else None
        if ranges is None:
            return _Response(200, base, [(file, 0, size)])
        if not ranges:
            resp = _Response.error(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, header or "")
            resp.headers.update({"Accept-Ranges": "bytes", "Content-Range": f"bytes */{size}"})
            return resp
        if len(ranges) == 1:
            a, b = ranges[0]
            return _Response(
                206, {**base, "Content-Range": f"bytes {a}-{b}/{size}"}, [(file, a, b - a + 1)]
            )
        boundary = f"loopback{self.server.owner.prefix.strip('/')}{len(ranges)}"
        parts: list[bytes | tuple[Path, int, int]] = []
        for a, b in ranges:
            head = (
                f"\r\n--{boundary}\r\nContent-Type: {ctype}\r\n"
                f"Content-Range: bytes {a}-{b}/{size}\r\n\r\n"
            )
            parts += [head.encode(), (file, a, b - a + 1)]
        parts.append(f"\r\n--{boundary}--\r\n".encode())
        ct = f"multipart/byteranges; boundary={boundary}"
        return _Response(206, {"Accept-Ranges": "bytes", "Content-Type": ct}, parts)


class RangeFileServer(_LoopbackServer):
    """Static files under ``root`` at ``{url}/{relative path}``, with HTTP Range support.

    - ``Range: bytes=a-b``, ``bytes=a-``, ``bytes=-n`` -> 206 + ``Content-Range``; several
      ranges -> 206 ``multipart/byteranges``; nothing satisfiable -> 416 ``bytes */size``;
      a malformed header is ignored (200, full body), as RFC 9110 allows;
    - ``HEAD``, ``Content-Length``, ``Accept-Ranges: bytes``;
    - paths that leave ``root`` (``..``, encoded or symlinked) and directories -> 404;
    - ``requests`` / ``bytes_sent`` / ``reset_stats()`` record every request;
    - ``faults`` injects failures (see :class:`FaultPlan`).
    """

    handler = _FileHandler

    def __init__(self, root: Path | str, *, faults: FaultPlan | None = None) -> None:
        super().__init__(faults=faults)
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise NotADirectoryError(self.root)

    def __enter__(self) -> RangeFileServer:
        self.start()
        return self

    def url_for(self, relpath: str | Path) -> str:
        return f"{self.url}/{Path(relpath).as_posix().lstrip('/')}"

    def resolve(self, path: str) -> Path | None:
        """File under root for a decoded URL path, or None (missing, directory, outside)."""
        if "\x00" in path:
            return None
        candidate = (self.root / path.lstrip("/")).resolve()
        if not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    @staticmethod
    def content_type(file: Path) -> str:
        return {
            ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
            ".tiff": "image/tiff; application=geotiff",
            ".json": "application/json",
            ".geojson": "application/geo+json",
            ".xml": "application/xml",
            ".jpg": "image/jpeg",
            ".png": "image/png",
        }.get(file.suffix.lower(), "application/octet-stream")


# --------------------------------------------------------------------------------------------
# Minimal STAC API
# --------------------------------------------------------------------------------------------

CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#query",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/collections",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]

_GEOJSON = "application/geo+json"
_QUERY_OPS = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "in": lambda a, b: a in b,
}


class BadRequest(ValueError):
    pass


def _parse_dt(text: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise BadRequest(f"bad datetime {text!r}") from exc
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _parse_interval(text: str) -> tuple[datetime | None, datetime | None]:
    """``a``, ``a/b``, ``../b``, ``a/..`` (or empty ends) -> (start, end), inclusive."""
    if "/" not in text:
        dt = _parse_dt(text)
        return dt, dt
    a, b = text.split("/", 1)
    start = None if a.strip() in ("", "..") else _parse_dt(a)
    end = None if b.strip() in ("", "..") else _parse_dt(b)
    if start is None and end is None:
        raise BadRequest("datetime interval open at both ends")
    if start and end and end < start:
        raise BadRequest("datetime interval end before start")
    return start, end


def _item_interval(item: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    props = item.get("properties", {})
    if props.get("datetime"):
        dt = _parse_dt(props["datetime"])
        return dt, dt
    s, e = props.get("start_datetime"), props.get("end_datetime")
    return (_parse_dt(s) if s else None, _parse_dt(e) if e else None)


def _csv(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v for v in (s.strip() for s in value.split(",")) if v]
    return [str(v) for v in value]


class _StacHandler(_Handler):
    def route(self, method: str, path: str) -> _Response:
        owner = self.server.owner
        assert isinstance(owner, StacApiServer)
        path = path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        try:
            if method == "POST" and path == "/search":
                try:
                    body = json.loads(self.request_body or b"{}")
                except json.JSONDecodeError as exc:
                    raise BadRequest(f"body is not JSON: {exc}") from exc
                if not isinstance(body, dict):
                    raise BadRequest("body must be a JSON object")
                return _Response.json(owner.search(body, method="POST"), content_type=_GEOJSON)
            if method not in ("GET", "HEAD"):
                return _Response.error(HTTPStatus.METHOD_NOT_ALLOWED, method)
            query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
            if path == "/":
                return _Response.json(owner.landing_page())
            if path == "/conformance":
                return _Response.json({"conformsTo": CONFORMANCE})
            if path == "/search":
                return _Response.json(owner.search(query, method="GET"), content_type=_GEOJSON)
            if parts[0] == "collections":
                if len(parts) == 1:
                    return _Response.json(owner.collections_page())
                coll = owner.collections.get(parts[1])
                if coll is None:
                    return _Response.error(HTTPStatus.NOT_FOUND, f"collection {parts[1]}")
                if len(parts) == 2:
                    return _Response.json(coll)
                if parts[2] == "items" and len(parts) == 3:
                    page = owner.search(
                        {**query, "collections": parts[1]}, method="GET", endpoint=path
                    )
                    return _Response.json(page, content_type=_GEOJSON)
                if parts[2] == "items" and len(parts) == 4:
                    for it in owner.items:
                        if it.get("collection") == parts[1] and it.get("id") == parts[3]:
                            return _Response.json(it, content_type=_GEOJSON)
            return _Response.error(HTTPStatus.NOT_FOUND, path)
        except BadRequest as exc:
            return _Response.error(HTTPStatus.BAD_REQUEST, str(exc))


class StacApiServer(_LoopbackServer):
    """Minimal STAC API over a fixed list of item dicts (served as given).

    ``GET /`` (landing page), ``/conformance``, ``/collections``, ``/collections/{id}``,
    ``/collections/{id}/items[/{itemId}]``, ``GET|POST /search`` with ``collections``,
    ``ids``, ``bbox``, ``intersects``, ``datetime`` (instant or interval, ``..`` open ends),
    ``query`` (``eq neq lt lte gt gte in``), ``limit`` (capped at ``page_size``) and token
    paging: the ``next`` link of a GET search carries every parameter in its href; that of a
    POST search carries ``method: POST`` and the whole ``body`` with the ``token``.
    Bad parameters -> 400 JSON. ``collections`` defaults to one minimal collection per
    ``item["collection"]``. ``faults`` as for :class:`RangeFileServer`.
    """

    handler = _StacHandler

    def __init__(
        self,
        items: Iterable[Mapping[str, Any]],
        *,
        page_size: int = 2,
        collections: Iterable[Mapping[str, Any]] | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        super().__init__(faults=faults)
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self.items: list[dict[str, Any]] = [dict(it) for it in items]
        self.page_size = page_size
        colls = (
            [dict(c) for c in collections]
            if collections is not None
            else self._default_collections()
        )
        self.collections: dict[str, dict[str, Any]] = {c["id"]: c for c in colls}

    def __enter__(self) -> StacApiServer:
        self.start()
        return self

    @property
    def search_requests(self) -> list[RequestRecord]:
        return self.requests_to("/search")

    def _default_collections(self) -> list[dict[str, Any]]:
        out = []
        ids = sorted({str(it["collection"]) for it in self.items if it.get("collection")})
        for cid in ids:
            members = [it for it in self.items if it.get("collection") == cid]
            bboxes = [it["bbox"] for it in members if it.get("bbox")]
            times = [t for it in members for t in _item_interval(it) if t is not None]
            bbox = (
                [
                    min(b[0] for b in bboxes),
                    min(b[1] for b in bboxes),
                    max(b[-2] for b in bboxes),
                    max(b[-1] for b in bboxes),
                ]
                if bboxes
                else [-180, -90, 180, 90]
            )
            interval = (
                [
                    min(times).isoformat().replace("+00:00", "Z"),
                    max(times).isoformat().replace("+00:00", "Z"),
                ]
                if times
                else [None, None]
            )
            out.append(
                {
                    "type": "Collection",
                    "stac_version": "1.0.0",
                    "id": cid,
                    "description": f"{cid} (loopback test collection)",
                    "license": "other",
                    "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [interval]}},
                    "links": [],
                }
            )
        return out

    # -- documents ---------------------------------------------------------------------------

    def landing_page(self) -> dict[str, Any]:
        u = self.url
        return {
            "type": "Catalog",
            "stac_version": "1.0.0",
            "id": "loopback-stac-api",
            "title": "Loopback STAC API (tests)",
            "description": "Minimal STAC API served by tests/servers.py",
            "conformsTo": CONFORMANCE,
            "links": [
                {"rel": "self", "href": f"{u}/", "type": "application/json"},
                {"rel": "root", "href": f"{u}/", "type": "application/json"},
                {"rel": "conformance", "href": f"{u}/conformance", "type": "application/json"},
                {"rel": "data", "href": f"{u}/collections", "type": "application/json"},
                {"rel": "search", "href": f"{u}/search", "type": _GEOJSON, "method": "GET"},
                {"rel": "search", "href": f"{u}/search", "type": _GEOJSON, "method": "POST"},
            ]
            + [
                {"rel": "child", "href": f"{u}/collections/{cid}", "type": "application/json"}
                for cid in self.collections
            ],
        }

    def collections_page(self) -> dict[str, Any]:
        u = self.url
        colls = []
        for cid, c in self.collections.items():
            links = [
                {"rel": "self", "href": f"{u}/collections/{cid}", "type": "application/json"},
                {"rel": "root", "href": f"{u}/", "type": "application/json"},
                {"rel": "parent", "href": f"{u}/", "type": "application/json"},
                {"rel": "items", "href": f"{u}/collections/{cid}/items", "type": _GEOJSON},
            ]
            colls.append({**c, "links": links})
        return {
            "collections": colls,
            "links": [
                {"rel": "self", "href": f"{u}/collections", "type": "application/json"},
                {"rel": "root", "href": f"{u}/", "type": "application/json"},
            ],
        }

    # -- search ------------------------------------------------------------------------------

    def matching(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Items matching search ``params`` (GET strings or POST JSON values), in order."""
        items = self.items
        if params.get("collections"):
            wanted = set(_csv(params["collections"]))
            items = [it for it in items if it.get("collection") in wanted]
        if params.get("ids"):
            wanted = set(_csv(params["ids"]))
            items = [it for it in items if it.get("id") in wanted]
        if params.get("bbox") and params.get("intersects"):
            raise BadRequest("bbox and intersects are mutually exclusive")
        if params.get("bbox") or params.get("intersects"):
            import shapely.geometry

            if params.get("bbox"):
                try:
                    b = [float(v) for v in _csv(params["bbox"])]
                except ValueError as exc:
                    raise BadRequest(f"bad bbox {params['bbox']!r}") from exc
                if len(b) not in (4, 6):
                    raise BadRequest("bbox needs 4 or 6 numbers")
                area = shapely.geometry.box(b[0], b[1], b[len(b) // 2], b[len(b) // 2 + 1])
            else:
                geo = params["intersects"]
                try:
                    area = shapely.geometry.shape(json.loads(geo) if isinstance(geo, str) else geo)
                except Exception as exc:
                    raise BadRequest(f"bad intersects: {exc}") from exc

            def _geom(it: Mapping[str, Any]) -> Any:
                if it.get("geometry"):
                    return shapely.geometry.shape(it["geometry"])
                if it.get("bbox"):
                    bb = it["bbox"]
                    return shapely.geometry.box(bb[0], bb[1], bb[-2], bb[-1])
                return None

            items = [it for it in items if (g := _geom(it)) is not None and g.intersects(area)]
        if params.get("datetime"):
            start, end = _parse_interval(str(params["datetime"]))

            def _overlaps(it: Mapping[str, Any]) -> bool:
                s, e = _item_interval(it)
                if s is None and e is None:
                    return False
                return (end is None or s is None or s <= end) and (
                    start is None or e is None or e >= start
                )

            items = [it for it in items if _overlaps(it)]
        if params.get("query"):
            q = params["query"]
            if isinstance(q, str):
                try:
                    q = json.loads(q)
                except json.JSONDecodeError as exc:
                    raise BadRequest(f"query is not JSON: {exc}") from exc
            if not isinstance(q, dict):
                raise BadRequest("query must be an object")
            for prop, ops in q.items():
                if not isinstance(ops, dict):
                    raise BadRequest(f"query for {prop} must be an object")
                for op, value in ops.items():
                    if op not in _QUERY_OPS:
                        raise BadRequest(f"unsupported query operator {op!r}")
                    fn = _QUERY_OPS[op]
                    items = [
                        it
                        for it in items
                        if (v := it.get("properties", {}).get(prop)) is not None and fn(v, value)
                    ]
        return items

    def search(
        self, params: Mapping[str, Any], *, method: str, endpoint: str = "/search"
    ) -> dict[str, Any]:
        params = dict(params)
        token = params.pop("token", None)
        try:
            offset = int(str(token).removeprefix("next:")) if token else 0
            limit = int(params.get("limit") or self.page_size)
        except ValueError as exc:
            raise BadRequest(f"bad token or limit: {exc}") from exc
        if limit < 1 or offset < 0:
            raise BadRequest("limit must be >= 1")
        limit = min(limit, self.page_size)
        matched = self.matching(params)
        page = matched[offset : offset + limit]
        href = f"{self.url}{endpoint}"
        links: list[dict[str, Any]] = [
            {"rel": "root", "href": f"{self.url}/", "type": "application/json"}
        ]
        if offset + limit < len(matched):
            nxt = f"next:{offset + limit}"
            if method == "POST":
                links.append(
                    {
                        "rel": "next",
                        "href": href,
                        "type": _GEOJSON,
                        "method": "POST",
                        "body": {**params, "token": nxt},
                        "merge": False,
                    }
                )
            else:
                qs = urlencode({**{k: str(v) for k, v in params.items()}, "token": nxt})
                links.append({"rel": "next", "href": f"{href}?{qs}", "type": _GEOJSON})
        return {
            "type": "FeatureCollection",
            "features": page,
            "numberMatched": len(matched),
            "numberReturned": len(page),
            "links": links,
        }


# --------------------------------------------------------------------------------------------
# Egress sink
# --------------------------------------------------------------------------------------------


class _SinkHandler(_Handler):
    def route(self, method: str, path: str) -> _Response:
        return _Response.error(
            HTTPStatus.FORBIDDEN,
            "tests must not reach the internet: request caught by tests/servers.py EgressSink",
        )


class EgressSink(_LoopbackServer):
    """Answers every request, including proxy ``CONNECT``, with 403 and records it.

    Used as ``http_proxy``/``https_proxy`` during tests: GDAL/libcurl (and any subprocess)
    ignore pytest-socket, but honour these variables, so an escaped request lands here.
    ``RequestRecord.target`` holds the absolute URL (or ``host:port`` for CONNECT).
    """

    handler = _SinkHandler

    def __init__(self) -> None:
        super().__init__(prefix=False)

    def __enter__(self) -> EgressSink:
        self.start()
        return self

    def _relative_path(self, target: str) -> str | None:
        return target
