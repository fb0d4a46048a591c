"""Graphs prepared without a client (pipeline.graphs): the read order of the regions kept
through graph optimisation, shared reads read once, and the tasks fusion and odc-stac leave
folded into the tasks that use them."""

from __future__ import annotations

import collections
import contextlib

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from dask.highlevelgraph import HighLevelGraph
from distributed import Client, LocalCluster
from distributed.diagnostics.plugin import SchedulerPlugin
from odc.loader._rio import RioDriver

from pipeline import graphs
from pipeline.acquire import RegionFirst
from pipeline.graphs import KeyPriority, submit


def _bands(tag: str) -> da.Array:
    """Three 'bands' read over 2 x 2 regions (keys ``(name, t, y, x)`` as odc-stac names them),
    annotated :class:`RegionFirst`, then a blockwise chain the optimiser fuses."""
    bands = []
    with dask.annotate(priority=RegionFirst(2)):
        for band in ("blue", "nir", "scl"):
            name = f"{band}-{tag}"
            dsk = {(name, 0, y, x): (_read, band, y * 2 + x) for y in range(2) for x in range(2)}
            bands.append(da.Array(HighLevelGraph.from_collections(name, dsk, dependencies=()), name,
                                  chunks=((1,), (2, 2), (2, 2)), dtype="float32"))
    assert all(layer.annotations for b in bands for layer in b.__dask_graph__().layers.values())
    return da.map_blocks(_summed, *bands, dtype="float32") * 2 + 1


class _Priorities(SchedulerPlugin):
    """The priorities the scheduler gave each submitted key (public plugin hook)."""

    name = "kp-test-priorities"

    def __init__(self) -> None:
        self.seen: dict[object, tuple] = {}

    def update_graph(self, scheduler, *, priority, **kwargs) -> None:  # noqa: ANN001
        self.seen.update(priority)


def test_submit_keeps_the_region_order_through_graph_optimisation() -> None:
    """The scheduler orders the reads region by region with :func:`submit`; with a plain
    ``client.compute`` the annotations are gone with the fused layers (why it exists)."""
    plugin = _Priorities()
    expected = (np.arange(4, dtype="float32").reshape(2, 2).repeat(2, 0).repeat(2, 1) * 3 * 2 + 1)[None]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as lc, Client(lc) as client:
        client.register_plugin(plugin)
        plugin = lc.scheduler.plugins[plugin.name]  # the scheduler's copy (in this process)
        (fut,) = submit(client, [_bands("kept")])
        np.testing.assert_array_equal(fut.result(), expected)  # the same values
        kept = {k: plugin.seen[k] for k in plugin.seen if isinstance(k, tuple) and k[0].endswith("-kept")}
        assert len(kept) == 12
        by_priority = sorted(kept, key=kept.__getitem__)
        regions = [k[2] * 2 + k[3] for k in by_priority]
        assert regions == sorted(regions)  # every band of a region before the next region
        assert {kept[k][0] for k in kept} == {0, 1, 2, 3}  # the user priority, minus the region

        plain = client.compute(_bands("plain"))
        np.testing.assert_array_equal(plain.result(), expected)
        lost = {plugin.seen[k][0] for k in plugin.seen if isinstance(k, tuple) and k[0].endswith("-plain")}
        assert lost == {0}


# Task bodies at module level: the graph is pickled even for an in-process scheduler.
def _read(band: str, region: int) -> np.ndarray:
    return np.full((1, 2, 2), region, dtype="float32")


def _summed(*blocks: np.ndarray) -> np.ndarray:
    return sum(blocks)


_READS: collections.Counter[int] = collections.Counter()


def _counted_read(region: int) -> np.ndarray:
    _READS[region] += 1
    return np.full((1, 2, 2), region, dtype="float32")


