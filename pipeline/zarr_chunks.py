"""EDGE: whole chunks of uncompressed Zarr (format 3) arrays, read and written by Dask tasks
without a round trip through Zarr's event loop.

The incremental state (:mod:`pipeline.state`) is a set of Zarr groups that ``zarr`` and
``xarray.open_zarr`` open as they are. :func:`create_group` writes each group's and array's
metadata document (``zarr.json``: shape, chunk grid, data type, codecs, dimension names) as
``zarr`` writes it for the same settings (a test compares the two); the tasks of a run then
write and read the chunks' bytes themselves. That is only valid for the layout
:func:`create_group` gives each array, which this module checks before each read or write:

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
with memory-mapped ``.npy`` files), and 0.51-0.55 s in the confirmation's tasks (0.21-0.30 s):
every read and write hands its work to Zarr's event-loop thread and its file I/O to a thread
pool, each waiting for the GIL in a worker that is computing (``docs/scaling.md``). The same
hand-offs made creating the groups through ``zarr`` (``open_group``, ``create_array``) cost
the client 5.9 s in a run of 8 AOIs one after another and 12.0 s with the 8 in parallel (176
groups); written here, 2.2 s and 2.6 s (1.5 ms a group with the process idle).

Open a group with ``zarr.open_group(path, mode="r")`` or ``xarray.open_zarr(path,
consolidated=False)`` (the groups carry no consolidated metadata).
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ArraySpec", "array_metadata", "chunk_index", "create_group", "group_attributes", "is_group", "read_window",
           "write_chunk", "write_window"]


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
    """A Zarr group at ``folder`` with ``attrs`` and one empty, uncompressed array per entry of
    ``arrays``, laid out as :func:`read_window` and :func:`write_chunk` expect: the metadata
    documents (``zarr.json``) of the Zarr v3 specification, as ``zarr`` writes them for these
    settings (tested against it)."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    _write_json(root / "zarr.json", {"zarr_format": 3, "node_type": "group", "attributes": dict(attrs)})
    for name, spec in arrays.items():
        (root / name).mkdir(exist_ok=True)
        _write_json(root / name / "zarr.json", array_metadata(spec))


def array_metadata(spec: ArraySpec) -> dict[str, Any]:
    """The ``zarr.json`` of an empty array of ``spec`` in this module's layout."""
    dtype = np.dtype(spec.dtype)
    if dtype.name not in _RAW_TYPES:
        raise ValueError(f"{spec.dtype}: not a data type this module stores (one of {sorted(_RAW_TYPES)})")
    if len(spec.chunks) != len(spec.shape) or any(c < 1 for c in spec.chunks) or len(spec.dims) != len(spec.shape):
        raise ValueError(f"{spec}: one chunk length (at least 1) and one name per dimension")
    codec: dict[str, Any] = {"name": "bytes"}
    if dtype.itemsize > 1:  # the specification's endianness: for types of more than one byte only
        codec["configuration"] = {"endian": "little"}
    fill: Any = False if dtype.kind == "b" else (0.0 if dtype.kind == "f" else 0)
    meta = {
        "zarr_format": 3, "node_type": "array", "shape": list(spec.shape), "data_type": dtype.name,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(spec.chunks)}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill, "codecs": [codec], "attributes": {}, "storage_transformers": [],
    }
    if spec.dims:  # a 0-d array has none
        meta["dimension_names"] = list(spec.dims)
    return meta


def _write_json(path: Path, doc: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2))  # NaN in attributes as zarr writes it


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
    _write(Path(array), _raw_layout(array), tuple(index), values)


def write_window(array: str | Path, selection: Sequence[slice], values: np.ndarray) -> None:
    """Write ``values`` at ``selection`` (one slice per dimension), which must be one chunk of
    the array at ``array`` (:func:`chunk_index`)."""
    layout = _raw_layout(array)
    index = _chunk_of(layout, selection)
    if index is None:
        raise ValueError(f"{array}: the window {tuple(selection)} is not one of its chunks")
    _write(Path(array), layout, index, values)


def chunk_index(array: str | Path, selection: Sequence[slice]) -> tuple[int, ...] | None:
    """Grid position of the chunk that ``selection`` (one slice per dimension, step 1) covers
    exactly (up to the array's edge), ``None`` when it covers no single whole chunk."""
    layout = _layout(Path(array))
    return None if layout is None else _chunk_of(layout, selection)


