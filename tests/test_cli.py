"""Command line: help, exit codes, one-line errors, nothing written on bad input, and a whole
run end to end on a small synthetic scenario through the same code path as a real run.

Bad-input checks run the real ``main()`` in process (:func:`tests.bad_inputs.harness.run_argv`:
stdout/stderr captured, logging fresh); a subprocess proves nothing more there and costs an
interpreter start each. The entry point itself (``python -m pipeline``), the end-to-end run and
the unreachable-endpoint failures go through a subprocess."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psutil
import pytest
import shapely.geometry

from pipeline.demo import ScenarioSpec, write_scenario
from tests.bad_inputs.harness import run_in_process

REPO = Path(__file__).resolve().parents[1]
SMALL = ScenarioSpec(
    shape_px=(120, 160),
    start=dt.date(2022, 1, 1),
    end=dt.date(2023, 12, 31),
    revisit_days=10,
    monitoring_start=dt.date(2023, 1, 1),
    n_pits=3,
    n_fields=1,
    n_bare_patches=1,
    n_burn_scars=1,
    burn_area_ha=(2.0, 3.0),
    field_area_ha=(1.0, 1.5),
    pit_area_ha=(0.6, 1.2),
    n_abandoned=0,
    with_s1=True,
    seed=7,
)


def _cli(*args: str, cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def _in_process(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_in_process(folder, *args)


def _one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert "Traceback" not in stderr
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_the_entry_point_runs() -> None:
    res = _cli("--help")
    assert res.returncode == 0
    assert "usage:" in res.stdout


@pytest.mark.parametrize("sub", [[], ["monitor"], ["demo"], ["evaluate"], ["cache"], ["sources"]])
def test_help(sub: list[str], tmp_path: Path) -> None:
    res = _in_process(tmp_path, *sub, "--help")
    assert res.returncode == 0
    assert "usage:" in res.stdout


def test_monitor_help_lists_every_contract_flag(tmp_path: Path) -> None:
    out = _in_process(tmp_path, "monitor", "--help").stdout
    for flag in ("--config", "--aoi", "--source", "--start", "--end", "--out", "--cache", "--scheduler"):
        assert flag in out


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory):
    return write_scenario(tmp_path_factory.mktemp("scenario"), SMALL)


def _config(tmp_path: Path, text: str = "") -> Path:
    base = (
        "period:\n  start: 2023-01-01\n  end: 2023-12-31\n"
        "search:\n  max_cloud_frac: 1.0\n"
        "acquire:\n  margin_m: 0\n  chunk_px: 64\n"
        "bulletin:\n  demonstration: true\n  pdf: false\n"
        "dask:\n  n_workers: 1\n  threads_per_worker: 2\n  memory_limit: 2GiB\n"
    )
    path = tmp_path / "test.yaml"
    path.write_text(base + text, encoding="utf-8")
    return path


def _monitor(
    tmp_path: Path,
    *,
    aoi: object,
    source: object,
    out: object,
    config: object = None,
    extra: tuple[str, ...] = (),
    timeout: float = 600,
    in_process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``python -m pipeline monitor`` with the test config unless another is given (``in_process``:
    the same ``main()`` without a new interpreter, for the bad-input checks)."""
    cfg = config if config is not None else _config(tmp_path)
    args = ("monitor", "--config", str(cfg), "--aoi", str(aoi), "--source", str(source), "--out", str(out), *extra)
    if in_process:
        return _in_process(tmp_path / "cwd", *args)
    return _cli(*args, timeout=timeout)


