"""Graphs prepared for the scheduler without a client, so a run prepares them while its local
cluster is still starting (:mod:`pipeline.cluster`).

:func:`optimise` optimises the graph of a run's collections once, keeps the ``priority``
annotations of its layers (:class:`KeyPriority`), and removes what Dask's linear fusion and
odc-stac leave as separate tasks: alias tasks (:func:`collapse_aliases`), picks of named parts
of a chunk's results (:func:`inline_picks`) and file openers (:func:`inline_openers`); the
slices of a chunk's result that only an output reads are made in the output's finalize task
(:func:`finalize_tasks`). :func:`submit` optimises and submits in one call.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.array.chunk
import toolz
from dask.core import flatten
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph, MaterializedLayer
from dask.utils import ensure_dict
from distributed import Future

__all__ = ["KeyPriority", "Submission", "collapse_aliases", "finalize_tasks", "inline_openers", "inline_picks",
           "optimise", "submit"]


def submit(client: Any, collections: Sequence[Any]) -> list[Any]:
    """Futures of ``collections``, as ``client.compute(collections)`` gives them (anything not
    lazy passes through), the graph optimised first (:func:`optimise`)."""
    return optimise(collections).submit(client)


@dataclass(frozen=True, eq=False)
class Submission:
    """Collections ready for ``client.compute`` (:func:`optimise`); anything not lazy passes
    through :meth:`submit` unchanged."""

    collections: list[Any]
    optimised: bool
    """Already optimised here: computed with ``optimize_graph=False``."""
    graph: HighLevelGraph | None = None
    """The optimised graph with each lazy collection's finalize task in it (what
    ``client.compute`` would add), the slices that only a finalize reads made inside it
    (:func:`finalize_tasks`); ``None``: submitted with ``client.compute``."""
    finals: tuple[Any, ...] = ()
    """The finalize key of each collection of :attr:`graph` (``None``: not lazy)."""

    def submit(self, client: Any) -> list[Any]:
        """Futures of the lazy collections (the others as they are)."""
        if not any(dask.is_dask_collection(c) for c in self.collections):
            return self.collections
        if self.graph is None:
            return client.compute(self.collections, optimize_graph=not self.optimised)
        futures = iter(client.get(self.graph, [k for k in self.finals if k is not None], sync=False))
        return [c if k is None else next(futures) for c, k in zip(self.collections, self.finals, strict=True)]


def optimise(collections: Sequence[Any]) -> Submission:
    """The graph of ``collections`` optimised without a client (so a run does it while its
    cluster is still starting), keeping the ``priority`` annotations of its layers, without the alias
    tasks of Dask's linear fusion (:func:`collapse_aliases`), with the picks of named parts
    of a chunk's results read by the tasks that use them (:func:`inline_picks`), and with
    odc-stac's file openers made by the reads (:func:`inline_openers`).

    Dask's graph optimisation (blockwise fusion, culling) merges the layers into one and
    drops their annotations (dask 2026.8), so :func:`pipeline.acquire.open_scenes`' region
    order would never reach the scheduler. Each annotated key's priority is read before and
    put back on the optimised graph as a :class:`KeyPriority`, and the graph is submitted
    without optimising again. Measured: whole-run peak memory of the 16x-area benchmark AOI
    1083-1094 MB -> ~1000 MB (``benchmarks/RESULTS.md``, part 3).
    """
    collections = list(collections)
    if not any(dask.is_dask_collection(c) for c in collections):
        return Submission(collections, optimised=False)
    from dask._task_spec import GraphNode

    priorities: dict[Any, Any] = {}
    for c in collections:
        if not dask.is_dask_collection(c):
            continue
        for layer in getattr(c.__dask_graph__(), "layers", {}).values():
            value = (layer.annotations or {}).get("priority")
            if value is None:
                continue
            for key in layer:
                p = value(key) if callable(value) else value
                if p:
                    priorities[key] = p
    if not priorities and any(_holds_futures(c) for c in collections):
        return Submission(collections, optimised=False)  # persisted or scattered data: Dask's own path
    if any(_expression_based(c) for c in collections if dask.is_dask_collection(c)):
        return Submission(collections, optimised=False)  # Dask's own path
    graph, wanted = _optimise_together(collections)
    if wanted <= graph.keys() and all(isinstance(node, GraphNode) for node in graph.values()):
        graph = inline_openers(inline_picks(collapse_aliases(graph, wanted), wanted), wanted)
        rebuilt = _rebuild(collections, graph, priorities)
        with_finals, finals = finalize_tasks(rebuilt, graph)
        annotations = {"priority": KeyPriority(priorities)} if priorities else None
        layer = MaterializedLayer(with_finals, annotations=annotations)
        name = f"submission-{uuid.uuid4().hex}"
        return Submission(rebuilt, optimised=True, graph=HighLevelGraph({name: layer}, {name: set()}),
                          finals=tuple(finals))
    if not priorities:  # anything else that is not a plain graph of tasks
        return Submission(collections, optimised=False)
    optimized = list(dask.optimize(*collections))
    annotate = KeyPriority(priorities)
    for c in optimized:
        if dask.is_dask_collection(c):
            for layer in getattr(c.__dask_graph__(), "layers", {}).values():
                layer.annotations = {**(layer.annotations or {}), "priority": annotate}
    return Submission(optimized, optimised=True)


def _optimise_together(collections: Sequence[Any]) -> tuple[dict[Any, Any], set[Any]]:
    """The lazy ``collections``' graph, optimised as ``client.compute`` does: one low-level
    optimisation of the merged graph per optimiser (``dask.optimize`` runs one per collection,
    each over the parts the collections share, and a shared task fused into one collection's
    task is computed again by the others); and the output keys. With :func:`_rebuild`, the
    three-year 16x-area benchmark AOI's graph is ready in 1.2-1.7 s instead of 4.1-4.7 s (the
    same 4219 tasks)."""
    lazy = [c for c in collections if dask.is_dask_collection(c)]
    graph: dict[Any, Any] = {}
    wanted: set[Any] = set()
    for optimizer, group in toolz.groupby(lambda c: c.__dask_optimize__, lazy).items():
        keys = [c.__dask_keys__() for c in group]
        merged = HighLevelGraph.merge(*(c.__dask_graph__() for c in group))
        graph.update(ensure_dict(optimizer(merged, keys) if optimizer else merged))
        wanted.update(flatten(keys))
    return graph, wanted


def _rebuild(collections: Sequence[Any], graph: dict[Any, Any], priorities: dict[Any, Any]) -> list[Any]:
    """``collections`` on ``graph`` (which holds every one's keys), its keys annotated with
    ``priorities``. One annotated layer holds the graph; each collection's layer names are
    empty layers that depend on it, so that rebuilding culls nothing (xarray's rebuild culls a
    plain graph once per variable: 1.4 s for a three-year AOI's 40 variables) and the
    scheduler reads each key's priority once per collection, not once per layer name."""
    anchor = f"optimised-{uuid.uuid4().hex}"
    names = {name for c in collections if dask.is_dask_collection(c) for name in c.__dask_layers__()}
    layers: dict[str, Any] = dict.fromkeys(names, MaterializedLayer({}))
    layers[anchor] = MaterializedLayer(graph, annotations={"priority": KeyPriority(priorities)} if priorities else None)
    shared = HighLevelGraph(layers, {**{name: {anchor} for name in names}, anchor: set()})
    out = list(collections)
    for i, c in enumerate(collections):
        if isinstance(c, Delayed):  # its own rebuild names its layer after its key when there are several
            out[i] = Delayed(c.key, shared, length=getattr(c, "_length", None), layer=c.__dask_layers__()[0])
        elif dask.is_dask_collection(c):
            rebuild, args = c.__dask_postpersist__()
            out[i] = rebuild(shared, *args)
    return out


def _expression_based(collection: Any) -> bool:
    """Whether Dask sees ``collection`` as expressions (``dask.base.collections_to_expr``'s
    test): array-expr or dask-expr collections, or xarray objects backed by them."""
    from dask._expr import Expr

    if isinstance(getattr(collection, "expr", None), Expr):
        return True
    exprs = getattr(collection, "__dask_exprs__", None)
    return exprs is not None and bool(exprs())


def _holds_futures(collection: Any) -> bool:
    """Whether ``collection``'s graph holds futures (persisted or scattered data), as values
    of its materialised layers or of a plain graph."""
    if not dask.is_dask_collection(collection):
        return False
    graph = collection.__dask_graph__()
    layers = getattr(graph, "layers", {"": graph})
    return any(isinstance(value, Future) for layer in layers.values()
               for value in getattr(layer, "mapping", layer if isinstance(layer, dict) else {}).values())


def collapse_aliases(graph: dict[Any, Any], keys: set[Any]) -> dict[Any, Any]:
    """``graph`` (an optimised, materialised task graph) without its alias tasks, computing
    the same ``keys``.

    Dask's linear fusion gives a fused chain a new key and leaves the chain's last key as an
    alias of it (``isin_0 -> isin-isin_0``, ``astype -> getitem-astype``; dask 2026.8): a
    task that does nothing, yet a round trip to the scheduler between a chunk's steps. A
    quarter of a quarterly re-run's tasks were such aliases (358 of 1589). Here an alias that
    is not wanted is bypassed (its dependents read its target), and a wanted one takes over
    its target when nothing else reads the target (the target's task under the alias's key).
    """
    from dask._task_spec import Alias, Task

    graph = dict(graph)
    dependents = _dependents(graph)

    def resolve(target: Any) -> Any:  # through chains of aliases
        seen = set()
        while isinstance(graph.get(target), Alias) and target not in keys and target not in seen:
            seen.add(target)
            target = graph[target].target
        return target

    for key in [k for k, node in graph.items() if isinstance(node, Alias)]:
        node = graph.get(key)
        if not isinstance(node, Alias) or node.target == key or node.target not in graph:
            continue
        if key not in keys:
            target = resolve(node.target)
            if target == key:
                continue
            for d in dependents.pop(key, set()):
                graph[d] = graph[d].substitute({key: target})
                dependents[target].add(d)
            dependents[node.target].discard(key)  # what the alias read (maybe another alias)
            del graph[key]
        else:
            target = node.target
            fused = graph[target]
            if target in keys or dependents.get(target) != {key} or not isinstance(fused, Task):
                continue
            graph[key] = fused.substitute({}, key=key)
            for dep in fused.dependencies:
                if dep in dependents:
                    dependents[dep].discard(target)
                    dependents[dep].add(key)
            del graph[target], dependents[target]
    return graph


def _dependents(graph: dict[Any, Any]) -> dict[Any, set[Any]]:
    """The keys of ``graph`` whose tasks read each key of ``graph`` (a new set for each)."""
    dependents: dict[Any, set[Any]] = {k: set() for k in graph}
    for k, node in graph.items():
        for d in node.dependencies:
            if d in dependents:
                dependents[d].add(k)
    return dependents


def inline_picks(graph: dict[Any, Any], keys: set[Any]) -> dict[Any, Any]:
    """``graph`` with the picks of named parts of one task's result (``getitem(result,
    "red")``) done by the tasks that read them, where each of those reads two parts or more
    of the same result; computes the same ``keys``.

    One task per spatial chunk returns several variables at once (the cloud mask's masked
    bands, the incremental state's merged dates), and Dask makes an array of each variable
    by one pick per chunk: a task, and a round trip to the scheduler between two steps of
    the chunk, for a dictionary lookup. The tasks that read them read several parts of the
    same result (the state's writer and the detection kernel all of them, a composite its
    bands and ``valid``), so a reader on another worker moves the whole result where it
    moved most of it before. Picks by index (array slices), picks read by a task that reads
    one part only, and wanted picks (their own results) stay tasks.
    """
    import operator

    from dask._task_spec import Alias, DataNode, Task, TaskRef

    from .preprocess import pick_part

    def source_of(node: Any) -> Any:  # the result a named pick reads, else None
        if not isinstance(node, Task) or node.func not in (operator.getitem, pick_part) or len(node.args) != 2:
            return None
        ref, part = node.args
        part = part.value if isinstance(part, DataNode) else part
        if not isinstance(part, str) or not isinstance(ref, (TaskRef, Alias)) or len(node.dependencies) != 1:
            return None
        return next(iter(node.dependencies))

    source = {k: src for k, node in graph.items() if (src := source_of(node)) is not None}
    if not any(k not in keys for k in source):
        return graph
    dependents = _dependents(graph)
    readers = {k: dependents[k] for k in source if k not in keys}
    graph = dict(graph)
    for reader in {r for rs in readers.values() for r in rs}:
        node = graph[reader]
        per_source: dict[Any, list[Any]] = {}
        for p in node.dependencies:
            if p in source:
                per_source.setdefault(source[p], []).append(p)
        inline = {p: graph[p] for ps in per_source.values() if len(ps) >= 2 for p in ps}
        if inline:
            graph[reader] = node.substitute(inline)
            for p in inline:
                readers.get(p, set()).discard(reader)
    for p, rs in readers.items():
        if not rs:
            del graph[p]
    return graph


def inline_openers(graph: dict[Any, Any], keys: set[Any]) -> dict[Any, Any]:
    """``graph`` with odc-stac's reader "open" tasks made inside the reads that use them;
    computes the same ``keys``.

    odc-stac's loader makes one task per item and band (``open-<band>``) whose result, a
    reader holding the source's address and the load context, every read task of that item
    receives (``odc.loader._builder._dask_open_reader``; the rasterio driver's reader opens
    no file until it reads). That was 721 of a three-year AOI's 1826 tasks (103 items x 7
    bands), each a round trip to the scheduler, against a constructor call in each of its
    four reads. Only that function with the rasterio driver, as a task with no dependency of
    its own, is inlined (another driver may read metadata when it opens: the zarr one does);
    with another odc-stac version or reader, the graph is left as it is.
    """
    from dask._task_spec import DataNode, Task

    try:
        from odc.loader._builder import _dask_open_reader
        from odc.loader._rio import RioDriver
    except ImportError:  # odc-stac moved them: nothing to do
        return graph

    def rasterio(node: Task) -> bool:  # the driver opens nothing (others, e.g. zarr's, read metadata)
        driver = node.args[1] if len(node.args) > 1 else None
        driver = driver.value if isinstance(driver, DataNode) else driver
        return isinstance(driver, RioDriver)

    openers = {k: node for k, node in graph.items()
               if k not in keys and isinstance(node, Task) and node.func is _dask_open_reader
               and not node.dependencies and rasterio(node)}
    if not openers:
        return graph
    graph = dict(graph)
    for k, node in graph.items():
        uses = node.dependencies & openers.keys()
        if uses:
            graph[k] = node.substitute({o: openers[o] for o in uses})
    for k in openers:
        del graph[k]
    return graph


#: The functions of the tasks :func:`finalize_tasks` makes inside a finalize: a slice of an
#: array chunk and a change of its dtype (not ``operator.getitem``: a pick of one part of a
#: chunk's several results would have the finalize move all of them, see :func:`inline_picks`).
_SLICES = frozenset({dask.array.chunk.getitem, dask.array.chunk.astype})


def finalize_tasks(collections: Sequence[Any], graph: dict[Any, Any]) -> tuple[dict[Any, Any], list[Any]]:
    """``graph`` plus one finalize task per lazy collection (its ``__dask_postcompute__`` on its
    keys, as ``client.compute`` adds), and the finalize keys (``None`` for what is not lazy).

    An output key whose task only slices one other task's result, or changes its dtype, and
    that no other task reads, is made inside the finalize instead of as a task of its own.
    Every variable of a chunk's change rasters and composite windows is such a slice of the
    chunk's one result (``x[i].astype(dtype)``): 420 of the 1125 tasks of the three-year
    240 x 320 px benchmark AOI, each a round trip through the scheduler for a copy of a few
    kilobytes. The finalize, which gathers the chunks anyway, now reads the chunk's results
    and slices them itself.

    The finalize then moves each chunk's whole result, not its cast variables: for the change
    rasters a float64 stack of the ten :data:`pipeline.detect.confirm.CHANGE_VARS` (80 bytes a
    pixel) instead of their own dtypes (42), which the finalize held before anyway (as the
    client holds the computed Dataset): 37 MB against 26 MB on the 480 x 640 px benchmark AOI.
    A ``Delayed`` gets a finalize too (``client.compute`` gives it none; the same value)."""
    from dask._task_spec import List, Task, TaskRef

    dependents = _dependents(graph)

    def inlinable(key: Any) -> bool:
        node = graph.get(key)
        return (isinstance(node, Task) and not dependents.get(key) and len(node.dependencies) == 1
                and _only_slices(node))

    inlined: set[Any] = set()

    def nest(keys: Any) -> Any:
        if isinstance(keys, list):
            return List(*(nest(k) for k in keys))
        if inlinable(keys):
            inlined.add(keys)
            return graph[keys]  # a task inside the finalize: computed there
        return TaskRef(keys)

    out = dict(graph)
    finals: list[Any] = []
    for c in collections:
        if not dask.is_dask_collection(c):
            finals.append(None)
            continue
        func, extra = _without_graph(c).__dask_postcompute__()
        key = f"finalize-{uuid.uuid4().hex}"
        out[key] = Task(key, func, nest(c.__dask_keys__()), *extra)
        finals.append(key)
    for k in inlined:
        del out[k]
    return out, finals


def _without_graph(collection: Any) -> Any:
    """``collection`` rebuilt on empty layers of its names, for its ``__dask_postcompute__``.

    An xarray object's postcompute is a method of the object, so a finalize task carrying it
    carried the whole graph too (every collection of an AOI shares one: 17.8 kB against 1.0 kB
    pickled for a 24-chunk Dataset); the result's structure is all it needs. A dask array's or a
    Delayed's postcompute is a plain function and the collection is returned as it is."""
    func, _ = collection.__dask_postcompute__()
    owner = getattr(func, "__self__", None)
    if owner is None or owner is not collection:
        return collection
    names = collection.__dask_layers__()
    rebuild, args = collection.__dask_postpersist__()
    return rebuild(HighLevelGraph(dict.fromkeys(names, MaterializedLayer({})), {n: set() for n in names}), *args)


def _only_slices(node: Any) -> bool:
    """Whether the task ``node`` (or the fused chain it runs) only slices and casts: every
    function one of :data:`_SLICES`, and no task nested in an argument (which would run in
    the finalize too)."""
    from dask._task_spec import DataNode, GraphNode, Task, TaskRef, _execute_subgraph

    def plain(value: Any) -> bool:  # a key, a constant, or a container of them; no nested task
        if isinstance(value, (TaskRef, DataNode)):
            return True
        if isinstance(value, GraphNode):
            return False
        if isinstance(value, (list, tuple)):
            return all(plain(v) for v in value)
        if isinstance(value, dict):
            return all(plain(v) for v in value.values())
        return True

    def slicing(task: Any) -> bool:
        return (isinstance(task, Task) and task.func in _SLICES and all(plain(a) for a in task.args)
                and all(plain(v) for v in task.kwargs.values()))

    if node.func is _execute_subgraph:
        inner = node.args[0] if node.args else None
        return isinstance(inner, dict) and bool(inner) and all(slicing(t) for t in inner.values())
    return slicing(node)


@dataclass(frozen=True)
class KeyPriority:
    """A ``priority`` annotation from a table of keys (0 for the others). Picklable: the
    scheduler evaluates it."""

    table: dict[Any, Any]

    def __call__(self, key: Any) -> Any:
        return self.table.get(key, 0)
