"""The run's own process returns freed memory to the system, as ``distributed`` has its workers do.

glibc's ``malloc`` serves a large block (128 KiB and up) from its own memory map and unmaps it
when it is freed. But each time such a block is freed, glibc raises that size limit to the
block's size (up to 32 MiB), so that later blocks of that size come from the heap instead, and
freed heap memory is kept by the process for reuse. A run's client gathers each AOI's
results, writes its composites and draws its bulletin: blocks of a few to tens of megabytes, the
more the larger the AOI, and freed heap memory stays with the process to the end of the run.

``distributed``'s nanny starts each worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (its
``distributed.nanny.pre-spawn-environ``), which fixes both limits: the heap is given back
above 64 KiB free, and large blocks stay memory-mapped. :func:`return_freed_memory` sets the
same threshold in the run's process through ``mallopt``, which acts at once (the variable is
read only when a process starts).

Measured on the benchmark's memory scenario (``tests/scale_fixtures``, one worker, 2 cores;
whole-tree PSS sampled every 50 ms): at 480 x 640 px the run's process peaked at 389-424 MB
against 465-540 MB without the threshold (four runs each), and the whole run at 740-741 MB
against 774-779 MB (two alternating pairs); at 120 x 160 px the whole run was unchanged
(568-569 MB against 572-590 MB).
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import threading

log = logging.getLogger("pipeline")

#: ``mallopt``'s parameter number for the trim threshold (glibc's ``M_TRIM_THRESHOLD``).
M_TRIM_THRESHOLD = -1
#: The threshold when ``distributed``'s configuration gives none, in bytes (its default).
DEFAULT_TRIM_THRESHOLD = 65536

_lock = threading.Lock()
_set: int | None = None


def return_freed_memory() -> int | None:
    """Set glibc's trim threshold of this process to the one ``distributed``'s nanny gives its
    workers; the threshold set, in bytes, or ``None``.

    Nothing is set where the C library is not glibc, where this process started with
    ``MALLOC_TRIM_THRESHOLD_`` of its own (glibc applied it), or where the configuration's
    ``distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_`` is null (the workers get
    none either). Once set, it stays for the life of the process (glibc cannot report the
    previous value to restore)."""
    global _set
    with _lock:
        if _set is not None:
            return _set
        if "MALLOC_TRIM_THRESHOLD_" in os.environ or platform.libc_ver()[0] != "glibc":
            return None
        import dask
        import distributed  # noqa: F401  (its configuration's defaults)

        value = dask.config.get("distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_",
                                default=DEFAULT_TRIM_THRESHOLD)
        try:
            threshold = int(value)
            libc = ctypes.CDLL("libc.so.6")
            ok = libc.mallopt(M_TRIM_THRESHOLD, threshold) == 1
        except (TypeError, ValueError, OSError, AttributeError) as exc:
            log.debug("heap: trim threshold not set (%s)", exc)
            return None
        if not ok:
            log.debug("heap: mallopt refused trim threshold %s", threshold)
            return None
        _set = threshold
        return threshold
