"""Per-AOI overrides of configuration sections, carried by the AOI files.

An AOI feature may hold ``preprocess``, ``composites``, ``detect``, ``radar`` and ``sites``
objects; :func:`pipeline.config.aoi_config` validates them against the configuration
models, ``run_monitor`` applies them to that AOI only, and the manifest and the bulletin's
methods annex say what was overridden and which thresholds were applied (the Otsu value
when an AOI asks for it).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.aoi import read_aois
from pipeline.config import MonitorConfig, aoi_config, load_config
from pipeline.demo import ScenarioSpec, write_scenario
from pipeline.errors import AOIError, ConfigError
from pipeline.evaluate import evaluate_sites, read_truth
from pipeline.jobs import aoi_config_for
from pipeline.run import run_monitor

REPO = Path(__file__).resolve().parents[1]


def _aoi_file(tmp_path: Path, **props: Any) -> Path:
    feature = {
        "type": "Feature",
        "properties": {"aoi_id": "x", "name": "X", "participant_iso3": "CIV", "participant": "Côte d'Ivoire", **props},
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[-6.6, 8.1], [-6.5, 8.1], [-6.5, 8.2], [-6.6, 8.2], [-6.6, 8.1]]],
        },
    }
    path = tmp_path / "x.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8")
    return path


def test_overrides_apply_to_their_section_only() -> None:
    base = MonitorConfig()
    cfg = aoi_config(base, {"detect": {"threshold_method": "otsu"}, "sites": {"min_area_m2": 1000}}, where="AOI x")
    assert cfg.detect.threshold_method == "otsu" and cfg.sites.min_area_m2 == 1000
    assert cfg.detect.ndvi_drop_min == base.detect.ndvi_drop_min
    assert cfg.radar == base.radar and cfg.source == base.source
    assert aoi_config(base, {}, where="AOI x") is base


def test_marange_sets_its_own_dry_season(tmp_path: Path) -> None:
    aois = read_aois([REPO / "aois" / "marange.geojson"])
    cfg = aoi_config_for(aois.iloc[0], MonitorConfig())
    assert cfg.composites.dry_season_months == (5, 6, 7, 8, 9, 10)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"detect": {"ndvi_drop_min": -1}}, "detect.ndvi_drop_min: Input should be greater than 0"),
        ({"detect": {"ndvi_drop": 0.3}}, "detect.ndvi_drop: unknown key"),
        ({"radar": {"speckle_window_px": 4}}, "speckle_window_px must be odd"),
        ({"composites": {"dry_season_months": [13]}}, "composites.dry_season_months"),
        ({"composites": {"bands": ["red", "rededge1"]}}, "composites.bands ['rededge1'] are not loaded"),
    ],
)
def test_a_bad_override_is_one_line_naming_the_aoi_file_and_key(
    tmp_path: Path, overrides: dict[str, Any], needle: str
) -> None:
    path = _aoi_file(tmp_path, **overrides)
    row = read_aois([path]).iloc[0]
    with pytest.raises(ConfigError) as info:
        aoi_config_for(row, MonitorConfig())
    message = str(info.value)
    assert "\n" not in message and needle in message
    assert str(path) in message and "aoi_id 'x'" in message


def test_an_override_that_is_not_an_object_is_rejected_by_the_reader(tmp_path: Path) -> None:
    path = _aoi_file(tmp_path, detect=0.3)
    with pytest.raises(AOIError, match=r"x\.geojson feature 0 .*property 'detect' must be a JSON object"):
        read_aois([path])


def test_sections_that_are_not_per_aoi_cannot_be_overridden() -> None:
    with pytest.raises(ConfigError, match="'source' cannot be set per AOI"):
        aoi_config(MonitorConfig(), {"source": {"url": "x"}}, where="AOI x")


# ============================================================================================
# A whole run with an AOI that asks for the Otsu threshold
# ============================================================================================

SPEC = ScenarioSpec(
    shape_px=(60, 80), start=dt.date(2022, 7, 1), end=dt.date(2023, 12, 31), revisit_days=10,
    monitoring_start=dt.date(2023, 1, 1), n_pits=3, pit_open_margin_days=120, n_fields=1,
    n_bare_patches=0, n_burn_scars=1, field_area_ha=(0.5, 0.8), pit_area_ha=(0.6, 1.0),
    n_abandoned=0, n_rivers=0, village=False, with_s1=False, seed=3,
)


@pytest.fixture(scope="module")
def otsu_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("aoi-overrides")
    scenario = write_scenario(root / "scenario", SPEC)
    collection = json.loads(Path(scenario.aoi_path).read_text("utf-8"))
    for feature in collection["features"]:
        feature["properties"]["detect"] = {"threshold_method": "otsu"}
        feature["properties"]["sites"] = {"min_area_m2": 2000}
        feature["properties"]["composites"] = {"method": "median"}
    aoi = root / "otsu-aoi.geojson"
    aoi.write_text(json.dumps(collection), encoding="utf-8")
    cfg = load_config(
        REPO / "configs" / "demo.yaml",
        aois=[str(aoi)],
        **{
            "source.url": str(scenario.catalog_path),
            "out_dir": str(root / "out"),
            "cache_dir": str(root / "cache"),
            "period.start": "2023-01-01",
            "period.end": "2023-12-31",
            "detect.baseline_days": 180,
            "bulletin.pdf": False,
            "radar.enabled": False,
            "dask.n_workers": 1,
            "dask.threads_per_worker": 2,
        },
    )
    report = run_monitor(cfg)
    out = report.out_dir
    return {
        "exit": report.exit_code,
        "aoi_id": collection["features"][0]["properties"]["aoi_id"],
        "manifest": json.loads((out / "manifest.json").read_text("utf-8")),
        "bulletin": json.loads((out / "bulletin.json").read_text("utf-8")),
        "html": (out / "bulletin.html").read_text("utf-8"),
        "metrics": evaluate_sites(read_sites_frame(out / "sites.geojson"), read_truth(scenario.truth_path)),
        "cfg": cfg,
    }


def read_sites_frame(path: Path) -> Any:
    from pipeline.evaluate import read_sites

    return read_sites(path)


@pytest.mark.e2e
def test_the_manifest_records_the_overrides_and_the_otsu_threshold(otsu_run: dict[str, Any]) -> None:
    assert otsu_run["exit"] == 0
    info = otsu_run["manifest"]["aois"][otsu_run["aoi_id"]]
    assert info["overrides"] == {
        "composites": {"method": "median"}, "detect": {"threshold_method": "otsu"}, "sites": {"min_area_m2": 2000}
    }
    applied = info["thresholds"]["ndvi_drop_threshold"]
    detect = otsu_run["cfg"].detect
    assert applied["method"] == "otsu" and applied["unit"] == "NDVI units"
    assert detect.otsu_ndvi_drop_floor <= applied["value"] <= detect.otsu_ndvi_drop_ceiling
    # The run-wide configuration is untouched: the override lives with the AOI.
    assert otsu_run["manifest"]["config"]["detect"]["threshold_method"] == "fixed"


@pytest.mark.e2e
def test_the_methods_annex_shows_the_aoi_rows(otsu_run: dict[str, Any]) -> None:
    aoi_id = otsu_run["aoi_id"]
    rows = {(t["section"], t["key"]): t for t in otsu_run["bulletin"]["thresholds"]}
    assert rows[(f"detect ({aoi_id})", "threshold_method")]["value"] == "otsu"
    assert rows[(f"sites ({aoi_id})", "min_area_m2")]["value"] == 2000
    applied = rows[(f"applied ({aoi_id})", "ndvi_drop_threshold")]
    assert "Otsu (1979)" in applied["source"]
    assert f"applied ({aoi_id})" in otsu_run["html"]


@pytest.mark.e2e
def test_the_composites_follow_the_aoi_method(otsu_run: dict[str, Any]) -> None:
    """Named composites and the bulletin's before/after views both use the AOI's method."""
    info = otsu_run["manifest"]["aois"][otsu_run["aoi_id"]]
    assert info["composites"] and {c["method"] for c in info["composites"]} == {"median"}
    (aoi,) = otsu_run["bulletin"]["aois"]
    assert aoi["view_method"] == "median"
    assert "Each chip is the per-band median of the clear observations" in otsu_run["html"]
    assert otsu_run["manifest"]["config"]["composites"]["method"] == "geomedian"


@pytest.mark.e2e
def test_otsu_finds_the_pits_of_the_scenario(otsu_run: dict[str, Any]) -> None:
    metrics = otsu_run["metrics"]
    assert metrics["f1"] >= 0.9, metrics
    assert metrics["distractor_hits"] == 0, metrics
