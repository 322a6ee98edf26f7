"""Filter: one vectorised pass; equals a per-label reference; border; per plane."""

from __future__ import annotations

import numpy as np
import pytest
from _proofread_data import BACKENDS, as_backend, reopen, to_numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi
from skimage.segmentation import clear_border

from tamale.errors import TamaleInputError
from tamale.progress import drain
from tamale.proofread import apply_edit, filter_labels, iter_materialize

PLANE = (slice(None), slice(None))


def reference(lab, min_size=None, border=False):
    """The slow loop the engine replaces: one pass per label."""
    out = lab.copy()
    if min_size is not None:
        for i in np.unique(lab[lab > 0]):
            if (lab == i).sum() < min_size:
                out[lab == i] = 0
    if border:
        out = np.where(clear_border(lab) > 0, out, 0)
    return out


def blobs(rng, shape=(64, 64)):
    lab, _ = ndi.label(rng.random(shape) > 0.6)
    return lab.astype(np.uint32)


@pytest.mark.parametrize("kind", BACKENDS)
def test_small_objects_removed_exactly(kind, tmp_path, rng):
    lab = blobs(rng)
    arr = as_backend(lab, kind, tmp_path)
    result = filter_labels(arr, None, min_size=5)
    expected = reference(lab, 5)
    assert result.n_removed == len(np.unique(lab)) - len(np.unique(expected))
    sparse = drain(iter_materialize(arr, result.edit))
    got = lab.copy()
    got[sparse.indices] = sparse.values
    np.testing.assert_array_equal(got, expected)
    if kind != "dask":
        apply_edit(arr, result.edit)
        np.testing.assert_array_equal(to_numpy(arr), expected)
        if kind == "zarr":
            np.testing.assert_array_equal(reopen(arr), expected)


def test_border_objects_removed_like_clear_border_2d_and_3d(rng):
    lab = blobs(rng)
    out = lab.copy()
    apply_edit(out, filter_labels(lab, None, remove_small=False, remove_border=True).edit)
    np.testing.assert_array_equal(out, reference(lab, border=True))
    vol, _ = ndi.label(rng.random((8, 24, 24)) > 0.7)
    vol = vol.astype(np.uint32)
    out = vol.copy()
    apply_edit(out, filter_labels(vol, None, remove_small=False, remove_border=True).edit)
    np.testing.assert_array_equal(out, reference(vol, border=True))  # z faces count in 3D


def test_per_plane_filter_measures_each_image_alone():
    stack = np.zeros((3, 10, 10), np.uint32)
    stack[0, 2:4, 2:4] = 1  # 4 px in image 0
    stack[1, 2:8, 2:8] = 1  # 36 px in image 1: same id, bigger
    stack[2, 1:3, 1:3] = 2
    stack[2, 4:9, 4:9] = 3
    out = stack.copy()
    apply_edit(out, filter_labels(stack, None, min_size=10, per_plane_axis=0).edit)
    assert not out[0].any()
    np.testing.assert_array_equal(out[1], stack[1])
    assert set(np.unique(out[2])) == {0, 3}
    # as a volume, id 1 has 40 voxels and survives everywhere
    out = stack.copy()
    apply_edit(out, filter_labels(stack, None, min_size=10).edit)
    assert out[0, 2, 2] == 1


def test_per_plane_border_ignores_the_stack_axis():
    stack = np.zeros((2, 10, 10), np.uint32)
    stack[:, 3:6, 3:6] = 4  # touches the first and last image, not an in-plane border
    stack[1, 0:2, 0:2] = 5
    result = filter_labels(stack, None, remove_small=False, remove_border=True, per_plane_axis=0)
    out = stack.copy()
    apply_edit(out, result.edit)
    assert (out == 4).sum() == 18 and not (out == 5).any()


def test_current_plane_of_a_volume_and_4d_flipbook():
    vol = np.zeros((3, 10, 10), np.uint32)
    vol[:, 1:3, 1:3] = 1
    out = vol.copy()
    apply_edit(out, filter_labels(vol, (1, *PLANE), min_size=5).edit)
    assert not out[1].any() and out[0, 1, 1] == 1 and out[2, 1, 1] == 1
    stack = np.stack([vol, vol])
    out = stack.copy()
    apply_edit(out, filter_labels(stack, (0, slice(None), *PLANE), min_size=13).edit)
    assert not out[0].any()
    np.testing.assert_array_equal(out[1], stack[1])


def test_nothing_to_remove_is_an_empty_edit():
    lab = np.zeros((5, 5), np.uint32)
    lab[1:4, 1:4] = 1
    result = filter_labels(lab, None, min_size=2)
    assert result.n_removed == 0 and result.edit.is_empty
    with pytest.raises(TamaleInputError, match="choose what to remove"):
        filter_labels(lab, None, remove_small=False, remove_border=False)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    shape=st.tuples(st.integers(1, 6), st.integers(2, 20), st.integers(2, 20)),
    min_size=st.integers(1, 30),
    border=st.booleans(),
    big_ids=st.booleans(),
)
def test_filter_equals_the_per_label_reference(seed, shape, min_size, border, big_ids):
    rng = np.random.default_rng(seed)
    lab, _ = ndi.label(rng.random(shape) > 0.5)
    lab = lab.astype(np.uint32)
    if big_ids:  # panoptic-style ids far apart take the sort-based path
        lab = np.where(lab > 0, lab * 100_003 + 2_000_000_000 % 7, 0).astype(np.uint32)
    out = lab.copy()
    apply_edit(out, filter_labels(lab, None, min_size=min_size, remove_border=border).edit)
    np.testing.assert_array_equal(out, reference(lab, min_size, border))


def test_filter_reads_each_block_a_bounded_number_of_times(tmp_path):
    """One pass to measure and one to write, however many objects (not one per label)."""
    from _proofread_data import as_backend

    rng = np.random.default_rng(1)
    lab, n = ndi.label(rng.random((32, 32, 32)) > 0.7)
    assert n > 300
    arr = as_backend(lab.astype(np.uint32), "zarr", tmp_path, chunks=(8, 8, 8))
    reads = []

    class Spy:
        def __init__(self, inner):
            self._inner = inner
            self.shape, self.dtype, self.ndim = inner.shape, inner.dtype, inner.ndim
            self.chunks, self.shards, self.read_only = inner.chunks, None, False

        def __getitem__(self, index):
            reads.append(index)
            return self._inner[index]

        def __setitem__(self, index, value):
            self._inner[index] = value

    Spy.__module__ = "zarr.spy"
    spy = Spy(arr)
    result = filter_labels(spy, None, min_size=3)
    apply_edit(spy, result.edit)
    assert result.n_removed > 100
    assert len(reads) <= 2  # the 128 KiB volume fits one block: one read per pass
