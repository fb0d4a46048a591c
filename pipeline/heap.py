"""The run's own process returns freed memory to the system, as ``distributed`` has its workers do.

glibc's ``malloc`` serves a large block (128 KiB and up) from its own memory map and unmaps it
when it is freed. But each time such a block is freed, glibc raises that size limit to the
block's size (up to 32 MiB), so that later blocks of that size come from the heap instead, and
freed heap memory is kept by the process for reuse. A run's client gathers each AOI's
results, writes its composites and draws its bulletin: blocks of a few to tens of megabytes, the
more the larger the AOI, and freed heap memory stays with the process to the end of the run.

``distributed``'s nanny starts each worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (its
``distributed.nanny.pre-spawn-environ``). glibc reads the variable when a process starts, and
setting it stops the limit from moving: the worker's large blocks stay memory-mapped, and the
top of its heap is given back once more than 64 KiB of it is free. :func:`return_freed_memory`
does the same in a process that is already running, through ``mallopt``: the same trim
threshold, and the memory-map limit put back to glibc's starting 128 KiB (setting the trim
threshold alone would freeze the limit wherever the blocks freed before had moved it). It is
called by :func:`pipeline.run.run_monitor`, so it applies to any process that runs the
pipeline, for the rest of its life.

Measured on the benchmark's memory scenario (``tests/scale_fixtures``, one worker, 2 cores;
whole-tree PSS sampled every 50 ms; two alternating pairs): at 480 x 640 px the run's process
peaked at 391-395 MB against 481-482 MB without the thresholds. The whole run's peak moved
less, 746-747 MB against 751 MB, as it now comes while the worker computes, not while this
process makes the sites; at 120 x 160 px, 567-570 MB against 568-577 MB.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import threading

log = logging.getLogger("pipeline")

#: ``mallopt``'s parameter numbers (glibc's ``M_TRIM_THRESHOLD`` and ``M_MMAP_THRESHOLD``).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: The size from which a block gets its own memory map, in bytes: glibc's starting value.
MMAP_THRESHOLD = 128 * 1024

_lock = threading.Lock()
_set: int | None = None


def return_freed_memory() -> int | None:
    """Set glibc's trim threshold of this process to the one ``distributed``'s nanny gives its
    workers, and its memory-map threshold to glibc's starting 128 KiB; the trim threshold set,
    in bytes, or ``None`` (nothing set).

    The threshold is the nanny's (:func:`pipeline.workers.nanny_environ`): this process's own
    ``MALLOC_TRIM_THRESHOLD_`` if it has one (a local cluster's nanny also leaves it in this
    process's environment), else the configuration's
    ``distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_``. Nothing is set where the C
    library is not glibc, or where that configuration is null and the variable unset (the
    workers get none either). Once set, it stays for the life of the process (glibc cannot
    report the previous values to restore)."""
    global _set
    with _lock:
        if _set is not None:
            return _set
        if platform.libc_ver()[0] != "glibc":
            return None
        import distributed  # noqa: F401  (its configuration's defaults)

        from .workers import nanny_environ

        value = nanny_environ().get("MALLOC_TRIM_THRESHOLD_")
        if value is None:
            return None
        try:
            threshold = int(value)
            if not 0 <= threshold < 2**31:
                raise ValueError(f"{threshold} is not a C int of bytes")
            libc = ctypes.CDLL("libc.so.6")
            mallopt = libc.mallopt
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, threshold) == 1
        except (TypeError, ValueError, OSError, AttributeError, ctypes.ArgumentError) as exc:
            log.debug("heap: trim threshold not set (%s)", exc)
            return None
        if not ok:
            log.debug("heap: mallopt refused trim threshold %s", threshold)
            return None
        _set = threshold
        return threshold
