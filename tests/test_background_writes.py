"""A run's composites are written in a background thread (:class:`pipeline.io.BackgroundWrites`)
while its sites and bulletin are made: the manifest still comes after them, and a composite that
cannot be written fails the run before its manifest (in-process runs of a small scenario)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from pipeline import aoi_records, gil, outputs
from pipeline.config import MonitorConfig
from pipeline.demo import ScenarioResult, write_scenario
from pipeline.run import run_monitor
from pipeline.runfolder import INCOMPLETE_MARKER
from tests.scale_fixtures import SMALL_SPEC, config_dict


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioResult:
    return write_scenario(tmp_path_factory.mktemp("scenario"), SMALL_SPEC)


def _config(scenario: ScenarioResult, tmp_path: Path) -> MonitorConfig:
    return MonitorConfig.model_validate(config_dict(
        source=str(scenario.catalog_path), aois=[scenario.aoi_path], out=tmp_path / "out", cache=tmp_path / "cache"))


def test_the_manifest_is_written_after_the_background_composites(
    scenario: ScenarioResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each composite write is held until the manifest starts (2 s at most): a run that did not
    wait for its writes would write the manifest first. (And the run's short switch interval,
    :mod:`pipeline.gil`, is set while it writes and restored after it.)"""
    before = sys.getswitchinterval()
    order: list[str] = []
    intervals: list[float] = []
    manifest_started = threading.Event()
    real_write, real_manifest = aoi_records.composites.write_composites, outputs.build_manifest

    def held_write(*args: Any, **kwargs: Any) -> Any:
        manifest_started.wait(2.0)
        paths = real_write(*args, **kwargs)
        order.append("composites")
        return paths

    def manifest(*args: Any, **kwargs: Any) -> Any:
        intervals.append(sys.getswitchinterval())
        manifest_started.set()
        order.append("manifest")
        return real_manifest(*args, **kwargs)

    monkeypatch.setattr(aoi_records.composites, "write_composites", held_write)
    monkeypatch.setattr(outputs, "build_manifest", manifest)
    report = run_monitor(_config(scenario, tmp_path))
    assert report.failures == {}
    assert order == ["composites", "manifest"]
    assert intervals == [pytest.approx(min(gil.SWITCH_INTERVAL_S, before), abs=2e-6)]
    assert sys.getswitchinterval() == pytest.approx(before, abs=2e-6)
    assert sorted((tmp_path / "out" / "composites").glob("*.tif"))


def test_a_composite_that_cannot_be_written_fails_the_run_before_its_manifest(
    scenario: ScenarioResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(aoi_records.composites, "write_composites", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        run_monitor(_config(scenario, tmp_path))
    out = tmp_path / "out"
    assert not (out / "manifest.json").exists()
    assert (out / INCOMPLETE_MARKER).exists()  # the next run into it knows this one did not finish
