"""``python -m benchmarks [NAME ...]``: run every benchmark module and print its rows and ratios."""

from __future__ import annotations

import importlib
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
    wanted = list(argv if argv is not None else sys.argv[1:])
    names = [n for n in discover() if not wanted or n in wanted]
    if wanted and not names:
        print(f"no benchmark named {wanted}; available: {', '.join(discover())}", file=sys.stderr)
        return 2
    failed = 0
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        t0 = time.perf_counter()
        try:
            rows = module.run() if hasattr(module, "run") else module.main()
        except Exception as exc:  # one broken benchmark must not hide the others
            failed += 1
            print(f"{name}: FAILED: {type(exc).__name__}: {exc}\n")
            continue
        print(format_rows(f"{name} ({time.perf_counter() - t0:.1f} s)", as_rows(rows)))
        print()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