def test_end_to_end_on_a_static_catalog(tmp_path: Path, scenario) -> None:
    out = tmp_path / "out"
    res = _monitor(tmp_path, aoi=scenario.aoi_path, source=scenario.catalog_path, out=out)
    assert res.returncode == 0, res.stderr
    for name in ("bulletin.html", "sites.geojson", "activity.csv", "crosscheck.csv", "flags.csv", "manifest.json"):
        assert (out / name).is_file(), name
    sites = json.loads((out / "sites.geojson").read_text())
    assert sites["type"] == "FeatureCollection"
    assert len(sites["features"]) >= 1
    for feat in sites["features"]:
        props = feat["properties"]
        assert set(props) >= {
            "site_id",
            "aoi_id",
            "area_ha",
            "first_seen",
            "last_seen",
            "status",
            "confidence",
            "n_obs",
        }
        assert props["status"] in {"new", "expanding", "active", "dormant"}
        assert 0 <= props["confidence"] <= 1
        assert feat["geometry"]["type"] in {"Polygon", "MultiPolygon"}
        assert -7 < shapely.geometry.shape(feat["geometry"]).representative_point().x < -6  # EPSG:4326 lon
    activity = pd.read_csv(out / "activity.csv")
    assert list(activity.columns) == [
        "aoi_id",
        "period_start",
        "period_end",
        "disturbed_ha",
        "new_ha",
        "valid_fraction",
    ]
    assert len(activity) == 4
    crosscheck = pd.read_csv(out / "crosscheck.csv")
    assert list(crosscheck.columns)[:9] == [
        "participant_iso3",
        "aoi_id",
        "year",
        "disturbed_ha",
        "est_carats_low",
        "est_carats_high",
        "declared_carats",
        "ratio",
        "flags",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["items"]) == 73 and manifest["config_digest"]
    assert all(i["assets"]["red"].endswith(".tif") for i in manifest["items"])
    assert "DEMONSTRATION - SYNTHETIC IMAGERY" in (out / "bulletin.html").read_text()

    ev = _cli("evaluate", "--sites", str(out / "sites.geojson"), "--truth", str(scenario.truth_path))
    assert ev.returncode == 0
    metrics = dict(line.split(None, 1) for line in ev.stdout.strip().splitlines())
    assert float(metrics["f1"]) >= 0.8
    assert int(metrics["distractor_hits"]) == 0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("detect:\n  ndvi_drop_min: -0.5\n", "detect.ndvi_drop_min"),
        ("sites:\n  min_area: 10\n", "sites.min_area"),
    ],
)
def test_bad_config_exits_2_and_writes_nothing(tmp_path: Path, scenario, text: str, needle: str) -> None:
    out = tmp_path / "out"
    res = _monitor(
        tmp_path,
        config=_config(tmp_path, text),
        aoi=scenario.aoi_path,
        source=scenario.catalog_path,
        out=out,
        in_process=True,
    )
    assert res.returncode == 2
    line = _one_error_line(res.stderr)
    assert needle in line and "test.yaml" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("geojson", "needle"),
    [
        ('{"type": "FeatureCollection", "features": []}', "no features"),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"aoi_id": "x", '
            '"name": "X", "participant_iso3": "CIV"}, "geometry": {"type": "Polygon", "coordinates": '
            "[[[-6.6, 8.1], [-6.5, 8.1], [-6.5, 8.2], [-6.6, 8.1]]]}}]}",
            "participant",
        ),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"aoi_id": "x", '
            '"name": "X", "participant_iso3": "CIV", "participant": "C"}, "geometry": {"type": "Polygon", '
            '"coordinates": [[[500000, 900000], [510000, 900000], [510000, 910000], [500000, 900000]]]}}]}',
            "projected",
        ),
        ("{not json", "JSON"),
    ],
)
def test_bad_aoi_exits_2_and_writes_nothing(tmp_path: Path, scenario, geojson: str, needle: str) -> None:
    aoi = tmp_path / "bad.geojson"
    aoi.write_text(geojson, encoding="utf-8")
    out = tmp_path / "out"
    res = _monitor(tmp_path, aoi=aoi, source=scenario.catalog_path, out=out, in_process=True)
    assert res.returncode == 2, res.stderr
    line = _one_error_line(res.stderr)
    assert "bad.geojson" in line and needle in line
    assert not out.exists()


