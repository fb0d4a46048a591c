"""Imagery providers behind one interface (:class:`~pipeline.providers.base.Provider`).

=====================  ===========================================  ==============================
kind                   module                                       reads
=====================  ===========================================  ==============================
``earth-search``       :mod:`~pipeline.providers.earth_search`      anonymous HTTPS COGs
``deafrica``           :mod:`~pipeline.providers.deafrica`          unsigned S3 (af-south-1)
``cdse``               :mod:`~pipeline.providers.cdse`              S3 keys; OData + bearer token
``planetary-computer`` :mod:`~pipeline.providers.planetary_computer` SAS-signed blob URLs
``dhus``               :mod:`~pipeline.providers.dhus`              sentinelsat, zipped SAFE
``static``             :mod:`~pipeline.providers.static`            local catalog and files
``stac``               :mod:`~pipeline.providers.base`              any other STAC API
=====================  ===========================================  ==============================

:func:`get_provider` builds the one a :class:`~pipeline.config.SourceParams` asks for
(``provider: auto`` picks it from the URL).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from ..config import SourceParams
from .base import BaseProvider, Provider, SourceCheck, StacProvider, normalise_item
from .cdse import CdseProvider
from .deafrica import DEAfricaProvider
from .dhus import DhusProvider
from .earth_search import EarthSearchProvider
from .planetary_computer import PlanetaryComputerProvider
from .static import StaticProvider

__all__ = [
    "PROVIDERS",
    "BaseProvider",
    "Provider",
    "SourceCheck",
    "get_provider",
    "normalise_item",
    "provider_kind",
]

PROVIDERS: dict[str, type[BaseProvider]] = {
    "earth-search": EarthSearchProvider,
    "deafrica": DEAfricaProvider,
    "cdse": CdseProvider,
    "planetary-computer": PlanetaryComputerProvider,
    "dhus": DhusProvider,
    "static": StaticProvider,
    "stac": StacProvider,
}

#: Host name fragments that identify a provider when ``source.provider`` is ``auto``.
_HOSTS = (
    ("earth-search.aws.element84.com", "earth-search"),
    ("digitalearth.africa", "deafrica"),
    ("dataspace.copernicus.eu", "cdse"),
    ("planetarycomputer.microsoft.com", "planetary-computer"),
)


def provider_kind(source: SourceParams) -> str:
    """The provider kind for ``source`` (``source.provider`` unless ``auto``)."""
    if source.provider != "auto":
        return source.provider
    parsed = urlparse(source.url)
    if parsed.scheme in ("", "file") or len(parsed.scheme) == 1:  # a path (or a drive letter)
        return "static"
    host = parsed.hostname or ""
    for fragment, kind in _HOSTS:
        if fragment in host:
            return kind
    if parsed.path.rstrip("/").endswith(("/dhus", "/apihub")):
        return "dhus"
    return "stac"


def get_provider(source: SourceParams, *, env: Mapping[str, str] | None = None, **kwargs: Any) -> BaseProvider:
    """Build the provider for ``source``; ``env`` defaults to ``os.environ``."""
    return PROVIDERS[provider_kind(source)](source, env=env, **kwargs)
