"""The command line with a pause at a named point, for the kill -9 tests.

    python -m tests.killpoints POINT -- monitor --config ... --out ...

runs ``pipeline.__main__.main`` unchanged, except that when the run reaches ``POINT`` it
prints ``KILLPOINT POINT`` on stderr and sleeps until it is killed; the test then kills the
whole process group (the CLI, its Dask nanny and worker processes) with SIGKILL. The points
are chosen where a real kill does the most damage:

``search``
    the AOI's search has returned its items (nothing fetched yet);
``acquisition``
    the 40th window is being written into the cache: its lock is held and a half-written
    temporary (``.<entry>.<pid>.<hex>.tmp``) is on disk, as a kill mid-write leaves them;
``compute``
    the AOI's graph has been on the cluster for a second (``Submission.submit``, as
    :func:`pipeline.run.run_aois` submits it, or ``dask.compute``): the workers are busy;
``writing``
    ``sites.geojson`` and ``activity.csv`` are written, ``crosscheck.csv`` is written to its
    temporary name but not renamed (``.crosscheck.csv.part.*``): the folder mixes new and
    old files;
``archiving``
    three files are copied into ``archive/.bulletin-NNNN.part`` (the staged archive).

``none`` runs the command line as it is. No production code knows about these points: the
pauses are patched in here, in the child process only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

POINTS = ("search", "acquisition", "compute", "writing", "archiving")


def pause(point: str) -> None:
    sys.stderr.write(f"KILLPOINT {point}\n")
    sys.stderr.flush()
    while True:
        time.sleep(60)


def install(point: str) -> None:
    """Patch the pause for ``point`` into the pipeline (in this process)."""
    if point == "none":
        return
    if point not in POINTS:
        raise SystemExit(f"unknown kill point {point!r}; one of {', '.join(POINTS)} or none")
    globals()[f"_install_{point}"]()


def _install_search() -> None:
    import pipeline.search as search

    real = search.search_items

    def search_items(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        pause("search")

    search.search_items = search_items


def _install_acquisition() -> None:
    from pipeline.cache import WindowCache

    real: Callable[..., int] = WindowCache.write
    count = [0]
    guard = threading.Lock()

    def write(self: WindowCache, entry: Path, data: Any, profile: Any, tags: Any) -> int:
        with guard:
            count[0] += 1
            n = count[0]
        if n == 40:  # inside WindowCache.lock(entry): the entry's lock is held
            tmp = entry.with_name(f".{entry.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_bytes(b"II*\x00" + b"\x00" * 100)  # the first bytes of a GeoTIFF, no more
            pause("acquisition")
        return real(self, entry, data, profile, tags)

    WindowCache.write = write  # type: ignore[method-assign]


def _install_compute() -> None:
    import dask

    real = dask.compute

    def compute(*args: Any, **kwargs: Any) -> Any:
        threading.Thread(target=lambda: real(*args, **kwargs), daemon=True).start()
        time.sleep(1.0)
        pause("compute")

    dask.compute = compute

    # The run submits each AOI's graph as futures (pipeline.run.run_aois, through
    # pipeline.graphs.Submission): kill once the cluster has been computing for a second.
    from pipeline import graphs

    real_submit = graphs.Submission.submit

    def submit(self: Any, client: Any) -> Any:
        futures = real_submit(self, client)
        time.sleep(1.0)
        pause("compute")
        return futures

    graphs.Submission.submit = submit  # type: ignore[method-assign]


def _install_writing() -> None:
    import pipeline.io as io

    real = io.atomic_path

    @contextlib.contextmanager
    def atomic_path(target: str | Path, *, suffix: str = ".part") -> Iterator[Path]:
        with real(target, suffix=suffix) as tmp:
            yield tmp
            if Path(target).name == "crosscheck.csv":
                pause("writing")  # written to the temporary name, not renamed

    io.atomic_path = atomic_path


def _install_archiving() -> None:
    real = shutil.copy2
    count = [0]

    def copy2(src: Any, dst: Any, **kwargs: Any) -> Any:
        result = real(src, dst, **kwargs)
        if ".bulletin-" in str(dst) and ".part" in str(dst):
            count[0] += 1
            if count[0] == 3:
                pause("archiving")
        return result

    shutil.copy2 = copy2


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "--":
        raise SystemExit("usage: python -m tests.killpoints POINT -- ARGS...")
    install(argv[0])
    from pipeline.__main__ import main as cli

    return cli(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
