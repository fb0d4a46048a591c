"""Microsoft Planetary Computer: STAC search plus SAS-token URL signing.

Blob hrefs (``https://<account>.blob.core.windows.net/<container>/...``) are readable
only with a shared-access-signature token appended as the query string. Tokens come
from the SAS endpoint ``GET {token_url}/{account}/{container}`` (answer
``{"token": "...", "msft:expiry": "2024-...Z"}``), are cached per account/container
until shortly before expiry, and are fetched with the retrying session (a
subscription key, when configured, goes in ``Ocp-Apim-Subscription-Key``).

Signed URLs are credentials: they are produced only at read time (:mod:`pipeline.cache`)
and never stored in items, manifests or logs. Items carry no ``raster:bands``, so
radiometry comes from the processing baseline (:mod:`pipeline.harmonise`).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..errors import DownloadError
from ..http import describe_error, redact
from ..types import BAND_ALIASES
from .base import SourceCheck, StacProvider

__all__ = ["PlanetaryComputerProvider", "DEFAULT_SAS_URL"]

DEFAULT_SAS_URL = "https://planetarycomputer.microsoft.com/api/sas/v1/token"
DEFAULT_KEY_ENV = "PC_SDK_SUBSCRIPTION_KEY"
#: Renew a token this long before it expires (a read may take a while).
EXPIRY_MARGIN = dt.timedelta(minutes=5)


class PlanetaryComputerProvider(StacProvider):
    name: ClassVar[str] = "planetary-computer"
    default_url: ClassVar[str] = "https://planetarycomputer.microsoft.com/api/stac/v1"
    default_collection: ClassVar[str | None] = "sentinel-2-l2a"
    aliases: ClassVar[Mapping[str, str]] = BAND_ALIASES["planetary-computer"]

    def __init__(self, *args: Any, sign_host: Callable[[str], bool] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.token_url = (self.source.token_url or DEFAULT_SAS_URL).rstrip("/")
        self._sign_host = sign_host or (lambda host: host.endswith(".blob.core.windows.net"))
        self._tokens: dict[tuple[str, str], tuple[str, dt.datetime]] = {}
        self._lock = threading.Lock()
        self.token_requests = 0

    def secrets(self) -> tuple[str, ...]:
        key = self.env_value(self.source.token_env or DEFAULT_KEY_ENV)
        return tuple(t for t, _ in self._tokens.values()) + ((key,) if key else ())

    def sign(self, href: str) -> str:
        parts = urlsplit(href)
        if parts.scheme not in ("http", "https") or not self._sign_host(parts.hostname or ""):
            return href
        if "sig=" in parts.query:
            return href  # already signed
        account = (parts.hostname or "").split(".")[0]
        container = parts.path.lstrip("/").split("/", 1)[0]
        token = self.token(account, container)
        return f"{href}{'&' if parts.query else '?'}{token}"

    def token(self, account: str, container: str) -> str:
        """SAS token for ``account``/``container``, from cache while valid."""
        now = dt.datetime.now(dt.UTC)
        with self._lock:
            cached = self._tokens.get((account, container))
            if cached and cached[1] - EXPIRY_MARGIN > now:
                return cached[0]
            headers = {}
            key = self.env_value(self.source.token_env or DEFAULT_KEY_ENV)
            if key:
                headers["Ocp-Apim-Subscription-Key"] = key
            url = f"{self.token_url}/{account}/{container}"
            try:
                resp = self.session.get(url, headers=headers)
                self.token_requests += 1
                resp.raise_for_status()
                body = resp.json()
                token = str(body["token"])
                expiry = _parse_expiry(body.get("msft:expiry"), now)
            except Exception as exc:  # any failure: one line, no token, no key
                raise DownloadError(self.safe_message(
                    f"cannot get a Planetary Computer SAS token from {redact(url)}: {describe_error(exc)}"
                )) from None
            self._tokens[(account, container)] = (token, expiry)
            return token

    def check(self) -> list[SourceCheck]:
        checks = super().check()
        url = f"{self.token_url}/sentinel2l2a01/sentinel2-l2"
        try:
            self._tokens.pop(("sentinel2l2a01", "sentinel2-l2"), None)
            self.token("sentinel2l2a01", "sentinel2-l2")
            checks.append(SourceCheck(self.name, redact(url), True, True, "SAS token issued"))
        except DownloadError as exc:
            refused = "HTTP 401" in str(exc) or "HTTP 403" in str(exc)
            checks.append(SourceCheck(self.name, redact(url), refused, False if refused else None, str(exc)))
        return checks


def _parse_expiry(raw: Any, now: dt.datetime) -> dt.datetime:
    if not raw:
        return now + dt.timedelta(minutes=45)
    when = dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
