"""Run one bad-input case through the real command line, in process, and judge the outcome.

A case is a YAML file under ``tests/bad_inputs/<kind>/``::

    about: what an outside tester tried (one line)
    argv: [monitor, --config, "{config}", --aoi, "{dir}/aoi.geojson", --source, "{catalog}", --out, "{out}"]
    files: {aoi.geojson: "...", ...}   # written into the case folder first (see _write_file)
    setup: [copy_scenario, {truncate_asset: {item: 2, band: red}}]   # see SETUP
    exit: 2                            # expected exit status
    message: "aoi.geojson"             # fragment(s) the one error line must contain
    forbid: ["s3cret"]                 # strings that must appear in no output and no written file
    writes: false                      # true: the run is expected to write outputs (exit 0/1 cases)
    skipped: "{item2}"                 # an item the manifest must list as skipped
    no_bulletin: false                 # true: no numbered bulletin may be published
    slow: false                        # true: needs the imagery (a whole run): pytest -m slow
    timeout: 120                       # seconds before the case counts as hanging

Placeholders in ``argv`` and in file contents: ``{dir}`` (the case folder), ``{out}``
(``{dir}/out``), ``{cache}`` (``{dir}/cache``), ``{config}`` (a valid fast config written
to ``{dir}/base.yaml``), ``{base_config}`` (its text, to build a bad config on),
``{catalog}`` and ``{aoi}`` (the tiny scenario's static catalog and AOI; a copy inside the
case folder after ``copy_scenario``), ``{item0}``, ``{item1}``... (the scenario's
Sentinel-2 item ids in date order) and ``{today}``.

The verdicts (:func:`judge`):

GOOD
    The expected exit status; for bad input (exit 2, ``writes`` false) exactly one line on
    stderr, starting ``error:``, holding every ``message`` fragment, nothing on stdout, and
    nothing written (the case folder is byte-for-byte as before); for a run that is meant to
    go on (``writes`` true) no traceback, the fragments on stderr, the skipped item in the
    manifest. ``forbid`` strings nowhere.
NOISY
    The right exit status and nothing written where nothing may be, but a traceback, extra
    lines, or a message that does not name what is wrong (a fragment missing).
WRONG
    Anything else: another exit status, output left behind after bad input, a hang, a
    forbidden string (a credential) written somewhere, a numbered bulletin for a failed run.

The harness uses only what the command line offers (``pipeline.__main__.main``) and the demo
scenario writer, so the same corpus runs against any version of the code (the "before"
figures of issue 17 come from running it at the branch point, ``python -m tests.bad_inputs``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
#: Lock file a monitor run holds in its output folder (``pipeline.locks.RUN_LOCK_NAME``).
RUN_LOCK_NAME = ".kp-monitor.lock"

#: The config every case starts from: fast settings, nothing optional.
BASE_CONFIG = """\
period:
  start: 2023-01-01
  end: 2023-06-30
search:
  max_cloud_frac: 1.0
acquire:
  margin_m: 0
  chunk_px: 64
composites:
  write: true
radar:
  enabled: false
bulletin:
  demonstration: true
  pdf: false
dask:
  n_workers: 1
  threads_per_worker: 1
  memory_limit: 1GiB