def test_collections_sharing_reads_are_optimised_together_and_read_once() -> None:
    """Two Datasets on one annotated read: :func:`submit` optimises their merged graph once,
    so each region is read once; ``dask.optimize`` optimises each apart, fuses the reads into
    the Dataset that alone uses them, and the merged graph reads every region twice. The
    rebuilt Datasets share one layer (nothing culled per variable) and keep the priorities."""
    dims = ("t", "y", "x")

    def datasets(tag: str) -> tuple[xr.Dataset, xr.Dataset]:
        name = f"read-{tag}"
        with dask.annotate(priority=7):
            dsk = {(name, 0, y, x): (_counted_read, y * 2 + x) for y in range(2) for x in range(2)}
            up = da.Array(HighLevelGraph.from_collections(name, dsk, dependencies=()), name,
                          chunks=((1,), (2, 2), (2, 2)), dtype="float32")
        return xr.Dataset({"p": (dims, up + 1), "q": (dims, up * 3)}), xr.Dataset({"r": (dims, up - 1)})

    a, b = datasets("together")
    prepared = graphs.optimise([a, b, "not lazy"])
    assert prepared.optimised and prepared.collections[2] == "not lazy"
    holding = {id(layer): layer for c in prepared.collections[:2]
               for layer in c.__dask_graph__().layers.values() if len(layer)}
    assert len(holding) == 1  # one layer holds the graph, shared (the others are names)
    (layer,) = holding.values()
    assert {layer.annotations["priority"](k) for k in layer if k[0] == "read-together"} == {7}
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as lc, Client(lc) as client:
        _READS.clear()
        fa, fb, passed = prepared.submit(client)
        ra, rb = fa.result(), fb.result()
        assert passed == "not lazy"
        assert sum(_READS.values()) == 4
        expected = np.arange(4, dtype="float32").reshape(2, 2).repeat(2, 0).repeat(2, 1)[None]
        np.testing.assert_array_equal(ra["p"].values, expected + 1)
        np.testing.assert_array_equal(ra["q"].values, expected * 3)
        np.testing.assert_array_equal(rb["r"].values, expected - 1)

        _READS.clear()
        apart = client.compute(list(dask.optimize(*datasets("apart"))), optimize_graph=False)
        [f.result() for f in apart]
        assert sum(_READS.values()) == 8


def test_key_priority_is_a_table_lookup() -> None:
    p = KeyPriority({("a", 0): -3})
    assert p(("a", 0)) == -3 and p(("a", 1)) == 0
    assert RegionFirst(3)(("blue-x", 5, 1, 2)) == -5 and RegionFirst(3)("open-blue") == 0


def test_collapse_aliases_drops_the_fusion_aliases_and_computes_the_same() -> None:
    """Linear fusion leaves aliases (a chain's last key pointing at the fused task), inside the
    graph and among the wanted keys; without them the graph computes the same values."""
    from dask._task_spec import Alias
    from dask.local import get_sync

    from pipeline.graphs import collapse_aliases

    base = da.from_array(np.arange(48, dtype="float32").reshape(6, 8), chunks=(3, 4))
    chain = (base * 2).astype("float64").T  # fused into one task per chunk, then aliased
    outs = [chain + 1, chain.sum(axis=0), (base > 10).astype("int8")]
    graph: dict = {}
    keys: list = []
    for c in dask.optimize(*outs):
        graph.update(c.__dask_graph__())
        keys.append(list(dask.core.flatten(c.__dask_keys__())))
    assert any(isinstance(node, Alias) for node in graph.values())  # what the function is for
    wanted = {k for ks in keys for k in ks}
    collapsed = collapse_aliases(graph, wanted)
    assert not any(isinstance(node, Alias) for node in collapsed.values())
    assert len(collapsed) < len(graph)
    for ks in keys:
        for got, expected in zip(get_sync(collapsed, ks), get_sync(graph, ks), strict=True):
            np.testing.assert_array_equal(got, expected)


def test_collapse_aliases_follows_chains_of_aliases() -> None:
    """An alias of an alias (either order in the graph) is bypassed to the task at the end."""
    from dask._task_spec import Alias, Task, TaskRef
    from dask.local import get_sync

    from pipeline.graphs import collapse_aliases

    for order in (("a1", "a2"), ("a2", "a1")):
        nodes = {"src": Task("src", np.arange, 4), "a1": Alias("a1", "src"), "a2": Alias("a2", "a1"),
                 "out": Task("out", np.add, TaskRef("a2"), 1)}
        graph = {k: nodes[k] for k in ("src", *order, "out")}
        collapsed = collapse_aliases(graph, {"out"})
        assert set(collapsed) == {"src", "out"}
        np.testing.assert_array_equal(get_sync(collapsed, "out"), np.arange(4) + 1)