def test_a_refused_run_stops_the_fork_server_the_command_line_started_early(tmp_path: Path, scenario, monkeypatch,
                                                                            capsys) -> None:
    # A process's own command line (argv None) starts the local cluster's fork server once the
    # configuration is read (pipeline.workers.start_fork_server); a run refused before its
    # cluster starts kills it.
    import multiprocessing.forkserver

    from pipeline import workers
    from pipeline.__main__ import main

    started: list[int] = []
    real = workers.start_fork_server

    def start() -> None:
        real()
        started.append(multiprocessing.forkserver._forkserver._forkserver_pid)

    monkeypatch.setattr(workers, "start_fork_server", start)
    # refused in the run's pre-flight checks (a bad AOI file is refused before the fork server starts)
    aoi = scenario.aoi_path
    source = tmp_path / "gone" / "catalog.json"
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["pipeline", "monitor", "--config", str(_config(tmp_path)), "--aoi", str(aoi),
                                      "--source", str(source), "--out", str(out)])
    assert main() == 2
    assert f"{source} does not exist" in _one_error_line(capsys.readouterr().err) and not out.exists()
    assert len(started) == 1 and started[0] is not None
    # killed and reaped before the command returned: it had forked nothing, and a caller reading
    # the command's output to the end would otherwise wait for its imports
    assert multiprocessing.forkserver._forkserver._forkserver_pid is None and not psutil.pid_exists(started[0])
    # an in-process call with its own arguments (tests, notebooks) starts none
    assert main(["monitor", "--config", str(_config(tmp_path)), "--aoi", str(aoi), "--source",
                 str(source), "--out", str(out)]) == 2
    assert len(started) == 1


def test_bad_aoi_override_exits_2_and_writes_nothing(tmp_path: Path, scenario) -> None:
    collection = json.loads(Path(scenario.aoi_path).read_text("utf-8"))
    collection["features"][0]["properties"]["detect"] = {"ndvi_drop_min": 5}
    aoi = tmp_path / "override.geojson"
    aoi.write_text(json.dumps(collection), encoding="utf-8")
    out = tmp_path / "out"
    res = _monitor(tmp_path, aoi=aoi, source=scenario.catalog_path, out=out, in_process=True)
    assert res.returncode == 2, res.stderr
    line = _one_error_line(res.stderr)
    assert "override.geojson" in line and "detect.ndvi_drop_min" in line
    assert not out.exists()


def test_unreachable_source_fails_fast_naming_the_endpoint(tmp_path: Path, scenario) -> None:
    out = tmp_path / "out"
    res = _monitor(tmp_path, aoi=scenario.aoi_path, source="http://127.0.0.1:9/v1", out=out, timeout=60)
    assert res.returncode == 1
    assert "http://127.0.0.1:9/v1" in _one_error_line(res.stderr)
    assert not out.exists()


def test_missing_catalog_is_bad_input(tmp_path: Path, scenario) -> None:
    res = _monitor(
        tmp_path, aoi=scenario.aoi_path, source=str(tmp_path / "nope" / "catalog.json"), out=tmp_path / "out",
        in_process=True,
    )
    assert res.returncode == 2
    assert "nope" in _one_error_line(res.stderr)
    assert not (tmp_path / "out").exists()


def test_evaluate_missing_file_exits_2(tmp_path: Path) -> None:
    res = _in_process(tmp_path, "evaluate", "--sites", str(tmp_path / "none.geojson"),
                      "--truth", str(tmp_path / "t.geojson"))
    assert res.returncode == 2
    assert "none.geojson" in _one_error_line(res.stderr)


def test_bad_date_is_one_line(tmp_path: Path) -> None:
    res = _in_process(tmp_path, "monitor", "--start", "2024-13-01")
    assert res.returncode == 2
    assert "2024-13-01" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow  # starts a scheduler and workers of its own (make test-all)
