"""Digital Earth Africa STAC (``s2_l2a``, ``s1_rtc``): unsigned S3 reads in ``af-south-1``.

Items come from datacube-explorer's STAC API. Sentinel-2 assets use ESA band names
(``B02``, ``SCL``) and hrefs on ``s3://deafrica-sentinel-2/...``; they are read through
GDAL ``/vsis3/`` without credentials (``AWS_NO_SIGN_REQUEST=YES``) from the Cape Town
region. Radar (``s1_rtc``) assets ``vv``/``vh`` are gamma-0 backscatter (float32),
passed through unscaled.
"""

from __future__ import annotations

from typing import ClassVar

from ..types import BAND_ALIASES
from .base import StacProvider

__all__ = ["DEAfricaProvider", "DEAFRICA_REGION"]

DEAFRICA_REGION = "af-south-1"


class DEAfricaProvider(StacProvider):
    name: ClassVar[str] = "deafrica"
    default_url: ClassVar[str] = "https://explorer.digitalearth.africa/stac"
    default_collection: ClassVar[str | None] = "s2_l2a"
    aliases: ClassVar[dict[str, str]] = {**BAND_ALIASES["planetary-computer"], "B8A": "nir08"}

    def gdal_options(self) -> dict[str, str]:
        return {
            "AWS_NO_SIGN_REQUEST": "YES",
            "AWS_REGION": DEAFRICA_REGION,
            "AWS_DEFAULT_REGION": DEAFRICA_REGION,
            "AWS_S3_ENDPOINT": f"s3.{DEAFRICA_REGION}.amazonaws.com",
        }
