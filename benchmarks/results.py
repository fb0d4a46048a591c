"""``benchmarks/RESULTS.md``: the table of :mod:`benchmarks.bench_scale`, its targets, and a
header saying on what machine, and beside what else, it was measured."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

__all__ = ["RESULTS", "TARGETS", "cpu_delta", "cpu_use", "machine", "own_cpu_s", "write_results"]

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

#: The issue's targets: the row's name, the part of the benchmark it belongs to, its target as
#: printed, and the check.
TARGETS = {
    "detect_over_numpy": ("(2)", "<= 1.5", lambda v: v <= 1.5),
    "memory_16x_over_1x": ("(3)", "<= 1.3", lambda v: v <= 1.3),
    "speedup_2_workers": ("(4)", ">= 1.6", lambda v: v >= 1.6),
    "speedup_2_workers_16x": ("(4)", ">= 1.6", lambda v: v >= 1.6),
    "speedup_8_aois_parallel": ("(5)", ">= 1.6", lambda v: v >= 1.6),
    "rerun_over_full": ("(6)", "< 0.25", lambda v: v < 0.25),
    "rerun_over_full_16x": ("(6)", "< 0.25", lambda v: v < 0.25),
    "rerun_over_full_1x": ("(6)", "< 0.25", lambda v: v < 0.25),
    "rerun_over_full_2_quarters": ("(6)", "< 0.25", lambda v: v < 0.25),
}


def machine() -> str:
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


def _part(name: str) -> str:
    """The part of a row: numbered rows name it, the ratio rows are in :data:`TARGETS`."""
    return name[:3] if name.startswith("(") else TARGETS.get(name.split(" ")[0], ("",))[0]


def own_cpu_s() -> float:
    """CPU seconds of this process and of its children that have been waited for."""
    import resource

    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def cpu_use() -> dict[str, float] | None:
    """CPU seconds so far: of this process and its waited-for children (``own``), of every
    process on the machine (``busy``) and taken by the hypervisor for other machines (``steal``);
    ``None`` without Linux's ``/proc/stat``."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (v / tick for v in fields)
    return {"own": own_cpu_s(), "busy": user + nice + system + irq + softirq, "steal": steal}


def cpu_delta(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float] | None:
    """CPU seconds used during the run: by the benchmark, by every other process (never below
    0: the two counters tick apart), and stolen by the hypervisor."""
    if before is None or after is None:
        return None
    own = after["own"] - before["own"]
    return {"own": own, "others": max(0.0, after["busy"] - before["busy"] - own),
            "steal": after["steal"] - before["steal"]}


def write_results(rows: list[dict[str, Any]], *, machine: str, load: float, seconds: float,
                  only: list[str] | None = None, cpu: dict[str, float] | None = None) -> None:
    """Write the table; with ``only`` (some parts run), the other parts' rows are kept from the
    previous file, and the header says which rows come from which run."""
    kept: list[str] = []
    previous = ""
    if only and RESULTS.is_file():
        old = RESULTS.read_text(encoding="utf-8").splitlines()
        previous = next((line for line in old if line.startswith("Machine:")), "")
        for line in old:
            if line.startswith("| ") and not line.startswith(("| measurement", "| ---")):
                if _part(line[2:]) not in only:
                    kept.append(line)
    when = time.strftime("%Y-%m-%d")
    cores = os.cpu_count() or 1
    if cpu is None:
        used = "what else used the cores was not measured (no /proc/stat)"
    else:
        used = (f"of the {cores * seconds:,.0f} CPU-s the {cores} cores had, the benchmark used {cpu['own']:,.0f}, "
                f"other processes {cpu['others']:,.0f} and the hypervisor took {cpu['steal']:,.0f} (steal)")
    lines = [
        "# Benchmark results (`python -m benchmarks bench_scale`)",
        "",
        f"Machine: {machine}. Run of {seconds / 60:.1f} min on {when}, load average (1 min) {load:.1f} at its start; "
        f"{used}. Absolute times move with what else runs; each ratio",
        "below was taken within one run. Written by the benchmark itself; see its docstring for the set-up.",
    ]
    if kept:
        lines += ["", f"This run measured parts {', '.join(only or [])} only (`python -m benchmarks bench_scale "
                  f"{' '.join(repr(o) for o in only or [])}`); the rows of the other parts are kept from the "
                  f"previous run, whose header read: \"{previous.removeprefix('Machine: ')[:400]}\""]
    lines += [
        "",
        "| measurement | value | unit | ratio / share | target | met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    new_lines = []
    for r in rows:
        _part_of_row, target, check = TARGETS.get(r["name"], ("", "", None))
        met = "" if check is None else ("yes" if check(r["value"]) else "no")
        ratio = r.get("ratio", "")
        note = f" ({r['note']})" if r.get("note") else ""
        new_lines.append(f"| {r['name']}{note} | {r['value']} | {r.get('unit', '')} | {ratio} | {target} | {met} |")
    order = ["(1)", "(2)", "(3)", "(4)", "(5)", "(6)", ""]
    table = sorted(kept + new_lines, key=lambda line: order.index(_part(line[2:])) if _part(line[2:]) in order else 9)
    RESULTS.write_text("\n".join(lines + table) + "\n", encoding="utf-8")
