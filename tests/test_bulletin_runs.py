"""Bulletins across runs, end to end through the command line on a small synthetic scenario.

One output root receives three runs of ``python -m pipeline monitor``:

1. to 2023-12-31 (bulletin 1);
2. the same period again: bulletin 1, revision 2 (``bulletin.reissue: revise``), with the same
   sites, and no bulletin 2;
3. one quarter more, to 2024-03-31 (bulletin 2, with the PDF): the scenario has a pit that
   opens in January 2024, and the "reported for the first time" section lists exactly the
   sites whose ids were not in bulletin 1 (its revision 2).

The AOI's name carries a ``<script>`` that must show as text and never run (checked in a
real headless Chromium), and a test sanctions window puts the monitoring period under an
embargo so that the PDF has a cross-check flag to show.

The run tests are marked ``slow`` (about two minutes): run them with
``pytest -m slow tests/test_bulletin_runs.py`` or ``make test-all``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline.bulletin.wording import rule_title
from pipeline.demo import ScenarioSpec, write_scenario

REPO = Path(__file__).resolve().parents[1]
#: Four pits, the last opening on 2024-01-15 (seed 0): one appears in the added quarter.
SPEC = ScenarioSpec(
    shape_px=(90, 120), start=dt.date(2022, 7, 1), end=dt.date(2024, 3, 31), revisit_days=10,
    monitoring_start=dt.date(2023, 4, 1), n_pits=4, pit_open_margin_days=30, n_fields=1,
    n_bare_patches=1, n_burn_scars=0, field_area_ha=(0.8, 1.2), bare_patch_area_ha=(0.5, 1.0),
    pit_area_ha=(0.8, 1.5), n_abandoned=0, n_rivers=1, village=False, seed=0,
)
END_A = dt.date(2023, 12, 31)
END_B = dt.date(2024, 3, 31)
#: Would mark the page if the AOI name's script ran.
XSS_MARKER = "xss-executed"
EVIL_NAME = (f"Evil <script>document.documentElement.setAttribute('data-x','{XSS_MARKER}')</script>"
             " field")
EMBARGO_RULE = "activity_in_embargo"

#: Three pipeline runs (a Dask cluster, 64 dates, a PDF): about 2 minutes on two busy cores.
slow = pytest.mark.e2e  # part of the default run: these are acceptance checks of issue 6


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env=env)


def _config(folder: Path, *, pdf: bool, windows: Path) -> Path:
    path = folder / f"runs-{'pdf' if pdf else 'nopdf'}.yaml"
    path.write_text(
        "period:\n  start: 2023-04-01\n  period_months: 3\n"
        "search:\n  max_cloud_frac: 1.0\n"
        # Only the bands detection reads: the run's time goes into opening files.
        "acquire:\n  bands: [blue, green, red, nir, swir16, scl]\n  margin_m: 0\n  chunk_px: 128\n"
        "detect:\n  baseline_days: 270\n"
        f"crosscheck:\n  sanctions_windows: {windows}\n"
        f"bulletin:\n  demonstration: true\n  distribution: KP Participants only\n  pdf: {str(pdf).lower()}\n"
        "dask:\n  n_workers: 1\n  threads_per_worker: 2\n  memory_limit: 2GiB\n",
        encoding="utf-8",
    )
    return path


def _ids(path: Path) -> set[str]:
    return {f["properties"]["site_id"] for f in json.loads(path.read_text("utf-8"))["features"]}


def _section(html: str, anchor: str) -> str:
    return html.split(f'id="{anchor}"', 1)[1].split("</section>", 1)[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three monitor runs into one output root; returns paths and what each run left behind."""
    root = tmp_path_factory.mktemp("bulletin-runs")
    scenario = write_scenario(root / "scenario", SPEC)
    aoi = json.loads(scenario.aoi_path.read_text("utf-8"))
    aoi["features"][0]["properties"]["name"] = EVIL_NAME
    aoi_path = root / "evil.geojson"
    aoi_path.write_text(json.dumps(aoi, ensure_ascii=False), encoding="utf-8")
    windows = root / "windows.csv"
    windows.write_text(
        "window_id,participant_iso3,zone,kind,start,end,description,source\n"
        "test_embargo,CIV,,embargo,2023-07-01,2024-12-31,Test window: not a real embargo,test fixture\n",
        encoding="utf-8",
    )
    out = root / "out"
    common = ["--aoi", str(aoi_path), "--source", str(scenario.catalog_path), "--out", str(out),
              "--cache", str(root / "cache")]
    snapshots: dict[str, Any] = {}
    for label, end, pdf in (("first", END_A, False), ("again", END_A, False), ("more", END_B, True)):
        res = _cli("monitor", "--config", str(_config(root, pdf=pdf, windows=windows)),
                   "--end", end.isoformat(), *common)
        assert res.returncode == 0, res.stderr[-3000:]
        snapshots[label] = {
            "ids": _ids(out / "sites.geojson"),
            "html": (out / "bulletin.html").read_text("utf-8"),
            "bulletin": json.loads((out / "bulletin.json").read_text("utf-8")),
            "manifest": json.loads((out / "manifest.json").read_text("utf-8")),
        }
    return {"root": root, "out": out, "scenario": scenario, "runs": snapshots}


