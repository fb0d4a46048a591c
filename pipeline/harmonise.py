"""Radiometric harmonisation of Sentinel-2 L2A: DN -> surface reflectance, in one place.

Every provider's items end up with ``raster:bands`` ``scale``/``offset``/``nodata`` on
each band asset, decided here by :func:`band_scaling`:

1. **Categorical bands** (SCL): scale 1, offset 0.
2. **What the processing baseline implies.** ESA added ``BOA_ADD_OFFSET = -1000`` DN
   to every L2A product from baseline 04.00 (25 January 2022; reprocessed archives
   such as Collection 1 carry 05.xx baselines for 2015-2021 acquisitions, so the key
   is the baseline, never the date): reflectance = (DN + BOA_ADD_OFFSET) /
   BOA_QUANTIFICATION_VALUE, i.e. ``DN * 1e-4 - 0.1``. Earth Search's
   ``sentinel-2-l2a`` COGs of such products were shifted back ("harmonised") when
   ``earthsearch:boa_offset_applied`` (formerly ``sentinel:boa_offset_applied``) is
   true; then the offset is 0. Earth Search *Collection 1* (``sentinel-2-c1-l2a``)
   never shifts DNs (Element84/earth-search#41), so the flag is ignored there.
3. **``raster:bands`` is trusted when it agrees** with (2), or when (2) cannot be
   decided (no baseline anywhere in the item). When it contradicts the baseline, the
   baseline wins: Earth Search has published items whose ``raster:bands`` offset is
   -0.1 while the DNs were already shifted, and the reverse
   (cirrus-geo/cirrus-earth-search#33, Element84/earth-search#9, #66, #71); a wrong
   offset moves every reflectance by 0.1 and NDVI by up to 0.2, silently.
4. **Product metadata** (``MTD_MSIL2A.xml``, :func:`read_product_metadata`) is the
   authority when a full SAFE product is at hand (DHuS, Copernicus OData): its
   ``BOA_QUANTIFICATION_VALUE``, per-band ``BOA_ADD_OFFSET`` and ``SPECIAL_VALUE
   NODATA`` give :func:`scaling_from_metadata`.

Nodata is masked **before** scaling (:func:`to_reflectance_np`): DN 0 is "no data",
not a reflectance of -0.1.
"""

from __future__ import annotations

import logging
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pystac

__all__ = [
    "BOA_OFFSET_BASELINE",
    "BandScaling",
    "ProductMetadata",
    "band_scaling",
    "harmonise_item",
    "offset_applied",
    "processing_baseline",
    "read_product_metadata",
    "scaling_from_metadata",
    "to_reflectance_np",
]

log = logging.getLogger("pipeline.harmonise")

#: First processing baseline with BOA_ADD_OFFSET = -1000 DN (ESA, January 2022).
BOA_OFFSET_BASELINE = (4, 0)
#: ESA BOA_QUANTIFICATION_VALUE of every L2A baseline so far.
L2A_QUANTIFICATION = 10000.0
L2A_SCALE = 1.0 / L2A_QUANTIFICATION
#: BOA_ADD_OFFSET of baselines >= 04.00, in DN, and as a reflectance offset.
L2A_ADD_OFFSET_DN = -1000.0
L2A_OFFSET_NEW = L2A_ADD_OFFSET_DN / L2A_QUANTIFICATION
#: Bands that are classes, not reflectances.
CATEGORICAL_BANDS = frozenset({"scl"})
#: Auxiliary L2A bands with their own quantification (aerosol optical thickness, water vapour).
AUXILIARY_BANDS = {"aot": 1e-3, "wvp": 1e-3}
#: Earth Search band name -> ESA band id in MTD_MSIL2A.xml (``BOA_ADD_OFFSET band_id``).
ESA_BAND_ID: dict[str, int] = {
    "coastal": 0, "blue": 1, "green": 2, "red": 3, "rededge1": 4, "rededge2": 5,
    "rededge3": 6, "nir": 7, "nir08": 8, "nir09": 9, "cirrus": 10, "swir16": 11, "swir22": 12,
}
_PHYSICAL_BAND = {
    "B1": "coastal", "B2": "blue", "B3": "green", "B4": "red", "B5": "rededge1",
    "B6": "rededge2", "B7": "rededge3", "B8": "nir", "B8A": "nir08", "B9": "nir09",
    "B10": "cirrus", "B11": "swir16", "B12": "swir22",
}
#: A reflectance scale outside this range is not a Sentinel-2 L2A quantification.
_PLAUSIBLE_SCALE = (5e-5, 2e-4)
_BASELINE_IN_NAME = re.compile(r"_N(\d{2})(\d{2})(?:_|$|\.)")


