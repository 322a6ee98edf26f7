"""Split: watershed pieces, new ids that collide with nothing, markers, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from _proofread_data import BACKENDS, as_backend, reopen, to_numpy

from tamale.errors import TamaleInputError
from tamale.proofread import apply_edit, resolve_picks, split_labels

PLANE = (slice(None), slice(None))


def dumbbell(shape=(40, 70)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two 20x20 squares joined by a 4x6 bridge; returns (mask, left, right)."""
    mask = np.zeros(shape, bool)
    left = np.zeros(shape, bool)
    right = np.zeros(shape, bool)
    left[10:30, 10:30] = True
    right[10:30, 36:56] = True
    mask |= left | right
    mask[18:22, 30:36] = True
    return mask, left, right


def apply_sparse(lab, edit):
    out = lab.copy()
    out[edit.indices] = edit.values
    return out


@pytest.mark.parametrize("kind", BACKENDS)
def test_distance_split_2d(kind, tmp_path):
    mask, left, right = dumbbell()
    lab = np.where(mask, 7, 0).astype(np.uint32)
    lab[0:3, 0:3] = 9
    arr = as_backend(lab, kind, tmp_path)
    picks = resolve_picks(arr, [[20, 20]])
    edit = split_labels(arr, picks, None, min_distance=5)
    assert edit.new_ids == (10, 11)  # after the largest id (9)
    out = apply_sparse(lab, edit)
    assert not np.any(out == 7)
    a, b = out[20, 20], out[20, 45]
    assert {int(a), int(b)} == {10, 11}
    assert np.all(out[left] == a) and np.all(out[right] == b)
    np.testing.assert_array_equal(out > 0, lab > 0)  # nothing gained or lost
    np.testing.assert_array_equal(out[0:3, 0:3], 9)
    if kind == "zarr":
        apply_edit(arr, edit)
        np.testing.assert_array_equal(reopen(arr), out)


@pytest.mark.parametrize("kind", BACKENDS)
def test_plane_split_never_reuses_ids_from_other_planes(kind, tmp_path):
    """empanada's bug: new ids = max of the *plane* + 1, duplicating objects elsewhere."""
    mask, _, _ = dumbbell()
    vol = np.zeros((3, *mask.shape), np.uint32)
    vol[1][mask] = 4
    vol[0, 0:5, 0:5] = 5  # ids 5 and 6 exist in other planes only
    vol[2, 0:5, 0:5] = 6
    vol[2, 35:40, 60:70] = 50
    arr = as_backend(vol, kind, tmp_path)
    region = (1, *PLANE)
    edit = split_labels(arr, resolve_picks(arr, [[1, 20, 20]], region), region, min_distance=5)
    assert edit.new_ids == (51, 52)
    out = apply_sparse(vol, edit)
    np.testing.assert_array_equal(out[[0, 2]], vol[[0, 2]])
    assert set(np.unique(out[1])) == {0, 51, 52}


def test_start_id_must_be_free_everywhere():
    mask, _, _ = dumbbell()
    vol = np.zeros((2, *mask.shape), np.uint32)
    vol[0][mask] = 4
    vol[1, 0:3, 0:3] = 21  # used in another plane
    region = (0, *PLANE)
    picks = resolve_picks(vol, [[0, 20, 20]], region)
    before = vol.copy()
    with pytest.raises(TamaleInputError, match="21 already exist"):
        split_labels(vol, picks, region, min_distance=5, start_id=20)
    np.testing.assert_array_equal(vol, before)
    edit = split_labels(vol, picks, region, min_distance=5, start_id=30)
    assert edit.new_ids == (30, 31)


