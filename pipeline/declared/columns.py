"""Column contracts of the statistics tables, and the mapping of a file's header onto them
(case-insensitive, with the common aliases such as ``iso3``, ``year``, ``volume_carats``)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

import pandas as pd

from ..errors import DeclaredStatsError

WindowKind = Literal["embargo", "suspension", "monitoring"]

#: Window kinds; ``embargo`` and ``suspension`` raise ``activity_in_embargo``.
WINDOW_KINDS: tuple[str, ...] = ("embargo", "suspension", "monitoring")

#: Columns of the good-rows frame of a production table, in order.
PRODUCTION_COLUMNS: tuple[str, ...] = (
    "participant_iso3",
    "participant",
    "period",
    "period_kind",
    "year",
    "period_start",
    "period_end",
    "carats",
    "value_usd",
    "usd_per_carat",
    "unit",
    "basis",
    "source",
    "note",
    "preferred_over",
    "file",
    "line",
)
#: Columns of the good-rows frame of a trade table, in order.
TRADE_COLUMNS: tuple[str, ...] = (
    "participant_iso3",
    "participant",
    "period",
    "period_kind",
    "year",
    "period_start",
    "period_end",
    "flow",
    "carats",
    "value_usd",
    "usd_per_carat",
    "certificates",
    "unit",
    "source",
    "note",
    "file",
    "line",
)
#: Columns of a sanctions-windows table, in order.
WINDOW_COLUMNS: tuple[str, ...] = (
    "window_id",
    "participant_iso3",
    "zone",
    "kind",
    "start",
    "end",
    "description",
    "source",
)

_COLUMN_ALIASES: Mapping[str, str] = {
    "iso3": "participant_iso3",
    "iso": "participant_iso3",
    "iso_code": "participant_iso3",
    "participant_code": "participant_iso3",
    "country_iso3": "participant_iso3",
    "country": "participant",
    "name": "participant",
    "participant_name": "participant",
    "volume_carats": "carats",
    "volume_ct": "carats",
    "volume": "carats",
    "production_carats": "carats",
    "quantity_carats": "carats",
    "value": "value_usd",
    "value_us": "value_usd",
    "usd": "value_usd",
    "production_value_usd": "value_usd",
    "value_us_dollars": "value_usd",
    "usd_ct": "usd_per_carat",
    "us_ct": "usd_per_carat",
    "value_usd_ct": "usd_per_carat",
    "usd_per_ct": "usd_per_carat",
    "units": "unit",
    "direction": "flow",
    "certificate_count": "certificates",
    "kp_certificates": "certificates",
    "n_certificates": "certificates",
}


def _normalise_columns(raw: pd.DataFrame, *, file: str) -> tuple[pd.DataFrame, list[int]]:
    frame = raw.copy()
    if "_line" in frame.columns:
        lines = [int(v) for v in frame["_line"]]
    else:
        lines = [i + 2 for i in range(len(frame))]
    renamed: dict[str, str] = {}
    for col in frame.columns:
        if col in ("_line", "_extra"):
            continue
        key = re.sub(r"[^a-z0-9]+", "_", str(col).strip().lower()).strip("_")
        key = _COLUMN_ALIASES.get(key, key)
        if key in renamed.values():
            continue  # first spelling wins (e.g. both "iso3" and "participant_iso3")
        renamed[col] = key
    frame = frame.rename(columns=renamed)
    if "period" not in frame.columns and "year" in frame.columns:
        frame["period"] = frame["year"]
    return frame.reset_index(drop=True), lines


def _require(frame: pd.DataFrame, needed: Sequence[str], *, file: str, shape: str) -> None:
    for spec in needed:
        options = spec.split("|")
        if not any(o in frame.columns for o in options):
            raise DeclaredStatsError(
                f"{file}: missing column {' or '.join(repr(o) for o in options)}; "
                f"the KP shape is: {shape}"
            )