"""


@dataclass
class Case:
    """One bad input, as read from its YAML file."""

    name: str
    path: Path
    about: str
    argv: list[str]
    exit: int
    message: list[str] = field(default_factory=list)
    files: dict[str, Any] = field(default_factory=dict)
    setup: list[Any] = field(default_factory=list)
    forbid: list[str] = field(default_factory=list)
    writes: bool = False
    skipped: str | None = None
    no_bulletin: bool = False
    slow: bool = False
    timeout: float = 120.0

    @property
    def needs_scenario(self) -> bool:
        text = json.dumps([self.argv, self.files, self.setup, self.skipped, self.message])
        return any(k in text for k in ("{catalog}", "{aoi}", "{item", "copy_scenario", "{scenario}"))


def load_cases(root: Path = HERE) -> list[Case]:
    """Every case under ``root`` (``<kind>/<name>.yaml``), sorted by name."""
    cases = []
    for path in sorted(root.glob("*/*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        message = raw.get("message", [])
        cases.append(
            Case(
                name=f"{path.parent.name}/{path.stem}",
                path=path,
                about=raw["about"],
                argv=[str(a) for a in raw["argv"]],
                exit=int(raw["exit"]),
                message=[message] if isinstance(message, str) else list(message),
                files=raw.get("files") or {},
                setup=raw.get("setup") or [],
                forbid=list(raw.get("forbid") or []),
                writes=bool(raw.get("writes", False)),
                skipped=raw.get("skipped"),
                no_bulletin=bool(raw.get("no_bulletin", False)),
                slow=bool(raw.get("slow", False)),
                timeout=float(raw.get("timeout", 120)),
            )
        )
    return cases


# --------------------------------------------------------------------------------------------
# The scenario: the smallest that a whole run accepts
# --------------------------------------------------------------------------------------------


def tiny_spec() -> Any:
    """40 x 60 pixels, 28 Sentinel-2 dates (2022 baseline, first half of 2023 monitored), one pit."""
    from pipeline.demo import ScenarioSpec

    return ScenarioSpec(
        shape_px=(40, 60), start=dt.date(2022, 1, 1), end=dt.date(2023, 6, 30), revisit_days=20,
        monitoring_start=dt.date(2023, 1, 1), n_pits=1, n_fields=0, n_bare_patches=0, n_burn_scars=0,
        n_abandoned=0, pit_area_ha=(0.3, 0.5), n_rivers=0, village=False, n_full_cloud_dates=0,
        n_nodata_stripe_dates=0, seed=3,
    )


@dataclass(frozen=True)
class Scenario:
    root: Path
    catalog: Path
    aoi: Path
    items: tuple[str, ...]
    """Sentinel-2 item ids in date order."""


def write_tiny_scenario(root: Path) -> Scenario:
    from pipeline.demo import write_scenario

    result = write_scenario(root, tiny_spec())
    return scenario_at(root, Path(result.catalog_path), Path(result.aoi_path))


def scenario_at(root: Path, catalog: Path, aoi: Path) -> Scenario:
    items = []
    for path in sorted(catalog.parent.glob("*/*/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("type") == "Feature":
            items.append((data["properties"]["datetime"], data["id"]))
    return Scenario(root=root, catalog=catalog, aoi=aoi, items=tuple(i for _, i in sorted(items)))


# --------------------------------------------------------------------------------------------
# Running a case
# --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the command line did."""

    code: int | None
    stdout: str
    stderr: str
    written: list[str]
    """Paths (relative to the case folder) added, removed or changed by the run."""
    folder: Path
    timed_out: bool = False
    values: dict[str, str] = field(default_factory=dict)


class CaseTimeout(BaseException):
    """Raised by the alarm in the case's process when it runs past its timeout."""


def run_case(case: Case, folder: Path, scenario: Scenario | None) -> Outcome:
    """Prepare ``folder`` (files, setup), run ``python -m pipeline <argv>`` in process, record."""
    folder.mkdir(parents=True, exist_ok=True)
    values = {
        "dir": str(folder),
        "out": str(folder / "out"),
        "cache": str(folder / "cache"),
        "config": str(folder / "base.yaml"),
        "today": dt.date.today().isoformat(),
    }
    (folder / "base.yaml").write_text(BASE_CONFIG, encoding="utf-8")
    holders: list[Any] = []
    if scenario is not None:
        _bind_scenario(values, scenario)
    for action in case.setup:
        name, args = (action, {}) if isinstance(action, str) else next(iter(action.items()))
        SETUP[name](folder, values, scenario, args or {}, holders)
    for rel, content in case.files.items():
        _write_file(folder / _fill(rel, values), content, values)
    argv = [_fill(a, values) for a in case.argv]
    try:
        return run_argv(argv, folder, timeout=case.timeout, values=values)
    finally:
        for holder in holders:
            holder.close()


