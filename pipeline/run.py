"""Orchestration: config -> one job per AOI -> outputs. The only place that computes.

``run_monitor`` checks the input (AOI files and their overrides, the imagery source),
creates the one ``dask.distributed`` client (a local cluster, or ``--scheduler ADDRESS``;
:class:`pipeline.cluster.ClientHandle` starts a local one while the first graphs are built),
runs the AOIs' workflows together (:func:`run_aois`: each AOI is searched and fetched in
a client thread, its lazy graph (:func:`pipeline.workflow.prepare_aoi`) is submitted to
the cluster as futures as soon as it is built, and its sites are made
(:func:`pipeline.workflow.finish_aoi`) as its results arrive) and hands the results to
:mod:`pipeline.outputs`, which writes every output atomically. A
:class:`~pipeline.errors.MonitorError` in one AOI is recorded and the others go on (exit
status 1); anything else is a bug and propagates.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import importlib.util
import logging
import queue
import re
import threading
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import rasterio.errors
from dask.utils import key_split
from distributed import Future, KilledWorker

from . import acquire, interrupts, search
from .aoi import read_aois
from .aoi_radar import radar_source
from .cache import ItemFailure, resolve_cache_dir
from .cache_use import cache_in_use
from .classify import SiteModel, feature_spec, load_site_model
from .cluster import ClientHandle, configure_workers, dashboard_link, dask_client, worker_work
from .config import MonitorConfig
from .errors import (
    MonitorError,
    ResourcesError,
    SearchError,
    failure_kind,
    unreadable_imagery,
    unreadable_imagery_message,
    unreadable_imagery_text,
)
from .gil import responsive
from .graphs import optimise
from .heap import return_freed_memory
from .io import BackgroundWrites
from .jobs import AOIJob, monitoring_period, plan_jobs, warn_aois
from .outputs import RunInfo, RunReport, write_outputs
from .progress import RunProgress, SchedulerProgress
from .providers import get_provider
from .register import SiteRegister, register_path
from .runfolder import RunFolder, failed_run_report
from .validate_inputs import preflight_inputs
from .workflow import AOIResult, PreparedAOI, finish_aoi, prepare_aoi

log = logging.getLogger("pipeline")

__all__ = ["ClientHandle", "RunReport", "configure_workers", "dask_client", "load_models", "preflight_radar",
           "preflight_source", "run_aois", "run_monitor"]


def run_monitor(
    cfg: MonitorConfig,
    *,
    truth: Path | None = None,
    today: dt.date | None = None,
    progress: RunProgress | None = None,
    aois: gpd.GeoDataFrame | None = None,
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
    progress
        Where per-AOI progress goes (:class:`pipeline.progress.RunProgress`); default:
        lines through the ``pipeline.progress`` logger.
    aois
        The AOIs of ``cfg.aois`` as :func:`pipeline.aoi.read_aois` returned them, when the
        caller has read them already (the command line, to refuse a bad file before it imports
        this module); default: read now.

    Raises
    ------
    MonitorError
        Bad input found before anything is written (AOI files, unreachable source).

    Notes
    -----
    Sets glibc's malloc thresholds of this process as ``distributed``'s nanny sets a worker's,
    for the rest of the process's life (:func:`pipeline.heap.return_freed_memory`).
    """
    t0 = time.perf_counter()
    return_freed_memory()  # this process gives freed memory back, as the workers do (pipeline.heap)
    if aois is None:
        aois = read_aois(cfg.aois, max_area_km2=cfg.max_aoi_area_km2)
    # Per-AOI overrides from the AOI files are bad input like the config: checked now,
    # before anything is written.
    jobs = plan_jobs(aois, cfg, today=today)
    models = load_models(jobs)
    start, end, periods = monitoring_period(cfg, today=today)
    tables = preflight_inputs(cfg, jobs, today=today)  # tables, static catalog, --out, period: before anything runs
    preflight_source(cfg)
    radar_down = preflight_radar(cfg)
    # Analysts' verdicts (read only; a register that cannot be read is bad input).
    verdicts = SiteRegister(register_path(cfg)).latest()
    # The run lock on --out comes first (a run holding it is refused at once), then the client:
    # a scheduler that cannot be reached is bad input, and nothing may be written before bad
    # input is found, so nothing is written until folder.writing() and the lock file (and
    # folder) are removed again if the client fails (pipeline.runfolder). A local cluster
    # starts in the background while the AOIs are searched and their graphs built
    # (pipeline.cluster.ClientHandle).
    progress = progress if progress is not None else RunProgress("lines", n_aois=len(jobs))
    progress.n_aois = len(jobs)

    def ready(client: Any) -> None:
        dashboard = dashboard_link(client)
        if dashboard:
            note = "" if cfg.dask.scheduler or importlib.util.find_spec("bokeh") else " (install bokeh to see it)"
            progress.message(f"dask dashboard: {dashboard}{note}")

    # The local scheduler shares this process with the graph building: a short switch
    # interval keeps its event loop answering (pipeline.gil).
    # The cache is held shared for the run (pipeline.locks.cache_in_use): `cache clear` refuses meanwhile.
    with responsive(), RunFolder(cfg.out_dir) as folder, ClientHandle(cfg, on_ready=ready) as handle, \
            cache_in_use(resolve_cache_dir(cfg.cache_dir)), acquire.gdal_env(cfg.gdal_options):
        # dead runs' temporaries, RUN_INCOMPLETE marker, a fresh run.log; the composites are
        # written in the background while the sites and the bulletin are made, all before the
        # manifest (and before the block ends, whatever happens)
        with folder.writing(), BackgroundWrites() as writes:
            log.info(
                "run: %d AOI(s), period %s..%s (baseline from %s), source %s",
                len(aois),
                start,
                end,
                start - dt.timedelta(days=cfg.detect.baseline_days),
                cfg.source.url,
            )
            warn_aois(jobs, cfg)  # now, so that run.log has it too
            try:
                results = run_aois(handle, jobs, radar_down=radar_down, models=models, progress=progress,
                                   in_flight=cfg.dask.aois_in_flight, gdal_options=cfg.gdal_options,
                                   verdicts=verdicts, writes=writes)
            finally:
                progress.close()
            client = handle.get()
            dask_info = {
                "scheduler": "local" if not cfg.dask.scheduler else cfg.dask.scheduler,
                "scheduler_address": client.scheduler.address,
                "workers": len(client.scheduler_info()["workers"]),
            }
            if not cfg.dask.scheduler:  # a shared cluster's counters hold other clients' work too
                dask_info.update(worker_work(client))
            interrupts.raise_if_interrupted()  # a Ctrl-C lost in a finaliser: write nothing more
            with writes.paused():  # the composites wait while the workers stop
                handle.release()  # the results are in: the workers go before the outputs are written
            if all(r.error is not None for r in results):
                writes.wait()
                return failed_run_report(results, cfg.out_dir)  # no numbered bulletin for a failed run
            interrupts.raise_if_interrupted()
            info = RunInfo(start=start, end=end, periods=periods, truth=truth, t0=t0, dask_info=dask_info,
                           tables=tables)
            return write_outputs(results, aois, cfg, info, writes=writes)


