"""EDGE: whole chunks of uncompressed Zarr (format 3) arrays, read and written by Dask tasks
without a round trip through Zarr's event loop.

The incremental state (:mod:`pipeline.state`) is a set of Zarr groups that ``zarr`` and
``xarray.open_zarr`` open as they are. ``zarr`` creates every group and array (the metadata:
shape, chunk grid, data type, codecs, dimension names); the tasks of a run then write and read
the chunks' bytes themselves. That is only valid for the layout :func:`create_group` gives each
array, which this module checks before each read or write:

- a regular chunk grid, the ``default`` chunk-key encoding with ``/`` (a chunk's file is
  ``<array>/c/<i>/<j>/...``, ``<array>/c`` for a 0-d array);
- one codec, ``bytes``, little-endian (or no endianness: one-byte types): a chunk's file is
  its values in C order, every chunk at the full chunk shape (the chunks on the far edges
  padded with the fill value);
- a plain numeric or boolean data type.

An array laid out otherwise (compressed, say, by another tool) is read through ``zarr``
itself, which is slower but always right. A chunk file that does not exist reads as the fill
value, as in ``zarr``.

Why not ``zarr``'s own ``Array.__getitem__``/``__setitem__`` in the tasks: measured on 2 cores
(zarr 3.1, 2026-12-03), a quarterly re-run of the three-year 240 x 320 px benchmark AOI spent
0.71-0.83 s in its tasks that read the stored masked cube and write the new dates (0.25-0.34 s
with memory-mapped ``.npy`` files), and 0.51-0.55 s in the confirmation's tasks (0.21-0.29 s):
every read and write hands its work to Zarr's event-loop thread and its file I/O to a thread
pool, each waiting for the GIL in a worker that is computing (``docs/scaling.md``).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ArraySpec", "chunk_index", "create_group", "group_attributes", "is_group", "read_window", "write_chunk"]


@dataclass(frozen=True)
class ArraySpec:
    """One array of a group :func:`create_group` makes."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: str
    dims: tuple[str, ...]


@dataclass(frozen=True)
class _Layout:
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype[Any]
    fill: Any


def create_group(folder: str | Path, arrays: Mapping[str, ArraySpec], attrs: Mapping[str, Any]) -> None:
    """A Zarr group at ``folder`` (a new folder) with ``attrs`` and one empty, uncompressed array
    per entry of ``arrays``, laid out as :func:`read_window` and :func:`write_chunk` expect."""
    import zarr
    from zarr.codecs import BytesCodec

    group = zarr.open_group(store=str(folder), mode="w", zarr_format=3, attributes=dict(attrs))
    for name, spec in arrays.items():
        group.create_array(name, shape=spec.shape, chunks=spec.chunks, dtype=spec.dtype, dimension_names=spec.dims,
                           serializer=BytesCodec(endian="little"), compressors=None, filters=None, fill_value=0,
                           chunk_key_encoding={"name": "default", "separator": "/"})


def is_group(folder: str | Path) -> bool:
    """Whether ``folder`` holds a Zarr (format 3) group."""
    return _node_type(Path(folder)) == "group"


def group_attributes(folder: str | Path) -> dict[str, Any] | None:
    """The attributes of the Zarr group at ``folder``, ``None`` when there is none or it cannot
    be read (read as JSON: a state folder's index reads every block's)."""
    meta = _metadata(Path(folder))
    if meta is None or meta.get("node_type") != "group":
        return None
    attrs = meta.get("attributes", {})
    return attrs if isinstance(attrs, dict) else None


def write_chunk(array: str | Path, index: Sequence[int], values: np.ndarray) -> None:
    """Write the chunk at grid position ``index`` of the array at ``array``: ``values``, of
    the chunk shape or, on the far edges of the grid, of the part of it inside the array."""
    layout = _layout(Path(array))
    if layout is None:
        raise ValueError(f"{array}: not an uncompressed Zarr array of pipeline.zarr_chunks' layout")
    origin = [i * c for i, c in zip(index, layout.chunks, strict=True)]
    extent = tuple(min(c, n - o) for o, c, n in zip(origin, layout.chunks, layout.shape, strict=True))
    if values.shape != extent:
        raise ValueError(f"{array}: chunk {tuple(index)} is {extent}, not {values.shape}")
    if extent != layout.chunks:  # an edge chunk: stored at the full chunk shape
        full = np.full(layout.chunks, layout.fill, dtype=layout.dtype)
        full[tuple(slice(0, n) for n in extent)] = values
        values = full
    path = _chunk_path(Path(array), index)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.ascontiguousarray(values, dtype=layout.dtype).tofile(path)


