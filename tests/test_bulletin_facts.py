"""Every count, area and date the executive summary states equals the tables it summarises.

Property tests (Hypothesis): random AOIs with random sites (statuses, areas, first-seen dates),
activity series and cross-check rows; the numbers are read back out of the sentences with
regular expressions and compared with sums and counts computed here, independently, from
the same frames.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import box

from pipeline.bulletin import AOIReport, BulletinContext, summarise
from pipeline.bulletin.facts import summary_facts
from pipeline.bulletin.formatting import _ha as _ha_text
from pipeline.types import SITE_STATUSES

START, END = dt.date(2023, 1, 1), dt.date(2024, 6, 30)
PERIODS = [(dt.date(2023, 1, 1) + pd.DateOffset(months=3 * k)).date() for k in range(6)]
NAMES = ["Alpha field", "Beta river", "Gamma hills"]
MIN_COVERAGE = 0.9
SITE_COLUMNS = ["site_id", "aoi_id", "area_ha", "first_seen", "last_seen", "status", "confidence", "n_obs",
                "provisional"]


@st.composite
def _aoi(draw: st.DrawFn, k: int) -> AOIReport:
    aoi_id = f"aoi-{k}"
    n = draw(st.integers(0, 7))
    rows, geoms = [], []
    for i in range(n):
        first = START + dt.timedelta(days=draw(st.integers(-200, (END - START).days)))
        rows.append({
            "site_id": f"{aoi_id}-{i:03d}", "aoi_id": aoi_id,
            "area_ha": draw(st.integers(25, 2500)) / 100, "first_seen": first.isoformat(),
            "last_seen": END.isoformat(), "status": draw(st.sampled_from(SITE_STATUSES)),
            "confidence": 0.5, "n_obs": 3, "provisional": draw(st.booleans()),
        })
        geoms.append(box(i, 0, i + 0.5, 0.5))
    sites = gpd.GeoDataFrame(pd.DataFrame(rows, columns=SITE_COLUMNS), geometry=geoms, crs=4326)
    n_periods = draw(st.integers(1, len(PERIODS)))
    starts = PERIODS[:n_periods]
    activity = pd.DataFrame({
        "aoi_id": aoi_id,
        "period_start": [s.isoformat() for s in starts],
        "period_end": [(pd.Timestamp(s) + pd.offsets.QuarterEnd(0)).date().isoformat() for s in starts],
        "disturbed_ha": 0.0,
        "new_ha": [draw(st.integers(0, 900)) / 100 for _ in starts],
        "valid_fraction": 1.0,
    })
    return AOIReport(
        aoi_id=aoi_id, name=NAMES[k], participant="Côte d'Ivoire", participant_iso3="CIV",
        sites=sites, sites_utm=sites.iloc[0:0], activity=activity, rgb_before=None, rgb_after=None,
        extent_utm=(0.0, 0.0, 1.0, 1.0), epsg=32629,
    )


@st.composite
def _context(draw: st.DrawFn) -> BulletinContext:
    aois = [draw(_aoi(k)) for k in range(draw(st.integers(1, 3)))]
    rows = []
    for a in aois:
        for year in (2023, 2024):
            if draw(st.booleans()):
                rows.append({
                    "participant_iso3": "CIV", "aoi_id": a.aoi_id, "year": year, "disturbed_ha": 1.0,
                    "est_carats_low": 100.0, "est_carats_high": 5000.0,
                    "declared_carats": draw(st.sampled_from([math.nan, 2367.63])),
                    "ratio": math.nan, "flags": "", "coverage_frac": draw(st.sampled_from([0.25, 0.5, 0.9, 1.0])),
                })
    crosscheck = pd.DataFrame(rows, columns=["participant_iso3", "aoi_id", "year", "disturbed_ha", "est_carats_low",
                                             "est_carats_high", "declared_carats", "ratio", "flags", "coverage_frac"])
    empty_flags = pd.DataFrame(columns=["rule", "participant_iso3", "aoi_id", "period", "evidence", "explanation"])
    return BulletinContext(
        number=1, title="t", period_start=START, period_end=END,
        generated_at=dt.datetime(2024, 7, 5, tzinfo=dt.UTC), distribution="x", demonstration=False,
        aois=aois, crosscheck=crosscheck, flags=empty_flags, anomalies=empty_flags,
        declared_sources=pd.DataFrame(), scenes=pd.DataFrame(),
        thresholds=[{"section": "crosscheck", "key": "min_comparison_coverage_frac", "value": MIN_COVERAGE}],
        validation=None, software={}, config_digest="0" * 64,
    )


def _ha(total: float) -> str:
    """A sum of the tables' hectares as the summary prints it: at the tables' precision (0.01 ha,
    so that float noise cannot tip a .x5 either way), then to 0.1 ha."""
    return _ha_text(round(float(total), 2))


def _tables(context: BulletinContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    sites = pd.concat([pd.DataFrame(a.sites.drop(columns="geometry")).assign(name=a.name) for a in context.aois],
                      ignore_index=True)
    activity = pd.concat([a.activity for a in context.aois], ignore_index=True)
    return sites, activity


def _sentence(sentences: list[str], start: str) -> str:
    found = [s for s in sentences if s.startswith(start)]
    assert len(found) == 1, (start, sentences)
    return found[0]


@given(_context())
def test_summary_counts_areas_and_dates_equal_the_tables(context: BulletinContext) -> None:
    sentences = summarise(context)
    sites, activity = _tables(context)
    n = len(sites)

    # Sites tracked, their area, and when they were first detected.
    text = next(s for s in sentences if "excavation site" in s)
    if n == 0:
        assert text == "No excavation site is tracked."
    else:
        m = re.match(r"(\d+) excavation sites? covering ([\d,]+\.\d) ha (?:is|are) tracked; (.*)\.$", text)
        assert m, text
        assert int(m.group(1)) == n
        assert m.group(2) == _ha(sites["area_ha"].sum())
        inside = sites["first_seen"] >= START.isoformat()
        if inside.all():
            assert "first detected during the covering period (2023-01-01 to 2024-06-30)" in m.group(3)
        else:
            m2 = re.match(r"(\d+) \(([\d,.]+) ha\) (?:was|were) first detected during the covering period "
                          r"and (\d+) \(([\d,.]+) ha\) before it", m.group(3))
            assert m2, text
            assert int(m2.group(1)) == inside.sum() and int(m2.group(3)) == (~inside).sum()
            assert m2.group(2) == _ha(sites.loc[inside, "area_ha"].sum())
            assert m2.group(4) == _ha(sites.loc[~inside, "area_ha"].sum())

    # The latest reporting period, and the statuses in it.
    latest_start = max(activity["period_start"])
    latest_end = activity.loc[activity["period_start"] == latest_start, "period_end"].iloc[0]
    text = _sentence(sentences, "In the latest reporting period")
    assert text.startswith(f"In the latest reporting period ({latest_start} to {latest_end}) ")
    counts = sites["status"].value_counts() if n else pd.Series(dtype=int)
    for status in ("new", "expanding"):
        k = int(counts.get(status, 0))
        if k == 0:
            assert f"no site was {status}" in text
        else:
            m = re.search(rf"(\d+) sites? \(([\d,.]+) ha\) (?:was|were) {status}: ([^;]*)", text)
            assert m, text
            assert int(m.group(1)) == k
            assert m.group(2) == _ha(sites.loc[sites["status"] == status, "area_ha"].sum())
            by_name = sites[sites["status"] == status]["name"].value_counts()
            for name, j in by_name.items():
                assert f"{name} ({j})" in m.group(3)
    m = re.search(r"(\d+) (?:was|were) active and (\d+) dormant", text)
    assert m and int(m.group(1)) == counts.get("active", 0) and int(m.group(2)) == counts.get("dormant", 0)

    # Provisional sites: counted, with their area, only when there are some.
    provisional = sites[sites["provisional"].astype(bool)] if len(sites) else sites
    found = [x for x in sentences if "provisional" in x]
    if len(provisional):
        (text,) = found
        ha, k = _ha(provisional["area_ha"].sum()), len(provisional)
        if k < len(sites):
            assert text.startswith(f"{k} of the {len(sites)} sites ({ha} ha) ")
        else:
            assert text.startswith(f"The site ({ha} ha) is" if k == 1 else f"All {k} sites ({ha} ha) are")
    else:
        assert not found

    # Newly disturbed ground: the activity table's new_ha, summed.
    text = _sentence(sentences, "Newly disturbed ground over the covering period amounts to")
    assert f"amounts to {_ha(activity['new_ha'].sum())} ha" in text

    # Cross-check: each AOI-year in the clause its coverage and declared figure put it in.
    text = _sentence(sentences, "In the cross-check, " if len(context.crosscheck) else "The cross-check had no")
    for r in context.crosscheck.itertuples():
        name = next(a.name for a in context.aois if a.aoi_id == r.aoi_id)
        mention = f"{name} {r.year} ({r.coverage_frac * 100:.0f} % of the year monitored)"
        assert mention in text, (mention, text)
        clause = next(c for c in text.split(";") if mention in c)
        if np.isnan(r.declared_carats):
            assert "no declared figure to compare" in clause
        elif r.coverage_frac < MIN_COVERAGE:
            assert "not comparable" in clause
        else:
            assert "detected activity was set against declared production" in clause

    # The first bulletin: every site is reported for the first time, with the count.
    text = _sentence(sentences, "This is the first bulletin")
    assert text.endswith(f"({n}).") if n else text.endswith("time.")


@given(_context())
def test_summary_facts_equal_the_tables(context: BulletinContext) -> None:
    facts: dict[str, Any] = summary_facts(context)
    sites, activity = _tables(context)
    assert facts["n_sites"] == len(sites)
    assert facts["site_area_ha"] == round(sites["area_ha"].sum(), 2)
    for status in SITE_STATUSES:
        mask = sites["status"] == status if len(sites) else pd.Series(dtype=bool)
        assert facts["status"][status]["n"] == int(mask.sum())
        assert facts["status"][status]["area_ha"] == round(float(sites.loc[mask, "area_ha"].sum()), 2)
    inside = sites["first_seen"] >= START.isoformat() if len(sites) else pd.Series(dtype=bool)
    assert facts["first_detected_in_period"]["n"] == int(inside.sum())
    assert facts["first_detected_before"]["n"] == len(sites) - int(inside.sum())
    assert facts["newly_disturbed_ha"] == round(activity["new_ha"].sum(), 2)
    comparable = [c["comparable"] for c in facts["comparisons"]]
    expected = [bool(not np.isnan(r.declared_carats) and r.coverage_frac >= MIN_COVERAGE)
                for r in context.crosscheck.sort_values(["participant_iso3", "aoi_id", "year"]).itertuples()]
    assert comparable == expected


@given(_context(), st.integers(0, 3), st.integers(0, 3), st.booleans(), st.integers(0, 3))
def test_the_previous_bulletin_sentence_says_what_is_new_and_what_is_gone(
    context: BulletinContext, n_gone: int, n_dismissed: int, keep_sites: bool, n_again: int,
) -> None:
    # A later bulletin: sites of an earlier bulletin no longer listed are named, with those an
    # analyst dismissed counted; sites listed earlier but not in the last bulletin, listed again,
    # are named; with no site at all, nothing is said to have been in an earlier bulletin.
    import dataclasses

    n_dismissed = min(n_dismissed, n_gone)
    gone = [f"aoi-0-gone-{i}" for i in range(n_gone)]
    rows = [{"site_id": g, "aoi_id": "aoi-0", "area_ha": 1.0, "first_seen": "2023-02-01", "last_seen": "2024-06-30",
             "status": "active", "confidence": 0.5, "n_obs": 3, "provisional": False} for g in gone[:n_dismissed]]
    dismissed = gpd.GeoDataFrame(pd.DataFrame(rows, columns=SITE_COLUMNS), geometry=[box(0, 0, 1, 1)] * n_dismissed,
                                 crs=4326)
    first = context.aois[0]
    sites = first.sites if keep_sites else first.sites.iloc[0:0]
    again = [str(s) for s in sites["site_id"][:n_again]]
    aois = [dataclasses.replace(first, sites=sites, gone_since_previous=gone, dismissed=dismissed,
                                listed_again=again),
            *[dataclasses.replace(a, sites=a.sites.iloc[0:0]) if not keep_sites else a for a in context.aois[1:]]]
    second = dataclasses.replace(context, number=2, previous_number=1, aois=aois)
    n_sites = sum(len(a.sites) for a in aois)
    text = _sentence(summarise(second), "No site is reported" if n_sites else "No site is listed")
    if n_sites:
        assert text.startswith("No site is reported for the first time: each was listed in an earlier bulletin.")
    else:
        assert text.startswith("No site is listed in this bulletin, so none is reported for the first time.")
        assert "earlier bulletin." not in text
    if again:
        listed = ("site listed in an earlier bulletin, but not in the last one covering its area, is"
                  if len(again) == 1 else
                  "sites listed in an earlier bulletin, but not in the last one covering their area, are")
        assert f"{len(again)} {listed} listed again: " in text and all(a in text for a in again)
    else:
        assert "listed again" not in text
    if n_gone:
        listed = ("site listed in the last bulletin covering its area is" if n_gone == 1
                  else "sites listed in the last bulletin covering their area are")
        assert f"{n_gone} {listed} not listed in this one: " in text and all(g in text for g in gone)
    else:
        assert "not listed in this one" not in text
    undismissed = n_gone - n_dismissed
    if undismissed:  # why the others went (an outside tester: no reason was given)
        found = {(1, False): "It was not found again as a site of its own",
                 (1, True): "The other one was not found again as a site of its own",
                 (2, False): "They were not found again as sites of their own",
                 (2, True): f"The other {undismissed} were not found again as sites of their own"}
        assert f"{found[min(undismissed, 2), n_dismissed > 0]} with this run's imagery and settings" in text
    else:
        assert "not found again" not in text
    if n_dismissed == n_gone == 1:
        assert "It was dismissed by an analyst as a false alarm" in text
    elif n_dismissed == n_gone > 0:
        assert f"All {n_gone} were dismissed by an analyst as false alarms" in text
    elif n_dismissed:
        assert f"Of them, {n_dismissed} {'was' if n_dismissed == 1 else 'were'} dismissed by an analyst" in text
    else:
        assert "dismissed" not in text