def _chunk_of(layout: _Layout, selection: Sequence[slice]) -> tuple[int, ...] | None:
    index = []
    for s, c, n in zip(selection, layout.chunks, layout.shape, strict=True):
        start, stop, step = s.indices(n)
        if step != 1 or start % c or stop != min(start + c, n):
            return None
        index.append(start // c)
    return tuple(index)


def _raw_layout(array: str | Path) -> _Layout:
    layout = _layout(Path(array))
    if layout is None:
        raise ValueError(f"{array}: not an uncompressed Zarr array of pipeline.zarr_chunks' layout")
    return layout


def _write(array: Path, layout: _Layout, index: tuple[int, ...], values: np.ndarray) -> None:
    origin = [i * c for i, c in zip(index, layout.chunks, strict=True)]
    extent = tuple(min(c, n - o) for o, c, n in zip(origin, layout.chunks, layout.shape, strict=True))
    if values.shape != extent:
        raise ValueError(f"{array}: chunk {index} is {extent}, not {values.shape}")
    if extent != layout.chunks:  # an edge chunk: stored at the full chunk shape
        full = np.full(layout.chunks, layout.fill, dtype=layout.dtype)
        full[tuple(slice(0, n) for n in extent)] = values
        values = full
    path = _chunk_path(array, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    # whole or not at all: a task run twice at once (a worker thought lost) never leaves a
    # truncated chunk (a temporary name zarr ignores: it reads only the keys of the grid)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    np.ascontiguousarray(values, dtype=layout.dtype).tofile(tmp)
    os.replace(tmp, path)


def read_window(array: str | Path, selection: Sequence[slice], *, out: np.ndarray | None = None,
                take: Sequence[int] | None = None) -> np.ndarray:
    """The values of the array at ``array`` in ``selection`` (one slice per dimension, step 1),
    from the chunk files it overlaps (memory-mapped: only the bytes of the window are read).
    ``take``: positions along the first dimension, in the order wanted, in place of
    ``selection[0]`` (the dates a run uses of a block: only theirs are read); ``out``: the array
    to read into (of the window's shape), which is returned."""
    folder = Path(array)
    if any(s.step not in (None, 1) for s in selection):
        raise ValueError(f"{array}: only windows of step 1 are read")
    layout = _layout(folder)
    if layout is None:  # another layout: zarr reads it
        import zarr

        z = zarr.open_array(store=str(folder), mode="r")
        values = (np.asarray(z[tuple(selection)]) if take is None
                  else np.asarray(z.oindex[(np.asarray(take, dtype=np.intp), *selection[1:])]))
        return _into(out, values, array)
    bounds = [s.indices(n)[:2] for s, n in zip(selection, layout.shape, strict=True)]
    pieces = [_pieces(lo, hi, c) for (lo, hi), c in zip(bounds, layout.chunks, strict=True)]
    shape = [max(0, hi - lo) for lo, hi in bounds]
    if take is not None:
        positions = np.asarray(take, dtype=np.intp)
        if positions.size and (positions.min() < 0 or positions.max() >= layout.shape[0]):
            raise IndexError(f"{array}: positions {list(take)} outside 0..{layout.shape[0] - 1}")
        c0 = layout.chunks[0]
        pieces[0] = [(int(i), positions[positions // c0 == i] - i * c0, np.flatnonzero(positions // c0 == i))
                     for i in np.unique(positions // c0)]
        shape[0] = len(positions)
    if out is None:
        out = np.empty(shape, dtype=layout.dtype)
    elif out.shape != tuple(shape):
        raise ValueError(f"{array}: the window is {tuple(shape)}, `out` is {out.shape}")
    for combo in itertools.product(*pieces):
        index = tuple(p[0] for p in combo)
        src, dst = tuple(p[1] for p in combo), tuple(p[2] for p in combo)
        path = _chunk_path(folder, index)
        if path.is_file():
            chunk = np.memmap(path, dtype=layout.dtype, mode="r", shape=layout.chunks)
            out[dst] = chunk[src]
            del chunk
        else:
            out[dst] = layout.fill
    return out


def _pieces(lo: int, hi: int, c: int) -> list[tuple[int, Any, Any]]:
    """Along one dimension of chunk length ``c``: per chunk that ``lo:hi`` overlaps, its grid
    position, the slice of it read and the slice of the window it fills."""
    out = []
    for i in range(lo // c, (hi - 1) // c + 1) if hi > lo else range(0):
        a, b = max(lo, i * c), min(hi, (i + 1) * c)
        out.append((i, slice(a - i * c, b - i * c), slice(a - lo, b - lo)))
    return out


def _into(out: np.ndarray | None, values: np.ndarray, array: str | Path) -> np.ndarray:
    if out is None:
        return values
    if out.shape != values.shape:
        raise ValueError(f"{array}: the window is {values.shape}, `out` is {out.shape}")
    out[...] = values
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
