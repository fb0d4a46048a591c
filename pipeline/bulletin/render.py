"""Write the bulletin: HTML (Jinja2), PDF (WeasyPrint), JSON and figures, each atomically."""

from __future__ import annotations

import base64
import contextvars
import functools
import hashlib
import json
import logging
import os
import pickle
import sys
import tempfile
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from matplotlib.figure import Figure

from ..http import redact_credentials, strip_userinfo
from . import figures as fg
from .annex import (
    _assessment_view,
    _bases,
    _composite_rows,
    _n_thresholds_hidden,
    _scene_summary,
    _source_rows,
    _threshold_rows,
    _validation_rows,
    detection_sentences,
)
from .aoi_view import _aoi_view
from .context import DEMONSTRATION_MARKING, BulletinContext
from .data import bulletin_data
from .facts import run_parameter, summary_facts
from .formatting import _breakable, _int, _long_date, _num, _safe_href, _text, _timestamp
from .i18n import _, catalog, current, use_language
from .interactive import map_assets
from .selection import covered_participants, split_anomalies
from .statuses import STATUS_COLOURS, STATUS_ORDER, label, status_definitions, verdict_definitions
from .summary import demonstration_sentence, summarise
from .tables import _crosscheck_rows, _flag_rows, _new_since_rows
from .wording import basis_wording

__all__ = ["TEMPLATES", "render_bulletin"]

log = logging.getLogger(__name__)

#: Folder of the Jinja2 template and its stylesheet (package data).
TEMPLATES = Path(__file__).with_name("templates")


def render_bulletin(
    context: BulletinContext, out_dir: Path, *, pdf: bool = True, languages: tuple[str, ...] | list[str] = ("en",)
) -> dict[str, Path]:
    """Write ``bulletin.html``, ``bulletin.json``, ``bulletin.pdf`` and ``figures/*.png`` into ``out_dir``.

    Each other language of ``languages`` (``bulletin.languages``; see :mod:`.i18n`) adds
    ``bulletin.<lang>.html`` (and ``bulletin.<lang>.pdf``) from the same template, with its
    figures under ``figures/<lang>/``. The English edition is always written (the output contract).

    Parameters
    ----------
    context
        What to show; see :class:`BulletinContext`.
    out_dir
        Output folder, created if missing. Files are written atomically.
    pdf
        Also render ``bulletin.pdf`` with WeasyPrint.
    languages
        Editions to write (``"en"``, ``"fr"``).

    Returns
    -------
    dict
        Paths keyed by their name relative to ``out_dir``: ``"bulletin.html"``,
        ``"bulletin.json"``, ``"bulletin.pdf"`` (absent when ``pdf`` is false) and
        ``"figures/<name>.png"``.
    """
    out_dir = Path(out_dir)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    result: dict[str, Path] = {}
    editions = ["en", *[lang for lang in dict.fromkeys(languages) if lang != "en"]]
    for lang in editions:
        catalog(lang)  # an unknown language fails before anything is written
    for lang in editions:
        sub = "" if lang == "en" else f"{lang}/"
        suffix = "" if lang == "en" else f".{lang}"

        with use_language(lang), _FigureSaver(fig_dir / sub, f"figures/{sub}", written) as saver:
            aoi_views = [_aoi_view(report, saver.save, max_chips=context.max_chips) for report in context.aois]
            aoi_views = saver.resolve(aoi_views)
            html = strip_userinfo(_render_html(context, aoi_views))  # no user:password@ of a --source URL
        html_path = out_dir / f"bulletin{suffix}.html"
        _write_atomic(html_path, html.encode("utf-8"))
        result[f"bulletin{suffix}.html"] = html_path
        if lang == "en":
            json_path = out_dir / "bulletin.json"
            data = redact_credentials(bulletin_data(context))
            _write_atomic(json_path, json.dumps(data, indent=1, ensure_ascii=False).encode("utf-8"))
            result["bulletin.json"] = json_path
        if pdf:
            pdf_path = out_dir / f"bulletin{suffix}.pdf"
            _write_atomic(pdf_path, _html_to_pdf(html, base=out_dir))
            result[f"bulletin{suffix}.pdf"] = pdf_path
    result.update(written)
    return result


