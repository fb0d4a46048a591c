"""pipeline.zarr_chunks: chunks written and read without zarr's Array API are exactly what zarr
(and xarray.open_zarr) write and read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from pipeline import zarr_chunks
from pipeline.zarr_chunks import ArraySpec

SHAPE, CHUNKS = (3, 7, 10), (3, 3, 4)  # edge chunks along y and x


def _values(dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(SHAPE) > 0.5
    return (rng.random(SHAPE) * 100).astype(dtype)


def _grid() -> list[tuple[tuple[int, ...], tuple[slice, ...]]]:
    out = []
    for i in range(-(-SHAPE[1] // CHUNKS[1])):
        for j in range(-(-SHAPE[2] // CHUNKS[2])):
            ysl = slice(i * CHUNKS[1], min((i + 1) * CHUNKS[1], SHAPE[1]))
            xsl = slice(j * CHUNKS[2], min((j + 1) * CHUNKS[2], SHAPE[2]))
            out.append(((0, i, j), (slice(None), ysl, xsl)))
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "uint8", "bool"])
def test_chunks_written_here_are_read_by_zarr_and_xarray(tmp_path: Path, dtype: str) -> None:
    values = _values(dtype)
    zarr_chunks.create_group(tmp_path / "g", {"v": ArraySpec(SHAPE, CHUNKS, dtype, ("time", "y", "x"))},
                             {"note": "state"})
    for index, window in _grid():
        assert zarr_chunks.chunk_index(tmp_path / "g" / "v", window) == index
        zarr_chunks.write_chunk(tmp_path / "g" / "v", index, values[window])
    np.testing.assert_array_equal(zarr.open_array(store=str(tmp_path / "g" / "v"), mode="r")[...], values)
    with xr.open_zarr(tmp_path / "g", consolidated=False) as ds:
        assert ds["v"].dims == ("time", "y", "x") and ds.attrs["note"] == "state"
        np.testing.assert_array_equal(ds["v"].values, values)
    assert zarr_chunks.is_group(tmp_path / "g") and zarr_chunks.group_attributes(tmp_path / "g") == {"note": "state"}


@pytest.mark.parametrize("compressed", [False, True])
def test_windows_of_arrays_zarr_wrote_read_the_same(tmp_path: Path, compressed: bool) -> None:
    values = _values("float32", seed=1)
    group = zarr.open_group(store=str(tmp_path / "g"), mode="w", zarr_format=3)
    if compressed:  # not this module's layout: read through zarr
        group.create_array("v", data=values, chunks=CHUNKS, compressors=BloscCodec(cname="lz4"))
    else:
        zarr_chunks.create_group(tmp_path / "g", {"v": ArraySpec(SHAPE, CHUNKS, "float32", ("t", "y", "x"))}, {})
        zarr.open_array(store=str(tmp_path / "g" / "v"), mode="r+")[...] = values
    for window in [(slice(None), slice(None), slice(None)), (slice(1, 3), slice(2, 6), slice(3, 9)),
                   (slice(0, 1), slice(6, 7), slice(9, 10)), (slice(None), slice(0, 3), slice(0, 4))]:
        np.testing.assert_array_equal(zarr_chunks.read_window(tmp_path / "g" / "v", window), values[window])
        out = np.empty(values[window].shape, dtype="float32")
        assert zarr_chunks.read_window(tmp_path / "g" / "v", window, out=out) is out
        np.testing.assert_array_equal(out, values[window])
    assert (zarr_chunks.chunk_index(tmp_path / "g" / "v", (slice(None), slice(0, 3), slice(0, 4))) ==
            (None if compressed else (0, 0, 0)))


def test_a_chunk_not_written_reads_as_the_fill_value_and_bad_chunks_are_refused(tmp_path: Path) -> None:
    array = tmp_path / "g" / "v"
    zarr_chunks.create_group(tmp_path / "g", {"v": ArraySpec((4, 6), (2, 3), "int32", ("y", "x")),
                                              "s": ArraySpec((), (), "int64", ())}, {})
    zarr_chunks.write_chunk(array, (0, 0), np.ones((2, 3), dtype="int32"))
    expected = np.zeros((4, 6), dtype="int32")
    expected[:2, :3] = 1
    np.testing.assert_array_equal(zarr_chunks.read_window(array, (slice(None), slice(None))), expected)
    np.testing.assert_array_equal(zarr.open_array(store=str(array), mode="r")[...], expected)
    zarr_chunks.write_chunk(tmp_path / "g" / "s", (), np.array(7))  # a 0-d array: one chunk
    assert zarr.open_array(store=str(tmp_path / "g" / "s"), mode="r")[...] == 7
    with pytest.raises(ValueError, match=r"chunk \(1, 1\) is \(2, 3\), not \(2, 2\)"):
        zarr_chunks.write_chunk(array, (1, 1), np.ones((2, 2), dtype="int32"))
    assert zarr_chunks.chunk_index(array, (slice(1, 3), slice(0, 3))) is None  # not on the grid
    with pytest.raises(ValueError, match="step 1"):
        zarr_chunks.read_window(array, (slice(None, None, 2), slice(None)))


@pytest.mark.parametrize("spec", [ArraySpec((3, 7, 10), (3, 3, 4), "float32", ("time", "y", "x")),
                                  ArraySpec((5, 6), (5, 6), "bool", ("y", "x")),
                                  ArraySpec((4,), (4,), "uint8", ("composite",)),
                                  ArraySpec((2,), (2,), "int64", ("composite",)),
                                  ArraySpec((), (), "float64", ())])
def test_array_metadata_is_what_zarr_writes(tmp_path: Path, spec: ArraySpec) -> None:
    import json

    from zarr.codecs import BytesCodec

    group = zarr.open_group(store=str(tmp_path / "z"), mode="w", zarr_format=3)
    group.create_array("v", shape=spec.shape, chunks=spec.chunks, dtype=spec.dtype, dimension_names=spec.dims,
                       serializer=BytesCodec(endian="little"), compressors=None, filters=None, fill_value=0,
                       chunk_key_encoding={"name": "default", "separator": "/"})
    theirs = json.loads((tmp_path / "z" / "v" / "zarr.json").read_text())
    theirs.pop("consolidated_metadata", None)
    assert zarr_chunks.array_metadata(spec) == theirs
    with pytest.raises(ValueError, match="not a data type"):
        zarr_chunks.array_metadata(ArraySpec((2,), (2,), "complex64", ("x",)))


@pytest.mark.parametrize("compressed", [False, True])
def test_dates_taken_from_a_block_come_in_their_order(tmp_path: Path, compressed: bool) -> None:
    values = (np.arange(40 * 6 * 8, dtype="float32").reshape(40, 6, 8))
    if compressed:
        group = zarr.open_group(store=str(tmp_path / "g"), mode="w", zarr_format=3)
        group.create_array("v", data=values, chunks=(40, 3, 4), compressors=BloscCodec(cname="lz4"))
    else:
        zarr_chunks.create_group(tmp_path / "g", {"v": ArraySpec((40, 6, 8), (40, 3, 4), "float32",
                                                                 ("time", "y", "x"))}, {})
        for i in range(2):
            for j in range(2):
                zarr_chunks.write_chunk(tmp_path / "g" / "v", (0, i, j), values[:, 3 * i:3 * i + 3, 4 * j:4 * j + 4])
        assert not list((tmp_path / "g" / "v").rglob(".*.tmp"))  # the temporaries of the writes are gone
    take, window = [0, 1, 39, 17], (slice(None), slice(2, 5), slice(1, 7))
    got = zarr_chunks.read_window(tmp_path / "g" / "v", window, take=take)
    np.testing.assert_array_equal(got, values[take][:, 2:5, 1:7])
    out = np.zeros((4, 3, 6), dtype="float32")
    zarr_chunks.read_window(tmp_path / "g" / "v", window, take=take, out=out)
    np.testing.assert_array_equal(out, got)
    with pytest.raises(ValueError, match="`out` is"):  # either path checks the shape first
        zarr_chunks.read_window(tmp_path / "g" / "v", window, take=take, out=np.zeros((5, 3, 6), dtype="float32"))
    if not compressed:
        with pytest.raises(IndexError, match="outside"):
            zarr_chunks.read_window(tmp_path / "g" / "v", window, take=[40])
