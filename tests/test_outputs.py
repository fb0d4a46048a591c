"""Tests for :mod:`pipeline.outputs` that need no run: the files written from given results."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from pipeline.io import BackgroundWrites
from pipeline.outputs import write_dismissed
from pipeline.workflow import AOIResult


def _dismissed(aoi_id: str, n: int, *, epsg: int = 32734) -> gpd.GeoDataFrame:
    """``n`` false alarms of one AOI, in its UTM CRS, with float noise in the areas."""
    rows = [{"site_id": f"{aoi_id}-{k:04d}", "aoi_id": aoi_id, "area_ha": 0.1 * 3 + k,
             "first_seen": "2024-01-01", "last_seen": "2024-06-30", "status": "new",
             "confidence": 0.8932983616527922, "n_obs": 4, "n_occluded": 0, "n_clear_after": 9, "provisional": False,
             "verdict": "false_alarm", "reviewed_on": "2024-07-02"} for k in range(1, n + 1)]
    geoms = [box(500_000 + 300 * k, 9_290_000, 500_100 + 300 * k, 9_290_100) for k in range(n)]
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=epsg)


def test_dismissed_features_carry_the_site_id(tmp_path: Path) -> None:
    """``sites_dismissed.geojson`` features have a top-level ``id`` (RFC 7946), the site id, as
    ``sites.geojson`` does; numbers at the tables' precision."""
    results = [AOIResult(aoi_id=a, row={}, dismissed=_dismissed(a, n)) for a, n in (("kasai", 2), ("kono", 1))]
    path = write_dismissed(results, tmp_path)
    features = json.loads(path.read_text("utf-8"))["features"]
    assert [f["id"] for f in features] == ["kasai-0001", "kasai-0002", "kono-0001"]
    assert all(f["id"] == f["properties"]["site_id"] for f in features)
    assert {f["properties"]["confidence"] for f in features} == {0.89}
    assert [f["properties"]["area_ha"] for f in features] == [1.3, 2.3, 1.3]


def test_no_dismissed_site_writes_an_empty_collection(tmp_path: Path) -> None:
    path = write_dismissed([AOIResult(aoi_id="kasai", row={})], tmp_path)
    assert json.loads(path.read_text("utf-8"))["features"] == []


def test_background_writes_run_in_order_and_wait_raises_the_first_error(tmp_path: Path) -> None:
    order: list[int] = []
    started = threading.Event()
    release = threading.Event()

    def first() -> None:
        started.set()
        release.wait(10)
        order.append(1)

    def fails(k: int) -> None:
        order.append(k)
        raise OSError(f"disk full writing {k}")

    with BackgroundWrites(max_queued=3) as writes:
        writes.submit(first)
        writes.submit(fails, 2)
        writes.submit(fails, 3)
        assert started.wait(10)
        assert order == []  # the caller goes on while the first write runs
        release.set()
        with pytest.raises(OSError, match="writing 2"):
            writes.wait()
        assert order == [1, 2, 3]
        writes.wait()  # nothing left to wait for


def test_leaving_background_writes_on_an_error_drops_the_writes_not_started() -> None:
    done: list[str] = []
    started, release = threading.Event(), threading.Event()

    def under_way() -> None:
        started.set()
        release.wait(10)
        done.append("under way")

    timer = threading.Timer(2.0, release.set)  # lets the first write end after the block is left
    with pytest.raises(RuntimeError, match="the run failed"), BackgroundWrites() as writes:
        writes.submit(under_way)
        writes.submit(done.append, "queued")
        assert started.wait(10)
        timer.start()
        raise RuntimeError("the run failed")
    assert done == ["under way"]  # finished before the block ended; the queued one dropped


def test_no_background_write_starts_while_paused() -> None:
    done: list[str] = []
    with BackgroundWrites() as writes:
        with writes.paused():
            writes.submit(done.append, "composite")
            threading.Event().wait(0.3)
            assert done == []  # queued, not started (the run closes its cluster meanwhile)
        writes.wait()
    assert done == ["composite"]


def test_a_full_queue_waits_for_the_oldest_write() -> None:
    release = threading.Event()
    with BackgroundWrites(max_queued=1) as writes:
        writes.submit(release.wait, 10)
        threading.Timer(0.3, release.set).start()
        writes.submit(lambda: None)  # returns once the first write has ended
        assert release.is_set()
        writes.wait()


def test_the_annex_lists_the_aoi_files_own_grade_and_thickness() -> None:
    """An outside reviewer could not reproduce the carat ranges: the annex listed the configured
    grade (0.05-0.5 ct/m3) where the AOI file's own (0.05-0.4) was used."""
    from pipeline.config import MonitorConfig
    from pipeline.outputs import threshold_rows

    aoi = AOIResult(aoi_id="seguela", row={"source_file": "seguela.geojson", "grade_ct_per_m3": (0.05, 0.4),
                                           "gravel_thickness_m": None})
    rows = [r for r in threshold_rows(MonitorConfig(), [aoi]) if r["section"] == "crosscheck (seguela)"]
    assert [(r["key"], r["value"], r["unit"]) for r in rows] == [("grade_ct_per_m3", (0.05, 0.4), "ct/m³")]
    assert rows[0]["description_args"] == {"file": "seguela.geojson"}
