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
    """One row per site id: the latest polygon, the earliest first_seen (with its undated flag);
    other AOIs' sites and sites without geometry left out."""
    archive = tmp_path / "archive"
    _write(archive / "bulletin-0001", [_site("a-1", 0, "2023-01-05", undated=True), _site("a-2", 500, "2023-02-05"),
                                       _site("b-1", 0, "2023-01-01", aoi="b")], statuses={"a": "ok", "b": "ok"})
    _write(archive / "bulletin-0002", [_site("a-1", 0, "2023-03-01", undated=False)], statuses={"a": "ok"})
    _write(tmp_path, [_site("a-1", 30, "2023-03-01"), _site("a-4", 2000, "")])  # the current sites.geojson
    table = earlier_sites(tmp_path, "a")
    assert table is not None and table.crs.to_epsg() == 4326
    rows = table.set_index("site_id")
    assert sorted(rows.index) == ["a-1", "a-2", "a-4"]
    assert rows.loc["a-1", "first_seen"] == "2023-01-05" and bool(rows.loc["a-1", "undated"])  # bulletin 1's date
    assert rows.loc["a-4", "first_seen"] == ""
    latest = gpd.GeoSeries([rows.loc["a-1", "geometry"]], crs=4326).to_crs(UTM).iloc[0]
    assert latest.equals_exact(_square(30), tolerance=1e-3)  # the current folder's polygon
    assert earlier_sites(tmp_path, "zz") is None and earlier_sites(tmp_path / "empty", "a") is None


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
