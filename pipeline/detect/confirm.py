"""Multi-date confirmation, persistence window and re-greening, pixel by pixel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

#: Variables :func:`confirm_change` returns, with their dtypes.
CHANGE_VARS: dict[str, str] = {
    "first_change": "float64",  # days since 1970-01-01 of the first confirming observation, NaN if none
    "last_evidence": "float64",  # days since 1970-01-01 of the last observation with evidence
    "n_obs": "int16",  # clear observations with evidence from the change date on (confirmations)
    "n_clear_after": "int16",  # clear observations from the change date on
    "n_occluded": "int16",  # cloud/nodata observations from the change date on
    "confirmed": "bool",
    "regrown": "bool",  # a run of min_confirmations re-vegetated clear observations after the change
    "open_run": "int16",  # clear observations with evidence in the run still open at the last clear one
    "open_run_start": "float64",  # days since 1970-01-01 of the first observation of that run, NaN if none
    # days since 1970-01-01 of the first clear observation (monitoring dates), NaN if none: a change
    # dated there had no clear view without it, so it may predate the monitoring period
    "first_clear": "float64",
}


def confirm_change(
    evidence: xr.DataArray,
    valid: xr.DataArray,
    *,
    min_confirmations: int,
    regrowth: xr.DataArray | None = None,
    min_regrowth_obs: int = 2,
    window_days: float | None = None,
    rearm: bool = False,
    rearm_season_gap_days: float = 0.0,
) -> xr.Dataset:
    """Confirm change over time, pixel by pixel (pyeo-style multi-date confirmation).

    Parameters
    ----------
    evidence, valid
        Boolean ``(time, y, x)``; ``evidence`` implies ``valid``.
    min_confirmations
        Consecutive clear observations with evidence needed to confirm. Invalid
        (cloudy) observations are skipped: they neither count nor break a run.
    regrowth
        Optional boolean ``(time, y, x)``: the observation is back to baseline greenness.
        ``regrown`` is set where at least ``min_regrowth_obs`` clear such observations
        follow the change date (not necessarily consecutive: crops grow in the cloudy
        season, so clear views of them are few).
    window_days
        Count ``n_obs``, ``n_clear_after`` and ``n_occluded`` only over this many days from
        the change date (the persistence window); ``None``: to the end of the series.
    rearm
        After a change ended by re-greening, a later run of ``min_confirmations``
        observations with evidence starts a new change (the outputs describe the latest);
        ``False``: the first change is the only one, and re-greening vetoes it for good.
    rearm_season_gap_days
        Seasonal recurrence (0: off): a run of evidence is not confirmed when it starts within
        this many days of the year (either side, across the new year) of an earlier run, at
        least a year minus this gap before, whose ground then re-greened. What happens in
        the same season every year and recovers (harvests, annual burns, leaf fall, snow)
        is seasonal, not a new excavation.

    Returns
    -------
    xarray.Dataset
        ``(y, x)`` variables of :data:`CHANGE_VARS`. Dates are float days since
        1970-01-01 (NaN: never). Lazy when the input is (``apply_ufunc`` with
        ``dask="parallelized"``; ``time`` is rechunked to a single chunk).

    Examples
    --------
    >>> t = pd.date_range("2023-01-01", periods=5, freq="10D")
    >>> ev = xr.DataArray(np.array([0, 1, 0, 1, 1], bool)[:, None, None], dims=("time", "y", "x"),
    ...                   coords={"time": t})
    >>> ok = xr.DataArray(np.array([1, 1, 0, 1, 1], bool)[:, None, None], dims=ev.dims, coords=ev.coords)
    >>> out = confirm_change(ev, ok, min_confirmations=3)
    >>> str(pd.Timestamp(out["first_change"].item(), unit="D").date()), int(out["n_obs"].item())
    ('2023-01-11', 3)
    """
    days = (pd.DatetimeIndex(evidence["time"].values) - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    if regrowth is None:
        regrowth = xr.zeros_like(evidence)
    if evidence.chunks:
        evidence = evidence.chunk({"time": -1})
        valid = valid.chunk({"time": -1})
        regrowth = regrowth.chunk({"time": -1})
    names = list(CHANGE_VARS)
    results = xr.apply_ufunc(
        _confirm_np,
        evidence,
        valid,
        regrowth,
        kwargs=kernel_options(days, min_confirmations=min_confirmations, min_regrowth_obs=min_regrowth_obs,
                              window_days=window_days, rearm=rearm, rearm_season_gap_days=rearm_season_gap_days),
        input_core_dims=[["time"], ["time"], ["time"]],
        output_core_dims=[[] for _ in names],
        dask="parallelized",
        output_dtypes=[np.dtype(CHANGE_VARS[n]) for n in names],
    )
    return xr.Dataset(dict(zip(names, results, strict=True)))


def kernel_options(
    days: Any,
    *,
    min_confirmations: int,
    min_regrowth_obs: int = 2,
    window_days: float | None = None,
    rearm: bool = False,
    rearm_season_gap_days: float = 0.0,
) -> dict[str, Any]:
    """The keyword arguments of :func:`_confirm_np` for :func:`confirm_change`'s (``days``: the
    observations' float days since 1970-01-01)."""
    return {"days": np.asarray(days, dtype="float64"), "k": int(min_confirmations),
            "k_regrowth": int(min_regrowth_obs), "window": np.inf if window_days is None else float(window_days),
            "rearm": bool(rearm), "season_gap": float(rearm_season_gap_days)}


