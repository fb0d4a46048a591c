"""The site register: analysts' verdicts on sites, kept across runs.

An analyst who looks at a site records a verdict, ``confirmed`` (it is mining),
``false_alarm`` (it is not) or ``uncertain``, with the date of the judgement, their name and
a note (``python -m pipeline review``). The register keeps every verdict ever recorded, keyed by
the stable ``site_id`` together with the site's outline at the time, in one SQLite file
(``review.register_path``; by default ``site_register.sqlite`` in the output folder). The
latest verdict of a site is the one that counts.

What a monitor run does with it (:func:`apply_verdicts`):

- every site carries its latest ``verdict`` (``unreviewed`` when there is none) and the date of
  that judgement into ``sites.geojson``, the site table and the map;
- a site judged ``false_alarm`` is no excavation site: it leaves the findings (sites, areas,
  activity, cross-check) and is listed apart (``sites_dismissed.geojson``, the bulletin's
  annex). It never comes back as *new*: a site of this run without a verdict of its own that
  overlaps a dismissed outline (``review.match_overlap_frac``) is that false alarm again,
  whatever id the tracking gave it;
- ``python -m pipeline train --from-register`` learns from the verdicts (``confirmed`` ->
  ``mining``, ``false_alarm`` -> ``not_mining``; ``uncertain`` teaches nothing).

Writes are transactions (``BEGIN IMMEDIATE``, SQLite's file lock), so analysts recording
verdicts at the same time, and runs reading the register meanwhile, never see half a batch;
a monitor run only reads. Analysts' names stay in the register: outputs carry the verdict and
its date only.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import difflib
import io
import sqlite3
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from .config import MonitorConfig
from .errors import ConfigError
from .io import read_run_manifest
from .limits import special_file

__all__ = [
    "REGISTER_NAME",
    "UNREVIEWED",
    "VERDICTS",
    "SiteRegister",
    "Verdict",
    "apply_verdicts",
    "read_verdicts_csv",
    "register_path",
    "run_register",
    "run_verdicts",
    "verdict_labels",
]

#: The verdicts an analyst can record.
VERDICTS = ("confirmed", "false_alarm", "uncertain")
#: A site nobody has judged yet.
UNREVIEWED = "unreviewed"
#: File name of the default register, in the output folder.
REGISTER_NAME = "site_register.sqlite"
#: Columns a run adds to every site from the register.
VERDICT_COLUMNS = ("verdict", "reviewed_on")

_SCHEMA_VERSION = 1
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS verdicts (
    entry        INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id      TEXT NOT NULL,
    aoi_id       TEXT NOT NULL,
    verdict      TEXT NOT NULL CHECK (verdict IN {VERDICTS!r}),
    reviewed_on  TEXT NOT NULL,
    analyst      TEXT NOT NULL,
    note         TEXT NOT NULL DEFAULT '',
    area_ha      REAL,
    geometry     TEXT,
    recorded_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_site ON verdicts (site_id, entry);
PRAGMA user_version = {_SCHEMA_VERSION};
"""
_COLUMNS = ("site_id", "aoi_id", "verdict", "reviewed_on", "analyst", "note", "area_ha", "geometry")


@dataclass(frozen=True)
class Verdict:
    """One analyst's judgement of one site."""

    site_id: str
    aoi_id: str
    verdict: str
    analyst: str
    reviewed_on: dt.date
    note: str = ""
    area_ha: float | None = None
    geometry: BaseGeometry | None = None
    """The site's outline (EPSG:4326) when it was judged."""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ConfigError(f"site {self.site_id}: verdict {self.verdict!r} is not one of {', '.join(VERDICTS)}")
        if not str(self.analyst).strip():
            raise ConfigError(f"site {self.site_id}: a verdict needs the analyst's name (--analyst)")
        if not str(self.site_id).strip():
            raise ConfigError("a verdict needs a site_id")


def register_path(cfg: MonitorConfig) -> Path:
    """The register a configuration names (``review.register_path``, else the output folder's)."""
    return cfg.review.register_path or cfg.out_dir / REGISTER_NAME


