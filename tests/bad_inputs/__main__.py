"""Classify every bad-input case against a checkout's ``pipeline``: GOOD / NOISY / WRONG.

    python -m tests.bad_inputs [--pipeline CHECKOUT] [--fast] [--only NAME] [--json FILE]

Run from this checkout (the corpus and harness live here). ``--pipeline`` names another
checkout whose ``pipeline`` package is to be judged (e.g. a ``git worktree add /tmp/base
main``); by default this checkout's. (``PYTHONPATH`` cannot do it: ``python -m`` puts the
current folder, with its own ``pipeline``, first on ``sys.path``.) Each case runs in process
through ``pipeline.__main__.main`` in its own temporary folder.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

from .harness import judge, load_cases, run_case, write_tiny_scenario


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bad_inputs")
    parser.add_argument("--pipeline", type=Path, help="checkout whose pipeline package to judge (default: this one)")
    parser.add_argument("--fast", action="store_true", help="leave out the cases marked slow (whole runs)")
    parser.add_argument("--only", action="append", help="run only cases whose name contains this")
    parser.add_argument("--json", type=Path, help="write the verdicts as JSON here")
    args = parser.parse_args()
    if args.pipeline is not None:
        if "pipeline" in sys.modules:
            raise SystemExit("pipeline is already imported; --pipeline must come first")
        sys.path.insert(0, str(args.pipeline.resolve()))
    import pipeline

    cases = load_cases()
    if args.fast:
        cases = [c for c in cases if not c.slow]
    if args.only:
        cases = [c for c in cases if any(o in c.name for o in args.only)]
    print(f"pipeline from {Path(pipeline.__file__).parent}; {len(cases)} case(s)", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bad-inputs-") as tmp:
        root = Path(tmp)
        scenario = write_tiny_scenario(root / "scenario") if any(c.needs_scenario for c in cases) else None
        for i, case in enumerate(cases):
            t0 = time.perf_counter()
            outcome = run_case(case, root / f"case{i:03d}", scenario if case.needs_scenario else None)
            verdict = judge(case, outcome)
            seconds = time.perf_counter() - t0
            last = [ln for ln in outcome.stderr.splitlines() if ln.strip()]
            results.append({
                "case": case.name, "verdict": verdict.verdict, "reasons": verdict.reasons, "exit": outcome.code,
                "expected_exit": case.exit, "seconds": round(seconds, 2), "last_line": last[-1][:300] if last else "",
            })
            print(f"{verdict.verdict:5s} {case.name:45s} exit {outcome.code} ({seconds:.1f} s)"
                  f"{'  ' + '; '.join(verdict.reasons) if verdict.reasons else ''}", flush=True)
    counts = collections.Counter(r["verdict"] for r in results)
    print(f"\n{len(results)} cases: GOOD {counts['GOOD']}, NOISY {counts['NOISY']}, WRONG {counts['WRONG']}")
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, "results": results}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
