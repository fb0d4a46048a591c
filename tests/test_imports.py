"""What a run imports: scikit-learn and skops only where a site model is trained, saved or loaded.

With them, importing :mod:`pipeline.run` took 4.2-5.3 s here instead of 2.9-3.0 s (skops imports
every scikit-learn estimator to list the types it trusts), on every ``monitor``, ``demo`` and
``scenes`` command, although the shipped configurations name no site model."""

from __future__ import annotations

import json
import subprocess
import sys


def test_a_run_without_a_site_model_imports_neither_scikit_learn_nor_skops() -> None:
    code = ("import json, sys; import pipeline.run, pipeline.__main__; "
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'skops', 'threadpoolctl'})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []

