"""EDGE: per-AOI intermediate state on disk, so that a re-run computes only what changed.

Two kinds of entries live next to the window cache, in ``<cache>/state/<aoi_id>-<grid>/``:

- ``dates/<key>/``: one acquisition date (one solar-day group of items) of the AOI, after
  reflectance, cloud mask and spectral indices: ``ndvi bsi mndwi bright ndti nbr swir16``
  (float32) and ``valid`` (bool), each ``(y, x)``, one ``.npy`` file per variable (a chunked
  on-disk format: one chunk per date and variable, memory-mapped and read by spatial block),
  plus ``meta.json`` (``time`` in ns, the ``item_ids``). The key hashes the item ids with
  the files read for them (path, and size and modification time of local files) and
  :func:`dates_digest` (the settings that shape these arrays: bands, resolution, margin,
  SCL classes, cloud buffer, and :data:`STATE_VERSION`).
- ``composites/<key>/``: one computed composite window (a reporting-period view or a
  named composite), as returned by :func:`pipeline.composites.composite` for that window,
  saved variable by variable; the key hashes the window, the item ids in it and
  :func:`composites_digest` (method, bands, minimum observations, geometric-median stopping
  rule, and the dates digest).

Detection thresholds are not in any key: detection is always recomputed from the stored
indices (cheap next to reading, masking and compositing), so changing a ``detect.*``
parameter invalidates nothing stored, a ``composites.*`` one only the composites, an
``acquire.*``/``preprocess.*`` one everything of that AOI.

Entries are written to a temporary folder (workers write date arrays there during the
computation, through :class:`NpyTarget`) and renamed into place only after the AOI's
computation succeeded (:meth:`StateStore.commit`): an entry exists complete or not at all,
and a run killed half-way leaves only temporaries, which the next run ignores. On a
remote cluster the cache folder must be on a filesystem the workers share (it already must
be for the window cache).

Zarr would be the natural container; it is not installed in this environment (``zarr`` is
on PyPI but the project may not add packages here), so the same layout uses ``.npy`` files:
NumPy alone, memory-mappable, one file per chunk.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
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

from .config import MonitorConfig

__all__ = ["DATE_VARS", "STATE_VERSION", "NpyTarget", "StateStore", "composites_digest", "dates_digest"]

#: Bumped whenever the arithmetic behind a stored entry changes: old entries stop matching.
STATE_VERSION = "1"
#: Per-date variables stored (float32 except ``valid``).
DATE_VARS: tuple[str, ...] = ("ndvi", "bsi", "mndwi", "bright", "ndti", "nbr", "swir16", "valid")


def dates_digest(cfg: MonitorConfig, *, grid: str) -> str:
    """Digest of the settings that shape a stored date (see the module docstring)."""
    acquire = cfg.acquire.model_dump(mode="json")
    acquire.pop("chunk_px", None)  # chunking changes no value
    blob = {"v": STATE_VERSION, "grid": grid, "acquire": acquire,
            "scl": list(cfg.preprocess.scl_mask_classes), "buffer": cfg.preprocess.cloud_buffer_px}
    return _sha(blob)


def composites_digest(cfg: MonitorConfig, *, dates: str, bands: Sequence[str], min_valid_obs: int) -> str:
    """Digest of the settings that shape a stored composite window."""
    c = cfg.composites
    blob = {"v": STATE_VERSION, "dates": dates, "method": c.method, "bands": list(bands),
            "min_valid_obs": min_valid_obs, "eps": c.geomedian_eps, "iters": c.geomedian_max_iters}
    return _sha(blob)


@dataclass
class NpyTarget:
    """A ``da.store`` target writing ``(time, y, x)`` blocks into one ``.npy`` file per date.

    Picklable (paths only): each worker opens the files it writes as memory maps. The files
    are created, full size, by :meth:`StateStore.date_targets` before the computation.
    """

    paths: tuple[str, ...]
    shape: tuple[int, int, int]
    dtype: str

    @property
    def ndim(self) -> int:
        return 3

    def __setitem__(self, key: tuple[slice, slice, slice], value: np.ndarray) -> None:
        tsl, ysl, xsl = key
        for k, t in enumerate(range(*tsl.indices(self.shape[0]))):
            mm = np.load(self.paths[t], mmap_mode="r+")
            mm[ysl, xsl] = value[k]
            mm.flush()
            del mm


@dataclass(frozen=True)
class _NpyFile:
    """Lazy, picklable read access to one ``.npy`` file (``da.from_array`` source)."""

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.array(np.load(self.path, mmap_mode="r")[key])


class StateStore:
    """The state folder of one AOI on one grid: ``<cache>/state/<aoi_id>-<grid>/``."""

    def __init__(self, cache_dir: str | Path, *, aoi_id: str, grid: str) -> None:
        self.cache_dir = Path(cache_dir)
        self.root = self.cache_dir / "state" / f"{_safe(aoi_id)}-{grid}"
        self._pending: list[tuple[Path, Path]] = []

    def _ensure(self) -> None:
        # the cache folder carries CACHEDIR.TAG, so ``cache clear`` accepts it
        from .cache import WindowCache

        WindowCache(self.cache_dir).ensure()

    # ------------------------------------------------------------------ dates

    def date_key(self, fingerprint: str, digest: str) -> str:
        """Key of a date: its items' fingerprint (ids and files) and the settings digest."""
        return _sha({"items": fingerprint, "digest": digest})[:24]

    def has_date(self, key: str) -> bool:
        return (self.root / "dates" / key / "meta.json").is_file()

    def open_dates(self, keys: Sequence[str], *, chunks: tuple[int, int]) -> dict[str, Any]:
        """Stored dates as lazy ``(time, y, x)`` Dask arrays per variable, plus ``time`` (ns)."""
        out: dict[str, Any] = {"time": []}
        arrays: dict[str, list[Any]] = {v: [] for v in DATE_VARS}
        for key in keys:
            folder = self.root / "dates" / key
            meta = json.loads((folder / "meta.json").read_text())
            out["time"].append(np.datetime64(int(meta["time_ns"]), "ns"))
            for var in DATE_VARS:
                path = folder / f"{var}.npy"
                mm = np.load(path, mmap_mode="r")
                src = _NpyFile(str(path), tuple(mm.shape), mm.dtype)
                del mm
                arrays[var].append(da.from_array(src, chunks=chunks, name=f"state-{key}-{var}"))
        for var in DATE_VARS:
            out[var] = da.stack(arrays[var]) if arrays[var] else None
        return out

    def date_targets(self, keys: Sequence[str], times: Sequence[Any], item_ids: Sequence[str],
                     shape: tuple[int, int]) -> dict[str, NpyTarget]:
        """Create the temporary files of new dates (full size) and their ``da.store`` targets;
        :meth:`commit` moves them into place."""
        self._ensure()
        folders = []
        for key, when, ids in zip(keys, times, item_ids, strict=True):
            final = self.root / "dates" / key
            tmp = final.with_name(f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
            tmp.mkdir(parents=True)
            (tmp / "meta.json").write_text(json.dumps(
                {"time_ns": int(np.datetime64(when, "ns").astype("int64")), "item_ids": ids}))
            folders.append(tmp)
            self._pending.append((tmp, final))
        targets = {}
        for var in DATE_VARS:
            dtype = "bool" if var == "valid" else "float32"
            paths = []
            for tmp in folders:
                path = tmp / f"{var}.npy"
                np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()
                paths.append(str(path))
            targets[var] = NpyTarget(tuple(paths), (len(folders), *shape), dtype)
        return targets

    # ------------------------------------------------------------------ composites

    def composite_key(self, kind: str, label: str, item_ids: Iterable[str], digest: str) -> str:
        return _sha({"kind": kind, "label": label, "items": sorted(item_ids), "digest": digest})[:24]

    def read_composite(self, key: str) -> xr.Dataset | None:
        folder = self.root / "composites" / key
        if not (folder / "meta.json").is_file():
            return None
        return _read_dataset(folder)

    def write_composite(self, key: str, ds: xr.Dataset) -> None:
        """Stage a computed window (committed with the dates by :meth:`commit`)."""
        self._ensure()
        final = self.root / "composites" / key
        tmp = final.with_name(f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        _write_dataset(ds, tmp)
        self._pending.append((tmp, final))

    # ------------------------------------------------------------------ transactions

    def commit(self) -> None:
        """Move every staged entry into place (an entry another run wrote meanwhile wins)."""
        for tmp, final in self._pending:
            try:
                os.replace(tmp, final)
            except OSError:  # already there (a concurrent run): keep that one
                shutil.rmtree(tmp, ignore_errors=True)
        self._pending.clear()

    def discard(self) -> None:
        """Remove staged entries (the computation failed)."""
        for tmp, _ in self._pending:
            shutil.rmtree(tmp, ignore_errors=True)
        self._pending.clear()


# --------------------------------------------------------------------------- helpers


def _write_dataset(ds: xr.Dataset, folder: Path) -> None:
    """Every variable and coordinate as ``.npy`` (text ones in the JSON), dims and attrs in
    ``meta.json``: a lossless round trip of a computed composite."""
    folder.mkdir(parents=True)
    meta: dict[str, Any] = {"attrs": _jsonable(ds.attrs), "vars": {}, "coords": {}}
    for group, names in (("vars", list(ds.data_vars)), ("coords", list(ds.coords))):
        for name in names:
            var = ds[name].variable
            entry: dict[str, Any] = {"dims": list(var.dims), "attrs": _jsonable(var.attrs)}
            values = np.asarray(var.values)
            if values.dtype.kind in "OUS":
                entry["text"] = values.astype(str).tolist()
                entry["dtype"] = str(values.dtype)
            else:
                np.save(folder / f"{group}-{name}.npy", values, allow_pickle=False)
            meta[group][str(name)] = entry
    (folder / "meta.json").write_text(json.dumps(meta))


def _read_dataset(folder: Path) -> xr.Dataset:
    meta = json.loads((folder / "meta.json").read_text())

    def variable(group: str, name: str, entry: Mapping[str, Any]) -> xr.Variable:
        if "text" in entry:
            values = np.asarray(entry["text"], dtype=entry["dtype"])
        else:
            values = np.load(folder / f"{group}-{name}.npy", allow_pickle=False)
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


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:64]
