"""Edits and block access: coverage, limits, chunk-wise zarr writes, read-only labels."""

from __future__ import annotations

import numpy as np
import pytest
from _proofread_data import as_backend, reopen
from hypothesis import given, settings
from hypothesis import strategies as st

from tamale.errors import TamaleInputError
from tamale.progress import drain
from tamale.proofread import RelabelEdit, RelabelPart, SparseEdit, apply_edit, iter_materialize
from tamale.proofread._arrays import count_blocks, iter_blocks, normalize_region, read_at


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 9), min_size=1, max_size=4),
    chunk=st.integers(1, 5),
    target=st.integers(4, 400),
    data=st.data(),
)
def test_blocks_cover_the_region_exactly_once(shape, chunk, target, data):
    arr = np.arange(int(np.prod(shape)), dtype=np.uint32).reshape(shape)
    region = tuple(
        data.draw(st.one_of(st.integers(0, s - 1), st.just(slice(None)), st.just(slice(1, s))))
        for s in shape
    )
    seen = np.zeros(shape, np.int32)
    n = 0
    for index, block in iter_blocks(arr, region, target_bytes=target):
        seen[index] += 1
        np.testing.assert_array_equal(block, arr[index])
        n += 1
    expected = np.zeros(shape, np.int32)
    expected[normalize_region(region, shape)] = 1
    np.testing.assert_array_equal(seen, expected)
    assert n == count_blocks(arr, region, target)


def test_blocks_follow_zarr_chunks(tmp_path):
    vol = np.zeros((20, 30, 40), np.uint32)
    arr = as_backend(vol, "zarr", tmp_path, chunks=(4, 7, 40))
    blocks = list(iter_blocks(arr, None, target_bytes=4 * 7 * 40 * 4))
    assert all(idx[0].start % 4 == 0 and idx[1].start % 7 == 0 for idx, _ in blocks), (
        "blocks are aligned with the storage chunks"
    )
    assert len(blocks) == 5 * 5


def test_read_at_groups_points_by_chunk(tmp_path):
    vol = np.arange(6 * 8 * 10, dtype=np.uint32).reshape(6, 8, 10)
    arr = as_backend(vol, "zarr", tmp_path, chunks=(2, 4, 5))
    pts = np.array([[0, 0, 0], [5, 7, 9], [3, 4, 5], [0, 0, 1]])
    np.testing.assert_array_equal(read_at(arr, pts), vol[tuple(pts.T)])


def test_region_errors():
    with pytest.raises(TamaleInputError, match="outside axis"):
        normalize_region((5, slice(None)), (3, 4))
    with pytest.raises(TamaleInputError, match="2 axes"):
        normalize_region((0, slice(None)), (3, 4, 5))


def test_materialize_stops_at_the_limit():
    lab = np.zeros((10, 10), np.uint32)
    lab[:5] = 1
    edit = RelabelEdit((RelabelPart(None, np.array([1]), np.array([2])),))
    assert drain(iter_materialize(lab, edit, limit=49)) is None
    sparse = drain(iter_materialize(lab, edit, limit=50))
    assert sparse.size == 50 and set(sparse.values.tolist()) == {2}


def test_materialize_skips_voxels_that_would_not_change():
    lab = np.array([[1, 2, 3]], np.uint32)
    edit = RelabelEdit((RelabelPart(None, np.array([1, 2]), np.array([2, 2])),))
    sparse = drain(iter_materialize(lab, edit))
    assert sparse.size == 1 and sparse.indices[1].tolist() == [0]


def test_sparse_edit_on_zarr_rewrites_only_touched_chunks(tmp_path):
    import zarr

    vol = np.zeros((16, 16), np.uint32)
    arr = as_backend(vol, "zarr", tmp_path, chunks=(4, 4))
    arr[0:4, 0:4] = 1  # only one chunk exists on disk so far
    edit = SparseEdit((np.array([1, 13]), np.array([1, 14])), np.array([7, 9], np.uint32))
    assert apply_edit(arr, edit) == 2
    expected = vol.copy()
    expected[0:4, 0:4] = 1
    expected[1, 1], expected[13, 14] = 7, 9
    np.testing.assert_array_equal(reopen(arr), expected)
    reopened = zarr.open_array(arr.store, mode="r")
    assert reopened.nchunks_initialized == 2


def test_relabel_on_large_zarr_volume_is_written_chunk_by_chunk(tmp_path):
    vol = np.zeros((32, 32, 32), np.uint32)
    vol[2:30, 2:30, 2:30] = 3
    vol[0, 0, 0] = 4
    arr = as_backend(vol, "zarr", tmp_path, chunks=(8, 8, 8))
    edit = RelabelEdit((RelabelPart(None, np.array([3]), np.array([4])),))
    events = []
    changed = apply_edit(arr, edit, progress=events.append)
    assert changed == 28**3
    assert events[-1].step == events[-1].total
    out = reopen(arr)
    assert set(np.unique(out)) == {0, 4} and (out == 4).sum() == 28**3 + 1


def test_read_only_labels_are_never_written(tmp_path):
    import zarr

    vol = np.ones((4, 4), np.uint32)
    arr = as_backend(vol, "zarr", tmp_path)
    ro = zarr.open_array(arr.store, mode="r")
    frozen = vol.copy()
    frozen.flags.writeable = False
    edit = SparseEdit((np.array([0]), np.array([0])), np.array([5], np.uint32))
    for target in (ro, frozen, as_backend(vol, "dask", tmp_path)):
        with pytest.raises(TamaleInputError, match="read-only"):
            apply_edit(target, edit)
    np.testing.assert_array_equal(reopen(arr), vol)


def test_cancel_before_writing_changes_nothing_and_a_started_write_finishes(tmp_path):
    from tamale.progress import Cancelled, CancelToken
    from tamale.proofread import iter_apply_edit

    vol = np.zeros((16, 16, 16), np.uint32)
    vol[:, :8] = 1
    arr = as_backend(vol, "zarr", tmp_path, chunks=(4, 4, 4))
    edit = RelabelEdit((RelabelPart(None, np.array([1]), np.array([2])),))
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        drain(iter_apply_edit(arr, edit, cancel=token))
    np.testing.assert_array_equal(reopen(arr), vol)
    token = CancelToken()
    work = iter_apply_edit(arr, edit, cancel=token)
    next(work)
    token.cancel()  # too late: the write is under way and completes
    assert drain(work) > 0
    assert set(np.unique(reopen(arr))) == {0, 2}
