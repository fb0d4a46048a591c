"""EDGE: per-AOI intermediate state on disk, so that a re-run computes only what changed.

Three kinds of entries live next to the window cache, in ``<cache>/state/<aoi_id>-<grid>/``:

Each entry is a Zarr (format 3) group that ``zarr`` and ``xarray.open_zarr`` open as they
are: uncompressed arrays with named dimensions, whose chunks the run's tasks write and read
themselves (:mod:`pipeline.zarr_chunks`, which says why and what it checks).

- ``blocks/<block>/``: the cloud-masked cube of some acquisition dates (solar-day groups of
  items) of the AOI, exactly as :func:`pipeline.workflow.open_aoi_scenes` builds it: the
  optical bands (float32 reflectance, NaN where invalid), ``scl`` and ``valid`` (bool). One
  block holds the dates a run computed (a first run: all its dates; a quarterly re-run: the
  new quarter): one array per variable of shape ``(time, y, x)``, chunked ``(all its dates,
  chunk, chunk)`` like the graph that writes it, each chunk written by the task that masks
  it. The group's attributes list, per date, its key, ``time_ns`` and ``item_ids``. A date's
  key hashes its item ids with the files read for them (path, and size and modification time
  of local files) and :func:`dates_digest` (the settings that shape these arrays: bands,
  resolution, margin, SCL classes, cloud buffer, and :data:`STATE_VERSION`).
- ``composites/<key>/``: one computed composite window (a reporting-period view or a
  named composite), as returned by :func:`pipeline.composites.composite` for that window,
  one array per variable and coordinate (``vars-<name>``, ``coords-<name>``, one chunk each;
  dates as int64 nanoseconds, text in the group's attributes with the dims and attrs); the
  key hashes the window, the item ids in it and :func:`composites_digest` (method, bands,
  minimum observations, geometric-median stopping rule, and the dates digest).
- ``detect/<key>/``: the confirmation's per-pixel state after a run's last monitoring date
  (:class:`pipeline.detect.confirm.ConfirmState`, one ``(y, x)`` array per field), from
  which the next run steps over its later dates only (:class:`pipeline.detect.blockwise.Resume`);
  the key chains :func:`detection_digest` (every ``detect.*`` setting, the first monitoring
  day, the dates digest), the baseline dates' keys and each monitoring date's key and time
  (:meth:`StateStore.detection_chain`).

A re-run reads the stored blocks with one task per spatial chunk (all variables, all the
blocks' dates at once; the first layout, one file per date and variable, cost one task
each and made reading the state slower than recomputing it), and only the dates it uses.
Changing a ``detect.*`` parameter invalidates the confirmation states only (detection then
runs over every stored date), a ``composites.*`` one only the composites, an
``acquire.*``/``preprocess.*`` one everything of that AOI.

Entries are written to a temporary folder (workers write block arrays there during the
computation, through :class:`BlockWriter`, in the same tasks that pass the masked chunks on)
and renamed into place only after the AOI's computation succeeded (:meth:`StateStore.commit`):
an entry exists complete or not at all, and a run killed half-way leaves only temporaries,
which the next run ignores (and sweeps).
On a remote cluster the cache folder must be on a filesystem the workers share (it already
must be for the window cache).

Entries of the layout before Zarr (``.npy`` files, :data:`STATE_VERSION` 2) are not read;
``cache clear`` removes them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import operator
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from . import zarr_chunks
from .config import MonitorConfig
from .io import atomic_path
from .zarr_chunks import ArraySpec

__all__ = ["LATEST_RUN_FILE", "STATE_VERSION", "BlockWriter", "DateLocation", "StateStore", "composites_digest",
           "dates_digest", "detection_digest", "read_state", "unused_entries", "write_window"]

#: Bumped whenever the arithmetic or layout behind a stored entry changes: old entries stop
#: matching. 3: Zarr groups (2: the same blocks of masked cubes in ``.npy`` files; 1: per-date
#: indices, one file per date).
STATE_VERSION = "3"
#: In each AOI's state folder: the entries the latest run that committed there used
#: (:meth:`StateStore.commit`), which ``cache prune`` keeps (:func:`unused_entries`).
LATEST_RUN_FILE = "latest-run.json"
#: The folders of entries in an AOI's state folder.
_ENTRY_KINDS = ("blocks", "composites", "detect")

def _create_arrays(folder: Path, dtypes: Mapping[str, str], shape: tuple[int, ...],
                   chunks: tuple[int, ...], attrs: Mapping[str, Any]) -> None:
    """A Zarr group at ``folder`` with ``attrs`` and an empty array per variable of ``dtypes``."""
    dims = ("time", "y", "x")[-len(shape):]
    zarr_chunks.create_group(folder, {v: ArraySpec(shape, chunks, d, dims) for v, d in dtypes.items()}, attrs)


def _window(ndim: int, ysl: slice, xsl: slice) -> tuple[slice, ...]:
    return (slice(None),) * (ndim - 2) + (ysl, xsl)


def write_window(folder: str | Path, ysl: slice, xsl: slice, values: Mapping[str, np.ndarray]) -> None:
    """Write one spatial chunk (``ysl, xsl``, whole along any other dimension) of several
    arrays of the entry at ``folder`` (``{name: values}``)."""
    for var, v in values.items():
        zarr_chunks.write_window(f"{folder}/{var}", _window(v.ndim, ysl, xsl), v)


def read_state(folder: str | Path, fields: Sequence[str], ysl: slice, xsl: slice) -> dict[str, np.ndarray]:
    """One spatial window of the ``(y, x)`` arrays ``fields`` of a stored entry (a confirmation
    state)."""
    return {f: zarr_chunks.read_window(f"{folder}/{f}", (ysl, xsl)) for f in fields}


def dates_digest(cfg: MonitorConfig, *, grid: str) -> str:
    """Digest of the settings that shape a stored date (see the module docstring)."""
    acquire = cfg.acquire.model_dump(mode="json")
    # chunking, fetch concurrency and how many undecodable items to skip change no stored value
    for key in ("chunk_px", "fetch_threads", "max_unreadable_items"):
        acquire.pop(key, None)
    blob = {"v": STATE_VERSION, "grid": grid, "acquire": acquire,
            "scl": list(cfg.preprocess.scl_mask_classes), "buffer": cfg.preprocess.cloud_buffer_px}
    return _sha(blob)


def detection_digest(cfg: MonitorConfig, *, dates: str, start: Any) -> str:
    """Digest of what a stored confirmation state depends on besides its dates: every detection
    parameter, the first monitoring day, the dates digest and the state's fields (a state of an
    older version, without a field a newer one keeps, does not match)."""
    from .detect.confirm import ConfirmState

    blob = {"v": STATE_VERSION, "dates": dates, "detect": cfg.detect.model_dump(mode="json"), "start": str(start),
            "fields": ConfirmState.FIELDS}
    return _sha(blob)


def composites_digest(cfg: MonitorConfig, *, dates: str, bands: Sequence[str], min_valid_obs: int) -> str:
    """Digest of the settings that shape a stored composite window."""
    c = cfg.composites
    blob = {"v": STATE_VERSION, "dates": dates, "method": c.method, "bands": list(bands),
            "min_valid_obs": min_valid_obs, "eps": c.geomedian_eps, "iters": c.geomedian_max_iters}
    return _sha(blob)


@dataclass(frozen=True)
class DateLocation:
    """Where a stored date is: its block folder and its position along the block's ``date``."""

    block: str
    index: int