@dataclass(frozen=True)
class BandScaling:
    """How one band's DN become reflectance: ``DN * scale + offset`` where ``DN != nodata``."""

    scale: float
    offset: float
    nodata: float | None
    source: str
    """Where the numbers came from: ``raster:bands``, ``baseline``, ``categorical``,
    ``product-metadata``, ``assumed`` (no baseline and no metadata: pre-2022 rule)."""

    def as_tuple(self) -> tuple[float, float, float]:
        """``(scale, offset, nodata)`` with nodata 0 when unknown (S2 L2A convention)."""
        return self.scale, self.offset, 0.0 if self.nodata is None else float(self.nodata)


def processing_baseline(item: pystac.Item | Mapping[str, Any]) -> tuple[int, int] | None:
    """Processing baseline ``(major, minor)`` of an item, or None when nothing says.

    Looks at ``s2:processing_baseline`` and ``sentinel:processing_baseline``, then the
    ``_Nxxyy_`` part of product names (``s2:product_uri``, ``sentinel:product_id``,
    ``s2:datatake_id``, ``s2:granule_id``, the item id).

    Examples
    --------
    >>> processing_baseline({"s2:product_uri": "S2B_MSIL2A_20240419T095549_N0510_R122_T47XML_X.SAFE"})
    (5, 10)
    """
    props: Mapping[str, Any]
    ident = ""
    if isinstance(item, pystac.Item):
        props, ident = item.properties, item.id
    else:
        props = item.get("properties", item)  # an item dict or its properties
        ident = str(item.get("id", ""))
    for key in ("s2:processing_baseline", "sentinel:processing_baseline"):
        parsed = _parse_baseline(props.get(key))
        if parsed is not None:
            return parsed
    for key in ("s2:product_uri", "sentinel:product_id", "s2:granule_id", "s2:datastrip_id",
                "s2:datatake_id"):
        text = str(props.get(key) or "")
        m = _BASELINE_IN_NAME.search(text) or re.search(r"_N(\d{2})\.(\d{2})$", text)
        if m:
            return int(m[1]), int(m[2])
    m = _BASELINE_IN_NAME.search(ident)
    return (int(m[1]), int(m[2])) if m else None


def offset_applied(item: pystac.Item | Mapping[str, Any]) -> bool:
    """True when the archive already removed BOA_ADD_OFFSET from the DNs.

    Earth Search ``sentinel-2-l2a``: ``earthsearch:boa_offset_applied`` (formerly
    ``sentinel:boa_offset_applied``). Collection-1 collections never do it, whatever
    the flag says.
    """
    props = item.properties if isinstance(item, pystac.Item) else item.get("properties", item)
    collection = item.collection_id if isinstance(item, pystac.Item) else item.get("collection")
    if collection and "-c1-" in f"-{collection}-":
        return False
    return any(bool(props.get(k)) for k in ("earthsearch:boa_offset_applied",
                                             "sentinel:boa_offset_applied"))