def run_aois(
    client: Any | ClientHandle,
    jobs: list[AOIJob],
    *,
    radar_down: str | None = None,
    models: dict[Path | None, SiteModel] | None = None,
    progress: RunProgress | None = None,
    in_flight: int = 8,
    gdal_options: dict[str, str] | None = None,
    verdicts: Any = None,
    writes: BackgroundWrites | None = None,
) -> list[AOIResult]:
    """Run the AOIs together on ``client``'s cluster; results in the order of ``jobs``.

    Up to ``in_flight`` AOIs at a time are searched and fetched, each in a client thread
    (I/O: GDAL and requests release the GIL); as soon as an AOI's lazy graph is built it is
    submitted (:meth:`pipeline.graphs.Submission.submit`; futures: the scheduler interleaves the AOIs' tasks on
    every worker), and each AOI's sites are made in this thread as its futures finish. A
    :class:`MonitorError` of one AOI (search, fetch, graph, computation or sites) is
    recorded on its result and the others go on; anything else cancels the rest and
    propagates. ``in_flight=1`` runs the AOIs one after another. ``verdicts``: the site
    register's latest verdicts, applied to each AOI's sites (:func:`pipeline.workflow.finish_aoi`).
    ``writes``: where the AOIs' composites are queued (else written as each AOI finishes).
    ``client``: a ``distributed.Client``, or a :class:`pipeline.cluster.ClientHandle` whose
    cluster may still be starting (the first AOI's search and graph do not wait for it).
    """
    handle = client if isinstance(client, ClientHandle) else None

    def cluster() -> Any:  # the Client (waits for a handle's cluster to start)
        return handle.get() if handle is not None else client

    models = models or {}
    progress = progress if progress is not None else RunProgress("off")
    results: list[AOIResult | None] = [None] * len(jobs)
    events: queue.Queue[tuple[str, int, Any]] = queue.Queue()
    slots = threading.Semaphore(max(1, in_flight))
    stop = threading.Event()

    def prepare(i: int, job: AOIJob) -> None:
        slots.acquire()
        if stop.is_set():
            slots.release()
            return
        try:
            prepare_one(i, job)
        except BaseException as exc:  # noqa: BLE001 - a bug anywhere here: raised in the main thread, which
            events.put(("bug", i, exc))  # waits for this AOI's event (it waited forever when none came)

    def prepare_one(i: int, job: AOIJob) -> None:
        result = AOIResult.for_job(job)
        try:
            with acquire.gdal_env(gdal_options or {}):
                prepared = prepare_aoi(job, radar_down=radar_down, model=models.get(job.cfg.detect.site_model),
                                       result=result, progress=progress, skip=skips.get(i))
            submission = optimise(prepared.lazy)  # on the client, while a local cluster may still start
            outs = submission.submit(cluster())  # the graph is ready: now it needs the cluster
        except MonitorError as exc:
            events.put(("failed", i, (result, exc)))
            return
        except BaseException as exc:  # a bug: re-raised in the main thread
            events.put(("bug", i, exc))
            return
        futures = [o for o in outs if isinstance(o, Future)]
        watcher = SchedulerProgress(cluster(), futures, aoi_id=job.aoi_id, progress=progress)
        tick = time.perf_counter()
        events.put(("submitted", i, (prepared, outs, watcher, tick)))
        if not futures:
            events.put(("computed", i, None))
        left = [len(futures)]
        lock = threading.Lock()

        def done(_: Any) -> None:
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                events.put(("computed", i, None))

        for fut in futures:
            fut.add_done_callback(done)

    def prepare_again(i: int, job: AOIJob) -> None:  # in the AOI's slot, which it still holds
        if stop.is_set():
            return
        try:
            prepare_one(i, job)
        except BaseException as exc:  # noqa: BLE001 - as in prepare()
            events.put(("bug", i, exc))

    # Not in the pool: its threads may all be waiting for a slot, and this AOI holds one.
    again_threads: list[threading.Thread] = []

    # items each AOI leaves out because an image of theirs could not be decoded (then computed again)
    skips: dict[int, dict[str, ItemFailure]] = {}
    submitted: dict[int, tuple[PreparedAOI, list[Any], SchedulerProgress, float]] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max(1, min(in_flight, len(jobs))), thread_name_prefix="kp-aoi")
    try:
        for i, job in enumerate(jobs):
            pool.submit(prepare, i, job)
        remaining = len(jobs)
        while remaining:
            kind, i, payload = events.get()
            if kind == "bug":
                raise payload
            if kind == "submitted":
                submitted[i] = payload
                continue
            failure: str | None = None  # the kind, when exc alone does not tell it
            again = False  # computed again without an item whose image cannot be decoded
            if kind == "failed":
                result, exc = payload
            else:
                prepared, outs, watcher, tick = submitted.pop(i)
                watcher.stop()
                result, exc = prepared.result, None
                futures = [o for o in outs if isinstance(o, Future)]
                try:
                    computed = [cluster().gather(o) if isinstance(o, Future) else o for o in outs]
                    result.timings["compute_s"] = time.perf_counter() - tick
                    progress.end(result.aoi_id, "compute")
                    finish_aoi(prepared, computed, verdicts=verdicts, writes=writes)
                except (MonitorError, rasterio.errors.RasterioIOError) as err:
                    # RasterioIOError: an image that passed the window cache's checks but cannot
                    # be decoded (corrupt tiles): bad data, not a bug; this AOI fails, not the run.
                    exc = err
                    prepared.abandon()
                    again = isinstance(err, rasterio.errors.RasterioIOError) and skip_unreadable(
                        prepared, unreadable_imagery_text(err), skips.setdefault(i, {}))
                except KilledWorker as err:  # resources, not a bug: this AOI fails, not the run
                    exc = ResourcesError(killed_workers_message(err, prepared.job.cfg))
                    prepared.abandon()
                except Exception as err:
                    if not unreadable_imagery(err):  # a bug: the run ends with it
                        raise
                    # the same, as a worker's exception comes back (errors.unreadable_imagery)
                    exc = MonitorError(unreadable_imagery_message(err))
                    failure = "imagery_unreadable"
                    prepared.abandon()
                    again = skip_unreadable(prepared, unreadable_imagery_text(err), skips.setdefault(i, {}))
                finally:
                    cluster().cancel(futures)
            if again:  # the same AOI without that item: its slot stays taken, it is not done yet
                thread = threading.Thread(target=prepare_again, args=(i, jobs[i]), name="kp-aoi-again", daemon=True)
                again_threads.append(thread)
                thread.start()
                continue
            if exc is not None:
                result.error = " ".join(str(exc).split())
                result.failure = failure or failure_kind(exc)
                log.error("AOI %s failed: %s", result.aoi_id, result.error)
            progress.aoi_done(result.aoi_id, "ok" if exc is None else f"failed: {result.error}")
            results[i] = result
            remaining -= 1
            slots.release()
    except BaseException:
        stop.set()
        for _prepared, outs, watcher, _tick in submitted.values():
            watcher.stop()
            cluster().cancel([o for o in outs if isinstance(o, Future)])
        raise
    finally:
        for _ in range(len(jobs)):
            slots.release()  # unblock preparers still waiting, so the pool can shut down
        pool.shutdown(wait=True)
        for thread in again_threads:
            thread.join()
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def skip_unreadable(prepared: PreparedAOI, message: str, skipped: dict[str, ItemFailure]) -> bool:
    """Whether the AOI of ``prepared``, whose computation failed with ``message`` (an image that
    cannot be decoded, named by :mod:`pipeline.read_errors`), is to be computed again without
    the item of that image: the file is one of the item's assets, the AOI has skipped fewer
    than ``acquire.max_unreadable_items`` such items, and others are left. The item is then
    added to ``skipped`` (by id, with the reason) and a warning logged."""
    job = prepared.job
    if len(skipped) >= job.cfg.acquire.max_unreadable_items or len(prepared.cube.items) < 2:
        return False
    for item in prepared.cube.items:
        for band, asset in item.assets.items():
            path = asset.href.removeprefix("file://")
            if path and re.search(rf"(^|[\s'\"]){re.escape(path)}($|[\s'\"(:;])", message):
                if item.id in skipped:
                    return False
                skipped[item.id] = ItemFailure(item.id, band, path, message[:300])
                log.warning("AOI %s: item %s left out, its %s image could not be decoded (%d of at most %d); "
                            "computing the AOI again without it", job.aoi_id, item.id, band, len(skipped),
                            job.cfg.acquire.max_unreadable_items)
                return True
    return False


