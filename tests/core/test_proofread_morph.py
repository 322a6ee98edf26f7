"""Morph: per-object operations inside padded boxes, growth only into background."""

from __future__ import annotations

import numpy as np
import pytest
from _proofread_data import BACKENDS, as_backend, reopen, to_numpy
from scipy import ndimage as ndi

from tamale.errors import TamaleInputError
from tamale.proofread import apply_edit, morph_labels
from tamale.proofread.morph import morph_mask

PLANE = (slice(None), slice(None))
DISK1 = ndi.generate_binary_structure(2, 1)  # radius-1 disk = the 4-neighbour cross


def apply_sparse(lab, edit):
    out = lab.copy()
    out[edit.indices] = edit.values
    return out


def per_object_reference(lab, op):
    """Reference: each object processed alone, growth only into background."""
    out = lab.copy()
    for i in np.unique(lab[lab > 0]):
        new = op(lab == i)
        out[(lab == i) & ~new] = 0
    for i in np.unique(lab[lab > 0]):
        new = op(lab == i)
        grow = new & (lab == 0) & (out == 0)
        out[grow] = i
    return out


@pytest.mark.parametrize("kind", BACKENDS)
def test_dilate_2d_radius_1_is_a_cross(kind, tmp_path):
    lab = np.zeros((20, 20), np.uint32)
    lab[5:8, 5:8] = 4
    arr = as_backend(lab, kind, tmp_path)
    edit = morph_labels(arr, None, operation="dilate", radius=1)
    expected = np.where(ndi.binary_dilation(lab == 4, DISK1), 4, 0)
    np.testing.assert_array_equal(apply_sparse(lab, edit), expected)
    if kind == "zarr":
        apply_edit(arr, edit)
        np.testing.assert_array_equal(reopen(arr), expected)


def test_growth_never_overwrites_neighbours_and_smaller_id_wins():
    lab = np.zeros((10, 12), np.uint32)
    lab[3:7, 2:5] = 2  # gap column 5 is background, shared by both
    lab[3:7, 6:9] = 9
    lab[3:7, 9] = 7  # touches 9
    out = apply_sparse(lab, morph_labels(lab, None, operation="dilate", radius=1))
    assert np.all(out[3:7, 5] == 2)  # claimed by both, the smaller id wins
    np.testing.assert_array_equal(out[3:7, 6:10], lab[3:7, 6:10])  # objects kept
    assert out[2, 3] == 2 and out[7, 7] == 9


@pytest.mark.parametrize("op", ["erode", "open", "close", "dilate"])
def test_all_objects_match_a_per_object_reference(op, rng):
    lab, _ = ndi.label(rng.random((48, 48)) > 0.55)
    lab = lab.astype(np.uint32)
    fp = DISK1
    ops = {
        "erode": lambda m: ndi.binary_erosion(m, fp, border_value=1),
        "dilate": lambda m: ndi.binary_dilation(m, fp),
        "open": lambda m: ndi.binary_dilation(ndi.binary_erosion(m, fp, border_value=1), fp) & m,
        "close": lambda m: morph_mask(m, "close", 1),
    }
    out = apply_sparse(lab, morph_labels(lab, None, operation=op, radius=1))
    np.testing.assert_array_equal(out, per_object_reference(lab, ops[op]))


def test_fill_holes_fills_only_holes_up_to_the_size():
    lab = np.zeros((30, 30), np.uint32)
    lab[2:12, 2:12] = 1
    lab[5:7, 5:7] = 0  # 4-pixel hole
    lab[15:28, 15:28] = 2
    lab[18:25, 18:25] = 0  # 49-pixel hole
    out = apply_sparse(lab, morph_labels(lab, None, operation="fill holes", hole_size=10))
    assert np.all(out[5:7, 5:7] == 1)
    assert np.all(out[18:25, 18:25] == 0)
    out = apply_sparse(lab, morph_labels(lab, None, operation="fill holes", hole_size=49))
    assert np.all(out[18:25, 18:25] == 2)


def test_fill_holes_keeps_objects_inside_holes():
    lab = np.zeros((20, 20), np.uint32)
    lab[2:18, 2:18] = 1
    lab[6:14, 6:14] = 0
    lab[9:11, 9:11] = 5  # an object inside the hole
    out = apply_sparse(lab, morph_labels(lab, None, operation="fill holes", hole_size=1000))
    assert np.all(out[9:11, 9:11] == 5)
    assert out[7, 7] == 1


@pytest.mark.parametrize("kind", ["numpy", "zarr"])
def test_3d_erode_uses_a_ball_and_plane_mode_a_disk(kind, tmp_path):
    vol = np.zeros((9, 12, 12), np.uint32)
    vol[2:7, 3:8, 3:8] = 6
    arr = as_backend(vol, kind, tmp_path)
    ball = ndi.generate_binary_structure(3, 1)
    expected3d = np.where(ndi.binary_erosion(vol == 6, ball, border_value=1), 6, 0)
    np.testing.assert_array_equal(
        apply_sparse(vol, morph_labels(arr, None, operation="erode", radius=1)), expected3d
    )
    plane = (4, *PLANE)
    edit = morph_labels(arr, plane, operation="erode", radius=1)
    out = apply_sparse(vol, edit)
    expected = vol.copy()
    expected[4] = np.where(ndi.binary_erosion(vol[4] == 6, DISK1, border_value=1), 6, 0)
    np.testing.assert_array_equal(out, expected)
    apply_edit(arr, edit)
    np.testing.assert_array_equal(to_numpy(arr), expected)


def test_4d_morph_touches_only_the_current_flipbook():
    stack = np.zeros((2, 3, 10, 10), np.uint32)
    stack[:, :, 3:6, 3:6] = 1
    out = apply_sparse(stack, morph_labels(stack, (1, slice(None), *PLANE), operation="dilate"))
    np.testing.assert_array_equal(out[0], stack[0])
    assert out[1, 1, 2, 4] == 1 and out[1, 1, 2, 2] == 0


def test_only_picked_objects_change():
    lab = np.zeros((20, 20), np.uint32)
    lab[2:6, 2:6] = 1
    lab[10:14, 10:14] = 2
    out = apply_sparse(lab, morph_labels(lab, None, operation="dilate", ids=np.array([2])))
    np.testing.assert_array_equal(out == 1, lab == 1)
    assert (out == 2).sum() > (lab == 2).sum()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"operation": "melt"}, "unknown operation"),
        ({"radius": 0}, "radius"),
        ({"operation": "fill holes", "hole_size": 0}, "hole size"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(TamaleInputError, match=message):
        morph_labels(np.ones((4, 4), np.uint32), None, **kwargs)


def test_4d_morph_with_picked_objects_processes_only_them():
    """empanada inverted the points condition in its 4D branch."""
    from tamale.proofread import resolve_picks

    stack = np.zeros((2, 3, 12, 12), np.uint32)
    stack[:, :, 2:5, 2:5] = 1
    stack[:, :, 7:10, 7:10] = 2
    region = (1, 1, *PLANE)
    ids = resolve_picks(stack, [[1, 1, 8, 8]], region).unique_ids
    out = apply_sparse(stack, morph_labels(stack, region, operation="dilate", ids=ids))
    changed = np.argwhere(out != stack)
    assert len(changed) and np.all(changed[:, :2] == [1, 1])
    assert set(np.unique(out[changed[:, 0], changed[:, 1], changed[:, 2], changed[:, 3]])) == {2}
