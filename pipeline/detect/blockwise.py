"""Evidence and confirmation one spatial chunk at a time: a few tasks per chunk.

Built of xarray operations on Dask arrays, the evidence rules (:func:`score_change`) and the
confirmation (:func:`confirm_change`) made about 150 tasks per spatial chunk (one per
operation and variable), and with ``dask.distributed`` the scheduler's cost per task then
outweighed the arithmetic: on the three-year benchmark AOI a re-run adding one quarter spent
more time scheduling than computing. Every rule is per pixel along time except the
widespread-evidence test (:func:`pipeline.detect.baselines.drop_widespread`), which judges a
date by its share of the whole grid. So the same functions run eagerly on each chunk, in two
tasks per chunk:

1. the evidence before the widespread test, and its per-date counts (summed over the chunks);
2. the evidence again, dates judged with the grid's counts, re-greening, then confirmation.

The results equal the lazy graph's value for value (the same NumPy operations on the same
pixels; the counts are integer sums). Used by :func:`pipeline.detect.detect_change` when the
cube is one chunk along ``time`` and nothing couples the chunks otherwise: the ``fixed``
NDVI-drop threshold (Otsu's is found on the whole AOI's histogram) and no radar fusion.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from ..config import DetectParams
from .baselines import _windows, widespread_counts
from .confirm import CHANGE_VARS, confirm_change
from .evidence import evidence_before_widespread, score_change

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
    n_mon = len(mon_idx)
    y_chunks, x_chunks = arrays[0].chunks[1:]
    size = masked.sizes["y"] * masked.sizes["x"]
    common = {"names": names, "times": times, "start": start, "params": params}
    args: list[Any] = [a for arr in arrays for a in (arr, "tyx")]
    if params.widespread_loss_max_frac is not None:
        per_chunk = da.map_blocks(
            _counts_np, *arrays, **common, new_axis=0,
            chunks=((2,), (n_mon,), (1,) * len(y_chunks), (1,) * len(x_chunks)), dtype=np.int64,
        )
        counts = per_chunk.sum(axis=(2, 3))
        args += [counts, "cm"]
    stacked = da.blockwise(
        _change_np, "vyx", *args, **common, size=size, confirm=confirm, new_axes={"v": len(CHANGE_VARS)},
        concatenate=True, dtype=np.float64, meta=np.empty((0, 0, 0), dtype=np.float64),
    )
    coords = {c: masked[c] for c in ("y", "x", "spatial_ref") if c in masked.coords}
    out = xr.Dataset(
        {n: (("y", "x"), stacked[i].astype(dtype)) for i, (n, dtype) in enumerate(CHANGE_VARS.items())},
        coords=coords,
    )
    out["ndvi_drop_threshold"] = xr.DataArray(np.float32(params.ndvi_drop_min))
    return out


def _names(masked: xr.Dataset) -> list[str]:
    return [v for v in _INPUTS if v in masked.data_vars]


def _block(blocks: tuple[np.ndarray, ...], names: list[str], times: np.ndarray) -> xr.Dataset:
    return xr.Dataset({n: (("time", "y", "x"), b) for n, b in zip(names, blocks, strict=True)}, coords={"time": times})


def _counts_np(*blocks: np.ndarray, names: list[str], times: np.ndarray, start: dt.date,
               params: DetectParams) -> np.ndarray:
    """Pass 1 on one chunk: ``(2, n_monitoring, 1, 1)`` int64 counts of clear pixels with
    evidence and with strict evidence per monitoring date."""
    parts = evidence_before_widespread(_block(blocks, names, times), monitoring_start=start, params=params)
    n_evidence, n_strict, _ = widespread_counts(parts.evidence, parts.valid, parts.strict)
    assert n_strict is not None
    return np.stack([n_evidence.values, n_strict.values]).astype(np.int64)[:, :, None, None]


def _change_np(*blocks: np.ndarray, names: list[str], times: np.ndarray, start: dt.date, params: DetectParams,
               size: int, confirm: dict[str, Any]) -> np.ndarray:
    """Pass 2 on one chunk: the :data:`CHANGE_VARS` stacked as float64 ``(var, y, x)`` (every
    value exact in float64: bools, int16 counts, float64 days)."""
    counts = None
    if len(blocks) > len(names):  # the whole grid's counts of pass 1
        (*blocks, grid_counts) = blocks
        ds = _block(tuple(blocks), names, times)
        mon_time = ds["time"].isel(time=_windows(ds, monitoring_start=start, baseline_days=params.baseline_days)[1])
        counts = (xr.DataArray(grid_counts[0], dims="time", coords={"time": mon_time}),
                  xr.DataArray(grid_counts[1], dims="time", coords={"time": mon_time}), size)
    else:
        ds = _block(tuple(blocks), names, times)
    scored = score_change(ds, monitoring_start=start, params=params, counts=counts)
    change = confirm_change(scored["evidence"], scored["valid"], regrowth=scored["regrowth"], **confirm)
    return np.stack([np.asarray(change[n].values, dtype=np.float64) for n in CHANGE_VARS])