def test_runs_on_a_remote_scheduler(tmp_path: Path, scenario) -> None:
    """--scheduler joins a running dask.distributed cluster (scheduler + worker processes on loopback)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None, memory_limit="2GiB"
    ) as cluster:
        out = tmp_path / "out"
        res = _monitor(
            tmp_path,
            aoi=scenario.aoi_path,
            source=scenario.catalog_path,
            out=out,
            extra=(
                "--scheduler",
                cluster.scheduler_address,
            ),
        )
        assert res.returncode == 0, res.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dask"]["scheduler"] == cluster.scheduler_address
    assert manifest["dask"]["workers"] == 2
    assert json.loads((out / "sites.geojson").read_text())["features"]


def test_unreachable_scheduler_is_one_line(tmp_path: Path, scenario) -> None:
    cfg = _config(tmp_path).read_text("utf-8").replace("dask:\n", "dask:\n  connect_timeout_s: 1\n")
    (tmp_path / "timeout.yaml").write_text(cfg, encoding="utf-8")
    res = _monitor(
        tmp_path,
        aoi=scenario.aoi_path,
        source=scenario.catalog_path,
        out=tmp_path / "out",
        config=tmp_path / "timeout.yaml",
        extra=(
            "--scheduler",
            "tcp://127.0.0.1:9",
        ),
        in_process=True,
    )
    assert res.returncode == 2
    line = _one_error_line(res.stderr)
    assert "tcp://127.0.0.1:9 within 1 s" in line and "dask.connect_timeout_s" in line
    assert not (tmp_path / "out").exists()


def test_the_packages_warnings_are_one_log_line(caplog: pytest.LogCaptureFixture,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import logging
    import warnings

    from pipeline.cli_support import warnings_as_log_lines
    from pipeline.errors import StaleStatisticsWarning

    with caplog.at_level(logging.WARNING, logger="pipeline"), warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings_as_log_lines()  # undone by catch_warnings on exit
        warnings_as_log_lines()  # idempotent
        warnings.warn(StaleStatisticsWarning("declared statistics do not cover 2017"), stacklevel=1)
        warnings.warn("Creating scratch directories is taking\na surprisingly long time", UserWarning, stacklevel=1)
    assert [r.getMessage() for r in caplog.records] == [
        "declared statistics do not cover 2017",
        "Creating scratch directories is taking a surprisingly long time (UserWarning, from test_cli)"]
    assert "test_cli.py" not in capsys.readouterr().err  # no source file, no source line


def test_quiet_and_verbose_are_accepted_after_the_subcommand() -> None:
    from pipeline.__main__ import build_parser

    for argv in (["-q", "cache", "info"], ["cache", "info", "-q"], ["cache", "-q", "info"]):
        args = build_parser().parse_args(argv)
        assert args.quiet is True and args.verbose is False, argv
    assert build_parser().parse_args(["cache", "info", "-v"]).verbose is True


@pytest.mark.parametrize("argv", [["-q", "-v", "cache", "info"], ["-q", "cache", "info", "-v"],
                                  ["cache", "info", "-v", "--quiet"]])
def test_quiet_with_verbose_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: python -m pipeline: -q/--quiet and -v/--verbose ask for opposite things; give one of "
                   "them; see python -m pipeline --help"]


@pytest.fixture
def signal_handlers_restored() -> Iterator[None]:
    """The command line installs its SIGINT and SIGTERM handlers and quietens three loggers
    (pipeline.interrupts): put back what this process had, and forget the interrupt."""
    import logging
    import signal

    from pipeline import interrupts

    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    levels = {name: logging.getLogger(name).level for name in ("distributed", "tornado", "asyncio")}
    yield
    signal.signal(signal.SIGINT, previous[0])
    signal.signal(signal.SIGTERM, previous[1])
    interrupts.reset()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("signal_handlers_restored")
def test_a_ctrl_c_lost_in_a_finaliser_still_ends_the_run(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """SIGINT raised inside a ``__del__`` (a distributed future collected mid-run) is printed as
    "Exception ignored" and dropped by Python; the handler has recorded it, so the run's next
    checkpoint raises it again and the command ends as interrupted (130), not 0."""
    import gc
    import signal

    import pipeline.__main__ as cli
    from pipeline import interrupts

    class Finalised:
        def __del__(self) -> None:
            signal.raise_signal(signal.SIGINT)  # delivered here, in the finaliser

    def command(args: object) -> int:
        Finalised()
        gc.collect()
        return 0  # the command itself never saw the KeyboardInterrupt

    monkeypatch.setattr(cli, "_run_command", command)
    assert cli.main(["cache", "info"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: interrupted"
    with pytest.raises(KeyboardInterrupt):
        interrupts.raise_if_interrupted()


@pytest.mark.usefixtures("signal_handlers_restored")
def test_a_ctrl_c_that_another_exception_carries_out_is_reported_as_the_interrupt(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C while an import builds a class reaches the command as "RuntimeError: Error calling
    __set_name__" (seen at 2 s into a run, importing matplotlib): one "interrupted" line and
    130, not an "internal error" line before it."""
    import signal

    import pipeline.__main__ as cli

    class Descriptor:
        def __set_name__(self, owner: type, name: str) -> None:
            signal.raise_signal(signal.SIGINT)  # delivered while the class is built

    def command(args: object) -> int:
        type("Axes", (), {"attr": Descriptor()})
        return 0

    monkeypatch.setattr(cli, "_cache", command)
    assert cli.main(["cache", "info"]) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["error: interrupted"]


