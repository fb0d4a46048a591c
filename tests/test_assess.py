"""Accuracy assessment and area estimation (pipeline.assess; Olofsson et al. 2014)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import rasterio
import shapely
from PIL import Image
from rasterio.transform import from_origin
from shapely.geometry import box

from pipeline.assess import (
    MAP_CLASS,
    SAMPLE_CSV_COLUMNS,
    AssessParams,
    allocate_sample,
    count_matrix,
    draw_sample,
    estimate_accuracy,
    expected_overall_se,
    plan_sample,
    read_labels_csv,
    sample_size,
    stratify,
    write_chips,
    write_sample,
)
from pipeline.errors import ConfigError

# --------------------------------------------------------------------------------------------
# Olofsson et al. (2014), section 5: the worked example (their Tables 8 and 9)
# --------------------------------------------------------------------------------------------
CLASSES = ["deforestation", "forest_gain", "stable_forest", "stable_non_forest"]
#: Sample counts, rows map class, columns reference class (row totals 75, 75, 165, 325: n = 640).
OLOFSSON_COUNTS = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
#: Mapped area in 30 m pixels (0.09 ha each): 10 000 000 pixels = 900 000 ha.
OLOFSSON_PIXELS = np.array([200_000, 150_000, 3_200_000, 6_450_000])


def _olofsson() -> tuple[pd.DataFrame, dict[str, float]]:
    counts = pd.DataFrame(OLOFSSON_COUNTS, index=CLASSES, columns=CLASSES)
    return counts, dict(zip(CLASSES, OLOFSSON_PIXELS * 0.09, strict=True))


def test_olofsson_worked_example_reproduces_the_published_figures() -> None:
    counts, areas_ha = _olofsson()
    est = estimate_accuracy(counts, stratum_areas=areas_ha)
    assert counts.sum().sum() == 640
    # Table 9: error matrix in estimated area proportions.
    expected_p = [
        [0.0176, 0.0000, 0.0013, 0.0011],
        [0.0000, 0.0110, 0.0016, 0.0024],
        [0.0019, 0.0000, 0.2967, 0.0213],
        [0.0040, 0.0020, 0.0179, 0.6212],
    ]
    np.testing.assert_array_equal(est.proportions.to_numpy().round(4), expected_p)
    np.testing.assert_array_equal(est.proportions.sum().to_numpy().round(4), [0.0235, 0.0130, 0.3175, 0.6460])
    assert est.users_accuracy.round(2).tolist() == [0.88, 0.73, 0.93, 0.96]
    assert est.producers_accuracy.round(2).tolist() == [0.75, 0.85, 0.93, 0.96]
    assert round(est.overall_accuracy, 2) == 0.95
    # Stratified area estimates (ha) with 95 % confidence interval half-widths.
    assert est.area.round().tolist() == [21158, 11686, 285770, 581386]
    assert est.area_ci.round().tolist() == [6158, 3756, 15510, 16282]
    # +- 95 % CI of the accuracies.
    assert (1.96 * est.users_accuracy_se).round(2).tolist() == [0.07, 0.10, 0.04, 0.02]
    assert round(1.96 * est.overall_accuracy_se, 2) == 0.02
    assert est.matrix.to_numpy().tolist() == OLOFSSON_COUNTS.tolist()
    assert est.total_area == pytest.approx(900_000)


def test_standard_errors_are_olofsson_equations_5_to_7() -> None:
    """The stratified ratio variance reduces to eqs. 5, 6, 7 when strata are map classes."""
    counts, areas_ha = _olofsson()
    est = estimate_accuracy(counts, stratum_areas=areas_ha)
    n = OLOFSSON_COUNTS.astype(float)
    n_i = n.sum(axis=1)
    w = OLOFSSON_PIXELS / OLOFSSON_PIXELS.sum()
    big_n = OLOFSSON_PIXELS.astype(float)
    u = np.diag(n) / n_i
    v_o = np.sum(w**2 * u * (1 - u) / (n_i - 1))  # eq. 5
    v_u = u * (1 - u) / (n_i - 1)  # eq. 6
    n_dot_j = (big_n[:, None] * n / n_i[:, None]).sum(axis=0)
    p_j = (w[:, None] * n / n_i[:, None]).sum(axis=0)
    pa = np.diag(w[:, None] * n / n_i[:, None]) / p_j
    v_p = np.zeros(4)
    for j in range(4):  # eq. 7
        others = sum(
            big_n[i] ** 2 * n[i, j] / n_i[i] * (1 - n[i, j] / n_i[i]) / (n_i[i] - 1) for i in range(4) if i != j
        )
        v_p[j] = (big_n[j] ** 2 * (1 - pa[j]) ** 2 * u[j] * (1 - u[j]) / (n_i[j] - 1) + pa[j] ** 2 * others)
        v_p[j] /= n_dot_j[j] ** 2
    p = n / n_i[:, None]
    v_area = (w[:, None] ** 2 * p * (1 - p) / (n_i[:, None] - 1)).sum(axis=0)  # eq. 10
    assert est.overall_accuracy_se == pytest.approx(math.sqrt(v_o), rel=1e-12)
    np.testing.assert_allclose(est.users_accuracy_se, np.sqrt(v_u), rtol=1e-12)
    np.testing.assert_allclose(est.producers_accuracy, pa, rtol=1e-12)
    np.testing.assert_allclose(est.producers_accuracy_se, np.sqrt(v_p), rtol=1e-12)
    np.testing.assert_allclose(est.area_proportion_se, np.sqrt(v_area), rtol=1e-12)


def test_strata_that_differ_from_map_classes_are_rows_of_the_area_estimate() -> None:
    counts = pd.DataFrame([[40, 10], [6, 94], [2, 148]], index=["site", "buffer", "stable"],
                          columns=["mining", "not_mining"])
    areas = {"site": 30.0, "buffer": 70.0, "stable": 900.0}
    est = estimate_accuracy(counts, stratum_areas=areas, map_class=MAP_CLASS)
    w = np.array([0.03, 0.07, 0.9])
    share = counts.to_numpy() / counts.sum(axis=1).to_numpy()[:, None]
    assert est.area_proportion["mining"] == pytest.approx(float(w @ share[:, 0]))
    # Map rows collapse strata: buffer and stable both map not_mining.
    assert est.matrix.loc["not_mining"].tolist() == [8, 242]
    assert est.proportions.loc["not_mining", "mining"] == pytest.approx(0.07 * 6 / 100 + 0.9 * 2 / 150)
    assert est.users_accuracy["mining"] == pytest.approx(0.8)
    assert est.users_accuracy["not_mining"] == pytest.approx((0.07 * 0.94 + 0.9 * 148 / 150) / 0.97)
    assert est.producers_accuracy["mining"] == pytest.approx(0.03 * 0.8 / float(w @ share[:, 0]))
    assert est.area.sum() == pytest.approx(1000.0)
    assert est.table().loc["mining", "mapped_area"] == pytest.approx(30.0)


def test_ci_is_zero_when_every_point_agrees_with_its_map_class() -> None:
    counts = pd.DataFrame([[50, 0], [0, 80], [0, 120]], index=["site", "buffer", "stable"],
                          columns=["mining", "not_mining"])
    est = estimate_accuracy(counts, stratum_areas={"site": 30, "buffer": 70, "stable": 900}, map_class=MAP_CLASS)
    assert est.overall_accuracy == 1.0
    assert est.overall_accuracy_se == pytest.approx(0.0, abs=1e-12)
    assert est.area["mining"] == pytest.approx(30.0)
    np.testing.assert_allclose(est.area_ci, [0.0, 0.0], atol=1e-9)  # ha; only rounding error
    np.testing.assert_allclose(est.users_accuracy_se, [0.0, 0.0], atol=1e-12)


def test_ci_shrinks_with_the_sample_size() -> None:
    base = np.array([[40, 10], [6, 94], [2, 148]])
    areas = {"site": 30.0, "buffer": 70.0, "stable": 900.0}
    small = estimate_accuracy(base, stratum_areas=areas, map_class=MAP_CLASS)
    large = estimate_accuracy(base * 4, stratum_areas=areas, map_class=MAP_CLASS)
    assert large.area["mining"] == pytest.approx(small.area["mining"])
    # Same proportions, 4x the points: the interval about halves.
    assert large.area_ci["mining"] < 0.55 * small.area_ci["mining"]
    assert large.overall_accuracy_se < small.overall_accuracy_se


def test_zero_area_stratum_without_points_is_allowed() -> None:
    est = estimate_accuracy(np.array([[0, 0], [5, 95], [1, 149]]), map_class=MAP_CLASS,
                            stratum_areas={"site": 0.0, "buffer": 70.0, "stable": 900.0})
    assert est.area["mining"] > 0
    assert math.isnan(est.users_accuracy["mining"])


@pytest.mark.parametrize(
    ("counts", "areas", "match"),
    [
        ([[1, 0], [5, 95], [1, 149]], {"site": 30, "buffer": 70, "stable": 900}, "'site' has 1 labelled point"),
        ([[9, 1], [5, 95], [1, 149]], {"site": 30, "buffer": 70}, "stratum_areas keys"),
        ([[9, 1], [5, 95], [1, 149]], {"site": -1, "buffer": 70, "stable": 900}, "non-negative"),
        ([[9, -1], [5, 95], [1, 149]], {"site": 30, "buffer": 70, "stable": 900}, "whole numbers"),
    ],
)
def test_estimate_rejects_bad_input_in_one_line(counts: list[list[int]], areas: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        estimate_accuracy(np.array(counts), stratum_areas=areas, map_class=MAP_CLASS)
    assert "\n" not in str(info.value)


def test_count_matrix_counts_and_rejects_unknown_labels() -> None:
    sample = pd.DataFrame({"stratum": ["site", "site", "buffer", "stable"],
                           "label": ["mining", "not_mining", "mining", "not_mining"]})
    assert count_matrix(sample).to_numpy().tolist() == [[1, 1], [1, 0], [0, 1]]
    with pytest.raises(ConfigError, match="'label' has value"):
        count_matrix(sample.assign(label="minig"))


# --------------------------------------------------------------------------------------------
# design: sample size, allocation
# --------------------------------------------------------------------------------------------


def test_sample_size_matches_a_hand_computation() -> None:
    w = {"a": 0.02, "b": 0.015, "c": 0.32, "d": 0.645}
    u = {"a": 0.7, "b": 0.6, "c": 0.9, "d": 0.95}
    hand = (0.02 * math.sqrt(0.21) + 0.015 * math.sqrt(0.24) + 0.32 * math.sqrt(0.09) + 0.645 * math.sqrt(0.0475))
    assert sample_size(w, u, target_se=0.01) == math.ceil((hand / 0.01) ** 2) == 641  # Olofsson et al. 5.1
    assert sample_size(w, u, target_se=0.02) == math.ceil((hand / 0.02) ** 2)
    with pytest.raises(ConfigError, match="no value for stratum"):
        sample_size(w, {"a": 0.7}, target_se=0.01)


def test_allocation_gives_rare_strata_their_minimum_and_the_rest_by_area() -> None:
    w = {"site": 0.01, "buffer": 0.04, "stable": 0.95}
    sizes = allocate_sample(400, w, minimums={"site": 100, "buffer": 50})
    assert sizes == {"site": 100, "buffer": 50, "stable": 250}
    big = allocate_sample(20_000, w, minimums={"site": 100, "buffer": 50})
    assert big == {"site": 200, "buffer": 800, "stable": 19_000}  # minimums no longer bind
    with pytest.raises(ConfigError, match="cannot give every stratum its minimum"):
        allocate_sample(120, w, minimums={"site": 100, "buffer": 50})


def test_plan_sample_and_expected_se() -> None:
    strata = pd.DataFrame({"stratum": ["site", "buffer", "stable"], "area_ha": [30.0, 50.0, 920.0]})
    params = AssessParams()
    sizes = plan_sample(strata, params=params)  # type: ignore[arg-type]
    assert sizes["site"] >= params.min_site_n and sizes["buffer"] >= params.min_buffer_n
    assert sizes["stable"] >= params.min_stable_n
    se = expected_overall_se(sizes, {"site": 30.0, "buffer": 50.0, "stable": 920.0}, params.users_accuracy())
    assert 0 < se < 0.02
    no_sites = plan_sample(strata.assign(area_ha=[0.0, 0.0, 1000.0]), params=params)  # type: ignore[arg-type]
    assert no_sites["site"] == no_sites["buffer"] == 0 and no_sites["stable"] >= params.min_stable_n


def test_assess_params_are_frozen_and_documented() -> None:
    params = AssessParams(buffer_m=150)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        params.buffer_m = 1.0  # type: ignore[misc]
    for name, field in AssessParams.model_fields.items():
        assert field.description, name
        assert {"unit", "source"} <= set(field.json_schema_extra or {}), name  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        AssessParams(min_site_n=1)


# --------------------------------------------------------------------------------------------
# stratify and draw_sample on a synthetic map (UTM zone 29N, northern Côte d'Ivoire)
# --------------------------------------------------------------------------------------------
UTM = pyproj.CRS.from_epsg(32629)
X0, Y0 = 760_000.0, 900_000.0
TO_WGS84 = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True)
TO_UTM = pyproj.Transformer.from_crs(4326, UTM, always_xy=True)


def _b(x1: float, y1: float, x2: float, y2: float) -> shapely.Polygon:
    return box(X0 + x1, Y0 + y1, X0 + x2, Y0 + y2)


#: 2 km x 2 km AOI; three mapped sites of 15 + 8 + 7 = 30 ha.
AOI_UTM = _b(0, 0, 2000, 2000)
SITES_UTM = [_b(300, 300, 800, 600), _b(1200, 1200, 1600, 1400), _b(400, 1400, 600, 1750)]
#: Truth: 5 ha of the mapped sites are commission; 2.8 ha of mining in the buffer were omitted,
#: and a lone 0.49 ha pit far from the sites (in the stable stratum). True mining: 28.29 ha.
COMMISSION = [_b(300, 300, 400, 600), _b(1200, 1200, 1300, 1400)]
OMISSION = [_b(800, 300, 860, 600), _b(400, 1750, 600, 1800), _b(1700, 200, 1770, 270)]
TRUTH_UTM = shapely.union_all([shapely.difference(shapely.union_all(SITES_UTM), shapely.union_all(COMMISSION)),
                               *OMISSION])


def _to_wgs84(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda xy: np.column_stack(TO_WGS84.transform(xy[:, 0], xy[:, 1])))


@pytest.fixture(scope="module")
def strata() -> gpd.GeoDataFrame:
    sites = gpd.GeoDataFrame({"site_id": ["a", "b", "c"]}, geometry=[_to_wgs84(g) for g in SITES_UTM], crs=4326)
    return stratify(sites, _to_wgs84(AOI_UTM), buffer_m=100.0)


def test_stratify_covers_the_aoi_with_valid_disjoint_strata(strata: gpd.GeoDataFrame) -> None:
    assert strata["stratum"].tolist() == ["site", "buffer", "stable"]
    assert strata["map_class"].tolist() == ["mining", "not_mining", "not_mining"]
    assert strata.crs.to_epsg() == 32629
    assert shapely.is_valid(strata.geometry.to_numpy()).all()
    assert strata["area_ha"].sum() == pytest.approx(AOI_UTM.area / 1e4, rel=1e-3)
    assert strata["area_ha"].iloc[0] == pytest.approx(30.0, rel=1e-6)
    site, ring, rest = strata.geometry
    assert site.intersection(ring).area < 1e-3 and site.intersection(rest).area < 1e-3
    assert ring.intersection(rest).area < 1e-3
    # The ring is at most buffer_m wide: every ring point lies within 100 m of a site.
    assert ring.difference(site.buffer(100.0 + 1e-6)).area < 1e-3
    # ... and the stable rest starts 100 m out (less 2 %: the buffer's round corners are polygons).
    assert rest.distance(site) >= 98.0


def test_stratify_without_sites_and_with_bad_input() -> None:
    aoi = _to_wgs84(AOI_UTM)
    empty = stratify(gpd.GeoDataFrame(geometry=[], crs=4326), aoi, buffer_m=100)
    assert empty["area_ha"].tolist()[:2] == [0.0, 0.0]
    assert empty["area_ha"].iloc[2] == pytest.approx(400.0, rel=1e-3)
    with pytest.raises(ConfigError, match="no CRS"):
        stratify(gpd.GeoDataFrame(geometry=[_to_wgs84(SITES_UTM[0])]), aoi, buffer_m=100)
    with pytest.raises(ConfigError, match="buffer_m"):
        stratify(gpd.GeoDataFrame(geometry=[], crs=4326), aoi, buffer_m=0)


def test_draw_sample_is_deterministic_and_inside_its_strata(strata: gpd.GeoDataFrame) -> None:
    sizes = {"site": 30, "buffer": 40, "stable": 50}
    one, again = draw_sample(strata, sizes=sizes, seed=7), draw_sample(strata, sizes=sizes, seed=7)
    other = draw_sample(strata, sizes=sizes, seed=8)
    pd.testing.assert_frame_equal(pd.DataFrame(one), pd.DataFrame(again))
    assert not np.allclose(one["lon"], other["lon"])
    assert list(one.columns) == ["point_id", "lon", "lat", "stratum", "label", "geometry"]
    assert one["point_id"].iloc[0] == "P0001" and one["point_id"].is_unique
    assert one["stratum"].value_counts().to_dict() == sizes
    assert (one["label"] == "").all()
    assert (one["lon"] == one["lon"].round(7)).all()
    x, y = TO_UTM.transform(one.geometry.x.to_numpy(), one.geometry.y.to_numpy())
    for name, geom in zip(strata["stratum"], strata.geometry, strict=True):
        inside = (one["stratum"] == name).to_numpy()
        assert shapely.contains_xy(geom, x[inside], y[inside]).all(), name
    with pytest.raises(ConfigError, match="not in the strata"):
        draw_sample(strata, sizes={"sites": 3}, seed=0)


def test_confidence_interval_covers_the_true_area(strata: gpd.GeoDataFrame) -> None:
    """Sample, label from the truth, estimate: the 95 % CI must hold the true area >= 90 % of the time."""
    region = shapely.union_all(strata.geometry.to_numpy())
    true_ha = TRUTH_UTM.intersection(region).area / 1e4
    assert true_ha == pytest.approx(28.29, rel=1e-6)
    shapely.prepare(TRUTH_UTM)
    areas = dict(zip(strata["stratum"], strata["area_ha"], strict=True))
    sizes = {"site": 100, "buffer": 100, "stable": 100}
    hits = 0
    for seed in range(200):
        points = draw_sample(strata, sizes=sizes, seed=seed)
        x, y = TO_UTM.transform(points.geometry.x.to_numpy(), points.geometry.y.to_numpy())
        mined = shapely.contains_xy(TRUTH_UTM, x, y)
        labelled = pd.DataFrame({"stratum": points["stratum"], "label": np.where(mined, "mining", "not_mining")})
        est = estimate_accuracy(count_matrix(labelled), stratum_areas=areas, map_class=MAP_CLASS)
        hits += abs(est.area["mining"] - true_ha) <= est.area_ci["mining"]
    assert hits / 200 >= 0.90, hits


# --------------------------------------------------------------------------------------------
# files: the labelling form and the analyst's answers
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def sample() -> pd.DataFrame:
    return pd.DataFrame({
        "point_id": ["P0001", "P0002", "P0003", "P0004"],
        "lon": [-6.6, -6.61, -6.62, -6.63],
        "lat": [8.1, 8.11, 8.12, 8.13],
        "stratum": ["site", "site", "buffer", "stable"],
        "label": ["", "", "", ""],
    })


def _labels_file(tmp_path: Path, body: str | bytes) -> Path:
    path = tmp_path / "labels.csv"
    if isinstance(body, str):
        path.write_text(body, encoding="utf-8")
    else:
        path.write_bytes(body)
    return path


HEADER = "point_id,lon,lat,stratum,label\n"
GOOD_ROWS = [
    "P0001,-6.6,8.1,site,mining\n",
    "P0002,-6.61,8.11,site, Not_Mining \n",
    "P0003,-6.62,8.12,buffer,not_mining\n",
    "P0004,-6.63,8.13,stable,not_mining\n",
]


def test_read_labels_csv_reads_a_good_file(tmp_path: Path, sample: pd.DataFrame) -> None:
    path = _labels_file(tmp_path, "\ufeff" + HEADER + "".join(GOOD_ROWS[:2] + GOOD_ROWS[3:]))  # P0003 removed
    out = read_labels_csv(path, sample=sample)
    assert list(out.columns) == list(SAMPLE_CSV_COLUMNS)
    assert out["point_id"].tolist() == ["P0001", "P0002", "P0004"]
    assert out["label"].tolist() == ["mining", "not_mining", "not_mining"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_read_labels_csv_refuses_a_named_pipe(tmp_path: Path, sample: pd.DataFrame) -> None:
    """A named pipe blocked assess estimate until someone wrote to it."""
    fifo = tmp_path / "labels.csv"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="is not a regular file"):
        read_labels_csv(fifo, sample=sample)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("point_id,lon,lat,stratum\n" + "P0001,-6.6,8.1,site\n", r"line 1: missing column\(s\) \['label'\]"),
        (HEADER + GOOD_ROWS[0] + "P0002,-6.61,8.11,site,minig\n", r"line 3: label 'minig' of P0002; use 'mining'"),
        (HEADER + GOOD_ROWS[0] + "P0002,-6.61,8.11,site,\n" + "P0003,-6.62,8.12,buffer,\n",
         r"2 of 3 points are unlabelled \(first: P0002 at line 3\); label them .* or remove their rows"),
        (HEADER + GOOD_ROWS[0] + "P0099,-6.61,8.11,site,mining\n", r"line 3: point_id 'P0099' is not in the sample"),
        (HEADER + GOOD_ROWS[0] + GOOD_ROWS[0], r"line 3: point_id 'P0001' repeats line 2; keep one row per point"),
        (HEADER + "P0001,-6.6,8.1,stable,mining\n", r"line 2: stratum of P0001 is 'stable', the sample's is 'site'"),
        (HEADER + "P0001,-6.6,8.1,site,mining,extra\n", r"line 2 has 6 fields, the header 5"),
        (HEADER.rstrip("\n") + ",label\n" + "P0001,-6.6,8.1,site,mining,not_mining\n",
         r"line 1: column 'label' appears twice; keep one"),
        (HEADER + "P0001,-6.7,8.1,site,mining\n",  # labels of another sample with the same ids
         r"line 2: P0001 is at \(-6.7, 8.1\), the sample's point at \(-6.6000000, 8.1000000\); restore its lon/lat"),
        (HEADER + "P0001,abc,8.1,site,mining\n", r"line 2: lon/lat of P0001 \('abc', '8.1'\) are not numbers"),
        (HEADER, r"has a header but no points"),
        ("", r"is empty"),
        ((HEADER + GOOD_ROWS[0] + "P0002,-6.61,8.11,site,min\xe9\n").encode("latin-1"),
         r"line 3 is not UTF-8 \(byte 0xe9\); save the file as CSV UTF-8"),
        (b"PK\x03\x04\x14\x00\x06\x00 not a csv", r"is binary, not CSV \(NUL byte at line 1\)"),
    ],
)
def test_read_labels_csv_errors_are_one_line(
    tmp_path: Path, sample: pd.DataFrame, body: str | bytes, match: str
) -> None:
    path = _labels_file(tmp_path, body)
    with pytest.raises(ConfigError, match=match) as info:
        read_labels_csv(path, sample=sample)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_write_sample_writes_the_exact_columns(tmp_path: Path, strata: gpd.GeoDataFrame) -> None:
    points = draw_sample(strata, sizes={"site": 3, "buffer": 2, "stable": 2}, seed=1)
    chips = pd.DataFrame({"chip_before": "b.png", "chip_after": "a.png"}, index=points.index)
    paths = write_sample(points, tmp_path, chips=chips)
    lines = paths["sample.csv"].read_text(encoding="utf-8").splitlines()
    assert lines[0] == "point_id,lon,lat,stratum,label"
    assert lines[1].startswith("P0001,") and lines[1].endswith(",site,")
    assert len(lines[1].split(",")[1].split(".")[1]) == 7
    back = pd.read_csv(paths["sample.csv"], keep_default_na=False)
    assert list(back.columns) == list(SAMPLE_CSV_COLUMNS) and len(back) == 7
    assert pyogrio.list_layers(paths["sample.gpkg"])[:, 0].tolist() == ["sample"]
    layer = gpd.read_file(paths["sample.gpkg"], layer="sample")
    assert list(layer.columns) == [*SAMPLE_CSV_COLUMNS, "chip_before", "chip_after", "geometry"]
    assert layer.crs.to_epsg() == 4326
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample.csv", "sample.gpkg"]  # no temporary left
    labelled = back.assign(label="not_mining")
    labelled.to_csv(tmp_path / "labels.csv", index=False)
    assert len(read_labels_csv(tmp_path / "labels.csv", sample=points)) == 7


# --------------------------------------------------------------------------------------------
# chips
# --------------------------------------------------------------------------------------------


def _composite(path: Path, *, start: str, end: str, patch: int, descriptions: bool = True) -> Path:
    """A 40 x 50 int16 GeoTIFF like write_composites': blue, green, red, valid_count (band order on purpose)."""
    data = np.full((4, 40, 50), 800, dtype="int16")
    data[:3, 15:25, 20:30] = patch
    data[3] = 5
    data[:3, :, :3] = -32768  # nodata strip on the west edge
    with rasterio.open(
        path, "w", driver="GTiff", width=50, height=40, count=4, dtype="int16", crs="EPSG:32629",
        transform=from_origin(X0, Y0 + 400, 10, 10), nodata=-32768,
    ) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = ("blue", "green", "red", "valid_count")
        dst.update_tags(product="semiannual", start=start, end=end, aoi_id="x")
    return path


