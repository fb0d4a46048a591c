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



def test_monitor_refuses_a_bad_aoi_file_before_it_imports_the_run(tmp_path) -> None:
    """A bad AOI file is refused (exit 2, its one line) before ``pipeline.run``, Dask's
    distributed scheduler or odc-stac are imported, and no fork server is started: about 1 s
    here instead of 2.5-3.5 s."""
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json", encoding="utf-8")
    code = (
        "import json, sys; import pipeline.workers as w; from pipeline.__main__ import main; "
        "started = []; w.start_fork_server = lambda: started.append(1); "
        f"rc = main(['monitor', '--aoi', {str(bad)!r}, '--out', {str(tmp_path / 'out')!r}], early_fork_server=True); "
        "print(json.dumps([rc, sorted(m for m in ('pipeline.run', 'distributed', 'odc.stac') if m in sys.modules), "
        "len(started)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [2, [], 0]
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error: AOI file {bad} is not valid JSON")
    assert not (tmp_path / "out").exists()
