"""Earth Search v1 (Element 84): ``sentinel-2-c1-l2a`` by default; anonymous HTTPS COGs.

Asset keys already follow the pipeline's naming; ``raster:bands`` carries scale and
offset (checked against the processing baseline by :mod:`pipeline.harmonise`).
"""

from __future__ import annotations

from typing import ClassVar

from .base import StacProvider

__all__ = ["EarthSearchProvider"]


class EarthSearchProvider(StacProvider):
    name: ClassVar[str] = "earth-search"
    default_url: ClassVar[str] = "https://earth-search.aws.element84.com/v1"
    default_collection: ClassVar[str | None] = "sentinel-2-c1-l2a"

    def gdal_options(self) -> dict[str, str]:
        # COG hrefs are public HTTPS; s3:// alternates (sentinel-cogs, us-west-2) are unsigned.
        return {"AWS_NO_SIGN_REQUEST": "YES", "AWS_REGION": "us-west-2"}
