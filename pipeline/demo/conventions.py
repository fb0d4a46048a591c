"""Conventions of the products written: collection ids, asset keys, DN scaling, STAC extensions.

Copied from real catalogs so the pipeline reads the demo exactly like real data: Earth Search
``sentinel-2-c1-l2a`` for Sentinel-2 and Planetary Computer ``sentinel-1-rtc`` for Sentinel-1.
"""

from __future__ import annotations

import datetime as dt

COLLECTION_ID = "sentinel-2-c1-l2a"
#: Reflectance bands, in the order of every (band, y, x) array in :mod:`pipeline.demo`.
BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "nir08", "swir16", "swir22")
BANDS_10M: tuple[str, ...] = BANDS[:4]
BANDS_20M: tuple[str, ...] = BANDS[4:]
#: Earth Search C1 (processing baseline >= 04.00): reflectance = DN * scale + offset.
DN_SCALE = 0.0001
DN_OFFSET = -0.1
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
STAC_EXTENSIONS: tuple[str, ...] = (
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
)
#: asset key -> (file stem, title, centre wavelength um, FWHM um, resolution m)
ASSETS: dict[str, tuple[str, str, float, float, int]] = {
    "blue": ("B02", "Blue (band 2) - 10m", 0.49, 0.098, 10),
    "green": ("B03", "Green (band 3) - 10m", 0.56, 0.045, 10),
    "red": ("B04", "Red (band 4) - 10m", 0.665, 0.038, 10),
    "nir": ("B08", "NIR 1 (band 8) - 10m", 0.842, 0.145, 10),
    "nir08": ("B8A", "NIR 2 (band 8A) - 20m", 0.865, 0.033, 20),
    "swir16": ("B11", "SWIR 1 (band 11) - 20m", 1.61, 0.143, 20),
    "swir22": ("B12", "SWIR 2 (band 12) - 20m", 2.19, 0.242, 20),
    "scl": ("SCL", "Scene classification map (SCL)", 0.0, 0.0, 20),
}

# --- Optional Sentinel-1 RTC collection (ScenarioSpec.with_s1) ---------------------------
S1_COLLECTION_ID = "sentinel-1-rtc"
S1_BANDS: tuple[str, ...] = ("vv", "vh")
#: RTC no-data value (Planetary Computer sentinel-1-rtc ``raster:bands``).
S1_NODATA = -32768.0
S1_STAC_EXTENSIONS: tuple[str, ...] = (
    "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
    "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
)
#: UTC time of the pass over the demo field: S1 is sun-synchronous with its ascending node
#: at 18:00 local mean solar time, and the field is 6.6 degrees west of Greenwich.
S1_PASS_UTC: dict[str, dt.time] = {"ascending": dt.time(18, 25, 3), "descending": dt.time(6, 24, 41)}