@pytest.mark.usefixtures("signal_handlers_restored")
def test_sigterm_unwinds_the_command_as_ctrl_c_does_and_exits_143(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """SIGTERM (kill PID, timeout, a batch scheduler's time limit) ended the process where it
    stood. It now raises where the command is, so its context managers unwind (cluster, lock,
    temporaries), and the command says one line and exits 143; lost in a finaliser, it is
    raised again as SIGINT is."""
    import gc
    import signal

    import pipeline.__main__ as cli
    from pipeline import interrupts

    unwound: list[str] = []

    def command(args: object) -> int:
        try:
            signal.raise_signal(signal.SIGTERM)
        finally:
            unwound.append("finally")
        return 0

    class Finalised:
        def __del__(self) -> None:
            signal.raise_signal(signal.SIGTERM)

    def lost(args: object) -> int:
        Finalised()
        gc.collect()
        return 0

    monkeypatch.setattr(cli, "_cache", command)  # the command line's own handling of what it raises
    assert cli.main(["cache", "info"]) == 143 and unwound == ["finally"]
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: terminated (SIGTERM)"
    interrupts.reset()
    monkeypatch.setattr(cli, "_cache", lost)
    assert cli.main(["cache", "info"]) == 143
    assert capsys.readouterr().err.strip().splitlines()[-1] == "error: terminated (SIGTERM)"



def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path) -> None:
    """``... | head -c 10``: the reader closes the pipe; no "internal error" line, status 141
    (128 + SIGPIPE, as a shell reports a command its pipe stopped)."""
    read, write = os.pipe()
    os.close(read)  # nobody will read: the first write fails with EPIPE
    with os.fdopen(write, "w") as stdout:
        res = subprocess.run([sys.executable, "-m", "pipeline", "cache", "info", "--cache", str(tmp_path / "c")],
                             cwd=REPO, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60)
    assert (res.returncode, res.stderr) == (141, "")


def test_help_to_a_reader_that_stops_early_ends_quietly_too() -> None:
    """argparse's own printing ignores a broken pipe: ``--help | head -1`` exited 0 with the
    help lost at the interpreter's exit."""
    for argv in (["--help"], ["scenes", "--help"]):
        read, write = os.pipe()
        os.close(read)
        with os.fdopen(write, "w") as stdout:
            res = subprocess.run([sys.executable, "-m", "pipeline", *argv], cwd=REPO, stdout=stdout,
                                 stderr=subprocess.PIPE, text=True, timeout=60)
        assert (res.returncode, res.stderr) == (141, ""), argv


def test_with_stdout_closed_the_command_is_refused_not_silent(tmp_path: Path) -> None:
    """``cache info >&-``: Python leaves ``sys.stdout`` None and every print vanishes; the
    report was lost with status 0. Refused before anything runs (status 2, one line)."""
    res = subprocess.run([sys.executable, "-m", "pipeline", "cache", "info", "--cache", str(tmp_path / "c")],
                         cwd=REPO, stderr=subprocess.PIPE, text=True, timeout=60, preexec_fn=lambda: os.close(1))
    assert res.returncode == 2
    assert res.stderr.splitlines() == ["error: standard output is closed; give the command one (> FILE, "
                                       "or > /dev/null to discard what it prints)"]
    assert not (tmp_path / "c").exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_standard_output_on_a_full_disk_is_not_called_bad_input(tmp_path: Path) -> None:
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "pipeline", "cache", "info", "--cache", str(tmp_path / "c")],
                             cwd=REPO, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "error: cannot write output: No space left on device; free space or redirect the output elsewhere"]


def test_sources_check_judges_a_static_catalog_as_monitor_does(tmp_path: Path, scenario) -> None:
    """A folder, a missing file and a JSON file that is not STAC each fail the check (exit 1, the
    reason monitor would refuse them with), and so does a valid catalog with no items; the
    scenario's catalog passes."""
    (tmp_path / "garbage.json").write_text('{"a": 1}', encoding="utf-8")
    empty = tmp_path / "empty" / "catalog.json"  # valid STAC, no items: a run finds no scenes
    empty.parent.mkdir()
    empty.write_text(json.dumps({"type": "Catalog", "stac_version": "1.0.0", "id": "empty", "description": "none",
                                 "links": []}), encoding="utf-8")
    cases = {
        str(scenario.catalog_path): (0, "catalog and every document it links are valid"),
        str(tmp_path): (1, "is a folder; pass the catalog.json"),
        str(tmp_path / "nope.json"): (1, "does not exist"),
        str(tmp_path / "garbage.json"): (1, "is not a STAC catalog"),
        str(empty): (1, "catalog holds no items: a run would find no scenes"),
    }
    for source, (code, detail) in cases.items():
        res = _in_process(tmp_path, "sources", "check", "--source", source)
        assert res.returncode == code, (source, res.stdout, res.stderr)
        assert detail in res.stdout, res.stdout
        assert ("all sources OK" in res.stdout) == (code == 0)


