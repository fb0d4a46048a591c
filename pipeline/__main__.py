"""Command line: ``python -m pipeline monitor | demo | evaluate``.

Exit status: 0 success; 1 the run finished but one or more AOIs failed (each
listed, the others complete) or the imagery source could not be reached; 2 bad
input or configuration (one line naming the file and field, nothing written).

Each subcommand imports the stages it runs inside its handler: ``--help``, ``evaluate`` and
``cache`` then start without importing Dask, distributed, GDAL or WeasyPrint (seconds each).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import interrupts
from .cli_support import (
    OneLineParser,
    held_notes,
    hold_warnings,
    install_console_log,
    missing_reason,
    release_warnings,
    report_error,
    warnings_as_log_lines,
)
from .errors import InputDataError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / "configs" / "monitor.yaml"
DEMO_CONFIG = REPO_ROOT / "configs" / "demo.yaml"


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from None


def _path(text: str) -> Path:
    """A path option's value; an empty one (``--out ""``, an unset shell variable) would read
    as the current folder, and a run would write into it; ``-`` would be a file or folder
    named ``-`` where the user meant a standard stream."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is an empty path; name a file or folder ('.' for this one)")
    if text == "-":  # many tools read it as standard input or output; none of these options do
        raise argparse.ArgumentTypeError("'-' (standard input or output) is not supported here; give a file or "
                                         "folder path (./- for one named '-')")
    return Path(text)


def _source(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give an http(s) STAC API root or the path of a static catalog.json")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m pipeline",
        description="Satellite monitoring of artisanal diamond mining for the KP Working Group on Monitoring.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress lines or bar: warnings, errors and results only"
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (for developers)")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{monitor,scenes,train,assess,review,demo,evaluate,cache,sources}"
    )
    _add_monitor(sub)
    _add_scenes(sub)
    _add_train(sub)
    _add_assess(sub)
    _add_review(sub)
    _add_demo(sub)
    _add_evaluate(sub)
    _add_cache(sub)
    _add_sources(sub)
    for cmd in sub.choices.values():  # also accepted after the subcommand
        cmd.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        cmd.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        cmd.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _add_run_options(cmd: argparse.ArgumentParser) -> None:
    """The options of a run over AOIs and a period (``monitor``; the contract in DESIGN.md)."""
    cmd.add_argument("--config", type=_path, default=DEFAULT_CONFIG, help="YAML config (default: configs/monitor.yaml)")
    cmd.add_argument(
        "--aoi", type=_path, action="append", help="AOI GeoJSON file; repeat for several (overrides config aois)"
    )
    cmd.add_argument("--source", type=_source, help="STAC API root URL or static catalog.json / collection.json path")
    cmd.add_argument("--start", type=_date, help="first day of the monitoring period (YYYY-MM-DD)")
    cmd.add_argument("--end", type=_date, help="last day of the monitoring period (YYYY-MM-DD)")
    cmd.add_argument("--cache", type=_path, help="cache folder for AOI windows (overrides config cache_dir)")
    cmd.add_argument("--scheduler", help="address of a running dask.distributed scheduler (tcp://host:port)")


def _add_monitor(sub: Any) -> None:
    mon = sub.add_parser(
        "monitor",
        help="search, fetch, detect, cross-check and write a bulletin",
        description="Run every stage for every AOI and write the bulletin and data files.",
    )
    _add_run_options(mon)
    mon.add_argument("--out", type=_path, help="output folder (overrides config out_dir)")
    mon.add_argument(
        "--model",
        type=_path,
        help="trained site classifier folder (python -m pipeline train); overrides detect.site_model",
    )


def _add_scenes(sub: Any) -> None:
    scenes = sub.add_parser(
        "scenes",
        help="dry run: the scenes a monitor run would use, their cloud cover and cost; writes nothing",
        description="Search every AOI as monitor would and list, per AOI, each scene's date, its cloud "
        "cover over the AOI (from SCL where cached or local, else the item's metadata), the bytes still "
        "to fetch (estimated) and the baseline coverage. Nothing is written.",
    )
    _add_run_options(scenes)
    scenes.add_argument("--json", action="store_true", help="print JSON instead of the table")


