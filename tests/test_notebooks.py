"""The notebooks in ``notebooks/`` execute top to bottom against a demo run (nbclient).

A small demo scenario (the demo's generator, dates and configuration; fewer pixels, pits
and bands) is written and run through ``python -m pipeline monitor`` once; the notebooks
find it through ``KP_DEMO_DIR`` / ``KP_CONFIG``. The kernel is this interpreter
(a kernelspec written to a temporary ``JUPYTER_PATH``), so the notebooks import the
``pipeline`` under test. The default suite executes ``03_crosscheck``; the other notebooks are
``slow`` (``make notebooks`` and ``make test-all`` run them all).
"""

from __future__ import annotations

import ast
import importlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
ipykernel_kernelspec = pytest.importorskip("ipykernel.kernelspec")


REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
NAMES = [p.name for p in NOTEBOOKS]
KERNEL = "kp-monitor-notebooks"
#: Public names of the stage modules: a notebook must import these, never define them.
STAGE_MODULES = ("acquire", "search", "preprocess", "detect", "sites", "crosscheck", "declared",
                 "evaluate", "aoi", "bulletin.figures", "bulletin", "explore", "run", "workflow", "candidates",
                 "aoi_radar", "aoi_windows", "jobs", "classify", "assess", "register", "training")


def test_notebooks_exist() -> None:
    assert NAMES == ["01_explore_aoi.ipynb", "02_tune_detector.ipynb", "03_crosscheck.ipynb", "04_review_loop.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebooks_define_no_stage_functions(path: Path) -> None:
    public = set()
    for name in STAGE_MODULES:
        module = importlib.import_module(f"pipeline.{name}")
        public |= set(getattr(module, "__all__", ()))
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith("%"))
        defined = {n.name for n in ast.walk(ast.parse(source))
                   if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        assert not defined & public, f"{path.name} redefines {defined & public}; import them instead"
    assert "from pipeline" in "".join(c.source for c in nb.cells)


@pytest.fixture(scope="module")
def demo_dir(demo_run: Path) -> Path:
    """A demo output folder: the scenario plus one monitor run over it (the session's
    :func:`tests.conftest.demo_run`, shared with the output checks)."""
    return demo_run


@pytest.fixture(scope="module")
def kernel_env(demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A kernelspec for this interpreter, and the variables the notebooks read."""
    prefix = tmp_path_factory.mktemp("jupyter")
    ipykernel_kernelspec.install(kernel_name=KERNEL, prefix=str(prefix))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
        mp.setenv("KP_DEMO_DIR", str(demo_dir))
        mp.setenv("KP_CONFIG", str(demo_dir / "demo.yaml"))
        mp.setenv("KP_MONITOR_CACHE_DIR", str(demo_dir / "cache"))
        mp.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        mp.setenv("PYTHONWARNINGS", "ignore")
        yield


def _execute(path: Path, workdir: Path) -> Any:
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=300, allow_errors=False,
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()
    nbformat.write(nb, workdir / path.name)  # the executed copy, for a failing test's reader
    return nb


def _text(nb: Any) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                out.append(o["text"])
            elif "text/plain" in o.get("data", {}):
                out.append(o["data"]["text/plain"])
    return "\n".join(out)


def _images(nb: Any) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.slow  # run by make notebooks / make test-all; 03 runs a notebook by default
def test_explore_aoi(kernel_env: None, tmp_path: Path) -> None:
    nb = _execute(REPO / "notebooks" / "01_explore_aoi.ipynb", tmp_path)
    text = _text(nb)
    assert "same ids: True" in text  # the notebook's detect reproduces the pipeline's sites
    assert _images(nb) >= 4  # clear fraction, composites, indices, map
    html = [o["data"]["text/html"] for c in nb.cells for o in c.get("outputs", [])
            if "hover a site" in o.get("data", {}).get("text/html", "")]
    assert html and "<title>" in html[0] and "<script" not in html[0].lower()


@pytest.mark.slow  # run by make notebooks / make test-all; 03 runs a notebook by default
def test_tune_detector(kernel_env: None, demo_dir: Path, tmp_path: Path) -> None:
    from pipeline.evaluate import evaluate_sites, read_sites, read_truth

    nb = _execute(REPO / "notebooks" / "02_tune_detector.ipynb", tmp_path)
    text = _text(nb)
    line = next(ln for ln in text.splitlines() if ln.startswith("F1: A = "))
    f1_a, f1_b, f1_c = (float(part.split("=")[1]) for part in line.removeprefix("F1: ").split(","))
    # Setting A is the configuration as run: the notebook scores what the pipeline found.
    run = evaluate_sites(read_sites(demo_dir / "sites.geojson"), read_truth(demo_dir / "scenario" / "truth.geojson"))
    assert f1_a == pytest.approx(run["f1"], abs=5e-4)
    assert f1_a > 0 and 0 <= f1_b <= 1 and 0 <= f1_c <= 1
    otsu = next(ln for ln in text.splitlines() if ln.startswith("Otsu NDVI-drop threshold found for C:"))
    assert 0.15 <= float(otsu.rsplit(":", 1)[1]) <= 0.5  # within the configured floor and ceiling
    assert _images(nb) >= 2


def test_crosscheck(kernel_env: None, demo_dir: Path, tmp_path: Path) -> None:
    nb = _execute(REPO / "notebooks" / "03_crosscheck.ipynb", tmp_path)
    text = _text(nb)
    assert "same estimates as the run's crosscheck.csv: True" in text
    assert "explanation" in text  # the review's anomalies table (CIV has none since its blog-sourced 2014 figure left)
    assert _images(nb) >= 3
    assert json.loads((demo_dir / "manifest.json").read_text())["aois"]  # the run it read


@pytest.mark.slow
def test_review_loop(kernel_env: None, demo_dir: Path, tmp_path: Path) -> None:
    """Sample, label from the truth, estimate, record verdicts, re-run, retrain (two more
    pipeline passes over the small scene: ``make notebooks`` / ``make test-all``). Runs last:
    it re-runs monitor into the shared demo folder."""
    nb = _execute(REPO / "notebooks" / "04_review_loop.ipynb", tmp_path)
    text = _text(nb)
    assert "the interval holds the true area: " in text  # reported, true or not (README: 26 of 30)
    assert "holds the true area: True" in text.split("conservative range")[1]
    assert "no false alarm among the sites: True" in text
    assert "grouped CV" in text
    assert _images(nb) >= 1  # a chip
    manifest = json.loads((demo_dir / "manifest.json").read_text())
    # The same period again: a revision of bulletin 1 (bulletin.reissue), not bulletin 2.
    assert (manifest["bulletin_number"], manifest["revision"]) == (1, 2)
