"""What earlier bulletins listed (``pipeline.site_history``): "reported for the first time",
"listed again", and the sites a run is tracked against, read from an output root's archive."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import pytest
import shapely.geometry

from pipeline import sites
from pipeline.errors import InputDataError
from pipeline.site_history import compare_with_earlier, earlier_sites, reported_sites

UTM = "EPSG:32629"


def _square(x: float, side: float = 60.0) -> shapely.geometry.Polygon:
    return shapely.geometry.box(500000 + x, 900000, 500000 + x + side, 900000 + side)


def _sites(rows: list[dict[str, object]]) -> gpd.GeoDataFrame:
    """Sites in UTM (``x``: the square's offset in metres), with the columns tracking reads."""
    frame = gpd.GeoDataFrame(
        [{k: v for k, v in r.items() if k != "x"} for r in rows],
        geometry=[_square(float(r["x"])) for r in rows], crs=UTM)  # type: ignore[arg-type]
    return frame


def _write(folder: Path, rows: list[dict[str, object]], *, statuses: dict[str, str] | None = None) -> None:
    """A ``sites.geojson`` (EPSG:4326, as runs write it) and, for an archived bulletin, its manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sites.geojson").write_text(_sites(rows).to_crs(4326).to_json(), encoding="utf-8")
    if statuses is not None:
        (folder / "manifest.json").write_text(json.dumps({"aois": {a: {"status": s} for a, s in statuses.items()}}),
                                              encoding="utf-8")


def _site(site_id: str, x: float, first_seen: str, aoi: str = "a", **extra: object) -> dict[str, object]:
    return {"site_id": site_id, "aoi_id": aoi, "first_seen": first_seen, "x": x, **extra}


def test_a_site_absent_from_the_last_bulletin_is_listed_again_not_new(tmp_path: Path) -> None:
    """Bulletin 1 listed a-1 and a-2; bulletin 2 only a-1 (a-2 merged into a neighbour, or under the
    minimum area that quarter). Bulletin 3 lists all three: a-2 is "listed again", a-3 alone is
    reported for the first time. Before, a-2 was called "reported for the first time"."""
    archive = tmp_path / "archive"
    _write(archive / "bulletin-0001", [_site("a-1", 0, "2023-01-05"), _site("a-2", 500, "2023-02-05")],
           statuses={"a": "ok"})
    _write(archive / "bulletin-0002", [_site("a-1", 0, "2023-01-05")], statuses={"a": "ok"})
    since = compare_with_earlier(tmp_path, ["a-1", "a-2", "a-3"], before=3)
    assert since.previous_number == 2
    assert since.first_time == ["a-3"] and since.listed_again == ["a-2"]
    assert since.previous == {"a-1": "a"}  # what bulletin 3 no longer lists is measured against bulletin 2
    assert reported_sites(tmp_path, before=3) == {"a-1": "a", "a-2": "a"}
    # A revision of bulletin 2 is measured against bulletin 1 only.
    again = compare_with_earlier(tmp_path, ["a-1", "a-2"], before=2)
    assert (again.previous_number, again.first_time, again.listed_again) == (1, [], [])
    assert compare_with_earlier(tmp_path, ["a-1"], before=1) == compare_with_earlier(tmp_path / "none", [], before=9)


def test_only_the_latest_revision_of_a_bulletin_counts(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    _write(archive / "bulletin-0001", [_site("a-1", 0, "2023-01-05"), _site("a-9", 900, "2023-01-05")],
           statuses={"a": "ok"})
    _write(archive / "bulletin-0001-r2", [_site("a-1", 0, "2023-01-05")], statuses={"a": "ok"})  # a-9 revised away
    assert reported_sites(tmp_path, before=2) == {"a-1": "a"}
    assert compare_with_earlier(tmp_path, ["a-1", "a-9"], before=2).first_time == ["a-9"]


def test_earlier_sites_gather_every_bulletin_and_the_current_folder(tmp_path: Path) -> None:
    """Every record of the AOI, oldest first, a record repeated unchanged counted once at its
    latest place (so an id's last row is its latest polygon); other AOIs' sites and sites
    without geometry left out."""
    archive = tmp_path / "archive"
    _write(archive / "bulletin-0001", [_site("a-1", 0, "2023-01-05", undated=True), _site("a-2", 500, "2023-02-05"),
                                       _site("b-1", 0, "2023-01-01", aoi="b")], statuses={"a": "ok", "b": "ok"})
    _write(archive / "bulletin-0002", [_site("a-1", 0, "2023-03-01", undated=False), _site("a-2", 500, "2023-02-05")],
           statuses={"a": "ok"})
    _write(tmp_path, [_site("a-1", 30, "2023-03-01"), _site("a-4", 2000, "")])  # the current sites.geojson
    table = earlier_sites(tmp_path, "a")
    assert table is not None and table.crs.to_epsg() == 4326
    assert table[["site_id", "first_seen", "undated"]].values.tolist() == [
        ["a-1", "2023-01-05", True], ["a-1", "2023-03-01", False], ["a-2", "2023-02-05", False],
        ["a-1", "2023-03-01", False], ["a-4", "", False]]
    latest = table.drop_duplicates("site_id", keep="last").set_index("site_id").to_crs(UTM)
    assert latest.loc["a-1", "geometry"].equals_exact(_square(30), tolerance=1e-3)  # the current folder's polygon
    assert earlier_sites(tmp_path, "zz") is None and earlier_sites(tmp_path / "empty", "a") is None


def test_dates_follow_the_pits_through_a_merge_and_a_split(tmp_path: Path) -> None:
    """An outside tester: pits a-1 (first seen 2022-01) and a-2 (2023-06) merge into one site in
    bulletin 2, which took a-2's id (the larger overlap) and a-1's date; in bulletin 3 they are
    apart again. Dates go by the pits a site contains, not by id: a-2 gets its own date back
    (it was given a-1's), and the merged site of bulletin 2 took the earlier of the two."""
    archive = tmp_path / "archive"
    pit_1, pit_2 = _site("a-1", 0, "2022-01-10"), _site("a-2", 70, "2023-06-02")
    _write(archive / "bulletin-0001", [pit_1, pit_2], statuses={"a": "ok"})
    merged = gpd.GeoDataFrame([{"site_id": "a-merged", "aoi_id": "a", "first_seen": "2023-06-02", "status": "active",
                                "undated": False}],
                              geometry=[shapely.geometry.box(500000, 900000, 500130, 900060)], crs=UTM)
    tracked = sites.track_sites(merged, earlier_sites(tmp_path, "a"), last_period_start=dt.date(2023, 10, 1))
    assert tracked[["first_seen", "status"]].values.tolist() == [["2022-01-10", "active"]]  # pit 1 is in it
    (tmp_path / "archive" / "bulletin-0002").mkdir()
    (archive / "bulletin-0002" / "sites.geojson").write_text(
        tracked.assign(site_id="a-2").to_crs(4326).to_json(), encoding="utf-8")  # the id of the larger overlap
    (archive / "bulletin-0002" / "manifest.json").write_text(json.dumps({"aois": {"a": {"status": "ok"}}}))
    apart = _sites([_site("x-1", 0, "2023-10-05", status="new", undated=False),
                    _site("x-2", 70, "2023-10-05", status="new", undated=False)])
    split = sites.track_sites(apart, earlier_sites(tmp_path, "a"), last_period_start=dt.date(2023, 10, 1))
    assert split[["site_id", "first_seen", "status"]].values.tolist() == [
        ["a-1", "2022-01-10", "active"], ["a-2", "2023-06-02", "active"]]


def test_a_site_found_again_keeps_the_id_and_date_an_older_bulletin_gave_it(tmp_path: Path) -> None:
    """Tracking against every earlier bulletin, not only the folder's latest sites: a site that
    bulletin 1 reported, bulletin 2 did not list, and this run finds again keeps bulletin 1's id
    and first_seen and is "active", not "new"."""
    _write(tmp_path / "archive" / "bulletin-0001", [_site("a-old", 0, "2023-02-10", undated=False)],
           statuses={"a": "ok"})
    _write(tmp_path / "archive" / "bulletin-0002", [], statuses={"a": "ok"})
    _write(tmp_path, [])
    found = _sites([_site("a-fresh", 10, "2023-10-14", status="new", undated=False)])
    tracked = sites.track_sites(found, earlier_sites(tmp_path, "a"), last_period_start=dt.date(2023, 10, 1))
    assert tracked[["site_id", "first_seen", "status"]].values.tolist() == [["a-old", "2023-02-10", "active"]]
    # the folder's latest sites alone (what tracking read before) knew nothing of it
    assert sites.track_sites(found, None)["site_id"].tolist() == ["a-fresh"]


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"type": "FeatureCollection", "features": [{"x": 1}]}'])
def test_an_unreadable_archived_sites_file_is_one_clear_error(tmp_path: Path, text: str) -> None:
    folder = tmp_path / "archive" / "bulletin-0001"
    folder.mkdir(parents=True)
    (folder / "sites.geojson").write_text(text, encoding="utf-8")
    with pytest.raises(InputDataError) as err:
        earlier_sites(tmp_path, "a")
    message = str(err.value)
    assert str(folder / "sites.geojson") in message and "restore it" in message and "\n" not in message


_GOOD_SITES = '{"type": "FeatureCollection", "features": []}'


@pytest.mark.parametrize(("files", "expect"), [
    ({}, "has no manifest.json"),  # an empty folder: numbering counted it as bulletin 9
    ({"manifest.json": "{}"}, "has no sites.geojson"),  # read as "no site": every site "first time"
    ({"manifest.json": "{}", "sites.geojson": "{}"}, "is not a GeoJSON FeatureCollection"),
    ({"manifest.json": "{}", "sites.geojson": '{"type": "FeatureCollection", "features": [{"properties": {}}]}'},
     "feature 0 lacks site_id, aoi_id or geometry"),
    ({"manifest.json": "[1]", "sites.geojson": _GOOD_SITES}, "is not a JSON object"),
    (None, "is a file where the archive holds a bulletin's folder"),  # failed only when archiving
])
def test_a_damaged_archived_bulletin_is_refused_before_the_run_writes(
        tmp_path: Path, files: dict[str, str] | None, expect: str) -> None:
    """An outside tester: a missing archived sites file was read as "no site", and valid JSON of the
    wrong shape failed late, in every AOI's sites stage (exit 1, composites left behind). Both are
    bad input now: exit 2, one line naming the folder or file and the fix, nothing written."""
    from tests.bad_inputs.harness import run_in_process

    out = tmp_path / "out"
    good, bad = out / "archive" / "bulletin-0001", out / "archive" / "bulletin-0002"
    good.mkdir(parents=True)
    (good / "manifest.json").write_text("{}", encoding="utf-8")
    (good / "sites.geojson").write_text(_GOOD_SITES, encoding="utf-8")
    if files is None:
        bad.write_text("not a folder", encoding="utf-8")
    else:
        bad.mkdir()
        for name, text in files.items():
            (bad / name).write_text(text, encoding="utf-8")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    res = run_in_process(tmp_path, "monitor", "--config", str(Path(__file__).parents[1] / "configs" / "demo.yaml"),
                         "--out", str(out), "--aoi",
                         str(Path(__file__).parents[1] / "aois" / "seguela.geojson"))
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and expect in lines[0] and str(bad) in lines[0], lines
    assert "restore" in lines[0] and "out of archive/" in lines[0], lines[0]
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_reading_an_archived_bulletin_without_its_sites_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "archive" / "bulletin-0001"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}", encoding="utf-8")
    with pytest.raises(InputDataError, match="has no sites.geojson"):
        compare_with_earlier(tmp_path, ["a-1"], before=2)


def test_settings_changed_since_the_previous_bulletin(tmp_path: Path) -> None:
    """An outside tester raised sites.min_area_m2 between two bulletins: sites went "no longer
    listed" with no reason given. The thresholds that differ from the previous bulletin's are
    listed; input tables (paths) and values measured on the imagery are not settings."""
    from pipeline.site_history import settings_changed

    folder = tmp_path / "archive" / "bulletin-0003"
    _write(folder, [], statuses={"a": "ok"})
    (folder / "bulletin.json").write_text(json.dumps({"thresholds": [
        {"section": "sites", "key": "min_area_m2", "value": 2500, "unit": "m²"},
        {"section": "detect", "key": "ndvi_drop_min", "value": 0.2},
        {"section": "preprocess", "key": "scl_mask_classes", "value": [0, 1, 3]},
        {"section": "crosscheck", "key": "declared_production", "value": "/old/kp.csv", "unit": "CSV file"},
        {"section": "applied (a)", "key": "ndvi_drop_threshold", "value": 0.21},
        {"section": "detect", "key": "site_model", "value": "/old/model", "unit": "model folder"},
        {"section": "radar", "key": "source_url", "value": "https://host/stac"},  # as bulletin.json holds it
    ]}), encoding="utf-8")
    now = [{"section": "sites", "key": "min_area_m2", "value": 5000, "unit": "m²"},
           {"section": "detect", "key": "ndvi_drop_min", "value": 0.2},
           {"section": "preprocess", "key": "scl_mask_classes", "value": (0, 1, 3)},
           {"section": "crosscheck", "key": "declared_production", "value": "/new/kp.csv", "unit": "CSV file"},
           {"section": "applied (a)", "key": "ndvi_drop_threshold", "value": 0.24},
           {"section": "detect", "key": "site_model", "value": "/new/model", "unit": "model folder"},
           {"section": "radar", "key": "source_url", "value": "https://user:secret@host/stac"},
           {"section": "detect", "key": "brand_new", "value": 1}]
    assert settings_changed(tmp_path, 3, now) == [
        {"section": "sites", "key": "min_area_m2", "before": 2500, "after": 5000}]
    # numbers by value: 0.2 written as 0.2 and 2500 as 2500.0 are the same setting
    assert settings_changed(tmp_path, 3, [{"section": "sites", "key": "min_area_m2", "value": 2500.0}]) == []
    assert settings_changed(tmp_path, 2, now) == settings_changed(tmp_path, None, now) == []
    (folder / "bulletin.json").write_text("{truncated", encoding="utf-8")  # an older archive's: nothing to compare
    assert settings_changed(tmp_path, 3, now) == []


def test_a_truncated_archived_file_is_to_be_restored_not_edited(tmp_path: Path) -> None:
    """The pipeline wrote it: "fix the syntax" was the wrong advice (an outside tester)."""
    from pipeline.errors import ConfigError
    from pipeline.validate_inputs import check_out_dir

    folder = tmp_path / "archive" / "bulletin-0001"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}", encoding="utf-8")
    (folder / "sites.geojson").write_text('{"type": "Feature', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        check_out_dir(tmp_path)
    assert "is not valid JSON" in str(err.value) and "restore the folder from a copy" in str(err.value)
    assert "fix the syntax" not in str(err.value)


def _box(x0: float, x1: float) -> shapely.geometry.Polygon:
    return shapely.geometry.box(500000 + x0, 900000, 500000 + x1, 900060)


def _found(rows: list[tuple[str, float, float, str]], last_seen: str = "") -> gpd.GeoDataFrame:
    """This run's sites: ``(own id, x0, x1, first_seen)``, status new, dated."""
    return gpd.GeoDataFrame([{"site_id": s, "aoi_id": "a", "first_seen": d, "last_seen": last_seen or d,
                              "status": "new", "undated": False}
                             for s, _, _, d in rows], geometry=[_box(x0, x1) for _, x0, x1, _ in rows], crs=UTM)


def _archive(tmp_path: Path, number: int, rows: list[tuple[str, float, float, str]], *, last_seen: str = "",
             revision: int = 1) -> None:
    folder = tmp_path / "archive" / (f"bulletin-{number:04d}" + (f"-r{revision}" if revision > 1 else ""))
    folder.mkdir(parents=True)
    (folder / "sites.geojson").write_text(_found(rows, last_seen).to_crs(4326).to_json(), encoding="utf-8")
    (folder / "manifest.json").write_text(json.dumps({"aois": {"a": {"status": "ok"}}}), encoding="utf-8")


def test_touching_pits_of_unequal_size_keep_their_dates_through_a_merge_and_a_split(tmp_path: Path) -> None:
    """An outside tester: A (60 m, 2022-01-10) and B (120 m beside it, 2023-06-02) merge, then
    split; the merged record lies two thirds inside B, which took its date (A's). A record that
    two of this run's sites share gives neither its date."""
    _archive(tmp_path, 1, [("a-A", 0, 60, "2022-01-10"), ("a-B", 60, 180, "2023-06-02")])
    _archive(tmp_path, 2, [("a-B", 0, 180, "2022-01-10")], last_seen="2023-09-30")  # merged: B's id, A's date
    split = sites.track_sites(_found([("x", 0, 60, "2023-10-05"), ("y", 60, 180, "2023-10-05")]),
                              earlier_sites(tmp_path, "a"), last_period_start=dt.date(2023, 10, 1))
    assert split[["site_id", "first_seen", "status"]].values.tolist() == [
        ["a-A", "2022-01-10", "active"], ["a-B", "2023-06-02", "active"]]


def test_a_pit_that_grew_and_split_keeps_its_id_on_its_own_ground_and_no_id_is_used_twice(tmp_path: Path) -> None:
    """An outside tester: pit A grew over new ground (one site, A's id), then split into A's own
    pit (whose position-derived id is A's) and the new ground, which took A's id from the grown
    record: two sites with one id, both dated 2022. A's pit keeps A's id and date; the new ground
    gets an id of its own and its own date."""
    _archive(tmp_path, 1, [("a-A", 0, 60, "2022-01-10")])
    _archive(tmp_path, 2, [("a-A", 0, 180, "2022-01-10")], last_seen="2023-09-28")
    split = sites.track_sites(_found([("a-A", 0, 60, "2023-10-05"), ("a-Y", 60, 180, "2023-10-20")]),
                              earlier_sites(tmp_path, "a"), last_period_start=dt.date(2023, 10, 1))
    # the new ground was in bulletin 2's grown site, seen changed by 2023-09-28 (its last_seen):
    # a bound, so undated, and not "new" (a second outside tester)
    assert split[["site_id", "first_seen", "status", "undated"]].values.tolist() == [
        ["a-A", "2022-01-10", "active", False], ["a-Y", "2023-09-28", "active", True]]
    # Listed the other way round (the new ground first): still one id each.
    again = sites.track_sites(_found([("a-Y", 60, 180, "2023-10-20"), ("a-A", 0, 60, "2023-10-05")]),
                              earlier_sites(tmp_path, "a"), last_period_start=dt.date(2023, 10, 1))
    assert sorted(again["site_id"]) == ["a-A", "a-Y"]
    # A site whose own id an earlier record holds, but which matches no earlier site, gets a suffix.
    far = sites.track_sites(_found([("a-A", 1000, 1060, "2023-10-05")]), earlier_sites(tmp_path, "a"))
    assert far["site_id"].tolist() == ["a-A-2"]


def test_a_shrunk_pit_keeps_its_id_and_date(tmp_path: Path) -> None:
    """A second outside tester's run with a larger minimum area: a 2.18 ha site came back as
    0.69 ha inside its old outline, with its id but a later date, "new" and undated."""
    _archive(tmp_path, 1, [("a-A", 0, 120, "2023-05-24")])
    shrunk = sites.track_sites(_found([("a-x", 0, 50, "2024-01-01")]), earlier_sites(tmp_path, "a"),
                               last_period_start=dt.date(2024, 1, 1))
    assert shrunk[["site_id", "first_seen", "status"]].values.tolist() == [["a-A", "2023-05-24", "active"]]


def test_a_pit_first_listed_merged_and_then_split_is_not_new(tmp_path: Path) -> None:
    """Never listed apart: which half the merged site's date belongs to is not known, so neither
    takes it; each lies inside ground bulletin 1 saw changed by its last_seen, which bounds it."""
    _archive(tmp_path, 1, [("a-M", 0, 120, "2022-03-01")], last_seen="2023-06-30")
    split = sites.track_sites(_found([("x", 0, 60, "2023-10-05"), ("y", 60, 120, "2023-10-05")]),
                              earlier_sites(tmp_path, "a"), last_period_start=dt.date(2023, 10, 1))
    assert split[["first_seen", "status", "undated"]].values.tolist() == [["2023-06-30", "active", True]] * 2
    assert len(set(split["site_id"])) == 2


def test_no_id_is_used_twice_in_a_first_bulletin() -> None:
    """A second outside tester: two pits whose earliest pixels share a 20 m cell got one id when
    the AOI had no history (tracking returned before making ids unique)."""
    twins = sites.track_sites(_found([("a-1", 0, 40, "2023-10-05"), ("a-1", 300, 340, "2023-10-06")]), None)
    assert twins["site_id"].tolist() == ["a-1", "a-1-2"]


def test_a_revision_is_tracked_against_the_bulletins_before_it_not_the_issue_it_replaces(tmp_path: Path) -> None:
    """A second outside tester: revision 2 of bulletin 2 took a wrong date from revision 1 (and
    from the folder's copy of it), and passed it to every later bulletin."""
    _archive(tmp_path, 1, [("a-A", 0, 60, "2023-02-01")])
    _archive(tmp_path, 2, [("a-Z", 500, 560, "2019-01-01")])  # revision 1 of No. 2, wrong
    (tmp_path / "sites.geojson").write_bytes((tmp_path / "archive" / "bulletin-0002" / "sites.geojson").read_bytes())
    table = earlier_sites(tmp_path, "a", before=2)
    assert table is not None and table["site_id"].tolist() == ["a-A"]
    revised = sites.track_sites(_found([("a-Z", 500, 560, "2023-10-05")]), table,
                                last_period_start=dt.date(2023, 10, 1))
    assert revised[["first_seen", "status"]].values.tolist() == [["2023-10-05", "new"]]
    assert sorted(earlier_sites(tmp_path, "a", before=3)["site_id"]) == ["a-A", "a-Z"]  # No. 3 reads No. 2


def test_five_pits_merged_and_split_again_keep_their_own_dates(tmp_path: Path) -> None:
    """A second outside tester: each part holds a fifth of the merged record, under the share
    that makes a holder, so none was its sole holder, and each took the merged date."""
    _archive(tmp_path, 1, [(f"a-p{k}", 100 * k, 100 * k + 60, f"2022-0{k + 1}-10") for k in range(5)])
    _archive(tmp_path, 2, [("a-p0", 0, 460, "2022-01-10")], last_seen="2023-06-30")
    split = sites.track_sites(_found([(f"x{k}", 100 * k, 100 * k + 60, "2023-10-05") for k in range(5)]),
                              earlier_sites(tmp_path, "a"), last_period_start=dt.date(2023, 10, 1))
    assert split[["site_id", "first_seen"]].values.tolist() == [[f"a-p{k}", f"2022-0{k + 1}-10"] for k in range(5)]


def test_the_same_date_with_a_clear_view_before_it_is_not_undated(tmp_path: Path) -> None:
    """A third outside tester: bulletin 1 dated a site with a clear view before the change
    (undated false); bulletin 2 found the same date at its first clear view (undated true)
    and kept its own flag."""
    _archive(tmp_path, 1, [("a-A", 0, 60, "2023-05-24")])  # undated False
    again = _found([("a-A", 0, 60, "2023-05-24")]).assign(undated=True, status="active")
    tracked = sites.track_sites(again, earlier_sites(tmp_path, "a"), last_period_start=dt.date(2024, 1, 1))
    assert tracked[["first_seen", "undated"]].values.tolist() == [["2023-05-24", False]]


def test_revision_changes_against_the_issue_replaced(tmp_path: Path) -> None:
    from pipeline.numbering import archived_bulletins
    from pipeline.site_history import revision_changes

    _archive(tmp_path, 2, [("a-A", 0, 60, "2023-02-01"), ("a-B", 100, 160, "2023-03-01")])
    replaced = archived_bulletins(tmp_path)[-1]
    assert revision_changes(replaced, ["a-A", "a-C"]) == {"revision": 1, "added": ["a-C"], "removed": ["a-B"]}
    assert revision_changes(None, ["a-A"]) is None
