"""Progress of a run, per AOI and stage: search, fetch (acquisition), compute, sites.

A :class:`RunProgress` is told, from any thread, how far each AOI's stage has come
(:meth:`RunProgress.update`: items done of a total) and says so on the console:

- ``mode="lines"`` (a log file, a pipe, CI): one line per AOI and stage when it starts,
  every ``interval_s`` while it runs and when it ends, with counts, per cent and an
  estimate of the time left, through the ``pipeline.progress`` logger (so ``run.log``
  gets them too);
- ``mode="bar"`` (a terminal): one status line redrawn in place (``\\r``) with the
  AOIs in flight, and a permanent line each time a stage ends;
- ``mode="off"`` (``-q``): nothing.

Lines carry AOI ids, stage names and counts only: never a URL, so no credential can
appear (:func:`pipeline.http.redact` is applied to the one address printed, the Dask
dashboard's). The time left is ``elapsed / done * (total - done)`` of the stage: a
plain rate estimate, shown once a tenth of the stage or five seconds have passed.

:class:`SchedulerProgress` feeds the ``compute`` stage from the ``dask.distributed``
scheduler (tasks finished of all tasks behind an AOI's futures), as ``distributed``'s
own progress bar does.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any, Literal

__all__ = ["ProgressMode", "RunProgress", "SchedulerProgress", "format_duration"]

log = logging.getLogger("pipeline.progress")

ProgressMode = Literal["lines", "bar", "off"]

#: Stage names, in the order an AOI goes through them.
STAGES = ("search", "fetch", "compute", "sites")


def format_duration(seconds: float) -> str:
    """``"42s"``, ``"3m05s"``, ``"1h02m"``.

    Examples
    --------
    >>> format_duration(42.2), format_duration(185), format_duration(3725)
    ('42s', '3m05s', '1h02m')
    """
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


@dataclass
class _Stage:
    aoi_id: str
    stage: str
    unit: str
    total: int | None = None
    done: int = 0
    t0: float = field(default_factory=time.monotonic)
    last_line: float = 0.0
    ended: bool = False

    def eta_s(self, now: float) -> float | None:
        if not self.total or self.done <= 0 or self.done >= self.total:
            return None
        elapsed = now - self.t0
        if self.done < 0.1 * self.total and elapsed < 5.0:
            return None
        return elapsed / self.done * (self.total - self.done)

    def text(self, now: float) -> str:
        if self.total:
            pct = 100.0 * self.done / self.total
            out = f"{self.stage} {self.done}/{self.total} {self.unit} ({pct:.0f} %)"
        elif self.total is None and not self.done and not self.ended:
            out = f"{self.stage} started"  # not "0 items found" before the search has answered
        else:
            out = f"{self.stage} {self.done} {self.unit}"
        eta = self.eta_s(now)
        if self.ended:
            out += f" in {format_duration(now - self.t0)}"
        elif eta is not None:
            out += f", ~{format_duration(eta)} left"
        return out


class RunProgress:
    """Thread-safe progress reporter of one run (see the module docstring).

    Parameters
    ----------
    mode
        ``lines``, ``bar`` or ``off``; ``None``: ``bar`` when ``stream`` is a terminal, else
        ``lines``.
    stream
        Where the bar is drawn (default ``sys.stderr``); lines go through logging.
    interval_s
        Seconds between two lines of the same running stage (``lines`` mode).
    n_aois
        AOIs in the run, for the ``[done/total]`` counter.
    """

    def __init__(
        self,
        mode: ProgressMode | None = None,
        *,
        stream: IO[str] | None = None,
        interval_s: float = 10.0,
        n_aois: int = 0,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if mode is None:
            mode = "bar" if _isatty(self.stream) else "lines"
        self.mode: ProgressMode = mode
        self.interval_s = interval_s
        self.n_aois = n_aois
        self.n_done = 0
        self._stages: dict[tuple[str, str], _Stage] = {}
        self._lock = threading.Lock()
        self._last_draw = 0.0
        self._bar_len = 0

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def update(self, aoi_id: str, stage: str, done: int, total: int | None = None, *, unit: str = "items") -> None:
        """``done`` of ``total`` ``unit`` of ``stage`` of ``aoi_id``; the stage ends when ``done == total``."""
        if not self.enabled:
            return
        with self._lock:
            now = time.monotonic()
            key = (aoi_id, stage)
            st = self._stages.get(key)
            first = st is None
            if st is None:
                st = self._stages[key] = _Stage(aoi_id, stage, unit)
            if st.ended:
                return
            st.done, st.unit = done, unit
            if total is not None:
                st.total = total
            if st.total is not None and done >= st.total:
                st.ended = True
            if st.ended or first or now - st.last_line >= self.interval_s:
                if self.mode == "lines" or st.ended:
                    st.last_line = now
                    self._line(f"AOI {aoi_id}: {st.text(now)}")
            if self.mode == "bar":
                self._draw(now)

    def end(self, aoi_id: str, stage: str) -> None:
        """The stage is over: its last count becomes its total (a feed that missed the end)."""
        with self._lock:
            st = self._stages.get((aoi_id, stage))
            done, total, unit = (st.total or st.done, st.total or st.done, st.unit) if st else (1, 1, "items")
        self.update(aoi_id, stage, done, total, unit=unit)

    def note(self, aoi_id: str, text: str) -> None:
        """A one-off line about an AOI (e.g. the items a search found)."""
        if self.enabled:
            with self._lock:
                self._line(f"AOI {aoi_id}: {text}")

    def message(self, text: str) -> None:
        """A one-off line about the run (e.g. the dashboard address); URLs are redacted."""
        from .http import redact  # here: the CLI imports this module before it needs requests

        if self.enabled:
            with self._lock:
                self._line(" ".join(redact(w) if "://" in w else w for w in text.split(" ")))

    def aoi_done(self, aoi_id: str, status: str) -> None:
        """The AOI finished (``ok`` or ``failed: ...``); its stages leave the bar."""
        if not self.enabled:
            return
        with self._lock:
            self.n_done += 1
            for key in [k for k in self._stages if k[0] == aoi_id]:
                self._stages[key].ended = True
            total = f"/{self.n_aois}" if self.n_aois else ""
            self._line(f"AOI {aoi_id}: {status} [{self.n_done}{total} AOIs done]")

    def console_handler(self) -> logging.Handler:
        """A logging handler for the console that keeps the bar intact: each record is
        written above the bar, which is redrawn under it (``lines`` and ``off``: a plain
        stream handler on :attr:`stream`)."""
        if self.mode != "bar":
            return logging.StreamHandler(self.stream)
        return _AboveBarHandler(self)

    def close(self) -> None:
        if self.mode == "bar" and self._bar_len:
            with self._lock:
                self._clear()

    # ------------------------------------------------------------------ drawing (lock held)

    def _line(self, text: str) -> None:
        if self.mode == "bar":
            self._clear()
            self.stream.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
            self.stream.flush()
            self._draw(time.monotonic(), force=True)
        else:
            log.info("%s", text)

    def _clear(self) -> None:
        if self._bar_len:
            self.stream.write("\r\033[K")
            self._bar_len = 0

    def _draw(self, now: float, *, force: bool = False) -> None:
        if not force and now - self._last_draw < 0.2:
            return
        self._last_draw = now
        active = [st for st in self._stages.values() if not st.ended]
        if not active:
            self._clear()
            self.stream.flush()
            return
        head = f"[{self.n_done}/{self.n_aois} AOIs] " if self.n_aois else ""
        body = " | ".join(f"{st.aoi_id}: {st.text(now)}" for st in active[-3:])
        text = (head + body)[:200]
        self._clear()
        self.stream.write(text)
        self.stream.flush()
        self._bar_len = len(text)


class _AboveBarHandler(logging.Handler):
    def __init__(self, progress: RunProgress) -> None:
        super().__init__()
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # logging's own convention: never raise from emit
            self.handleError(record)
            return
        p = self.progress
        with p._lock:
            p._clear()
            p.stream.write(text + "\n")
            p.stream.flush()
            p._draw(time.monotonic(), force=True)


class SchedulerProgress:
    """Feeds ``progress.update(aoi_id, "compute", finished, all, unit="tasks")`` from the
    scheduler, for the tasks behind ``futures`` (``distributed``'s progress-bar protocol:
    a ``feed`` comm whose setup installs a :class:`distributed.diagnostics.progress.Progress`
    plugin for these keys). Best effort: a scheduler that refuses the feed (pickled
    functions disabled) only loses the compute counts.
    """

    def __init__(self, client: Any, futures: Iterable[Any], *, aoi_id: str, progress: RunProgress,
                 interval_s: float = 0.5) -> None:
        from distributed.diagnostics.progressbar import ProgressBar

        reporter = progress

        class _Bar(ProgressBar):  # type: ignore[misc]
            def _draw_bar(self, remaining: int = 0, all: int = 0, **kwargs: Any) -> None:  # noqa: A002
                if all:
                    reporter.update(aoi_id, "compute", all - remaining, all, unit="tasks")

        self._bar = _Bar(list(futures), scheduler=client.scheduler.address, interval=interval_s, complete=True)
        self._task: Any = None
        if progress.enabled:
            self._task = asyncio.run_coroutine_threadsafe(self._listen(), client.loop.asyncio_loop)

    async def _listen(self) -> None:
        try:
            await self._bar.listen()
        except Exception as exc:  # progress is optional: never fail a run for it
            log.debug("compute progress unavailable: %s", exc)

    def stop(self) -> None:
        comm = getattr(self._bar, "comm", None)
        if comm is not None:
            comm.abort()
        if self._task is not None:
            self._task.cancel()


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
