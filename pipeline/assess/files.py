"""EDGE: the sample the analyst labels, written out and read back.

``sample.csv`` is the form: one row per point, ``point_id, lon, lat, stratum, label`` with
``label`` empty. The analyst fills ``label`` with ``mining`` or ``not_mining`` (from the
chips, or better imagery) and hands the file back; :func:`read_labels_csv` checks it
against the sample and names the line of every problem. ``sample.gpkg`` (layer ``sample``)
holds the same points with the paths of their chips, for a GIS.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from pipeline.errors import ConfigError
from pipeline.io import atomic_path, write_csv
from pipeline.limits import special_file

from .estimate import REFERENCE_CLASSES

__all__ = ["SAMPLE_CSV_COLUMNS", "points_record", "read_labels_csv", "same_points", "write_sample"]

#: Columns of ``sample.csv``, in order.
SAMPLE_CSV_COLUMNS: tuple[str, ...] = ("point_id", "lon", "lat", "stratum", "label")
_CHIP_COLUMNS: tuple[str, ...] = ("chip_before", "chip_after", "before_source", "after_source")


def write_sample(points: pd.DataFrame, out_dir: str | Path, *, chips: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write ``sample.csv`` (the labelling form) and ``sample.gpkg``, atomically.

    Parameters
    ----------
    points
        :func:`pipeline.assess.design.draw_sample`'s result (``point_id``, ``lon``, ``lat``
        in EPSG:4326 degrees, ``stratum``).
    out_dir
        Folder; created if needed.
    chips
        :func:`pipeline.assess.chips.write_chips`'s result (same index as ``points``); its
        chip paths go into ``sample.gpkg``.

    Returns
    -------
    dict
        ``{"sample.csv": path, "sample.gpkg": path}``. The CSV has exactly the columns
        :data:`SAMPLE_CSV_COLUMNS`, ``label`` empty, coordinates with 7 decimals (about 1 cm);
        the GeoPackage layer ``sample`` has the same columns, the chip columns when ``chips``
        is given, and EPSG:4326 point geometry.
    """
    missing = [c for c in SAMPLE_CSV_COLUMNS[:-1] if c not in points.columns]
    if missing:
        raise ConfigError(f"points lack column(s) {missing}; pass draw_sample()'s result")
    form = pd.DataFrame({c: points[c] for c in SAMPLE_CSV_COLUMNS[:-1]}).assign(label="")
    out = Path(out_dir)
    text = form.assign(lon=form["lon"].map("{:.7f}".format), lat=form["lat"].map("{:.7f}".format))
    paths = {"sample.csv": write_csv(text, out / "sample.csv")}
    layer = form.copy()
    if chips is not None:
        layer = layer.join(chips[[c for c in _CHIP_COLUMNS if c in chips.columns]])
    geometry = gpd.points_from_xy(form["lon"].astype(float), form["lat"].astype(float), crs=4326)
    with atomic_path(out / "sample.gpkg", suffix=".gpkg") as tmp:
        gpd.GeoDataFrame(layer, geometry=geometry).to_file(tmp, driver="GPKG", layer="sample")
    paths["sample.gpkg"] = out / "sample.gpkg"
    return paths


def points_record(points: pd.DataFrame) -> list[list[Any]]:
    """A sample's points as ``design.json`` records them (``points``): ``[point_id, stratum,
    lon, lat]`` in order, coordinates to 7 decimals as in ``sample.csv``."""
    return [[str(pid), str(stratum), round(float(lon), 7), round(float(lat), 7)]
            for pid, stratum, lon, lat in zip(points["point_id"], points["stratum"], points["lon"], points["lat"],
                                               strict=True)]


def same_points(points: pd.DataFrame, record: Sequence[Sequence[Any]]) -> bool:
    """Whether ``points`` (a ``sample.csv`` read back) are points of ``record``
    (:func:`points_record`): each row's id is recorded, with the same stratum and within
    :data:`POSITION_TOLERANCE_DEG` of its recorded position. Rows may be missing (points the
    analyst could not interpret, deleted as :func:`read_labels_csv` allows) or in another order (a
    spreadsheet's sort); a label filled in, or the file saved again by a spreadsheet, changes
    nothing. A column missing or a coordinate that is not a number: ``False``."""
    try:
        now = points_record(points)
    except (KeyError, TypeError, ValueError):
        return False
    drawn = {str(b[0]): b for b in record}
    return all(
        (b := drawn.get(a[0])) is not None and a[1] == str(b[1]) and abs(a[2] - float(b[2])) <= POSITION_TOLERANCE_DEG
        and abs(a[3] - float(b[3])) <= POSITION_TOLERANCE_DEG for a in now)


def read_labels_csv(path: str | Path, *, sample: pd.DataFrame) -> pd.DataFrame:
    """Read the analyst's labelled ``sample.csv`` and check it against the sample.

    Parameters
    ----------
    path
        CSV (UTF-8, a byte-order mark is fine) with at least the columns
        :data:`SAMPLE_CSV_COLUMNS`; ``label`` is ``mining`` or ``not_mining`` (case and
        surrounding spaces ignored). Rows may be removed (points that cannot be
        interpreted) but not added; removing points for reasons tied to their class biases
        the estimates.
    sample
        The sample as drawn (``point_id``, ``stratum``; :func:`draw_sample` or ``sample.csv``).

    Returns
    -------
    pandas.DataFrame
        One row per labelled point, in sample order: ``point_id``, ``lon``, ``lat``,
        ``stratum`` (from ``sample``, which is authoritative) and ``label``.

    Raises
    ------
    ConfigError
        One line naming the file, the line and the fix: unreadable, binary or non-UTF-8
        content, missing columns, a malformed row, an empty or unknown ``point_id``, a
        duplicate, a ``stratum`` that differs from the sample's, an unknown label, or
        unlabelled points (how many, and the first).
    """
    path = Path(path)
    records = _records(_read_text(path), path)
    strata = dict(zip(sample["point_id"].astype(str), sample["stratum"].astype(str), strict=True))
    positions = (dict(zip(sample["point_id"].astype(str), zip(sample["lon"].astype(float), sample["lat"].astype(float),
                                                              strict=True), strict=True))
                 if {"lon", "lat"} <= set(sample.columns) else {})
    labels = _collect_labels(records, strata, path, positions=positions)
    keep = sample[sample["point_id"].astype(str).isin(labels)]
    cols = [c for c in SAMPLE_CSV_COLUMNS[:-1] if c in keep.columns]
    out = pd.DataFrame(keep[cols]).reset_index(drop=True)
    out["label"] = out["point_id"].astype(str).map(labels)
    return out


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


