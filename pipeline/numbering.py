"""EDGE: bulletin numbers and revisions, from the archive of an output root.

Each complete run is archived as ``archive/bulletin-NNNN/`` (revision 1) or
``archive/bulletin-NNNN-rR/`` (revision R). The rule ``bulletin.reissue``:

- ``revise`` (default): a run whose covering period (start and end) is that of an archived
  bulletin revises that bulletin: same number, next revision ("No. 1, revision 2"). Running the
  same quarter twice (late imagery, a corrected threshold) does not issue a new bulletin;
- ``new``: every run issues the next number;
- ``bulletin.number`` set in the configuration: that number, as its next revision if it exists.

"The previous bulletin" of number N (the one "reported for the first time" is measured
against) is the latest revision of the highest number below N.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["ArchivedBulletin", "BulletinIssue", "ReissueRule", "archive_folder", "archived_bulletins",
           "bulletin_issue", "is_archive_folder"]

ReissueRule = Literal["revise", "new"]
_FOLDER = re.compile(r"^bulletin-(\d{4,})(?:-r(\d+))?$")


@dataclass(frozen=True)
class ArchivedBulletin:
    """One archived issue: number, revision, covering period (ISO dates, ``None`` if unknown)."""

    number: int
    revision: int
    folder: Path
    period: tuple[str, str] | None


@dataclass(frozen=True)
class BulletinIssue:
    """What this run issues: ``number`` and ``revision``, and the bulletin before it."""

    number: int
    revision: int
    previous: ArchivedBulletin | None
    revises: ArchivedBulletin | None = None
    """The issue this one replaces (same number, previous revision), if any."""
    notes: list[str] = field(default_factory=list)


def archive_folder(number: int, revision: int) -> str:
    """``bulletin-0001`` for revision 1, ``bulletin-0001-r2`` after.

    >>> archive_folder(1, 1), archive_folder(12, 3)
    ('bulletin-0001', 'bulletin-0012-r3')
    """
    return f"bulletin-{number:04d}" + ("" if revision == 1 else f"-r{revision}")


def is_archive_folder(name: str) -> bool:
    """Whether ``name`` is that of an archived issue (not a run's unfinished staging folder).

    >>> is_archive_folder("bulletin-0003-r2"), is_archive_folder(".bulletin-0003.part"), is_archive_folder("notes")
    (True, False, False)
    """
    return _FOLDER.match(name) is not None


def archived_bulletins(out_dir: Path) -> list[ArchivedBulletin]:
    """Every complete archived issue of ``out_dir``, by number then revision (unfinished
    ``.bulletin-*.part`` folders are ignored)."""
    archive = Path(out_dir) / "archive"
    if not archive.is_dir():
        return []
    found = []
    for folder in archive.iterdir():
        match = _FOLDER.match(folder.name)
        if not match or not folder.is_dir():
            continue
        found.append(ArchivedBulletin(int(match.group(1)), int(match.group(2) or 1), folder, _period(folder)))
    return sorted(found, key=lambda b: (b.number, b.revision))


def bulletin_issue(
    out_dir: Path, start: str, end: str, *, number: int | None = None, reissue: ReissueRule = "revise"
) -> BulletinIssue:
    """The number and revision of a run covering ``start`` to ``end`` (ISO dates) in ``out_dir``.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> bulletin_issue(root, "2023-01-01", "2023-12-31").number
    1
    """
    issues = archived_bulletins(out_dir)
    latest: dict[int, ArchivedBulletin] = {}
    for b in issues:
        latest[b.number] = b  # sorted: the last one seen is the latest revision
    if number is None and reissue == "revise":
        same = [b for b in latest.values() if b.period == (start, end)]
        if same:
            number = max(same, key=lambda b: b.number).number
    if number is None:
        number = max(latest, default=0) + 1
    revises = latest.get(number)
    revision = revises.revision + 1 if revises is not None else 1
    earlier = [n for n in latest if n < number]
    previous = latest[max(earlier)] if earlier else None
    return BulletinIssue(number=number, revision=revision, previous=previous, revises=revises)


def _period(folder: Path) -> tuple[str, str] | None:
    try:
        manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        period = manifest["period"]
        return str(period["start"]), str(period["end"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