def run_in_process(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """:func:`run_argv` as a finished process (``returncode``, ``stdout``, ``stderr``), for tests
    written against ``subprocess.run`` that need no interpreter of their own."""
    outcome = run_argv(list(args), folder)
    assert not outcome.timed_out, f"python -m pipeline {' '.join(args)} timed out"
    return subprocess.CompletedProcess(list(args), outcome.code, outcome.stdout, outcome.stderr)


def run_argv(argv: list[str], folder: Path, *, timeout: float = 120, values: dict[str, str] | None = None) -> Outcome:
    """Run ``python -m pipeline <argv>`` in process with ``folder`` as the working directory (and
    the window cache inside it); record exit status, output and what changed in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    before = snapshot(folder)
    out, err = io.StringIO(), io.StringIO()
    timed_out = False
    code: int | None
    try:
        with _isolated(folder, err, timeout=timeout):
            from pipeline.__main__ import main

            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(argv)
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                except CaseTimeout:
                    raise
                except BaseException:  # what the interpreter would print, and its exit status
                    traceback.print_exc(file=err)
                    code = 1
    except CaseTimeout:
        code, timed_out = None, True
    written = diff(before, snapshot(folder))
    return Outcome(code=code, stdout=out.getvalue(), stderr=err.getvalue(), written=written, folder=folder,
                   timed_out=timed_out, values=values or {})


@contextlib.contextmanager
def _isolated(folder: Path, err: io.StringIO, *, timeout: float) -> Iterator[None]:
    """cwd in the case folder, the window cache inside it, fresh logging, warnings shown as a
    user would see them (on stderr), and an alarm after ``timeout`` seconds."""
    saved_env = {k: os.environ.get(k) for k in ("KP_MONITOR_CACHE_DIR", "COLUMNS")}
    os.environ["KP_MONITOR_CACHE_DIR"] = str(folder / "cache")
    os.environ["COLUMNS"] = "100"  # argparse asks the terminal otherwise, for every parser
    cwd = os.getcwd()
    os.chdir(folder)
    _reset_logging()

    def alarm(signum: int, frame: Any) -> None:
        raise CaseTimeout()

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            try:
                yield
            finally:
                for w in caught:
                    err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, None))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        os.chdir(cwd)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _reset_logging()


def _reset_logging() -> None:
    # main() configures logging for a process; in process, every case starts afresh.
    for name in ("", "pipeline", "pipeline.cache"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            with contextlib.suppress(Exception):
                handler.close()
    logging.getLogger("pipeline").propagate = True


def _bind_scenario(values: dict[str, str], scenario: Scenario) -> None:
    values["catalog"] = str(scenario.catalog)
    values["aoi"] = str(scenario.aoi)
    values["scenario"] = str(scenario.root)
    for i, item in enumerate(scenario.items):
        values[f"item{i}"] = item


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _write_file(path: Path, content: Any, values: dict[str, str]) -> None:
    """Write one case file. ``content``: text (placeholders filled, UTF-8), or a mapping:
    ``{latin1: text}``, ``{base64: data}``, ``{random_bytes: n}``, ``{nested_yaml: depth}``,
    ``{nested_json: depth}``, ``{circle_aoi: vertices}``, ``{repeat: text, times: n, head: text,
    tail: text, sep: text}`` (``{i}`` in ``repeat`` is the repetition's index)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(_fill(content, {**values, "base_config": BASE_CONFIG}), encoding="utf-8")
        return
    if "latin1" in content:
        path.write_bytes(_fill(content["latin1"], {**values, "base_config": BASE_CONFIG}).encode("latin-1"))
    elif "base64" in content:
        path.write_bytes(base64.b64decode(content["base64"]))
    elif "random_bytes" in content:
        path.write_bytes(hashlib.shake_256(path.name.encode()).digest(int(content["random_bytes"])))
    elif "nested_yaml" in content:
        depth = int(content["nested_yaml"])
        path.write_text("detect: " + "[" * depth + "]" * depth + "\n", encoding="utf-8")
    elif "nested_json" in content:
        depth = int(content["nested_json"])
        path.write_text('{"type": "FeatureCollection", "features": ' + "[" * depth + "]" * depth + "}",
                        encoding="utf-8")
    elif "circle_aoi" in content:  # a valid polygon with that many vertices round the tiny scenario's AOI
        import math

        n = int(content["circle_aoi"])
        ring = [[-6.5803 + 0.0006 * math.cos(2 * math.pi * k / n), 8.1701 + 0.0006 * math.sin(2 * math.pi * k / n)]
                for k in range(n)]
        ring.append(ring[0])
        feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                   "properties": {"aoi_id": "round", "name": "Round", "participant_iso3": "CIV", "participant": "C"}}
        path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), encoding="utf-8")
    elif "repeat" in content:
        fill = {**values, "base_config": BASE_CONFIG}
        times, sep, unit = int(content["times"]), content.get("sep", ""), content["repeat"]
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(_fill(content.get("head", ""), fill))
            if "{i}" in unit:
                fh.write(sep.join(unit.replace("{i}", str(i)) for i in range(times)))
            else:
                fh.write(sep.join([unit] * times) if sep else unit * times)
            fh.write(_fill(content.get("tail", ""), fill))
    else:
        raise ValueError(f"{path}: unknown file content {sorted(content)}")


# --------------------------------------------------------------------------------------------
# Setup actions
# --------------------------------------------------------------------------------------------

SetupAction = Callable[[Path, dict[str, str], "Scenario | None", dict[str, Any], list[Any]], None]