@dataclass(frozen=True)
class BlockWriter:
    """Where tasks write an entry chunk by chunk: the temporary folder, a Zarr group of one
    array per variable (``(date, y, x)`` for the new dates of :meth:`StateStore.new_block`,
    written by the tasks of :meth:`StateStore.open_cube`; ``(y, x)`` for a confirmation state
    of :meth:`StateStore.new_detection`), and one ``written-<i>-<j>`` marker per spatial chunk
    written, which :meth:`StateStore.commit` counts. Picklable (paths only)."""

    folder: str
    n_chunks: int

    def write(self, ysl: slice, xsl: slice, values: Mapping[str, np.ndarray]) -> None:
        """One spatial chunk of every array (``{name: values}``)."""
        write_window(self.folder, ysl, xsl, values)

    def mark(self, i: int, j: int) -> None:
        Path(self.folder, f"written-{i}-{j}").touch()


@dataclass(frozen=True)
class _MergeChunk:
    """Picklable task body: one spatial chunk of every variable over every date of a run, as
    ``{variable: (time, y, x) array}``. The run's new dates come from the in-graph chunks
    ``new`` (and are written to the new block first, when there is one); the stored dates
    are read from their blocks (one read per block and variable)."""

    variables: tuple[str, ...]
    dtypes: tuple[str, ...]
    sources: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]
    """Per block: folder, positions in the block, positions in the output."""
    new_at: tuple[int, ...]
    n_dates: int
    writer: BlockWriter | None

    def __call__(
        self, i: int, j: int, ysl: slice, xsl: slice, new: Sequence[np.ndarray] = ()
    ) -> dict[str, np.ndarray]:
        if self.writer is not None:
            self.writer.write(ysl, xsl, dict(zip(self.variables, new, strict=True)))
            self.writer.mark(i, j)
        if not self.sources:  # every date new (a first run): pass the chunks on, no copy
            return dict(zip(self.variables, new, strict=True))
        out = {}
        for k, (var, dtype) in enumerate(zip(self.variables, self.dtypes, strict=True)):
            ny, nx = ysl.stop - ysl.start, xsl.stop - xsl.start
            arr = np.empty((self.n_dates, ny, nx), dtype=dtype)
            for folder, src, dst in self.sources:
                # only the dates used (src), read straight into their places when those follow
                # one another (dst ascends by construction)
                window = (slice(None), ysl, xsl)
                if list(dst) == list(range(dst[0], dst[0] + len(dst))):
                    zarr_chunks.read_window(f"{folder}/{var}", window, take=src, out=arr[dst[0]:dst[0] + len(dst)])
                else:
                    arr[list(dst)] = zarr_chunks.read_window(f"{folder}/{var}", window, take=src)
            if self.new_at:
                arr[list(self.new_at)] = new[k]
            out[var] = arr
        return out