class SiteRegister:
    """The SQLite file of verdicts at ``path``; see the module docstring.

    Reading a register that does not exist gives no verdicts and creates nothing; the first
    :meth:`record` creates it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------------ writing

    def record(self, verdicts: Iterable[Verdict], *, now: dt.datetime | None = None) -> int:
        """Append ``verdicts`` in one transaction; the number recorded."""
        rows = list(verdicts)
        stamp = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0).isoformat()
        values = [
            (v.site_id, v.aoi_id, v.verdict, v.reviewed_on.isoformat(), v.analyst.strip(), v.note,
             None if v.area_ha is None else float(v.area_ha),
             None if v.geometry is None else shapely.to_wkt(v.geometry, rounding_precision=7), stamp)
            for v in rows
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect(write=True) as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany(
                    f"INSERT INTO verdicts ({', '.join(_COLUMNS)}, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    values,
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return len(values)

    # ------------------------------------------------------------------ reading

    def history(self) -> pd.DataFrame:
        """Every verdict ever recorded, oldest first (``entry`` gives the order)."""
        columns = ["entry", *_COLUMNS, "recorded_at"]
        if not self.path.exists():
            return pd.DataFrame(columns=columns)
        with self._connect(write=False) as con:
            rows = con.execute(f"SELECT {', '.join(columns)} FROM verdicts ORDER BY entry").fetchall()
        return pd.DataFrame(rows, columns=columns)

    def latest(self, aoi_id: str | None = None) -> gpd.GeoDataFrame:
        """The latest verdict of every site (of one AOI when given), outlines in EPSG:4326."""
        hist = self.history()
        if aoi_id is not None:
            hist = hist[hist["aoi_id"] == aoi_id]
        last = hist.sort_values("entry").groupby("site_id", sort=True).tail(1).sort_values("site_id")
        geometry = [shapely.from_wkt(w) if isinstance(w, str) and w else None for w in last["geometry"]]
        out = gpd.GeoDataFrame(last.drop(columns=["geometry"]).reset_index(drop=True), geometry=geometry, crs=4326)
        out["reviewed_on"] = pd.to_datetime(out["reviewed_on"]).dt.date if len(out) else out["reviewed_on"]
        return out

    @contextlib.contextmanager
    def _connect(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        try:
            if write:
                con = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            else:
                con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0,
                                      isolation_level=None)
        except sqlite3.Error as exc:
            raise ConfigError(f"site register {self.path}: cannot open ({exc}); check the path "
                              "(--register, or review.register_path in the config)") from None
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if write and version == 0:
                con.executescript(_SCHEMA)
            elif version != _SCHEMA_VERSION:
                raise ConfigError(f"site register {self.path}: not a register of this pipeline (schema "
                                  f"version {version}, expected {_SCHEMA_VERSION}); point --register (or "
                                  "review.register_path) at a register written by `python -m pipeline review`")
            yield con
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"site register {self.path}: {exc}; restore it from a backup or point "
                              "--register (or review.register_path) elsewhere") from None
        finally:
            con.close()


def apply_verdicts(
    sites: gpd.GeoDataFrame, verdicts: gpd.GeoDataFrame | None, *, min_overlap_frac: float
) -> gpd.GeoDataFrame:
    """``sites`` with each site's latest ``verdict`` and ``reviewed_on`` (module docstring).

    A site takes the verdict recorded under its own ``site_id``; a site without one that
    overlaps a ``false_alarm`` outline by ``min_overlap_frac`` of the smaller polygon becomes
    that false alarm (its id and verdict). ``verdicts`` are :meth:`SiteRegister.latest` rows of
    the sites' AOI.
    """
    out = sites.copy()
    out["verdict"] = UNREVIEWED
    out["reviewed_on"] = None
    if verdicts is None or verdicts.empty or out.empty:
        return out
    by_id = verdicts.set_index("site_id")
    own = out["site_id"].isin(by_id.index)
    out.loc[own, "verdict"] = out.loc[own, "site_id"].map(by_id["verdict"])
    out.loc[own, "reviewed_on"] = out.loc[own, "site_id"].map(by_id["reviewed_on"])
    dismissed = verdicts[(verdicts["verdict"] == "false_alarm") & verdicts.geometry.notna()]
    dismissed = dismissed[~dismissed["site_id"].isin(out["site_id"])]
    if dismissed.empty:
        return out
    dismissed = dismissed.to_crs(out.crs)
    taken: set[str] = set()
    for i in [i for i, mine in zip(out.index, own, strict=True) if not mine]:
        geom = out.geometry.loc[i]
        for _, d in dismissed.iterrows():
            if d["site_id"] in taken or not geom.intersects(d.geometry):
                continue
            if geom.intersection(d.geometry).area >= min_overlap_frac * min(geom.area, d.geometry.area):
                out.loc[i, ["site_id", "verdict", "reviewed_on"]] = [d["site_id"], "false_alarm", d["reviewed_on"]]
                taken.add(d["site_id"])
                break
    return out


def verdict_labels(register: SiteRegister) -> gpd.GeoDataFrame:
    """Training labels from the register, in :func:`pipeline.classify.read_labels`'s columns.

    ``confirmed`` -> ``mining``, ``false_alarm`` -> ``not_mining`` (``class``
    ``analyst_confirmed`` / ``analyst_false_alarm``; ``label_id`` ``register:<site_id>``);
    ``uncertain`` verdicts and verdicts without an outline teach nothing.
    """
    latest = register.latest()
    usable = latest[latest["verdict"].isin(("confirmed", "false_alarm")) & latest.geometry.notna()]
    label = usable["verdict"].map({"confirmed": "mining", "false_alarm": "not_mining"})
    return gpd.GeoDataFrame(
        {
            "label_id": [f"register:{s}" for s in usable["site_id"]],
            "label": label.to_numpy(),
            "class": ("analyst_" + usable["verdict"].astype(str)).to_numpy(),
            "y": (label == "mining").astype(int).to_numpy(),
        },
        geometry=shapely.make_valid(usable.geometry.to_numpy()), crs=4326,
    )


# --------------------------------------------------------------------------- a run's register


def run_register(run_dir: str | Path, register: str | Path | None = None) -> SiteRegister:
    """The register of a monitor run's output folder: ``register`` when given, else the one its
    configuration named (``review.register_path`` in ``manifest.json``), else the folder's own."""
    if register is not None:
        return SiteRegister(register)
    run = Path(run_dir)
    manifest = read_run_manifest(run)
    configured = manifest.get("config", {}).get("review", {}).get("register_path")
    # manifest.json names local files relative to the run folder (older runs: absolute paths).
    return SiteRegister(run / configured if configured else run / REGISTER_NAME)


