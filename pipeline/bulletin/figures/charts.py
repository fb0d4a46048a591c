"""Activity chart: disturbed and newly disturbed area per period."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import Formatter

from ..formatting import _num
from ..i18n import _

__all__ = ["plot_activity"]


def plot_activity(
    activity: pd.DataFrame, *, title: str | None = None, width_in: float = 7.0
) -> Figure:
    """Disturbed and newly disturbed area per period.

    Bars: ``new_ha`` (area first disturbed in the period); line: ``disturbed_ha``
    (all area disturbed at the end of the period). Periods whose
    ``valid_fraction`` is below 0.5 are hatched and marked: their figures rest on
    little clear imagery. ``activity`` has the ``activity.csv`` columns.
    """
    fig = Figure(figsize=(width_in, 2.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    frame = activity.sort_values("period_start").reset_index(drop=True)
    if frame.empty:
        ax.text(0.5, 0.5, _("no activity recorded"), ha="center", va="center",
                transform=ax.transAxes, fontsize=9, color="0.4")
        ax.set_axis_off()
        return fig
    x = np.arange(len(frame))
    new = pd.to_numeric(frame["new_ha"], errors="coerce").fillna(0.0).to_numpy()
    disturbed = pd.to_numeric(frame["disturbed_ha"], errors="coerce").to_numpy()
    valid = pd.to_numeric(
        frame.get("valid_fraction", pd.Series(1.0, index=frame.index)), errors="coerce"
    ).fillna(1.0).to_numpy()
    low = valid < 0.5
    _draw_activity(ax, x, new, disturbed, low)
    _format_activity_axes(ax, frame, x, new, disturbed)
    _activity_legend(ax, low)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return fig


def _draw_activity(
    ax: Axes, x: np.ndarray, new: np.ndarray, disturbed: np.ndarray, low: np.ndarray
) -> None:
    """Bars of newly disturbed area (hatched where clear imagery was scarce), line of disturbed."""
    bars = ax.bar(x, new, width=0.6, color="#E69F00", edgecolor="#8a5d00", linewidth=0.6,
                  label=_("newly disturbed (ha)"), zorder=2)
    for bar, is_low in zip(bars, low, strict=True):
        if is_low:
            bar.set_hatch("////")
            bar.set_alpha(0.55)
    ax.plot(x, disturbed, color="#0072B2", marker="o", markersize=4, linewidth=1.8,
            label=_("disturbed at period end (ha)"), zorder=3)


def _format_activity_axes(
    ax: Axes, frame: pd.DataFrame, x: np.ndarray, new: np.ndarray, disturbed: np.ndarray
) -> None:
    """Hectares from zero with headroom, periods as tick labels, light horizontal grid."""
    ax.set_ylabel(_("hectares"), fontsize=8)
    ax.set_ylim(bottom=0, top=max(float(np.nanmax(disturbed)) if np.isfinite(disturbed).any()
                                  else 0.0, float(new.max()), 1e-3) * 1.15)
    ax.set_xticks(x, [_period_label(r.period_start, r.period_end) for r in frame.itertuples()],
                  fontsize=7, rotation=0 if len(frame) <= 6 else 45,
                  ha="center" if len(frame) <= 6 else "right")
    ax.tick_params(axis="y", labelsize=7)
    ax.yaxis.set_major_formatter(_TickDecimals())
    ax.grid(axis="y", color="0.88", linewidth=0.6, zorder=0)
    ax.spines[["top", "right"]].set_visible(False)


class _TickDecimals(Formatter):
    """Tick labels with the fewest decimals (at most 3) that show every tick of the axis
    exactly, the same for all: 0, 5, 10 or 0.0, 2.5, 5.0, 7.5, 10.0 (a label per value had
    given "5.0" next to "10"), in the reader's language."""

    def __init__(self) -> None:
        self._decimals = 0

    def set_locs(self, locs: Any) -> None:
        super().set_locs(locs)
        values = np.asarray(locs, dtype=float)
        self._decimals = next((d for d in range(3) if np.allclose(values, np.round(values, d), rtol=0, atol=1e-9)), 3)

    def __call__(self, x: float, pos: int | None = None) -> str:
        return _num(float(x), self._decimals)


def _activity_legend(ax: Axes, low: np.ndarray) -> None:
    handles, _labels = ax.get_legend_handles_labels()
    if low.any():
        handles.append(Rectangle((0, 0), 1, 1, fc="white", ec="0.4", hatch="////",
                                 label=_("< 50 % clear observations")))
    ax.legend(handles=handles, fontsize=7, frameon=False, loc="upper left")


def _period_label(start: Any, end: Any) -> str:
    s, e = pd.Timestamp(start), pd.Timestamp(end)
    return f"{s:%Y-%m-%d}\n{e:%Y-%m-%d}"