def test_points_as_markers_floods_from_each_point():
    mask = np.zeros((30, 60), bool)
    mask[10:20, 5:55] = True  # one long bar: no distance peaks to separate
    lab = mask.astype(np.uint32) * 3
    picks = resolve_picks(lab, [[15, 10], [15, 50]])
    edit = split_labels(lab, picks, None, points_as_markers=True)
    out = apply_sparse(lab, edit)
    assert set(np.unique(out)) == {0, 4, 5}
    assert out[15, 10] != out[15, 50]
    # geodesic flooding from the two seeds: the cut lies halfway along the bar
    cut = np.flatnonzero(np.diff(out[15, 5:55].astype(int)))[0] + 5
    assert 28 <= cut <= 31


def test_points_as_markers_with_one_point_is_refused():
    mask, _, _ = dumbbell()
    lab = mask.astype(np.uint32) * 3
    before = lab.copy()
    with pytest.raises(TamaleInputError, match="fewer than two markers"):
        split_labels(lab, resolve_picks(lab, [[20, 20]]), None, points_as_markers=True)
    with pytest.raises(TamaleInputError, match="fewer than two markers"):
        # two points on the same pixel are one marker
        split_labels(lab, resolve_picks(lab, [[20, 20], [20, 20]]), None, points_as_markers=True)
    np.testing.assert_array_equal(lab, before)


def test_too_large_min_distance_splits_nothing():
    lab = np.zeros((40, 40), np.uint32)
    lab[10:30, 10:30] = 2
    with pytest.raises(TamaleInputError, match="nothing to split"):
        split_labels(lab, resolve_picks(lab, [[20, 20]]), None, min_distance=30)


def test_split_in_3d_volume():
    vol = np.zeros((30, 40, 70), np.uint32)
    mask, left, right = dumbbell()  # two 20x20x20 cubes joined by a thin bridge
    vol[5:25][:, mask] = 8
    vol[5:25][:, mask & ~(left | right)] = 0
    vol[13:17][:, mask & ~(left | right)] = 8
    edit = split_labels(vol, resolve_picks(vol, [[15, 20, 20]]), None, min_distance=5)
    out = apply_sparse(vol, edit)
    assert edit.new_ids == (9, 10)
    assert np.all(out[5:25][:, left] == out[15, 20, 20])
    assert np.all(out[5:25][:, right] == out[15, 20, 45])
    assert out[15, 20, 20] != out[15, 20, 45]


def test_4d_flipbook_split_uses_ids_free_across_all_flipbooks():
    mask, _, _ = dumbbell()
    stack = np.zeros((2, 3, *mask.shape), np.uint32)
    stack[0, 1][mask] = 2
    stack[1, 0, 0:3, 0:3] = 99  # another flipbook
    region = (0, 1, *PLANE)
    edit = split_labels(
        stack, resolve_picks(stack, [[0, 1, 20, 20]], region), region, min_distance=5
    )
    assert edit.new_ids == (100, 101)
    assert np.all(np.stack(edit.indices)[:2].T == [0, 1])


def test_label_divisor_keeps_pieces_in_their_class():
    mask, _, _ = dumbbell()
    lab = np.where(mask, 2003, 0).astype(np.uint32)
    lab[0:2, 0:2] = 2001
    lab[38:40, 0:2] = 3001
    edit = split_labels(
        lab, resolve_picks(lab, [[20, 20]]), None, min_distance=5, label_divisor=1000
    )
    assert edit.new_ids == (2002, 2004)


def test_overflowing_the_dtype_is_refused():
    mask, _, _ = dumbbell()
    lab = np.where(mask, 254, 0).astype(np.uint8)
    lab[0, 0] = 255
    with pytest.raises(TamaleInputError, match="no room"):
        split_labels(lab, resolve_picks(lab, [[20, 20]]), None, min_distance=5)


def test_dask_labels_split_computes_but_cannot_be_written(tmp_path):
    mask, _, _ = dumbbell()
    lab = np.where(mask, 1, 0).astype(np.uint32)
    arr = as_backend(lab, "dask", tmp_path)
    edit = split_labels(arr, resolve_picks(arr, [[20, 20]]), None, min_distance=5)
    with pytest.raises(TamaleInputError, match="read-only"):
        apply_edit(arr, edit)
    np.testing.assert_array_equal(to_numpy(arr), lab)
