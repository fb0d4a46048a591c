"""``python -m pipeline assess sample|estimate --run OUT_DIR``: the contract, in process.

A run folder is made by hand (``manifest.json``, ``sites.geojson``, the AOI file): the
assessment reads only those, so no imagery is needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from pipeline.__main__ import main

#: A 2 x 2 km AOI near Séguéla and two sites inside it (EPSG:4326).
AOI = shapely.box(-6.60, 8.15, -6.582, 8.168)
SITES = [shapely.box(-6.595, 8.155, -6.592, 8.158), shapely.box(-6.588, 8.160, -6.5855, 8.1625)]


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": shapely.geometry.mapping(AOI),
        "properties": {"aoi_id": "test-aoi", "name": "Test", "participant_iso3": "CIV", "participant": "Côte d'Ivoire"},
    }]}), encoding="utf-8")
    sites = gpd.GeoDataFrame({"site_id": ["s1", "s2"], "aoi_id": "test-aoi", "area_ha": [1.0, 1.0]},
                             geometry=SITES, crs=4326)
    sites.to_file(run / "sites.geojson", driver="GeoJSON")
    manifest = {"bulletin_number": 1, "config": {"aois": [str(aoi)]},
                "aois": {"test-aoi": {"status": "ok", "composites": []}}}
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return run


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(err) == 1
    return err[0]


def test_sample_then_estimate_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path)
    assert main(["assess", "sample", "--run", str(run), "--n", "90"]) == 0
    sample = pd.read_csv(run / "assessment" / "sample.csv", dtype=str, keep_default_na=False)
    assert list(sample.columns) == ["point_id", "lon", "lat", "stratum", "label"]
    assert set(sample["stratum"]) == {"site", "buffer", "stable"} and (sample["label"] == "").all()
    assert len(sample) == pytest.approx(90, abs=2)
    assert (run / "assessment" / "sample.gpkg").is_file()
    # Label from a "truth": the sites are mining, and so is a strip the map missed.
    missed = shapely.box(-6.5853, 8.160, -6.5845, 8.1625)
    truth = shapely.union_all([*SITES, missed])
    points = gpd.points_from_xy(sample["lon"].astype(float), sample["lat"].astype(float))
    sample["label"] = ["mining" if truth.contains(p) else "not_mining" for p in points]
    labels = tmp_path / "labels.csv"
    sample.to_csv(labels, index=False)
    capsys.readouterr()
    assert main(["assess", "estimate", "--run", str(run), "--labels", str(labels)]) == 0
    out = capsys.readouterr().out
    assert "excavated area" in out and "95 % CI" in out
    est = json.loads((run / "assessment" / "estimate.json").read_text(encoding="utf-8"))
    for key in ("area_ha", "area_ci95_ha", "overall_accuracy", "users_accuracy", "producers_accuracy"):
        assert key in est
    true_ha = float(gpd.GeoSeries([truth], crs=4326).to_crs(32629).area.iloc[0] / 1e4)
    assert abs(est["area_ha"] - true_ha) <= est["area_ci95_ha"] + 0.5


def test_a_folder_without_a_run_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assess", "sample", "--run", str(tmp_path)]) == 2
    assert "manifest.json" in _one_error(capsys)
    assert not (tmp_path / "assessment").exists()


def test_estimate_before_sample_says_what_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_text("point_id,lon,lat,stratum,label\n", encoding="utf-8")
    assert main(["assess", "estimate", "--run", str(run), "--labels", str(labels)]) == 2
    assert "assess sample" in _one_error(capsys)


def test_unknown_labels_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path)
    assert main(["assess", "sample", "--run", str(run), "--n", "30"]) == 0
    sample = pd.read_csv(run / "assessment" / "sample.csv", dtype=str, keep_default_na=False)
    sample["label"] = "gold"
    labels = tmp_path / "labels.csv"
    sample.to_csv(labels, index=False)
    capsys.readouterr()
    assert main(["assess", "estimate", "--run", str(run), "--labels", str(labels)]) == 2
    line = _one_error(capsys)
    assert "labels.csv" in line and "gold" in line


def test_a_sample_larger_than_anyone_labels_is_refused_before_drawing(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """--n 100000000 ran on with no end, writing two chips a point over an earlier sample's."""
    run = _run(tmp_path)
    capsys.readouterr()
    assert main(["assess", "sample", "--run", str(run), "--n", "100000000"]) == 2
    line = _one_error(capsys)
    assert "--n 100000000 is more points than an analyst labels by eye (at most assess.max_points, 5000" in line
    assert not (run / "assessment").exists()