class _FigureSaver:
    """Renders and writes the figures of one edition in background threads, while the next
    figures are built.

    :meth:`save` (the ``save`` of :func:`~.aoi_view._aoi_view`) hands a finished figure to a
    thread and returns a placeholder; :meth:`resolve` swaps the placeholders of the views for
    the data URIs once every figure is written. Encoding a figure's PNG then overlaps with
    building the next one (Pillow encodes without holding the GIL: four 2000 x 1500 px PNGs
    took 1.1 s in 2 threads against 2.2 s in turn), and so does writing it; a figure is only
    drawn once complete, and each has its own Agg canvas (:mod:`.figures`: no global state).
    A figure that fails stops the building at the next :meth:`save`.
    Each is drawn in the context it was saved from: its tick labels are formatted as it is
    drawn, in the edition's language (a context variable, :func:`~.i18n.use_language`).
    The files are listed in the order the figures were made, whatever order the threads finish in.
    """

    #: Threads drawing and writing figures (0: each is drawn where it is made). 2 against 0 is
    #: measured in ``docs/scaling.md``; no other count was.
    THREADS = 2
    #: Figures handed over but not yet written, at most (the queue holds each with its imagery).
    IN_FLIGHT = 4

    def __init__(self, folder: Path, prefix: str, written: dict[str, Path]) -> None:
        self.folder, self.prefix, self.written = folder, prefix, written
        self._pool = ThreadPoolExecutor(self.THREADS, thread_name_prefix="kp-figure") if self.THREADS else None
        self._pending: dict[str, Future[str] | str] = {}

    def __enter__(self) -> _FigureSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:  # waits for the figures (an error leaves no thread writing)
            self._pool.shutdown(wait=True, cancel_futures=True)

    def save(self, fig: Figure, name: str) -> str:
        path = self.folder / name
        self.written[self.prefix + name] = path
        token = f"\0figure:{len(self._pending)}:{name}\0"  # no data URI or text contains a NUL
        if self._pool is None:
            self._pending[token] = _save_figure(fig, path)
            return token
        busy = [f for f in self._pending.values() if isinstance(f, Future) and not f.done()]
        if len(busy) >= self.IN_FLIGHT:
            wait(busy, return_when=FIRST_COMPLETED)
        for done in self._pending.values():  # a figure that failed: no more figures built
            if isinstance(done, Future) and done.done() and done.exception() is not None:
                done.result()
        # in the caller's context: tick formatters run at drawing time, in the edition's language
        self._pending[token] = self._pool.submit(contextvars.copy_context().run, _save_figure, fig, path)
        return token

    def resolve(self, value: Any) -> Any:
        """``value`` with every placeholder of :meth:`save` (in dicts, lists and tuples) replaced
        by its figure's data URI, once every figure is written; raises what a figure's drawing
        or writing raised (the first made of those that failed)."""
        for pending in self._pending.values():
            if isinstance(pending, Future):
                pending.result()
        return self._swap(value)

    def _swap(self, value: Any) -> Any:
        if isinstance(value, str):
            pending = self._pending.get(value)
            if pending is None:
                return value
            return pending if isinstance(pending, str) else pending.result()
        if isinstance(value, dict):
            return {k: self._swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._swap(v) for v in value]
        if type(value) is tuple:
            return tuple(self._swap(v) for v in value)
        return value


def _save_figure(fig: Figure, path: Path) -> str:
    """Write ``fig`` as PNG at ``path``; its data URI."""
    png = fg.figure_png(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, png)
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


#: Options of every template environment (part of the compiled templates' cache key).
_ENV_OPTIONS: dict[str, Any] = {
    "autoescape": True,  # every template, every extension: input strings are untrusted
    "undefined": jinja2.StrictUndefined,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "extensions": ("jinja2.ext.i18n",),
}


class _BestEffortCache(jinja2.FileSystemBytecodeCache):
    """Jinja2's file cache, where a file that cannot be read or written only costs the saving:
    the template is compiled (a full or read-only temporary folder, a damaged file)."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError) as exc:
            log.debug("compiled template not loaded (%s); compiling it", exc)
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError as exc:
            log.debug("compiled template not kept (%s)", exc)


@functools.cache
def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept between runs (compiling the bulletin's costs ~0.4 s a run).

    Jinja2's own cache in the user's private temporary folder (``_jinja2-cache-UID``, mode 0700,
    written atomically; a template whose source changed is compiled again). Its key does not
    cover the environment's options, so the file names carry a digest of them and of the Jinja2
    version, and of the code of the filters (:func:`_jinja_env`): a compiled template calls them
    as they were when it was compiled, and holds the values of those it folded (a cache of an
    older version called ``label`` with the arguments of the newer one and failed). ``None``
    (compile every time) where that folder cannot be used; a file that cannot be read or
    written there is compiled instead (:class:`_BestEffortCache`)."""
    code = hashlib.sha256()
    try:
        for module in sorted({__name__, label.__module__, _int.__module__, _safe_href.__module__,
                              _breakable.__module__}):
            code.update(Path(sys.modules[module].__file__ or "").read_bytes())
        key = hashlib.sha256(repr((jinja2.__version__, sorted(_ENV_OPTIONS.items(), key=str),
                                   code.hexdigest())).encode()).hexdigest()
        return _BestEffortCache(pattern=f"kp-bulletin-{key[:16]}-%s.cache")
    except (OSError, RuntimeError):
        return None


