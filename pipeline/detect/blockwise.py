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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from ..config import DetectParams
from ..preprocess import observation_windows
from ..state import BlockWriter, read_state
from .baselines import widespread_counts
from .confirm import CHANGE_VARS, ConfirmState, _confirm_np, kernel_options
from .evidence import evidence_before_widespread, indices_read, judge_dates
from .indices import spectral_indices

#: The cube's variables the evidence rules read.
_INPUTS = ("red", "green", "blue", "nir", "swir16", "swir22", "valid", "ndvi", "bsi", "mndwi", "bright", "ndti",
           "nbr")


def supported_params(params: DetectParams, radar: Any) -> bool:
    """Whether these settings leave every chunk independent but for the per-date counts: the
    ``fixed`` NDVI-drop threshold and no radar."""
    return radar is None and params.threshold_method == "fixed"


def supported(masked: xr.Dataset, params: DetectParams, radar: Any) -> bool:
    """Whether :func:`change_blockwise` applies (see the module's docstring)."""
    if not supported_params(params, radar):
        return False
    names = _names(masked)
    return bool(names) and all(
        isinstance(masked[v].data, da.Array) and masked[v].dims == ("time", "y", "x")
        and len(masked[v].data.chunks[0]) == 1 and masked[v].data.chunks[1:] == masked[names[0]].data.chunks[1:]
        for v in names
    )


@dataclass(frozen=True)
class Resume:
    """Where a confirmation starts and where it ends up (:mod:`pipeline.state`'s entries).

    The confirmation is a pass over the monitoring dates with a small per-pixel state
    (:class:`pipeline.detect.confirm.ConfirmState`), and each date's evidence depends only on
    that date and the baseline (the widespread test's counts are per date). So the state after
    the dates a previous run saw, stepped over the new dates alone, gives what one pass over
    all of them gives.
    """

    source: str | None
    """Folder of the stored state after the dates before the first one stepped over (one
    ``(y, x)`` Zarr array per :data:`ConfirmState.FIELDS`), ``None``: start before any."""
    writer: BlockWriter | None
    """Where the tasks write the state after the last date, ``None``: not kept."""


