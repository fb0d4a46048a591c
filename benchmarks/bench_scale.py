"""The whole path at scale: ratios taken in one run, written to ``benchmarks/RESULTS.md``.

1. ``monitor`` end to end on a synthetic scenario served over loopback HTTP (the test suite's
   STAC API and Range file server), cold cache, split by stage (search, fetch, compute, sites,
   outputs) from the manifest's timings;
2. preprocess (cloud mask with its buffer) + detect through Dask (one thread) against a fused
   single-pass NumPy version of the same arithmetic, and against the same stage functions run
   eagerly on NumPy-backed xarray (the naive eager version: no Dask, whole arrays);
3. peak memory (RSS of the whole process tree: client, nanny and worker) of ``monitor`` on
   AOIs of 1x, 4x and 16x the area, each in its own process, same chunk size;
4. the whole path with 1 and with 2 worker processes (1 thread each);
5. 8 AOIs in parallel (``dask.aois_in_flight: 8``) against one after another (``1``);
6. a re-run that adds one quarter (incremental state) against a full run of the same period
   from an empty cache.

Each run starts its own local cluster and uses a fresh cache unless the row says otherwise.
Run with ``python -m benchmarks bench_scale`` (part of ``make bench``); ``--quick`` uses
smaller scenes. Absolute times depend on the machine and on what else runs on it: compare the
ratios, which are taken within one run.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
sys.path.insert(0, str(REPO))  # tests.servers / tests.scale_fixtures

from pipeline.demo import ScenarioSpec, write_scenario  # noqa: E402
from tests.scale_fixtures import SMALL_SPEC, config_dict, served_items, split_aois  # noqa: E402

TARGETS = {
    "detect_over_numpy": ("<= 1.5", lambda v: v <= 1.5),
    "memory_16x_over_1x": ("<= 1.3", lambda v: v <= 1.3),
    "speedup_2_workers": (">= 1.6", lambda v: v >= 1.6),
    "speedup_8_aois_parallel": (">= 1.6", lambda v: v >= 1.6),
    "rerun_over_full": ("< 0.25", lambda v: v < 0.25),
}


def _spec(shape: tuple[int, int], seed: int = 3) -> ScenarioSpec:
    import dataclasses

    return dataclasses.replace(SMALL_SPEC, shape_px=shape, seed=seed, n_pits=max(3, shape[0] * shape[1] // 2000))


def _run(raw: dict[str, Any]) -> dict[str, Any]:
    """One ``run_monitor`` in this process; returns wall seconds and the manifest."""
    from pipeline.config import MonitorConfig
    from pipeline.progress import RunProgress
    from pipeline.run import run_monitor

    t0 = time.perf_counter()
    report = run_monitor(MonitorConfig.model_validate(raw), progress=RunProgress("off"))
    wall = time.perf_counter() - t0
    assert not report.failures, report.failures
    return {"wall_s": wall, "manifest": json.loads((Path(raw["out_dir"]) / "manifest.json").read_text())}


def bench_end_to_end_http(work: Path, scenario: Any) -> list[dict[str, Any]]:
    from tests.servers import RangeFileServer, StacApiServer

    root = scenario.catalog_path.parent.parent
    with RangeFileServer(root) as files, StacApiServer(served_items(scenario, files), page_size=50) as api:
        raw = config_dict(source=api.url, aois=[scenario.aoi_path], out=work / "e2e", cache=work / "e2e-cache",
                          end="2023-03-31", n_workers=2, threads=1)
        res = _run(raw)
        sent = files.bytes_sent
    (aoi,) = res["manifest"]["aois"].values()
    t = aoi["timings_s"]
    stages = {k: float(t.get(f"{k}_s", 0.0)) for k in ("search", "fetch", "compute", "sites")}
    total = res["wall_s"]
    stages["outputs, cluster start and stop"] = total - sum(stages.values())
    rows = [{"name": f"(1) stage {k}", "value": round(v, 2), "unit": "s", "ratio": round(v / total, 3)}
            for k, v in stages.items()]
    rows.append({"name": "(1) monitor end to end over loopback HTTP", "value": round(total, 2), "unit": "s",
                 "note": f"{aoi['n_items']} items, {sent / 1e6:.1f} MB served"})
    return rows


def _with_scl(scenes: Any, seed: int = 1) -> Any:
    """make_scene output plus an SCL band: class 9 (cloud) where not valid, 4 (vegetation) else."""
    scl = np.where(scenes["valid"].values, 4, 9).astype("uint8")
    out = scenes.drop_vars("valid")
    out["scl"] = (("time", "y", "x"), scl)
    return out


def bench_detect_paths() -> list[dict[str, Any]]:
    import dask
    from scipy import ndimage

    import benchmarks.bench_detect as bd
    from pipeline.config import DetectParams

    # the fused reference includes the SWIR term, so the pipeline runs with it on as well
    bd.PARAMS = DetectParams(baseline_days=365, swir_change_min=0.05)
    fused_numpy, detect_graph = bd.fused_numpy, bd._graph
    from pipeline import preprocess
    from pipeline.testing import BANDS, make_scene

    classes = [3, 8, 9, 10]
    shape = (40, 512, 512)
    raw, _ = make_scene(shape, pit=np.s_[100:140, 200:260])
    raw = _with_scl(raw)
    lazy = raw.chunk({"time": -1, "y": 256, "x": 256})

    def pipeline_graph(ds: Any) -> Any:
        masked = preprocess.mask_clouds(ds, bands=list(BANDS), mask_classes=classes, buffer_px=1)
        return detect_graph(masked)

    def fused() -> np.ndarray:
        structure = np.zeros((1, 3, 3), bool)
        structure[0] = ndimage.generate_binary_structure(2, 1)
        invalid = ndimage.binary_dilation(np.isin(raw["scl"].values, classes), structure=structure)
        bands = {b: raw[b].values for b in BANDS}
        valid = ~invalid & np.all([np.isfinite(v) for v in bands.values()], axis=0)
        ns = {b: SimpleNamespace(values=np.where(valid, v, np.nan)) for b, v in bands.items()}
        ns["valid"] = SimpleNamespace(values=valid)
        return fused_numpy(ns)

    def best(fn: Any) -> float:
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_np = best(fused)
    with dask.config.set(scheduler="threads", num_workers=1):
        t_dask = best(lambda: pipeline_graph(lazy).compute())
    t_eager = best(lambda: pipeline_graph(raw).values)
    px = shape[0] * shape[1] * shape[2]
    return [
        {"name": "(2) fused NumPy preprocess+detect", "value": round(px / t_np / 1e6, 2), "unit": "M px-dates/s"},
        {"name": "(2) pipeline (Dask, 1 thread)", "value": round(px / t_dask / 1e6, 2), "unit": "M px-dates/s"},
        {"name": "(2) naive eager xarray (same functions, NumPy-backed)", "value": round(px / t_eager / 1e6, 2),
         "unit": "M px-dates/s"},
        {"name": "detect_over_numpy", "value": round(t_dask / t_np, 3), "unit": "x time",
         "note": "pipeline time / fused NumPy time"},
        {"name": "(2) eager xarray / fused NumPy", "value": round(t_eager / t_np, 3), "unit": "x time"},
    ]


_MEM_SCRIPT = """
import json, sys, time
from pipeline.config import MonitorConfig
from pipeline.progress import RunProgress
from pipeline.run import run_monitor

