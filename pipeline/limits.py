"""Defensive limits on input files and values that could exhaust memory or recursion.

Every input file is untrusted: a config, an AOI, a statistics table or a STAC document may
be huge, deeply nested, binary, or in the wrong encoding. These helpers read such files
within fixed limits and turn every way they can fail into one :class:`~pipeline.errors.MonitorError`
line naming the file and the fix, before any parser can run out of memory or stack.

The limits (module constants) are far above any legitimate input: the shipped config is
about 6 KB with nesting depth 3, the shipped AOI files are under 5 KB with 5-20 vertices,
the statistics tables under 40 KB, a STAC item under 20 KB.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, MonitorError

__all__ = [
    "GDAL_SIZE_OPTIONS",
    "MAX_AOI_BYTES",
    "MAX_AOI_VERTICES",
    "MAX_CONFIG_BYTES",
    "MAX_JSON_BYTES",
    "MAX_NESTING",
    "MAX_TABLE_BYTES",
    "check_gdal_options",
    "check_memory_limit",
    "check_scheduler_address",
    "load_json",
    "load_yaml",
    "read_text",
]

#: Largest config file accepted (bytes).
MAX_CONFIG_BYTES = 1 << 20
#: Largest AOI GeoJSON file accepted (bytes).
MAX_AOI_BYTES = 16 << 20
#: Largest STAC catalog, collection or item JSON read from a static catalog (bytes).
MAX_JSON_BYTES = 16 << 20
#: Largest statistics / windows CSV accepted (bytes): tens of thousands of rows.
MAX_TABLE_BYTES = 2 << 20
#: Deepest nesting of mappings and lists in a config (YAML).
MAX_NESTING = 64
#: Most aliases (``*name``) a config may use: YAML anchors let a few lines expand into
#: billions of nodes ("billion laughs"); a config has no need of them.
MAX_YAML_ALIASES = 0
#: Most vertices in one AOI feature (all rings). Drawn AOIs have tens to hundreds; the
#: UTM reprojection, densification and rasterisation of each AOI scale with this.
MAX_AOI_VERTICES = 20_000
#: GDAL options whose value is a memory or buffer size, with the unit a bare number is in
#: (GDAL_CACHEMAX: a whole number, megabytes below 100000, else bytes; the others: bytes,
#: or with a unit), and the retry count.
GDAL_SIZE_OPTIONS: dict[str, str] = {
    "GDAL_CACHEMAX": "MB_or_bytes",
    "VSI_CACHE_SIZE": "bytes",
    "CPL_VSIL_CURL_CACHE_SIZE": "bytes",
    "CPL_VSIL_CURL_CHUNK_SIZE": "bytes",
    "GDAL_SWATH_SIZE": "bytes",
    "GDAL_HTTP_MAX_RETRY": "count",
}
#: Longest GDAL option value accepted (characters).
MAX_GDAL_VALUE_CHARS = 4096
_GDAL_KEY = re.compile(r"^[A-Z][A-Z0-9_]{1,99}$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_ADDRESS = re.compile(r"^(?:(tcp|tls|ucx|inproc|ws|wss)://)?\[?[A-Za-z0-9_.:-]+\]?:\d{1,5}/?$|^inproc://\S+$")


def special_file(path: Path) -> bool:
    """``path`` exists and is neither a regular file nor a folder: a named pipe, which would block
    the command until someone wrote to it, or a device. File options refuse it."""
    return path.exists() and not path.is_file() and not path.is_dir()


def read_text(
    path: Path, *, what: str, max_bytes: int, fix: str, error: type[MonitorError] = ConfigError
) -> str:
    """Read ``path`` as UTF-8 text (a BOM is allowed) within ``max_bytes``.

    Raises
    ------
    MonitorError
        (``error``, a :class:`ConfigError` by default) Missing, a folder, not a regular file
        (a named pipe, a device), unreadable, too large, not UTF-8 text (binary or Latin-1), or
        holding NUL bytes: one line naming ``what`` and ``path``.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise error(f"cannot read {what} {path}: it does not exist; {fix}") from None
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise error(f"{what} {path} is a folder, not a file; {fix}")
    if special_file(path):
        raise error(f"{what} {path} is not a regular file (a pipe or a device); {fix}")
    if size > max_bytes:
        raise error(
            f"{what} {path} is larger than {_mib(max_bytes)} ({_mib(size)}); is it the right file? {fix}"
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(
            f"{what} {path} is not UTF-8 text (byte {exc.start}: {exc.reason}; binary, or saved as "
            f"Latin-1 / Windows-1252?); save it as UTF-8"
        ) from None
    if "\x00" in text:
        raise error(f"{what} {path} holds NUL bytes (a binary file?); {fix}")
    return text


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key repeated in one mapping (PyYAML keeps the last
    silently: a second ``bulletin:`` section would replace the first whole, its
    ``demonstration: true`` with it) and reports an impossible date (``2024-02-30``) at its line."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Keys are compared as Python will hold them: 'on' and 'true', or '1' and 'true', are one
        # key of the dict (True == 1), so the second would replace the first as a repeat does.
        seen: dict[Any, str] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # a list or mapping as a key: SafeLoader refuses it ("unhashable key"); '<<' merges
            key = self.construct_object(key_node)
            try:
                first = seen.get(key)
            except TypeError:  # not hashable: left to SafeLoader's own error
                continue
            if first is not None:
                what = (f"key {first!r} appears twice in the same mapping" if first == key_node.value else
                        f"key {key_node.value!r} repeats key {first!r} of the same mapping (YAML reads both as "
                        "the same key)")
                raise yaml.constructor.ConstructorError(
                    None, None, f"{what}; YAML keeps only the last, silently: merge the two into one",
                    key_node.start_mark)
            seen[key] = key_node.value
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r} is not a date ({exc}); write a real date as YYYY-MM-DD",
                node.start_mark) from None