def _copy_scenario(folder: Path, values: dict[str, str], scenario: Scenario | None, args: dict[str, Any],
                   holders: list[Any]) -> None:
    assert scenario is not None
    target = folder / "scenario"
    shutil.copytree(scenario.root, target, symlinks=True)
    copy = scenario_at(target, target / scenario.catalog.relative_to(scenario.root),
                       target / scenario.aoi.relative_to(scenario.root))
    _bind_scenario(values, copy)


def _item_folder(values: dict[str, str], index: int) -> Path:
    catalog = Path(values["catalog"])
    item = values[f"item{index}"]
    (path,) = catalog.parent.glob(f"*/{item}/{item}.json")
    return path.parent


def _asset_path(values: dict[str, str], index: int, band: str) -> Path:
    folder = _item_folder(values, index)
    item = json.loads((folder / f"{folder.name}.json").read_text(encoding="utf-8"))
    return (folder / item["assets"][band]["href"]).resolve()


def _truncate_asset(folder: Path, values: dict[str, str], scenario: Scenario | None, args: dict[str, Any],
                    holders: list[Any]) -> None:
    path = _asset_path(values, int(args.get("item", 2)), args.get("band", "red"))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * float(args.get("keep", 0.6)))])


def _delete_asset(folder: Path, values: dict[str, str], scenario: Scenario | None, args: dict[str, Any],
                  holders: list[Any]) -> None:
    _asset_path(values, int(args.get("item", 2)), args.get("band", "red")).unlink()


def _replace_asset(folder: Path, values: dict[str, str], scenario: Scenario | None, args: dict[str, Any],
                   holders: list[Any]) -> None:
    """Rewrite an asset with another CRS (``epsg``), shifted origin (``shift_m``) or shape (``crop_px``)."""
    import rasterio
    from rasterio.transform import Affine

    path = _asset_path(values, int(args.get("item", 2)), args.get("band", "red"))
    with rasterio.open(path) as src:
        data, profile = src.read(), src.profile
    profile.pop("blockxsize", None), profile.pop("blockysize", None)
    profile["tiled"] = False
    if "epsg" in args:
        profile["crs"] = rasterio.crs.CRS.from_epsg(int(args["epsg"]))
    if "shift_m" in args:
        t = profile["transform"]
        profile["transform"] = Affine(t.a, t.b, t.c + float(args["shift_m"]), t.d, t.e, t.f)
    if "crop_px" in args:
        n = int(args["crop_px"])
        data = data[:, n:, n:]
        profile["height"], profile["width"] = data.shape[1], data.shape[2]
    profile["driver"] = "GTiff"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def _text_asset(folder: Path, values: dict[str, str], scenario: Scenario | None, args: dict[str, Any],
                holders: list[Any]) -> None:
    _asset_path(values, int(args.get("item", 2)), args.get("band", "red")).write_text(
        "<html>404 Not Found</html>\n", encoding="utf-8")


def _corrupt_file(folder: Path, values: dict[str, str], scenario: Scenario | None, args: dict[str, Any],
                  holders: list[Any]) -> None:
    """Cut a JSON file of the catalog in half: ``file: catalog`` or ``file: item`` (``item: n``)."""
    if args.get("file", "catalog") == "catalog":
        path = Path(values["catalog"])
    else:
        f = _item_folder(values, int(args.get("item", 2)))
        path = f / f"{f.name}.json"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")


