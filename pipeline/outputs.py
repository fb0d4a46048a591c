"""Output assembly: per-AOI results -> tables, cross-check, bulletin, manifest, archive.

:func:`write_outputs` is the last step of :func:`pipeline.run.run_monitor`. Each helper
does one job: gather the site and activity tables, read the declared statistics, build the
scene list and the threshold annex, the bulletin context, the manifest, and archive the
numbered bulletin. Every file is written atomically (:mod:`pipeline.io`); the archive is
written last, so a bulletin number exists only for a complete run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import logging
import platform
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import rasterio

from . import bulletin as bl
from . import register, sites
from .aoi import PARAM_PROPERTIES
from .bulletin.i18n import N_
from .config import MonitorConfig, field_unit, threshold_table
from .crosscheck import crosscheck_production, review_statistics
from .declared import CrosscheckTables, DeclaredTable
from .evaluate import evaluate_sites, read_truth
from .http import redact_credentials
from .io import BackgroundWrites, relative_paths, write_csv, write_geojson, write_gpkg, write_json
from .jobs import aoi_overrides
from .numbering import archive_folder, bulletin_issue
from .precision import ACTIVITY_PRECISION, CROSSCHECK_PRECISION, SITE_PRECISION, round_table
from .site_history import compare_with_earlier, previous_sites, revision_changes, settings_changed
from .workflow import AOIResult

log = logging.getLogger("pipeline")

__all__ = ["RunReport", "listed_files", "previous_bulletin", "previous_sites", "remove_stale_outputs", "write_outputs"]

SOFTWARE = (
    "numpy",
    "xarray",
    "dask",
    "distributed",
    "rasterio",
    "odc-stac",
    "pystac",
    "pystac-client",
    "geopandas",
    "shapely",
    "scipy",
    "scikit-learn",
    "skops",
    "pandas",
    "weasyprint",
)

_ACTIVITY_COLUMNS = ["aoi_id", "period_start", "period_end", "disturbed_ha", "new_ha", "valid_fraction"]
_SITE_OUTPUT_COLUMNS = [*sites.SITE_COLUMNS, "n_occluded", "n_clear_after", "provisional", "undated",
                        *register.VERDICT_COLUMNS, "geometry"]


@dataclass
class RunReport:
    """Summary of a run, returned to the CLI."""

    out_dir: Path
    outputs: dict[str, Path]
    failures: dict[str, str]
    bulletin_number: int
    validation: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


@dataclass(frozen=True)
class RunInfo:
    """What the run as a whole knows besides the per-AOI results."""

    start: dt.date
    end: dt.date
    periods: Sequence[tuple[dt.date, dt.date]]
    truth: Path | None
    t0: float
    dask_info: dict[str, Any]
    tables: CrosscheckTables
    """The cross-check's tables, as the run's input checks read them
    (:func:`pipeline.validate_inputs.preflight_inputs`)."""


def write_outputs(results: list[AOIResult], aois: gpd.GeoDataFrame, cfg: MonitorConfig, info: RunInfo, *,
                  writes: BackgroundWrites | None = None) -> RunReport:
    """Write every output of a run into ``cfg.out_dir`` (see the README's output table);
    ``writes``: files still being written in the background (the AOIs' composites), waited
    for before the manifest."""
    out_dir = cfg.out_dir
    failures = {r.aoi_id: r.error for r in results if r.error is not None}
    all_sites, activity = site_table(results), activity_table(results)
    crosscheck, flags, anomalies, declared = _crosscheck(activity, aois, cfg, info.tables)
    validation = evaluate_sites(all_sites, read_truth(info.truth), aoi=aois) if info.truth is not None else None

    # bulletin.reissue: a re-run of a covered period revises that bulletin (pipeline.numbering).
    issue = bulletin_issue(out_dir, info.start.isoformat(), info.end.isoformat(),
                           number=cfg.bulletin.number, reissue=cfg.bulletin.reissue)
    number = issue.number
    # "Reported for the first time": in no earlier bulletin; "listed again": in an earlier one but
    # not in the last that processed its AOI (pipeline.site_history).
    since = compare_with_earlier(out_dir, all_sites["site_id"], before=number)

    # A revision shows the assessment of the issue it replaces (same number), if any.
    assessment = ((issue.revises and previous_assessment(out_dir, number))
                  or previous_assessment(out_dir, since.previous_number))
    outputs = _write_tables(all_sites, activity, crosscheck, pd.concat([flags, anomalies], ignore_index=True), out_dir,
                            as_of=info.end)
    outputs["sites_dismissed.geojson"] = write_dismissed(results, out_dir)
    software = software_versions()
    context = bl.BulletinContext(
        number=number,
        title=N_("WGM satellite monitoring bulletin"),  # translated by the template
        period_start=info.start,
        period_end=info.end,
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        distribution=cfg.bulletin.distribution,
        demonstration=cfg.bulletin.demonstration,
        aois=[_aoi_report(r, since.first_time, since.previous, listed_again=since.listed_again,
                          empty_activity=activity.iloc[0:0]) for r in results],
        crosscheck=crosscheck,
        flags=flags,
        anomalies=anomalies,
        declared_sources=declared.good,
        scenes=scene_table(results),
        thresholds=threshold_rows(cfg, results),
        validation=validation,
        software=software,
        config_digest=cfg.digest(),
        previous_number=since.previous_number,
        settings_changed=settings_changed(out_dir, since.previous_number, threshold_rows(cfg, results)),
        revision_changes=revision_changes(issue.revises, all_sites["site_id"]),
        revision=issue.revision,
        site_models=site_models(results),
        assessment=assessment,
        max_chips=cfg.bulletin.max_chips,
    )
    outputs.update(bl.render_bulletin(context, out_dir, pdf=cfg.bulletin.pdf,
                                       languages=cfg.bulletin.languages))
    if writes is not None:
        writes.wait()  # the manifest describes a complete folder
    # Hrefs relative to the output folder (or as the source gave them), never local absolute paths.
    manifest = relative_paths(build_manifest(results, cfg, info, context=context, outputs=outputs), out_dir)
    remove_stale_outputs(out_dir, keep=manifest)
    outputs["manifest.json"] = write_json(manifest, out_dir / "manifest.json")
    archive_bulletin(out_dir, number, outputs, revision=issue.revision)
    log.info("run finished: bulletin %d revision %d, %d site(s), %d failed AOI(s)", number, issue.revision,
             len(all_sites), len(failures))
    return RunReport(out_dir=out_dir, outputs=outputs, failures=failures, bulletin_number=number, validation=validation)


# --------------------------------------------------------------------------- tables


def site_table(results: Sequence[AOIResult]) -> gpd.GeoDataFrame:
    """Every successful AOI's sites in EPSG:4326, ``sites.geojson`` columns."""
    return _sites_4326([r.sites for r in results if r.error is None])


def dismissed_table(results: Sequence[AOIResult]) -> gpd.GeoDataFrame:
    """Sites analysts judged false alarms (``sites_dismissed.geojson``; :mod:`pipeline.register`)."""
    return _sites_4326([r.dismissed for r in results if r.error is None])


def write_dismissed(results: Sequence[AOIResult], out_dir: Path) -> Path:
    """``sites_dismissed.geojson``: as ``sites.geojson``, feature ``id`` = ``site_id`` and each
    column at its precision, so a dismissed site is addressed like any other (always written)."""
    dismissed = round_table(dismissed_table(results), SITE_PRECISION)
    return write_geojson(dismissed, out_dir / "sites_dismissed.geojson", id_column="site_id")


def _sites_4326(frames: Sequence[gpd.GeoDataFrame | None]) -> gpd.GeoDataFrame:
    # (a frame made before sites carried ``undated``: a site register's, a test's: not flagged)
    parts = [(f if "undated" in f else f.assign(undated=False)).to_crs(4326)[_SITE_OUTPUT_COLUMNS]
             for f in frames if f is not None and not f.empty]
    if not parts:
        return _empty_sites(crs=4326)
    out = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=4326)
    out["reviewed_on"] = [None if d is None or pd.isna(d) else str(d) for d in out["reviewed_on"]]
    return out


def activity_table(results: Sequence[AOIResult]) -> pd.DataFrame:
    """Every successful AOI's disturbed-area series (``activity.csv``)."""
    ok = [r for r in results if r.error is None]
    if not ok:
        return pd.DataFrame(columns=_ACTIVITY_COLUMNS)
    return pd.concat([r.activity for r in ok if r.activity is not None], ignore_index=True)


def scene_table(results: Sequence[AOIResult]) -> pd.DataFrame:
    """One row per scene used (Sentinel-2 then Sentinel-1, per AOI), for the scenes annex."""
    return pd.DataFrame(
        [
            {
                "aoi_id": r.aoi_id,
                "sensor": sensor,
                "item_id": it.id,
                "datetime": it.datetime.isoformat() if it.datetime else "",
                "cloud_cover": it.properties.get("eo:cloud_cover"),
                "href": it.assets[band].href if band in it.assets else "",
            }
            for r in results
            for sensor, band, items in (("Sentinel-2 L2A", "red", r.items), ("Sentinel-1 RTC", "vh", r.radar_items))
            for it in items
        ],
        columns=["aoi_id", "sensor", "item_id", "datetime", "cloud_cover", "href"],
    )


def threshold_rows(cfg: MonitorConfig, results: Sequence[AOIResult]) -> list[dict[str, Any]]:
    """Annex rows: every configured threshold (:func:`pipeline.config.threshold_table`), then
    per AOI the AOI files' overrides and the thresholds applied to its imagery (the
    configured value or the Otsu threshold found). The per-AOI rows' ``description`` is a
    message of the bulletin's catalog, its ``{placeholders}`` filled from ``description_args``
    (the annex translates it, then fills them)."""
    rows = threshold_table(cfg)
    for r in results:
        # the file's name: the reader's text names no path of the operator's machine (an outside tester)
        source = Path(str(r.row.get("source_file", ""))).name
        # the AOI file's own gravel thickness and grade ranges, which its carat estimates use (the
        # annex listed only the configured defaults: an outside reviewer could not reproduce them)
        for key in PARAM_PROPERTIES:
            value = r.row.get(key)
            if isinstance(value, (tuple, list)) and len(value) == 2:
                rows.append({
                    "section": f"crosscheck ({r.aoi_id})", "key": key, "value": tuple(value),
                    "unit": field_unit("crosscheck", key), "description": _OVERRIDE_DESCRIPTION,
                    "description_args": {"file": source}, "source": _AOI_FILE,
                })
        for section, values in aoi_overrides(r.row).items():
            for key, value in values.items():
                rows.append({
                    "section": f"{section} ({r.aoi_id})",
                    "key": key,
                    "value": value,
                    "unit": field_unit(section, key),
                    "description": _OVERRIDE_DESCRIPTION,
                    "description_args": {"file": source},
                    "source": _AOI_FILE,
                })
        for key, applied in r.thresholds.items():
            section, field = _APPLIED_FROM[key]
            rows.append({
                "section": f"applied ({r.aoi_id})",
                "key": key,
                "value": applied["value"],
                "unit": field_unit(section, field),
                "description": _APPLIED_DESCRIPTIONS[key],
                "source": _MEASURED if applied["method"] == "otsu" else _CONFIGURED,
            })
    return rows


#: The configuration field each applied threshold stands for (its unit is that field's).
_APPLIED_FROM: dict[str, tuple[str, str]] = {
    "ndvi_drop_threshold": ("detect", "ndvi_drop_min"),
    "vh_drop_threshold_db": ("radar", "vh_drop_min_db"),
}
# The per-AOI rows' wording: messages of the bulletin's catalog (tools/i18n_catalog.py reads them here).
_OVERRIDE_DESCRIPTION = N_("Set for this AOI in its AOI file ({file}), replacing the configured value.")
_AOI_FILE, _CONFIGURED, _MEASURED = N_("AOI file"), N_("configured"), N_("Otsu (1979), measured in this run")
_APPLIED_DESCRIPTIONS: dict[str, str] = {
    "ndvi_drop_threshold": N_(
        "NDVI drop below the baseline that counted as vegetation loss in this AOI: "
        "detect.ndvi_drop_min, or with detect.threshold_method otsu the Otsu threshold of the AOI's pooled "
        "NDVI drops, bounded by detect.otsu_ndvi_drop_floor and detect.otsu_ndvi_drop_ceiling."),
    "vh_drop_threshold_db": N_(
        "Sentinel-1 VH backscatter drop below the baseline that counted as change in "
        "this AOI: radar.vh_drop_min_db, or with radar.threshold_method otsu the Otsu threshold of the AOI's "
        "pooled VH drops, never below radar.otsu_floor_db."),
}


def previous_assessment(out_dir: Path, previous_number: int | None) -> dict[str, Any] | None:
    """The accuracy assessment of the previous bulletin's map (``assessment/estimate.json`` that
    ``python -m pipeline assess`` wrote into this folder for that bulletin), else ``None``."""
    folder = out_dir / "assessment"
    try:
        design = json.loads((folder / "design.json").read_text(encoding="utf-8"))
        estimate = json.loads((folder / "estimate.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    # The estimate names the bulletin whose map it assessed; design.json names the latest sample's,
    # which a sample drawn on a later bulletin and not yet labelled changes (an estimate written
    # before it named its bulletin: design.json's).
    assessed = estimate.get("bulletin_number", design.get("run")) if isinstance(estimate, dict) else None
    if previous_number is None or assessed != previous_number:
        return None
    return {**estimate, "bulletin_number": previous_number}


def site_models(results: Sequence[AOIResult]) -> list[dict[str, Any]]:
    """The site classifiers applied in this run (one entry per model digest), in AOI order."""
    seen: dict[Any, dict[str, Any]] = {}
    for r in results:
        if r.site_model is not None:
            entry = seen.setdefault(r.site_model.get("digest"), {**r.site_model, "aois": []})
            entry["aois"].append(r.aoi_id)
    return list(seen.values())


def detection_summary(results: Sequence[AOIResult]) -> dict[str, Any]:
    """How sites were decided: ``rules`` alone, or ``rules + site classifier`` (which model where)."""
    models = site_models(results)
    ok = [r for r in results if r.error is None]
    mode = "rules + site classifier" if models else "rules only"
    if models and any(r.site_model is None for r in ok):
        mode = "mixed: some AOIs rules only"
    return {"mode": mode, "site_models": models}


def software_versions() -> dict[str, str]:
    """Versions of Python, GDAL and the packages the results depend on."""
    out = {"python": platform.python_version()}
    for name in SOFTWARE:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    out["gdal"] = rasterio.__gdal_version__
    return out


# --------------------------------------------------------------------------- manifest and archive


def build_manifest(
    results: Sequence[AOIResult],
    cfg: MonitorConfig,
    info: RunInfo,
    *,
    context: bl.BulletinContext,
    outputs: dict[str, Path],
) -> dict[str, Any]:
    """``manifest.json``: items and hrefs used, config and digest, software, timings, AOI status.
    URLs lose their ``user:password@`` (a ``--source`` URL may carry them)."""
    return redact_credentials({
        "bulletin_number": context.number,
        "revision": context.revision,
        "generated_at": context.generated_at.isoformat(),
        "period": {
            "start": info.start.isoformat(),
            "end": info.end.isoformat(),
            "reporting_periods": [[a.isoformat(), b.isoformat()] for a, b in info.periods],
        },
        "source": {"url": cfg.source.url, "collection": cfg.source.collection, "naming": cfg.source.naming},
        "config_digest": cfg.digest(),
        "config": json.loads(cfg.model_dump_json()),
        "detection": detection_summary(results),
        "aois": {r.aoi_id: _manifest_aoi(r) for r in results},
        "items": _manifest_items(results, cfg),
        "software": context.software,
        "dask": info.dask_info,
        "validation": context.validation,
        "timings_s": {"total": round(time.perf_counter() - info.t0, 3)},
        "outputs": sorted(outputs),
    })


def previous_bulletin(out_dir: Path, *, before: int | None = None) -> tuple[int | None, set[str]]:
    """The last archived bulletin's number (below ``before`` when given), and the site ids
    "reported for the first time" is measured against (:func:`previous_sites`)."""
    number, sites = previous_sites(out_dir, before=before)
    return number, set(sites)


def listed_files(manifest: dict[str, Any], *, composites_of: set[str] | None = None) -> set[str]:
    """The files a run's manifest lists as its outputs, relative to its output folder: the
    tables, bulletins and figures (``outputs``) and the composites of each AOI (of the AOIs in
    ``composites_of`` only, when given)."""
    files = {str(f) for f in manifest.get("outputs") or [] if isinstance(f, str)}
    for aoi_id, aoi in (manifest.get("aois") or {}).items():
        if not isinstance(aoi, dict) or (composites_of is not None and aoi_id not in composites_of):
            continue
        for comp in aoi.get("composites") or []:
            if isinstance(comp, dict) and isinstance(comp.get("file"), str):
                files.add(comp["file"])
    return files


def remove_stale_outputs(out_dir: Path, *, keep: dict[str, Any]) -> list[Path]:
    """Remove the files the folder's current ``manifest.json`` lists that the manifest ``keep``
    (the run about to be committed) does not: a site GeoPackage, a chip, a PDF or a translation
    an earlier run wrote and this one did not would otherwise sit beside this run's outputs as
    if it were one of them. Composites are not archived, so only those of AOIs this run
    processed successfully are replaced (an AOI left out of this run, or failed in it, keeps
    its earlier composites). Only listed regular files inside ``out_dir`` and outside
    ``archive/`` are touched, never through a symbolic link; an unreadable manifest removes
    nothing. Done before the new manifest replaces the old, so a run killed in between removes
    them when it is run again."""
    try:
        previous = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(previous, dict):
        return []
    done = {a for a, v in (keep.get("aois") or {}).items() if isinstance(v, dict) and v.get("status") == "ok"}
    root = out_dir.resolve()
    removed = []
    for name in sorted(listed_files(previous, composites_of=done) - listed_files(keep)):
        path = out_dir / name
        parts = Path(name).parts
        if not parts or parts[0] in ("archive", "..") or Path(name).is_absolute() or path.is_symlink():
            continue
        if not path.parent.resolve().is_relative_to(root) or not path.is_file():
            continue
        path.unlink()
        removed.append(path)
    if removed:
        log.info("removed %d output(s) of an earlier run that this run did not write: %s", len(removed),
                 ", ".join(str(p.relative_to(out_dir)) for p in removed))
    return removed


def archive_bulletin(out_dir: Path, number: int, outputs: dict[str, Path], *, revision: int = 1) -> None:
    """Copy a complete run's outputs to ``archive/bulletin-NNNN/`` (``bulletin-NNNN-rR/`` for a
    revision; staged, then renamed)."""
    # The archive is written last: a bulletin number exists only for a complete run.
    final = out_dir / "archive" / archive_folder(number, revision)
    staging = out_dir / "archive" / f".{archive_folder(number, revision)}.part"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name, path in outputs.items():
        if path.is_file():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, staging / name)
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)


# --------------------------------------------------------------------------- helpers


def _crosscheck(
    activity: pd.DataFrame, aois: gpd.GeoDataFrame, cfg: MonitorConfig, tables: CrosscheckTables
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, DeclaredTable]:
    """Cross-check the activity against the declared statistics; review the statistics."""
    declared, trade = tables.declared, tables.trade
    for table in (declared, trade):
        for rejected in table.rejected:
            log.warning("declared statistics: rejected %s line %s: %s", rejected.file, rejected.line, rejected.reason)
    aoi_table = pd.DataFrame(aois.drop(columns="geometry"))
    crosscheck, flags = crosscheck_production(activity, aoi_table, declared.good, tables.windows,
                                              params=cfg.crosscheck)
    anomalies = review_statistics(declared.good, trade.good, params=cfg.crosscheck)
    return crosscheck, flags, anomalies, declared


def _write_tables(
    all_sites: gpd.GeoDataFrame, activity: pd.DataFrame, crosscheck: pd.DataFrame, flags: pd.DataFrame, out_dir: Path,
    *, as_of: dt.date,
) -> dict[str, Path]:
    """The data files, each column rounded to its precision (:mod:`pipeline.precision`); the
    GeoPackage even when no site is tracked (a run must not leave an earlier run's sites
    beside its own), stamped ``as_of`` (the period's end) so that the same run writes the same
    bytes."""
    outputs: dict[str, Path] = {}
    sites_out = round_table(all_sites, SITE_PRECISION)
    outputs["sites.geojson"] = write_geojson(sites_out, out_dir / "sites.geojson", id_column="site_id")
    outputs["activity.csv"] = write_csv(round_table(activity, ACTIVITY_PRECISION), out_dir / "activity.csv")
    outputs["crosscheck.csv"] = write_csv(round_table(crosscheck, CROSSCHECK_PRECISION), out_dir / "crosscheck.csv")
    outputs["flags.csv"] = write_csv(flags, out_dir / "flags.csv")
    outputs["sites.gpkg"] = write_gpkg(sites_out, out_dir / "sites.gpkg", layer="sites",
                                       date_columns=("first_seen", "last_seen", "reviewed_on"), last_change=as_of)
    return outputs


def _aoi_report(r: AOIResult, new_since: Sequence[str], previous: dict[str, str] | None = None, *,
                listed_again: Sequence[str] = (), empty_activity: pd.DataFrame) -> bl.AOIReport:
    """``previous``: the previous bulletin's sites (:func:`previous_sites`); those of this AOI
    that it no longer lists are ``gone_since_previous`` (none when it failed). ``new_since`` and
    ``listed_again``: the run's sites in no earlier bulletin, and those in an earlier bulletin
    but not in ``previous``."""
    row = r.row
    aoi_sites = r.sites if r.sites is not None else _empty_sites(crs=4326)
    own = set(r.sites["site_id"]) if r.sites is not None else set()
    gone = [] if r.error else sorted(s for s, aoi in (previous or {}).items() if aoi == r.aoi_id and s not in own)
    return bl.AOIReport(
        aoi_id=r.aoi_id,
        name=str(row.get("name", r.aoi_id)),
        participant=str(row.get("participant", "")),
        participant_iso3=str(row.get("participant_iso3", "")),
        sites=aoi_sites.to_crs(4326),
        sites_utm=aoi_sites,
        activity=r.activity if r.activity is not None else empty_activity,
        rgb_before=r.rgb_before,
        rgb_after=r.rgb_after,
        view_method=r.view_method,
        extent_utm=r.extent_utm,
        epsg=r.epsg,
        new_since_previous=[s for s in new_since if s in own],
        listed_again=[s for s in listed_again if s in own],
        gone_since_previous=gone,
        error=r.error,
        failure=r.failure or "failed",
        radar_status=r.radar_status,
        n_radar_scenes=len(r.radar_items),
        composites=r.composites,
        site_model=r.site_model,
        dismissed=r.dismissed.to_crs(4326) if r.dismissed is not None else None,
        boundary=r.boundary,
        season_views=r.season_views,
        uncovered_frac=r.uncovered_frac,
        coverage_warning=r.coverage_warning,
        skipped_items=len(r.skipped),
        confirmable_frac=r.confirmable_frac,
        confirmations=r.confirmations,
        participant_outside=r.participant_outside,
    )


def _empty_sites(*, crs: int) -> gpd.GeoDataFrame:
    """No site, with the columns' types of a table of sites (text, dates as text, numbers)."""
    numeric = {"area_ha": "float64", "confidence": "float64", "n_obs": "int64", "n_occluded": "int64",
               "n_clear_after": "int64", "provisional": "bool", "undated": "bool"}
    return gpd.GeoDataFrame({c: pd.Series([], dtype=numeric.get(c, object)) for c in _SITE_OUTPUT_COLUMNS[:-1]},
                            geometry=[], crs=crs)


def _manifest_aoi(r: AOIResult) -> dict[str, Any]:
    return {
        "status": "failed" if r.error else "ok",
        "error": r.error,
        "failure": (r.failure or "failed") if r.error else None,
        "timings_s": r.timings,
        "state": r.state,
        "n_items": len(r.items),
        "n_sites": 0 if r.sites is None else len(r.sites),
        "n_dismissed": 0 if r.dismissed is None else len(r.dismissed),
        "skipped_items": r.skipped,
        "uncovered_frac": None if r.uncovered_frac is None else round(r.uncovered_frac, 4),
        "confirmable_frac": None if r.confirmable_frac is None else round(r.confirmable_frac, 4),
        "participant_outside": r.participant_outside,
        "radar": {"status": r.radar_status, "n_items": len(r.radar_items)},
        "overrides": aoi_overrides(r.row),
        "composites": r.composites,
        "thresholds": r.thresholds,
        "n_candidates": r.n_candidates,
        "site_model": r.site_model,
    }


def _manifest_items(results: Sequence[AOIResult], cfg: MonitorConfig) -> list[dict[str, Any]]:
    return [
        {
            "aoi_id": r.aoi_id,
            "id": it.id,
            "datetime": it.datetime.isoformat() if it.datetime else None,
            "sensor": sensor,
            "assets": {k: it.assets[k].href for k in bands if k in it.assets},
        }
        for r in results
        for sensor, bands, items in (
            ("sentinel-2", cfg.acquire.bands, r.items),
            ("sentinel-1", cfg.radar.bands, r.radar_items),
        )
        for it in items
    ]
