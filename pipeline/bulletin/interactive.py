"""The bulletin's interactive map (HTML only): Leaflet over the before and after composites.

Per AOI, :func:`map_payload` gives the JSON a ``data-map`` attribute carries: the composites as
PNG ``data:`` URIs placed on the latitude/longitude bounds of the UTM extent
(``L.imageOverlay``), the site outlines as GeoJSON (EPSG:4326) with what their pop-ups show,
and the words of the controls in the bulletin's language. :func:`map_assets` gives Leaflet's
CSS and the one inline script (vendored Leaflet 1.9.4, BSD-2-Clause, under ``vendor/leaflet``,
followed by ``templates/map.js``) with the ``sha256-`` source the Content-Security-Policy
allows: nothing is fetched, no tile server is used, and the PDF keeps the static map (print
CSS hides the interactive block).

Input-derived strings (site ids, dates, names) never become script text: they travel as JSON
(``<``, ``>`` and ``&`` escaped as ``\\u003c``...) in an HTML-escaped attribute, are read with
``JSON.parse`` and written into the page with ``textContent`` only.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import re
from functools import cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from markupsafe import Markup
from PIL import Image
from pyproj import Transformer

from .context import AOIReport
from .figures import stretch_rgb
from .formatting import _date, _ha, _text
from .i18n import _
from .statuses import STATUS_COLOURS, label

__all__ = ["LEAFLET_DIR", "map_assets", "map_payload", "safe_json"]

#: Vendored Leaflet 1.9.4 (``leaflet.js``, ``leaflet.css``, ``LICENSE``: BSD-2-Clause).
LEAFLET_DIR = Path(__file__).with_name("vendor") / "leaflet"
_MAP_JS = Path(__file__).with_name("templates") / "map.js"
#: Longest side of the composites embedded in the interactive map (pixels).
MAX_SIDE = 1024


def safe_json(value: Any) -> str:
    """``json.dumps`` with ``<``, ``>`` and ``&`` escaped (``\\u003c``...): safe inside HTML.

    >>> safe_json({"id": "</script><b>&"})
    '{"id": "\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"}'
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@cache
def map_assets() -> tuple[Markup, Markup, str]:
    """Leaflet's CSS, the inline script (Leaflet + ``map.js``) and its CSP source ``'sha256-...'``."""
    css = (LEAFLET_DIR / "leaflet.css").read_text(encoding="utf-8")
    # Leaflet's sprite and marker images are not shipped: no marker is drawn, and the layer
    # control is always expanded (no toggle icon). Nothing may point outside the file.
    css = re.sub(r"url\([^)]*\)", "none", css)
    js = (LEAFLET_DIR / "leaflet.js").read_text(encoding="utf-8")
    js = re.sub(r"//# sourceMappingURL=\S+", "", js)
    script = js + "\n" + _MAP_JS.read_text(encoding="utf-8")
    if "</script" in script.lower() or "<!--" in script:
        raise ValueError("inline map script would end the <script> element early")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return Markup(css), Markup(script), f"'sha256-{digest}'"


def map_payload(report: AOIReport, limits: tuple[float, float], before_label: str, after_label: str) -> str | None:
    """The interactive map of one AOI as JSON for the ``data-map`` attribute (``None``: no imagery)."""
    if report.rgb_before is None and report.rgb_after is None:
        return None
    bounds = _latlon_bounds(report.extent_utm, report.epsg)
    if bounds is None:
        return None
    layers = []
    for name, rgb in ((before_label, report.rgb_before), (after_label, report.rgb_after)):
        if rgb is not None:
            layers.append({"name": name, "src": _png_uri(rgb, limits)})
    payload = {
        "bounds": bounds,
        "layers": layers,
        "sites": _sites_geojson(report.sites),
        "words": {"sites": _("Site outlines"), "site": _("Site"), "status": _("Status"),
                  "area": _("Area (ha)"), "first": _("First seen"), "last": _("Last seen"),
                  "verdict": _("Analyst review")},
    }
    return safe_json(payload)


def _latlon_bounds(extent: tuple[float, float, float, float], epsg: int) -> list[list[float]] | None:
    """``[[south, west], [north, east]]`` of the UTM ``extent`` (its corners and edge midpoints)."""
    left, bottom, right, top = (float(v) for v in extent)
    if not (right > left and top > bottom):
        return None
    tr = Transformer.from_crs(epsg, 4326, always_xy=True)
    xs = [left, right, left, right, (left + right) / 2, (left + right) / 2, left, right]
    ys = [bottom, bottom, top, top, bottom, top, (bottom + top) / 2, (bottom + top) / 2]
    lon, lat = tr.transform(xs, ys)
    if not all(math.isfinite(v) for v in [*lon, *lat]):
        return None
    return [[round(min(lat), 7), round(min(lon), 7)], [round(max(lat), 7), round(max(lon), 7)]]


def _png_uri(rgb: np.ndarray, limits: tuple[float, float]) -> str:
    """The composite stretched as in the static map, as an RGBA PNG ``data:`` URI (no data: clear)."""
    step = max(1, math.ceil(max(rgb.shape[:2]) / MAX_SIDE))
    rgba = stretch_rgb(np.asarray(rgb)[::step, ::step], limits)
    image = Image.fromarray((rgba * 255).round().astype("uint8"), mode="RGBA")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _sites_geojson(sites: gpd.GeoDataFrame | None) -> dict[str, Any]:
    """Site outlines (EPSG:4326, 6 decimals) with what their pop-ups show, in reader's words."""
    features: list[dict[str, Any]] = []
    if sites is None or sites.empty:
        return {"type": "FeatureCollection", "features": features}
    frame = sites if sites.crs is None or sites.crs.equals("EPSG:4326") else sites.to_crs(4326)
    for _row, r in frame.iterrows():
        geom = r.geometry
        if geom is None or geom.is_empty:
            continue
        status = _text(r.get("status"))
        verdict = _text(r.get("verdict")) if "verdict" in frame.columns else ""
        features.append({
            "type": "Feature",
            "geometry": _rounded(geom.__geo_interface__),
            "properties": {
                "site_id": _text(r.get("site_id")),
                "status": label(status),
                "colour": STATUS_COLOURS.get(status, "#ffffff"),
                "area_ha": _ha(r.get("area_ha")),
                "first_seen": _date(r.get("first_seen")),
                "last_seen": _date(r.get("last_seen")),
                **({"verdict": label(verdict)} if verdict and not pd.isna(verdict) else {}),
            },
        })
    return {"type": "FeatureCollection", "features": features}


def _rounded(geometry: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON geometry with coordinates rounded to 6 decimals (~0.1 m)."""
    def walk(c: Any) -> Any:
        if isinstance(c, int | float):
            return round(float(c), 6)
        return [walk(v) for v in c]
    return {"type": geometry["type"], "coordinates": walk(geometry["coordinates"])}