@slow
def test_numbering_and_archive(runs: dict[str, Any]) -> None:
    issues = [(runs["runs"][k]["manifest"]["bulletin_number"], runs["runs"][k]["manifest"]["revision"])
              for k in ("first", "again", "more")]
    assert issues == [(1, 1), (1, 2), (2, 1)]  # re-running a covered period revises its bulletin
    assert runs["runs"]["again"]["bulletin"]["revision"] == 2
    assert "No. 1, revision 2" in runs["runs"]["again"]["html"]
    # what the revision changes in the issue it replaces: the same run again lists the same sites
    assert runs["runs"]["again"]["bulletin"]["revision_changes"] == {"revision": 1, "added": [], "removed": []}
    assert "This revision replaces revision 1 of bulletin No. 1: it lists the same sites." in (
        runs["runs"]["again"]["html"])
    assert runs["runs"]["first"]["bulletin"]["revision_changes"] is None
    archive = runs["out"] / "archive"
    folders = ["bulletin-0001", "bulletin-0001-r2", "bulletin-0002"]
    assert sorted(p.name for p in archive.iterdir()) == folders
    for name in folders:
        assert (archive / name / "bulletin.html").is_file()
        assert (archive / name / "bulletin.json").is_file()
    assert "bulletin.json" in runs["runs"]["more"]["manifest"]["outputs"]


@slow
def test_first_bulletin_has_no_previous(runs: dict[str, Any]) -> None:
    first = runs["runs"]["first"]
    assert first["bulletin"]["previous_number"] is None
    assert first["bulletin"]["new_since_previous"] == []
    assert "first bulletin" in _section(first["html"], "new-since-previous")


@slow
def test_same_data_twice_gives_nothing_new(runs: dict[str, Any]) -> None:
    first, again = runs["runs"]["first"], runs["runs"]["again"]
    assert first["ids"], "the scenario should give sites before 2024"
    assert again["ids"] == first["ids"]  # tracking keeps every id
    # A revision of bulletin 1: measured, like bulletin 1, against the bulletin before it (none).
    assert again["bulletin"]["bulletin_number"] == 1 and again["bulletin"]["previous_number"] is None
    assert again["bulletin"]["new_since_previous"] == []
    assert all(a["new_since_previous"] == [] for a in again["bulletin"]["aois"])
    assert "first bulletin" in _section(again["html"], "new-since-previous")
    # same findings; the revision also says it lists the same sites as the issue it replaces
    revision = "This revision replaces revision 1 of bulletin No. 1: it lists the same sites."
    assert [s for s in again["bulletin"]["summary"][1:] if s != revision] == first["bulletin"]["summary"][1:]
    assert revision in again["bulletin"]["summary"]