def killed_workers_message(exc: KilledWorker, cfg: MonitorConfig) -> str:
    """One line for an AOI whose computation ended in ``distributed``'s ``KilledWorker``: a task
    of it was running on each worker that died, as many times as the scheduler allows. Names
    the task, the likely cause and the settings to change."""
    log.debug("dask: %s", exc)  # names the last worker
    key = getattr(exc, "task", None) or (exc.args[0] if exc.args else None)
    name = key_split(key) if key is not None else "?"  # the task's name without its token
    where = f"Dask workers died while running its task {name}"
    if cfg.dask.scheduler:
        cause = "most often a worker over its memory limit; raise the workers' memory"
    elif cfg.dask.memory_limit is None:
        cause = ("most often the machine running out of memory (dask.memory_limit is unset); set "
                 "dask.memory_limit, or lower dask.n_workers")
    else:
        cause = (f"most often a worker over its memory limit (dask.memory_limit: {cfg.dask.memory_limit}); "
                 "raise dask.memory_limit")
    return f"{where}, {cause}, or lower acquire.chunk_px ({cfg.acquire.chunk_px} px) so each task holds less"


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
    """Fail fast, before writing anything, when a remote imagery source cannot be reached. A
    static catalog is checked, whole, by the input checks that precede this
    (:func:`pipeline.validate_inputs.preflight_inputs`, ``preflight_dry_run``)."""
    if search.is_static_source(cfg.source.url):
        return
    provider = get_provider(cfg.source)
    check = provider.probe(provider.url, what="imagery source")
    if not check.reachable:
        reason = check.detail.removeprefix("imagery source unreachable: ")
        raise SearchError(f"cannot reach imagery source {check.endpoint}: {reason}; check --source (or source.url) "
                          "and the network, and run again")


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
