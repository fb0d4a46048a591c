"""Tests for :mod:`pipeline.bulletin`: files, self-containment, escaping, PDF text, summary."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import html as html_lib
import json
import re
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import get_args

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer
from shapely.geometry import box

from pipeline.bulletin import (
    DEMONSTRATION_MARKING,
    STATUS_COLOURS,
    STATUS_DEFINITIONS,
    STATUS_ORDER,
    AOIReport,
    BulletinContext,
    render_bulletin,
    summarise,
)
from pipeline.bulletin import render as render_module
from pipeline.composites import CompositeView
from pipeline.config import MonitorConfig, threshold_table
from pipeline.types import SITE_STATUSES, SiteStatus

EVIL = "<script>alert(1)</script>"
SITE_COLUMNS = ["site_id", "aoi_id", "area_ha", "first_seen", "last_seen", "status",
                "confidence", "n_obs"]


def _aoi(
    aoi_id: str, name: str, participant: str, iso3: str, *, epsg: int, lon: float, lat: float,
    sites: list[tuple[str, float, float, float, str]], seed: int,
    shape: tuple[int, int] = (150, 210), pixel_m: float = 10.0,
    new_since_previous: list[str] | None = None, error: str | None = None, dry_seasons: bool = False,
) -> AOIReport:
    """An AOI with a seeded synthetic scene; ``sites`` are (suffix, dx, dy, side_m, status);
    ``dry_seasons``: with the 2023 and 2024 dry-season composites (the chips compare them)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    cx, cy = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    left, top = round(cx - w * pixel_m / 2), round(cy + h * pixel_m / 2)
    extent = (left, top - h * pixel_m, left + w * pixel_m, top)
    veg = np.array([0.035, 0.06, 0.04], dtype="float32")
    coarse = rng.normal(0, 0.012, (h // 6 + 1, w // 6 + 1, 1)).astype("float32")
    texture = np.repeat(np.repeat(coarse, 6, axis=0), 6, axis=1)[:h, :w]  # fields, tree crowns
    before = veg * (1 + 8 * texture) + rng.normal(0, 0.003, (h, w, 3)).astype("float32")
    after = before + rng.normal(0, 0.002, (h, w, 3)).astype("float32")
    before[:12, -30:] = np.nan  # a cloud-masked corner: no data
    geoms, rows = [], []
    for k, (suffix, dx, dy, side, status) in enumerate(sites):
        x0, y0 = extent[0] + dx, extent[1] + dy
        geom = box(x0, y0, x0 + side, y0 + side)
        c0, r0 = int(dx / pixel_m), int(h - (dy + side) / pixel_m)
        c1, r1 = int((dx + side) / pixel_m), int(h - dy / pixel_m)
        soil = np.array([0.16, 0.13, 0.10], dtype="float32")
        after[r0:r1, c0:c1] = soil + rng.normal(0, 0.015, (r1 - r0, c1 - c0, 3))
        if status not in ("new",):
            before[r0:r1, c0:c1] = soil
        geoms.append(geom)
        rows.append({
            "site_id": f"{aoi_id}-{suffix}", "aoi_id": aoi_id, "area_ha": side * side / 1e4,
            "first_seen": "2024-04-01" if status == "new" else "2023-10-01",
            "last_seen": "2024-09-30", "status": status, "confidence": 0.6 + 0.1 * (k % 4),
            "n_obs": 3 + k,
        })
    sites_utm = gpd.GeoDataFrame(pd.DataFrame(rows, columns=SITE_COLUMNS), geometry=geoms,
                                 crs=f"EPSG:{epsg}")
    starts = pd.date_range("2023-10-01", periods=4, freq="3MS")
    activity = pd.DataFrame({
        "aoi_id": aoi_id,
        "period_start": [f"{s:%Y-%m-%d}" for s in starts],
        "period_end": [f"{s + pd.offsets.QuarterEnd(0):%Y-%m-%d}" for s in starts],
        "disturbed_ha": [1.2, 1.9, 2.4, 3.5],
        "new_ha": [1.2, 0.7, 0.5, 1.1],
        "valid_fraction": [0.9, 0.4, 0.8, 0.95],
    })
    return AOIReport(
        aoi_id=aoi_id, name=name, participant=participant, participant_iso3=iso3,
        sites=sites_utm.to_crs(4326), sites_utm=sites_utm, activity=activity,
        rgb_before=np.clip(before, 0, 1), rgb_after=np.clip(after, 0, 1),
        extent_utm=extent, epsg=epsg, new_since_previous=new_since_previous or [], error=error,
        season_views=[CompositeView("dry_season", dt.date(y, 5, 1), dt.date(y, 9, 30), np.clip(rgb, 0, 1))
                      for y, rgb in ((2023, before), (2024, after))] if dry_seasons else [],
        boundary=gpd.GeoSeries([box(*extent).buffer(-120, join_style="mitre")], crs=epsg).to_crs(4326).iloc[0],
    )


#: A path of the operator's machine, in a failed AOI's error: for run.log and manifest.json only.
OPERATOR_PATH = "/home/analyst/kp-cache/windows/S2B_1/B04.tif"


def make_context(*, previous_number: int | None = 1, demonstration: bool = True) -> BulletinContext:
    kasai = _aoi(
        "cd-kasai-01", f"Tshikapa {EVIL}", "Democratic Republic of the Congo", "COD",
        epsg=32734, lon=20.79, lat=-6.42, seed=1,
        sites=[("0001", 300, 400, 120, "new"), ("0002", 1200, 900, 80, "new"),
               ("0003", 1600, 300, 150, "expanding"), ("0004", 500, 1100, 90, "active"),
               ("0005", 1800, 1150, 70, "dormant")],
        new_since_previous=["cd-kasai-01-0001", "cd-kasai-01-0002"], dry_seasons=True,
    )
    kono = _aoi(
        "sl-kono-01", "Koidu fields", "Sierra Leone", "SLE", epsg=32629, lon=-10.97, lat=8.64,
        seed=2, sites=[("0001", 700, 500, 100, "active")],
    )
    kono = dataclasses.replace(kono, confirmable_frac=0.62, confirmations=3)  # a cloudy AOI: 38 % confirm nothing
    broken = AOIReport(
        aoi_id="ao-lunda-01", name="Lunda Norte", participant="Angola", participant_iso3="AGO",
        sites=gpd.GeoDataFrame(pd.DataFrame(columns=SITE_COLUMNS), geometry=[], crs=4326),
        sites_utm=gpd.GeoDataFrame(pd.DataFrame(columns=SITE_COLUMNS), geometry=[], crs=32733),
        activity=pd.DataFrame(columns=["aoi_id", "period_start", "period_end", "disturbed_ha",
                                       "new_ha", "valid_fraction"]),
        rgb_before=None, rgb_after=None, extent_utm=(0.0, 0.0, 1.0, 1.0), epsg=32733,
        error=f"none of the 12 item(s) could be fetched or read; first: S2B_1 ({OPERATOR_PATH}): No such file",
        failure="imagery_unreadable",
    )
    crosscheck = pd.DataFrame({
        "participant_iso3": ["COD", "COD", "SLE"], "aoi_id": ["cd-kasai-01"] * 2 + ["sl-kono-01"],
        "year": [2023, 2024, 2024], "disturbed_ha": [1.2, 3.5, 1.0],
        "est_carats_low": [12000, 35000, 9000], "est_carats_high": [48000, 140000, 36000],
        "declared_carats": [1234567, 2345678, 650000], "ratio": [0.04, 0.06, 0.055],
        "flags": ["", "ACTIVITY_WITHOUT_DECLARED_GROWTH", ""],
    })
    flags = pd.DataFrame({
        "rule": ["ACTIVITY_WITHOUT_DECLARED_GROWTH"], "participant_iso3": ["COD"],
        "aoi_id": ["cd-kasai-01"], "period": ["2024"],
        "evidence": ["disturbed area +84 % year on year; declared production -3 %"],
        "explanation": ["Detected excavation grew markedly while declared production fell."],
    })
    anomalies = pd.DataFrame({
        "rule": ["BENFORD_FIRST_DIGIT", "EXPORTS_ABOVE_SUPPLY"], "participant_iso3": ["SLE", "ZWE"],
        "aoi_id": ["", ""], "period": ["2015-2024", "2023"],
        "evidence": ["chi2 = 19.1, p = 0.014", "exports 5.6 Mct; production 4.9 Mct"],
        "explanation": ["First digits of declared monthly values depart from Benford's law.",
                        "ZWE exported more than it produced and imported."],
    })
    declared_sources = pd.DataFrame({
        "participant_iso3": ["COD", "COD", "SLE", "ZWE"], "year": [2023, 2024, 2024, 2023],
        "carats": [1234567, 2345678, 650000, 4914000],
        "source": ["https://kimberleyprocessstatistics.org/public_statistics",
                   "https://kimberleyprocessstatistics.org/public_statistics",
                   "KP annual summary table 2024 (printed)",
                   "https://example.invalid/zimbabwe-2023"],
    })
    scenes = pd.DataFrame({
        "aoi_id": ["cd-kasai-01", "cd-kasai-01", "sl-kono-01"],
        "item_id": ["S2B_34MDU_20231012_0_L2A", "S2A_34MDU_20240915_0_L2A",
                    "S2A_29PKM_20240301_0_L2A"],
        "datetime": ["2023-10-12T08:52:11Z", "2024-09-15T08:51:59Z", "2024-03-01T11:23:40Z"],
        "cloud_cover": [12.5, 3.25, 0.4],
        "href": ["https://example.invalid/a/red.tif", "https://example.invalid/b/red.tif",
                 "file:///tmp/demo/c/red.tif"],
    })
    thresholds = [
        {"section": "detect", "key": "ndvi_drop_min", "value": 0.15, "unit": "NDVI",
         "description": "Minimum NDVI loss between periods (Lobo et al. 2016).",
         "source": "Lobo et al. 2016"},
        {"section": "sites", "key": "min_area_m2", "value": 2500, "unit": "m²",
         "description": "Minimum mapping unit.", "source": "design choice"},
    ]
    return BulletinContext(
        number=7, title="Monitoring Bulletin: artisanal alluvial diamond mining",
        period_start=dt.date(2023, 10, 1), period_end=dt.date(2024, 9, 30),
        generated_at=dt.datetime(2024, 10, 5, 9, 30, tzinfo=dt.UTC),
        distribution="KP Participants only", demonstration=demonstration,
        aois=[kasai, kono, broken], crosscheck=crosscheck, flags=flags, anomalies=anomalies,
        declared_sources=declared_sources, scenes=scenes, thresholds=thresholds,
        validation={"precision": 0.91, "recall": 0.84, "f1": 0.8736, "n_truth": 12},
        software={"pipeline": "0.1.0", "numpy": np.__version__, "geopandas": gpd.__version__},
        config_digest="3f1a" * 16, previous_number=previous_number,
    )


def _without_figures(context: BulletinContext) -> BulletinContext:
    """The same bulletin minus imagery and activity: the template, in a fraction of the time."""
    aois = [replace(a, rgb_before=None, rgb_after=None, sites_utm=a.sites_utm.iloc[0:0],
                    activity=a.activity.iloc[0:0]) for a in context.aois]
    return replace(context, aois=aois)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[BulletinContext, dict[str, Path]]:
    out = tmp_path_factory.mktemp("bulletin")
    context = make_context()
    return context, render_bulletin(context, out, languages=("en", "fr"))


def test_figures_drawn_in_threads_are_those_drawn_in_turn(
        rendered: tuple[BulletinContext, dict[str, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The figures are drawn and written in background threads (``_FigureSaver``): the same
    bytes, listed in the same order, as when each is drawn where it is made, and the HTML
    embeds each figure's own bytes."""
    context, threaded = rendered
    monkeypatch.setattr(render_module._FigureSaver, "THREADS", 0)
    in_turn = render_bulletin(context, tmp_path, pdf=False, languages=("en", "fr"))
    figures = [k for k in threaded if k.startswith("figures/")]
    assert len(figures) > 5 and figures == [k for k in in_turn if k.startswith("figures/")]
    for name in figures:
        assert threaded[name].read_bytes() == in_turn[name].read_bytes(), name
    html = threaded["bulletin.html"].read_text("utf-8")
    assert "\0" not in html and "figure:" not in html
    for name in figures:
        if "/fr/" not in name:
            assert base64.b64encode(threaded[name].read_bytes()).decode("ascii") in html, name
    assert html == in_turn["bulletin.html"].read_text("utf-8")


def test_a_figure_that_fails_fails_the_bulletin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An error while a figure is drawn in its thread reaches the caller, and no HTML is written."""
    def broken(fig: object) -> bytes:
        raise RuntimeError("figure broke")
    monkeypatch.setattr(render_module.fg, "figure_png", broken)
    with pytest.raises(RuntimeError, match="figure broke"):
        render_bulletin(make_context(), tmp_path, pdf=False)
    assert not (tmp_path / "bulletin.html").exists()


def test_figures_waiting_to_be_drawn_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Building figures faster than they are drawn holds at most ``IN_FLIGHT`` of them (each
    holds its imagery), and every placeholder resolves to its own figure's result."""
    finished: list[str] = []

    def slow(fig: object, path: Path) -> str:
        time.sleep(0.03)
        finished.append(path.name)
        return f"data:{path.name}"

    monkeypatch.setattr(render_module, "_save_figure", slow)
    monkeypatch.setattr(render_module._FigureSaver, "IN_FLIGHT", 2)
    worst = 0
    with render_module._FigureSaver(tmp_path, "figures/", {}) as saver:
        tokens = []
        for k in range(8):
            tokens.append(saver.save(object(), f"f{k}.png"))  # type: ignore[arg-type]
            worst = max(worst, len(tokens) - len(finished))
        views = saver.resolve({"chips": [{"src": t} for t in tokens], "map": tokens[0], "n": 3})
    assert worst <= 2
    assert views == {"chips": [{"src": f"data:f{k}.png"} for k in range(8)], "map": "data:f0.png", "n": 3}


def test_a_figure_in_no_view_that_fails_still_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """:meth:`_FigureSaver.resolve` waits for every figure handed over, not only those the
    views show; a failure stops the figures still to be built."""
    def save(fig: object, path: Path) -> str:
        if path.name == "bad.png":
            raise RuntimeError("figure broke")
        return f"data:{path.name}"

    monkeypatch.setattr(render_module, "_save_figure", save)
    with render_module._FigureSaver(tmp_path, "figures/", {}) as saver:
        good = saver.save(object(), "good.png")  # type: ignore[arg-type]
        saver.save(object(), "bad.png")  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="figure broke"):
            saver.resolve({"map": good})  # waits for both
        with pytest.raises(RuntimeError, match="figure broke"):
            saver.save(object(), "later.png")  # type: ignore[arg-type]


def _pdf_text(path: Path) -> str:
    if shutil.which("pdftotext"):
        return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                              capture_output=True, text=True, timeout=60).stdout
    pytest.skip("pdftotext (poppler-utils) is not installed")


def test_files_written(rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    _, paths = rendered
    assert paths["bulletin.html"].stat().st_size > 10_000
    assert paths["bulletin.pdf"].read_bytes().startswith(b"%PDF")
    pngs = {k: v for k, v in paths.items() if k.startswith("figures/")}
    assert any(k.startswith("figures/map_") for k in pngs)
    assert any(k.startswith("figures/chips_") for k in pngs)
    assert any(k.startswith("figures/activity_") for k in pngs)
    for p in pngs.values():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The failed AOI gets no figures; no temporary files are left behind.
    assert not any("lunda" in k for k in pngs)
    leftovers = [p.name for p in paths["bulletin.html"].parent.rglob(".*.tmp")]
    assert leftovers == []


def test_html_is_self_contained(rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    html = rendered[1]["bulletin.html"].read_text(encoding="utf-8")
    assert "<link" not in html.lower()
    # One script: the interactive map's (vendored Leaflet + map.js), inline, allowed by its hash.
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S | re.I)
    assert len(scripts) == 1 and scripts[0][0] == ""
    digest = base64.b64encode(hashlib.sha256(scripts[0][1].encode("utf-8")).digest()).decode("ascii")
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', html)
    assert csp is not None and f"script-src 'sha256-{digest}'" in html_lib.unescape(csp.group(1))
    assert "default-src 'none'" in csp.group(1) and "connect-src" not in csp.group(1)
    style = html.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "@import" not in style and "url(" not in style
    assert "@import" not in html and "url(" not in html.replace('behavior="url(#default#VML)"', "")
    markup = re.sub(r"<script>.*?</script>", "", html, flags=re.S)  # the map script: checked above
    for tag, attr, value in re.findall(r"<(\w+)[^>]*?\s(src|href)=\"([^\"]*)\"", markup):
        if attr == "src":
            assert value.startswith("data:image/png;base64,"), (tag, value[:40])
        else:  # links may point outside (sources), but only anchors may carry them
            assert tag == "a", (tag, value)
            assert value.startswith(("#", "https://", "http://")), value


def test_input_strings_are_escaped(rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    html = rendered[1]["bulletin.html"].read_text(encoding="utf-8")
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_unsafe_source_links_are_not_links(tmp_path: Path) -> None:
    context = _without_figures(make_context())
    context.declared_sources.loc[2, "source"] = "javascript:alert(1)"
    html = render_bulletin(context, tmp_path, pdf=False)["bulletin.html"].read_text("utf-8")
    assert 'href="javascript' not in html
    assert "javascript:alert(1)" in html  # still cited, as text


def test_demonstration_marking(rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    context, paths = rendered
    html = paths["bulletin.html"].read_text(encoding="utf-8")
    assert DEMONSTRATION_MARKING in html
    pages = _pdf_text(paths["bulletin.pdf"]).split("\f")
    pages = [p for p in pages if p.strip()]
    assert len(pages) >= 4
    for page in pages:  # on every page, with number and distribution
        assert DEMONSTRATION_MARKING in page
        assert "No. 7" in page and "KP PARTICIPANTS ONLY" in page.upper()


def test_pdf_text(rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    context, paths = rendered
    text = _pdf_text(paths["bulletin.pdf"])
    assert "Bulletin No. 7" in text
    for name in ("Tshikapa", "Koidu fields", "Lunda Norte"):
        assert name in text
    # Rules in the reader's words, never their identifiers (those stay in flags.csv).
    assert "Activity without declared growth" in text and "ACTIVITY_WITHOUT_DECLARED_GROWTH" not in text
    assert "Benford first digit" in text and "BENFORD_FIRST_DIGIT" not in text
    assert "chi2 = 19.1" not in text  # evidence strings stay in flags.csv
    assert "Processing of this area failed" in text
    assert "2,345,678" in text  # thousands separators
    assert "kimberleyprocessstatistics.org" in text  # sources printed as text too


def test_no_demonstration_marking_for_real_runs(tmp_path: Path) -> None:
    context = _without_figures(make_context(demonstration=False))
    html = render_bulletin(context, tmp_path, pdf=False)["bulletin.html"]
    assert DEMONSTRATION_MARKING not in html.read_text(encoding="utf-8")


def test_new_since_previous_states(tmp_path: Path) -> None:
    context = _without_figures(make_context(previous_number=None))
    first = render_bulletin(context, tmp_path / "a", pdf=False)
    text = first["bulletin.html"].read_text(encoding="utf-8")
    assert "first bulletin" in text
    context = _without_figures(make_context(previous_number=6))
    for aoi in context.aois:
        aoi.new_since_previous.clear()
    out = render_bulletin(context, tmp_path / "b", pdf=False)
    text = out["bulletin.html"].read_text(encoding="utf-8")
    section = text.split('id="new-since-previous"')[1].split("</section>")[0]
    assert "None." in section and "Every site was listed in an earlier bulletin." in section
    assert "Listed again" not in section


def test_sites_listed_again_have_their_own_table_and_tag(tmp_path: Path) -> None:
    """A site an earlier bulletin listed, absent from the last one, is "listed again", not "reported
    for the first time" (pipeline.site_history)."""
    context = _without_figures(make_context(previous_number=6))
    first = context.aois[0]
    first.new_since_previous.clear()
    first.listed_again.append("cd-kasai-01-0003")
    text = render_bulletin(context, tmp_path, pdf=False)["bulletin.html"].read_text(encoding="utf-8")
    section = text.split('id="new-since-previous"')[1].split("</section>")[0]
    new_part, again_part = section.split("Listed again")
    assert "None." in new_part and "cd-kasai-01-0003" not in new_part
    assert "cd-kasai-01-0003" in again_part and "not in bulletin No. 6" in again_part
    assert "listed again (not in No. 6)" in text  # the tag in the AOI's site table


def test_new_since_previous_lists_sites(rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    html = rendered[1]["bulletin.html"].read_text(encoding="utf-8")
    section = html.split('id="new-since-previous"')[1].split("</section>")[0]
    assert "cd-kasai-01-0001" in section and "cd-kasai-01-0002" in section
    assert "cd-kasai-01-0003" not in section


def test_summarise_mentions_counts() -> None:
    context = make_context()
    sentences = summarise(context)
    text = " ".join(sentences)
    assert "6 excavation sites covering 6.6 ha are tracked" in text
    assert ("In the latest reporting period (2024-07-01 to 2024-09-30) 2 sites (2.1 ha) were new: "
            f"Tshikapa {EVIL} (2); 1 site (2.2 ha) was expanding") in text  # singular grammar
    assert "Activity without declared growth (Tshikapa" in text
    assert ("Processing failed for Lunda Norte: its imagery could not be fetched or read (the run's log gives the "
            "details).") in text
    assert all(s.endswith((".", ")")) for s in sentences)


def _chromium_requests(html: Path, tmp_path: Path, shot: Path) -> list[str]:
    """Open ``html`` in headless Chromium; return the URLs the *page* asked the network for.

    Chromium's own background traffic (time sync, component updates) has no page
    initiator (``"not an origin"``) and is ignored; file and data URLs are local. Nothing can
    leave the machine: no proxy, and every host name but loopback fails to resolve (the net
    log records a request before it is resolved).
    """
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed")
    netlog = tmp_path / f"{html.stem}.netlog.json"
    subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--disable-extensions", "--no-proxy-server",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         f"--user-data-dir={tmp_path / (html.stem + '-profile')}", f"--log-net-log={netlog}",
         f"--screenshot={shot}", "--window-size=1200,2400", html.as_uri()],
        check=True, capture_output=True, timeout=60,
    )
    text = netlog.read_text(encoding="utf-8").rstrip()
    if not text.endswith("}"):  # a log cut short is still a list of complete events
        text = text.rstrip(",") + "]}"
    log = json.loads(text)
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log.get("events", []):
        params = event.get("params", {})
        if event.get("type") != start_job or params.get("initiator") == "not an origin":
            continue
        url = str(params.get("url", ""))
        if url and not url.startswith(("file:", "data:", "about:", "chrome:")):
            urls.append(url)
    return urls


def test_chromium_loads_offline(rendered: tuple[BulletinContext, dict[str, Path]],
                                tmp_path: Path) -> None:
    """Real headless Chromium: the page renders and no request leaves the file."""
    shot = tmp_path / "bulletin.png"
    assert _chromium_requests(rendered[1]["bulletin.html"], tmp_path, shot) == []
    assert shot.stat().st_size > 10_000


def test_chromium_request_check_sees_requests(tmp_path: Path) -> None:
    """Control: the check above does catch a page that loads something from outside."""
    probe = tmp_path / "probe.html"
    probe.write_text('<img src="http://127.0.0.1:9/probe.png">', encoding="utf-8")
    assert _chromium_requests(probe, tmp_path, tmp_path / "probe.png") == [
        "http://127.0.0.1:9/probe.png"
    ]


def _anomaly_section(html: str) -> str:
    section = html.split("Statistical anomalies in declared figures", 1)[1].split('id="new-since-previous"', 1)[0]
    return section.replace("<wbr>", "")  # rule names may break after underscores


def test_anomalies_only_for_covered_participants(
    rendered: tuple[BulletinContext, dict[str, Path]],
) -> None:
    """The review covers every participant; the bulletin shows those it has AOIs for."""
    context, paths = rendered
    html = paths["bulletin.html"].read_text(encoding="utf-8")
    section = _anomaly_section(html)
    assert "Benford first digit" in section  # SLE: Koidu fields is in the bulletin
    assert "Exports above supply" not in html and "EXPORTS_ABOVE_SUPPLY" not in html  # ZWE: no AOI here
    assert "1 further anomaly concerns a participant with no area of interest" in section
    assert "(ZWE)" in section and "flags.csv" in section
    assert "example.invalid/zimbabwe" not in html  # its declared figure is not cited either
    text = " ".join(summarise(context))
    assert "found 1 anomaly (Benford first digit)" in text
    assert ("1 further anomaly, for participants without an area of interest in this bulletin, "
            "is listed in flags.csv") in text
    pdf = _pdf_text(paths["bulletin.pdf"])
    assert "Exports above supply" not in pdf and "Benford first digit" in pdf


def test_no_covered_anomalies_still_points_to_flags_csv(tmp_path: Path) -> None:
    context = _without_figures(make_context())
    context = replace(context, anomalies=context.anomalies[context.anomalies["participant_iso3"] == "ZWE"])
    html = render_bulletin(context, tmp_path, pdf=False)["bulletin.html"].read_text("utf-8")
    section = _anomaly_section(html)
    assert "No statistical anomalies were found in the declared figures of AGO, COD, SLE" in section
    assert "1 further anomaly" in section and "flags.csv" in section
    text = " ".join(summarise(context))
    assert "found no anomaly in the declared figures of AGO, COD and SLE; 1 further anomaly" in text


def test_annex_lists_key_and_changed_thresholds_with_unit_and_source(tmp_path: Path) -> None:
    """The annex lists the thresholds the findings rest on and those set to another value than
    their default, each with a unit and a source; ``bulletin.json`` lists every one."""
    cfg = MonitorConfig.model_validate({"detect": {"bare_bsi_min": 0.07, "water_mndwi_min": 0.25}})
    thresholds = threshold_table(cfg)
    context = replace(_without_figures(make_context()), thresholds=thresholds)
    paths = render_bulletin(context, tmp_path, pdf=False)
    html = paths["bulletin.html"].read_text("utf-8")
    annex = html.split("<h3>Thresholds</h3>", 1)[1].split("<h3>Validation</h3>", 1)[0]
    rows = re.findall(r"<tr><td>(\w+)</td><td class=\"mono key\">(.*?)</td><td class=\"num(?: long)?\">(.*?)</td>"
                      r"<td class=\"nowrap\">(.*?)</td>\s*<td class=\"small source\">(.*?)</td>", annex, re.S)
    tables = re.findall(r"<tr><td class=\"mono\">(\w+)</td>", annex)
    keys = {re.sub(r"<wbr>", "", k) for _, k, *_ in rows} | set(tables)
    from pipeline.bulletin.annex import KEY_PARAMETERS
    expected = ({k for _, k in KEY_PARAMETERS} | {"bare_bsi_min", "water_mndwi_min"}
                | {t["key"] for t in thresholds if t["unit"] == "CSV file"})
    assert keys == expected
    assert len(keys) < len(thresholds) / 3  # condensed: the rest are at their defaults
    data = json.loads(paths["bulletin.json"].read_text("utf-8"))
    assert {(t["section"], t["key"]) for t in data["thresholds"]} == {(t["section"], t["key"]) for t in thresholds}
    assert f"the other {len(thresholds) - len(keys)} are at their defaults" in html
    for _section, key, _value, unit, source in rows:
        assert unit.strip() not in ("", "–"), key
        assert source.strip(), key
    by_key = {re.sub(r"<wbr>", "", k): (v, u, src) for _, k, v, u, src in rows}
    assert by_key["grade_ct_per_m3"][:2] == ("0.05 – 0.5", "ct/m³")
    assert by_key["min_area_m2"][1] == "m²"
    assert by_key["bare_bsi_min"][0].startswith("0.07") and "default 0.05" in by_key["bare_bsi_min"][0]
    assert by_key["bare_bsi_min"][2] == "Rikimaru et al. 2002"
    assert by_key["water_mndwi_min"][2] == "Xu 2006"
    assert "not sourced" in by_key["recovery_frac"][2]
    assert set(tables) == {"declared_production", "trade_statistics", "sanctions_windows"}
    assert "``" not in annex and "<code>" in annex  # docstring markup rendered


def _annex_rows(html: str) -> list[tuple[str, str, str, str]]:
    """``(key, value, unit, source)`` of the parameter rows of the thresholds annex."""
    annex = html.split("<h3>Thresholds</h3>", 1)[1].split("<h3>Validation</h3>", 1)[0]
    rows = re.findall(r"<td class=\"mono key\">(.*?)</td><td class=\"num(?: long)?\">(.*?)</td>"
                      r"<td class=\"nowrap\">(.*?)</td>\s*<td class=\"small source\">(.*?)</td>", annex, re.S)
    return [(k.replace("<wbr>", ""), v, u, src) for k, v, u, src in rows]


def test_thresholds_print_unit_and_source_as_given(tmp_path: Path) -> None:
    """The bulletin derives no unit or source: it prints what it is given (empty unit: a dash)."""
    thresholds = [
        {"section": "detect", "key": "ndvi_drop_min", "value": 0.25, "unit": "",
         "description": "Cited (Lobo et al. 2016).", "source": ""},
        {"section": "sites", "key": "min_area_m2", "value": 2500, "unit": "square metres",
         "description": "Minimum mapping unit.", "source": "my own choice"},
        {"section": "crosscheck", "key": "declared_production", "value": None, "unit": "CSV file",
         "description": "CSV of declared production.", "source": "shipped"},
    ]
    context = replace(_without_figures(make_context()), thresholds=thresholds)
    paths = render_bulletin(context, tmp_path, pdf=False)
    rows = _annex_rows(paths["bulletin.html"].read_text("utf-8"))
    assert rows == [("ndvi_drop_min", "0.25", "–", ""), ("min_area_m2", "2,500", "square metres", "my own choice")]
    data = json.loads(paths["bulletin.json"].read_text(encoding="utf-8"))
    assert [(t["key"], t["unit"], t["source"]) for t in data["thresholds"]] == [
        ("ndvi_drop_min", "", ""), ("min_area_m2", "square metres", "my own choice"),
        ("declared_production", "CSV file", "shipped"),
    ]


def test_status_tables_follow_site_statuses() -> None:
    """Status order, colours and definitions all come from :data:`pipeline.types.SITE_STATUSES`."""
    assert STATUS_ORDER == SITE_STATUSES == get_args(SiteStatus)
    assert tuple(STATUS_COLOURS) == tuple(STATUS_DEFINITIONS) == SITE_STATUSES
    assert STATUS_COLOURS["new"] == "#FF00FF"
    assert STATUS_DEFINITIONS["new"] == "first detected in the latest reporting period"
    # what the data show: the ground seen changed, or not; never "fresh disturbance" (digging), which
    # bare ground left after it stops cannot be told from
    assert STATUS_DEFINITIONS["active"].startswith("first detected before the latest reporting period; its ground "
                                                   "was still seen disturbed")
    assert "does not say digging went on" in STATUS_DEFINITIONS["active"]
    assert STATUS_DEFINITIONS["dormant"].startswith("first detected before the latest reporting period; its ground "
                                                    "was not seen disturbed")
    assert not any("fresh" in text for text in STATUS_DEFINITIONS.values())


def test_bulletin_json(rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    context, paths = rendered
    data = json.loads(paths["bulletin.json"].read_text(encoding="utf-8"))
    assert data["bulletin_number"] == 7 and data["previous_number"] == 1
    assert data["new_since_previous"] == ["cd-kasai-01-0001", "cd-kasai-01-0002"]
    kasai = next(a for a in data["aois"] if a["aoi_id"] == "cd-kasai-01")
    assert kasai["name"] == f"Tshikapa {EVIL}" and kasai["status_counts"]["new"] == 2
    assert data["n_anomalies_shown"] == 1 and data["n_anomalies_elsewhere"] == 1
    assert data["summary"] == summarise(context)


# --------------------------------------------------------------------------- review and assessment

ASSESSMENT = {
    "bulletin_number": 6, "area_ha": 24.21, "area_ci95_ha": 2.74, "mapped_area_ha": 22.23,
    "overall_accuracy": 0.998, "overall_accuracy_ci95": 0.002, "n_points": 312,
    "users_accuracy": {"mining": 0.97, "not_mining": 0.999},
    "users_accuracy_ci95": {"mining": 0.033, "not_mining": 0.001},
    "producers_accuracy": {"mining": 0.92, "not_mining": 0.9999},
    "producers_accuracy_ci95": {"mining": 0.071, "not_mining": 0.0001},
    "error_matrix_counts": {"mining": {"mining": 97, "not_mining": 3}, "not_mining": {"mining": 4, "not_mining": 208}},
    "n_per_stratum": {"buffer": 104, "site": 100, "stable": 108},
    "stratum_area_ha": {"site": 22.23, "buffer": 61.5, "stable": 1160.1},
}


def _reviewed(context: BulletinContext) -> BulletinContext:
    """The Kasai AOI with one site confirmed, one uncertain, and a false alarm set apart."""
    kasai = context.aois[0]
    verdicts = ["confirmed", "uncertain", "unreviewed", "unreviewed", "unreviewed"]
    dates = [dt.date(2024, 10, 1), dt.date(2024, 10, 2), None, None, None]
    sites = kasai.sites.assign(verdict=verdicts, reviewed_on=dates)
    sites_utm = kasai.sites_utm.assign(verdict=verdicts, reviewed_on=dates)
    fa = kasai.sites.iloc[[0]].assign(site_id="cd-kasai-01-0099", area_ha=4.5, verdict="false_alarm",
                                      reviewed_on=dt.date(2024, 9, 1))
    fa["geometry"] = fa.geometry.translate(0.004, 0.004)
    aois = [replace(kasai, sites=sites, sites_utm=sites_utm, dismissed=fa), *context.aois[1:]]
    return replace(context, aois=aois, assessment=ASSESSMENT)


def test_verdicts_dismissed_sites_and_assessment_in_the_bulletin(tmp_path: Path) -> None:
    context = _reviewed(make_context())
    out = render_bulletin(context, tmp_path, pdf=False)
    html = out["bulletin.html"].read_text(encoding="utf-8")
    kasai = html.split('id="aoi-cd-kasai-01"')[1].split("</section>")[0]
    assert "<strong>confirmed</strong> 2024-10-01" in kasai and "<strong>uncertain</strong> 2024-10-02" in kasai
    assert kasai.count('small">unreviewed</td>') == 3
    dismissed = kasai.split("Dismissed by analysts")[1]
    assert "cd-kasai-01-0099" in dismissed and "4.5" in dismissed and "2024-09-01" in dismissed
    # The false alarm is counted nowhere: not a site row, and the summary says so.
    rows = kasai.split("Dismissed by analysts")[0]
    assert "cd-kasai-01-0099" not in rows
    review = next(s for s in summarise(context) if s.startswith("Review:"))
    assert review == ("Review: analysts have confirmed 1 of the 6 sites as mining, judged 1 uncertain and dismissed "
                      "1 further site (4.5 ha) as a false alarm, which no figure of this bulletin counts; 4 of the "
                      "6 sites are unreviewed.")
    # The annex: strata, error matrix and accuracies from the estimate.
    annex = html.split("Accuracy assessment")[1].split("<h3>")[0]
    assert "24.21 ha ± 2.74" in annex and "22.23 ha" in annex and "312" in annex
    for n in ("97", "3", "4", "208", "100", "104", "108"):
        assert f'<td class="num">{n}</td>' in annex, n
    assert "97.0 % ± 3.3" in annex and "92.0 % ± 7.1" in annex and "99.8 % ± 0.2" in annex
    data = json.loads(out["bulletin.json"].read_text(encoding="utf-8"))
    assert data["assessment"]["area_ci95_ha"] == 2.74
    aoi = data["aois"][0]
    assert aoi["verdict_counts"] == {"confirmed": 1, "uncertain": 1, "unreviewed": 3}
    assert aoi["dismissed_false_alarms"] == ["cd-kasai-01-0099"]


def test_without_assessment_the_annex_says_not_yet_assessed(tmp_path: Path) -> None:
    html = render_bulletin(_without_figures(make_context()), tmp_path, pdf=False)["bulletin.html"]
    annex = html.read_text(encoding="utf-8").split("Accuracy assessment")[1].split("<h3>")[0]
    assert "Not yet assessed" in annex
    assert not any(s.startswith("Review:") for s in summarise(make_context()))


def test_banner_text_extracts_cleanly(rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    """The running banner (not only the footer) carries the marking as words: no letter-spacing,
    which ``pdftotext`` would turn into "D E M O N S T R AT I O N"."""
    pages = [p for p in _pdf_text(rendered[1]["bulletin.pdf"]).split("\f") if p.strip()]
    for page in pages:
        head = "\n".join(page.strip().splitlines()[:3])
        assert DEMONSTRATION_MARKING in head
    assert "D E M O N" not in "\n".join(pages)


def test_definitions_box_and_reader_words(rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    """The statuses are defined once, in the bulletin's words; no rule id or evidence string is shown."""
    html = rendered[1]["bulletin.html"].read_text(encoding="utf-8")
    box = html.split('id="reading"', 1)[1].split("</section>", 1)[0]
    for status, text in STATUS_DEFINITIONS.items():
        assert f"<strong>{status}</strong>: {text}" in box
        assert html.count(text) == 1  # defined once
    assert "Reported for the first time" in box and "Not comparable" in box
    for internal in ("ACTIVITY_WITHOUT_DECLARED_GROWTH", "BENFORD_FIRST_DIGIT", "chi2 = 19.1", "log_rate"):
        assert internal not in html


def test_not_comparable_year_in_crosscheck_table(tmp_path: Path) -> None:
    context = _without_figures(make_context())
    cc = context.crosscheck.assign(coverage_frac=[1.0, 0.5, 1.0], ratio=[0.04, float("nan"), 0.055])
    thresholds = [*context.thresholds, {"section": "crosscheck", "key": "min_comparison_coverage_frac",
                                         "value": 0.9, "unit": "fraction (0–1)", "source": "design choice"}]
    context = replace(context, crosscheck=cc, thresholds=thresholds)
    html = render_bulletin(context, tmp_path, pdf=False)["bulletin.html"].read_text("utf-8")
    table = html.split('id="crosscheck"', 1)[1].split("</table>", 1)[0]
    rows = table.split("<tr")[2:]
    assert "not comparable" in rows[1] and "50 %" in rows[1]
    assert "not comparable" not in rows[0] and "100 %" in rows[0]
    text = " ".join(summarise(context))
    assert "Tshikapa" in text and "2024 (50 % of the year monitored) is not comparable" in text


def _visible_text(html: str) -> str:
    """What a reader sees of ``html``: no style or script, tags dropped, entities decoded,
    whitespace collapsed (attributes such as ``alt`` are not read)."""
    import html as html_lib

    body = re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"[ \t\r\n]+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", body)))


def _english_fragments(text: str, inputs: list[str]) -> list[str]:
    """Runs of 3 or more English words of ``text`` once placeholders, markup, numbers and the
    input-derived strings (names, explanations: not translated) are cut out."""
    for value in sorted(inputs, key=len, reverse=True):
        text = text.replace(value, "\x00")
    parts = re.split(r"%\([a-z_]+\)s|\{[a-z_]+\}|<[^>]+>|[\x00\d()\[\];:,.·\"“”–∞×±%]+", text)
    return [p.strip() for p in parts if len(p.split()) >= 3]


def _french_leftovers(context: BulletinContext, paths: dict[str, Path], extra: list[str] = ()) -> list[str]:
    """Runs of 3+ English words of the catalog's messages, the English summary and ``extra``
    (English sentences the edition shows) found in ``bulletin.fr.html``'s visible text."""
    from babel.messages.pofile import read_po

    from pipeline.bulletin.i18n import LOCALE_DIR, use_language

    french = _visible_text(paths["bulletin.fr.html"].read_text(encoding="utf-8"))
    inputs = [context.title, context.distribution, EVIL]
    inputs += [v for a in context.aois for v in (a.name, a.participant, a.aoi_id, str(a.error or ""))]
    inputs += [str(v) for v in context.flags["explanation"]] + [str(v) for v in context.anomalies["explanation"]]
    inputs += ["Activity without declared growth", "Benford first digit"]  # unknown rule ids, spelled out
    inputs += [str(s) for s in context.declared_sources["source"]]
    with (LOCALE_DIR / "fr" / "LC_MESSAGES" / "bulletin.po").open("rb") as fh:
        catalog = read_po(fh)
    english = [m.id for m in catalog if m.id]
    english = [t for m in english for t in ([m] if isinstance(m, str) else m)] + list(extra)
    with use_language("en"):
        english += summarise(context)
    code = {"python -m pipeline assess sample"}  # commands are quoted as they are typed
    return sorted({f for text in english for f in _english_fragments(text, inputs) if f in french and f not in code})


def test_french_edition_has_no_english_sentence(rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    """``bulletin.fr.html``: every template string and summary sentence translated (input strings,
    proper nouns, ids and numbers excepted), French number and date formats, ``lang="fr"``."""
    context, paths = rendered
    french_html = paths["bulletin.fr.html"].read_text(encoding="utf-8")
    french = _visible_text(french_html)
    assert _french_leftovers(context, paths) == []
    assert french_html.startswith("<!DOCTYPE html>") and '<html lang="fr">' in french_html
    assert '<html lang="en">' in paths["bulletin.html"].read_text(encoding="utf-8")
    # Babel/CLDR French: narrow no-break space thousands, decimal comma, spelled-out dates.
    assert "2\u202f345\u202f678" in french and "6,6 ha" in french
    assert "30 septembre 2024" in french and "5 octobre 2024" in french
    assert "Résumé" in french and "DÉMONSTRATION - IMAGERIE SYNTHÉTIQUE" in french
    assert "Ce n'est pas le statut nouveau" in french  # the status's French name, not its identifier
    assert "Le bulletin 7 couvre la période du 1er octobre 2023 au 30 septembre 2024" in french
    # The chips: same-season windows where the AOI has dry-season composites, else the fallback.
    assert ("Détecté pour la première fois le 1er avril 2024. Même saison : avant, le composite de saison "
            "sèche du 1er mai 2023 au 30 septembre 2023 ; après, celui du 1er mai 2024 au 30 septembre 2024.") in french
    assert paths["bulletin.fr.pdf"].read_bytes().startswith(b"%PDF")


SITE_MODEL = {
    "name": "kasai-model", "digest": "0123456789ab", "created": "2025-03-12T10:00:00", "calibration": "sigmoid",
    "threshold": 0.5, "n_training_candidates": 412, "n_training_groups": 37, "aois": ["cd-kasai-01"],
    "cv": {"precision": {"value": 0.91, "ci95": [0.85, 0.95]}, "recall": {"value": 0.84, "ci95": [0.77, 0.9]},
           "roc_auc": {"value": 0.95, "ci95": None}},
}


def test_french_annex_and_classifier_have_no_english_sentence(tmp_path: Path) -> None:
    """The methods annex of a real configuration, every parameter shown (meanings, units, sources),
    per-AOI rows (an AOI-file override, an Otsu threshold), and a site classifier's sentence: all
    in French in ``bulletin.fr.html``."""
    from pipeline.bulletin.annex import _first_sentence, detection_sentences
    from pipeline.bulletin.i18n import use_language
    from pipeline.outputs import threshold_rows
    from pipeline.workflow import AOIResult

    aoi = AOIResult(aoi_id="cd-kasai-01", row={"source_file": "kasai.geojson", "detect": {"ndvi_drop_min": 0.2}},
                    thresholds={"ndvi_drop_threshold": {"value": 0.31, "unit": "NDVI", "method": "otsu"}})
    # Without their defaults every row is shown, so every meaning, unit and source is rendered.
    thresholds = [{k: v for k, v in t.items() if k != "default"} for t in threshold_rows(MonitorConfig(), [aoi])]
    context = replace(_without_figures(make_context()), thresholds=thresholds, site_models=[SITE_MODEL])
    paths = render_bulletin(context, tmp_path, pdf=False, languages=("en", "fr"))
    english_html = paths["bulletin.html"].read_text(encoding="utf-8")
    with use_language("en"):
        extra = detection_sentences([SITE_MODEL])
    extra += [_first_sentence(str(t["description"])).format(file="kasai.geojson") for t in thresholds]
    extra += [str(t["unit"]) for t in thresholds] + [str(t["source"]) for t in thresholds]
    assert extra[0] in _visible_text(english_html)  # the English edition shows the classifier sentence
    assert _french_leftovers(context, paths, extra) == []
    french = _visible_text(paths["bulletin.fr.html"].read_text(encoding="utf-8"))
    assert "Le classificateur de sites « kasai-model »" in french and "12 mars 2025" in french
    assert "précision 0,91 (IC à 95 % 0,85-0,95)" in french and "AUC ROC 0,95" in french
    assert "Fixé pour cette zone dans son fichier de zone (kasai.geojson)" in french
    assert "Baisse minimale du NDVI par rapport à la référence" in french and "choix de conception" in french


def test_french_catalog_is_complete() -> None:
    """Every message of the package has a French translation (``tools/i18n_catalog.py --check``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "i18n_catalog", Path(__file__).resolve().parents[1] / "tools" / "i18n_catalog.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0


def test_compound_sources_are_translated_part_by_part() -> None:
    """A source like ``Breiman 2001; measured on make validate``: the citation prints as given,
    the worded part in the reader's language."""
    from pipeline.bulletin.annex import _source_text
    from pipeline.bulletin.i18n import use_language

    with use_language("fr"):
        assert _source_text("Breiman 2001; measured on make validate") == "Breiman 2001; mesuré par make validate"
        assert _source_text("") == ""
    with use_language("en"):
        assert _source_text("Breiman 2001; measured on make validate") == "Breiman 2001; measured on make validate"


def test_annex_switches_and_applied_rows_read_as_words() -> None:
    """Switches print yes/no (not Python's True), and the per-AOI rows' stage is translated."""
    from pipeline.bulletin.annex import _section
    from pipeline.bulletin.formatting import _value
    from pipeline.bulletin.i18n import use_language

    with use_language("en"):
        assert (_value(True), _value(False), _section("applied (cd-kasai)"), _section("detect")) == (
            "yes", "no", "applied (cd-kasai)", "detect")
    with use_language("fr"):
        assert (_value(True), _value(False), _section("applied (cd-kasai)")) == ("oui", "non", "appliqué (cd-kasai)")


def test_the_default_title_is_translated() -> None:
    """The run's title (``outputs.py``) is a catalog message and the template translates it."""
    from pipeline.bulletin.i18n import _, use_language

    template = (Path(__file__).resolve().parents[1] / "pipeline" / "bulletin" / "templates" / "bulletin.html.j2")
    assert "<h1>{{ _(c.title) }}" in template.read_text(encoding="utf-8")
    with use_language("fr"):
        assert _("WGM satellite monitoring bulletin") == "Bulletin de surveillance par satellite du GTS"


def test_languages_config_field() -> None:
    """``bulletin.languages``: default English only, with unit and source like the other fields."""
    from pipeline.config.reporting import BulletinParams

    field = BulletinParams.model_fields["languages"]
    assert BulletinParams().languages == ("en",)
    assert field.json_schema_extra == {"unit": "language codes", "source": "design choice"}
    assert BulletinParams(languages=["en", "fr"]).languages == ("en", "fr")
    with pytest.raises(ValueError):
        BulletinParams(languages=["de"])


def _chromium_dom(html: Path, tmp_path: Path) -> str:
    """The DOM of ``html`` after its scripts ran (headless Chromium, offline)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed")
    return subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--no-proxy-server",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         f"--user-data-dir={tmp_path / (html.stem + '-dom-profile')}", "--virtual-time-budget=5000",
         "--dump-dom", html.as_uri()],
        check=True, capture_output=True, text=True, timeout=90,
    ).stdout


def test_interactive_map_in_chromium(rendered: tuple[BulletinContext, dict[str, Path]], tmp_path: Path) -> None:
    """Leaflet (vendored, inline) builds one map per AOI with imagery: both composites as
    data-URI image overlays, the site outlines, the before/after layer control; French words in
    the French edition; no request leaves the file (CSP allows that one script by its hash)."""
    context, paths = rendered
    for name, words in (("bulletin.html", ("Before: ", "After: ", "Site outlines")),
                        ("bulletin.fr.html", ("Avant : ", "Après : ", "Contours des sites"))):
        shot = tmp_path / f"{name}.png"
        assert _chromium_requests(paths[name], tmp_path, shot) == []
        dom = _chromium_dom(paths[name], tmp_path)
        assert dom.count('class="leaflet-box leaflet-container') == 2  # Tshikapa, Koidu (Lunda failed)
        assert dom.count('class="leaflet-image-layer') == 2  # the "after" composite shown in each
        assert dom.count('class="leaflet-interactive"') == 6  # 5 + 1 site outlines
        assert 'class="leaflet-control-layers' in dom
        for word in words:
            assert word in dom


def test_interactive_map_is_html_only(rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    """The PDF keeps the static map: the interactive block is hidden in print."""
    _, paths = rendered
    assert "Interactive map" not in _pdf_text(paths["bulletin.pdf"])
    assert "Carte interactive" not in _pdf_text(paths["bulletin.fr.pdf"])
    assert "Interactive map: pan and zoom" in paths["bulletin.html"].read_text(encoding="utf-8")


def test_interactive_map_data_is_escaped(tmp_path: Path) -> None:
    """Input strings reach the map's JSON escaped (``\\u003c``...), never as markup or script."""
    from pipeline.bulletin.interactive import map_payload, safe_json

    assert "<" not in safe_json({"x": EVIL}) and "&" not in safe_json({"x": "a&b"})
    context = make_context()
    kasai = context.aois[0]
    sites = kasai.sites.assign(site_id=[f"{EVIL}-{i}" for i in range(len(kasai.sites))])
    payload = map_payload(replace(kasai, sites=sites), (0.0, 0.3), "before", "after")
    assert payload is not None and "<" not in payload and ">" not in payload
    assert json.loads(payload)["sites"]["features"][0]["properties"]["site_id"].startswith(EVIL)
    out = render_bulletin(replace(context, aois=[replace(kasai, sites=sites)]), tmp_path, pdf=False)
    html = out["bulletin.html"].read_text(encoding="utf-8")
    script = html.rsplit("<script>", 1)[1]
    assert EVIL not in script and "alert(1)" not in script.split("})();", 1)[-1]


def _pdfinfo(path: Path, *args: str) -> str:
    if not shutil.which("pdfinfo"):
        pytest.skip("pdfinfo (poppler-utils) is not installed")
    return subprocess.run(["pdfinfo", *args, str(path)], check=True, capture_output=True, text=True,
                          timeout=60).stdout


def test_pdf_is_tagged(rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    """PDF/UA-1 (WeasyPrint ``pdf_variant="pdf/ua-1"``): a structure tree with headings, tables
    and figures, in both editions."""
    _, paths = rendered
    for name in ("bulletin.pdf", "bulletin.fr.pdf"):
        assert re.search(r"^Tagged:\s+yes$", _pdfinfo(paths[name]), flags=re.M), name
        struct = _pdfinfo(paths[name], "-struct")
        for element in ("Document", "H1", "H2", "Table", "TH", "Figure", "L"):
            assert re.search(rf"^\s*{element}\b", struct, flags=re.M), (name, element)


AXE = Path(__file__).with_name("vendor") / "axe-core" / "axe.min.js"


def _axe_violations(html: Path, tmp_path: Path) -> list[dict[str, object]]:
    """axe-core (vendored, MPL-2.0) run in headless Chromium on a copy of ``html`` whose CSP is
    dropped so that the test's own scripts may run; the violations, as the page writes them."""
    import html as html_lib

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed")
    work = tmp_path / f"axe-{html.stem}"
    work.mkdir()
    shutil.copy(AXE, work / "axe.min.js")
    runner = """<script src="axe.min.js"></script><script>
axe.run(document, {resultTypes: ["violations"]}).then(function (r) {
  var pre = document.createElement("pre"); pre.id = "axe-results";
  pre.textContent = JSON.stringify(r.violations.map(function (v) {
    return {id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.slice(0, 3).map(function (n) { return n.target.join(" "); })}; }));
  document.body.appendChild(pre);
}, function (e) {
  var pre = document.createElement("pre"); pre.id = "axe-results";
  pre.textContent = JSON.stringify([{id: "axe-error", impact: "critical", help: String(e)}]);
  document.body.appendChild(pre);
});
</script></body>"""
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html.read_text(encoding="utf-8"))
    page = work / "page.html"
    page.write_text(text.replace("</body>", runner), encoding="utf-8")
    dom = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-proxy-server",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--virtual-time-budget=60000",
         f"--user-data-dir={work / 'profile'}", "--dump-dom", page.as_uri()],
        check=True, capture_output=True, text=True, timeout=300,
    ).stdout
    found = re.search(r'<pre id="axe-results">(.*?)</pre>', dom, flags=re.S)
    assert found, "axe-core did not report"
    return list(json.loads(html_lib.unescape(found.group(1))))


def test_axe_finds_no_serious_violations(rendered: tuple[BulletinContext, dict[str, Path]], tmp_path: Path) -> None:
    """Both editions, interactive maps included: no ``serious`` or ``critical`` axe-core violation."""
    _, paths = rendered
    for name in ("bulletin.html", "bulletin.fr.html"):
        bad = [v for v in _axe_violations(paths[name], tmp_path) if v.get("impact") in ("serious", "critical")]
        assert bad == [], (name, bad)


def test_axe_check_sees_violations(tmp_path: Path) -> None:
    """Control: the same harness reports a missing alt text and a missing lang."""
    probe = tmp_path / "probe.html"
    probe.write_text('<!DOCTYPE html><html><head><title>x</title></head><body><main>'
                     '<img src="data:image/png;base64,iVBORw0KGgo="></main></body></html>', encoding="utf-8")
    ids = {v["id"] for v in _axe_violations(probe, tmp_path)}
    assert {"image-alt", "html-has-lang"} <= ids


def test_site_map_has_locator_inset_and_boundary(rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    """The static map carries the locator inset (the country from the shipped Natural Earth
    outlines, the AOI marked) and the AOI boundary; its caption says so."""
    from pipeline.countries import countries, country_at

    context, paths = rendered
    assert countries().iloc[country_at(20.79, -6.42)][["name", "iso_a3"]].tolist() == ["Dem. Rep. Congo", "COD"]
    assert countries().iloc[country_at(-10.97, 8.64)][["name", "iso_a3"]].tolist() == ["Sierra Leone", "SLE"]
    assert country_at(-30.0, 0.0) is None  # mid-Atlantic: no inset
    html = paths["bulletin.html"].read_text(encoding="utf-8")
    assert html.count("Inset: the country, with the area of interest marked") == 2
    assert "Encart : le pays" in paths["bulletin.fr.html"].read_text(encoding="utf-8")


def test_both_editions_round_a_number_alike() -> None:
    """crosscheck.csv's 17.95 ha read 17.9 in English (Python rounds the binary value) and 18,0 in
    French (Babel rounds the decimal digits); an outside reviewer compared the editions."""
    from pipeline.bulletin.formatting import _decimal
    from pipeline.bulletin.i18n import use_language

    with use_language("en"):
        assert [_decimal(v, 1) for v in (17.95, 0.25, 1234.56)] == ["18.0", "0.2", "1,234.6"]
        assert _decimal(2.50, 2, strip=True) == "2.5"
    with use_language("fr"):
        assert [_decimal(v, 1) for v in (17.95, 0.25)] == ["18,0", "0,2"]


def test_the_validation_table_says_what_it_was_measured_on(rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    """An outside reviewer: "precision 1, recall 1" with no word of the truth it was measured on
    (the demonstration's own synthetic truth, an upper bound)."""
    context, paths = rendered
    assert context.demonstration and context.validation
    text = " ".join(_visible_text(paths["bulletin.html"].read_text(encoding="utf-8")).split())
    assert ("Measured against the ground truth of the synthetic demonstration scenario, which the same software "
            "wrote") in text and "an upper bound, not the accuracy of this bulletin's method on real imagery" in text
    french = " ".join(_visible_text(paths["bulletin.fr.html"].read_text(encoding="utf-8")).split())
    assert "constitue une borne supérieure" in french


def test_an_aoi_too_cloudy_to_confirm_change_is_said_so(rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    """An outside reviewer's September run said "No excavation site is tracked" (and "Seen clear
    100 %") where no pixel had the three clear views a confirmation needs. The summary and the
    AOI's section now say how much of the AOI could confirm a change at all."""
    from pipeline.bulletin.summary import summarise

    context, paths = rendered
    kono = next(a for a in context.aois if a.aoi_id == "sl-kono-01")
    sentence = ("In Koidu fields, only 62 % of the area had the 3 clear observations a change needs to be "
                "confirmed over the covering period; the absence of sites elsewhere in it is not evidence that "
                "no excavation took place.")
    assert sentence in summarise(context)
    text = " ".join(_visible_text(paths["bulletin.html"].read_text(encoding="utf-8")).split())
    assert sentence in text and "Only 62 % of this area of interest had the 3 clear observations" in text
    assert "Seulement 62" in _visible_text(paths["bulletin.fr.html"].read_text(encoding="utf-8"))
    # not said where radar, which sees through cloud, was used, nor where the whole AOI could confirm
    assert sentence not in summarise(dataclasses.replace(context, aois=[
        dataclasses.replace(kono, radar_status="used")]))
    assert sentence not in summarise(dataclasses.replace(context, aois=[
        dataclasses.replace(kono, confirmable_frac=0.996)]))
    data = json.loads(paths["bulletin.json"].read_text(encoding="utf-8"))
    assert next(a for a in data["aois"] if a["aoi_id"] == "sl-kono-01")["confirmable_frac"] == 0.62


def test_new_sites_already_disturbed_at_their_first_clear_view_are_said_to_be_maybe_older() -> None:
    """An outside reviewer's one-quarter run called pits dug months earlier "new" (6 sites, all
    first seen on the period's first clear date). Such sites are flagged ``undated`` and the
    summary says they may be older."""
    from pipeline.bulletin.summary import summarise

    context = make_context()
    kasai = context.aois[0]
    sites = kasai.sites.assign(undated=[True, False, False, False, False])  # 0001 (new) at its first view
    one = dataclasses.replace(context, aois=[dataclasses.replace(kasai, sites=sites), *context.aois[1:]])
    from pipeline.bulletin.formatting import _ha

    area = _ha(float(sites["area_ha"].iloc[0]))  # as the summary prints areas (1.44 -> 1.4)
    text = " ".join(summarise(one))
    assert f"(1 of them, {area} ha, already disturbed at its first clear view of the monitoring period: it may " \
           "be older)" in text
    both = dataclasses.replace(context, aois=[dataclasses.replace(kasai, sites=sites.assign(
        undated=[True, True, False, False, False])), *context.aois[1:]])
    assert "(all already disturbed at their first clear view of the monitoring period: they may be older)" in \
        " ".join(summarise(both))
    assert "first clear view" not in " ".join(summarise(context))  # none flagged: nothing said


def test_an_aoi_outside_its_participant_is_said_so_in_the_bulletin() -> None:
    """An outside reviewer's AOI, edited to name Zimbabwe, lay 4,522 km outside it: the warning
    went to the log only, while the bulletin compared its activity with Zimbabwe's declared
    production and its header read "Zimbabwe (ZWE)"."""
    from shapely.geometry import box as _box

    from pipeline.bulletin.summary import summarise
    from pipeline.bulletin.wording import participant_text
    from pipeline.jobs import participant_outside

    row = {"participant_iso3": "ZWE", "source_file": "seguela.geojson", "aoi_id": "seguela"}
    km, country = participant_outside(row, _box(-6.6, 8.15, -6.56, 8.19), tolerance_km=25.0)
    assert country == "Zimbabwe" and 4000 < km < 5000
    assert participant_outside(row, _box(32.3, -19.9, 32.4, -19.8), tolerance_km=25.0) is None  # Marange
    assert participant_outside(row, _box(-6.6, 8.15, -6.56, 8.19), tolerance_km=None) is None  # no check

    context = make_context()
    kono = dataclasses.replace(context.aois[1], participant_outside={"km": 4522, "country": "Zimbabwe"})
    one = dataclasses.replace(context, aois=[context.aois[0], kono, *context.aois[2:]])
    assert ("Koidu fields lies 4522 km outside Zimbabwe, whose declared production it is compared with: check "
            "the AOI file's participant.") in summarise(one)
    assert participant_text(kono).startswith("This area of interest lies 4522 km outside the outline of Zimbabwe, "
                                             "the country its file names as participant (SLE)")
    assert not any("km outside" in s for s in summarise(context))  # said only of such an AOI


def test_declared_figures_are_printed_as_published() -> None:
    """The sources table, captioned "as published", printed the 2023 figure 2367.63 ct as 2,368."""
    from pipeline.bulletin.annex import _source_rows
    from pipeline.bulletin.i18n import use_language

    frame = pd.DataFrame({"participant_iso3": ["CIV", "CIV"], "year": [2023, 2016], "carats": [2367.63, 16292.0],
                          "source": ["https://economie-ivoirienne.ci/x"] * 2})
    with use_language("en"):
        rows, _index = _source_rows(frame)
    assert sorted(r["carats"] for r in rows) == ["16,292", "2,367.63"]


def test_a_failed_area_is_worded_for_readers_and_its_error_kept_for_the_operator(
        rendered: tuple[BulletinContext, dict[str, Path]]) -> None:
    """An outside tester: a failed AOI's raw error (absolute paths of the operator's machine,
    English in the French edition, "failed to download" for a missing local file) was the
    bulletin's text. The bulletin says what kind of failure it was, in its language."""
    _, paths = rendered
    english = paths["bulletin.html"].read_text(encoding="utf-8")
    french = paths["bulletin.fr.html"].read_text(encoding="utf-8")
    data = json.loads(paths["bulletin.json"].read_text(encoding="utf-8"))
    for text in (english, french, json.dumps(data)):
        assert OPERATOR_PATH not in text and "No such file" not in text
    assert "Processing of this area failed:</strong> its imagery could not be fetched or read" in english
    assert "Le traitement de cette zone a échoué :</strong> ses images n&#39;ont pu être récupérées ou lues" in french
    lunda = next(a for a in data["aois"] if a["aoi_id"] == "ao-lunda-01")
    assert (lunda["failure"], lunda["error"]) == ("imagery_unreadable", "its imagery could not be fetched or read")


def test_every_kind_of_failure_has_reader_words() -> None:
    from pipeline.bulletin.wording import FAILURE_TEXTS
    from pipeline.errors import FAILURE_KINDS, DownloadError, NoValidPixelsError, ResourcesError, failure_kind

    assert set(FAILURE_KINDS) == set(FAILURE_TEXTS)
    assert [failure_kind(e) for e in (DownloadError("x"), NoValidPixelsError("x"), ResourcesError("x"),
                                      RuntimeError("x"))] == ["imagery_unreadable", "no_clear_observation",
                                                              "resources", "failed"]


def test_an_area_barely_seen_in_the_latest_period_is_said_so() -> None:
    from pipeline.bulletin.facts import summary_facts

    """An outside tester: an AOI with no clear scene in its latest reporting period had every
    site "dormant" and a summary that said nothing of why."""
    context = make_context()
    assert not summary_facts(context)["latest_unseen"]  # 95 % seen clear
    kasai = context.aois[0]
    activity = kasai.activity.assign(valid_fraction=[0.9, 0.4, 0.8, 0.0])
    sites = kasai.sites.assign(status="dormant")
    context = dataclasses.replace(context, aois=[dataclasses.replace(kasai, activity=activity, sites=sites),
                                                 *context.aois[1:]])
    facts = summary_facts(context)
    assert facts["latest_unseen"] == [{"aoi_id": "cd-kasai-01", "name": kasai.name, "period": ["2024-07-01",
                                       "2024-09-30"], "seen_frac": 0.0, "n_dormant": 5}]
    text = " ".join(summarise(context, facts))
    assert (f"In {kasai.name}, only 0 % of the area was seen clear in the latest reporting period (2024-07-01 to "
            "2024-09-30): its 5 dormant sites may have been under cloud rather than idle") in text
    # radar sees through cloud: nothing to say then
    radar = dataclasses.replace(context.aois[0], radar_status="used")
    assert not summary_facts(dataclasses.replace(context, aois=[radar, *context.aois[1:]]))["latest_unseen"]


def test_the_summary_names_the_settings_changed_since_the_previous_bulletin() -> None:
    from pipeline.bulletin.i18n import use_language

    context = dataclasses.replace(make_context(), settings_changed=[
        {"section": "sites", "key": "min_area_m2", "before": 2500, "after": 5000},
        {"section": "preprocess", "key": "scl_mask_classes", "before": [0, 1], "after": None}])
    text = " ".join(summarise(context))
    assert ("2 settings differ from bulletin No. 1's (methods annex): sites.min_area_m2 from 2,500 to 5,000 and "
            "preprocess.scl_mask_classes from 0, 1 to –.") in text
    with use_language("fr"):
        assert "2 réglages diffèrent de ceux du bulletin n° 1" in " ".join(summarise(context))
    assert "settings differ" not in " ".join(summarise(make_context()))


def test_french_clauses_are_separated_as_french_writes_them() -> None:
    """A third outside tester: "aucun site n'était nouveau; 2 sites" (French puts a space before)."""
    from pipeline.bulletin.i18n import use_language

    with use_language("fr"):
        text = " ".join(summarise(make_context()))
    assert " ; " in text and not re.search(r"\S; ", text.replace("&#39;", "'")), text


def test_a_revision_says_what_it_changes_in_the_issue_it_replaces() -> None:
    """A third outside tester: readers of a revision were never told what changed."""
    from pipeline.bulletin.i18n import use_language

    base = make_context()
    changed = dataclasses.replace(base, revision=2, revision_changes={
        "revision": 1, "added": ["cd-kasai-01-0005"], "removed": ["cd-kasai-01-0009", "cd-kasai-01-0010"]})
    text = " ".join(summarise(changed))
    assert ("This revision replaces revision 1 of bulletin No. 7: it adds 1 site (cd-kasai-01-0005); it removes 2 "
            "sites (cd-kasai-01-0009 and cd-kasai-01-0010).") in text
    same = dataclasses.replace(base, revision=2, revision_changes={"revision": 1, "added": [], "removed": []})
    assert "This revision replaces revision 1 of bulletin No. 7: it lists the same sites." in " ".join(summarise(same))
    with use_language("fr"):
        assert "Cette révision remplace la révision 1 du bulletin n° 7 : elle ajoute 1 site" in " ".join(
            summarise(changed))
    assert "This revision" not in " ".join(summarise(base))


@pytest.mark.parametrize(("top", "language", "expected"), [
    (8.7, "en", ["0", "2", "4", "6", "8", "10"]),  # labelled per value, this read "0.0", "2.0", ..., "10"
    (0.9, "en", ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
    (0.9, "fr", ["0,0", "0,2", "0,4", "0,6", "0,8", "1,0"]),
])
def test_activity_chart_ticks_share_their_decimals(top: float, language: str, expected: list[str]) -> None:
    from pipeline.bulletin.figures.charts import plot_activity
    from pipeline.bulletin.i18n import use_language

    frame = pd.DataFrame({
        "period_start": pd.date_range("2023-01-01", periods=4, freq="QS"),
        "period_end": pd.date_range("2023-03-31", periods=4, freq="QE"),
        "new_ha": [top / 4] * 4, "disturbed_ha": [top / 4, top / 2, 3 * top / 4, top], "valid_fraction": 1.0,
    })
    with use_language(language):  # labels are formatted when drawn: in the language of the figure's drawing
        fig = plot_activity(frame)
        fig.canvas.draw()
        ax = fig.axes[0]
        low, high = ax.get_ylim()
        shown = [t.get_text() for t in ax.get_yticklabels() if low <= t.get_position()[1] <= high]
    assert shown == expected


def test_an_empty_activity_chart_says_so_in_the_readers_language() -> None:
    from pipeline.bulletin.figures.charts import plot_activity
    from pipeline.bulletin.i18n import use_language

    with use_language("fr"):
        fig = plot_activity(pd.DataFrame(columns=["period_start", "period_end", "new_ha", "disturbed_ha"]))
    assert [t.get_text() for t in fig.axes[0].texts] == ["aucune activité enregistrée"]
