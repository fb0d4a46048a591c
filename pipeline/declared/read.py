"""EDGE readers: open a statistics or windows CSV (a given path, or a table shipped in
``pipeline/data/``) and hand its cells, as text with their line numbers, to the validators."""

from __future__ import annotations

import csv
import importlib.resources
import io
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ..errors import DeclaredStatsError
from ..limits import MAX_TABLE_BYTES
from .tables import DeclaredTable
from .validate import validate_declared, validate_trade, validate_windows

#: Folder of the shipped, sourced tables.
DATA_DIR = importlib.resources.files("pipeline") / "data"


def read_declared_production(
    path: str | Path | None = None, *, known_participants: Iterable[str] | None = None
) -> DeclaredTable:
    """Read and validate a declared-production table in the KP public-statistics shape.

    Parameters
    ----------
    path
        CSV file; ``None``: the shipped, sourced ``pipeline/data/declared_production.csv``.
    known_participants
        ISO3 codes accepted as participants; ``None``: :data:`KP_PARTICIPANTS`.

    Returns
    -------
    DeclaredTable
        ``good``: one row per participant and period, carats (may be NaN when only the
        value was published), ``value_usd``, ``source``...; ``rejected``: file, line and
        reason for every row left out (see :func:`validate_declared`).

    Raises
    ------
    DeclaredStatsError
        The file cannot be read, lacks a required column, or has no usable row.
    """
    label, raw = _read_cells(path, default="declared_production.csv")
    return validate_declared(raw, file=label, known_participants=known_participants)


def read_trade(
    path: str | Path | None = None, *, known_participants: Iterable[str] | None = None
) -> DeclaredTable:
    """Read and validate a trade table (KP shape, long form: one row per participant,
    period and flow).

    Columns: ``participant_iso3, period (YYYY, YYYYH1, YYYYQ1), flow (import|export),
    carats, value_usd[, usd_per_carat, certificates, source, note]``. ``path=None``
    reads the shipped ``pipeline/data/kp_trade.csv``.
    """
    label, raw = _read_cells(path, default="kp_trade.csv")
    return validate_trade(raw, file=label, known_participants=known_participants)


def read_windows(path: str | Path | None = None) -> pd.DataFrame:
    """Read the sanctions and status windows (``None``: the shipped
    ``pipeline/data/sanctions_windows.csv``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`WINDOW_COLUMNS`; ``start``/``end`` as ``datetime64`` days
        (``end`` NaT: still open), ``zone`` ``""`` for the whole participant.

    Raises
    ------
    DeclaredStatsError
        On the first malformed row (file and line named). Windows are never silently
        dropped: a missing embargo window would hide activity that must be flagged.
    """
    label, raw = _read_cells(path, default="sanctions_windows.csv")
    return validate_windows(raw, file=label)


def _read_cells(path: str | Path | None, *, default: str) -> tuple[str, pd.DataFrame]:
    """Read a CSV as text cells plus the physical line of each record (``_line``)."""
    label, text = _read_text(path, default=default)
    return label, _cells(text, label=label)


def _read_text(path: str | Path | None, *, default: str) -> tuple[str, str]:
    """The file's label for messages and its text (``None``: the shipped table ``default``)."""
    if path is None:
        resource = DATA_DIR / default
        label = f"pipeline/data/{default}"
        try:
            return label, resource.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise DeclaredStatsError(f"cannot read shipped table {label}: {exc}") from None
    label = str(path)
    try:
        size = Path(path).stat().st_size
    except OSError:
        size = 0  # reported by the read below
    if size > MAX_TABLE_BYTES:
        raise DeclaredStatsError(
            f"{label} is larger than {MAX_TABLE_BYTES >> 20} MiB ({size / (1 << 20):,.0f} MiB); a statistics "
            "table has tens to thousands of rows: is it the right file?"
        )
    try:
        return label, Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeclaredStatsError(
            f"cannot read {label}: {getattr(exc, 'strerror', None) or exc}; "
            "check the path (crosscheck.* in the config) and save the file as UTF-8 CSV"
        ) from None


def _cells(text: str, *, label: str) -> pd.DataFrame:
    """CSV text -> one row of text cells per non-blank record, with ``_line`` (physical line)
    and ``_extra`` (the record has non-empty cells beyond the header)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DeclaredStatsError(f"{label}: file is empty; expected a CSV header line") from None
    except csv.Error as exc:
        raise DeclaredStatsError(f"{label} line 1: {exc}") from None
    rows, lines = [], []
    first = reader.line_num + 1
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                rows.append(record + [""] * (len(header) - len(record)))
                lines.append(first)
            first = reader.line_num + 1
    except csv.Error as exc:
        raise DeclaredStatsError(f"{label} line {reader.line_num}: {exc}") from None
    width = len(header)
    raw = pd.DataFrame([r[:width] for r in rows], columns=header, dtype=object)
    raw["_line"] = lines
    raw["_extra"] = [len(r) > width and any(c.strip() for c in r[width:]) for r in rows]
    return raw
