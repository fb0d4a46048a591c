"""``python -m pipeline train`` and ``monitor --model``: the site classifier through the CLI contract.

The fast tests check the contract's bad-input paths (one line, exit 2, nothing written). The
``slow`` test trains on one synthetic scene with hard distractors (a seasonal river with
sandbars, annual burns, dry-season browning, fields, laterite) labelled from its truth, applies
the model to a scene of another seed, and compares it with the rules alone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.classify import FEATURE_NAMES, feature_spec, train_site_model
from pipeline.config import ClassifierParams, FeatureParams
from pipeline.demo import ScenarioSpec, write_scenario
from pipeline.demo.labels import labels_from_truth
from pipeline.evaluate import evaluate_sites, read_sites, read_truth
from tests.bad_inputs.harness import run_in_process

REPO = Path(__file__).resolve().parents[1]

#: A small scene with every hard distractor; two seeds: one to train on, one to test on.
HARD = dict(
    shape_px=(160, 220), start=dt.date(2022, 1, 1), end=dt.date(2024, 3, 31), monitoring_start=dt.date(2023, 1, 1),
    n_pits=8, pit_area_ha=(0.4, 1.5), n_abandoned=0, n_fields=4, field_area_ha=(0.6, 1.5), n_burn_scars=4,
    burn_area_ha=(1.0, 2.5), burns_every_year=True, dry_season_browning=1.0, sandbar_river=True,
    n_bare_patches=2, bare_patch_area_ha=(0.5, 1.5), village=False, with_s1=False,
)


def _cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env
    )


def _in_process(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_in_process(folder / "cwd", *args)


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    errors = [ln for ln in stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def _config(tmp_path: Path, text: str = "") -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(
        "period:\n  start: 2023-01-01\n  end: 2024-03-31\n"
        "search:\n  max_cloud_frac: 1.0\n"
        "acquire:\n  margin_m: 0\n  chunk_px: 256\n"
        "radar:\n  enabled: false\n"
        "classifier:\n  max_iter: 60\n  bootstrap_n: 200\n  min_samples_leaf: 3\n"
        "bulletin:\n  demonstration: true\n  pdf: false\n"
        "dask:\n  n_workers: 1\n  threads_per_worker: 2\n  memory_limit: 3GiB\n" + text,
        encoding="utf-8",
    )
    return path


def _saved_model(tmp_path: Path, features: FeatureParams) -> Path:
    """A model trained on random features (the fast tests only need its folder and its spec)."""
    rng = np.random.default_rng(0)
    n = 60
    X = pd.DataFrame(rng.normal(size=(n, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    y = np.r_[np.ones(n // 2, int), np.zeros(n // 2, int)]
    X.loc[y == 1, "ndvi_diff_mean"] -= 2.0
    groups = np.array([f"g{i // 3}" for i in range(n)])
    model = train_site_model(
        X, y, groups, params=ClassifierParams(max_iter=20, bootstrap_n=50, min_samples_leaf=3),
        spec=feature_spec(features, baseline_days=365), training_summary={"n": n},
    )
    return model.save(tmp_path / "model")


def test_train_help_lists_the_contract_flags(tmp_path: Path) -> None:
    out = _in_process(tmp_path, "train", "--help").stdout
    for flag in ("--config", "--aoi", "--source", "--start", "--end", "--labels", "--out", "--cache", "--scheduler"):
        assert flag in out
    assert "--model" in _in_process(tmp_path, "monitor", "--help").stdout


def test_bad_labels_are_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    labels = tmp_path / "labels.geojson"
    labels.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"label": "gold"},
         "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [0, 1], [1, 1], [0, 0]]]}}]}), encoding="utf-8")
    out = tmp_path / "model"
    res = _in_process(tmp_path, "train", "--config", str(_config(tmp_path)), "--labels", str(labels), "--out", str(out))
    assert res.returncode == 2
    line = _one_error_line(res.stderr)
    assert "labels.geojson" in line and "label" in line
    assert not out.exists()


def test_a_model_trained_on_other_features_is_refused_in_one_line(tmp_path: Path) -> None:
    model = _saved_model(tmp_path, FeatureParams(ring_m=40.0))
    out = tmp_path / "out"
    aoi = REPO / "aois" / "seguela.geojson"
    res = _in_process(tmp_path, "monitor", "--config", str(_config(tmp_path)), "--aoi", str(aoi), "--source",
               str(tmp_path / "nope.json"), "--model", str(model), "--out", str(out))
    assert res.returncode == 2
    line = _one_error_line(res.stderr)
    assert str(model) in line and "ring_m" in line
    assert not out.exists()


def test_a_missing_model_folder_is_bad_input(tmp_path: Path) -> None:
    out = tmp_path / "out"
    aoi = REPO / "aois" / "seguela.geojson"
    res = _in_process(tmp_path, "monitor", "--config", str(_config(tmp_path)), "--aoi", str(aoi),
               "--model", str(tmp_path / "no-model"), "--out", str(out))
    assert res.returncode == 2
    assert "no-model" in _one_error_line(res.stderr)
    assert not out.exists()


@pytest.mark.slow
def test_the_classifier_beats_the_rules_on_hard_distractors(tmp_path: Path) -> None:
    train = write_scenario(tmp_path / "train", ScenarioSpec(seed=21, **HARD))  # type: ignore[arg-type]
    test = write_scenario(tmp_path / "test", ScenarioSpec(seed=22, **HARD))  # type: ignore[arg-type]
    labels = labels_from_truth(train.truth_path, tmp_path / "labels.geojson")
    cfg = _config(tmp_path)
    model = tmp_path / "model"
    res = _cli("train", "--config", str(cfg), "--aoi", str(train.aoi_path), "--source", str(train.catalog_path),
               "--labels", str(labels), "--out", str(model))
    assert res.returncode == 0, res.stderr
    card = json.loads((model / "model_card.json").read_text(encoding="utf-8"))
    assert card["training_summary"]["n_label_polygons_used"] >= 6
    assert (model / "MODEL_CARD.md").is_file()

    scores = {}
    for name, extra in (("rules", ()), ("model", ("--model", str(model)))):
        out = tmp_path / name
        res = _cli("monitor", "--config", str(cfg), "--aoi", str(test.aoi_path), "--source", str(test.catalog_path),
                   "--out", str(out), *extra)
        assert res.returncode == 0, res.stderr
        scores[name] = evaluate_sites(read_sites(out / "sites.geojson"), read_truth(test.truth_path))
    assert scores["model"]["f1"] >= scores["rules"]["f1"], scores
    assert scores["model"]["distractor_hits"] <= scores["rules"]["distractor_hits"], scores

    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text(encoding="utf-8"))
    summary = manifest["detection"]["site_models"][0]
    assert summary["digest"] == card["model_sha256"][:12]
    html = (tmp_path / "model" / "bulletin.html").read_text(encoding="utf-8")
    assert "Site classifier &#34;model&#34;" in html and summary["digest"] in html
    rules_html = (tmp_path / "rules" / "bulletin.html").read_text(encoding="utf-8")
    assert "No site classifier was applied" in rules_html