def run_verdicts(run_dir: str | Path, entries: pd.DataFrame, *, today: dt.date | None = None) -> list[Verdict]:
    """Verdicts on sites of a run from ``entries`` (``site_id, verdict, analyst`` and optional
    ``date``, ``note``): each gets its site's AOI, area and outline from the run's
    ``sites.geojson`` (or ``sites_dismissed.geojson``: a dismissed site can be judged again).

    Raises
    ------
    ConfigError
        A site that is not in the run, a bad verdict, date or missing analyst (one line each,
        naming the row).
    """
    run = Path(run_dir)
    known = _run_sites(run)
    out = []
    judged: dict[tuple[str, dt.date], tuple[str, str]] = {}  # (site, day) -> (verdict, where)
    for k, row in enumerate(entries.to_dict("records")):
        where = str(row.get("where") or (f"row {k + 1}" if len(entries) > 1 else "verdict"))
        site_id = str(row.get("site_id") or "").strip()
        if site_id not in known.index:
            raise ConfigError(f"{where}: site {site_id!r} is not in {run / 'sites.geojson'} nor in "
                              "sites_dismissed.geojson; use an id from `python -m pipeline review list`")
        when = row.get("date")
        try:
            reviewed_on = dt.date.fromisoformat(str(when)) if when not in (None, "") and not pd.isna(when) else (
                today or dt.date.today())
        except ValueError:
            raise ConfigError(f"{where}: date {when!r} is not a date; use YYYY-MM-DD") from None
        latest = (today or dt.date.today()) + dt.timedelta(days=1)  # a day's slack: "today" east of UTC
        if reviewed_on > latest:
            raise ConfigError(f"{where}: date {reviewed_on} is in the future; give the day the judgement was made "
                              "(leave it out for today)")
        verdict = str(row.get("verdict") or "").strip()
        before = judged.setdefault((site_id, reviewed_on), (verdict, where))
        if before[0] != verdict:  # which one stands would depend on the row order alone
            raise ConfigError(f"{where}: site {site_id!r} is judged {verdict!r} on {reviewed_on}, and "
                              f"{before[0]!r} on the same day at {before[1].rpartition(': ')[2]}; keep the one meant")
        site = known.loc[site_id]
        note = row.get("note")
        for field, allowed in (("analyst", ""), ("note", "\n\t")):
            text = row.get(field)
            bad = [c for c in text if _hidden(c) and c not in allowed] if isinstance(text, str) else []
            if bad:  # an escape sequence would act on the terminal of whoever lists or prints the register
                raise ConfigError(f"{where}: {field} holds a control character ({bad[0]!r}); write it as plain text")
        out.append(Verdict(
            site_id=site_id, aoi_id=str(site["aoi_id"]), verdict=verdict,
            analyst=str(row.get("analyst") or ""), reviewed_on=reviewed_on,
            note="" if note is None or (isinstance(note, float) and pd.isna(note)) else str(note),
            area_ha=float(site["area_ha"]), geometry=site.geometry,
        ))
    return out


