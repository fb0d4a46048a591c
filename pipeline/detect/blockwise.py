"""Evidence and confirmation one spatial chunk at a time: a few tasks per chunk.

Built of xarray operations on Dask arrays, the evidence rules (:func:`score_change`) and the
confirmation (:func:`confirm_change`) made about 150 tasks per spatial chunk (one per
operation and variable), and with ``dask.distributed`` the scheduler's cost per task then
outweighed the arithmetic: on the three-year benchmark AOI a re-run adding one quarter spent
more time scheduling than computing. Every rule is per pixel along time except the
widespread-evidence test (:func:`pipeline.detect.baselines.drop_widespread`), which judges a
date by its share of the whole grid. So the same functions run eagerly on each chunk, in two
tasks per chunk:

1. the evidence before the widespread test (as four boolean ``(date, y, x)`` arrays: evidence,
   its strict part, clear views, re-greening) and its per-date counts, summed over the chunks;
2. the dates judged with the grid's counts, then confirmation.

The cube's chunk is released after the first task (and the composites): what waits for the
whole grid's counts is a bit per pixel, date and array, not the reflectance.

The results equal the lazy graph's value for value (the same NumPy operations on the same
pixels; the counts are integer sums). Used by :func:`pipeline.detect.detect_change` when the
cube is one chunk along ``time`` and nothing couples the chunks otherwise: the ``fixed``
NDVI-drop threshold (Otsu's is found on the whole AOI's histogram) and no radar fusion.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from ..config import DetectParams
from .baselines import _windows, widespread_counts
from .confirm import CHANGE_VARS, confirm_change
from .evidence import evidence_before_widespread, judge_dates

#: The cube's variables the evidence rules read.
_INPUTS = ("red", "green", "blue", "nir", "swir16", "swir22", "valid", "ndvi", "bsi", "mndwi", "bright", "ndti",
           "nbr")


def supported(masked: xr.Dataset, params: DetectParams, radar: Any) -> bool:
    """Whether :func:`change_blockwise` applies (see the module's docstring)."""
    if radar is not None or params.threshold_method != "fixed":
        return False
    names = _names(masked)
    return bool(names) and all(
        isinstance(masked[v].data, da.Array) and masked[v].dims == ("time", "y", "x")
        and len(masked[v].data.chunks[0]) == 1 and masked[v].data.chunks[1:] == masked[names[0]].data.chunks[1:]
        for v in names
    )


def change_blockwise(
    masked: xr.Dataset, *, start: dt.date, params: DetectParams, confirm: dict[str, Any]
) -> xr.Dataset:
    """:func:`confirm_change` of :func:`score_change`'s evidence, valid and re-greening, as
    :func:`pipeline.detect.detect_change` computes them, in two tasks per spatial chunk.

    ``confirm``: the keyword arguments of :func:`confirm_change` besides the arrays. Returns the
    ``(y, x)`` variables of :data:`CHANGE_VARS` (lazy) and ``ndvi_drop_threshold`` (0-d).
    """
    names = _names(masked)
    arrays = [masked[v].data for v in names]
    times = masked["time"].values
    _, mon_idx = _windows(masked, monitoring_start=start, baseline_days=params.baseline_days)
    mon_times = times[mon_idx]
    y_chunks, x_chunks = arrays[0].chunks[1:]
    ones = ((1,) * len(y_chunks), (1,) * len(x_chunks))
    # pass 1: {evidence, strict, valid, regrowth, counts} per chunk, as a 2-D object array of chunks
    first = da.map_blocks(_evidence_np, *arrays, names=names, times=times, start=start, params=params,
                          drop_axis=0, chunks=ones, dtype=object, meta=np.empty((0, 0), dtype=object))
    deps = [first]
    counts_key = None
    if params.widespread_loss_max_frac is not None:
        per_chunk = first.map_blocks(_counts_of, new_axis=[0, 1], chunks=((2,), (len(mon_idx),), *ones),
                                     dtype=np.int64, meta=np.empty((0, 0, 0, 0), dtype=np.int64))
        counts = per_chunk.sum(axis=(2, 3))
        deps.append(counts)
        counts_key = (counts.name, 0, 0)
    # pass 2: one task per chunk from pass 1's arrays and the grid's counts
    body = _Confirm(mon_times=mon_times, size=masked.sizes["y"] * masked.sizes["x"], params=params,
                    confirm=confirm)
    name = "detect-confirm-" + tokenize(body, first.name, counts_key)
    layer = {(name, 0, i, j): (body, (first.name, i, j), counts_key)
             for i in range(len(y_chunks)) for j in range(len(x_chunks))}
    graph = HighLevelGraph.from_collections(name, layer, dependencies=deps)
    stacked = da.Array(graph, name, chunks=((len(CHANGE_VARS),), y_chunks, x_chunks), dtype=np.float64,
                       meta=np.empty((0, 0, 0), dtype=np.float64))
    coords = {c: masked[c] for c in ("y", "x", "spatial_ref") if c in masked.coords}
    out = xr.Dataset(
        {n: (("y", "x"), stacked[i].astype(dtype)) for i, (n, dtype) in enumerate(CHANGE_VARS.items())},
        coords=coords,
    )
    out["ndvi_drop_threshold"] = xr.DataArray(np.float32(params.ndvi_drop_min))
    return out


def _names(masked: xr.Dataset) -> list[str]:
    return [v for v in _INPUTS if v in masked.data_vars]


def _evidence_np(*blocks: np.ndarray, names: list[str], times: np.ndarray, start: dt.date,
                 params: DetectParams) -> np.ndarray:
    """Pass 1 on one chunk: a ``(1, 1)`` object array holding the evidence before the widespread
    test, its strict part, the clear views and the re-greening (bool ``(date, y, x)``, monitoring
    dates), and the ``(2, date, 1, 1)`` int64 counts of clear pixels with evidence and with strict
    evidence."""
    ds = xr.Dataset({n: (("time", "y", "x"), b) for n, b in zip(names, blocks, strict=True)}, coords={"time": times})
    parts = evidence_before_widespread(ds, monitoring_start=start, params=params)
    n_evidence, n_strict, _ = widespread_counts(parts.evidence, parts.valid, parts.strict)
    assert n_strict is not None
    def tyx(a: xr.DataArray) -> np.ndarray:  # xarray orders broadcast dims as they come: (y, x, time) here
        return np.ascontiguousarray(a.transpose("time", "y", "x").values)

    out = np.empty((1, 1), dtype=object)
    out[0, 0] = {
        "evidence": tyx(parts.evidence), "strict": tyx(parts.strict), "valid": tyx(parts.valid),
        "regrowth": tyx(parts.regrowth),
        "counts": np.stack([n_evidence.values, n_strict.values]).astype(np.int64)[:, :, None, None],
    }
    return out


def _counts_of(block: np.ndarray) -> np.ndarray:
    return block[0, 0]["counts"]


@dataclass(frozen=True)
class _Confirm:
    """Pass 2, a picklable task body: one chunk's dates judged with the grid's counts, then
    :func:`confirm_change`; the :data:`CHANGE_VARS` stacked as float64 ``(var, y, x)`` (every value
    exact in float64: bools, int16 counts, float64 days)."""

    mon_times: np.ndarray
    size: int
    params: DetectParams
    confirm: dict[str, Any]

    def __call__(self, first: np.ndarray, grid_counts: np.ndarray | None) -> np.ndarray:
        part = first[0, 0]
        dims, coords = ("time", "y", "x"), {"time": self.mon_times}
        arr = {k: xr.DataArray(part[k], dims=dims, coords=coords) for k in ("evidence", "strict", "valid", "regrowth")}
        counts = None
        if grid_counts is not None:
            counts = (xr.DataArray(grid_counts[0], dims="time", coords=coords),
                      xr.DataArray(grid_counts[1], dims="time", coords=coords), self.size)
        evidence, valid, regrowth = judge_dates(arr["evidence"], arr["strict"], arr["valid"], arr["regrowth"],
                                                params=self.params, counts=counts)
        change = confirm_change(evidence, valid, regrowth=regrowth, **self.confirm)
        return np.stack([np.asarray(change[n].values, dtype=np.float64) for n in CHANGE_VARS])
