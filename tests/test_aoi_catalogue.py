"""The West and Central Africa AOI catalogue: valid files, centred on their cited points, run by one config."""

from __future__ import annotations

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
