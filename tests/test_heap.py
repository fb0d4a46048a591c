"""The run's process returns freed memory to the system (pipeline.heap), as distributed's
nanny has its workers do."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

# A freed 8 MiB block raises glibc's memory-map limit to 8 MiB; 64 blocks of 1 MiB then come
# from the heap, each followed by a small block that stays. Freed, the 1 MiB blocks cannot be
# given back at the heap's top, so the process keeps them. With the thresholds set (after the
# 8 MiB block, as a run sets them after its imports), each is its own memory map again and is
# unmapped when freed.
_SCRIPT = """
import json, sys
import psutil
big = bytearray(8 << 20)
del big
threshold = None
if sys.argv[1] == "1":
    from pipeline.heap import return_freed_memory
    threshold = return_freed_memory()
proc = psutil.Process()
before = proc.memory_info().rss
blocks, kept = [], []
for _ in range(64):
    blocks.append(bytearray(1 << 20))
    kept.append(bytearray(2000))
del blocks
print(json.dumps({"threshold": threshold, "kept_mib": (proc.memory_info().rss - before) / 2**20}))
"""


def _run(set_it: bool, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"} | env
    out = subprocess.run([sys.executable, "-c", _SCRIPT, "1" if set_it else "0"], capture_output=True, text=True,
                         check=True, timeout=120, env=environ)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_freed_blocks_go_back_to_the_system_once_the_threshold_is_set() -> None:
    before = _run(False)
    if before["kept_mib"] < 32:
        pytest.skip(f"this malloc gave the blocks back by itself ({before['kept_mib']:.1f} MiB kept)")
    after = _run(True)
    assert after["threshold"] == 65536  # distributed's nanny.pre-spawn-environ value
    assert after["kept_mib"] < 8, after


def test_the_threshold_is_the_processs_own_variable_when_it_has_one() -> None:
    # as the nanny gives it to the workers (a local cluster's nanny also leaves it in the
    # client's environment, where glibc no longer reads it)
    assert _run(True, MALLOC_TRIM_THRESHOLD_="131072") == {"threshold": 131072, "kept_mib": pytest.approx(0, abs=8)}


def test_a_threshold_mallopt_cannot_take_sets_nothing(monkeypatch) -> None:
    from pipeline import heap

    monkeypatch.setattr(heap, "_set", None)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", str(2**40))
    assert heap.return_freed_memory() is None
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "lots")
    assert heap.return_freed_memory() is None


def test_a_run_sets_it(monkeypatch, tmp_path) -> None:
    from pipeline import run
    from pipeline.config import MonitorConfig
    from pipeline.errors import MonitorError
    from tests.scale_fixtures import config_dict

    calls: list[int] = []
    monkeypatch.setattr(run, "return_freed_memory", lambda: calls.append(1))
    cfg = MonitorConfig.model_validate(config_dict(
        source=str(tmp_path / "catalog.json"), aois=[tmp_path / "aoi.geojson"], out=tmp_path / "out",
        cache=tmp_path / "cache", n_workers=1, threads=1))
    with pytest.raises(MonitorError):  # no such AOI file: refused, after the call
        run.run_monitor(cfg)
    assert calls == [1]