def band_scaling(item: pystac.Item, band: str) -> BandScaling:
    """Decide scale, offset and nodata of ``band`` (Earth Search naming) of ``item``.

    See the module docstring for the rules. Never reads pixels or the network.
    """
    asset = item.assets[band]
    rb = (asset.extra_fields.get("raster:bands") or [{}])[0]
    nodata = _float_or_none(rb.get("nodata"))
    if band in CATEGORICAL_BANDS:
        return BandScaling(1.0, 0.0, 0.0 if nodata is None else nodata, "categorical")
    if "kp:scaling_source" in rb and "scale" in rb:  # already decided here (idempotent)
        return BandScaling(float(rb["scale"]), float(rb.get("offset", 0.0)), nodata,
                           str(rb["kp:scaling_source"]))
    if band in AUXILIARY_BANDS:
        if "scale" in rb:
            return BandScaling(float(rb["scale"]), float(rb.get("offset", 0.0)), nodata, "raster:bands")
        return BandScaling(AUXILIARY_BANDS[band], 0.0, 0.0 if nodata is None else nodata, "assumed")
    if band not in ESA_BAND_ID:  # radar backscatter, indices...: as published, else identity
        if "scale" in rb or "offset" in rb:
            return BandScaling(float(rb.get("scale", 1.0)), float(rb.get("offset", 0.0)), nodata,
                               "raster:bands")
        return BandScaling(1.0, 0.0, nodata, "identity")
    nodata = 0.0 if nodata is None else nodata  # ESA SPECIAL_VALUE NODATA = 0
    baseline = processing_baseline(item)
    expected: float | None = None
    if baseline is not None:
        expected = L2A_OFFSET_NEW if baseline >= BOA_OFFSET_BASELINE and not offset_applied(item) else 0.0
    if "scale" in rb:
        scale = float(rb["scale"])
        offset = float(rb.get("offset", 0.0))
        plausible = _PLAUSIBLE_SCALE[0] <= scale <= _PLAUSIBLE_SCALE[1]
        if plausible and (expected is None or math.isclose(offset, expected, abs_tol=1e-9)):
            return BandScaling(scale, offset, nodata, "raster:bands")
        log.info("item %s band %s: raster:bands scale %s offset %s contradict baseline %s "
                 "(offset applied: %s); using the baseline rule", item.id, band, scale, offset,
                 _fmt(baseline), offset_applied(item))
    if expected is None:
        return BandScaling(L2A_SCALE, 0.0, nodata, "assumed")
    return BandScaling(L2A_SCALE, expected, nodata, "baseline")


def harmonise_item(item: pystac.Item, *, bands: Sequence[str]) -> pystac.Item:
    """Write :func:`band_scaling` into each band asset's ``raster:bands`` (in place).

    The decision's source goes to ``raster:bands[0]["kp:scaling_source"]`` so the manifest
    and a reader can tell metadata from inference. Returns ``item``.
    """
    for band in bands:
        if band not in item.assets:
            continue
        asset = item.assets[band]
        scaling = band_scaling(item, band)
        rb = dict((asset.extra_fields.get("raster:bands") or [{}])[0])
        rb.update({"scale": scaling.scale, "offset": scaling.offset, "nodata": scaling.nodata,
                   "kp:scaling_source": scaling.source})
        asset.extra_fields["raster:bands"] = [rb]
    return item


# --------------------------------------------------------------------------------------------
# Product metadata (MTD_MSIL2A.xml)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductMetadata:
    """Radiometry of one L2A product, from its ``MTD_MSIL2A.xml``."""

    product_uri: str
    baseline: tuple[int, int]
    quantification: float
    """BOA_QUANTIFICATION_VALUE (10000 for every baseline so far)."""
    add_offsets_dn: Mapping[str, float] = field(default_factory=dict)
    """BOA_ADD_OFFSET per band (Earth Search names), DN; empty before baseline 04.00."""
    nodata: int = 0
    """SPECIAL_VALUE NODATA."""
    saturated: int | None = None
    """SPECIAL_VALUE SATURATED (65535)."""