if __name__ == "__main__":  # the local cluster spawns worker processes that re-import this file
    raw = json.loads(open(sys.argv[1]).read())
    t0 = time.perf_counter()
    report = run_monitor(MonitorConfig.model_validate(raw), progress=RunProgress("off"))
    print(json.dumps({"wall_s": time.perf_counter() - t0, "failures": report.failures}))
"""


def _peak_tree_rss(cmd: list[str]) -> tuple[float, str]:
    """Run ``cmd``; sample the RSS of it and all its descendants every 0.1 s; peak in MB."""
    import psutil

    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    parent = psutil.Process(proc.pid)
    peak = 0.0
    while proc.poll() is None:
        total = 0
        try:
            for p in [parent, *parent.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total / 1e6)
        time.sleep(0.1)
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode:
        raise RuntimeError(f"memory run failed ({proc.returncode}): {(out + err)[-300:]}")
    return peak, out


def bench_memory(work: Path, base: tuple[int, int]) -> list[dict[str, Any]]:
    rows, peaks = [], {}
    for factor in (1, 4, 16):
        k = int(factor ** 0.5)
        shape = (base[0] * k, base[1] * k)
        scenario = write_scenario(work / f"mem-{factor}", _spec(shape))
        raw = config_dict(source=str(scenario.catalog_path), aois=[scenario.aoi_path], out=work / f"mem-{factor}-out",
                          cache=work / f"mem-{factor}-cache", end="2023-03-31", n_workers=1, threads=2,
                          acquire={"chunk_px": 128})
        cfg_path = work / f"mem-{factor}.json"
        cfg_path.write_text(json.dumps(raw))
        script = work / "mem_run.py"
        script.write_text(_MEM_SCRIPT)
        peak, _ = _peak_tree_rss([sys.executable, str(script), str(cfg_path)])
        peaks[factor] = peak
        rows.append({"name": f"(3) peak RSS, AOI {factor}x area ({shape[0]}x{shape[1]} px)", "value": round(peak),
                     "unit": "MB", "note": "client + nanny + worker processes"})
    rows.append({"name": "memory_16x_over_1x", "value": round(peaks[16] / peaks[1], 3), "unit": "x"})
    rows.append({"name": "(3) memory 4x / 1x", "value": round(peaks[4] / peaks[1], 3), "unit": "x"})
    return rows


def bench_workers(work: Path, scenario: Any) -> list[dict[str, Any]]:
    walls, computes = {}, {}
    for n in (1, 2):
        raw = config_dict(source=str(scenario.catalog_path), aois=[scenario.aoi_path], out=work / f"w{n}",
                          cache=work / f"w{n}-cache", end="2023-03-31", n_workers=n, threads=1)
        res = _run(raw)
        walls[n] = res["wall_s"]
        computes[n] = sum(a["timings_s"].get("compute_s", 0.0) for a in res["manifest"]["aois"].values())
    return [
        {"name": "(4) whole path, 1 worker x 1 thread", "value": round(walls[1], 2), "unit": "s",
         "note": f"compute stage {computes[1]:.1f} s"},
        {"name": "(4) whole path, 2 workers x 1 thread", "value": round(walls[2], 2), "unit": "s",
         "note": f"compute stage {computes[2]:.1f} s"},
        {"name": "speedup_2_workers", "value": round(walls[1] / walls[2], 3), "unit": "x"},
        {"name": "(4) compute stage alone, 1 / 2 workers", "value": round(computes[1] / computes[2], 3), "unit": "x"},
    ]


def bench_parallel_aois(work: Path, scenario: Any) -> list[dict[str, Any]]:
    aois = split_aois(scenario, work / "aois8", 8)
    walls = {}
    for in_flight in (1, 8):
        raw = config_dict(source=str(scenario.catalog_path), aois=aois, out=work / f"p{in_flight}",
                          cache=work / f"p{in_flight}-cache", end="2023-03-31", n_workers=2, threads=1,
                          dask={"aois_in_flight": in_flight})
        walls[in_flight] = _run(raw)["wall_s"]
    return [
        {"name": "(5) 8 AOIs one after another", "value": round(walls[1], 2), "unit": "s"},
        {"name": "(5) 8 AOIs in parallel", "value": round(walls[8], 2), "unit": "s"},
        {"name": "speedup_8_aois_parallel", "value": round(walls[1] / walls[8], 3), "unit": "x"},
    ]


def bench_rerun(work: Path, scenario: Any) -> list[dict[str, Any]]:
    common = {"source": str(scenario.catalog_path), "aois": [scenario.aoi_path], "n_workers": 2, "threads": 1}
    _run(config_dict(**common, out=work / "r-q4", cache=work / "r-cache", end="2022-12-31"))
    rerun = _run(config_dict(**common, out=work / "r-q1", cache=work / "r-cache", end="2023-03-31"))
    full = _run(config_dict(**common, out=work / "r-full", cache=work / "r-fresh", end="2023-03-31"))
    (state,) = [a["state"] for a in rerun["manifest"]["aois"].values()]
    c_rerun = sum(a["timings_s"].get("compute_s", 0.0) for a in rerun["manifest"]["aois"].values())
    c_full = sum(a["timings_s"].get("compute_s", 0.0) for a in full["manifest"]["aois"].values())
    same = all((work / "r-q1" / f).read_bytes() == (work / "r-full" / f).read_bytes()
               for f in ("sites.geojson", "activity.csv", "crosscheck.csv", "flags.csv"))
    return [
        {"name": "(6) full run Oct 2022 - Mar 2023", "value": round(full["wall_s"], 2), "unit": "s"},
        {"name": "(6) re-run adding Jan - Mar 2023", "value": round(rerun["wall_s"], 2), "unit": "s",
         "note": f"{state['dates_computed']} dates computed, {state['dates_reused']} reused; "
                 f"outputs identical: {same}"},
        {"name": "rerun_over_full", "value": round(rerun["wall_s"] / full["wall_s"], 3), "unit": "x"},
        {"name": "(6) compute stage alone, re-run / full", "value": round(c_rerun / c_full, 3), "unit": "x",
         "note": f"{c_rerun:.1f} s / {c_full:.1f} s"},
    ]


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        import psutil

        mem = f", {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    except ImportError:
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, Python {platform.python_version()}, {platform.system()}"


def write_results(rows: list[dict[str, Any]], *, machine: str, load: tuple[float, float], seconds: float) -> None:
    lines = [
        "# Benchmark results (`python -m benchmarks bench_scale`)",
        "",
        f"Machine: {machine}. Load average (1 min) {load[0]:.1f} at the start and {load[1]:.1f} at the end of the run "
        f"({seconds / 60:.1f} min): other jobs shared the cores, so absolute times are noisy; each ratio below was",
        "taken within this one run. Written by the benchmark itself; see its docstring for the set-up.",
        "",
        "| measurement | value | unit | ratio / share | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        target, check = TARGETS.get(r["name"], ("", None))
        met = "" if check is None else ("yes" if check(r["value"]) else "no")
        ratio = r.get("ratio", "")
        note = f" ({r['note']})" if r.get("note") else ""
        lines.append(f"| {r['name']}{note} | {r['value']} | {r.get('unit', '')} | {ratio} | {target} | {met} |")
    RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = sys.argv[1:] if argv is None else argv
    quick = "--quick" in args
    only = [a for a in args if a.startswith("(")]
    t0 = time.perf_counter()
    load0 = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="kp-bench-scale-"))
    try:
        base = (60, 80) if quick else (120, 160)
        scenario = write_scenario(work / "scenario", _spec(base))
        rows: list[dict[str, Any]] = []
        steps = [
            ("(1)", lambda: bench_end_to_end_http(work, scenario)),
            ("(2)", bench_detect_paths),
            ("(3)", lambda: bench_memory(work, base)),
            ("(4)", lambda: bench_workers(work, scenario)),
            ("(5)", lambda: bench_parallel_aois(work, scenario)),
            ("(6)", lambda: bench_rerun(work, scenario)),
        ]
        for label, step in steps:
            if only and label not in only:
                continue
            t_step = time.perf_counter()
            try:
                rows += step()
            except Exception as exc:  # one broken measurement must not hide the others
                rows.append({"name": f"{label} FAILED", "value": f"{type(exc).__name__}: {exc}"[:200], "unit": ""})
            print(f"bench_scale {label}: {time.perf_counter() - t_step:.0f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.perf_counter() - t0
    write_results(rows, machine=_machine(), load=(load0, os.getloadavg()[0]), seconds=seconds)
    return rows


def run() -> list[dict[str, Any]]:
    return main([])


if __name__ == "__main__":
    for row in main():
        print(row)