def _jinja_env(language: str = "en") -> jinja2.Environment:
    """The template environment: autoescaping everywhere, undefined names an error, and the
    gettext catalog of ``language`` (``jinja2.ext.i18n``, new-style: placeholders are escaped)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), bytecode_cache=_bytecode_cache(), **_ENV_OPTIONS
    )
    env.policies["ext.i18n.trimmed"] = True  # {% trans %} blocks: whitespace collapsed in msgids
    env.install_gettext_translations(catalog(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["link"] = _safe_href
    env.filters["breakable"] = _breakable
    # In the current language, so never folded into the compiled template (jinja2 evaluates a
    # filter of a literal at compile time, and the compiled template is cached across languages:
    # the French edition read "le statut new")
    env.filters["label"] = _at_render(label)
    env.filters["int_text"] = _at_render(_int)
    return env


def _at_render(func: Any) -> Any:
    """``func`` as a filter evaluated when the template renders: a ``pass_context`` filter is
    never constant-folded."""

    @jinja2.pass_context
    def apply(_context: Any, value: Any, *args: Any) -> Any:
        return func(value, *args)

    return apply


def _render_html(context: BulletinContext, aoi_views: list[dict[str, Any]]) -> str:
    template = _jinja_env(current()).get_template("bulletin.html.j2")
    return template.render(**_template_values(context, aoi_views))


def _template_values(context: BulletinContext, aoi_views: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything ``bulletin.html.j2`` shows, formatted (the template only escapes and lays out)."""
    names = {a.aoi_id: a.name for a in context.aois}
    shown, elsewhere = split_anomalies(context)
    facts = summary_facts(context)
    sources, source_index = _source_rows(_cited_figures(context, shown, facts["comparisons"]))
    latest = facts["latest_period"]
    latest_text = _("{start} to {end}", start=_long_date(latest[0]), end=_long_date(latest[1])) if latest else None
    growth = run_parameter(context.thresholds, "sites", "expanding_growth_frac")
    min_cov = run_parameter(context.thresholds, "crosscheck", "min_comparison_coverage_frac")
    crosscheck_rows = _crosscheck_rows(context.crosscheck, names, source_index, facts["comparisons"],
                                       _bases(context.declared_sources))
    return {
        "c": context,
        "marking": _(DEMONSTRATION_MARKING),
        "lang": current(),
        **_map_values(aoi_views),
        "issued": _long_date(context.generated_at.date()),
        "generated": _timestamp(context.generated_at),
        "period": _("{start} to {end}", start=_long_date(context.period_start), end=_long_date(context.period_end)),
        "number_text": _("No. {n}", n=context.number)
        + (_(", revision {n}", n=context.revision) if context.revision > 1 else ""),
        "latest_period": latest_text,
        "summary": summarise(context, facts),
        "demo_statement": demonstration_sentence(context, facts) if context.demonstration else "",
        "aois": aoi_views,
        "status_order": STATUS_ORDER,
        "status_colours": STATUS_COLOURS,
        # The box names the latest period once, in its lead; the definitions refer to it.
        "status_definitions": status_definitions(None, None if growth is None else float(growth)),
        "provisional_obs": _provisional_obs(context),
        "min_area_ha": None if (m := run_parameter(context.thresholds, "sites", "min_area_m2")) is None
        else _num(float(m) / 1e4, 4, strip=True),
        "min_coverage": None if min_cov is None else _("{pct} %", pct=f"{float(min_cov) * 100:.0f}"),
        "crosscheck_rows": crosscheck_rows,
        "basis_notes": sorted({(r["basis"], basis_wording(r["basis"])) for r in crosscheck_rows if r["basis"]}),
        "flag_rows": _flag_rows(context.flags, names),
        "anomaly_rows": _flag_rows(shown, names),
        "covered": sorted(covered_participants(context)),
        "anomalies_elsewhere": len(elsewhere),
        "anomaly_participants_elsewhere": sorted({_text(v) for v in elsewhere.get("participant_iso3", [])}),
        "new_rows": _new_since_rows(context),
        "again_rows": _new_since_rows(context, again=True),
        "composite_rows": _composite_rows(context.aois),
        "scene_groups": _scene_summary(context.scenes, names),
        "n_scenes": 0 if context.scenes is None else len(context.scenes),
        "thresholds": _threshold_rows(context.thresholds),
        "n_thresholds_hidden": _n_thresholds_hidden(context.thresholds),
        "detection": detection_sentences(context.site_models),
        "validation": _validation_rows(context.validation),
        "assessment": _assessment_view(context.assessment),
        "verdict_definitions": verdict_definitions(),
        "software": sorted(context.software.items()),
        "sources": sources,
        "stretch": tuple(_num(float(p), 2, strip=True) for p in fg.STRETCH_PERCENTILES),
    }


