"""The West and Central Africa AOI catalogue: valid files, centred on their cited points, run by one config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.aoi import read_aois
from pipeline.config import load_config
from tools.make_wca_aois import AOIS, NOT_INCLUDED

REPO = Path(__file__).resolve().parents[1]
FILES = sorted((REPO / "aois" / "west-central-africa").glob("*.geojson"))


def test_catalogue_files_match_their_sourced_points() -> None:
    aois = read_aois(FILES).set_index("aoi_id")
    assert set(aois.index) == set(AOIS)
    for aoi_id, spec in AOIS.items():
        row = aois.loc[aoi_id]
        centre = row.geometry.centroid
        assert centre.x == pytest.approx(spec["lon"], abs=1e-4) and centre.y == pytest.approx(spec["lat"], abs=1e-4)
        side = float(spec["side_km"])  # type: ignore[arg-type]
        assert row["area_km2"] == pytest.approx(side * side, rel=2e-3)
        assert row["location_source"].startswith("https://")
        assert "not surveyed" in row["extent_note"] and "NOT verified" in row["params_source"]
        assert row["participant_iso3"] in {"SLE", "GHA", "COD", "AGO"}
    assert set(NOT_INCLUDED) == {"banankoro", "western-liberia"}


def test_one_config_runs_them_all() -> None:
    cfg = load_config(REPO / "configs" / "west_central_africa.yaml")
    assert sorted(p.name for p in cfg.aois) == [p.name for p in FILES]


def test_every_shipped_aoi_lies_in_its_participant_country() -> None:
    """The outlines the participant check reads carry the ISO codes of the shipped AOIs, and
    every shipped AOI meets its participant's outline."""
    from pipeline.countries import km_outside

    repo = Path(__file__).resolve().parents[1]
    aois = read_aois(sorted(repo.glob("aois/*.geojson")) + sorted(repo.glob("aois/west-central-africa/*.geojson")))
    assert len(aois) >= 11
    for _, row in aois.iterrows():
        found = km_outside(row.geometry, row.participant_iso3)
        assert found is not None and found[0] == 0.0, (row.aoi_id, row.participant_iso3, found)


def test_an_aoi_far_from_its_participant_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Marange's polygon filed under Côte d'Ivoire: the run would compare Zimbabwe's diggings
    with Ivorian declarations. One warning names the file, the AOI, the code and the distance;
    within the tolerance, or with the check off, or a code no outline has, nothing is said."""
    import logging

    from pipeline.config import MonitorConfig
    from pipeline.jobs import plan_jobs, warn_aois

    repo = Path(__file__).resolve().parents[1]
    doc = json.loads((repo / "aois" / "marange.geojson").read_text(encoding="utf-8"))
    doc["features"][0]["properties"]["participant_iso3"] = "CIV"
    wrong = tmp_path / "marange-as-civ.geojson"
    wrong.write_text(json.dumps(doc), encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="pipeline")
    cfg = MonitorConfig(period={"start": "2024-01-01", "end": "2024-03-31"})
    warn_aois(plan_jobs(read_aois([wrong, repo / "aois" / "seguela.geojson"]), cfg), cfg)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"AOI file {wrong} (aoi_id 'marange'): participant_iso3 CIV names Côte d'Ivoire, but the "
                           "AOI lies 4")  # about 4,700 km
    assert line.endswith("km outside its outline (Natural Earth 1:110m); its activity is compared with CIV's declared "
                         "production: check participant_iso3 and the coordinates")
    caplog.clear()
    for tolerance in (None, 10_000.0):
        changed = cfg.model_copy(update={"participant_outline_km": tolerance})
        warn_aois(plan_jobs(read_aois([wrong]), changed), changed)
    doc["features"][0]["properties"]["participant_iso3"] = "CPV"  # Cabo Verde: no 1:110m outline
    wrong.write_text(json.dumps(doc), encoding="utf-8")
    warn_aois(plan_jobs(read_aois([wrong]), cfg), cfg)
    assert caplog.records == []


def test_an_aoi_smaller_than_the_mapping_unit_is_warned_about(tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """A 5 m x 5 m AOI (2 x 2 pixels) can hold no site of sites.min_area_m2 (2000 m²): its bulletin
    section could only read as quiet. The shipped AOIs, and one just above the unit, are not warned."""
    import logging

    from pipeline.config import MonitorConfig
    from pipeline.jobs import plan_jobs, warn_aois

    def square(name: str, side_deg: float) -> Path:
        x, y = -6.58, 8.17
        ring = [[x, y], [x + side_deg, y], [x + side_deg, y + side_deg], [x, y + side_deg], [x, y]]
        doc = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {
            "aoi_id": name, "name": name, "participant_iso3": "CIV", "participant": "Côte d'Ivoire"},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
        path = tmp_path / f"{name}.geojson"
        path.write_text(json.dumps(doc), encoding="utf-8")
        return path

    caplog.set_level(logging.WARNING, logger="pipeline")
    cfg = MonitorConfig(period={"start": "2024-01-01", "end": "2024-03-31"})
    shipped = sorted((Path(__file__).resolve().parents[1] / "aois").rglob("*.geojson"))
    warn_aois(plan_jobs(read_aois([square("tiny", 0.000045), square("enough", 0.0005), *shipped]), cfg), cfg)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(f"AOI file {tmp_path / 'tiny.geojson'} (aoi_id 'tiny'): its area, 2")
    assert line.endswith("m², is below sites.min_area_m2 (2000 m²): no site can be mapped in it, so its bulletin "
                         "section can only read as quiet; draw the AOI around the whole diggings")
    # a 1.1 km square that is all hole but a 0.1 m rim: its area is the rim's (about 490 m²)
    caplog.clear()
    holey = json.loads(square("holey", 0.01).read_text(encoding="utf-8"))
    (outer,) = holey["features"][0]["geometry"]["coordinates"]
    e = 0.000001
    hole = [[outer[0][0] + e, outer[0][1] + e], [outer[0][0] + e, outer[2][1] - e],
            [outer[2][0] - e, outer[2][1] - e], [outer[2][0] - e, outer[0][1] + e], [outer[0][0] + e, outer[0][1] + e]]
    holey["features"][0]["geometry"]["coordinates"] = [outer, hole]
    (tmp_path / "holey.geojson").write_text(json.dumps(holey), encoding="utf-8")
    warn_aois(plan_jobs(read_aois([tmp_path / "holey.geojson"]), cfg), cfg)
    assert [r.getMessage().split(",")[0] for r in caplog.records] == [
        f"AOI file {tmp_path / 'holey.geojson'} (aoi_id 'holey'): its area"]