def test_with_stderr_closed_an_error_does_not_land_in_stdout(tmp_path: Path) -> None:
    """``scenes --json 2>&-``: Python leaves ``sys.stderr`` None, and ``print(file=None)`` writes
    to stdout, which a reader parses as JSON. The error goes nowhere; the status still says it."""
    res = subprocess.run([sys.executable, "-m", "pipeline", "scenes", "--json", "--config", str(tmp_path / "no.yaml")],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=60,
                         preexec_fn=lambda: os.close(2))
    assert (res.returncode, res.stdout) == (2, "")


def test_a_non_ascii_path_on_an_ascii_terminal_is_escaped_not_a_crash(tmp_path: Path) -> None:
    folder = tmp_path / "Séguéla"
    folder.mkdir()
    res = subprocess.run([sys.executable, "-m", "pipeline", "cache", "info", "--cache", str(folder / "c")],
                         cwd=REPO, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert res.returncode == 0, res.stderr
    assert "S\\xe9gu\\xe9la" in res.stdout


def test_a_warning_before_a_refusal_joins_its_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty config warns that it sets nothing; the run is then refused (no AOI). The
    refusal is still one stderr line, the warning inside it; a command that succeeds shows the
    warning as its own line."""
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    res = _in_process(tmp_path, "monitor", "--config", str(empty), "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "error: no AOI files given; pass --aoi PATH or list files under `aois:` in the config (warning before it: "
        f"config {empty} sets nothing: every setting takes its built-in default; check --config)"]
    assert not (tmp_path / "out").exists()
    other = tmp_path / "empty2.yaml"  # another message: Python shows a warning once per text and place
    other.write_text("", encoding="utf-8")
    monkeypatch.setenv("KP_MONITOR_CACHE_DIR", str(tmp_path / "c"))  # the config's (default) cache
    res = _in_process(tmp_path, "cache", "info", "--config", str(other))
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip().endswith(f"config {other} sets nothing: every setting takes its built-in default; "
                                       "check --config")


def test_held_warnings_reach_the_run_log_before_its_first_line_even_with_quiet(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Warnings are held until the command first logs (its work has begun), then go to every
    handler of the ``pipeline`` logger (``run.log`` too), even when ``-q`` hides that first line."""
    import io
    import logging
    import warnings

    from pipeline.__main__ import _console_progress
    from pipeline.cli_support import _show_as_log_line, hold_warnings, release_warnings
    from pipeline.errors import MonitorWarning

    logger = logging.getLogger("pipeline")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    console, run_log = io.StringIO(), logging.StreamHandler(io.StringIO())
    monkeypatch.setattr(sys, "stderr", console)
    try:
        logger.setLevel(logging.INFO)
        _console_progress(quiet=True)  # -q: the console shows warnings and errors only
        hold_warnings()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            monkeypatch.setattr(warnings, "showwarning", _show_as_log_line)
            warnings.warn("declared statistics are stale", MonitorWarning, stacklevel=1)
        assert console.getvalue() == ""  # held
        logger.addHandler(run_log)  # the run folder's log, attached when the run starts
        logger.info("run: 1 AOI(s)")
        assert run_log.stream.getvalue().splitlines() == ["declared statistics are stale", "run: 1 AOI(s)"]
        assert console.getvalue().splitlines()[0].endswith("declared statistics are stale")
        assert "run: 1 AOI(s)" not in console.getvalue()  # -q
    finally:
        release_warnings()
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


def test_ctrl_c_while_the_command_starts_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C in the first half second (the imports of ``distributed``, before the command's
    own handling) printed a 30-50 line traceback from the import machinery."""
    import pipeline.__main__ as cli

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["cache", "info"]) == 130
    assert capsys.readouterr().err.splitlines() == ["error: interrupted"]


@pytest.mark.parametrize("argv", [
    ["scenes", "--aoi", "{loop}"],
    ["scenes", "--source", "{loop}"],
    ["cache", "info", "--cache", "{loop}"],
    ["monitor", "--config", str(REPO / "configs" / "demo.yaml"), "--out", "{loop}"],
    ["evaluate", "--sites", "{loop}", "--truth", "{loop}"],
    ["review", "list", "--run", "{dir}", "--register", "{loop}"],
])
def test_a_loop_of_symbolic_links_is_bad_input_naming_it(argv: list[str], tmp_path: Path) -> None:
    """Path.resolve() raised RuntimeError on a loop: 'internal error', exit 1, in most commands;
    evaluate called the loop a file that 'does not exist'."""
    (tmp_path / "b.geojson").symlink_to(tmp_path / "a.geojson")
    (tmp_path / "a.geojson").symlink_to(tmp_path / "b.geojson")
    loop = tmp_path / "a.geojson"
    (tmp_path / "manifest.json").write_text("{}", encoding="utf-8")  # review list's run folder
    res = _in_process(tmp_path, *[a.format(loop=loop, dir=tmp_path) for a in argv])
    assert res.returncode == 2, res.stderr
    line = _one_error_line(res.stderr)
    assert str(loop) in line and "loop of symbolic links" in line, line


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_help_on_a_full_disk_is_one_line() -> None:
    with open("/dev/full", "w") as full:
        res = subprocess.run([sys.executable, "-m", "pipeline", "--help"], cwd=REPO, stdout=full,
                             stderr=subprocess.PIPE, text=True, timeout=60)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        "error: cannot write output: No space left on device; free space or redirect the output elsewhere"]


def test_a_collection_the_static_catalog_lacks_is_named_as_the_fault(tmp_path: Path, demo_run: Path) -> None:
    """source.collection that a static catalog of Sentinel-1 and -2 collections does not hold was
    reported as 'no item covers' the AOI, naming neither the field nor the collections there are."""
    config = tmp_path / "nope.yaml"
    config.write_text("source:\n  collection: nope\nsearch:\n  max_cloud_frac: 1.0\n", encoding="utf-8")
    catalog = demo_run / "scenario" / "catalog" / "catalog.json"
    res = _in_process(tmp_path, "scenes", "--config", str(config), "--source", str(catalog),
                      "--aoi", str(demo_run / "scenario" / "aoi.geojson"), "--start", "2023-01-01",
                      "--end", "2023-06-30", "--cache", str(tmp_path / "cache"))
    assert res.returncode == 2, res.stderr
    line = _one_error_line(res.stderr)
    assert line.startswith("error: source.collection 'nope': static catalog") and "has no collection 'nope'" in line
    assert "sentinel-1-rtc, sentinel-2-c1-l2a" in line, line
    assert not (tmp_path / "cache").exists()
    # sources check fails it too (it said "all sources OK")
    res = _in_process(tmp_path, "sources", "check", "--config", str(config), "--source", str(catalog))
    assert res.returncode == 1, res.stdout
    assert "catalog has no collection 'nope' (source.collection) but holds sentinel-1-rtc, sentinel-2-c1-l2a" \
        in res.stdout and "all sources OK" not in res.stdout


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
@pytest.mark.parametrize("argv", [
    ["scenes", "--aoi", "{fifo}"],
    ["scenes", "--config", "{fifo}"],
    ["evaluate", "--sites", "{fifo}", "--truth", "{fifo}"],
    ["train", "--labels", "{fifo}", "--out", "{dir}/model"],
    ["review", "import", "--run", "{dir}", "--register", "{dir}/r.sqlite", "--verdicts", "{fifo}"],
])
def test_a_named_pipe_given_as_a_file_is_refused_not_waited_on(argv: list[str], tmp_path: Path) -> None:
    """--aoi pointing at a named pipe blocked the command until someone wrote to it."""
    fifo = tmp_path / "input.geojson"
    os.mkfifo(fifo)
    res = _in_process(tmp_path, *[a.format(fifo=fifo, dir=tmp_path) for a in argv])
    assert res.returncode == 2, res.stderr
    line = _one_error_line(res.stderr)
    assert str(fifo) in line and "not a regular file" in line, line
