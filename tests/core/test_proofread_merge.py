"""Merge and delete: exact outputs in 2D, 3D, 4D on numpy, zarr and dask labels."""

from __future__ import annotations

import numpy as np
import pytest
from _proofread_data import (
    BACKENDS,
    as_backend,
    flipbooks_4d,
    reopen,
    squares_2d,
    stack_3d,
    to_numpy,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tamale.errors import TamaleInputError
from tamale.progress import drain
from tamale.proofread import (
    apply_edit,
    delete_labels,
    iter_materialize,
    merge_labels,
    merge_target,
    resolve_picks,
)

ALL = (slice(None), slice(None))


def merged(labels, coords, region=None, selected=None):
    picks = resolve_picks(labels, coords, region)
    edit = merge_labels(labels, picks, region, selected_label=selected)
    return edit


@pytest.mark.parametrize("kind", BACKENDS)
def test_merge_2d_smallest_id_wins(kind, tmp_path):
    lab = squares_2d()
    arr = as_backend(lab, kind, tmp_path)
    edit = merged(arr, [[20, 20], [20, 50]])
    expected = lab.copy()
    expected[expected == 5] = 3
    # the sparse form (what the plugin hands to data_setitem) is exact
    sparse = drain(iter_materialize(arr, edit))
    got = lab.copy()
    got[sparse.indices] = sparse.values
    np.testing.assert_array_equal(got, expected)
    assert sparse.size == 400
    if kind == "dask":
        with pytest.raises(TamaleInputError, match="read-only"):
            apply_edit(arr, edit)
        np.testing.assert_array_equal(to_numpy(arr), lab)
        return
    apply_edit(arr, edit)
    np.testing.assert_array_equal(to_numpy(arr), expected)
    if kind == "zarr":
        np.testing.assert_array_equal(reopen(arr), expected)


def test_merge_target_is_the_selected_label_when_picked():
    assert merge_target(np.array([5, 3, 8]), selected_label=8) == 8
    assert merge_target(np.array([5, 3, 8]), selected_label=7) == 3
    assert merge_target(np.array([5, 3]), selected_label=None) == 3
    lab = squares_2d()
    edit = merged(lab, [[20, 20], [20, 50], [45, 80]], selected=5)
    apply_edit(lab, edit)
    assert set(np.unique(lab)) == {0, 5}


def test_merge_with_line_pixels_picks_every_object_crossed():
    from tamale.proofread import line_pixels

    lab = squares_2d()
    line = line_pixels(np.array([[20.0, 5.0], [20.0, 92.0], [45.0, 92.0], [45.0, 80.0]]))
    edit = merged(lab, line)
    apply_edit(lab, edit)
    assert set(np.unique(lab)) == {0, 3}


@pytest.mark.parametrize("kind", BACKENDS)
def test_merge_3d_in_one_plane_leaves_other_planes(kind, tmp_path):
    lab = stack_3d()
    arr = as_backend(lab, kind, tmp_path)
    region = (2, *ALL)
    edit = merged(arr, [[2, 20, 20], [2, 20, 50]], region)
    sparse = drain(iter_materialize(arr, edit))
    expected = lab.copy()
    expected[2][expected[2] == 25] = 23
    got = lab.copy()
    got[sparse.indices] = sparse.values
    np.testing.assert_array_equal(got, expected)
    if kind != "dask":
        apply_edit(arr, edit)
        np.testing.assert_array_equal(to_numpy(arr), expected)
        if kind == "zarr":
            np.testing.assert_array_equal(reopen(arr), expected)


@pytest.mark.parametrize("kind", ["numpy", "zarr"])
def test_merge_3d_whole_volume(kind, tmp_path):
    lab = stack_3d()
    lab[3][lab[3] == 33] = 3  # id 3 also exists in plane 3
    arr = as_backend(lab, kind, tmp_path)
    edit = merged(arr, [[0, 20, 20], [0, 20, 50]], None)
    apply_edit(arr, edit)
    expected = lab.copy()
    expected[expected == 5] = 3
    np.testing.assert_array_equal(to_numpy(arr), expected)


@pytest.mark.parametrize("kind", ["numpy", "zarr"])
@pytest.mark.parametrize("in_3d", [False, True])
def test_merge_4d_edits_only_the_current_flipbook(kind, in_3d, tmp_path):
    lab = flipbooks_4d()
    arr = as_backend(lab, kind, tmp_path)
    region = (1, slice(None), *ALL) if in_3d else (1, 2, *ALL)
    edit = merged(arr, [[1, 2, 20, 20], [1, 2, 20, 50]], region)
    apply_edit(arr, edit)
    expected = lab.copy()
    if in_3d:
        vol = expected[1]
        vol[vol == 125] = 123  # only plane 2 holds 123/125
    else:
        expected[1, 2][expected[1, 2] == 125] = 123
    np.testing.assert_array_equal(to_numpy(arr), expected)
    np.testing.assert_array_equal(to_numpy(arr)[0], lab[0])


@pytest.mark.parametrize("kind", BACKENDS)
def test_delete_removes_only_the_picked_objects(kind, tmp_path):
    lab = stack_3d()
    arr = as_backend(lab, kind, tmp_path)
    region = (1, *ALL)
    picks = resolve_picks(arr, [[1, 20, 20], [1, 45, 80], [1, 0, 0]], region)
    assert picks.n_background == 1
    edit = delete_labels(arr, picks, region)
    sparse = drain(iter_materialize(arr, edit))
    expected = lab.copy()
    expected[1][np.isin(expected[1], [13, 18])] = 0
    got = lab.copy()
    got[sparse.indices] = sparse.values
    np.testing.assert_array_equal(got, expected)
    if kind != "dask":
        apply_edit(arr, edit)
        np.testing.assert_array_equal(to_numpy(arr), expected)
        if kind == "zarr":
            np.testing.assert_array_equal(reopen(arr), expected)


# -- bad input: clear message, data unchanged ------------------------------------------
@pytest.mark.parametrize(
    ("coords", "region", "message"),
    [
        (np.zeros((0, 3)), None, "no points"),
        ([[1, 0, 0], [1, 1, 1]], None, "background"),
        ([[1, 20, 20], [1, 200, 20]], None, "outside the labels"),
        ([[1, 20, 20], [-1, 20, 50]], None, "outside the labels"),
        ([[1, 20, 20], [2, 20, 50]], (1, *ALL), "not on the plane"),
        ([[1, 20, 20], [1, 20, 22]], None, "at least two different"),
        ([[1, 20]], None, "2 coordinates"),
    ],
)
def test_bad_picks_raise_and_change_nothing(coords, region, message):
    lab = stack_3d()
    before = lab.copy()
    with pytest.raises(TamaleInputError, match=message):
        picks = resolve_picks(lab, coords, region)
        merge_labels(lab, picks, region)
    np.testing.assert_array_equal(lab, before)


def test_float_and_negative_labels_are_refused():
    with pytest.raises(TamaleInputError, match="whole numbers"):
        resolve_picks(np.zeros((8, 8), np.float32), [[1, 1]])
    neg = np.zeros((8, 8), np.int32)
    neg[2, 2] = -4
    neg[5, 5] = 2
    with pytest.raises(TamaleInputError, match="negative"):
        resolve_picks(neg, [[2, 2]])
    with pytest.raises(TamaleInputError, match="negative"):
        drain(iter_materialize(neg, delete_labels(neg, resolve_picks(neg, [[5, 5]]))))
    assert neg[5, 5] == 2


def test_ids_that_do_not_fit_the_dtype_are_refused():
    from tamale.proofread import RelabelEdit, RelabelPart

    lab = np.zeros((4, 4), np.uint8)
    lab[0, 0] = 1
    edit = RelabelEdit((RelabelPart(None, np.array([1]), np.array([300])),))
    with pytest.raises(TamaleInputError, match="does not fit"):
        apply_edit(lab, edit)
    assert lab[0, 0] == 1


# -- properties ------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    shape=st.tuples(st.integers(2, 12), st.integers(2, 12)),
    n_ids=st.integers(2, 6),
)
def test_merge_changes_only_the_picked_objects(data, shape, n_ids):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    lab = rng.integers(0, n_ids + 1, size=shape).astype(np.uint32)
    present = np.unique(lab[lab > 0])
    if len(present) < 2:
        return
    chosen = data.draw(st.lists(st.sampled_from(present.tolist()), min_size=2, unique=True))
    coords = [np.argwhere(lab == c)[0] for c in chosen]
    out = lab.copy()
    apply_edit(out, merged(lab, coords))
    target = min(chosen)
    picked = np.isin(lab, chosen)
    assert np.all(out[picked] == target)
    np.testing.assert_array_equal(out[~picked], lab[~picked])
