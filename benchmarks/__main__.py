"""``python -m benchmarks [NAME ...] [PART ...]``: run every benchmark module (or those named)
and print its rows and ratios. ``PART``: arguments for the named module's ``main``, such as the
parts of ``bench_scale`` (``python -m benchmarks bench_scale 4``).

Run as ``python -m benchmarks``, never as ``python -m benchmarks.<module>``: the local clusters of
the benchmarks start worker processes, and ``multiprocessing`` has each of them import the main
module of the process first unless it is a package's ``__main__``. With a benchmark module as the
main module, every worker imported it, and with it the test fixtures and the scenario writer:
about 2 CPU-s more per worker start, the cluster of a quarterly re-run up in 5.2 s instead of 2.5 s
on the 2-core machine of ``RESULTS.md``."""

from __future__ import annotations

import importlib
import inspect
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: Run first, in this order; then every ``bench_*.py`` in name order.
FIRST = ("window_bytes",)


def discover() -> list[str]:
    names = list(FIRST) + sorted(p.stem for p in HERE.glob("bench_*.py"))
    return [n for n in dict.fromkeys(names) if (HERE / f"{n}.py").is_file()]


def as_rows(result: Any) -> list[dict[str, Any]]:
    """Normalise what a benchmark returns: rows, a ``{name: value}`` dict, or anything else."""
    if result is None:
        return []
    if isinstance(result, dict):
        return [{"name": k, "value": v, **({"ratio": v} if "ratio" in k or "speed" in k else {})}
                for k, v in result.items()]
    if isinstance(result, (list, tuple)):
        return [r if isinstance(r, dict) else {"name": "", "value": str(r)} for r in result]
    return [{"name": "", "value": str(result)}]


def format_rows(title: str, rows: Sequence[dict[str, Any]]) -> str:
    lines = [title, "-" * len(title)]
    width = max([len(str(r.get("name", ""))) for r in rows] + [4])
    for r in rows:
        value = r.get("value")
        text = f"{value:,.4g}" if isinstance(value, float) else (f"{value:,}" if isinstance(value, int) else str(value))
        unit = r.get("unit", "")
        extra = f"   ratio {r['ratio']:.3g}" if isinstance(r.get("ratio"), (int, float)) else ""
        note = f"   ({r['note']})" if r.get("note") else ""
        lines.append(f"  {str(r.get('name', '')).ljust(width)}  {text} {unit}{extra}{note}".rstrip())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    wanted = [a for a in args if a in discover()]
    options = [a for a in args if a not in wanted]
    names = [n for n in discover() if not wanted or n in wanted]
    if options and not wanted:
        print(f"no benchmark named {' '.join(options)}; available: {', '.join(discover())} (parts are given with "
              f"the benchmark they belong to: python -m benchmarks bench_scale 4)", file=sys.stderr)
        return 2
    refuse = [n for n in wanted if not _takes_argv(n)] if options else []
    if refuse:
        print(f"{', '.join(refuse)} takes no arguments, given {' '.join(options)}; parts belong to bench_scale "
              f"(python -m benchmarks bench_scale 4)", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        t0 = time.perf_counter()
        try:
            if options:
                rows = module.main(options)
            else:
                rows = module.run() if hasattr(module, "run") else module.main()
        except Exception as exc:  # one broken benchmark must not hide the others
            failed += 1
            print(f"{name}: FAILED: {type(exc).__name__}: {exc}\n")
            continue
        print(format_rows(f"{name} ({time.perf_counter() - t0:.1f} s)", as_rows(rows)))
        print()
    return 1 if failed else 0


def _takes_argv(name: str) -> bool:
    """Whether the module's ``main`` takes an argument list (``main(argv)``); ``False`` when the
    module cannot be imported (its run then reports why)."""
    try:
        main = getattr(importlib.import_module(f"benchmarks.{name}"), "main", None)
    except Exception:  # noqa: BLE001 - reported when the benchmark runs
        return False
    return main is not None and bool(inspect.signature(main).parameters)


if __name__ == "__main__":
    sys.exit(main())
