"""The result of validating a statistics table: the good rows and the rejected ones."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class RejectedRow:
    """A row left out of a statistics table, and why."""

    file: str
    """The file the row came from (or the label given to the validator)."""
    line: int
    """1-based physical line of the row in the file (the header is line 1)."""
    reason: str
    """One sentence naming the field at fault and how to fix it."""


@dataclass(frozen=True)
class DeclaredTable:
    """A validated statistics table: the rows the run uses and the rows it left out."""

    good: pd.DataFrame
    """Good rows (columns :data:`PRODUCTION_COLUMNS` or :data:`TRADE_COLUMNS`), sorted by
    participant, period start (and flow)."""
    rejected: tuple[RejectedRow, ...] = field(default_factory=tuple)
    """Rejected rows in file-line order."""
    file: str = ""
    """Where the table was read from."""

    def rejected_frame(self) -> pd.DataFrame:
        """Rejected rows as a DataFrame with columns ``file, line, reason``."""
        return pd.DataFrame(
            [(r.file, r.line, r.reason) for r in self.rejected], columns=["file", "line", "reason"]
        )


@dataclass(frozen=True)
class CrosscheckTables:
    """The three tables a run's cross-check reads (``crosscheck.*``), read once, when the run's
    input is checked (:func:`pipeline.validate_inputs.check_tables`), and used as read."""

    declared: DeclaredTable
    """Declared production (``crosscheck.declared_production``)."""
    trade: DeclaredTable
    """Trade statistics (``crosscheck.trade_statistics``)."""
    windows: pd.DataFrame
    """Sanctions and status windows (``crosscheck.sanctions_windows``; see
    :func:`pipeline.declared.read_windows`)."""