def _edit_items(folder: Path, values: dict[str, str], scenario: Scenario | None, args: dict[str, Any],
                holders: list[Any]) -> None:
    """Edit item JSON: ``item`` (index, default every item), ``drop_asset``, ``set`` {dotted: value}."""
    catalog = Path(values["catalog"])
    indices = [int(args["item"])] if "item" in args else None
    for path in sorted(catalog.parent.glob("*/*/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("type") != "Feature":
            continue
        if indices is not None and data["id"] not in {values[f"item{i}"] for i in indices}:
            continue
        if "drop_asset" in args:
            data["assets"].pop(args["drop_asset"], None)
        for dotted, value in (args.get("set") or {}).items():
            node = data
            *parents, leaf = dotted.split("/")
            for key in parents:
                node = node[key]
            node[leaf] = value
        path.write_text(json.dumps(data), encoding="utf-8")


def _symlink(folder: Path, values: dict[str, str], scenario: Scenario | None, args: dict[str, Any],
             holders: list[Any]) -> None:
    """``link`` (relative to the case folder) -> ``target`` (created: a folder if it ends in /)."""
    link = folder / _fill(args["link"], values)
    target_text = _fill(args["target"], values)
    target = folder / target_text.rstrip("/")
    if target_text.endswith("/"):
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("outside the output folder\n", encoding="utf-8")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


def _hold_run_lock(folder: Path, values: dict[str, str], scenario: Scenario | None, args: dict[str, Any],
                   holders: list[Any]) -> None:
    """Another monitor run holds ``--out``: its lock file, locked by an open file description."""
    out = folder / "out"
    out.mkdir(parents=True, exist_ok=True)
    fh = open(out / RUN_LOCK_NAME, "a+")  # noqa: SIM115 - held until the case ends
    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    fh.seek(0)
    fh.truncate()
    fh.write(json.dumps({"pid": os.getpid(), "command": "monitor", "started": "2024-01-01T00:00:00Z"}) + "\n")
    fh.flush()
    holders.append(fh)


SETUP: dict[str, SetupAction] = {
    "copy_scenario": _copy_scenario,
    "truncate_asset": _truncate_asset,
    "delete_asset": _delete_asset,
    "replace_asset": _replace_asset,
    "text_asset": _text_asset,
    "corrupt_file": _corrupt_file,
    "edit_items": _edit_items,
    "symlink": _symlink,
    "hold_run_lock": _hold_run_lock,
}


# --------------------------------------------------------------------------------------------
# Judging
# --------------------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, tuple[Any, ...]]:
    """Every path under ``folder`` (symlinks not followed) with its kind, size, mtime and link target."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", st.st_size, st.st_mtime_ns)
    return out


def diff(before: dict[str, tuple[Any, ...]], after: dict[str, tuple[Any, ...]]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


@dataclass
class Verdict:
    verdict: str  # GOOD | NOISY | WRONG
    reasons: list[str]


def judge(case: Case, outcome: Outcome) -> Verdict:
    """GOOD, NOISY or WRONG, with the reasons (see the module docstring)."""
    wrong: list[str] = []
    noisy: list[str] = []
    if outcome.timed_out:
        return Verdict("WRONG", [f"no answer after {case.timeout:.0f} s"])
    if outcome.code != case.exit:
        wrong.append(f"exit {outcome.code}, expected {case.exit}")
    lines = [ln for ln in outcome.stderr.splitlines() if ln.strip()]
    if "Traceback (most recent call last)" in outcome.stderr:
        noisy.append("traceback")
    fragments = [_fill(m, outcome.values) for m in case.message]
    if not case.writes:
        if outcome.written:
            wrong.append(f"wrote {', '.join(outcome.written[:4])}{' ...' if len(outcome.written) > 4 else ''}")
        if outcome.stdout.strip():
            noisy.append(f"stdout: {outcome.stdout.strip().splitlines()[0][:80]!r}")
        if len(lines) != 1:
            noisy.append(f"{len(lines)} lines on stderr")
        if lines and not lines[-1].startswith("error:"):
            noisy.append(f"last line {lines[-1][:100]!r}")
        text = lines[-1] if lines else ""
    else:
        text = outcome.stderr
    missing = [f for f in fragments if f not in text]
    if missing:
        noisy.append(f"message lacks {missing}")
    for secret in case.forbid:
        where = _find_secret(secret, outcome)
        if where:
            wrong.append(f"{secret!r} written in {', '.join(where[:3])}")
    manifest = outcome.folder / "out" / "manifest.json"
    if case.skipped:
        item = _fill(case.skipped, outcome.values)
        skipped = []
        if manifest.is_file():
            data = json.loads(manifest.read_text(encoding="utf-8"))
            skipped = [s for a in data.get("aois", {}).values() for s in a.get("skipped_items", [])]
        if not any(item in s for s in skipped):
            wrong.append(f"manifest does not list {item} as skipped")
    if case.no_bulletin:
        out = outcome.folder / "out"
        if (out / "archive").exists() and any((out / "archive").iterdir()):
            wrong.append("published a numbered bulletin for a failed run")
        if (out / "bulletin.html").exists():
            wrong.append("wrote bulletin.html for a failed run")
    if wrong:
        return Verdict("WRONG", wrong + noisy)
    if noisy:
        return Verdict("NOISY", noisy)
    return Verdict("GOOD", [])


def _find_secret(secret: str, outcome: Outcome) -> list[str]:
    where = []
    if secret in outcome.stderr:
        where.append("stderr")
    if secret in outcome.stdout:
        where.append("stdout")
    for rel in outcome.written:  # what the run wrote (the case's own inputs may hold the secret)
        path = outcome.folder / rel
        if path.is_file() and not path.is_symlink():
            with contextlib.suppress(OSError):
                if secret.encode() in path.read_bytes():
                    where.append(rel)
    return where


def first_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


def python_version() -> str:
    return sys.version.split()[0]