@slow
def test_one_more_quarter_lists_exactly_the_new_sites(runs: dict[str, Any]) -> None:
    again, more = runs["runs"]["again"], runs["runs"]["more"]
    appeared = more["ids"] - again["ids"]
    assert appeared, "the pit opened on 2024-01-15 should appear in the added quarter"
    assert more["bulletin"]["previous_number"] == 1
    assert set(more["bulletin"]["new_since_previous"]) == appeared
    assert len(more["bulletin"]["new_since_previous"]) == len(appeared)  # no duplicates
    section = _section(more["html"], "new-since-previous")
    listed = set(re.findall(r"seguela-demo-[0-9a-f]{6}", section))
    assert listed == appeared
    for sid in again["ids"] & more["ids"]:
        assert sid not in section
    # What appeared is the ground truth's late pit, not a re-labelled old site.
    import geopandas as gpd

    from pipeline.evaluate import read_sites

    truth = gpd.read_file(runs["scenario"].truth_path)
    opened = pd.to_datetime(truth["opened"])
    late = truth[(truth["kind"] == "pit") & (opened > pd.Timestamp(END_A) - pd.Timedelta(days=60))]
    assert not late.empty
    sites = read_sites(runs["out"] / "sites.geojson")
    new_sites = sites[sites["site_id"].isin(appeared)]
    for geom in new_sites.geometry:
        assert late.intersects(geom).any()


@slow
def test_pdf_pages_and_text(runs: dict[str, Any], tmp_path: Path) -> None:
    pdf = runs["out"] / "bulletin.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    if not (shutil.which("pdftoppm") and shutil.which("pdftotext")):
        pytest.skip("poppler-utils (pdftoppm, pdftotext) is not installed")
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 4
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 2000 for p in pages)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True,
                          text=True, timeout=60).stdout
    flat = " ".join(text.split())
    assert "Bulletin No. 2" in flat
    assert " ".join(EVIL_NAME.split()) in flat  # the AOI name, script and all, as text
    flags = pd.read_csv(runs["out"] / "flags.csv")
    shown = flags[flags["participant_iso3"] == "CIV"]
    assert EMBARGO_RULE in set(shown["rule"])
    for rule in sorted(set(shown["rule"])):
        assert rule_title(rule) in flat, rule  # in the reader's words
        assert rule not in flat, rule  # never the rule's identifier
    # Anomalies of participants without an AOI here stay in flags.csv, not in the bulletin.
    others = flags[(flags["participant_iso3"] != "CIV") & flags["aoi_id"].isna()]
    assert not others.empty
    assert "flags.csv" in flat
    for iso3 in set(others["participant_iso3"]):
        assert f"· {iso3} ·" not in flat


@slow
def test_script_in_aoi_name_is_text_not_code(runs: dict[str, Any], tmp_path: Path) -> None:
    html_path = runs["out"] / "bulletin.html"
    html = html_path.read_text("utf-8")
    # The only script is the page's own interactive map (vendored Leaflet, allowed by its
    # CSP hash), the last element of the body; the AOI name is text.
    assert html.lower().count("<script") == 1
    assert html.index("<script>") > html.rindex("Evil &lt;script&gt;")
    assert re.search(r"script-src (&#39;|')sha256-", html)
    assert "Evil &lt;script&gt;document.documentElement" in html
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed")
    dom = _dump_dom(exe, html_path, tmp_path / "profile")
    assert f'data-x="{XSS_MARKER}"' not in dom  # the script would have set this attribute
    assert "Evil &lt;script&gt;" in dom  # the name is there, as text
    # Control: the same payload, unescaped and without the bulletin's CSP, does run.
    control = tmp_path / "control.html"
    control.write_text(f"<!DOCTYPE html><html><body><h1>{EVIL_NAME}</h1></body></html>", encoding="utf-8")
    assert f'data-x="{XSS_MARKER}"' in _dump_dom(exe, control, tmp_path / "profile2")