def _map_values(aoi_views: list[dict[str, Any]]) -> dict[str, Any]:
    """Leaflet's CSS and script, and the CSP source allowing that one script, when a map is shown."""
    if not any(v.get("interactive") for v in aoi_views):
        return {"csp_script": None, "map_script": None, "leaflet_css": None}
    css, script, source = map_assets()
    return {"csp_script": source, "map_script": script, "leaflet_css": css}


def _cited_figures(context: BulletinContext, shown_anomalies: Any, comparisons: list[dict[str, Any]]) -> Any:
    """The declared figures the bulletin uses: those of the years its cross-check compares (or
    flags), and the whole series of a participant whose anomalies it shows (the review judged
    each figure against the others)."""
    declared = context.declared_sources
    if declared is None or declared.empty:
        return declared
    years = {(c["participant_iso3"], int(c["year"])) for c in comparisons}
    series: set[str] = set()
    if shown_anomalies is not None and "participant_iso3" in shown_anomalies:
        series = {str(v) for v in shown_anomalies["participant_iso3"].dropna()}
    flags = context.flags
    if flags is not None and not flags.empty:
        for r in flags.itertuples():
            year = str(getattr(r, "period", ""))[:4]
            if year.isdigit():
                years.add((str(r.participant_iso3), int(year)))
    iso3 = declared["participant_iso3"].astype(str)
    year_col = pd.to_numeric(declared.get("year", declared.get("period")), errors="coerce")
    keep = [i in series or (i, int(y)) in years if pd.notna(y) else i in series
            for i, y in zip(iso3, year_col, strict=True)]
    return declared[keep]


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _html_to_pdf(html: str, *, base: Path) -> bytes:
    """Render with WeasyPrint as a tagged PDF/UA-1; only ``data:`` URIs may be fetched (no network,
    no files)."""
    # Function-level imports: WeasyPrint is a heavy optional import (Pango), deferred until a
    # PDF is wanted; its URL-fetcher API differs between versions.
    import weasyprint

    fetcher: Any
    try:
        from weasyprint.urls import URLFetcher  # WeasyPrint >= 68

        fetcher = URLFetcher(allowed_protocols={"data"})
    except ImportError:  # pragma: no cover - older WeasyPrint: function fetchers
        from weasyprint import default_url_fetcher

        def fetcher(url: str, *args: Any, **kwargs: Any) -> Any:
            if not url.startswith("data:"):
                raise ValueError(f"bulletin PDF may not load {url[:60]}")
            return default_url_fetcher(url, *args, **kwargs)

    document = weasyprint.HTML(string=html, base_url=str(base), url_fetcher=fetcher)
    # Tagged, accessible PDF (PDF/UA-1): structure tree, /MarkInfo, document language and title
    # from the HTML (<html lang>, <title>), alt texts of the figures.
    return bytes(document.write_pdf(pdf_variant="pdf/ua-1", pdf_tags=True))


def _provisional_obs(context: BulletinContext) -> int | None:
    """Clear observations from a change on below which a site is provisional
    (:func:`pipeline.sites.provisional`), from the run's thresholds; ``None`` when unknown or
    when an AOI file overrides either setting (then it differs between AOIs)."""
    keys = ("min_confirmations", "regrowth_min_obs")
    if any(str(t.get("section", "")).startswith("detect (") and t.get("key") in keys for t in context.thresholds or []):
        return None
    confirm = run_parameter(context.thresholds, "detect", "min_confirmations")
    regrow = run_parameter(context.thresholds, "detect", "regrowth_min_obs")
    if confirm is None or regrow is None:
        return None
    return int(confirm) + int(regrow)