#: The columns of a verdicts CSV (``review import``): required, then optional.
CSV_COLUMNS = ("site_id", "verdict", "analyst", "date", "note")


#: Bidirectional embeddings, overrides and isolates: they show text in another order than it is
#: stored ("Trojan source"). The direction marks (U+200E, U+200F, U+061C) that right-to-left
#: text copied from a word processor carries are not among them.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _hidden(char: str) -> bool:
    """A control character (C0, DEL, C1) or a bidirectional embedding, override or isolate."""
    return unicodedata.category(char) == "Cc" or char in _BIDI_CONTROLS


def read_verdicts_csv(path: str | Path) -> pd.DataFrame:
    """A CSV of verdicts (``site_id, verdict, analyst`` and optional ``date, note``), one row a
    verdict; the ``where`` column names the file and line for :func:`run_verdicts`' messages.

    Raises
    ------
    ConfigError
        One line naming the file (and the line): not a regular file, unreadable, not UTF-8,
        malformed CSV, a column missing, named twice, or a near miss of one (a misspelt
        ``notes`` dropped the notes; other extra columns are ignored), a row with more or fewer
        fields than the header (the columns shifted: a verdict was read as the site id).
    """
    path = Path(path)
    fix = "write a CSV with columns site_id, verdict, analyst[, date, note]"
    if special_file(path):
        raise ConfigError(f"verdicts {path} is not a regular file (a pipe or a device); {fix}")
    try:
        text = path.read_text(encoding="utf-8-sig")
        rows = [(n, row) for n, row in _csv_rows(text) if any(v.strip() for v in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"verdicts {path}: cannot read as CSV ({' '.join(str(exc).split())}); {fix}") from None
    if not rows:
        raise ConfigError(f"verdicts {path} is empty; {fix}")
    header_line, header = rows[0]
    header = [h.strip() for h in header]
    where = f"verdicts {path}: line {header_line}"
    twice = sorted({h for h in header if header.count(h) > 1})
    # a near miss of a column (`notes`, `Site_ID`) would drop what it holds; other columns (a
    # spreadsheet's aoi_id, area_ha) are the analyst's own and are ignored
    unknown = [h for h in header if h not in CSV_COLUMNS and difflib.get_close_matches(h.lower(), CSV_COLUMNS, n=1,
                                                                                      cutoff=0.8)]
    missing = [c for c in CSV_COLUMNS[:3] if c not in header]
    if twice:
        raise ConfigError(f"{where}: column {twice[0]!r} appears twice; keep one")
    if unknown:
        near = difflib.get_close_matches(unknown[0].lower(), CSV_COLUMNS, n=1, cutoff=0.8)[0]
        raise ConfigError(f"{where}: column {unknown[0]!r} is not read (did you mean {near!r}?); the columns are "
                          "site_id, verdict, analyst[, date, note]")
    if missing:
        raise ConfigError(f"verdicts {path}: missing column(s) {', '.join(missing)}; the columns are "
                          "site_id, verdict, analyst[, date, note]")
    records = []
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise ConfigError(f"verdicts {path}: line {line} has {len(row)} fields, the header {len(header)}; "
                              "quote values that contain commas and keep one field per column")
        records.append({**dict(zip(header, row, strict=True)), "where": f"verdicts {path}: line {line}"})
    return pd.DataFrame(records, columns=[*header, "where"], dtype=str)


def _csv_rows(text: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    return [(reader.line_num, row) for row in reader]


def _run_sites(run: Path) -> gpd.GeoDataFrame:
    frames = []
    for name in ("sites.geojson", "sites_dismissed.geojson"):
        path = run / name
        if path.is_file():
            frame = gpd.read_file(path)
            if not frame.empty:
                frames.append(frame.to_crs(4326)[["site_id", "aoi_id", "area_ha", "geometry"]])
    if not frames:
        empty = gpd.GeoDataFrame({"site_id": [], "aoi_id": [], "area_ha": []}, geometry=[], crs=4326)
        return empty.set_index("site_id")
    both = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)
    return both.drop_duplicates("site_id").set_index("site_id")

