"""A run's inputs are checked before anything runs, and then used as checked: a table edited
or removed while the run computes changes nothing (in-process run of a small scenario)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline import run
from pipeline.config import MonitorConfig
from pipeline.declared import DATA_DIR
from pipeline.demo import write_scenario
from tests.scale_fixtures import SMALL_SPEC, config_dict


def test_the_crosscheck_uses_the_tables_as_they_were_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The declared-production table is read once, by the pre-flight checks: broken while the
    AOIs compute, it no longer fails the run at its very end."""
    scenario = write_scenario(tmp_path / "scenario", SMALL_SPEC)
    table = tmp_path / "declared.csv"
    shutil.copyfile(str(DATA_DIR / "declared_production.csv"), table)
    cfg = MonitorConfig.model_validate(config_dict(
        source=str(scenario.catalog_path), aois=[scenario.aoi_path], out=tmp_path / "out", cache=tmp_path / "cache",
        crosscheck={"declared_production": str(table)}))
    real = run.write_outputs

    def broken_meanwhile(*args: Any, **kwargs: Any) -> Any:
        table.write_text("not,a,production,table\n", encoding="utf-8")
        return real(*args, **kwargs)

    monkeypatch.setattr(run, "write_outputs", broken_meanwhile)
    report = run.run_monitor(cfg)
    assert report.failures == {}
    declared = pd.read_csv(tmp_path / "out" / "crosscheck.csv")["declared_carats"]
    assert declared.notna().any()  # the checked table's figures, not an empty cross-check