def test_inline_picks_reads_the_parts_in_the_tasks_that_use_several() -> None:
    """Named picks of one result, read by a task that reads two of them, are done in that
    task; a pick read alone, a wanted pick and an array slice stay tasks; same values."""
    import operator

    from dask._task_spec import Task, TaskRef
    from dask.local import get_sync

    from pipeline.graphs import inline_picks
    from pipeline.preprocess import pick_part

    parts = np.empty((1, 1), dtype=object)
    parts[0, 0] = {"red": np.arange(3.0), "nir": np.arange(3.0) * 2}
    graph = {
        "src": Task("src", np.copy, parts),
        "dict": Task("dict", dict, red=np.arange(3.0), nir=np.ones(3)),
        "red": Task("red", pick_part, TaskRef("src"), "red"),
        "nir": Task("nir", pick_part, TaskRef("src"), "nir"),
        "d-red": Task("d-red", operator.getitem, TaskRef("dict"), "red"),
        "d-nir": Task("d-nir", operator.getitem, TaskRef("dict"), "nir"),
        "slice": Task("slice", operator.getitem, TaskRef("d-red"), slice(None, None, -1)),
        "ndvi": Task("ndvi", np.subtract, TaskRef("nir"), TaskRef("red")),  # reads two parts of src
        "lone": Task("lone", np.add, TaskRef("d-nir"), TaskRef("slice")),  # one part of dict, one slice
        "sum": Task("sum", np.sum, TaskRef("slice")),
    }
    wanted = {"ndvi", "lone", "sum", "nir"}
    expected = get_sync(graph, sorted(wanted))
    light = inline_picks(graph, wanted)
    assert "red" not in light  # done inside ndvi
    assert {"nir", "d-red", "d-nir", "slice"} <= set(light)  # wanted, or read one part a task
    assert light["ndvi"].dependencies == {"src"}
    for got, exp in zip(get_sync(light, sorted(wanted)), expected, strict=True):
        np.testing.assert_array_equal(got, exp)


class _FakeDriver:
    """The two methods of an odc-stac reader driver that ``_dask_open_reader`` calls (any
    driver but the rasterio one: its open may read, so its openers stay tasks)."""

    @contextlib.contextmanager
    def restore_env(self, env: dict, load_state: object):  # noqa: ANN201
        yield env

    def open(self, src: str, ctx: dict) -> tuple[str, str]:
        return (src, ctx["tag"])


@pytest.mark.parametrize("rasterio", [True, False])
def test_inline_openers_makes_odc_stac_readers_inside_the_reads(rasterio: bool) -> None:
    """odc-stac's per-item "open" tasks of the rasterio driver (no dependency, a reader
    constructor) are called by each read that uses them; another driver's stay tasks; the
    values are the same."""
    from dask._task_spec import List, Task, TaskRef
    from dask.local import get_sync
    from odc.loader._builder import _dask_open_reader

    from pipeline.graphs import inline_openers

    driver = _StandInRio() if rasterio else _FakeDriver()
    graph = {("open-red", i): Task(("open-red", i), _dask_open_reader, f"item{i}.tif", driver, {"tag": "r"}, None)
             for i in range(3)}
    for region in range(2):
        refs = List(*(List(TaskRef(("open-red", i))) for i in range(3)))
        graph[("red", region)] = Task(("red", region), _summary, refs, region)
    wanted = {("red", 0), ("red", 1)}
    expected = get_sync(graph, sorted(wanted))
    light = inline_openers(graph, wanted)
    assert set(light) == (wanted if rasterio else set(graph))
    assert get_sync(light, sorted(wanted)) == expected == (
        ("item0.tif/r item1.tif/r item2.tif/r", 0), ("item0.tif/r item1.tif/r item2.tif/r", 1))


