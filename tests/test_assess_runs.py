"""``assess`` on whole pipeline runs whose truth is known: does the 95 % interval hold the truth?

Three small synthetic scenes (three seeds) go through ``run_monitor``; each run's map is
sampled ``N_DRAWS`` times with different sample seeds (``assess.seed``), every sample is
labelled from the scene's truth (a point is ``mining`` inside a true pit), and the stratified
estimate's 95 % interval is checked against the true pit area inside the AOI. Slow: three
pipeline runs (``make test-all``).

Measured (2026-12-01, default sample design: at least 100 points per stratum, 30 m buffer):
the 95 % interval held the true area in 26 of 30 samples; the misses are samples where no point
fell on the little mining the map omitted, so the stratum's standard error is 0. With the old
100 m buffer it held it in 14 of 30 (the omission, rims within 30 m of the sites, diluted in
the wider ring). The conservative range (interval plus the rule-of-three bound of such
unanimous strata, ``area_range_conservative_ha``) held it in 30 of 30. The test prints both
and asserts the conservative range >= 90 % and the interval >= 75 % (it is not quite a 95 %
interval on such maps).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from pipeline.assess import estimate_run, sample_run
from pipeline.config import AssessParams, load_config
from pipeline.demo import ScenarioSpec, write_scenario
from pipeline.evaluate import read_truth
from pipeline.run import run_monitor

REPO = Path(__file__).resolve().parents[1]
SEEDS = (21, 22, 23)
N_DRAWS = 10


def _run(root: Path, seed: int) -> tuple[Path, Path]:
    spec = ScenarioSpec(
        seed=seed, shape_px=(160, 220), start=dt.date(2022, 1, 1), end=dt.date(2024, 3, 31),
        monitoring_start=dt.date(2023, 1, 1), n_pits=8, pit_area_ha=(0.3, 1.5), n_fields=2, n_burn_scars=2,
        village=False, with_s1=False,
    )
    scenario = write_scenario(root / "scenario", spec)
    cfg = load_config(REPO / "configs" / "demo.yaml", aois=[str(scenario.aoi_path)], **{
        "source.url": str(scenario.catalog_path), "out_dir": str(root / "out"), "bulletin.pdf": False,
        "radar.enabled": False, "period.start": "2023-01-01", "period.end": "2024-03-31",
    })
    run_monitor(cfg)
    return root / "out", scenario.truth_path


@pytest.mark.slow
def test_interval_holds_the_true_area_across_scenes_and_samples(tmp_path: Path) -> None:
    hits, conservative, total, rows = 0, 0, 0, []
    for seed in SEEDS:
        out, truth_path = _run(tmp_path / f"seed{seed}", seed)
        truth = read_truth(truth_path)
        pits = truth[truth["kind"] == "pit"]
        utm = pits.estimate_utm_crs()
        aoi = gpd.read_file(tmp_path / f"seed{seed}" / "scenario" / "aoi.geojson").to_crs(utm).geometry.iloc[0]
        pit_union = shapely.union_all(pits.to_crs(utm).geometry.to_numpy())
        true_ha = pit_union.intersection(aoi).area / 1e4
        shapely.prepare(pit_union)
        for draw in range(N_DRAWS):
            params = AssessParams(seed=1000 * seed + draw)
            written = sample_run(out, params=params, chips=False)
            sample = pd.read_csv(written["sample.csv"], dtype={"label": str}, keep_default_na=False)
            pts = gpd.GeoSeries(gpd.points_from_xy(sample["lon"], sample["lat"]), crs=4326).to_crs(utm)
            sample["label"] = ["mining" if pit_union.contains(p) else "not_mining" for p in pts]
            labels = out / "assessment" / "labels.csv"
            sample.to_csv(labels, index=False)
            est = estimate_run(out, labels, params=params)
            covered = abs(est["area_ha"] - true_ha) <= est["area_ci95_ha"]
            hits += int(covered)
            low, high = est["area_range_conservative_ha"]
            conservative += int(low <= true_ha <= high)
            total += 1
            rows.append({"seed": seed, "draw": draw, "true_ha": round(true_ha, 2), "area_ha": est["area_ha"],
                         "ci95_ha": est["area_ci95_ha"], "mapped_ha": est["mapped_area_ha"], "n": est["n_points"]})
    frame = pd.DataFrame(rows)
    print(frame.groupby("seed")[["true_ha", "mapped_ha", "area_ha", "ci95_ha", "n"]].mean().round(2).to_string())
    print(json.dumps({"interval_held_truth": hits, "conservative_held_truth": conservative, "of": total}))
    assert conservative / total >= 0.9, (conservative, total)
    assert hits / total >= 0.75, (hits, total)