# SafeLoader registered the base class's function for timestamps; maps already reach the
# override above through construct_yaml_map's call of self.construct_mapping.
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _StrictLoader.construct_yaml_timestamp)


def load_yaml(text: str, *, path: Path) -> Any:
    """``yaml.safe_load`` within :data:`MAX_NESTING` levels, without aliases, with no key
    repeated in a mapping and no impossible date.

    The structure is checked on the parser's event stream first (iterative, constant
    stack), so a document nested 100 000 levels deep is refused before the recursive
    composer sees it.

    Raises
    ------
    ConfigError
        Too deeply nested, an alias, a repeated key, an impossible date, or a YAML syntax
        error (with its line).
    """
    depth = aliases = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_NESTING:
                    line = event.start_mark.line + 1 if event.start_mark else "?"
                    raise ConfigError(
                        f"{path} line {line}: mappings and lists nested more than {MAX_NESTING} levels "
                        "deep; a config needs 3 (section, key, list)"
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_YAML_ALIASES:
                    line = event.start_mark.line + 1 if event.start_mark else "?"
                    raise ConfigError(
                        f"{path} line {line}: YAML alias *{event.anchor} is not supported in a config "
                        "(aliases can expand a few lines into billions of values); write the value out"
                    )
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        fix = "" if isinstance(exc, yaml.constructor.ConstructorError) else "; fix the YAML syntax"
        raise ConfigError(f"{path}{where}: {problem}{fix}") from None
    except RecursionError:  # belt and braces: the event check above should prevent it
        raise ConfigError(f"{path}: nested too deeply to parse; a config needs 3 levels") from None


class _RepeatedKey(Exception):
    """A JSON object names a key twice (:func:`load_json` with ``unique_keys``)."""


def load_json(
    text: str, *, path: Path, what: str, error: type[MonitorError] = ConfigError, allow_nan: bool = False,
    unique_keys: bool = False, fix: str = "fix the syntax",
) -> Any:
    """``json.loads`` that turns every failure into one ``error`` line naming ``what`` and ``path``.

    NaN and Infinity (which Python's ``json`` accepts but JSON does not have) are refused
    unless ``allow_nan`` (the caller then checks its numbers, naming the field); a document
    nested deeper than the interpreter's recursion limit (a few thousand levels) is refused
    instead of crashing the decoder. ``unique_keys``: an object naming a key twice is refused
    (Python keeps the last silently; a file an analyst edits by hand, where the first may be
    the one meant, as a repeated YAML key is refused in the config). ``fix``: the advice on
    invalid JSON (a file the pipeline wrote is restored, not edited).
    """

    def constant(name: str) -> Any:
        if allow_nan:
            return float(name)
        raise ValueError(f"{name} is not a JSON number")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise _RepeatedKey(key)
            out[key] = value
        return out

    try:
        return json.loads(text, parse_constant=constant, object_pairs_hook=pairs if unique_keys else None)
    except json.JSONDecodeError as exc:
        raise error(
            f"{what} {path} is not valid JSON (line {exc.lineno} column {exc.colno}: {exc.msg}); {fix}"
        ) from None
    except _RepeatedKey as exc:
        raise error(f"{what} {path}: key {exc.args[0]!r} appears twice in one object; keep the one meant") from None
    except RecursionError:
        raise error(f"{what} {path} nests arrays or objects thousands of levels deep; is it the right file?") from None
    except ValueError as exc:
        raise error(f"{what} {path}: {exc}; use finite numbers") from None


def check_gdal_options(pairs: Mapping[str, Any]) -> dict[str, str]:
    """Validate the ``gdal`` config section; return it as ``{NAME: text}``.

    Names must look like GDAL configuration options (``GDAL_CACHEMAX``: capitals, digits
    and ``_``); values must be scalars (text, number, boolean) of at most
    :data:`MAX_GDAL_VALUE_CHARS` characters without control characters; the sizes in
    :data:`GDAL_SIZE_OPTIONS` must be non-negative and at most this machine's physical
    memory (GDAL allocates them).

    Raises
    ------
    ValueError
        One line naming ``gdal.NAME`` (the config loader adds the file).

    Examples
    --------
    >>> check_gdal_options({"GDAL_CACHEMAX": 256, "VSI_CACHE": True})
    {'GDAL_CACHEMAX': '256', 'VSI_CACHE': 'YES'}
    """
    out: dict[str, str] = {}
    for key, value in pairs.items():
        name = str(key)
        if not _GDAL_KEY.fullmatch(name):
            raise ValueError(
                f"gdal: {name[:60]!r} is not a GDAL configuration option name (capitals, digits and _, "
                "e.g. GDAL_HTTP_TIMEOUT); see https://gdal.org/user/configoptions.html"
            )
        where = f"gdal.{name}"
        if isinstance(value, bool):
            text = "YES" if value else "NO"
        elif isinstance(value, int | float | str):
            text = str(value)
        else:
            raise ValueError(f"{where}: must be text, a number or true/false, not a {type(value).__name__}")
        if len(text) > MAX_GDAL_VALUE_CHARS:
            raise ValueError(f"{where}: value of {len(text):,} characters (at most {MAX_GDAL_VALUE_CHARS})")
        if any(ord(c) < 32 for c in text):
            raise ValueError(f"{where}: value holds control characters (NUL, newline); remove them")
        if name in GDAL_SIZE_OPTIONS:
            _check_gdal_size(where, text, GDAL_SIZE_OPTIONS[name])
        out[name] = text
    return out


def check_memory_limit(value: Any) -> Any:
    """Validate ``dask.memory_limit`` as ``distributed`` reads it; return it unchanged.

    Accepted: ``auto``, ``null`` / ``0`` (no limit), a fraction of the machine's memory in
    (0, 1], a number of bytes, or a size with a unit (``4GiB``, ``500 MB``); a size at least
    :data:`MIN_WORKER_MEMORY` (a worker below it is killed as soon as it imports its modules).

    Raises
    ------
    ValueError
        Anything else (``lots``, ``-4GiB``, ``1MiB``), with the accepted forms.
    """
    fix = "use auto, a fraction such as 0.5, or a size such as 4GiB"
    if value is None or value == "auto":
        return value
    if isinstance(value, bool):
        raise ValueError(f"must be a memory size, not {value}; {fix}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value!r} is not a memory size; {fix}")
        if value > 1:
            _at_least_min(value, value, fix)
        return value
    from dask.utils import parse_bytes

    try:
        size = parse_bytes(str(value))
    except (ValueError, TypeError):
        raise ValueError(f"{str(value)[:40]!r} is not a memory size; {fix}") from None
    if size < 0:
        raise ValueError(f"{value!r} is negative; {fix}")
    if size > 0:
        _at_least_min(size, value, fix)
    return value


#: Smallest worker memory limit accepted: a worker's interpreter with the task modules imported
#: holds about 250 MB before it runs anything.
MIN_WORKER_MEMORY = 512 * 2**20


def _at_least_min(size: float, value: Any, fix: str) -> None:
    if size < MIN_WORKER_MEMORY:
        raise ValueError(f"{value!r} is too little for a worker (its modules alone take about 250 MB); give at "
                         f"least 512MiB, or {fix}")


def check_scheduler_address(value: str | None) -> str | None:
    """Validate ``dask.scheduler`` / ``--scheduler``: ``tcp://host:port`` (or ``host:port``,
    ``tls://``, ``ucx://``, ``inproc://``); return it unchanged."""
    if value is None:
        return None
    text = value.strip()
    if not _ADDRESS.fullmatch(text):
        raise ValueError(
            f"{value[:80]!r} is not a scheduler address; use tcp://HOST:PORT "
            "(the address dask-scheduler prints), or leave it unset for a local cluster"
        )
    # a port or an IPv4 address that cannot exist: refused now, not after the connect timeout
    if not text.startswith("inproc://"):
        host, _, port = text.split("://")[-1].rstrip("/").rpartition(":")
        host = host.strip("[]")
        if not 0 < int(port) < 65536:
            raise ValueError(f"{value[:80]!r}: port {port} is not a TCP port (1-65535); use the address dask-scheduler "
                             "prints")
        if re.fullmatch(r"[0-9.]+", host):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise ValueError(f"{value[:80]!r}: {host} is not an IPv4 address; use the address dask-scheduler "
                                 "prints") from None
    return value


def _check_gdal_size(where: str, text: str, unit: str) -> None:
    if unit == "count":
        if not text.isdigit() or int(text) > 1000:
            raise ValueError(f"{where}: {text[:40]!r} must be a whole number from 0 to 1000")
        return
    if unit == "MB_or_bytes" and not text.isdigit():  # rasterio passes it to GDALSetCacheMax64
        raise ValueError(f"{where}: {text[:40]!r} must be a whole number (megabytes below 100000, else bytes)")
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{where}: {text[:40]!r} is not a size; use a number of bytes (or 512MB)")
    number, suffix = float(match.group(1)), (match.group(2) or "").upper().rstrip("B").rstrip("I")
    factor = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[suffix]
    if unit == "MB_or_bytes" and not suffix and number < 100000:
        factor = 1 << 20  # GDAL_CACHEMAX below 100000 is megabytes
    size = number * factor
    limit = _physical_memory()
    if size > limit:
        raise ValueError(
            f"{where}: {text[:40]} is {_mib(int(size))}, more than this machine's memory ({_mib(limit)}); "
            "GDAL would try to allocate it"
        )


def _physical_memory() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # not POSIX: a generous fixed bound
        return 1 << 40


def _mib(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):,.1f} GiB"
    return f"{n / (1 << 20):,.1f} MiB"

