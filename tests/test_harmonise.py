"""pipeline.harmonise: DN -> reflectance rules, on the real product metadata of three processing
baselines (02.12, 04.00, 05.09) and the real item JSON of Earth Search (v1 and v0), Planetary
Computer and the Africa item sets; nodata masked before scaling."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pipeline.harmonise import (
    ESA_BAND_ID,
    BandScaling,
    band_scaling,
    processing_baseline,
    read_product_metadata,
    scaling_from_metadata,
    to_reflectance_np,
)
from pipeline.providers import normalise_item
from pipeline.types import BAND_ALIASES, DEFAULT_BANDS

MTD = "stactools-s2-l2a-metadata"
PRODUCTS = {
    (2, 12): "S2A_MSIL2A_20190212T192651_N0212_R013_T07HFE_20201007T160857.SAFE",
    (4, 0): "S2B_MSIL2A_20220413T150759_N0400_R025_T33XWJ_20220414T082126.SAFE",
    (5, 9): "S2A_MSIL2A_20230821T221941_N0509_R029_T01KAB_20230822T021825.SAFE",
}
REFLECTANCE = [b for b in DEFAULT_BANDS if b != "scl"]


def _json(external: Path, rel: str) -> Any:
    return json.loads((external / rel).read_text())


# --------------------------------------------------------------------------------------------
# Product metadata (MTD_MSIL2A.xml), all three baselines
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("baseline", sorted(PRODUCTS))
def test_product_metadata_of_three_baselines(external: Path, baseline: tuple[int, int]) -> None:
    meta = read_product_metadata(external / MTD / PRODUCTS[baseline] / "MTD_MSIL2A.xml")
    assert meta.baseline == baseline
    assert meta.product_uri == PRODUCTS[baseline]
    assert meta.quantification == 10000 and meta.nodata == 0 and meta.saturated == 65535
    if baseline < (4, 0):
        assert meta.add_offsets_dn == {}
    else:  # all 13 bands, mapped to Earth Search names through physicalBand
        assert meta.add_offsets_dn == {name: -1000.0 for name in ESA_BAND_ID}
    red = scaling_from_metadata(meta, "red")
    assert (red.scale, red.nodata, red.source) == (1e-4, 0.0, "product-metadata")
    assert red.offset == (0.0 if baseline < (4, 0) else pytest.approx(-0.1))
    assert scaling_from_metadata(meta, "scl") == BandScaling(1.0, 0.0, 0.0, "categorical")


@pytest.mark.parametrize("baseline", sorted(PRODUCTS))
def test_metadata_agrees_with_stactools_and_with_the_item_rules(external: Path, baseline: tuple[int, int]) -> None:
    """The STAC item stactools generated from the same product carries the same numbers, and
    band_scaling trusts its raster:bands because they agree with the baseline."""
    folder = external / MTD / PRODUCTS[baseline]
    meta = read_product_metadata(folder / "MTD_MSIL2A.xml")
    item = pystac.Item.from_dict(_json(folder, "expected_output.json"))
    for band in REFLECTANCE:
        rb = item.assets[band].extra_fields["raster:bands"][0]
        from_xml = scaling_from_metadata(meta, band)
        assert (rb["scale"], rb["offset"]) == pytest.approx((from_xml.scale, from_xml.offset))
        decided = band_scaling(item, band)
        assert decided.source == "raster:bands"
        assert (decided.scale, decided.offset) == pytest.approx((from_xml.scale, from_xml.offset))
    assert processing_baseline(item) == baseline


def test_incomplete_metadata_is_refused(external: Path) -> None:
    text = (external / MTD / PRODUCTS[(5, 9)] / "MTD_MSIL2A.xml").read_text()
    start, end = text.index("<BOA_ADD_OFFSET_VALUES_LIST>"), text.index("</BOA_ADD_OFFSET_VALUES_LIST>")
    broken = read_product_metadata((text[:start] + text[end + len("</BOA_ADD_OFFSET_VALUES_LIST>"):]).encode())
    with pytest.raises(ValueError, match="no BOA_ADD_OFFSET"):
        scaling_from_metadata(broken, "red")
    with pytest.raises(ValueError, match="not Sentinel-2 L2A product metadata"):
        read_product_metadata(b"<root><x/></root>")


# --------------------------------------------------------------------------------------------
# Real items from three providers
# --------------------------------------------------------------------------------------------


def test_earth_search_v1_item(external: Path) -> None:
    raw = _json(external, "rio-tiler-pds-s2-l2a-29RKH/S2A_29RKH_20200219_0_L2A.json")
    item = normalise_item(pystac.Item.from_dict(raw), aliases={}, bands=list(DEFAULT_BANDS))
    assert processing_baseline(item) == (2, 14)
    for band in REFLECTANCE:
        assert band_scaling(item, band) == BandScaling(1e-4, 0.0, 0.0, "raster:bands")
    assert band_scaling(item, "scl").as_tuple() == (1.0, 0.0, 0.0)
    assert item.assets["red"].extra_fields["raster:bands"][0]["kp:scaling_source"] == "raster:bands"


@pytest.mark.parametrize("index", range(4))
def test_planetary_computer_items_by_baseline(external: Path, index: int) -> None:
    raw = _json(external, "stac-geoparquet-pc-items/sentinel-2-l2a-pc.json")[index]
    item = normalise_item(pystac.Item.from_dict(raw), aliases=BAND_ALIASES["planetary-computer"],
                          bands=list(DEFAULT_BANDS))
    assert processing_baseline(item) == (5, 10)
    for band in REFLECTANCE:  # no raster:bands at PC: the baseline decides
        assert band_scaling(item, band) == BandScaling(1e-4, -0.1, 0.0, "baseline")


@pytest.mark.parametrize("name", ["site1-20200606-tall-strip-africa.geojson", "site2-2020_jun_jul-35MNM.geojson"])
def test_africa_item_sets(external: Path, name: str) -> None:
    features = _json(external, f"odc-stac-africa-items/{name}")["features"]
    for raw in features:
        item = normalise_item(pystac.Item.from_dict(raw), aliases=BAND_ALIASES["planetary-computer"],
                              bands=["red", "nir", "scl"])
        assert processing_baseline(item) == (2, 12)
        assert band_scaling(item, "red").as_tuple() == (1e-4, 0.0, 0.0)


@pytest.mark.parametrize(("rel", "baseline"), [
    ("odc-stac-africa-items/S2A_28QCH_20200714_0_L2A.json", (2, 14)),
    ("rio-tiler-pds-s2-l2a-29RKH/S2A_31NBJ_20190524_0_L2A.json", (2, 12)),
])
def test_earth_search_v0_items_find_the_baseline_in_the_product_id(external: Path, rel: str,
                                                                     baseline: tuple[int, int]) -> None:
    item = normalise_item(pystac.Item.from_dict(_json(external, rel)),
                          aliases=BAND_ALIASES["planetary-computer"], bands=["red", "scl"])
    assert processing_baseline(item) == baseline
    assert band_scaling(item, "red") == BandScaling(1e-4, 0.0, 0.0, "baseline")


def test_radar_bands_pass_through(external: Path) -> None:
    item = pystac.Item.from_dict(_json(external, "stac-geoparquet-pc-items/sentinel-1-rtc-pc.json")[0])
    assert band_scaling(item, "vv") == BandScaling(1.0, 0.0, -32768.0, "identity")


# --------------------------------------------------------------------------------------------
# The trust rules, on mutations of the real Earth Search item
# --------------------------------------------------------------------------------------------


def _es_item(external: Path, *, collection: str = "sentinel-2-l2a", offset: float = 0.0,
             scale: float = 1e-4, when: str | None = None, **props: Any) -> pystac.Item:
    raw = _json(external, "rio-tiler-pds-s2-l2a-29RKH/S2A_29RKH_20200219_0_L2A.json")
    raw["collection"] = collection
    raw["properties"].update(props)
    if when:
        raw["properties"]["datetime"] = when
    raw["assets"]["red"]["raster:bands"][0].update({"offset": offset, "scale": scale})
    return pystac.Item.from_dict(raw)


@pytest.mark.parametrize(("case", "expected_offset", "source"), [
    # baseline 04.00 DNs carry +1000 but the item says offset 0 (stale metadata): baseline wins
    (dict(**{"s2:processing_baseline": "04.00", "earthsearch:boa_offset_applied": False}), -0.1, "baseline"),
    # the archive already shifted the DNs, raster:bands still says -0.1 (E84 #9, #66): flag wins
    (dict(offset=-0.1, **{"s2:processing_baseline": "05.10", "earthsearch:boa_offset_applied": True}), 0.0, "baseline"),
    # the old name of the flag counts too
    (dict(offset=-0.1, **{"s2:processing_baseline": "04.00", "sentinel:boa_offset_applied": True}), 0.0, "baseline"),
    # Collection 1 never shifts DNs: its raster:bands are right whatever the flag says
    (dict(collection="sentinel-2-c1-l2a", offset=-0.1,
          **{"s2:processing_baseline": "05.10", "earthsearch:boa_offset_applied": True}), -0.1, "raster:bands"),
    # keyed on the baseline, never the date: a 2018 acquisition reprocessed at 05.00
    (dict(when="2018-03-01T10:00:00Z", offset=-0.1, **{"s2:processing_baseline": "05.00"}), -0.1, "raster:bands"),
    (dict(when="2018-03-01T10:00:00Z", offset=0.0, **{"s2:processing_baseline": "05.00"}), -0.1, "baseline"),
    # ... and a 2023 acquisition at an old baseline keeps offset 0
    (dict(when="2023-03-01T10:00:00Z", offset=-0.1, **{"s2:processing_baseline": "03.01"}), 0.0, "baseline"),
    # a scale that is no L2A quantification is not trusted
    (dict(scale=1.0, **{"s2:processing_baseline": "02.14"}), 0.0, "baseline"),
])
def test_raster_bands_are_trusted_only_when_they_agree(external: Path, case: dict[str, Any],
                                                       expected_offset: float, source: str) -> None:
    kwargs = dict(case)
    item = _es_item(external, **kwargs)
    decided = band_scaling(item, "red")
    assert decided.offset == pytest.approx(expected_offset)
    assert decided.scale == pytest.approx(1e-4)
    assert decided.source == source


def test_no_baseline_anywhere_trusts_raster_bands_or_assumes(external: Path) -> None:
    item = _es_item(external, offset=-0.1)
    for key in list(item.properties):
        if key.startswith(("s2:", "earthsearch:")):
            del item.properties[key]
    item.id = "no-baseline"
    assert processing_baseline(item) is None
    assert band_scaling(item, "red") == BandScaling(1e-4, -0.1, 0.0, "raster:bands")
    del item.assets["red"].extra_fields["raster:bands"][0]["scale"]
    assert band_scaling(item, "red").source == "assumed"


def test_baseline_from_names() -> None:
    assert processing_baseline({"s2:datatake_id": "GS2A_20200219T112111_024344_N02.14"}) == (2, 14)
    product_id = "S2A_MSIL2A_20200714T115221_N0214_R123_T28QCH_20200714T191310"
    assert processing_baseline({"sentinel:product_id": product_id}) == (2, 14)
    assert processing_baseline({"id": "S2B_MSIL2A_20240101T000000_N0510_R001_T01AAA_X", "properties": {}}) == (5, 10)
    assert processing_baseline({}) is None


# --------------------------------------------------------------------------------------------
# Nodata before scaling
# --------------------------------------------------------------------------------------------


def test_nodata_is_masked_before_scaling() -> None:
    s = BandScaling(1e-4, -0.1, 0.0, "baseline")
    out = to_reflectance_np(np.array([[0, 1], [1000, 65535]], "uint16"), s)
    assert np.isnan(out[0, 0])  # not -0.1
    assert out[0, 1] == pytest.approx(-0.0999, abs=1e-6) and out[1, 0] == pytest.approx(0.0, abs=1e-6)
    assert out.dtype == np.float32


@given(dn=hnp.arrays(np.uint16, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12),
                     elements=st.integers(0, 12000)),
       offset=st.sampled_from([0.0, -0.1]))
def test_reflectance_is_nan_exactly_at_nodata(dn: np.ndarray, offset: float) -> None:
    out = to_reflectance_np(dn, BandScaling(1e-4, offset, 0.0, "baseline"))
    assert np.array_equal(np.isnan(out), dn == 0)
    valid = dn != 0
    np.testing.assert_allclose(out[valid], dn[valid] * 1e-4 + offset, rtol=1e-6, atol=1e-6)


def test_item_dates_do_not_matter_only_baselines(external: Path) -> None:
    a = _es_item(external, when="2016-01-01T00:00:00Z", **{"s2:processing_baseline": "05.09"})
    b = _es_item(external, when=dt.datetime(2024, 1, 1).isoformat() + "Z", **{"s2:processing_baseline": "05.09"})
    assert band_scaling(a, "green") == band_scaling(b, "green")
