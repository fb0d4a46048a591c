"""Config parsing: shipped configs load; bad YAML and bad values name the key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.config import MonitorConfig, load_config
from pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["monitor.yaml", "demo.yaml"])
def test_shipped_configs_load(name: str) -> None:
    cfg = load_config(REPO / "configs" / name)
    assert isinstance(cfg, MonitorConfig)
    assert cfg.source.collection == "sentinel-2-c1-l2a"
    hash(cfg)  # frozen models are hashable: deterministic Dask tokens


def test_monitor_config_covers_all_aois_and_last_12_months() -> None:
    cfg = load_config(REPO / "configs" / "monitor.yaml")
    assert {p.name for p in cfg.aois} >= {"seguela.geojson", "tortiya.geojson", "marange.geojson"}
    assert all(p.exists() for p in cfg.aois)
    start, end = cfg.period.resolved(today=dt.date(2026, 11, 27))
    assert (end - start).days == 365
    assert cfg.source.url.startswith("https://earth-search")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("detect:\n  ndvi_drop_min: -1\n", "detect.ndvi_drop_min"),
        ("detect:\n  ndvi_drop_mni: 0.3\n", "detect.ndvi_drop_mni"),
        ("sites:\n  min_area_m2: lots\n", "sites.min_area_m2"),
        ("period:\n  start: 2024-05-01\n  end: 2024-01-01\n", "period"),
        ("period:\n  period_months: 5\n", "period.period_months"),
        ("bogus: 1\n", "bogus"),
        ("search:\n  max_cloud_frac: 1.5\n", "search.max_cloud_frac"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and key in message
    assert "\n" not in message


def test_malformed_yaml_gives_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "detect:\n  ndvi_drop_min: [0.3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml line \d+"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_and_relative_paths(tmp_path: Path) -> None:
    path = _write(tmp_path, "aois: [a.geojson]\nout_dir: out\n")
    cfg = load_config(path, **{"period.start": "2024-01-01", "period.end": "2024-06-30"})
    assert cfg.aois == (tmp_path / "a.geojson",)
    assert cfg.out_dir == tmp_path / "out"
    assert cfg.period.start == dt.date(2024, 1, 1)
    assert load_config(path).digest() != cfg.digest()