def chunk_index(array: str | Path, selection: Sequence[slice]) -> tuple[int, ...] | None:
    """Grid position of the chunk that ``selection`` (one slice per dimension, step 1) covers
    exactly (up to the array's edge), ``None`` when it covers no single whole chunk."""
    layout = _layout(Path(array))
    if layout is None:
        return None
    index = []
    for s, c, n in zip(selection, layout.chunks, layout.shape, strict=True):
        start, stop, step = s.indices(n)
        if step != 1 or start % c or stop != min(start + c, n):
            return None
        index.append(start // c)
    return tuple(index)


def read_window(array: str | Path, selection: Sequence[slice], *, out: np.ndarray | None = None) -> np.ndarray:
    """The values of the array at ``array`` in ``selection`` (one slice per dimension, step 1),
    from the chunk files it overlaps (memory-mapped: only the bytes of the window are read);
    into ``out`` (of the window's shape) when given, which is returned."""
    folder = Path(array)
    layout = _layout(folder)
    if any(s.step not in (None, 1) for s in selection):
        raise ValueError(f"{array}: only windows of step 1 are read")
    if layout is None:  # another layout: zarr reads it
        import zarr

        values = np.asarray(zarr.open_array(store=str(folder), mode="r")[tuple(selection)])
        if out is None:
            return values
        out[...] = values
        return out
    bounds = [s.indices(n)[:2] for s, n in zip(selection, layout.shape, strict=True)]
    shape = tuple(max(0, hi - lo) for lo, hi in bounds)
    if out is None:
        out = np.empty(shape, dtype=layout.dtype)
    elif out.shape != shape:
        raise ValueError(f"{array}: the window is {shape}, `out` is {out.shape}")
    ranges = [range(lo // c, (hi - 1) // c + 1) if hi > lo else range(0)
              for (lo, hi), c in zip(bounds, layout.chunks, strict=True)]
    for index in itertools.product(*ranges):
        src, dst = [], []
        for i, c, (lo, hi) in zip(index, layout.chunks, bounds, strict=True):
            a, b = max(lo, i * c), min(hi, (i + 1) * c)
            src.append(slice(a - i * c, b - i * c))
            dst.append(slice(a - lo, b - lo))
        path = _chunk_path(folder, index)
        if path.is_file():
            chunk = np.memmap(path, dtype=layout.dtype, mode="r", shape=layout.chunks)
            out[tuple(dst)] = chunk[tuple(src)]
            del chunk
        else:
            out[tuple(dst)] = layout.fill
    return out


# --------------------------------------------------------------------------- helpers


def _chunk_path(array: Path, index: Sequence[int]) -> Path:
    return array.joinpath("c", *(str(i) for i in index))


def _metadata(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("zarr_format") == 3 else None


def _node_type(folder: Path) -> str | None:
    meta = _metadata(folder)
    return None if meta is None else meta.get("node_type")


_RAW_TYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"}


def _layout(folder: Path) -> _Layout | None:
    """The array's shape, chunk shape, data type and fill value when it is laid out as this
    module reads and writes it (see the module docstring), else ``None``."""
    meta = _metadata(folder)
    if meta is None or meta.get("node_type") != "array":
        return None
    try:
        codecs = meta["codecs"]
        raw = (meta["data_type"] in _RAW_TYPES and meta["chunk_grid"]["name"] == "regular"
               and meta["chunk_key_encoding"] == {"name": "default", "configuration": {"separator": "/"}}
               and not meta.get("storage_transformers") and len(codecs) == 1 and codecs[0]["name"] == "bytes"
               and (codecs[0].get("configuration") or {}).get("endian", "little") == "little")
        if not raw:
            return None
        dtype = np.dtype(meta["data_type"]).newbyteorder("<")
        return _Layout(tuple(meta["shape"]), tuple(meta["chunk_grid"]["configuration"]["chunk_shape"]), dtype,
                       np.array(meta["fill_value"]).astype(dtype)[()])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
