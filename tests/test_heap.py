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
# given back at the heap's top, so the process keeps them; with the trim threshold set, each
# is its own memory map and is unmapped when freed.
_SCRIPT = """
import json, sys
import psutil
set_it = sys.argv[1] == "1"
threshold = None
if set_it:
    from pipeline.heap import return_freed_memory
    threshold = return_freed_memory()
proc = psutil.Process()
big = bytearray(8 << 20)
del big
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


def test_a_threshold_the_process_started_with_is_left_as_it_is() -> None:
    # glibc applied the variable when the process started: nothing to set, and the blocks go back
    assert _run(True, MALLOC_TRIM_THRESHOLD_="131072") == {"threshold": None, "kept_mib": pytest.approx(0, abs=8)}
