"""Polygonising, tracking and area series."""

from __future__ import annotations

import datetime as dt

import numpy as np
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline import sites
from pipeline.config import SitesParams

RES = 10.0


def _grid(mask: np.ndarray, first_days: float = 19400.0) -> tuple[xr.DataArray, xr.Dataset]:
    ny, nx = mask.shape
    coords = {"y": 900000 - RES * (np.arange(ny) + 0.5), "x": 500000 + RES * (np.arange(nx) + 0.5)}
    flags = xr.DataArray(mask, dims=("y", "x"), coords=coords)
    first = np.where(mask, first_days, np.nan)
    change = xr.Dataset(
        {
            "first_change": (("y", "x"), first),
            "last_evidence": (("y", "x"), np.where(mask, first_days + 100, np.nan)),
            "n_obs": (("y", "x"), np.where(mask, 8, 0).astype("int16")),
            "n_clear_after": (("y", "x"), np.where(mask, 10, 0).astype("int16")),
        },
        coords=coords,
    )
    return flags, change


LOOSE = SitesParams(min_area_m2=0, merge_distance_m=0)


def _poly(mask: np.ndarray, params: SitesParams = LOOSE):  # type: ignore[no-untyped-def]
    flags, change = _grid(mask)
    return sites.polygonise_flags(flags, change, aoi_id="t", aoi_mask=None, crs="EPSG:32629",
                                  last_period_start=dt.date(2024, 1, 1), min_confirmations=3, params=params)


@settings(max_examples=30, deadline=None)
@given(mask=hnp.arrays(bool, st.tuples(st.integers(2, 12), st.integers(2, 15))))
def test_polygon_area_equals_flagged_pixels(mask: np.ndarray) -> None:
    gdf, site_mask = _poly(mask)
    assert site_mask.sum() == mask.sum()
    np.testing.assert_allclose(gdf.area.sum(), mask.sum() * RES * RES)
    np.testing.assert_allclose(gdf["area_ha"].sum(), mask.sum() * RES * RES / 1e4, atol=1e-3)


@settings(max_examples=25, deadline=None)
@given(mask=hnp.arrays(bool, st.tuples(st.integers(2, 20), st.integers(2, 24))), seed=st.integers(0, 2**16))
def test_site_attributes_in_the_bounding_box_equal_those_over_the_whole_grid(mask: np.ndarray, seed: int) -> None:
    # Each site is summarised inside its bounding box; the whole grid as the box is the reference.
    rng = np.random.default_rng(seed)
    flags, change = _grid(mask)
    first = np.where(mask & (rng.random(mask.shape) < 0.9), 19000 + rng.integers(0, 900, mask.shape), np.nan)
    change["first_change"] = (("y", "x"), first)  # ties and missing days: the seed pixel's rule matters
    change["n_obs"] = (("y", "x"), rng.integers(0, 12, mask.shape).astype("int16"))
    change["n_occluded"] = (("y", "x"), rng.integers(0, 5, mask.shape).astype("int16"))
    labels = sites._group_pixels(mask, merge_px=0)
    pixels = sites._SitePixels(change, transform=sites.grid_transform(flags), last_period_start=dt.date(2022, 6, 1))
    whole = (slice(0, mask.shape[0]), slice(0, mask.shape[1]))
    for lab, box in enumerate(sites.ndimage.find_objects(labels), start=1):
        if box is None or not np.isfinite(first[labels == lab]).any():
            continue
        kw = {"aoi_id": "t", "crs": "EPSG:32629", "min_confirmations": 3, "params": LOOSE}
        assert pixels.attributes(box, labels[box] == lab, **kw) == pixels.attributes(whole, labels == lab, **kw)


def test_minimum_mapping_unit_and_merge() -> None:
    mask = np.zeros((30, 40), bool)
    mask[2:8, 2:8] = True  # 36 px = 0.36 ha
    mask[2:8, 9:12] = True  # 1 px gap: merged with the first at 20 m
    mask[20:22, 30:32] = True  # 4 px: below 0.25 ha
    gdf, _ = _poly(mask, SitesParams(min_area_m2=2500, merge_distance_m=20))
    assert len(gdf) == 1
    assert gdf["area_ha"].iloc[0] == 0.54


def test_no_flags_no_sites() -> None:
    gdf, site_mask = _poly(np.zeros((5, 7), bool))
    assert gdf.empty and not site_mask.any()


def test_site_ids_are_stable_and_tracked() -> None:
    mask = np.zeros((20, 30), bool)
    mask[5:10, 5:12] = True
    a, _ = _poly(mask)
    mask[5:12, 5:15] = True  # the site grew
    b, _ = _poly(mask)
    assert list(a["site_id"]) == list(b["site_id"])
    renamed = b.assign(site_id=["other"])
    tracked = sites.track_sites(renamed, a)
    assert list(tracked["site_id"]) == list(a["site_id"])