#: How far (degrees, about 11 m) a labelled point's lon/lat may be from the sample's: a
#: spreadsheet that saves 4 decimals moves a point by up to 0.00005 degrees.
POSITION_TOLERANCE_DEG = 1e-4


def _collect_labels(records: list[tuple[int, dict[str, str]]], strata: dict[str, str], path: Path, *,
                    positions: dict[str, tuple[float, float]] | None = None) -> dict[str, str]:
    """``{point_id: label}`` of the records, each checked against the sample's strata and, when
    ``positions`` are given, its lon/lat (labels of another sample with the same point ids and
    strata would otherwise be read without a word)."""
    labels: dict[str, str] = {}
    seen: dict[str, int] = {}
    unlabelled: list[tuple[int, str]] = []
    for line, rec in records:
        where = f"labels {path}: line {line}"
        pid = rec["point_id"].strip()
        if pid not in strata:
            what = "empty point_id" if not pid else f"point_id {pid!r} is not in the sample"
            raise ConfigError(f"{where}: {what}; keep the point_id column of sample.csv unchanged")
        if pid in seen:
            raise ConfigError(f"{where}: point_id {pid!r} repeats line {seen[pid]}; keep one row per point")
        seen[pid] = line
        if rec["stratum"].strip() != strata[pid]:
            raise ConfigError(
                f"{where}: stratum of {pid} is {rec['stratum'].strip()!r}, the sample's is {strata[pid]!r}; "
                "restore it (is this the labels file of another sample?)"
            )
        if positions and pid in positions:
            _check_position(rec, positions[pid], pid=pid, where=where)
        label = rec["label"].strip().lower()
        if not label:
            unlabelled.append((line, pid))
        elif label not in REFERENCE_CLASSES:
            raise ConfigError(f"{where}: label {rec['label']!r} of {pid}; use 'mining' or 'not_mining'")
        else:
            labels[pid] = label
    if unlabelled:
        line, pid = unlabelled[0]
        raise ConfigError(
            f"labels {path}: {len(unlabelled)} of {len(records)} points are unlabelled (first: {pid} at line {line}); "
            "label them 'mining' or 'not_mining', or remove their rows"
        )
    return labels


def _check_position(rec: dict[str, str], expected: tuple[float, float], *, pid: str, where: str) -> None:
    try:
        lon, lat = float(rec["lon"]), float(rec["lat"])
    except ValueError:
        raise ConfigError(f"{where}: lon/lat of {pid} ({rec['lon']!r}, {rec['lat']!r}) are not numbers; restore "
                          "them from sample.csv") from None
    if not (abs(lon - expected[0]) <= POSITION_TOLERANCE_DEG and abs(lat - expected[1]) <= POSITION_TOLERANCE_DEG):
        raise ConfigError(f"{where}: {pid} is at ({lon}, {lat}), the sample's point at ({expected[0]:.7f}, "
                          f"{expected[1]:.7f}); restore its lon/lat (is this the labels file of another sample?)")


def _read_text(path: Path) -> str:
    if special_file(path):
        raise ConfigError(f"labels {path} is not a regular file (a pipe or a device); pass the labelled sample.csv")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read labels {path}: {exc.strerror or exc}; check the path") from None
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ConfigError(f"labels {path} is binary, not CSV (NUL byte at line {line}); export it as CSV UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"labels {path}: line {line} is not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as CSV UTF-8"
        ) from None


def _records(text: str, path: Path) -> list[tuple[int, dict[str, str]]]:
    """``(line number, {column: value})`` per non-blank data row; checks the header and row lengths."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise ConfigError(f"labels {path}: line {reader.line_num}: malformed CSV ({exc}); re-export it") from None
    rows = [(n, r) for n, r in rows if any(v.strip() for v in r)]
    if not rows:
        raise ConfigError(f"labels {path} is empty; fill in the label column of sample.csv and save it here")
    header_line, header = rows[0]
    header = [h.strip() for h in header]
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:  # one of the two would be read silently (the last), and the estimate changes with it
        raise ConfigError(f"labels {path}: line {header_line}: column {twice[0]!r} appears twice; keep one")
    missing = [c for c in SAMPLE_CSV_COLUMNS if c not in header]
    if missing:
        raise ConfigError(
            f"labels {path}: line {header_line}: missing column(s) {missing}; "
            f"the header must hold {','.join(SAMPLE_CSV_COLUMNS)} as in sample.csv"
        )
    if len(rows) == 1:
        raise ConfigError(f"labels {path} has a header but no points; label the rows of sample.csv")
    out = []
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise ConfigError(
                f"labels {path}: line {line} has {len(row)} fields, the header {len(header)}; "
                "quote values that contain commas and keep one field per column"
            )
        out.append((line, dict(zip(header, row, strict=True))))
    return out
