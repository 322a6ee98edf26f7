"""Proofreading on the real EM ground truth in ../shared/data."""

from __future__ import annotations

import numpy as np
import tifffile

from tamale.progress import drain
from tamale.proofread import (
    apply_edit,
    count_labels,
    filter_labels,
    iter_materialize,
    merge_labels,
    next_free_label,
    parse_class_names,
    resolve_picks,
    split_labels,
)


def test_count_the_panoptic_tile(shared_data):
    tile = tifffile.imread(shared_data / "panoptic_tile" / "panoptic_labels_original.tif")
    names = parse_class_names("1,membrane-like stuff\n2,mitochondria\n3,nucleus-like")
    table = count_labels(tile, None, label_divisor=1000, class_names=names)
    assert [(r.class_name, r.count) for r in table.rows] == [
        ("membrane-like stuff", 1),
        ("mitochondria", 7),
        ("nucleus-like", 1),
    ]
    assert next_free_label(tile, class_id=2, label_divisor=1000) == 2008


def test_vnc_stack_filter_per_image_matches_a_per_label_loop(shared_data):
    stack = tifffile.imread(shared_data / "vnc_sstem" / "mito_instances_2d_cc.tif")[:4, :512, :512]
    stack = stack.astype(np.uint32)
    out = stack.copy()
    apply_edit(out, filter_labels(stack, None, min_size=300, per_plane_axis=0).edit)
    for z in range(len(stack)):
        expected = stack[z].copy()
        ids, sizes = np.unique(stack[z], return_counts=True)
        for i, n in zip(ids, sizes):
            if i and n < 300:
                expected[expected == i] = 0
        np.testing.assert_array_equal(out[z], expected)
    assert (out > 0).sum() < (stack > 0).sum()


def test_vnc_merge_and_split_in_one_plane_leave_other_planes(shared_data):
    stack = tifffile.imread(shared_data / "vnc_sstem" / "mito_instances_2d_cc.tif")[:6]
    stack = stack.astype(np.uint32)
    z = 3
    plane = (z, slice(None), slice(None))
    ids, sizes = np.unique(stack[z][stack[z] > 0], return_counts=True)
    a, b = ids[np.argsort(sizes)[-2:]]  # the two largest objects of the plane
    coords = [[z, *np.argwhere(stack[z] == i)[0]] for i in (a, b)]
    edit = merge_labels(stack, resolve_picks(stack, coords, plane), plane)
    sparse = drain(iter_materialize(stack, edit))
    out = stack.copy()
    out[sparse.indices] = sparse.values
    assert set(np.unique(out[z][(stack[z] == a) | (stack[z] == b)])) == {min(a, b)}
    np.testing.assert_array_equal(np.delete(out, z, axis=0), np.delete(stack, z, axis=0))
    # split the merged object again: the new ids exist nowhere in the six planes
    split = split_labels(out, resolve_picks(out, coords[:1], plane), plane, min_distance=8)
    assert min(split.new_ids) > stack.max()
    assert not np.isin(np.array(split.new_ids), out).any()