def change_blockwise(
    masked: xr.Dataset, *, start: dt.date, params: DetectParams, confirm: dict[str, Any],
    take: Sequence[int] | None = None, resume: Resume | None = None,
) -> xr.Dataset:
    """:func:`confirm_change` of :func:`score_change`'s evidence, valid and re-greening, as
    :func:`pipeline.detect.detect_change` computes them, in two tasks per spatial chunk.

    ``confirm``: the keyword arguments of :func:`confirm_change` besides the arrays. ``take``:
    positions along ``time`` of the dates to use (the baseline's and the monitoring dates to
    step over; default: all). ``resume``: the stored state to start from and where to keep the
    one reached (:class:`Resume`); with no monitoring date in ``take`` the outputs are those of
    the stored state. Returns the ``(y, x)`` variables of :data:`CHANGE_VARS` (lazy) and
    ``ndvi_drop_threshold`` (0-d).
    """
    names = _names(masked)
    arrays = [masked[v].data for v in names]
    times = masked["time"].values
    take = list(range(len(times))) if take is None else [int(t) for t in take]
    times = times[take]
    y_chunks, x_chunks = arrays[0].chunks[1:]
    ones = ((1,) * len(y_chunks), (1,) * len(x_chunks))
    stepping = bool((times >= np.datetime64(start)).any()) or resume is None or resume.source is None
    deps: list[Any] = []
    first_name = counts_key = None
    mon_times = times[:0]
    if stepping:
        _, mon_idx = observation_windows(xr.DataArray(times, dims="time", coords={"time": times}),
                                         monitoring_start=start, baseline_days=params.baseline_days)
        mon_times = times[mon_idx]
        # pass 1: {evidence, strict, valid, regrowth, counts} per chunk, as a 2-D object array of chunks
        first = da.map_blocks(_evidence_np, *arrays, names=names, times=times, take=take, start=start, params=params,
                              drop_axis=0, chunks=ones, dtype=object, meta=np.empty((0, 0), dtype=object))
        deps.append(first)
        first_name = first.name
        if params.widespread_loss_max_frac is not None:
            per_chunk = first.map_blocks(_counts_of, new_axis=[0, 1], chunks=((2,), (len(mon_idx),), *ones),
                                         dtype=np.int64, meta=np.empty((0, 0, 0, 0), dtype=np.int64))
            counts = per_chunk.sum(axis=(2, 3))
            deps.append(counts)
            counts_key = (counts.name, 0, 0)
    # pass 2: one task per chunk from pass 1's arrays and the grid's counts
    body = _Confirm(mon_times=mon_times, size=masked.sizes["y"] * masked.sizes["x"], params=params,
                    confirm=confirm, resume=resume)
    name = "detect-confirm-" + tokenize(body, first_name, counts_key)
    ystarts, xstarts = np.cumsum((0, *y_chunks)), np.cumsum((0, *x_chunks))
    layer: dict[Any, Any] = {
        (name, 0, i, j): (body, None if first_name is None else (first_name, i, j), counts_key, i, j,
                          slice(int(ystarts[i]), int(ystarts[i + 1])), slice(int(xstarts[j]), int(xstarts[j + 1])))
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


def _evidence_np(*blocks: np.ndarray, names: list[str], times: np.ndarray, take: list[int], start: dt.date,
                 params: DetectParams) -> np.ndarray:
    """Pass 1 on one chunk: a ``(1, 1)`` object array holding the evidence before the widespread
    test, its strict part, the clear views and the re-greening (bool ``(date, y, x)``, monitoring
    dates), and the ``(2, date, 1, 1)`` int64 counts of clear pixels with evidence and with strict
    evidence."""
    if len(take) != blocks[0].shape[0]:
        blocks = tuple(b[take] for b in blocks)
    ds = xr.Dataset({n: (("time", "y", "x"), b) for n, b in zip(names, blocks, strict=True)}, coords=_time(times))
    if "ndvi" not in ds:  # only the indices the rules read
        ds = ds.merge(spectral_indices(ds, indices_read(params)))
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


def _time(times: np.ndarray) -> xr.Coordinates:
    """The chunk's ``time`` coordinate without an index: every array of one chunk has the same
    dates, so there is nothing to align, and aligning on a ``time`` index at each of the rules'
    ~90 operations took about a tenth of the detect stage (0.2 ms an operation against 0.1 ms)."""
    return xr.Coordinates({"time": times}, indexes={})


def _counts_of(block: np.ndarray) -> np.ndarray:
    return block[0, 0]["counts"]


@dataclass(frozen=True)
class _Confirm:
    """Pass 2, a picklable task body: one chunk's dates judged with the grid's counts, then the
    confirmation (:func:`pipeline.detect.confirm._confirm_np`, from the stored state when
    resuming); the :data:`CHANGE_VARS` stacked as float64 ``(var, y, x)`` (every value exact in
    float64: bools, int16 counts, float64 days)."""

    mon_times: np.ndarray
    size: int
    params: DetectParams
    confirm: dict[str, Any]
    resume: Resume | None = None

    def __call__(self, first: np.ndarray | None, grid_counts: np.ndarray | None, i: int, j: int,
                 ysl: slice, xsl: slice) -> np.ndarray:
        source = self.resume.source if self.resume is not None else None
        state = None
        if source is not None:
            state = ConfirmState.from_arrays(
                read_state(source, list(ConfirmState.FIELDS), ysl, xsl))
        if first is None:
            assert state is not None
            outs = state.outputs()
        else:
            outs, state = self._step(first[0, 0], grid_counts, state)
        writer = self.resume.writer if self.resume is not None else None
        if writer is not None:
            writer.write(ysl, xsl, state.arrays())
            writer.mark(i, j)
        return np.stack([np.asarray(o, dtype=np.float64) for o in outs])

    def _step(self, part: dict[str, np.ndarray], grid_counts: np.ndarray | None,
              state: ConfirmState | None) -> tuple[tuple[np.ndarray, ...], ConfirmState]:
        dims, coords = ("time", "y", "x"), _time(self.mon_times)
        arr = {k: xr.DataArray(part[k], dims=dims, coords=coords) for k in ("evidence", "strict", "valid", "regrowth")}
        counts = None
        if grid_counts is not None:
            counts = (xr.DataArray(grid_counts[0], dims="time", coords=coords),
                      xr.DataArray(grid_counts[1], dims="time", coords=coords), self.size)
        judged = judge_dates(arr["evidence"], arr["strict"], arr["valid"], arr["regrowth"],
                             params=self.params, counts=counts)
        # time last, as confirm_change's apply_ufunc hands the kernel, but as views of the
        # (time, y, x) arrays: the kernel steps date by date, and each date's slice is then
        # contiguous (a time-last copy cost the copy and strided slices: the detect stage of
        # make bench took 0.93-0.95 s with it, 0.77-0.86 s without)
        evidence, valid, regrowth = (a.transpose("y", "x", "time").values for a in judged)
        state = state if state is not None else ConfirmState(evidence.shape[:-1])
        days = (pd.DatetimeIndex(self.mon_times) - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
        outs = _confirm_np(evidence, valid, regrowth, **kernel_options(days, **self.confirm), state=state)
        return outs, state