def test_submit_passes_graphs_with_futures_and_delayed_through() -> None:
    """A persisted Dataset, a delayed Future and an annotated array with a Delayed beside it
    compute as with ``client.compute`` (the graph passes apply to plain graphs only)."""
    from dask import delayed

    a = np.arange(12.0).reshape(3, 4)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as lc, Client(lc) as client:
        ds = xr.Dataset({"a": (("y", "x"), da.from_array(a, chunks=2))})
        (fut,) = submit(client, [client.persist(ds)])
        np.testing.assert_array_equal(fut.result()["a"].values, a)
        (fut,) = submit(client, [delayed(client.submit(dict, r=1.5))["r"] * 2])
        assert fut.result() == 3.0
        with dask.annotate(priority=5):
            annotated = da.from_array(a, chunks=2) + 1
        arr, total = submit(client, [annotated, delayed(sum)([1, 2, 3])])
        np.testing.assert_array_equal(arr.result(), a + 1)
        assert total.result() == 6
        arr, corner = submit(client, [annotated, annotated.to_delayed()[0, 0]])  # a key that is a tuple
        np.testing.assert_array_equal(arr.result(), a + 1)
        np.testing.assert_array_equal(corner.result(), a[:2, :2] + 1)


class _StandInRio(_FakeDriver, RioDriver):
    """A rasterio driver whose reader carries its source and a tag, no file needed."""


def _summary(readers: list, region: int) -> tuple[str, int]:
    return " ".join(f"{src}/{tag}" for (src, tag), in readers), region


def _two_layers(block: np.ndarray) -> np.ndarray:
    return np.stack([block, 2 * block])


def test_output_slices_are_made_in_the_finalize() -> None:
    """Each variable a slice of one per-chunk result (``stacked[i].astype(...)``, as the change
    rasters and composite windows are): the slices that only the output reads are made inside
    the collection's finalize task, not as tasks of their own; a slice another task reads, and
    anything that is more than a slice, stay tasks. The results are those of client.compute."""
    from dask.utils import key_split

    base = da.arange(24.0, chunks=6).reshape(4, 6).rechunk((2, 3))
    stacked = base.map_blocks(_two_layers, new_axis=0, chunks=((2,), *base.chunks), dtype="float64")
    ds = xr.Dataset({"a": (("y", "x"), stacked[0].astype("float32")), "b": (("y", "x"), stacked[1]),
                     "c": (("y", "x"), stacked[1] + 1)})
    total = stacked[1].sum()  # reads the slices of "b" too
    prepared = graphs.optimise([ds, total, "not lazy"])
    assert prepared.graph is not None and prepared.finals[2] is None
    (layer,) = prepared.graph.layers.values()
    names = collections.Counter(key_split(k) for k in layer)
    assert names["astype"] == 0  # "a": sliced and cast in the finalize
    assert names["getitem"] == 4  # "b": read by the sum as well, so still tasks
    assert names["add"] == 4  # "c": more than a slice
    assert sum(1 for k in layer if str(k).startswith("finalize-")) == 2
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      host="127.0.0.1", dashboard_address="127.0.0.1:0") as lc, Client(lc) as client:
        got, got_total, passed = prepared.submit(client)
        expected = client.compute([ds, total])
        xr.testing.assert_identical(got.result(), expected[0].result())
        assert got.result()["a"].dtype == np.float32
        assert got_total.result() == expected[1].result() == 2 * np.arange(24.0).sum()
        assert passed == "not lazy"


def test_only_plain_slices_are_made_in_the_finalize() -> None:
    """A slice whose argument is itself a task (real work nested in it) stays a task."""
    import dask.array.chunk
    from dask._task_spec import Task, TaskRef

    from pipeline.graphs import _only_slices

    assert _only_slices(Task("k", dask.array.chunk.getitem, TaskRef("a"), (slice(None), 1)))
    assert not _only_slices(Task("k", dask.array.chunk.getitem, Task(None, _two_layers, TaskRef("a")), 0))
    assert not _only_slices(Task("k", _two_layers, TaskRef("a")))
