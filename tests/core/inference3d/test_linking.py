"""Slice-to-slice linking, filters and numbering on hand-made stacks with exact answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from tamale.errors import TamaleInputError
from tamale.postprocess.linking import link_instance_stack
from tamale.postprocess.pieces import overlap_pairs, split_pieces


def disk(shape, center, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2


def canon(labels: np.ndarray) -> np.ndarray:
    """Relabel in order of first appearance (C order), to compare up to permutation."""
    flat = labels.ravel()
    ids, first = np.unique(flat, return_index=True)
    order = ids[np.argsort(first)]
    order = order[order != 0]
    lut = {int(v): i + 1 for i, v in enumerate(order)}
    return np.vectorize(lambda v: lut.get(int(v), 0), otypes=[np.uint32])(labels)


# -- pieces ---------------------------------------------------------------------------------


def test_pieces_are_connected_parts_in_raster_order():
    img = np.array(
        [
            [0, 7, 7, 0, 3],
            [0, 0, 0, 0, 3],
            [5, 0, 7, 7, 0],
            [5, 5, 0, 0, 0],
        ]
    )
    p = split_pieces(img)
    np.testing.assert_array_equal(
        p.labels,
        [
            [0, 1, 1, 0, 2],
            [0, 0, 0, 0, 2],
            [3, 0, 4, 4, 0],
            [3, 3, 0, 0, 0],
        ],
    )
    np.testing.assert_array_equal(p.areas, [2, 2, 3, 2])
    np.testing.assert_array_equal(p.boxes[3], [2, 3, 2, 4])
    # touching different ids stay different pieces; diagonal contact connects
    q = split_pieces(np.array([[1, 2], [0, 1]]))
    np.testing.assert_array_equal(q.labels, [[1, 2], [0, 1]])
    # semantic masks: one piece however many parts
    s = split_pieces(np.array([[1, 0, 1]]), connected=False)
    np.testing.assert_array_equal(s.labels, [[1, 0, 1]])
    assert split_pieces(np.zeros((3, 3))).n == 0


def test_overlap_pairs():
    a = np.array([[1, 1, 0], [2, 2, 0]])
    b = np.array([[1, 2, 2], [1, 0, 3]])
    p, c, n = overlap_pairs(a, b)
    assert list(zip(p, c, n)) == [(1, 1, 1), (1, 2, 1), (2, 1, 1)]


# -- linking --------------------------------------------------------------------------------

SHAPE = (40, 60)


def stack_of(*slices):
    return np.stack([np.asarray(s, np.uint32) for s in slices])


def test_tube_is_one_object_and_ids_start_at_one():
    s = stack_of(*[disk(SHAPE, (20, 20 + z), 8) for z in range(8)])
    out = link_instance_stack(s)
    assert set(np.unique(out)) == {0, 1}
    np.testing.assert_array_equal(out > 0, s > 0)


def test_touching_objects_stay_apart():
    left = disk(SHAPE, (20, 15), 8)
    right = disk(SHAPE, (20, 31), 8) & ~left
    s = stack_of(*[left * 4 + right * 9 for _ in range(6)])
    out = link_instance_stack(s)
    assert set(np.unique(out[:, 20, 15])) == {1}
    assert set(np.unique(out[:, 20, 31])) == {2}


def test_split_upwards_is_one_object():
    # a trunk in slices 0-3 splits into two branches in slices 4-7 (false-split rule)
    trunk = disk(SHAPE, (20, 30), 12)
    left = trunk & (np.mgrid[: SHAPE[0], : SHAPE[1]][1] < 29)
    right = trunk & (np.mgrid[: SHAPE[0], : SHAPE[1]][1] > 30)
    s = stack_of(*([trunk] * 4 + [left * 1 + right * 2] * 4))
    out = link_instance_stack(s)
    assert set(np.unique(out)) == {0, 1}


def test_y_shape_gets_one_id_through_the_backward_pass():
    # two branches in slices 0-4 join into one trunk in slices 5-9
    a = disk(SHAPE, (20, 20), 7)
    b = disk(SHAPE, (20, 40), 7)
    trunk = disk(SHAPE, (20, 30), 14)
    s = stack_of(*([a * 1 + b * 2] * 5 + [trunk] * 5))
    out = link_instance_stack(s)
    assert set(np.unique(out)) == {0, 1}
    # without the backward pass the left branch would keep its own id: check both branches
    assert out[0, 20, 20] == out[0, 20, 40] == out[9, 20, 30] == 1


def test_object_that_leaves_and_reenters_is_two_objects():
    d = disk(SHAPE, (20, 30), 8)
    empty = np.zeros(SHAPE, bool)
    s = stack_of(d, d, d, empty, d, d)
    out = link_instance_stack(s)
    assert out[0, 20, 30] == 1 and out[4, 20, 30] == 2
    assert not out[3].any()


def test_object_leaving_the_field_of_view_and_coming_back():
    # slides out of the image to the right, then back in: absent in slice 3
    cols = [44, 50, 55, 200, 55, 50]
    s = stack_of(*[disk(SHAPE, (20, c), 8) for c in cols])
    out = link_instance_stack(s)
    assert np.unique(out[:3][out[:3] > 0]).tolist() == [1]
    assert np.unique(out[4:][out[4:] > 0]).tolist() == [2]


def test_hungarian_picks_best_pairs_and_low_iou_starts_a_new_object():
    a = disk(SHAPE, (20, 15), 6)
    b = disk(SHAPE, (20, 45), 6)
    far = disk(SHAPE, (20, 30), 6)  # overlaps neither
    s = stack_of(a * 1 + b * 2, b * 1 + a * 2, far * 5)
    out = link_instance_stack(s)
    # ids follow the objects, not the 2D ids; the third slice is a new object
    assert out[0, 20, 15] == out[1, 20, 15] == 1
    assert out[0, 20, 45] == out[1, 20, 45] == 2
    assert out[2, 20, 30] == 3


def test_min_size_min_extent_and_numbering():
    big = disk(SHAPE, (20, 15), 8)  # 6 slices
    pancake = disk(SHAPE, (20, 45), 10)  # 2 slices thick: extent 2
    small = disk(SHAPE, (5, 5), 1)  # 5 voxels per slice
    s = np.zeros((6, *SHAPE), np.uint32)
    s[:, big] = 1
    s[2:4, pancake] = 2
    s[1:6, small] = 3
    out = link_instance_stack(s)
    # numbered by first appearance: big (slice 0), small (slice 1, raster first), pancake
    assert out[0, 20, 15] == 1 and out[1, 5, 5] == 2 and out[2, 20, 45] == 3
    out = link_instance_stack(s, min_size=30, min_extent=3)
    assert set(np.unique(out)) == {0, 1}
    out = link_instance_stack(s, min_extent=3)
    assert set(np.unique(out)) == {0, 1, 2} and out[1, 5, 5] == 2
    with pytest.raises(TamaleInputError, match="max objects per class"):
        link_instance_stack(s, max_objects=2)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_any_slicing_axis(axis):
    vol = np.zeros((12, 14, 16), np.uint32)
    vol[1:5, 1:6, 1:7] = 4
    vol[6:11, 2:8, 9:15] = 3
    vol[1:4, 8:13, 2:6] = 2
    vol[7:11, 9:13, 1:5] = 1
    out = link_instance_stack(vol, axis=axis)
    # four separate boxes are four objects, whatever the slicing axis
    np.testing.assert_array_equal(canon(out), canon(vol))


# -- against a straightforward pixel implementation of the same rules ------------------------


def dense_link(stack, iou_thr=0.25, ioa_thr=0.25):
    """The matching rules written directly on label images (slow, obviously right)."""

    def match(target, pieces, assign_new, next_id):
        t_ids = [t for t in np.unique(target) if t]
        p_ids = [p for p in np.unique(pieces) if p]
        iou = np.zeros((len(t_ids), len(p_ids)))
        ioa = np.zeros_like(iou)
        for i, t in enumerate(t_ids):
            tm = target == t
            for j, p in enumerate(p_ids):
                pm = pieces == p
                inter = (tm & pm).sum()
                iou[i, j] = inter / (tm | pm).sum()
                ioa[i, j] = inter / pm.sum()
        out = np.zeros_like(pieces)
        assigned = {}
        if len(t_ids) and len(p_ids):
            r, c = linear_sum_assignment(iou, maximize=True)
            for a, b in zip(r, c):
                if iou[a, b] >= iou_thr:
                    assigned[p_ids[b]] = t_ids[a]
        for j, p in enumerate(p_ids):
            if p in assigned:
                new = assigned[p]
            elif len(t_ids) and ioa[:, j].max() >= ioa_thr:
                new = t_ids[int(np.argmax(ioa[:, j]))]
            elif assign_new:
                new, next_id = next_id, next_id + 1
            else:
                new = p
            out[pieces == p] = new
        return out, next_id

    pieces = [split_pieces(s).labels.astype(np.int64) for s in stack]
    fwd = []
    next_id = 1
    for z, p in enumerate(pieces):
        if z == 0:
            lab = np.where(p > 0, p, 0)
            next_id = int(p.max()) + 1
        else:
            lab, next_id = match(fwd[-1], p + np.where(p > 0, 10**6, 0), True, next_id)
        fwd.append(lab)
    bwd = [None] * len(fwd)
    bwd[-1] = fwd[-1]
    for z in range(len(fwd) - 2, -1, -1):
        bwd[z], _ = match(bwd[z + 1], fwd[z], False, 0)
    return np.stack(bwd)


@pytest.mark.parametrize("seed", range(6))
def test_matches_pixel_implementation_on_random_blobs(seed):
    rng = np.random.default_rng(seed)
    z, h, w = 10, 48, 48
    vol = np.zeros((z, h, w), np.uint32)
    centers = rng.uniform(5, 43, (12, 2))
    velocity = rng.normal(0, 1.5, (12, 2))
    radii = rng.uniform(3, 8, 12)
    for k in range(12):
        start = rng.integers(0, 4)
        stop = rng.integers(start + 2, z + 1)
        for s in range(start, stop):
            c = centers[k] + velocity[k] * s
            r = radii[k] * (1 + 0.2 * np.sin(s + k))
            m = disk((h, w), c, r) & (vol[s] == 0)
            vol[s][m] = k + 1
    # a little noise: split some objects with a line
    vol[:, :, 24] = 0
    ours = link_instance_stack(vol)
    theirs = dense_link(vol)
    np.testing.assert_array_equal(canon(ours), canon(theirs.astype(np.uint32)))
