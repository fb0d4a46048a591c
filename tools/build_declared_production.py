"""Rebuild the shipped ``pipeline/data/declared_production.csv`` from the reference tables.

Reads ``kp_production.csv`` (KP figures as copied by the trade press) and
``non_kp_figures.csv`` (the Côte d'Ivoire national DGMG series) from ``pipeline/data/``
and rewrites ``declared_production.csv`` there. Run from the repository root::

    python -m tools.build_declared_production            # rewrite the shipped CSV
    python -m tools.build_declared_production --check    # exit 1 if it is out of date
    python tools/build_declared_production.py            # same as the first line

The script is a maintainer tool: it is not part of the installed ``pipeline`` package
(package discovery in ``pyproject.toml`` only includes ``pipeline*``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.declared.cells import _text
from pipeline.declared.sources import source_problem

#: ``pipeline/data/`` of this checkout (the files the package ships).
DATA_DIR = Path(__file__).resolve().parents[1] / "pipeline" / "data"

#: Columns of ``declared_production.csv``, in order (the KP shape as text cells).
COLUMNS: tuple[str, ...] = (
    "participant_iso3",
    "participant",
    "period",
    "carats",
    "value_usd",
    "usd_per_carat",
    "unit",
    "basis",
    "source",
    "note",
    "preferred_over",
)
NATIONAL_BASIS = "national (DGMG)"


def build_declared_production(kp_production: pd.DataFrame, national: pd.DataFrame) -> pd.DataFrame:
    """Build the shipped ``declared_production.csv`` from the reference tables.

    Parameters
    ----------
    kp_production
        ``kp_production.csv`` read as text (``dtype=str, keep_default_na=False``): KP
        figures per participant and year (trade-press copies of KP releases); every
        row is kept, with ``basis`` = ``KP``.
    national
        ``non_kp_figures.csv`` read as text: only the Côte d'Ivoire series
        ``production`` in carats for whole years is used (``basis`` =
        ``national (DGMG)``). Where that series has several rows for a year, the
        Ministry of Mines / DGMG page (``economie-ivoirienne.ci``, the live page before
        its ``dev.`` copy) wins over press copies, and the others are named in
        ``note``. Where a KP figure exists for the same year, the KP row is kept and
        its ``preferred_over`` names the national figure it was preferred over.

    Returns
    -------
    pandas.DataFrame
        Text cells in the KP shape: ``participant_iso3, participant, period, carats,
        value_usd, usd_per_carat, unit, basis, source, note, preferred_over``, sorted
        by participant and period. Figures are copied as printed; nothing is estimated
        (value-only rows keep ``carats`` empty). Rows whose source may not be cited (a
        staging copy of a site, a blog: :func:`pipeline.declared.sources.source_problem`) are
        left out; a national figure found only on a staging copy leaves its year without one.
    """
    out = [r for r in _kp_rows(kp_production) if source_problem(r["source"]) is None]
    kp_rows = {(o["participant_iso3"], o["period"]): o for o in out}
    for row in _national_rows(national):
        if source_problem(row["source"]) is not None:
            continue
        kp_row = kp_rows.get(("CIV", row["period"]))
        if kp_row is not None:
            kp_row["preferred_over"] = f"{NATIONAL_BASIS} {row['carats']} ct ({row['source']})"
            continue
        out.append(row)
    frame = pd.DataFrame(out, columns=list(COLUMNS))
    return frame.sort_values(["participant_iso3", "period"], kind="mergesort").reset_index(drop=True)


def _kp_rows(kp_production: pd.DataFrame) -> list[dict[str, str]]:
    """Every KP figure, copied as printed, with ``basis`` = ``KP``."""
    return [
        {
            "participant_iso3": _text(r.iso3),
            "participant": _text(r.participant),
            "period": _text(r.year),
            "carats": _text(r.carats),
            "value_usd": _text(r.value_usd),
            "usd_per_carat": _text(r.usd_per_carat),
            "unit": "carats",
            "basis": "KP",
            "source": _text(r.source),
            "note": _text(r.note),
            "preferred_over": "",
        }
        for r in kp_production.itertuples(index=False)
    ]


def _national_rows(national: pd.DataFrame) -> list[dict[str, str]]:
    """One row per year of the Côte d'Ivoire production series: the best-ranked figure,
    with the other figures for the year named in ``note``."""
    rows = []
    nat = _ranked_national(national)
    for year, g in nat.groupby(nat["year"].astype(str), sort=True):
        g = g.sort_values("_rank", kind="mergesort")
        best = g.iloc[0]
        rows.append(
            {
                "participant_iso3": "CIV",
                "participant": _text(best["country"]),
                "period": str(year),
                "carats": _text(best["quantity"]),
                "value_usd": "",
                "usd_per_carat": "",
                "unit": "carats",
                "basis": NATIONAL_BASIS,
                "source": _text(best["source"]),
                "note": _national_note(best, g.iloc[1:]),
                "preferred_over": "",
            }
        )
    return rows


def _ranked_national(national: pd.DataFrame) -> pd.DataFrame:
    """The Côte d'Ivoire whole-year production rows in carats, with ``_rank`` (0 best): the
    DGMG page (``economie-ivoirienne.ci``) before press copies, the live page before ``dev.``."""
    nat = national[
        (national["iso3"].astype(str) == "CIV")
        & (national["series"].astype(str) == "production")
        & (national["unit"].astype(str) == "carats")
        & national["year"].astype(str).str.fullmatch(r"\d{4}")
    ].copy()
    source = nat["source"].astype(str)
    nat["_rank"] = np.where(source.str.contains("//www.dev.", regex=False), 1, 0) + np.where(
        source.str.contains("economie-ivoirienne.ci", regex=False), 0, 2
    )
    return nat


def _national_note(best: Any, others: pd.DataFrame) -> str:
    """The best row's note, then each other figure for the year with its source and note."""
    notes = [_text(best["note"])]
    for o in others.itertuples(index=False):
        extra = f"other national figure {o.quantity} ct ({o.source})"
        notes.append(f"{extra}: {o.note}" if _text(o.note) else extra)
    return "; ".join(n for n in notes if n)


def _read_text_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite ``declared_production.csv`` in ``--data-dir`` (or, with ``--check``, only
    compare); returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="folder of the tables (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the CSV would change")
    args = parser.parse_args(argv)
    data_dir: Path = args.data_dir
    built = build_declared_production(
        _read_text_table(data_dir / "kp_production.csv"), _read_text_table(data_dir / "non_kp_figures.csv")
    )
    data = built.to_csv(index=False, lineterminator="\n").encode("utf-8")
    target = data_dir / "declared_production.csv"
    current = target.read_bytes() if target.exists() else None
    if args.check:
        print(f"{target}: {'up to date' if current == data else 'out of date'}")
        return 0 if current == data else 1
    target.write_bytes(data)
    print(f"{target}: {'unchanged' if current == data else 'rewritten'} ({len(built)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