def read_product_metadata(source: str | Path | bytes) -> ProductMetadata:
    """Parse an L2A ``MTD_MSIL2A.xml`` (a path, or its bytes).

    Raises
    ------
    ValueError
        The XML is not L2A product metadata (no PROCESSING_BASELINE or quantification).
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    root = ET.fromstring(data)  # noqa: S314 - ESA product metadata; expat limits entity expansion
    text: dict[str, str] = {}
    specials: dict[str, int] = {}
    offsets_by_id: dict[int, float] = {}
    physical: dict[int, str] = {}
    pending_special: str | None = None
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag in ("PRODUCT_URI", "PROCESSING_BASELINE", "BOA_QUANTIFICATION_VALUE") and tag not in text:
            text[tag] = (el.text or "").strip()
        elif tag == "SPECIAL_VALUE_TEXT":
            pending_special = (el.text or "").strip().upper()
        elif tag == "SPECIAL_VALUE_INDEX" and pending_special:
            specials[pending_special] = int(float((el.text or "0").strip()))
            pending_special = None
        elif tag == "BOA_ADD_OFFSET":
            offsets_by_id[int(el.attrib["band_id"])] = float((el.text or "0").strip())
        elif tag == "Spectral_Information" and "bandId" in el.attrib:
            name = _PHYSICAL_BAND.get(el.attrib.get("physicalBand", ""))
            if name:
                physical[int(el.attrib["bandId"])] = name
    baseline = _parse_baseline(text.get("PROCESSING_BASELINE"))
    if baseline is None or "BOA_QUANTIFICATION_VALUE" not in text:
        raise ValueError("not Sentinel-2 L2A product metadata: PROCESSING_BASELINE or "
                         "BOA_QUANTIFICATION_VALUE missing (expected MTD_MSIL2A.xml)")
    id_to_name = {**{v: k for k, v in ESA_BAND_ID.items()}, **physical}
    offsets = {id_to_name[i]: v for i, v in offsets_by_id.items() if i in id_to_name}
    return ProductMetadata(
        product_uri=text.get("PRODUCT_URI", ""),
        baseline=baseline,
        quantification=float(text["BOA_QUANTIFICATION_VALUE"]),
        add_offsets_dn=offsets,
        nodata=specials.get("NODATA", 0),
        saturated=specials.get("SATURATED"),
    )


def scaling_from_metadata(meta: ProductMetadata, band: str) -> BandScaling:
    """Scale/offset/nodata of ``band`` from product metadata (the authority for a SAFE).

    A baseline >= 04.00 product whose XML lacks the offset list is refused rather than
    guessed: ESA documents the list as mandatory from 04.00.
    """
    if band in CATEGORICAL_BANDS:
        return BandScaling(1.0, 0.0, float(meta.nodata), "categorical")
    if band in AUXILIARY_BANDS:
        return BandScaling(AUXILIARY_BANDS[band], 0.0, float(meta.nodata), "product-metadata")
    if meta.baseline >= BOA_OFFSET_BASELINE and band not in meta.add_offsets_dn:
        raise ValueError(f"{meta.product_uri}: baseline {_fmt(meta.baseline)} but no BOA_ADD_OFFSET "
                         f"for {band}; the metadata is incomplete")
    add = meta.add_offsets_dn.get(band, 0.0)
    return BandScaling(1.0 / meta.quantification, add / meta.quantification, float(meta.nodata),
                       "product-metadata")


def to_reflectance_np(dn: np.ndarray, scaling: BandScaling) -> np.ndarray:
    """``DN * scale + offset`` as float32, NaN where ``DN == nodata`` (masked first).

    Examples
    --------
    >>> s = BandScaling(1e-4, -0.1, 0.0, "baseline")
    >>> refl = to_reflectance_np(np.array([[0, 1000], [2000, 11000]], "uint16"), s)
    >>> [round(float(v), 3) + 0.0 for v in refl.ravel()]
    [nan, 0.0, 0.1, 1.0]
    """
    out = dn.astype("float32") * np.float32(scaling.scale) + np.float32(scaling.offset)
    if scaling.nodata is not None:
        out[dn == scaling.nodata] = np.nan
    return out


def _parse_baseline(raw: Any) -> tuple[int, int] | None:
    if raw is None:
        return None
    major, _, minor = str(raw).strip().partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        return None


def _float_or_none(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _fmt(baseline: tuple[int, int] | None) -> str:
    return "unknown" if baseline is None else f"{baseline[0]:02d}.{baseline[1]:02d}"