def _confirm_np(
    evidence: np.ndarray,
    valid: np.ndarray,
    regrowth: np.ndarray | None = None,
    *,
    days: np.ndarray,
    k: int,
    k_regrowth: int = 2,
    window: float = np.inf,
    rearm: bool = False,
    season_gap: float = 0.0,
    state: ConfirmState | None = None,
) -> tuple[np.ndarray, ...]:
    """NumPy kernel: inputs are ``(..., time)``; returns per-pixel arrays (see CHANGE_VARS).

    One pass over time with a small state per pixel: the open run of clear observations with
    evidence (cloudy ones neither count nor break it), the current change (its date, counts
    in the persistence window and re-greened observations since), and whether the last change
    was ended by re-greening. ``state``: where to start (the state after earlier observations,
    :class:`ConfirmState`; it is advanced in place), default: before any observation.
    """
    st = state if state is not None else ConfirmState(evidence.shape[:-1])
    for t in range(evidence.shape[-1]):
        ev, ok = evidence[..., t], valid[..., t]
        rg = regrowth[..., t] if regrowth is not None else np.zeros_like(ok)
        st.step(ev, ok, rg, day=days[t], k=k, k_regrowth=k_regrowth, window=window, rearm=rearm, gap=season_gap)
    return st.outputs()