def test_write_chips_before_and_after(tmp_path: Path) -> None:
    after = _composite(tmp_path / "x_semiannual_2023-01-01_2023-06-30.tif", start="2023-01-01", end="2023-06-30",
                       patch=3000)
    before = _composite(tmp_path / "x_semiannual_2022-01-01_2022-06-30.tif", start="2022-01-01", end="2022-06-30",
                        patch=800)
    lon, lat = TO_WGS84.transform(X0 + 255, Y0 + 205)  # the middle of the patch
    far_lon, far_lat = TO_WGS84.transform(X0 + 5000, Y0 + 5000)
    points = pd.DataFrame({"point_id": ["P0001", "P0002"], "lon": [lon, far_lon], "lat": [lat, far_lat]})
    out = write_chips(points, [after, before], tmp_path / "chips", size_px=16, zoom=2)
    assert out.loc[0, "before_source"] == before.name and out.loc[0, "after_source"] == after.name
    assert out.loc[1, ["chip_before", "chip_after"]].tolist() == ["", ""]
    img_before = np.asarray(Image.open(out.loc[0, "chip_before"]))
    img_after = np.asarray(Image.open(out.loc[0, "chip_after"]))
    assert img_before.shape == img_after.shape == (32, 32, 3)
    # One stretch for the pair: the new bright patch is white after, the unchanged ground dark in both.
    assert img_after[16 - 5 : 16 + 5, 16 - 5 : 16 + 5].max() == 255
    assert img_before[:, :, 2].max() < 50  # blue: the yellow crosshair has none
    yellow = (img_after == [255, 255, 0]).all(axis=-1)
    assert yellow.any() and not yellow[16, 16]  # crosshair with an open centre
    with pytest.raises(ConfigError, match="no band description"):
        write_chips(points, [_composite(tmp_path / "bare.tif", start="2022-01-01", end="2022-06-30", patch=1,
                                        descriptions=False)], tmp_path / "c2")


def test_unanimous_strata_report_the_rule_of_three_bound() -> None:
    from pipeline.assess.runs import unanimous_strata
    from pipeline.bulletin.summary import unseen_clause

    labelled = pd.DataFrame({
        "stratum": ["site"] * 50 + ["buffer"] * 100 + ["stable"] * 60,
        "label": ["mining"] * 48 + ["not_mining"] * 2 + ["not_mining"] * 100 + ["not_mining"] * 60,
    })
    areas = {"site": 20.0, "buffer": 60.0, "stable": 1200.0}
    out = unanimous_strata(labelled, areas)
    assert set(out) == {"buffer", "stable"}  # the site stratum saw both labels
    assert out["buffer"] == {"n": 100, "label": "not_mining", "other_label": "mining", "other_label_ha_max": 1.8}
    assert out["stable"]["other_label_ha_max"] == 60.0  # 3 / 60 of 1200 ha
    clause = unseen_clause({"unanimous_strata": out})
    assert clause == (" No sampled point of buffer and stable was mining, which the interval cannot weigh: by the "
                      "rule of three, up to 1.8 ha in the buffer stratum and 60.0 ha in the stable stratum could "
                      "still be (95 % confidence).")
    assert unseen_clause({"unanimous_strata": {}}) == ""
