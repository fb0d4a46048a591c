"""What a run sets up on each Dask worker besides GDAL's options (:func:`pipeline.run.configure_workers`).

Kept apart from :mod:`pipeline.run` so that a worker unpickling :func:`import_modules` imports
this small module only, not the run's outputs and bulletin.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Sequence

#: What the AOIs' tasks run on the workers: reading (odc-stac's loader, its errors naming the
#: file: :mod:`pipeline.read_errors`), masking, composites, detection and the incremental state.
WORKER_MODULES = ("odc.loader", "pipeline.read_errors", "pipeline.preprocess", "pipeline.composites", "pipeline.detect",
                  "pipeline.state")


async def import_modules(names: Sequence[str] = WORKER_MODULES) -> None:
    """Import ``names`` in a thread of the worker (its event loop keeps answering meanwhile).

    A fresh worker process otherwise imports them when its first task arrives (about 2 s of
    CPU), which is after the client has searched, fetched and built the AOIs' graphs: in a
    short run, such as a quarterly re-run, a second or two of the critical path. Run through
    ``Client.run(import_modules, wait=False)`` as soon as the cluster is up, the import
    overlaps the client's own work.
    """

    def load() -> None:
        for name in names:
            importlib.import_module(name)

    await asyncio.to_thread(load)