def test_a_site_reported_before_keeps_its_first_seen_and_is_not_new_again() -> None:
    """An outside reviewer: a run over a later period, whose baseline already held the pits an
    earlier bulletin reported, re-detected them at its first view, called them "new" and gave a
    later first_seen. The earlier run's date and status carry over."""
    mask = np.zeros((20, 30), bool)
    mask[5:10, 5:12] = True
    earlier, _ = _poly(mask)
    again = earlier.assign(site_id=["renamed"], first_seen="2023-10-03", status="new", undated=True)
    before = earlier.assign(first_seen="2023-08-04", undated=False)
    tracked = sites.track_sites(again, before, last_period_start=dt.date(2023, 10, 1))
    assert tracked["site_id"].tolist() == before["site_id"].tolist()
    assert tracked["first_seen"].tolist() == ["2023-08-04"] and tracked["status"].tolist() == ["active"]
    assert tracked["undated"].tolist() == [False]  # dated as the earlier run dated it
    # a later first_seen in the earlier run changes nothing; nor does a date inside this period
    assert sites.track_sites(again, before.assign(first_seen="2023-11-01"),
                             last_period_start=dt.date(2023, 10, 1))["first_seen"].tolist() == ["2023-10-03"]
    inside = sites.track_sites(again.assign(first_seen="2023-10-20"), before.assign(first_seen="2023-10-05"),
                               last_period_start=dt.date(2023, 10, 1))
    assert inside["first_seen"].tolist() == ["2023-10-05"] and inside["status"].tolist() == ["new"]


def test_activity_series() -> None:
    mask = np.zeros((4, 5), bool)
    mask[0, :2] = True
    first = np.where(mask, np.array([[19360.0, 19450.0, 0, 0, 0]] * 4), np.nan)
    periods = [(dt.date(2023, 1, 1), dt.date(2023, 3, 31)), (dt.date(2023, 4, 1), dt.date(2023, 6, 30))]
    valid = np.ones((2, 4, 5), dtype="int16")
    valid[1, :2] = 0
    act = sites.activity_series(mask, first, valid, aoi_mask=np.ones((4, 5), bool), periods=periods,
                                pixel_area_m2=100.0, aoi_id="t")
    assert act["new_ha"].tolist() == [0.01, 0.01]
    assert act["disturbed_ha"].tolist() == [0.01, 0.02]
    assert act["valid_fraction"].tolist() == [1.0, 0.5]


def test_isolated_low_confidence_speckle_is_dropped() -> None:
    mask = np.zeros((60, 80), bool)
    mask[5:11, 5:11] = True  # 0.36 ha (< 2 x MMU), far from anything
    flags, change = _grid(mask)
    change["n_obs"] = change["n_obs"].where(~mask, 2)  # weak: 2 of 10 clear observations
    params = SitesParams(min_area_m2=2500, isolation_distance_m=250, isolated_min_confidence=0.5)
    gdf, site_mask = sites.polygonise_flags(flags, change, aoi_id="t", aoi_mask=None, crs="EPSG:32629",
                                            last_period_start=dt.date(2024, 1, 1), min_confirmations=3, params=params)
    assert gdf.empty and not site_mask.any()
    strong, _ = _poly(mask, params)  # 8 of 10: confidence high enough to stand alone
    assert len(strong) == 1


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 30))
def test_isolation_rule_equals_measuring_every_pair(seed: int, n: int) -> None:
    # Square sites on a 10 m grid: many neighbours at exactly the isolation distance.
    import geopandas as gpd
    import shapely.geometry

    rng = np.random.default_rng(seed)
    xy = rng.integers(0, 40, (n, 2)) * 10.0
    side = rng.integers(1, 8, n) * 10.0
    geoms = [shapely.geometry.box(x, y, x + s, y + s) for (x, y), s in zip(xy, side, strict=True)]
    gdf = gpd.GeoDataFrame({"area_ha": side**2 / 1e4, "confidence": rng.random(n)}, geometry=geoms, crs="EPSG:32629")
    params = SitesParams(min_area_m2=1000, isolation_distance_m=50, isolated_min_confidence=0.5)
    expect = [not (a * 1e4 < 2 * params.min_area_m2 and c < params.isolated_min_confidence)
              or any(j != i and g.distance(o) <= params.isolation_distance_m for j, o in enumerate(geoms))
              for i, (a, c, g) in enumerate(zip(gdf["area_ha"], gdf["confidence"], geoms, strict=True))]
    assert sites.isolation_keep(gdf, params).tolist() == expect


def _change_for_growth(seed: np.ndarray, **layers: np.ndarray) -> tuple[xr.DataArray, xr.Dataset]:
    flags, change = _grid(seed)
    shape = seed.shape
    defaults = {
        "confirmed": seed.copy(),
        "regrown": np.zeros(shape, bool),
        "open_run": np.where(seed, 6, 0).astype("int16"),
        "open_run_start": np.where(seed, 19400.0, np.nan),
    }
    for name, value in {**defaults, **layers}.items():
        change[name] = (("y", "x"), value)
    return flags, change