def test_the_next_bulletin_reports_the_assessed_area_of_the_previous_map(tmp_path: Path) -> None:
    from pipeline.bulletin.summary import assessment_sentence
    from pipeline.outputs import previous_assessment

    run = _run(tmp_path)
    assert previous_assessment(run, 1) is None
    assert "not yet assessed" in assessment_sentence(None)
    assert main(["assess", "sample", "--run", str(run), "--n", "30"]) == 0
    sample = pd.read_csv(run / "assessment" / "sample.csv", dtype=str, keep_default_na=False)
    points = gpd.points_from_xy(sample["lon"].astype(float), sample["lat"].astype(float))
    sample["label"] = ["mining" if any(s.contains(p) for s in SITES) else "not_mining" for p in points]
    sample.to_csv(tmp_path / "labels.csv", index=False)
    assert main(["assess", "estimate", "--run", str(run), "--labels", str(tmp_path / "labels.csv")]) == 0
    found = previous_assessment(run, 1)
    assert found is not None and found["bulletin_number"] == 1
    assert previous_assessment(run, 2) is None  # an assessment of another bulletin's map is not reported
    text = assessment_sentence(found)
    est = json.loads((run / "assessment" / "estimate.json").read_text(encoding="utf-8"))
    assert f"excavated area {est['area_ha']} ha ± {est['area_ci95_ha']}" in text
    assert f"n = {est['n_points']} checked points" in text and "bulletin 1" in text
    # A sample drawn on bulletin 2's map, not labelled yet: bulletin 3 must not report bulletin 1's
    # estimate as bulletin 2's (design.json now names bulletin 2; the estimate is still of bulletin 1).
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    (run / "manifest.json").write_text(json.dumps({**manifest, "bulletin_number": 2}), encoding="utf-8")
    assert main(["assess", "sample", "--run", str(run), "--n", "30"]) == 0
    assert previous_assessment(run, 2) is None
    assert previous_assessment(run, 1)["area_ha"] == est["area_ha"]


def test_a_new_sample_replaces_the_chips_whole_and_a_failed_one_leaves_the_old(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Chips were written in place: a sample killed part way left its chips over those of the
    sample.csv still there. Now they are drawn aside and replace the old folder at once. (The
    chip drawing itself is tested in test_assess.py; here a stand-in writes one file a point.)"""
    import pipeline.assess.runs as runs

    def drawn(points, composites, out_dir, **kw):  # noqa: ANN001, ANN003, ANN202 - a stand-in
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        rows = []
        for pid in points["point_id"]:
            (Path(out_dir) / f"{pid}_after.png").write_bytes(b"png")
            rows.append([pid, "", str(Path(out_dir) / f"{pid}_after.png"), "", "a.tif"])
        return pd.DataFrame(rows, columns=["point_id", "chip_before", "chip_after", "before_source", "after_source"],
                            index=points.index)

    def killed(points, composites, out_dir, **kw):  # noqa: ANN001, ANN003, ANN202 - a stand-in
        Path(out_dir).mkdir(parents=True)
        (Path(out_dir) / "P0001_after.png").write_bytes(b"half")
        raise KeyboardInterrupt

    run = _run(tmp_path)
    chips = run / "assessment" / "chips"
    monkeypatch.setattr(runs, "write_chips", drawn)
    runs.sample_run(run, n=40)
    runs.sample_run(run, n=30)  # fewer points: the first sample's extra chips must go
    second = sorted(p.name for p in chips.iterdir())
    sample = pd.read_csv(run / "assessment" / "sample.csv", dtype=str)
    assert second == sorted(f"{pid}_after.png" for pid in sample["point_id"])
    layer = gpd.read_file(run / "assessment" / "sample.gpkg")
    assert {str(Path(p).parent) for p in layer["chip_after"]} == {str(chips)}  # the final folder, not the staging
    monkeypatch.setattr(runs, "write_chips", killed)
    with pytest.raises(KeyboardInterrupt):
        runs.sample_run(run, n=40)
    assert sorted(p.name for p in chips.iterdir()) == second  # the old set, untouched
    assert [p.name for p in (run / "assessment").iterdir() if p.name.endswith(".tmp")] == []


def test_estimate_refuses_a_sample_csv_that_is_not_its_designs(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """sample.csv, sample.gpkg and design.json are written one after another: a sample stopped
    before design.json left the new points with the old design, and estimate used both. The
    design now records its points, and estimate checks sample.csv's rows against them."""
    run = _run(tmp_path)
    assert main(["assess", "sample", "--run", str(run), "--n", "40"]) == 0
    out = run / "assessment"
    # the analyst fills in labels in place (and a spreadsheet rewrites the coordinates): still this design's
    labelled = pd.read_csv(out / "sample.csv", dtype=str, keep_default_na=False)
    labelled["label"] = "not_mining"
    labelled["lon"] = labelled["lon"].astype(float).map("{:.6f}".format)
    # ... sorts it by stratum and deletes two points it cannot interpret (read_labels_csv allows it)
    labelled = labelled.sort_values("stratum", kind="stable").iloc[2:]
    labelled.to_csv(out / "sample.csv", index=False)
    assert main(["assess", "estimate", "--run", str(run), "--labels", str(out / "sample.csv")]) == 0
    capsys.readouterr()
    estimate = (out / "estimate.json").read_bytes()
    # a second sample stopped after its sample.csv: the first sample's design is still there
    design = (out / "design.json").read_text(encoding="utf-8")
    assert main(["assess", "sample", "--run", str(run), "--n", "30"]) == 0
    (out / "design.json").write_text(design, encoding="utf-8")
    labels = tmp_path / "labels.csv"
    second = pd.read_csv(out / "sample.csv", dtype=str, keep_default_na=False).assign(label="not_mining")
    second.to_csv(labels, index=False)
    assert main(["assess", "estimate", "--run", str(run), "--labels", str(labels)]) == 2
    line = _one_error(capsys)
    assert str(out / "sample.csv") in line and "design.json" in line and "assess sample" in line
    assert (out / "estimate.json").read_bytes() == estimate  # the first sample's estimate, untouched
    (out / "sample.csv").unlink()
    assert main(["assess", "estimate", "--run", str(run), "--labels", str(labels)]) == 2
    assert "does not exist" in _one_error(capsys)
