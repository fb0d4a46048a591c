"""The site register (:mod:`pipeline.register`): analysts' verdicts kept across runs.

Unit tests of the SQLite register (latest verdict wins, concurrent writers, a corrupt file in
one line) and of the matching rules; one whole-pipeline test on a small synthetic scene: a site
judged a false alarm leaves the findings and never comes back as new, a confirmed one carries
its verdict into ``sites.geojson`` and the bulletin, and ``train --from-register`` learns from
the verdicts.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing as mp
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely.geometry

from pipeline.errors import ConfigError
from pipeline.register import (
    REGISTER_NAME,
    SiteRegister,
    Verdict,
    apply_verdicts,
    verdict_labels,
)

DAY = dt.date(2024, 5, 2)


def _verdict(site_id: str, verdict: str, *, analyst: str = "A. Analyst", x: float = 0.0, **kw: object) -> Verdict:
    box = shapely.geometry.box(-6.0 + x, 8.0, -6.0 + x + 0.001, 8.001)
    return Verdict(site_id=site_id, aoi_id="aoi", verdict=verdict, analyst=analyst, reviewed_on=DAY,
                   geometry=box, area_ha=1.2, **kw)  # type: ignore[arg-type]


def test_latest_verdict_wins_and_history_keeps_all(tmp_path: Path) -> None:
    reg = SiteRegister(tmp_path / "r.sqlite")
    assert reg.latest().empty and not reg.path.exists(), "reading must not create the register"
    reg.record([_verdict("s1", "uncertain"), _verdict("s2", "confirmed", x=0.01)])
    reg.record([_verdict("s1", "false_alarm", note="river sandbar", analyst="B. Analyst")])
    latest = reg.latest()
    assert list(latest["site_id"]) == ["s1", "s2"]
    assert list(latest["verdict"]) == ["false_alarm", "confirmed"]
    assert latest.loc[latest["site_id"] == "s1", "note"].item() == "river sandbar"
    assert latest.crs.to_epsg() == 4326 and latest.geometry.is_valid.all()
    hist = reg.history()
    assert list(hist["verdict"]) == ["uncertain", "confirmed", "false_alarm"]
    assert reg.latest("other-aoi").empty


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"verdict": "maybe"}, "is not one of confirmed, false_alarm, uncertain"),
        ({"analyst": "  "}, "needs the analyst's name"),
    ],
)
def test_bad_verdicts_are_refused_in_one_line(kwargs: dict[str, str], fragment: str) -> None:
    args = {"verdict": "confirmed", "analyst": "A"} | kwargs
    with pytest.raises(ConfigError, match=fragment) as err:
        Verdict(site_id="s1", aoi_id="aoi", reviewed_on=DAY, **args)
    assert "\n" not in str(err.value)


def test_corrupt_or_foreign_register_is_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match="junk.sqlite") as err:
        SiteRegister(junk).latest()
    assert "\n" not in str(err.value)
    import sqlite3

    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as con:
        con.execute("CREATE TABLE t (x)")
    with pytest.raises(ConfigError, match="not a register of this pipeline"):
        SiteRegister(foreign).latest()


def _writer(path: str, worker: int, n: int) -> None:
    reg = SiteRegister(path)
    for k in range(n):
        reg.record([_verdict(f"w{worker}-{k}", "confirmed", x=0.001 * k)])


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    """Four processes record 25 verdicts each at the same time: all 100 are there, intact."""
    path = tmp_path / "shared.sqlite"
    SiteRegister(path).record([_verdict("seed", "uncertain")])
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    latest = SiteRegister(path).latest()
    assert len(latest) == 101
    assert latest.geometry.is_valid.all()
    assert sorted(latest["site_id"])[:2] == ["seed", "w0-0"]


def _sites(*boxes: tuple[str, float]) -> gpd.GeoDataFrame:
    geoms = [shapely.geometry.box(-6.0 + x, 8.0, -6.0 + x + 0.001, 8.001) for _, x in boxes]
    frame = gpd.GeoDataFrame({"site_id": [s for s, _ in boxes], "aoi_id": "aoi"}, geometry=geoms, crs=4326)
    return frame.to_crs(32630)


def test_apply_verdicts_by_id_and_false_alarms_by_outline(tmp_path: Path) -> None:
    reg = SiteRegister(tmp_path / "r.sqlite")
    reg.record([_verdict("kept", "confirmed"), _verdict("old-fa", "false_alarm", x=0.01),
                _verdict("far-fa", "false_alarm", x=0.05)])
    # "renamed" overlaps old-fa's outline (shifted by a fifth of its width) under a new id;
    # "other" overlaps nothing.
    sites = _sites(("kept", 0.0), ("renamed", 0.0102), ("other", 0.03))
    out = apply_verdicts(sites, reg.latest("aoi"), min_overlap_frac=0.1)
    assert list(out["site_id"]) == ["kept", "old-fa", "other"]
    assert list(out["verdict"]) == ["confirmed", "false_alarm", "unreviewed"]
    assert out["reviewed_on"].iloc[0] == DAY and out["reviewed_on"].iloc[2] is None
    none = apply_verdicts(sites, None, min_overlap_frac=0.1)
    assert set(none["verdict"]) == {"unreviewed"} and list(none["site_id"]) == list(sites["site_id"])


def test_verdict_labels_for_training(tmp_path: Path) -> None:
    reg = SiteRegister(tmp_path / "r.sqlite")
    reg.record([_verdict("a", "confirmed"), _verdict("b", "false_alarm", x=0.01), _verdict("c", "uncertain", x=0.02)])
    labels = verdict_labels(reg)
    assert list(labels["label"]) == ["mining", "not_mining"]
    assert list(labels["y"]) == [1, 0]
    assert list(labels["label_id"]) == ["register:a", "register:b"]
    assert list(labels["class"]) == ["analyst_confirmed", "analyst_false_alarm"]


# --------------------------------------------------------------------------- through the pipeline


def _small_run(root: Path, out: Path) -> Path:
    """Write (once) a small synthetic scene and run the whole pipeline on it into ``out``."""
    from pipeline.config import load_config
    from pipeline.demo import ScenarioSpec, write_scenario
    from pipeline.run import run_monitor

    spec = ScenarioSpec(
        shape_px=(160, 220), start=dt.date(2022, 1, 1), end=dt.date(2024, 3, 31),
        monitoring_start=dt.date(2023, 1, 1), n_pits=6, pit_area_ha=(0.6, 1.5), n_abandoned=0, n_fields=2,
        n_burn_scars=1, village=False, with_s1=False,
    )
    scenario = write_scenario(root / "scenario", spec)
    repo = Path(__file__).resolve().parents[1]
    cfg = load_config(repo / "configs" / "demo.yaml", aois=[str(scenario.aoi_path)], **{
        "source.url": str(scenario.catalog_path), "out_dir": str(out), "bulletin.pdf": False,
        "radar.enabled": False, "period.start": "2023-01-01", "period.end": "2024-03-31",
    })
    run_monitor(cfg)
    return out


@pytest.mark.slow
def test_false_alarm_never_returns_as_new(tmp_path: Path) -> None:
    """Three whole runs of a small scene (about a minute on 2 cores: ``make test-all``); the
    matching rules themselves are unit-tested above in the default suite."""
    from pipeline.__main__ import main

    out = _small_run(tmp_path, tmp_path / "out")
    first = gpd.read_file(out / "sites.geojson")
    assert len(first) >= 2 and set(first["verdict"]) == {"unreviewed"}
    assert gpd.read_file(out / "sites_dismissed.geojson").empty
    bad, good = first["site_id"].iloc[0], first["site_id"].iloc[1]
    bad_ha = float(first["area_ha"].iloc[0])
    assert main(["review", "record", "--run", str(out), "--site", bad, "--verdict", "false_alarm",
                 "--analyst", "A. Analyst", "--note", "<b>sandbar</b>", "--date", "2024-05-02"]) == 0
    csv = tmp_path / "verdicts.csv"
    pd.DataFrame([{"site_id": good, "verdict": "confirmed", "analyst": "B. Analyst", "date": "2024-05-03"}]).to_csv(
        csv, index=False)
    assert main(["review", "import", "--run", str(out), "--verdicts", str(csv)]) == 0
    assert (out / REGISTER_NAME).is_file()
    activity_before = pd.read_csv(out / "activity.csv")

    # Re-run the same period into the same folder: the register is read, the history kept.
    _small_run(tmp_path, out)
    second = gpd.read_file(out / "sites.geojson")
    dismissed = gpd.read_file(out / "sites_dismissed.geojson")
    assert bad not in set(second["site_id"])
    assert list(dismissed["site_id"]) == [bad] and list(dismissed["verdict"]) == ["false_alarm"]
    row = second[second["site_id"] == good].iloc[0]
    assert row["verdict"] == "confirmed" and str(row["reviewed_on"])[:10] == "2024-05-03"
    # The false alarm's hectares leave the activity series.
    activity_after = pd.read_csv(out / "activity.csv")
    lost = activity_before["disturbed_ha"].iloc[-1] - activity_after["disturbed_ha"].iloc[-1]
    assert lost == pytest.approx(bad_ha, abs=0.05)
    bulletin = json.loads((out / "bulletin.json").read_text())
    assert bad not in bulletin["new_since_previous"]
    html = (out / "bulletin.html").read_text()
    assert "<b>sandbar</b>" not in html
    assert "Dismissed by analysts" in html and "confirmed" in html

    # A later run whose site gets another id (history lost) still recognises the false alarm
    # by its outline.
    (out / "sites.geojson").unlink()
    _small_run(tmp_path, out)
    third = gpd.read_file(out / "sites.geojson")
    assert bad not in set(third["site_id"])
    assert list(gpd.read_file(out / "sites_dismissed.geojson")["site_id"]) == [bad]

    # train --from-register with no usable verdict is one line; the register's verdicts are labels.
    empty = tmp_path / "empty.sqlite"
    SiteRegister(empty).record([_verdict("x", "uncertain")])
    with pytest.raises(ConfigError, match="no confirmed or false_alarm verdict"):
        from pipeline.training import training_labels

        training_labels(None, SiteRegister(empty))
    labels = verdict_labels(SiteRegister(out / REGISTER_NAME))
    assert sorted(labels["label"]) == ["mining", "not_mining"]


def test_review_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.__main__ import main

    assert main(["review", "list", "--run", str(tmp_path)]) == 2
    assert "manifest.json does not exist" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text(json.dumps({"config": {}}))
    gpd.GeoDataFrame({"site_id": ["s1"], "aoi_id": ["aoi"], "area_ha": [1.0], "status": ["new"]},
                     geometry=[shapely.geometry.box(0, 0, 0.001, 0.001)], crs=4326).to_file(
        tmp_path / "sites.geojson", driver="GeoJSON")
    assert main(["review", "record", "--run", str(tmp_path), "--site", "nope", "--verdict", "confirmed",
                 "--analyst", "A"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "site 'nope' is not in" in err
    assert main(["review", "record", "--run", str(tmp_path), "--site", "s1", "--verdict", "confirmed"]) == 2
    assert "--analyst" in capsys.readouterr().err
    assert main(["review", "record", "--run", str(tmp_path), "--site", "s1", "--verdict", "confirmed",
                 "--analyst", "A", "--date", "2099-01-01"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "date 2099-01-01 is in the future" in err
    for field, value in (("--analyst", "A\x1b[2J"), ("--analyst", "A\nB"), ("--note", "ok\x07"),
                         ("--analyst", "A\u202eB")):  # right-to-left override: shown in another order
        assert main(["review", "record", "--run", str(tmp_path), "--site", "s1", "--verdict", "confirmed",
                     "--analyst", "A", field, value]) == 2, (field, value)
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"{field[2:]} holds a control character" in err, err
    bad_csvs = {  # each refused naming the file (and line): it was recorded, or blamed on the wrong field
        "dup.csv": ("site_id,verdict,analyst,verdict\ns1,confirmed,A,false_alarm\n", "line 1: column 'verdict' "
                    "appears twice"),
        "typo.csv": ("site_id,verdict,analyst,notes\ns1,confirmed,A,sandbar\n", "line 1: column 'notes' is not "
                     "read (did you mean 'note'?)"),
        "ragged.csv": ("site_id,verdict,analyst\ns1,x,confirmed,A\n", "line 2 has 4 fields, the header 3"),
        "baddate.csv": ("site_id,verdict,analyst,date\ns1,confirmed,A,2024-13-45\n", "line 2: date '2024-13-45'"),
        "conflict.csv": ("site_id,verdict,analyst,date\ns1,confirmed,A,2024-05-01\ns1,false_alarm,B,2024-05-01\n",
                         "line 3: site 's1' is judged 'false_alarm' on 2024-05-01, and 'confirmed' on the same day at "
                         "line 2"),
    }
    for name, (text, expected) in bad_csvs.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        assert main(["review", "import", "--run", str(tmp_path), "--verdicts", str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"verdicts {tmp_path / name}" in err and expected in err, err
    assert not (tmp_path / REGISTER_NAME).exists(), "refused input must write nothing"
    # a spreadsheet's own extra columns are ignored, and a right-to-left mark (U+200F, carried by
    # Arabic or Hebrew text from a word processor) is not a control character
    extra = tmp_path / "extra.csv"
    extra.write_text("site_id,verdict,analyst,aoi_id,area_ha\ns1,confirmed,\u200fA,aoi,1.0\n", encoding="utf-8")
    assert main(["review", "import", "--run", str(tmp_path), "--verdicts", str(extra),
                 "--register", str(tmp_path / "other.sqlite")]) == 0, capsys.readouterr().err
    assert main(["review", "record", "--run", str(tmp_path), "--site", "s1", "--verdict", "confirmed",
                 "--analyst", "A"]) == 0
    capsys.readouterr()
    assert main(["review", "list", "--run", str(tmp_path)]) == 0
    assert "s1\taoi\tnew\t1.00 ha\tconfirmed" in capsys.readouterr().out
    # a --register that does not exist (a typo) would list every site unreviewed
    typo = tmp_path / "registr.sqlite"
    assert main(["review", "list", "--run", str(tmp_path), "--register", str(typo)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip() == (
        f"error: --register {typo} does not exist; give the register the verdicts were recorded in "
        "(review record creates one)")
    assert not typo.exists()


def test_train_from_register_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before any imagery is searched: no usable verdict, or no labels at all."""
    from pipeline.__main__ import main

    empty = tmp_path / "empty.sqlite"
    SiteRegister(empty).record([_verdict("x", "uncertain")])
    model = tmp_path / "model"
    assert main(["train", "--from-register", str(empty), "--out", str(model)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no confirmed or false_alarm verdict to learn from" in err
    assert main(["train", "--out", str(model)]) == 2
    assert "train needs --labels LABELS.geojson, --from-register, or both" in capsys.readouterr().err
    assert main(["train", "--from-register", str(tmp_path / "nope.sqlite"), "--out", str(model)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"site register {tmp_path / 'nope.sqlite'} does not exist" in err
    assert not model.exists() and not (tmp_path / "nope.sqlite").exists()