def _add_train(sub: Any) -> None:
    train = sub.add_parser(
        "train",
        help="train the site classifier on analysts' label polygons",
        description="Run the candidate generator over the AOIs and period (the monitor's options), "
        "label each candidate from the label polygons, and train a calibrated gradient-boosted "
        "classifier with spatially grouped cross-validation; write the model, its card and digest.",
    )
    _add_run_options(train)
    train.add_argument(
        "--labels", type=_path,
        help="label polygons (GeoJSON, EPSG:4326) with property label = mining | not_mining (optional class)",
    )
    train.add_argument(
        "--from-register", nargs="?", const=True, default=None, metavar="REGISTER",
        help="also learn from analysts' verdicts in the site register (confirmed = mining, false_alarm = "
        "not_mining); default register: review.register_path, else site_register.sqlite in the output folder",
    )
    train.add_argument("--out", type=_path, required=True, help="model folder to write (model.skops, model_card.json)")


def _add_assess(sub: Any) -> None:
    assess = sub.add_parser(
        "assess",
        help="accuracy and area with confidence intervals (Olofsson et al. 2014)",
        description="sample: draw a stratified random sample of a run's map (sites, a buffer ring, "
        "stable land) with a before/after chip per point, for an analyst to label; estimate: the "
        "error matrix, accuracies and the area of mining with its 95 %% confidence interval.",
    )
    assess.add_argument("action", choices=("sample", "estimate"))
    assess.add_argument("--run", type=_path, required=True, help="output folder of a monitor run")
    assess.add_argument("--n", type=int, help="sample: total points (default: the sample-size formula)")
    assess.add_argument("--labels", type=_path, help="estimate: the labelled sample.csv")


def _add_review(sub: Any) -> None:
    review = sub.add_parser(
        "review",
        help="record analysts' verdicts on sites in the site register",
        description="record: one verdict on one site of a run; import: a CSV of verdicts (site_id, "
        "verdict, analyst[, date, note]); list: the run's sites with their latest verdicts. Verdicts are "
        "confirmed, false_alarm or uncertain; a false alarm never returns as a new site.",
    )
    review.add_argument("action", choices=("record", "import", "list"))
    review.add_argument("--run", type=_path, required=True, help="output folder of a monitor run")
    review.add_argument("--register", type=_path,
                        help="site register (default: the run's review.register_path, else "
                        "site_register.sqlite in the run's folder)")
    review.add_argument("--site", help="record: the site_id judged")
    review.add_argument("--verdict", choices=("confirmed", "false_alarm", "uncertain"), help="record: the verdict")
    review.add_argument("--analyst", help="record: who judged (kept in the register only)")
    review.add_argument("--note", default="", help="record: why (free text)")
    review.add_argument("--date", type=_date, help="record: date of the judgement (default: today)")
    review.add_argument("--verdicts", type=_path,
                        help="import: CSV with columns site_id, verdict, analyst[, date, note]")


def _add_demo(sub: Any) -> None:
    demo = sub.add_parser(
        "demo",
        help="offline: build the bundled scenario, then run monitor on it",
        description="Write the synthetic demo scenario (COGs + static STAC catalog) and run the "
        "whole pipeline on it, then print accuracy against its ground truth.",
    )
    demo.add_argument("--out", type=_path, default=Path("out/demo"), help="output folder (default: out/demo)")
    demo.add_argument("--config", type=_path, default=DEMO_CONFIG, help="YAML config (default: configs/demo.yaml)")
    demo.add_argument("--scheduler", help="address of a running dask.distributed scheduler")


def _add_evaluate(sub: Any) -> None:
    ev = sub.add_parser(
        "evaluate",
        help="site-level precision / recall / F1 against ground truth",
        description="Compare a sites.geojson with a truth GeoJSON (kind = pit | distractor).",
    )
    ev.add_argument("--sites", type=_path, required=True, help="sites.geojson written by monitor")
    ev.add_argument("--truth", type=_path, required=True, help="truth GeoJSON")
    ev.add_argument(
        "--aoi",
        type=_path,
        action="append",
        help="AOI GeoJSON the sites were detected in (repeatable): truth is clipped to it",
    )


