"""EDGE: render the numbered WGM monitoring bulletin (HTML, PDF, figures).

``run.py`` assembles a :class:`BulletinContext` (one :class:`AOIReport` per
AOI, the cross-check frames, provenance) and calls :func:`render_bulletin`.
This package only formats and writes; it computes no statistics beyond sums
and counts for the executive summary (:func:`summarise`).

Outputs, in ``out_dir``:

- ``bulletin.html``: self-contained (figures as base64 data URIs, CSS inline,
  no fonts or stylesheets fetched; one inline script, the interactive map of
  :mod:`.interactive` (vendored Leaflet), allowed by its SHA-256 in a
  Content-Security-Policy that forbids every external load), opens offline;
- ``bulletin.<lang>.html`` / ``.pdf``: other editions (``bulletin.languages``, :mod:`.i18n`);
- ``bulletin.pdf``: the same HTML rendered by WeasyPrint with the print CSS
  (A4 portrait, running header and footer on every page); WeasyPrint is given
  a URL fetcher that refuses everything but ``data:`` URIs;
- ``bulletin.json``: what the bulletin says, as data (:func:`bulletin_data`: numbering,
  summary, per-AOI counts, the sites new since the previous bulletin);
- ``figures/*.png``: every figure embedded in the bulletin.

Every file is written to a temporary name in its folder, then renamed
(``os.replace``), so it appears complete or not at all.

Every string that came from an input file (AOI names, site ids, notes, flag
explanations, sources) goes through Jinja2 autoescaping; hyperlinks are only
made for ``http``/``https`` URLs.

Modules
-------
- :mod:`.context`: :class:`BulletinContext`, :class:`AOIReport` (the input);
- :mod:`.render`: :func:`render_bulletin` (HTML through Jinja2, PDF, atomic writes);
- :mod:`.data`: :func:`bulletin_data` (``bulletin.json``);
- :mod:`.summary`: :func:`summarise` (the executive summary's sentences);
- :mod:`.aoi_view`: one AOI's section (figures, counts, tables), :func:`evidence_text`;
- :mod:`.tables`: site, cross-check, flag and new-site rows;
- :mod:`.annex`: threshold, composite, scene, source and validation rows;
- :mod:`.selection`: which rows are shown (:func:`split_anomalies`, chips) and the sums;
- :mod:`.formatting`: how single values print (in the current language);
- :mod:`.i18n`: languages, gettext catalogs (``locale/``), :func:`~.i18n.use_language`;
- :mod:`.interactive`: the HTML-only Leaflet map (``vendor/leaflet``, ``templates/map.js``);
- :mod:`.statuses`: site status order, colours and definitions;
- :mod:`.figures`: the Matplotlib figures;
- ``templates/``: ``bulletin.html.j2`` and ``bulletin.css``.
"""

from __future__ import annotations

from .aoi_view import evidence_text
from .context import DEMONSTRATION_MARKING, AOIReport, BulletinContext
from .data import bulletin_data
from .render import render_bulletin
from .selection import MAX_CHIPS, covered_participants, split_anomalies
from .statuses import STATUS_COLOURS, STATUS_DEFINITIONS, STATUS_ORDER
from .summary import summarise

__all__ = [
    "DEMONSTRATION_MARKING",
    "MAX_CHIPS",
    "STATUS_COLOURS",
    "STATUS_DEFINITIONS",
    "STATUS_ORDER",
    "AOIReport",
    "BulletinContext",
    "bulletin_data",
    "covered_participants",
    "evidence_text",
    "render_bulletin",
    "split_anomalies",
    "summarise",
]