def test_growth_adds_the_connected_rim_with_an_open_evidence_run() -> None:
    seed = np.zeros((7, 9), bool)
    seed[2:5, 2:5] = True
    rim = np.zeros_like(seed)
    rim[1:6, 1:6] = True
    rim &= ~seed
    far = np.zeros_like(seed)
    far[3, 8] = True  # weak evidence, not touching the site
    open_run = np.where(seed, 6, np.where(rim | far, 2, 0)).astype("int16")
    start = np.where(seed, 19400.0, np.where(rim | far, 19500.0, np.nan))
    flags, change = _change_for_growth(seed, open_run=open_run, open_run_start=start)
    grown, out = sites.grow_sites(flags, change, min_obs=2, min_persistence_frac=0.6)
    assert grown.values.sum() == 25 and not grown.values[3, 8]
    assert np.all(out["first_change"].values[rim] == 19500.0)
    assert np.all(out["first_change"].values[seed] == 19400.0)  # confirmed pixels keep their date
    assert np.all(out["n_obs"].values[rim] == 2) and np.all(out["n_clear_after"].values[rim] == 2)
    # One evidence date is not enough; 0 turns growth off.
    assert sites.grow_sites(flags, change, min_obs=3, min_persistence_frac=0.6)[0].values.sum() == 9
    assert sites.grow_sites(flags, change, min_obs=0, min_persistence_frac=0.6)[0].values.sum() == 9


def test_growth_skips_regreened_and_faded_ground() -> None:
    seed = np.zeros((5, 8), bool)
    seed[1:4, 1:4] = True
    field = np.zeros_like(seed)
    field[1:4, 4:7] = True  # confirmed once next to the pit, evidence since faded
    n_obs = np.where(seed, 8, np.where(field, 3, 0)).astype("int16")
    n_clear = np.where(seed | field, 10, 0).astype("int16")
    flags, change = _change_for_growth(seed, confirmed=seed | field)
    change["n_obs"] = (("y", "x"), n_obs)
    change["n_clear_after"] = (("y", "x"), n_clear)
    assert sites.grow_sites(flags, change, min_obs=2, min_persistence_frac=0.6)[0].values.sum() == 9
    # The same ground still showing evidence joins, unless it re-greened.
    change["open_run"] = (("y", "x"), np.where(seed | field, 4, 0).astype("int16"))
    assert sites.grow_sites(flags, change, min_obs=2, min_persistence_frac=0.6)[0].values.sum() == 18
    change["regrown"] = (("y", "x"), field)
    assert sites.grow_sites(flags, change, min_obs=2, min_persistence_frac=0.6)[0].values.sum() == 9


def test_growth_takes_the_weakly_persistent_rim_at_the_weak_threshold_only() -> None:
    """An abandoned pit's last-dug rim: confirmed, not re-greened, evidence in 4 of its 10 clear
    views (grass came back soon after it was dug). It joins at the weak threshold (0.3), not at
    the strong one (0.6); ground with evidence in 2 of 10 views stays out."""
    seed = np.zeros((5, 9), bool)
    seed[1:4, 1:4] = True
    rim = np.zeros_like(seed)
    rim[1:4, 4] = True
    faint = np.zeros_like(seed)
    faint[1:4, 5] = True
    flags, change = _change_for_growth(seed, confirmed=seed | rim | faint, open_run=np.zeros(seed.shape, "int16"))
    change["n_obs"] = (("y", "x"), np.where(seed, 8, np.where(rim, 4, np.where(faint, 2, 0))).astype("int16"))
    change["n_clear_after"] = (("y", "x"), np.where(seed | rim | faint, 10, 0).astype("int16"))
    assert sites.grow_sites(flags, change, min_obs=2, min_persistence_frac=0.6)[0].values.sum() == 9
    grown = sites.grow_sites(flags, change, min_obs=2, min_persistence_frac=0.3)[0].values
    np.testing.assert_array_equal(grown, seed | rim)


def test_a_site_confirmed_at_the_end_of_the_record_is_provisional() -> None:
    # Two pits: one followed by 10 clear observations, one confirmed by the record's last 3
    # (nothing after them could have shown it re-green).
    from pipeline.config import DetectParams

    mask = np.zeros((12, 12), bool)
    mask[1:4, 1:4] = mask[7:10, 7:10] = True
    flags, change = _grid(mask)
    late = np.zeros_like(mask)
    late[7:10, 7:10] = True
    change["n_clear_after"] = change["n_clear_after"].where(~late, 3)
    change["n_obs"] = change["n_obs"].where(~late, 3)
    def run(record_end: dt.date | None) -> dict[int, bool]:
        found, _, _ = sites.delineate_sites(
            flags, change, aoi_id="t", aoi_mask=None, crs="EPSG:32629", last_period_start=dt.date(2024, 1, 1),
            detect_params=DetectParams(), sites_params=SitesParams(min_area_m2=0, merge_distance_m=0, grow_min_obs=0),
            record_end=record_end)
        return dict(zip(found["n_clear_after"], found["provisional"], strict=True))

    # changes on 2023-02-12 (day 19400); their 365-day persistence window closes on 2024-02-12
    assert run(None) == run(dt.date(2023, 6, 30)) == {10: False, 3: True}
    # the window closed before the record ends: 3 clear views in a year is a cloudy AOI, not a short record
    assert run(dt.date(2024, 6, 30)) == {10: False, 3: False}
