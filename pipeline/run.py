"""Orchestration: config -> one job per AOI -> outputs. The only place that computes.

``run_monitor`` checks the input (AOI files and their overrides, the imagery source),
creates the one ``dask.distributed`` client (a local cluster, or ``--scheduler ADDRESS``),
runs each AOI's workflow (:mod:`pipeline.workflow`: search, window cache, lazy cube,
one ``dask.compute``, sites) and hands the results to :mod:`pipeline.outputs`, which
writes every output atomically. A :class:`~pipeline.errors.MonitorError` in one AOI is
recorded and the others go on (exit status 1); anything else is a bug and propagates.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import odc.stac
from distributed import Client, LocalCluster

from . import acquire, search
from .aoi import read_aois
from .classify import SiteModel, feature_spec, load_site_model
from .config import MonitorConfig
from .errors import ConfigError, MonitorError, SearchError
from .jobs import AOIJob, monitoring_period, plan_jobs
from .outputs import RunInfo, RunReport, write_outputs
from .providers import get_provider
from .runfolder import RunFolder, failed_run_report
from .validate_inputs import preflight_inputs
from .workflow import radar_source, run_aoi

log = logging.getLogger("pipeline")

__all__ = ["RunReport", "configure_workers", "dask_client", "load_models", "preflight_radar", "preflight_source",
           "run_monitor"]


def run_monitor(
    cfg: MonitorConfig,
    *,
    truth: Path | None = None,
    today: dt.date | None = None,
) -> RunReport:
    """Run every stage for every AOI of ``cfg`` and write the outputs.

    Parameters
    ----------
    cfg
        Validated configuration (command-line overrides already applied).
    truth
        Optional ground-truth GeoJSON; when given, validation figures go into the
        bulletin and the report (the demo passes its scenario's truth).
    today
        Reference date for open-ended periods (tests pin it).

    Raises
    ------
    MonitorError
        Bad input found before anything is written (AOI files, unreachable source).
    """
    t0 = time.perf_counter()
    aois = read_aois(cfg.aois, max_area_km2=cfg.max_aoi_area_km2)
    # Per-AOI overrides from the AOI files are bad input like the config: checked now,
    # before anything is written.
    jobs = plan_jobs(aois, cfg, today=today)
    models = load_models(jobs)
    start, end, periods = monitoring_period(cfg, today=today)
    preflight_inputs(cfg, jobs, today=today)  # tables, static catalog, --out, period: before anything runs
    preflight_source(cfg)
    radar_down = preflight_radar(cfg)
    # The run lock on --out comes first (a run holding it is refused at once), then the client:
    # a scheduler that cannot be reached is bad input, and nothing may be written before bad
    # input is found, so nothing is written until folder.writing() and the lock file (and
    # folder) are removed again if the client fails (pipeline.runfolder).
    with RunFolder(cfg.out_dir) as folder, dask_client(cfg) as client, acquire.gdal_env(cfg.gdal_options):
        with folder.writing():  # dead runs' temporaries, RUN_INCOMPLETE marker, a fresh run.log
            log.info(
                "run: %d AOI(s), period %s..%s (baseline from %s), source %s",
                len(aois),
                start,
                end,
                start - dt.timedelta(days=cfg.detect.baseline_days),
                cfg.source.url,
            )
            configure_workers(client, cfg)
            dask_info = {
                "scheduler": "local" if not cfg.dask.scheduler else cfg.dask.scheduler,
                "scheduler_address": client.scheduler.address,
                "workers": len(client.scheduler_info()["workers"]),
            }
            results = [
                run_aoi(job, radar_down=radar_down, model=models.get(job.cfg.detect.site_model)) for job in jobs
            ]
            if all(r.error is not None for r in results):
                return failed_run_report(results, cfg.out_dir)  # no numbered bulletin for a failed run
            info = RunInfo(start=start, end=end, periods=periods, truth=truth, t0=t0, dask_info=dask_info)
            return write_outputs(results, aois, cfg, info)


def load_models(jobs: list[AOIJob]) -> dict[Path | None, SiteModel]:
    """The site classifiers the jobs name (``detect.site_model``), each loaded once and checked
    against the features the job's configuration computes.

    Raises
    ------
    ConfigError
        A model folder that is missing, tampered with, or trained on other features (one line).
    """
    models: dict[Path | None, SiteModel] = {}
    for job in jobs:
        path = job.cfg.detect.site_model
        if path is None or path in models:
            continue
        spec = feature_spec(job.cfg.features, baseline_days=job.cfg.detect.baseline_days)
        models[path] = load_site_model(path, spec=spec)
        log.info("site model %s: digest %s", path, models[path].card().get("model_sha256", "")[:12])
    return models


def preflight_source(cfg: MonitorConfig) -> None:
    """Fail fast, before writing anything, when the imagery source cannot be reached."""
    if search.is_static_source(cfg.source.url):
        path = cfg.source.url.removeprefix("file://")
        if not Path(path).exists():
            raise ConfigError(
                f"static catalog {path} does not exist; pass --source a STAC API URL or a catalog.json path"
            )
        return
    provider = get_provider(cfg.source)
    check = provider.probe(provider.url, what="imagery source")
    if not check.reachable:
        raise SearchError(f"cannot reach imagery source {check.endpoint}: {check.detail}")


def preflight_radar(cfg: MonitorConfig) -> str | None:
    """Probe a separate radar source once: the reason it is unreachable, else ``None``.

    Radar is optional, so an unreachable radar source is not an error: every AOI then
    runs optical-only and says why, without paying each AOI's retries and back-off.
    """
    if not cfg.radar.enabled or cfg.radar.source_url in (None, cfg.source.url):
        return None
    source = radar_source(cfg)
    if search.is_static_source(source.url):
        path = Path(source.url.removeprefix("file://"))
        return None if path.exists() else f"radar catalog {path} does not exist"
    provider = get_provider(source)
    check = provider.probe(provider.url, what="radar source")
    if check.reachable:
        return None
    log.warning("radar source unreachable, every AOI runs optical-only: %s", check.detail)
    return f"cannot reach radar source {check.endpoint}: {check.detail}"


@contextlib.contextmanager
def dask_client(cfg: MonitorConfig) -> Iterator[Any]:
    if cfg.dask.scheduler:
        try:
            client = Client(cfg.dask.scheduler, timeout="10s")
        except OSError as exc:
            raise MonitorError(
                f"cannot connect to Dask scheduler {cfg.dask.scheduler}: {exc}; check --scheduler"
            ) from None
        log.info("dask: joined scheduler %s (%d workers)", cfg.dask.scheduler, len(client.scheduler_info()["workers"]))
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=cfg.dask.n_workers,
        threads_per_worker=cfg.dask.threads_per_worker,
        memory_limit=cfg.dask.memory_limit,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    log.info("dask: local cluster, %d workers x %d threads", cfg.dask.n_workers, cfg.dask.threads_per_worker)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def configure_workers(client: Any, cfg: MonitorConfig) -> None:
    # GDAL options must reach the worker processes, where the reads happen.
    options: dict[str, Any] = dict(cfg.gdal_options)
    odc.stac.configure_rio(cloud_defaults=False, client=client, **options)