def _dump_dom(exe: str, page: Path, profile: Path) -> str:
    res = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
         "--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
        check=True, capture_output=True, text=True, timeout=90,
    )
    return res.stdout


def _archived(out: Path, n: int, statuses: dict[str, str], site_ids: dict[str, list[str]]) -> None:
    folder = out / "archive" / f"bulletin-{n:04d}"
    folder.mkdir(parents=True)
    features = [{"type": "Feature", "geometry": None, "properties": {"site_id": sid, "aoi_id": aoi}}
                for aoi, ids in site_ids.items() for sid in ids]
    (folder / "sites.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    (folder / "manifest.json").write_text(json.dumps(
        {"bulletin_number": n, "aois": {a: {"status": st} for a, st in statuses.items()}}))


def test_previous_bulletin_per_aoi(tmp_path: Path) -> None:
    """"New since" is measured, per AOI, against the last bulletin that processed that AOI."""
    from pipeline.outputs import previous_bulletin as _previous_bulletin

    assert _previous_bulletin(tmp_path) == (None, set())
    _archived(tmp_path, 1, {"a": "ok", "b": "ok"}, {"a": ["a-1"], "b": ["b-1", "b-2"]})
    assert _previous_bulletin(tmp_path) == (1, {"a-1", "b-1", "b-2"})
    # Bulletin 2: AOI b failed (no sites written for it); a lost nothing.
    _archived(tmp_path, 2, {"a": "ok", "b": "failed"}, {"a": ["a-1", "a-2"]})
    number, ids = _previous_bulletin(tmp_path)
    assert number == 2
    assert ids == {"a-1", "a-2", "b-1", "b-2"}  # b's sites come from bulletin 1, not "new"
    # Bulletin 3 processed b again and found one site only: b-2 is gone for good.
    _archived(tmp_path, 3, {"a": "ok", "b": "ok"}, {"a": ["a-1", "a-2"], "b": ["b-1"]})
    assert _previous_bulletin(tmp_path) == (3, {"a-1", "a-2", "b-1"})
    (tmp_path / "archive" / ".bulletin-0004.part").mkdir()  # an unfinished archive is ignored
    assert _previous_bulletin(tmp_path)[0] == 3


def _issued(out: Path, folder: str, start: str, end: str) -> None:
    path = out / "archive" / folder
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"period": {"start": start, "end": end}}))


def test_bulletin_reissue_revises_a_covered_period(tmp_path: Path) -> None:
    """``bulletin.reissue``: the same period again is a revision; another period the next number."""
    from pipeline.numbering import bulletin_issue

    q1, q2 = ("2024-01-01", "2024-03-31"), ("2024-04-01", "2024-06-30")
    first = bulletin_issue(tmp_path, *q1)
    assert (first.number, first.revision, first.previous) == (1, 1, None)
    _issued(tmp_path, "bulletin-0001", *q1)
    again = bulletin_issue(tmp_path, *q1)
    assert (again.number, again.revision, again.previous) == (1, 2, None)
    assert again.revises is not None and again.revises.folder.name == "bulletin-0001"
    _issued(tmp_path, "bulletin-0001-r2", *q1)
    second = bulletin_issue(tmp_path, *q2)
    assert (second.number, second.revision) == (2, 1)
    assert second.previous is not None and second.previous.folder.name == "bulletin-0001-r2"
    assert bulletin_issue(tmp_path, *q1).revision == 3  # an older period keeps its number
    assert bulletin_issue(tmp_path, *q1, reissue="new").number == 2
    assert (bulletin_issue(tmp_path, *q2, number=1).number, bulletin_issue(tmp_path, *q2, number=1).revision) == (1, 3)
