"""Shared type aliases, band names and dimension names.

Band naming scheme: the Earth Search ``sentinel-2-c1-l2a`` asset keys. Other
providers' names (Copernicus Data Space ``B04_10m``, Planetary Computer ``B04``)
are mapped onto these by :mod:`pipeline.search` before anything is loaded.
"""

from __future__ import annotations

from typing import Literal, get_args

#: Dimensions of every scene cube: one ``(time, y, x)`` variable per band (an
#: ``xarray.Dataset``, as odc-stac loads it), ``y`` north to south.
DIMS: tuple[str, str, str] = ("time", "y", "x")

#: Optical bands the pipeline loads, in Earth Search C1 naming.
OPTICAL_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "swir16", "swir22")
#: Scene classification layer (Sen2Cor SCL) band name.
SCL_BAND = "scl"
#: Everything :func:`pipeline.acquire.open_scenes` loads by default.
DEFAULT_BANDS: tuple[str, ...] = (*OPTICAL_BANDS, SCL_BAND)
#: Every Sentinel-2 L2A band in Earth Search C1 naming (``acquire.bands`` may name only these).
S2_BANDS: tuple[str, ...] = (
    "coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "nir09",
    "cirrus", "swir16", "swir22", "scl", "aot", "wvp", "visual",
)

#: Sen2Cor scene classes (ESA L2A product specification, table "SCL classes").
SCL_CLASSES: dict[int, str] = {
    0: "no_data",
    1: "saturated_or_defective",
    2: "dark_area_pixels",
    3: "cloud_shadows",
    4: "vegetation",
    5: "not_vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud_medium_probability",
    9: "cloud_high_probability",
    10: "thin_cirrus",
    11: "snow",
}

#: Band name aliases by provider naming scheme -> Earth Search C1 keys.
BAND_ALIASES: dict[str, dict[str, str]] = {
    "earth-search": {},
    "cdse": {
        "B02_10m": "blue", "B03_10m": "green", "B04_10m": "red", "B08_10m": "nir",
        "B8A_20m": "nir08", "B11_20m": "swir16", "B12_20m": "swir22", "SCL_20m": "scl",
    },
    "planetary-computer": {
        "B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B8A": "nir08",
        "B11": "swir16", "B12": "swir22", "SCL": "scl",
    },
}

ProviderNaming = Literal["earth-search", "cdse", "planetary-computer"]
#: Status of a site (see :mod:`pipeline.sites`), most urgent first: the order is the one the
#: bulletin lists them in.
SiteStatus = Literal["new", "expanding", "active", "dormant"]
#: The :data:`SiteStatus` values as a tuple, in that order.
SITE_STATUSES: tuple[SiteStatus, ...] = get_args(SiteStatus)
#: ``(minx, miny, maxx, maxy)`` = ``(left, bottom, right, top)`` of a box, in the units of its CRS.
BBox = tuple[float, float, float, float]