def _add_cache(sub: Any) -> None:
    cache = sub.add_parser(
        "cache",
        help="show or free the local cache of AOI windows",
        description="Show (info) or delete (clear) the window cache, or delete only the incremental state "
        "that the latest run of its AOI did not use (prune: superseded confirmation states and composites, "
        "dates stored under other settings): --cache, else cache_dir in --config, else "
        "$KP_MONITOR_CACHE_DIR, else the user cache directory (~/.cache/kp-monitor).",
    )
    cache.add_argument("action", choices=("info", "clear", "prune"))
    cache.add_argument("--cache", type=_path, help="cache folder (overrides config cache_dir)")
    cache.add_argument("--config", type=_path, default=DEFAULT_CONFIG, help="YAML config whose cache_dir to use")


def _add_sources(sub: Any) -> None:
    src = sub.add_parser(
        "sources",
        help="check that the configured imagery source is reachable and authorised",
        description="Probe each endpoint of the configured provider (catalogue, token service, "
        "OData) with the credentials from the environment. No secret is printed.",
    )
    src.add_argument("action", choices=("check",))
    src.add_argument("--config", type=_path, default=DEFAULT_CONFIG, help="YAML config (default: configs/monitor.yaml)")
    src.add_argument("--source", type=_source,
                     help="STAC API root URL or static catalog path (overrides config source.url)")


def main(argv: Sequence[str] | None = None, *, early_fork_server: bool | None = None) -> int:
    """The command line. ``early_fork_server`` (default: when ``argv`` is ``None``, i.e. a
    process's own command line): ``monitor`` and ``demo`` start the local cluster's fork server
    as soon as the configuration is read (:func:`pipeline.workers.start_fork_server`)."""
    try:
        return _main(argv, early_fork_server=argv is None if early_fork_server is None else early_fork_server)
    except KeyboardInterrupt as exc:  # Ctrl-C before the command's own handling: imports, parsing, set-up
        return report_error(exc, debug="--debug" in (sys.argv[1:] if argv is None else argv))


