"""Site classifier: feature rasters, candidate features, labels, grouped training, model files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
import xarray as xr
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import KFold, cross_val_predict
from threadpoolctl import threadpool_limits

from pipeline.classify import (
    FEATURE_NAMES,
    RADAR_VARS,
    RASTER_VARS,
    ClassifierParams,
    FeatureParams,
    SiteModel,
    assign_labels,
    candidate_features,
    feature_rasters,
    feature_spec,
    grouped_folds,
    load_site_model,
    model_summary,
    radar_rasters,
    read_labels,
    train_site_model,
)
from pipeline.classify._metrics import score_predictions
from pipeline.config import RadarParams
from pipeline.errors import ConfigError, CRSMismatchError
from pipeline.radar import score_radar_change
from pipeline.sites import grid_transform
from pipeline.testing import SPECTRA, make_scene, raise_if_dask_computes

CRS = "EPSG:32629"
NY, NX, RES = 40, 57, 10.0
X0, Y0 = 500000.0, 900000.0
BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
FAST = ClassifierParams(max_iter=40, bootstrap_n=200)


# ------------------------------------------------------------------------------------------
# feature_rasters
# ------------------------------------------------------------------------------------------


def _scene(chunks: dict[str, int] | None = None) -> tuple[xr.Dataset, dt.date]:
    start = dt.date(2022, 1, 1)
    scenes, _ = make_scene((16, NY, NX), pit=np.s_[10:18, 20:31], change_index=8, start=start, step_days=40,
                           clouds=0.2, chunks=chunks, seed=3)
    return scenes, dt.date(2022, 1, 1) + dt.timedelta(days=8 * 40)


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")  # never-clear pixels: NaN medians on purpose
def test_feature_rasters_lazy_and_equal_to_numpy() -> None:
    eager_in, start = _scene()
    lazy_in, _ = _scene(chunks={"time": 4, "y": 20, "x": 19})
    with raise_if_dask_computes():
        lazy = feature_rasters(lazy_in, start=start, baseline_days=365, params=FeatureParams())
    assert all(lazy[v].chunks is not None for v in RASTER_VARS)
    eager = feature_rasters(eager_in, start=start, baseline_days=365, params=FeatureParams())
    assert list(eager.data_vars) == list(RASTER_VARS)
    assert all(eager[v].dims == ("y", "x") and eager[v].dtype == np.float32 for v in RASTER_VARS)
    xr.testing.assert_allclose(eager, lazy.compute())
    # The pit turned to gravel: NDVI fell, and it is bare in (nearly) every clear observation.
    assert float(eager["ndvi_diff"][14, 25]) < -0.5 and float(eager["bare_frac"][14, 25]) == 1.0
    assert float(eager["bare_frac"][2, 2]) == 0.0


def _pixels(series: list[list[str]], times: pd.DatetimeIndex, invalid: set[tuple[int, int]]) -> xr.Dataset:
    """A (time, 1, n) cube: ``series[pixel][t]`` names a class of :data:`SPECTRA`."""
    nt, n = len(times), len(series)
    data = np.array([[SPECTRA[series[p][t]] for p in range(n)] for t in range(nt)], "float32")  # (t, p, band)
    valid = np.ones((nt, 1, n), bool)
    for t, p in invalid:
        valid[t, 0, p] = False
    coords = {"time": times, "y": [Y0 - 5], "x": X0 + RES * (np.arange(n) + 0.5)}
    ds = xr.Dataset({b: (("time", "y", "x"), np.where(valid, data[:, None, :, k], np.nan)) for k, b in
                     enumerate(BANDS)}, coords=coords)
    ds["valid"] = (("time", "y", "x"), valid)
    return ds


def test_feature_rasters_hand_example() -> None:
    times = pd.date_range("2022-01-01", periods=8, freq="45D")
    start = times[4].date()
    veg, gravel, water = "vegetation", "gravel", "water"
    ds = _pixels([[veg] * 8, [veg] * 4 + [gravel] * 4, [water] * 8], times, invalid={(5, 1)})
    ds = ds.assign_coords(spatial_ref=xr.DataArray(0, attrs={"crs_wkt": pyproj.CRS(CRS).to_wkt()}))
    out = feature_rasters(ds, start=start, baseline_days=365, params=FeatureParams())
    assert "spatial_ref" in out.coords  # the CRS travels with the rasters
    out = out.isel(y=0)
    kept, pit, river = (out.isel(x=i) for i in range(3))
    assert float(pit["ndvi_diff"]) < -0.5 and float(kept["ndvi_diff"]) == 0.0
    assert float(pit["bare_frac"]) == 1.0 and float(pit["bare_major"]) == 1.0
    assert float(pit["water_frac"]) == 0.0 and float(pit["regreen_frac"]) == 0.0
    assert float(pit["n_clear"]) == 3 and float(kept["n_clear"]) == 4 and float(pit["n_clear_base"]) == 4
    assert float(kept["regreen_frac"]) == 1.0 and float(kept["bare_frac"]) == 0.0
    assert float(river["water_frac"]) == 1.0 and float(river["permanent_water"]) == 1.0
    assert float(pit["permanent_water"]) == 0.0 and float(river["base_water_frac"]) == 1.0
    g, r = SPECTRA[water][1], SPECTRA[water][2]
    assert float(river["water_red_green"]) == pytest.approx(r / g, rel=1e-5)
    assert float(river["water_red"]) == pytest.approx(r, rel=1e-5)
    assert np.isnan(float(pit["water_red_green"]))
    s1, s2 = SPECTRA[gravel][4], SPECTRA[gravel][5]
    assert float(pit["ndti_recent"]) == pytest.approx((s1 - s2) / (s1 + s2), rel=1e-5)


def _ndvi(name: str) -> float:
    red, nir = SPECTRA[name][2], SPECTRA[name][3]
    return (nir - red) / (nir + red)


def test_post_change_state_and_the_recent_window_of_a_cloudy_end() -> None:
    """Post-change medians describe the ground once changed (a pit later re-vegetated keeps its
    gravel there, while its recent state is green again); a pixel clouded over for the whole
    calendar recent window takes its last clear observations instead of NaN."""
    times = pd.date_range("2022-01-01", periods=12, freq="30D")
    start = times[4].date()
    veg, gravel = "vegetation", "gravel"
    regrown = [veg] * 5 + [gravel] * 4 + [veg] * 3
    clouded = [veg] * 5 + [gravel] * 7
    ds = _pixels([regrown, [veg] * 12, clouded], times, invalid={(9, 2), (10, 2), (11, 2)})
    change_day = xr.DataArray(np.array([[times[5], np.datetime64("NaT"), times[5]]]), dims=("y", "x"),
                              coords={"y": ds["y"], "x": ds["x"]})
    days = ((change_day - np.datetime64("1970-01-01")) / np.timedelta64(1, "D")).astype("float64")
    params = FeatureParams(recent_min_obs=2, post_obs=3)
    out = feature_rasters(ds, start=start, baseline_days=365, params=params, change_day=days).isel(y=0)
    pit, kept, cloudy = (out.isel(x=i) for i in range(3))
    assert float(pit["ndvi_post"]) == pytest.approx(_ndvi(gravel), abs=1e-5)
    assert float(pit["ndvi_recent"]) == pytest.approx(_ndvi(veg), abs=1e-5)
    assert float(pit["ndvi_post_diff"]) == pytest.approx(_ndvi(gravel) - _ndvi(veg), abs=1e-5)
    assert float(pit["n_clear_post"]) == 7 and float(cloudy["n_clear_post"]) == 4
    assert np.isnan(float(kept["ndvi_post"])) and np.isnan(float(kept["n_clear_post"]))
    # The last 90 days of the cloudy pixel are all cloud: its last 2 clear views are its recent state.
    assert float(cloudy["ndvi_recent"]) == pytest.approx(_ndvi(gravel), abs=1e-5)
    no_change = feature_rasters(ds, start=start, baseline_days=365, params=params)
    assert bool(no_change["ndvi_post"].isnull().all()) and bool(no_change["n_clear_post"].isnull().all())


def test_candidates_without_optical_views_of_their_change_are_left_to_the_rules() -> None:
    """A model that calls everything 0.1: candidates it saw (3+ optical views since the change)
    are dropped; one confirmed by radar under cloud (0 views) is decided by the rules (kept at
    0.5 ha, with its heuristic confidence), as is a sub-MMU one (dropped)."""
    from types import SimpleNamespace

    from pipeline.config import load_config
    from pipeline.workflow import AOICandidates, classify_candidates

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "demo.yaml")
    geoms = [_box(0, 5, 0, 10), _box(10, 15, 0, 10), _box(20, 22, 0, 5)]  # 0.5, 0.5 and 0.1 ha
    sites = gpd.GeoDataFrame({"area_ha": [0.5, 0.5, 0.1], "confidence": [0.7, 0.66, 0.9]}, geometry=geoms, crs=CRS)
    features = pd.DataFrame(np.zeros((3, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    features["n_clear_post_mean"] = [6.0, 0.0, np.nan]
    model = SimpleNamespace(predict_proba=lambda f: np.full(len(f), 0.1))
    transform = grid_transform(_rasters()["ndvi_base"])
    mask = np.ones((NY, NX), bool)
    kept, kept_mask = classify_candidates(
        AOICandidates(sites=sites, site_mask=mask, change=xr.Dataset(), features=features), model, cfg,  # type: ignore[arg-type]
        grid=SimpleNamespace(transform=transform),  # type: ignore[arg-type]
    )
    assert kept["confidence"].tolist() == [0.66]
    assert kept_mask.sum() == 50


# ------------------------------------------------------------------------------------------
# candidate_features
# ------------------------------------------------------------------------------------------


def _rasters() -> xr.Dataset:
    coords = {"y": Y0 - RES * (np.arange(NY) + 0.5), "x": X0 + RES * (np.arange(NX) + 0.5)}
    return xr.Dataset({v: (("y", "x"), np.zeros((NY, NX), "float32")) for v in RASTER_VARS}, coords=coords)


def _box(r0: int, r1: int, c0: int, c1: int) -> shapely.Polygon:
    """Polygon covering pixel rows r0..r1-1 and columns c0..c1-1."""
    return shapely.box(X0 + c0 * RES, Y0 - r1 * RES, X0 + c1 * RES, Y0 - r0 * RES)


def test_candidate_features_shape_ring_subpixel() -> None:
    rasters = _rasters()
    ndvi = rasters["ndvi_recent"].values
    ndvi[5:10, 10:20] = 5.0  # candidate a
    ndvi[5:10, 21:24] = 1.0  # candidate b, inside a's ring: must not count as a's surroundings
    ndvi[5:10, 6] = 100.0  # 4 pixels (40 m) left of a: outside its 30 m ring
    rasters["bsi_recent"].values[30, 40] = 7.0
    rasters["permanent_water"].values[:, 50] = 1.0
    tiny = shapely.box(X0 + 406, Y0 - 304, X0 + 408, Y0 - 302)  # covers no pixel centre; centroid in (30, 40)
    cands = gpd.GeoDataFrame({"n_obs": [5, 3, 1]}, geometry=[_box(5, 10, 10, 20), _box(5, 10, 21, 24), tiny],
                             crs=CRS, index=["a", "b", "c"])
    out = candidate_features(rasters, cands, ring_m=30.0)
    assert list(out.columns) == list(FEATURE_NAMES) and list(out.index) == ["a", "b", "c"]
    a = out.loc["a"]
    assert a["area_ha"] == pytest.approx(0.5) and a["perimeter_m"] == pytest.approx(300.0)
    assert a["compactness"] == pytest.approx(4 * np.pi * 5000 / 300**2)
    assert a["elongation"] == pytest.approx(2.0) and a["n_parts"] == 1 and a["n_pixels"] == 50
    assert a["ndvi_recent_mean"] == 5.0 and a["ndvi_recent_std"] == 0.0
    assert a["ndvi_recent_ring"] == 0.0 and a["ndvi_recent_contrast"] == 5.0
    assert out.loc["b", "ndvi_recent_ring"] == 0.0  # a's pixels are not b's ring either
    assert out.loc["c", "n_pixels"] == 1 and out.loc["c", "bsi_recent_mean"] == 7.0
    assert a["dist_permanent_water_m"] == pytest.approx((50 - 19) * RES)
    assert a["site_n_obs"] == 5 and np.isnan(a["site_persistence"])
    assert out[[f"radar_{v}_mean" for v in RADAR_VARS]].isna().all().all()


def test_candidate_features_refuses_other_crs() -> None:
    wkt = pyproj.CRS("EPSG:32630").to_wkt()
    rasters = _rasters().assign_coords(spatial_ref=xr.DataArray(0, attrs={"crs_wkt": wkt}))
    cands = gpd.GeoDataFrame(geometry=[_box(5, 10, 10, 20)], crs=CRS)
    with pytest.raises(CRSMismatchError, match="EPSG:32630"):
        candidate_features(rasters, cands, ring_m=30.0)
    with pytest.raises(CRSMismatchError, match="not projected"):
        candidate_features(_rasters(), cands.to_crs("EPSG:4326"), ring_m=30.0)


def test_candidate_features_radar_and_mosaic() -> None:
    rasters = _rasters()
    rasters["water_major"].values[5:10, 10:15] = 1.0
    rasters["bare_major"].values[5:10, 15:20] = 1.0
    radar = xr.Dataset({v: (("y", "x"), np.full((NY, NX), 2.0, "float32")) for v in RADAR_VARS},
                       coords=rasters.coords)
    cands = gpd.GeoDataFrame(geometry=[_box(5, 10, 10, 20)], crs=CRS)
    out = candidate_features(rasters, cands, ring_m=30.0, radar=radar)
    assert out.loc[0, "mosaic_water_bare"] == 1.0 and out.loc[0, "radar_vh_drop_db_mean"] == 2.0
    assert np.isnan(out.loc[0, "dist_permanent_water_m"])


def test_radar_rasters_from_radar_scores() -> None:
    times = pd.date_range("2022-01-01", periods=8, freq="60D")
    vh = np.full((8, NY, NX), -15.0, "float32")
    vh[6:, 5:10, 10:20] = -22.0  # the pit goes dark in VH after the start
    s1 = xr.Dataset({"vh": (("time", "y", "x"), vh), "vv": (("time", "y", "x"), vh + 6)},
                    coords={"time": times, **_rasters().coords}).chunk({"y": 20})
    s1["valid"] = s1["vh"].notnull()
    scored = score_radar_change(s1, monitoring_start=dt.date(2022, 10, 1), params=RadarParams(baseline_min_obs=3))
    with raise_if_dask_computes():
        radar = radar_rasters(scored)
    cands = gpd.GeoDataFrame(geometry=[_box(5, 10, 10, 20), _box(20, 25, 10, 20)], crs=CRS)
    out = candidate_features(_rasters(), cands, ring_m=30.0, radar=radar.compute())
    assert out["radar_evidence_frac_mean"].tolist() == pytest.approx([2 / 3, 0.0])  # 2 of 3 monitoring dates
    assert out.loc[0, "radar_baseline_vh_db_mean"] == pytest.approx(-15.0)


# ------------------------------------------------------------------------------------------
# labels
# ------------------------------------------------------------------------------------------


def _feature(label: Any = "mining", coords: Any = None, **props: Any) -> dict[str, Any]:
    ring = coords or [[-7.0, 8.0], [-6.99, 8.0], [-6.99, 8.01], [-7.0, 8.01], [-7.0, 8.0]]
    properties = {"label": label, **props} if label is not None else props
    return {"type": "Feature", "properties": properties, "geometry": {"type": "Polygon", "coordinates": [ring]}}


def _write(path: Path, doc: Any) -> Path:
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def test_read_labels_good(tmp_path: Path) -> None:
    bowtie = [[-7.0, 8.0], [-6.99, 8.01], [-6.99, 8.0], [-7.0, 8.01], [-7.0, 8.0]]
    doc = {"type": "FeatureCollection", "features": [
        _feature(), _feature("not_mining", **{"class": "river", "id": "r1"}), _feature(coords=bowtie)]}
    labels = read_labels(_write(tmp_path / "labels.geojson", doc))
    assert labels.crs.to_epsg() == 4326
    assert labels["label_id"].tolist() == ["0", "r1", "2"] and labels["y"].tolist() == [1, 0, 1]
    assert labels["class"].isna().tolist() == [True, False, True] and labels["class"][1] == "river"
    geoms = labels.geometry.to_numpy()
    assert shapely.is_valid(geoms).all() and (shapely.area(geoms) > 0).all()
    assert geoms[2].geom_type == "MultiPolygon"  # the bow-tie, repaired into its two triangles


@pytest.mark.parametrize(
    ("doc", "expect"),
    [
        ({"type": "FeatureCollection", "features": [_feature(), _feature("maybe")]}, ["feature 1", "'label'"]),
        ({"type": "FeatureCollection", "features": [_feature(None)]}, ["feature 0", "'label' missing"]),
        ({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32629"}},
          "features": [_feature()]}, ["'crs'", "EPSG:4326"]),
        ({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"label": "mining"}, "geometry": {"type": "Point", "coordinates": [0, 0]}}
        ]}, ["feature 0", "'geometry'", "Point"]),
        ('{"type": "FeatureCollection", "features": [', ["invalid JSON", "line 1"]),
        ({"type": "FeatureCollection", "features": [_feature(id="a"), _feature(id="a")]}, ["feature 1", "'id'"]),
    ],
    ids=["bad-label", "missing-label", "foreign-crs", "point", "invalid-json", "duplicate-id"],
)
def test_read_labels_errors_are_one_line(tmp_path: Path, doc: Any, expect: list[str]) -> None:
    path = _write(tmp_path / "bad.geojson", doc)
    with pytest.raises(ConfigError) as err:
        read_labels(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    assert all(e in msg for e in expect), msg


def test_assign_labels_max_overlap_and_missed() -> None:
    utm = gpd.GeoDataFrame(
        {"label_id": ["m1", "n1", "m2", "n2"], "label": ["mining", "not_mining", "mining", "not_mining"],
         "class": [None, "farm", None, "river"], "y": [1, 0, 1, 0]},
        geometry=[_box(0, 10, 0, 13), _box(0, 10, 13, 30), _box(20, 30, 40, 50), _box(30, 40, 0, 10)], crs=CRS)
    labels = utm.to_crs("EPSG:4326")  # as read_labels returns them
    cands = gpd.GeoDataFrame(geometry=[_box(2, 8, 10, 20), _box(2, 8, 0, 5), _box(15, 18, 0, 5)], crs=CRS,
                             index=[10, 11, 12])
    out = assign_labels(cands, labels)
    # Candidate 10 covers columns 10-19: 3 columns of m1, 7 of n1 -> n1.
    assert out.y.tolist() == [0, 1, pd.NA] and out.group.tolist() == ["n1", "m1", None]
    assert list(out.unlabelled) == [12] and out.labelled.tolist() == [True, True, False]
    assert out.missed["label_id"].tolist() == ["m2", "n2"]
    summary = out.summary()
    assert summary["n_missed_mining"] == 1 and summary["n_rejected_not_mining"] == 1
    assert summary["n_labelled"] == 2 and summary["n_unlabelled"] == 1 and summary["n_groups"] == 2


# ------------------------------------------------------------------------------------------
# training, metrics, model files
# ------------------------------------------------------------------------------------------


def _table(n_groups: int = 40, *, signal: float = 2.0, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Features with a learnable signal in a few columns; candidates of a group share an offset."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 9, n_groups)
    groups = np.repeat([f"g{k}" for k in range(n_groups)], sizes)
    y_group = np.arange(n_groups) % 2
    y = np.repeat(y_group, sizes)
    X = rng.normal(size=(len(y), len(FEATURE_NAMES)))
    X += np.repeat(rng.normal(scale=0.5, size=(n_groups, len(FEATURE_NAMES))), sizes, axis=0)
    for name in ("ndvi_diff_mean", "bare_frac_mean", "water_frac_contrast"):
        X[:, FEATURE_NAMES.index(name)] += signal * y
    X[rng.random(X.shape) < 0.05] = np.nan  # missing features are part of life (radar, never clear)
    return pd.DataFrame(X, columns=list(FEATURE_NAMES)), y, groups


@pytest.fixture(scope="module")
def trained() -> tuple[SiteModel, pd.DataFrame]:
    X, y, g = _table()
    model = train_site_model(X, y, g, params=FAST, spec=feature_spec(FeatureParams()), training_summary={"n": 1})
    return model, X


def test_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = np.round(np.clip(0.3 * y + rng.random(200) * 0.7, 0, 1), 1)  # ties on purpose
    got = score_predictions(y, p, threshold=0.5)
    pred = p >= 0.5
    expected = {"precision": precision_score(y, pred), "recall": recall_score(y, pred), "f1": f1_score(y, pred),
                "roc_auc": roc_auc_score(y, p), "average_precision": average_precision_score(y, p),
                "brier": brier_score_loss(y, p)}
    assert got == pytest.approx(expected)


def test_grouped_folds_never_split_a_group() -> None:
    _, y, g = _table(35)
    folds = grouped_folds(y, g, 5, 0)
    assert len(folds) == 5
    assert all(not set(g[tr]) & set(g[te]) for tr, te in folds)
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(len(y)))


def test_train_grouped_cv_learns_signal(trained: tuple[SiteModel, pd.DataFrame]) -> None:
    model, X = trained
    auc = model.cv_metrics["metrics"]["roc_auc"]
    assert auc["value"] > 0.9 and auc["ci95"][0] <= auc["value"] <= auc["ci95"][1]
    assert model.cv_metrics["n_groups"] == 40 and model.cv_metrics["n_folds"] == 5
    assert set(model.cv_metrics["metrics"]) == {"precision", "recall", "f1", "roc_auc", "average_precision", "brier"}
    p = model.predict_proba(X)
    assert p.shape == (len(X),) and ((p >= 0) & (p <= 1)).all()


def test_grouped_cv_is_not_fooled_by_leaky_groups() -> None:
    """Labels are noise per label polygon; candidates of one polygon share their features."""
    rng = np.random.default_rng(7)
    n_groups, size = 60, 5
    groups = np.repeat([f"g{k}" for k in range(n_groups)], size)
    y = np.repeat(rng.permutation(np.arange(n_groups) % 2), size)
    X = np.repeat(rng.normal(size=(n_groups, len(FEATURE_NAMES))), size, axis=0)
    X += rng.normal(scale=0.01, size=X.shape)
    table = pd.DataFrame(X, columns=list(FEATURE_NAMES))
    params = ClassifierParams(max_iter=40, bootstrap_n=100, min_samples_leaf=3)
    model = train_site_model(table, y, groups, params=params, spec=feature_spec(FeatureParams()), training_summary={})
    grouped_auc = model.cv_metrics["metrics"]["roc_auc"]["value"]
    assert 0.3 < grouped_auc < 0.7
    trees = HistGradientBoostingClassifier(max_iter=40, min_samples_leaf=3, random_state=0)
    with threadpool_limits(1, user_api="openmp"):  # OpenMP on two busy cores is slower than one thread
        naive = cross_val_predict(trees, X, y, cv=KFold(5, shuffle=True, random_state=0), method="predict_proba")[:, 1]
    assert roc_auc_score(y, naive) > grouped_auc + 0.2  # a random split leaks the polygons into the test folds


def test_too_few_polygons_is_one_line() -> None:
    X, y, g = _table(40)
    keep = np.isin(g, ["g0", "g1", "g2", "g3", "g5"])  # odd groups are mining: only g0 and g2 are not
    with pytest.raises(ConfigError, match=r"not_mining in 2 label polygons") as err:
        train_site_model(X[keep], y[keep], g[keep], params=FAST, spec=feature_spec(FeatureParams()),
                         training_summary={})
    assert "\n" not in str(err.value)


def test_save_load_round_trip(trained: tuple[SiteModel, pd.DataFrame], tmp_path: Path) -> None:
    model, X = trained
    out = model.save(tmp_path / "model")
    assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "model.skops", "model_card.json"]
    loaded = load_site_model(out, spec=feature_spec(FeatureParams()))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "not proof" in card and "roc_auc" in card and loaded.model_sha256 in card
    summary = model_summary(loaded)
    assert summary["name"] == "model" and len(summary["digest"]) == 12 and summary["n_training_groups"] == 40
    model.save(out)  # replacing a model folder is allowed ...
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "x.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a model folder"):  # ... clobbering anything else is not
        model.save(tmp_path / "notes")


def test_load_refuses_tampered_file(trained: tuple[SiteModel, pd.DataFrame], tmp_path: Path) -> None:
    out = trained[0].save(tmp_path / "model")
    blob = bytearray((out / "model.skops").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (out / "model.skops").write_bytes(bytes(blob))
    with pytest.raises(ConfigError, match="altered or corrupted") as err:
        load_site_model(out)
    assert "\n" not in str(err.value)


def test_load_refuses_other_feature_spec(trained: tuple[SiteModel, pd.DataFrame], tmp_path: Path) -> None:
    out = trained[0].save(tmp_path / "model")
    with pytest.raises(ConfigError) as err:
        load_site_model(out, spec=feature_spec(FeatureParams(ring_m=40.0)))
    msg = str(err.value)
    assert "\n" not in msg and f"model {out} " in msg and "'ring_m': 30.0" in msg and "'ring_m': 40.0" in msg
    assert "python -m pipeline train" in msg


class _Foreign(BaseEstimator):  # type: ignore[misc]
    """Not a scikit-learn or NumPy type: a model file holding it must not load."""


def test_load_refuses_foreign_types(trained: tuple[SiteModel, pd.DataFrame], tmp_path: Path) -> None:
    model = trained[0]
    bad = SiteModel(**{**model.__dict__, "estimator": CalibratedClassifierCV(_Foreign()), "model_dir": None})
    out = bad.save(tmp_path / "model")
    with pytest.raises(ConfigError, match="refusing to load") as err:
        load_site_model(out)
    assert "_Foreign" in str(err.value) and "\n" not in str(err.value)


def test_predict_proba_missing_column_is_one_line(trained: tuple[SiteModel, pd.DataFrame]) -> None:
    model, X = trained
    with pytest.raises(ConfigError, match="missing \\[area_ha\\]") as err:
        model.predict_proba(X.drop(columns=["area_ha"]))
    assert "\n" not in str(err.value)
    shuffled = X[list(reversed(X.columns))]  # order is taken by name
    np.testing.assert_array_equal(model.predict_proba(shuffled), model.predict_proba(X))