class StateStore:
    """The state folder of one AOI on one grid: ``<cache>/state/<aoi_id>-<grid>/``."""

    def __init__(self, cache_dir: str | Path, *, aoi_id: str, grid: str) -> None:
        self.cache_dir = Path(cache_dir)
        self.root = self.cache_dir / "state" / f"{_safe(aoi_id)}-{grid}"
        self._pending: list[tuple[Path, Path]] = []
        self._index: dict[str, DateLocation] | None = None
        self._expected: dict[str, int] = {}  # temporary block -> spatial chunks to be written
        self._used: set[str] = set()  # entries this run reads or writes ("blocks/<name>", ...)

    def _ensure(self) -> None:
        # the cache folder carries CACHEDIR.TAG, so ``cache clear`` accepts it
        from .cache import WindowCache

        WindowCache(self.cache_dir).ensure()

    # ------------------------------------------------------------------ dates

    def date_key(self, fingerprint: str, digest: str) -> str:
        """Key of a date: its items' fingerprint (ids and files) and the settings digest."""
        return _sha({"items": fingerprint, "digest": digest})[:24]

    def locate(self, keys: Sequence[str]) -> list[DateLocation | None]:
        """Where each date is stored, ``None`` for a date not stored. The blocks that hold them
        count as used by this run (:meth:`commit`), whether or not it reads them."""
        index = self._read_index()
        found = [index.get(k) for k in keys]
        self._used.update(f"blocks/{loc.block}" for loc in found if loc is not None)
        return found

    def has_date(self, key: str) -> bool:
        return key in self._read_index()

    def n_blocks(self, locations: Iterable[DateLocation | None]) -> int:
        """How many blocks ``locations`` read from."""
        return len({loc.block for loc in locations if loc is not None})

    def open_cube(
        self,
        locations: Sequence[DateLocation | None],
        *,
        dtypes: Mapping[str, str],
        chunks: tuple[tuple[int, ...], tuple[int, ...]],
        new: Mapping[str, da.Array] | None = None,
        writer: BlockWriter | None = None,
    ) -> dict[str, da.Array]:
        """Every variable of ``dtypes`` over the dates of ``locations`` (in that order), each a
        lazy ``(time, y, x)`` Dask array with one chunk along ``time`` and ``chunks`` along
        ``y, x``, from one task per spatial chunk for all variables. Dates whose location is
        ``None`` come from ``new`` (per variable ``(time, y, x)``, the same spatial chunks, those
        dates in order); with ``writer`` (from :meth:`new_block`) those tasks also write them
        to the new block, so the writes happen as soon as a chunk is masked, not in tasks of
        their own that would hold the chunk until the scheduler gets to them."""
        variables = tuple(dtypes)
        by_block: dict[str, tuple[list[int], list[int]]] = {}
        new_at = []
        for pos, loc in enumerate(locations):
            if loc is None:
                new_at.append(pos)
            else:
                src, dst = by_block.setdefault(loc.block, ([], []))
                src.append(loc.index)
                dst.append(pos)
        if new_at:
            if new is None or any(new[v].shape[0] != len(new_at) or new[v].numblocks[0] != 1 for v in variables):
                raise ValueError(f"{len(new_at)} date(s) not stored: pass them, one chunk along time, as `new`")
        sources = tuple((str(self.root / "blocks" / b), tuple(s), tuple(d)) for b, (s, d) in sorted(by_block.items()))
        body = _MergeChunk(variables, tuple(dtypes[v] for v in variables), sources, tuple(new_at), len(locations),
                           writer if new_at else None)
        deps: list[Any] = [new[v] for v in variables] if new_at and new is not None else []
        name = "state-" + tokenize(body, chunks, [d.name for d in deps])
        ystarts, xstarts = np.cumsum((0, *chunks[0])), np.cumsum((0, *chunks[1]))
        layer: dict[Any, Any] = {}
        for i in range(len(chunks[0])):
            for j in range(len(chunks[1])):
                ysl, xsl = slice(int(ystarts[i]), int(ystarts[i + 1])), slice(int(xstarts[j]), int(xstarts[j + 1]))
                args: tuple[Any, ...] = (i, j, ysl, xsl)
                if deps:
                    args += ([(d.name, 0, i, j) for d in deps],)
                layer[(name, i, j)] = (body, *args)
        # the per-chunk dicts, as a 2-D object array of chunks (never computed as such)
        ones = ((1,) * len(chunks[0]), (1,) * len(chunks[1]))
        merged = da.Array(HighLevelGraph.from_collections(name, layer, dependencies=deps), name, chunks=ones,
                          dtype=object)
        out = {}
        for var, dtype in dtypes.items():
            vname = f"{name}-{var}"
            vlayer: dict[Any, Any] = {(vname, 0, i, j): (operator.getitem, (name, i, j), var)
                      for i in range(len(chunks[0])) for j in range(len(chunks[1]))}
            graph = HighLevelGraph.from_collections(vname, vlayer, dependencies=[merged])  # type: ignore[list-item]
            out[var] = da.Array(graph, vname, chunks=((len(locations),), *chunks), dtype=dtype)
        return out

    def new_block(self, keys: Sequence[str], times: Sequence[Any], item_ids: Sequence[str],
                  shape: tuple[int, int], dtypes: Mapping[str, str], *,
                  chunks: tuple[tuple[int, ...], tuple[int, ...]]) -> BlockWriter:
        """Create the temporary block of new dates (a Zarr array per variable of ``dtypes``,
        chunked like the graph: ``chunks`` along ``y, x``), written by the tasks of
        :meth:`open_cube`; :meth:`commit` moves it into place once every chunk is written."""
        self._ensure()
        block = f"{_day_label(times[0])}-{_sha(list(keys))[:16]}"
        final = self.root / "blocks" / block
        tmp = final.with_name(f".{block}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.mkdir(parents=True)
        dates = [{"key": k, "time_ns": int(np.datetime64(t, "ns").astype("int64")), "item_ids": i}
                 for k, t, i in zip(keys, times, item_ids, strict=True)]
        _create_arrays(tmp, dtypes, (len(keys), *shape), (len(keys), chunks[0][0], chunks[1][0]),
                       {"dates": dates, "vars": dict(dtypes), "shape": [len(keys), *shape]})
        self._pending.append((tmp, final))
        self._used.add(f"blocks/{block}")
        n_chunks = len(chunks[0]) * len(chunks[1])
        self._expected[str(tmp)] = n_chunks
        return BlockWriter(str(tmp), n_chunks)

    def _read_index(self) -> dict[str, DateLocation]:
        if self._index is None:
            index: dict[str, DateLocation] = {}
            folder = self.root / "blocks"
            for block in sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []:
                if block.name.startswith("."):
                    continue  # a temporary: not committed
                dates = (zarr_chunks.group_attributes(block) or {}).get("dates")
                if not isinstance(dates, list):
                    continue  # unreadable: as if not stored
                for i, d in enumerate(dates):
                    index.setdefault(d["key"], DateLocation(block.name, i))
            self._index = index
        return self._index

    # ------------------------------------------------------------------ confirmation states

    def detection_chain(self, digest: str, baseline: Sequence[str], monitoring: Sequence[tuple[str, Any]]) -> list[str]:
        """Key of the confirmation state after each prefix of the monitoring dates: element ``n``
        after the first ``n`` (``0``: none). A key hashes the previous one with the date's key and
        time, the first one ``digest`` (:func:`detection_digest`) and the baseline dates' keys: a
        state matches a run only if every date it has seen, baseline included, is that run's."""
        keys = [_sha({"digest": digest, "baseline": list(baseline)})[:24]]
        for key, when in monitoring:
            time_ns = int(np.datetime64(when, "ns").astype("int64"))
            keys.append(_sha({"prev": keys[-1], "date": key, "time_ns": time_ns})[:24])
        return keys

    def has_detections(self) -> bool:
        """Whether any confirmation state is stored (for other settings or dates, perhaps)."""
        folder = self.root / "detect"
        return folder.is_dir() and any(not p.name.startswith(".") for p in folder.iterdir())

    def find_detection(self, chain: Sequence[str]) -> tuple[int, str | None]:
        """The longest prefix of ``chain`` (:meth:`detection_chain`) whose state is stored: its
        number of monitoring dates and folder, or ``(0, None)``."""
        for n in range(len(chain) - 1, 0, -1):
            folder = self.root / "detect" / chain[n]
            if zarr_chunks.is_group(folder):
                self._used.add(f"detect/{chain[n]}")
                return n, str(folder)
        return 0, None

    def new_detection(self, key: str, shape: tuple[int, int], dtypes: Mapping[str, str], *,
                      chunks: tuple[tuple[int, ...], tuple[int, ...]]) -> BlockWriter:
        """Create the temporary entry of a confirmation state (a ``(y, x)`` Zarr array per
        array of ``dtypes``, chunked like the graph: ``chunks``), written chunk by chunk by the
        confirmation's tasks; :meth:`commit` moves it into place once every chunk is written."""
        self._ensure()
        final = self.root / "detect" / key
        tmp = final.with_name(f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.mkdir(parents=True)
        _create_arrays(tmp, dtypes, shape, (chunks[0][0], chunks[1][0]), {"vars": dict(dtypes), "shape": list(shape)})
        self._pending.append((tmp, final))
        self._used.add(f"detect/{key}")
        n_chunks = len(chunks[0]) * len(chunks[1])
        self._expected[str(tmp)] = n_chunks
        return BlockWriter(str(tmp), n_chunks)

    # ------------------------------------------------------------------ composites

    def composite_key(self, kind: str, label: str, item_ids: Iterable[str], digest: str) -> str:
        return _sha({"kind": kind, "label": label, "items": sorted(item_ids), "digest": digest})[:24]

    def read_composite(self, key: str) -> xr.Dataset | None:
        folder = self.root / "composites" / key
        if not zarr_chunks.is_group(folder):
            return None
        self._used.add(f"composites/{key}")
        return _read_dataset(folder)

    def write_composite(self, key: str, ds: xr.Dataset) -> None:
        """Stage a computed window (committed with the dates by :meth:`commit`)."""
        self._ensure()
        final = self.root / "composites" / key
        tmp = final.with_name(f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        _write_dataset(ds, tmp)
        self._pending.append((tmp, final))
        self._used.add(f"composites/{key}")

    # ------------------------------------------------------------------ transactions

    def commit(self) -> None:
        """Move every staged entry into place (an entry another run wrote meanwhile wins). A
        block not completely written (a chunk no output needed) is dropped, not committed.
        Then record, in :data:`LATEST_RUN_FILE`, every entry this run used: the blocks holding
        its dates, the confirmation states it resumed from and kept, its composite windows."""
        for tmp, final in self._pending:
            expected = self._expected.pop(str(tmp), None)
            if expected is not None:
                marks = list(tmp.glob("written-*"))
                if len(marks) != expected:
                    shutil.rmtree(tmp, ignore_errors=True)
                    continue
                for mark in marks:
                    mark.unlink()
            try:
                os.replace(tmp, final)
            except OSError:  # already there (a concurrent run): keep that one
                shutil.rmtree(tmp, ignore_errors=True)
        self._pending.clear()
        self._index = None
        self._record_use()

    def _record_use(self) -> None:
        if not self.root.is_dir():  # nothing stored or used (a run with no dates to store)
            return
        used = sorted(name for name in self._used if (self.root / name).is_dir())
        record = {"written_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "entries": used}
        with atomic_path(self.root / LATEST_RUN_FILE, suffix=".tmp") as tmp:
            tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")

    def discard(self) -> None:
        """Remove staged entries (the computation failed)."""
        for tmp, _ in self._pending:
            shutil.rmtree(tmp, ignore_errors=True)
        self._pending.clear()
        self._expected.clear()


# --------------------------------------------------------------------------- pruning


def unused_entries(folder: Path) -> list[Path] | None:
    """The entries of the AOI state folder ``folder`` (``<cache>/state/<aoi_id>-<grid>``) that
    the latest run committing there did not use (:data:`LATEST_RUN_FILE`): superseded
    confirmation states and composite windows, and blocks of dates no longer searched or
    stored under other settings. ``None`` when the folder has no readable record (written
    before there was one, or by a run that never committed): nothing there can be told apart.
    Temporaries (names starting with ``.``) are not listed."""
    try:
        record = json.loads((folder / LATEST_RUN_FILE).read_text(encoding="utf-8"))
        used = set(record["entries"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    unused: list[Path] = []
    for kind in _ENTRY_KINDS:
        base = folder / kind
        if base.is_dir():
            unused.extend(p for p in sorted(base.iterdir())
                          if not p.name.startswith(".") and f"{kind}/{p.name}" not in used)
    return unused


# --------------------------------------------------------------------------- helpers


def _write_dataset(ds: xr.Dataset, folder: Path) -> None:
    """Every variable and coordinate as a Zarr array named ``<vars|coords>-<name>`` (one chunk;
    text ones in the group's attributes; dates as int64 nanoseconds, their type in the
    attributes), dims and attrs there too: a lossless round trip of a computed composite (its
    numeric, boolean, date and text arrays; any other type is refused, ValueError)."""
    meta: dict[str, Any] = {"attrs": _jsonable(ds.attrs), "vars": {}, "coords": {}}
    arrays: dict[str, np.ndarray] = {}
    specs: dict[str, ArraySpec] = {}
    for kind, names in (("vars", list(ds.data_vars)), ("coords", list(ds.coords))):
        for name in names:
            var = ds[name].variable
            entry: dict[str, Any] = {"dims": list(var.dims), "attrs": _jsonable(var.attrs)}
            values = np.asarray(var.values)
            if values.dtype.kind in "OUS":
                entry["text"] = values.astype(str).tolist()
                entry["dtype"] = str(values.dtype)
            else:
                if values.dtype.kind in "mM":  # no date type in Zarr's core specification
                    entry["dtype"] = str(values.dtype)
                    values = values.view("int64")
                arrays[f"{kind}-{name}"] = values
                chunks = tuple(max(1, n) for n in values.shape)  # one chunk (Zarr's are at least 1 long)
                specs[f"{kind}-{name}"] = ArraySpec(values.shape, chunks, str(values.dtype),
                                                    tuple(str(d) for d in var.dims))
            meta[kind][str(name)] = entry
    zarr_chunks.create_group(folder, specs, meta)
    for name, values in arrays.items():
        zarr_chunks.write_chunk(folder / name, (0,) * values.ndim, values)


def _read_dataset(folder: Path) -> xr.Dataset:
    meta = zarr_chunks.group_attributes(folder)
    if meta is None:
        raise OSError(f"{folder}: not a stored composite (no Zarr group attributes)")

    def variable(group: str, name: str, entry: Mapping[str, Any]) -> xr.Variable:
        if "text" in entry:
            values = np.asarray(entry["text"], dtype=entry["dtype"])
        else:
            array = folder / f"{group}-{name}"
            values = zarr_chunks.read_window(array, [slice(None)] * len(entry["dims"]))
            if "dtype" in entry:
                values = values.view(entry["dtype"])
        return xr.Variable(entry["dims"], values, attrs=entry["attrs"])

    data_vars = {n: variable("vars", n, e) for n, e in meta["vars"].items()}
    coords = {n: variable("coords", n, e) for n, e in meta["coords"].items()}
    return xr.Dataset(data_vars, coords=coords, attrs=meta["attrs"])


def _jsonable(attrs: Mapping[Any, Any]) -> dict[str, Any]:
    out = {}
    for k, v in attrs.items():
        with contextlib.suppress(TypeError):
            json.dumps(v)
            out[str(k)] = v
    return out


def _sha(blob: Any) -> str:
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()


def _day_label(when: Any) -> str:
    """``YYYY-MM-DD`` of a datetime-like (block folder names start with their first date)."""
    return str(np.datetime64(when, "D"))


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:64]
