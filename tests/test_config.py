"""Config parsing: shipped configs load; bad YAML and bad values name the key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.config import (
    THRESHOLD_SECTIONS,
    DetectParams,
    MonitorConfig,
    aoi_config,
    field_meta,
    field_unit,
    load_config,
    threshold_table,
)
from pipeline.errors import ConfigError, MonitorWarning

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["monitor.yaml", "demo.yaml"])
def test_shipped_configs_load(name: str) -> None:
    cfg = load_config(REPO / "configs" / name)
    assert isinstance(cfg, MonitorConfig)
    assert cfg.source.collection == "sentinel-2-c1-l2a"
    hash(cfg)  # frozen models are hashable: deterministic Dask tokens


def test_monitor_config_covers_all_aois_and_last_12_months() -> None:
    cfg = load_config(REPO / "configs" / "monitor.yaml")
    # Every AOI file of aois/ is monitored, and listed in aois/README.md.
    shipped = {p.name for p in (REPO / "aois").glob("*.geojson")}
    assert {p.name for p in cfg.aois} == shipped
    assert shipped >= {"seguela.geojson", "tortiya.geojson", "marange.geojson", "car_berberati.geojson",
                       "car_bria.geojson"}
    assert all(p.exists() for p in cfg.aois)
    readme = (REPO / "aois" / "README.md").read_text("utf-8")
    from pipeline.aoi import read_aois

    for aoi_id in read_aois(list(cfg.aois))["aoi_id"]:
        assert f"| `{aoi_id}` |" in readme, f"{aoi_id} is not in aois/README.md"
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
        ("acquire:\n  resolution_m: 0.01\n", "acquire.resolution_m"),
        ("acquire:\n  margin_m: 1000000\n", "acquire.margin_m"),
        ("dask:\n  n_workers: 500\n", "dask.n_workers"),
        ("source:\n  url: 'http://[::1'\n", "source.url"),
        ("source:\n  url: ftp://127.0.0.1/stac\n", "source.url"),
        # a repeated section would replace the first whole (its demonstration marking with it)
        ("bulletin:\n  demonstration: true\nbulletin:\n  pdf: false\n", "key 'bulletin' appears twice"),
        ("detect:\n  min_confirmations: 3\n  min_confirmations: 4\n", "key 'min_confirmations' appears twice"),
        # keys Python holds as one (True == 1): the second would replace the first as silently
        ("gdal:\n  1: a\n  true: b\n", "key 'true' repeats key '1' of the same mapping (YAML reads both as the same"),
        ("gdal:\n  on: a\n  yes: b\n", "key 'yes' repeats key 'on'"),
        ("search:\n  warn_uncovered_frac: 0\n", "search.warn_uncovered_frac"),  # "0 %" would be printed
        # a collection id goes into the API's URL: '/items' or '?x=1' would name another resource
        ("source:\n  collection: sentinel-2-c1-l2a/items\n", "source.collection: 'sentinel-2-c1-l2a/items' is not a"),
        ("radar:\n  collection: ''\n", "radar.collection: '' is not a collection id"),
        ("period:\n  end: 2024-02-30\n", "'2024-02-30' is not a date"),
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


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "{}\n", "---\n"])
def test_a_config_that_sets_nothing_is_warned_about(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    expected = r"bad\.yaml sets nothing: every setting takes its built-in default; check --config$"
    with pytest.warns(MonitorWarning, match=expected):
        cfg = load_config(path)
    assert cfg.model_dump(exclude={"aois", "out_dir", "cache_dir"}) == MonitorConfig().model_dump(
        exclude={"aois", "out_dir", "cache_dir"})


def test_a_config_that_sets_something_is_not_warned_about(tmp_path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", MonitorWarning)
        load_config(_write(tmp_path, "search:\n  max_items: 10\n"))


def test_yaml_merge_keys_still_merge(tmp_path: Path) -> None:
    """'<<' is not a key of the mapping but a merge: the repeated-key check leaves it alone."""
    from pipeline.limits import load_yaml

    assert load_yaml("a:\n  <<: {x: 1}\n  y: 2\n", path=tmp_path / "c.yaml") == {"a": {"x": 1, "y": 2}}


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
    # where a run writes is not one of its settings
    moved = load_config(path, **{"period.start": "2024-01-01", "period.end": "2024-06-30",
                                 "out_dir": tmp_path / "elsewhere", "cache_dir": tmp_path / "cache"})
    assert moved.digest() == cfg.digest()


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        # both dates from the command line: both named, the file only as the base
        ("", {"period.start": "2024-05-01", "period.end": "2023-01-01"},
         "with period.start=2024-05-01, period.end=2023-01-01 from the command line: period: start must be before end"),
        # one from each: the flag that was given is named
        ("period:\n  end: 2024-01-01\n", {"period.start": "2024-05-01", "out_dir": "o"},
         "with period.start=2024-05-01 from the command line: period: start must be before end"),
        ("", {"dask.scheduler": "foo"}, "with dask.scheduler=foo from the command line: dask.scheduler: 'foo'"),
    ],
)
def test_a_bad_value_from_the_command_line_is_named_as_such(
    tmp_path: Path, text: str, overrides: dict[str, str], expected: str,
) -> None:
    path = _write(tmp_path, text or "search:\n  max_items: 10\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, **overrides)
    assert str(info.value).startswith(f"{path} {expected}")
    assert "out_dir" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("period:\n  start: abc\n", "period.start: Input should be a valid date or datetime, input is too short "
                                     "(got 'abc'); give a date as YYYY-MM-DD"),
        ("search:\n  max_items: ten\n", "(got 'ten'); give a whole number"),
        ("incremental: maybe\n", "(got 'maybe'); give true or false"),
        ("aois: 5\n", "aois: Input should be a valid tuple (got 5); give a YAML list"),
        ("period:\n  start: 20230101\n",
         "period.start: a number is not a date (got 20230101); give a date as YYYY-MM-DD"),
        ("source: 5\n", "give a mapping of settings"),
    ],
)
def test_a_value_of_the_wrong_form_says_what_to_write(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_a_bad_value_from_the_file_is_not_blamed_on_the_command_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "period:\n  start: 2024-05-01\n  end: 2023-01-01\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, **{"dask.scheduler": "tcp://127.0.0.1:8786", "out_dir": "o"})
    assert str(info.value) == f"{path}: period: start must be before end"


# ------------------------------------------------------------------------------------------
# units and sources: metadata of the fields the bulletin's methods annex lists
# ------------------------------------------------------------------------------------------


def test_every_annex_field_carries_its_unit_and_source() -> None:
    missing = [
        f"{section}.{key}"
        for section in THRESHOLD_SECTIONS
        for key, info in type(getattr(MonitorConfig(), section)).model_fields.items()
        if not isinstance(info.json_schema_extra, dict)
        or not str(info.json_schema_extra.get("unit", "")).strip()
        or not str(info.json_schema_extra.get("source", "")).strip()
        or not (info.description or "").strip()
    ]
    assert not missing, f"fields without unit, source or docstring (declare them with _param): {missing}"


def test_threshold_table_rows() -> None:
    cfg = MonitorConfig()
    rows = threshold_table(cfg)
    assert [r["section"] for r in rows] == sorted(
        (r["section"] for r in rows), key=THRESHOLD_SECTIONS.index
    )
    assert {tuple(r) for r in rows} == {("section", "key", "value", "default", "unit", "description", "source")}
    assert sum(r["section"] == "detect" for r in rows) == len(DetectParams.model_fields)
    by_key = {(r["section"], r["key"]): r for r in rows}
    expected = {
        ("crosscheck", "gravel_thickness_m"): ("m", "illustrative default, not sourced"),
        ("crosscheck", "review_min_peers_n"): ("participants", "design choice"),
        ("crosscheck", "review_robust_z_max"): ("robust z", "Iglewicz & Hoaglin (1993)"),
        ("crosscheck", "recovery_frac"): ("fraction (0–1)", "judgement, not sourced"),
        ("crosscheck", "declared_production"): (
            "CSV file", "each row carries its own source (see Sources of declared figures)"
        ),
        ("detect", "regrowth_ndvi_margin"): ("NDVI", "USGS OFR 2018-1088"),
        ("detect", "swir_change_min"): ("reflectance (0–1)", "Lobell and Asner 2002"),
        ("detect", "otsu_ndvi_drop_range"): ("NDVI", "design choice"),
        ("sites", "min_area_m2"): ("m²", "USGS OFR 2018-1088; measured on make validate"),
        ("radar", "vh_drop_min_db"): ("dB", "judgement, not sourced"),
        ("composites", "dry_season_months"): ("calendar months (1–12)", "judgement, not sourced"),
        ("preprocess", "scl_mask_classes"): ("SCL class codes", "ESA Sen2Cor product specification"),
    }
    for (section, key), (unit, source) in expected.items():
        row = by_key[(section, key)]
        assert (row["unit"], row["source"]) == (unit, source), f"{section}.{key}"
        assert field_unit(section, key) == unit
    row = by_key[("crosscheck", "review_robust_z_max")]
    assert "Iglewicz & Hoaglin (1993)" in row["description"] and "\n" not in row["description"]
    assert row["value"] == 3.5
    assert by_key[("detect", "otsu_ndvi_drop_range")]["value"] == (-1.0, 2.0)


def test_threshold_table_values_follow_the_config(tmp_path: Path) -> None:
    path = _write(tmp_path, "crosscheck:\n  trade_statistics: t.csv\ndetect:\n  otsu_ndvi_drop_bins: 150\n")
    by_key = {(r["section"], r["key"]): r["value"] for r in threshold_table(load_config(path))}
    assert by_key[("crosscheck", "trade_statistics")] == str(tmp_path / "t.csv")  # paths as str
    assert by_key[("crosscheck", "declared_production")] is None
    assert by_key[("detect", "otsu_ndvi_drop_bins")] == 150


def test_field_meta_lookups() -> None:
    meta = field_meta("radar", "vh_drop_min_db")
    assert meta["unit"] == "dB" and meta["description"].startswith("Minimum decrease of VH backscatter")
    assert field_unit("", "max_aoi_area_km2") == "km²"
    assert field_unit("search", "max_cloud_frac") == ""  # outside the annex sections: no metadata needed
    with pytest.raises(KeyError):
        field_unit("detect", "no_such_key")
    with pytest.raises(KeyError):
        field_unit("no_such_section", "enabled")
    with pytest.raises(KeyError):
        field_unit("max_aoi_area_km2", "x")  # a top-level field is not a section


def test_parameter_fields_defaults() -> None:
    cfg = MonitorConfig()
    assert cfg.detect.otsu_ndvi_drop_range == (-1.0, 2.0) and cfg.detect.otsu_ndvi_drop_bins == 300
    assert cfg.composites.geomedian_eps == 1e-4 and cfg.composites.geomedian_max_iters == 10_000
    assert cfg.max_aoi_area_km2 == 5000.0


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("detect:\n  otsu_ndvi_drop_bins: 1\n", "detect.otsu_ndvi_drop_bins"),
        ("detect:\n  otsu_ndvi_drop_range: [0.5, 0.5]\n", "detect.otsu_ndvi_drop_range"),
        ("detect:\n  otsu_ndvi_drop_range: [2.0, -1.0]\n", "detect.otsu_ndvi_drop_range"),
        ("detect:\n  otsu_ndvi_drop_range: [0.1]\n", "detect.otsu_ndvi_drop_range"),
        ("composites:\n  geomedian_eps: 0\n", "composites.geomedian_eps"),
        ("composites:\n  geomedian_max_iters: 0\n", "composites.geomedian_max_iters"),
        ("max_aoi_area_km2: 0\n", "max_aoi_area_km2"),
    ],
)
def test_parameter_fields_validate(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and key in message
    assert "\n" not in message


def test_parameter_fields_can_be_set_per_aoi() -> None:
    cfg = aoi_config(MonitorConfig(), {"detect": {"otsu_ndvi_drop_range": [-0.5, 1.5]}}, where="AOI x")
    assert cfg.detect.otsu_ndvi_drop_range == (-0.5, 1.5)
    with pytest.raises(ConfigError, match=r"detect\.otsu_ndvi_drop_bins"):
        aoi_config(MonitorConfig(), {"detect": {"otsu_ndvi_drop_bins": 0}}, where="AOI x")