def _main(argv: Sequence[str] | None, *, early_fork_server: bool = False) -> int:
    if sys.stderr is None:  # started with stderr closed: errors must not land in stdout (scenes --json)
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (for the process's life)
    for stream in (sys.stdout, sys.stderr):  # a path with "é" on an ASCII terminal: escaped, not a crash
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    parser = build_parser()
    args = parser.parse_args(argv)
    args.early_fork_server = early_fork_server
    if args.quiet and args.verbose:  # before or after the subcommand: one check for both places
        parser.error("-q/--quiet and -v/--verbose ask for opposite things; give one of them")
    if sys.stdout is None:  # started with ``>&-``: every print would vanish, the status still 0
        print("error: standard output is closed; give the command one (> FILE, or > /dev/null to discard "
              "what it prints)", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s", stream=sys.stderr
    )
    logging.getLogger("pipeline").setLevel(logging.INFO)
    if args.command in ("demo", "train"):  # monitor: once its AOI files are read (_monitor)
        _import_distributed(verbose=args.verbose)
    _quieten_libraries(verbose=args.verbose)
    progress = _console_progress(quiet=args.quiet, verbose=args.verbose)
    args.progress = progress
    warnings_as_log_lines()
    interrupts.install()
    hold_warnings()  # until the command speaks: a refused command's warnings go into its one error line
    code = _run_command(args)
    release_warnings()
    if code not in (130, 143) and interrupts.interrupted():  # a signal whose exception was lost (a finaliser)
        return report_error(interrupts.pending(), debug=args.debug)
    return code


def _run_command(args: argparse.Namespace) -> int:
    try:
        if args.command == "monitor":
            return _monitor(args)
        if args.command == "scenes":
            return _scenes(args)
        if args.command == "train":
            return _train(args)
        if args.command == "assess":
            return _assess(args)
        if args.command == "review":
            return _review(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "cache":
            return _cache(args)
        if args.command == "sources":
            return _sources(args)
        return _evaluate(args)
    except (Exception, KeyboardInterrupt) as exc:  # one line (exit 1 or 2), the traceback with --debug
        if interrupts.interrupted() and not isinstance(exc, KeyboardInterrupt):
            # What the signal's exception became on its way out: Ctrl-C during an import that
            # builds a class ends as "RuntimeError: Error calling __set_name__" (matplotlib's
            # Axes, seen 2 s into a run). The signal is what happened: one line, exit 130/143.
            if args.debug:
                traceback.print_exception(exc, file=sys.stderr)
            exc = interrupts.pending()
        return report_error(exc, debug=args.debug, notes=held_notes())


def _import_distributed(*, verbose: bool) -> None:
    """Import ``distributed``, which sets its own loggers to INFO as it is imported, and quieten
    them again (the run log says what matters)."""
    import distributed  # noqa: F401

    _quieten_libraries(verbose=verbose)


def _quieten_libraries(*, verbose: bool) -> None:
    for name in ("distributed", "tornado", "bokeh", "fontTools", "weasyprint"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.ERROR)


def _console_progress(*, quiet: bool = False, verbose: bool = False) -> Any:
    """The run's progress reporter (a bar on a terminal, else lines; nothing with ``-q``)
    and the console handler of the ``pipeline`` logger, which writes above the bar
    (credentials redacted, HTTP retries to ``run.log`` only unless ``-v``)."""
    from .progress import RunProgress

    progress = RunProgress("off" if quiet else None, stream=sys.stderr)
    handler = install_console_log(sys.stderr, verbose=verbose, handler=progress.console_handler())
    if quiet:  # a filter, not the handler's level: the lines it drops still release held warnings
        handler.addFilter(lambda record: record.levelno >= logging.WARNING)
    return progress


def _monitor(args: argparse.Namespace) -> int:
    from .config import load_config

    overrides = {
        **_run_overrides(args),
        "out_dir": str(args.out.resolve()) if args.out else None,
        "detect.site_model": str(args.model.resolve()) if args.model else None,
    }
    cfg = load_config(args.config, **overrides)
    # The AOI files are read before the run's modules are imported (seconds): a bad one is
    # refused in about a second, and no fork server is started for it.
    from .aoi import read_aois

    aois = read_aois(cfg.aois, max_area_km2=cfg.max_aoi_area_km2)
    _import_distributed(verbose=args.verbose)
    with _early_fork_server(args, cfg):
        from .run import run_monitor

        report = run_monitor(cfg, progress=args.progress, aois=aois)
    return _finish(report)


@contextlib.contextmanager
def _early_fork_server(args: argparse.Namespace, cfg: Any) -> Iterator[None]:
    """The local cluster's fork server started before the run's modules are imported (about
    2 s on one core), so that its own imports run meanwhile on the other
    (:func:`pipeline.workers.start_fork_server`); stopped on exit if the run never started its
    cluster (refused input). Only for a local cluster with the ``forkserver`` start method."""
    from . import workers

    if args.early_fork_server and not cfg.dask.scheduler and cfg.dask.start_method == "forkserver":
        workers.start_fork_server()
    try:
        yield
    finally:
        workers.stop_fork_server()


def _scenes(args: argparse.Namespace) -> int:
    from .config import load_config
    from .scenes import format_scenes, plan_scenes, scenes_json

    cfg = load_config(args.config, **_run_overrides(args))
    plans = plan_scenes(cfg)
    print(scenes_json(plans) if args.json else format_scenes(plans), end="" if not args.json else "\n")
    for plan in plans:
        if plan.error:
            print(f"failed: AOI {plan.aoi_id}: {plan.error}", file=sys.stderr)
    return 1 if any(p.error for p in plans) else 0


def _train(args: argparse.Namespace) -> int:
    from .classify import model_summary
    from .config import load_config
    from .register import SiteRegister, register_path
    from .training import train_model

    cfg = load_config(args.config, **_run_overrides(args))
    register = None
    if args.from_register is not None:
        register = SiteRegister(register_path(cfg) if args.from_register is True else Path(args.from_register))
    labels = args.labels.resolve() if args.labels else None
    report = train_model(cfg, labels=labels, register=register, out_dir=args.out.resolve())
    print(f"wrote {report.model_dir}")
    for line in _cv_lines(model_summary(report.model)["cv"]):
        print(line)
    for aoi_id, message in sorted(report.failures.items()):
        print(f"failed: AOI {aoi_id}: {message}", file=sys.stderr)
    return report.exit_code


def _assess(args: argparse.Namespace) -> int:
    from .assess import estimate_run, sample_run

    if args.action == "sample":
        for path in sample_run(args.run.resolve(), n=args.n).values():
            print(f"wrote {path}")
        return 0
    if args.labels is None:
        raise_input("assess estimate needs --labels FILE.csv (the sample.csv with its label column filled)")
    result = estimate_run(args.run.resolve(), args.labels.resolve())
    print(f"excavated area {result['area_ha']} ha +- {result['area_ci95_ha']} (95 % CI, n = {result['n_points']} "
          "checked points)")
    for key in ("overall_accuracy", "users_accuracy", "producers_accuracy"):
        print(f"{key}: {result[key]}")
    if result.get("unanimous_strata"):
        low, high = result["area_range_conservative_ha"]
        print(f"conservative range (interval plus what the sample cannot see): {low} - {high} ha")
    for stratum, info in sorted(result.get("unanimous_strata", {}).items()):
        print(f"note: every {stratum} point is {info['label']}; the interval cannot weigh what {info['n']} points "
              f"miss: up to {info['other_label_ha_max']} ha {info['other_label']} (rule of three, 95 %)")
    print(f"wrote {args.run.resolve() / 'assessment' / 'estimate.json'}")
    return 0


def _review(args: argparse.Namespace) -> int:
    import pandas as pd

    from .register import read_verdicts_csv, run_register, run_verdicts

    register = run_register(args.run.resolve(), args.register)
    if args.action == "list":
        if args.register is not None and not register.path.exists():  # a typo would list every site unreviewed
            raise_input(f"--register {args.register} {missing_reason(args.register)}; give the register the "
                        "verdicts were recorded in (review record creates one)")
        return _review_list(args.run.resolve(), register)
    if args.action == "import":
        if args.verdicts is None:
            raise_input("review import needs --verdicts FILE.csv (columns site_id, verdict, analyst[, date, note])")
        entries = read_verdicts_csv(args.verdicts)
    else:
        missing = [o for o, v in (("--site", args.site), ("--verdict", args.verdict), ("--analyst", args.analyst))
                   if not v]
        if missing:
            raise_input(f"review record needs {', '.join(missing)} (e.g. --site ID --verdict false_alarm "
                        "--analyst NAME)")
        entries = pd.DataFrame([{"site_id": args.site, "verdict": args.verdict, "analyst": args.analyst,
                                 "note": args.note, "date": args.date.isoformat() if args.date else None}])
    n = register.record(run_verdicts(args.run.resolve(), entries))
    print(f"recorded {n} verdict{'' if n == 1 else 's'} in {register.path}")
    return 0


def _review_list(run: Path, register: Any) -> int:
    import geopandas as gpd

    latest = register.latest().set_index("site_id")
    for name in ("sites.geojson", "sites_dismissed.geojson"):
        path = run / name
        if not path.is_file():
            continue
        for _, site in gpd.read_file(path).iterrows():
            sid = str(site["site_id"])
            verdict = latest["verdict"].get(sid, "unreviewed")
            when = latest["reviewed_on"].get(sid, "")
            print(f"{sid}\t{site['aoi_id']}\t{site['status']}\t{float(site['area_ha']):.2f} ha\t{verdict}\t{when}")
    return 0


def _cv_lines(cv: dict[str, Any]) -> list[str]:
    """Grouped cross-validation figures as printable lines (``name value [low, high]``)."""
    lines = []
    for name, value in cv.items():
        if isinstance(value, dict) and "value" in value:
            low, high = value.get("ci95", [None, None])
            ci = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
            lines.append(f"cv {name}: {value['value']:.3f}{ci}")
    return lines


def _run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Config overrides from the run options shared by ``monitor`` and ``train``."""
    return {
        # absolute, not resolved: messages name the path the user gave (a symbolic link, not its target)
        "aois": [os.path.abspath(p) for p in args.aoi] if args.aoi else None,
        "source.url": _abs_source(args.source),
        "period.start": args.start.isoformat() if args.start else None,
        "period.end": args.end.isoformat() if args.end else None,
        "cache_dir": str(args.cache.resolve()) if args.cache else None,
        "dask.scheduler": args.scheduler,
    }


def _demo(args: argparse.Namespace) -> int:
    from .config import load_config

    out = args.out.resolve()
    checked = load_config(args.config, **{"out_dir": str(out), "dask.scheduler": args.scheduler})
    with _early_fork_server(args, checked):
        return _demo_run(args, checked, out)


def _demo_run(args: argparse.Namespace, checked: Any, out: Path) -> int:
    from .cluster import dask_client
    from .config import load_config
    from .demo import ScenarioSpec, write_scenario
    from .evaluate import format_metrics
    from .run import run_monitor
    from .validate_inputs import check_demo_inputs

    # The inputs are checked before the scenario (about 170 MB) is written: bad input writes nothing.
    spec = ScenarioSpec(with_s1=True)
    check_demo_inputs(checked, (spec.start, spec.end))
    if checked.dask.scheduler:
        with dask_client(checked):
            pass  # reachable (the run joins it again)
    scenario = write_scenario(out / "scenario", spec)
    cfg = load_config(
        args.config,
        aois=[str(scenario.aoi_path)],
        **{"source.url": str(scenario.catalog_path), "out_dir": str(out), "dask.scheduler": args.scheduler},
    )
    report = run_monitor(cfg, truth=scenario.truth_path, progress=args.progress)
    code = _finish(report)
    if report.validation:
        print("\nDemo accuracy against the scenario's ground truth:")
        print(format_metrics(report.validation))
    return code


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import check_truth_placement, evaluate_sites, format_metrics, read_sites, read_truth
    from .limits import special_file

    for flag, path in (("--sites", args.sites), ("--truth", args.truth), *(("--aoi", a) for a in args.aoi or ())):
        if not path.exists():
            raise_input(f"{flag} {path} {missing_reason(path)}")
        if special_file(path):
            raise_input(f"{flag} {path} is not a regular file (a pipe or a device); pass a GeoJSON file")
    aoi = None
    if args.aoi:
        from .aoi import read_aois

        aoi = read_aois(args.aoi)
    sites, truth = read_sites(args.sites), read_truth(args.truth)
    check_truth_placement(sites, truth, truth_path=args.truth, aoi=aoi)
    print(format_metrics(evaluate_sites(sites, truth, aoi=aoi)))
    return 0


def _cache(args: argparse.Namespace) -> int:
    from .config import load_config
    from .sources import cache_clear, cache_info, cache_prune

    # The default config may be absent (the package installed elsewhere): then the default
    # cache. A --config the user named must exist, as for every other command.
    use_config = args.config.exists() or args.config != DEFAULT_CONFIG
    cache_dir = args.cache.resolve() if args.cache else (load_config(args.config).cache_dir if use_config else None)
    action = {"info": cache_info, "clear": cache_clear, "prune": cache_prune}[args.action]
    print(action(cache_dir))
    return 0


def _sources(args: argparse.Namespace) -> int:
    from .config import load_config
    from .sources import check_sources, format_source_checks

    cfg = load_config(args.config, **{"source.url": _abs_source(args.source)})
    checks = check_sources(cfg)
    print(format_source_checks(checks))
    return 0 if all(c.ok for c in checks) else 1


def raise_input(message: str) -> None:
    raise InputDataError(message)


def _abs_source(source: str | None) -> str | None:
    if source is None or "://" in source:
        return source
    return str(Path(source).resolve())


def _finish(report: object) -> int:
    from .run import RunReport

    assert isinstance(report, RunReport)
    for name in sorted(report.outputs):
        print(f"wrote {report.outputs[name]}")
    for aoi_id, message in sorted(report.failures.items()):
        print(f"failed: AOI {aoi_id}: {message}", file=sys.stderr)
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