class ConfirmState:
    """Per-pixel state of :func:`_confirm_np` (arrays of the pixel shape): everything the
    confirmation knows after some observations. Stepping it over later observations gives what
    one pass over all of them gives (:mod:`pipeline.detect.blockwise` resumes from a stored one)."""

    #: The state's arrays and their dtypes (what :meth:`arrays` returns).
    FIELDS: dict[str, str] = {
        "run": "int32", "run_start": "float64", "run_occ": "int32", "first": "float64", "last": "float64",
        "n_obs": "int32", "n_clear": "int32", "n_occ": "int32", "n_regrow": "int32", "regrown": "bool",
        "vetoed": "bool", "recovered": "float64", "first_clear": "float64",
    }

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.run = np.zeros(shape, dtype=np.int32)
        self.run_start = np.full(shape, np.nan)
        self.run_occ = np.zeros(shape, dtype=np.int32)  # cloudy observations inside the open run
        self.first = np.full(shape, np.nan)
        self.last = np.full(shape, np.nan)
        self.n_obs = np.zeros(shape, dtype=np.int32)
        self.n_clear = np.zeros(shape, dtype=np.int32)
        self.n_occ = np.zeros(shape, dtype=np.int32)
        self.n_regrow = np.zeros(shape, dtype=np.int32)
        self.regrown = np.zeros(shape, dtype=bool)
        self.vetoed = np.zeros(shape, dtype=bool)  # a change was ended by re-greening
        self.recovered = np.full(shape, np.nan)  # start day of the latest run whose ground re-greened
        self.first_clear = np.full(shape, np.nan)  # day of the first clear observation

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> ConfirmState:
        """A state from :meth:`arrays` (copied, with the dtypes of :data:`FIELDS`)."""
        shape = np.shape(arrays["run"])
        st = cls(shape)
        for name, dtype in cls.FIELDS.items():
            setattr(st, name, np.array(arrays[name], dtype=dtype))
        return st

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def outputs(self) -> tuple[np.ndarray, ...]:
        """The :data:`CHANGE_VARS` of this state, in that order."""
        confirmed = ~np.isnan(self.first)
        last = np.where(confirmed, self.last, np.nan)
        open_start = np.where(self.run > 0, self.run_start, np.nan)
        return (self.first.copy(), last, self.n_obs.astype("int16"), self.n_clear.astype("int16"),
                self.n_occ.astype("int16"), confirmed, self.regrown.copy(), self.run.astype("int16"), open_start,
                self.first_clear.copy())

    def step(
        self, ev: np.ndarray, ok: np.ndarray, rg: np.ndarray, *, day: float, k: int, k_regrowth: int,
        window: float, rearm: bool, gap: float,
    ) -> None:
        self.first_clear = np.where(ok & np.isnan(self.first_clear), day, self.first_clear)
        active = ~np.isnan(self.first)
        # Re-greening ends the current change (counted on clear views since the change date).
        self.n_regrow += active & ok & rg
        ended = active & (self.n_regrow >= k_regrowth)
        self.regrown |= ended
        self.vetoed |= ended
        self.recovered = np.where(ok & rg & (self.run == 0) & ~np.isnan(self.run_start), self.run_start, self.recovered)
        if rearm:
            self._reset(ended)
        active = ~np.isnan(self.first)
        inside = active & (day <= self.first + window)
        self.n_obs += inside & ok & ev
        self.n_clear += inside & ok
        self.n_occ += inside & ~ok
        # The open run of clear observations with evidence.
        starting = ok & ev & (self.run == 0)
        self.run_start = np.where(starting, day, self.run_start)
        self.run_occ = np.where(starting, 0, self.run_occ + ((self.run > 0) & ~ok))
        self.run = np.where(ok, np.where(ev, self.run + 1, 0), self.run)
        newly = (self.run >= k) & np.isnan(self.first) & (~self.vetoed | rearm) & ~self._recurrent(gap)
        self._start(newly)
        self.last = np.where(ok & ev & ~np.isnan(self.first), day, self.last)

    def _recurrent(self, gap: float) -> np.ndarray:
        """The open run starts in the season (within ``gap`` days of the year) of a run of an
        earlier year whose ground re-greened."""
        if gap <= 0:
            return np.zeros(self.run.shape, dtype=bool)
        since = self.run_start - self.recovered
        apart = np.abs(since) % 365.25
        return (since >= 365.25 - gap) & (np.minimum(apart, 365.25 - apart) < gap)

    def _start(self, newly: np.ndarray) -> None:
        """A change confirmed now: dated at the first observation of the run, which it counts."""
        self.first = np.where(newly, self.run_start, self.first)
        self.n_obs = np.where(newly, self.run, self.n_obs)
        self.n_clear = np.where(newly, self.run, self.n_clear)
        self.n_occ = np.where(newly, self.run_occ, self.n_occ)
        self.n_regrow = np.where(newly, 0, self.n_regrow)
        self.regrown = np.where(newly, False, self.regrown)

    def _reset(self, ended: np.ndarray) -> None:
        self.first = np.where(ended, np.nan, self.first)
        self.last = np.where(ended, np.nan, self.last)
        for name in ("n_obs", "n_clear", "n_occ", "n_regrow"):
            setattr(self, name, np.where(ended, 0, getattr(self, name)))
