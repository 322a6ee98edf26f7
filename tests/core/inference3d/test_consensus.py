"""Ortho-plane consensus: every vote threshold, with and without permitting single-view objects."""

from __future__ import annotations

import numpy as np
import pytest

from tamale.errors import TamaleInputError
from tamale.postprocess.consensus import (
    TripleTable,
    apply_consensus,
    consensus_labels,
    iter_blocks,
    plan_consensus,
    vote_semantic,
)

SHAPE = (40, 40, 40)


def ball(center, radius):
    zz, yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    return (zz - center[0]) ** 2 + (yy - center[1]) ** 2 + (xx - center[2]) ** 2 <= radius**2


def box(z, y, x):
    m = np.zeros(SHAPE, bool)
    m[z[0] : z[1], y[0] : y[1], x[0] : x[1]] = True
    return m


# A: seen by all three views (slightly different each time)
A = [ball((10, 10, 10), 7), ball((10, 11, 10), 7), ball((10, 10, 10), 6)]
# B: seen in xy only
B = ball((30, 30, 8), 4)
# C: seen in xy and xz
C = [ball((28, 10, 30), 5), ball((29, 10, 30), 5)]
# D1, D2 touch; xy and yz separate them, xz merges them
D1 = box((2, 8), (25, 31), (22, 28))
D2 = box((2, 8), (31, 37), (22, 28))


def views():
    xy = np.zeros(SHAPE, np.uint32)
    xz = np.zeros(SHAPE, np.uint32)
    yz = np.zeros(SHAPE, np.uint32)
    xy[A[0]], xz[A[1]], yz[A[2]] = 1, 1, 1
    xy[B] = 2
    xy[C[0]], xz[C[1]] = 3, 2
    xy[D1], xy[D2] = 4, 5
    xz[D1 | D2] = 3
    yz[D1], yz[D2] = 2, 3
    return xy, xz, yz


def at_least(masks, k):
    return np.sum(np.stack(masks), axis=0) >= k


def objects(labels):
    """Set of objects as frozensets of flat indices (comparison up to id permutation)."""
    return {frozenset(np.flatnonzero(labels == i)) for i in np.unique(labels) if i}


def expected(vote, permit):
    out = []
    a = at_least(A, vote)
    out.append(a)
    if permit:
        out.append(B)
    c = at_least(C, vote)
    if c.any():
        out.append(c)
    out.extend([D1, D2])  # all three views label them (xz as one object): 3 votes each
    return {frozenset(np.flatnonzero(m)) for m in out}


@pytest.mark.parametrize("permit", [False, True])
@pytest.mark.parametrize("vote", [1, 2, 3])
def test_every_vote_threshold_with_and_without_permit(vote, permit):
    xy, xz, yz = views()
    out = consensus_labels(
        xy, xz, yz, vote_threshold=vote, permit_single_view=permit, block=(16, 16, 16)
    )
    assert objects(out) == expected(vote, permit)
    # numbered 1..N in C order of first voxel
    ids = out.ravel()[np.sort(np.unique(out.ravel(), return_index=True)[1])]
    ids = ids[ids > 0]
    np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))


def test_permit_adds_single_view_objects_at_the_default_vote():
    # empanada's "allow one view" changed nothing unless the vote was 1
    xy, xz, yz = views()
    without = consensus_labels(xy, xz, yz, vote_threshold=2)
    with_permit = consensus_labels(xy, xz, yz, vote_threshold=2, permit_single_view=True)
    assert not without[B].any()
    assert with_permit[B].all() and len(np.unique(with_permit[B])) == 1
    assert len(objects(with_permit)) == len(objects(without)) + 1


def test_vote_one_without_permit_adds_no_detection():
    xy, xz, yz = views()
    one = consensus_labels(xy, xz, yz, vote_threshold=1)
    two = consensus_labels(xy, xz, yz, vote_threshold=2)
    assert len(objects(one)) == len(objects(two))
    assert (one > 0).sum() > (two > 0).sum()


def test_filters_and_block_size_do_not_change_the_answer():
    xy, xz, yz = views()
    ref = consensus_labels(xy, xz, yz, block=(40, 40, 40))
    np.testing.assert_array_equal(consensus_labels(xy, xz, yz, block=(7, 9, 11)), ref)
    small = consensus_labels(xy, xz, yz, min_size=300)
    assert objects(small) == {o for o in objects(ref) if len(o) >= 300}
    thin = consensus_labels(xy, xz, yz, min_extent=7)  # D1, D2 are 6 voxels thick
    assert len(objects(thin)) == len(objects(ref)) - 2


def test_tables_from_separate_workers_merge():
    xy, xz, yz = views()
    t1 = TripleTable(SHAPE, 5)
    t2 = TripleTable(SHAPE, 5)
    for i, region in enumerate(iter_blocks(SHAPE, (20, 20, 20))):
        (t1 if i % 2 else t2).add(xy[region], xz[region], yz[region], region)
    t1.merge(t2)
    plan = plan_consensus(t1)
    out = np.zeros(SHAPE, np.uint32)
    for region in iter_blocks(SHAPE, (20, 20, 20)):
        out[region] = apply_consensus(plan, xy[region], xz[region], yz[region])
    np.testing.assert_array_equal(out, consensus_labels(xy, xz, yz))


def test_empty_views_and_bad_vote():
    z = np.zeros((4, 4, 4), np.uint32)
    assert not consensus_labels(z, z, z).any()
    with pytest.raises(TamaleInputError, match="1, 2 or 3"):
        plan_consensus(TripleTable((4, 4, 4), 1), vote_threshold=4)


@pytest.mark.parametrize("vote", [1, 2, 3])
def test_semantic_vote(vote):
    a = np.array([1, 1, 1, 0, 0])
    b = np.array([1, 1, 0, 0, 1])
    c = np.array([1, 0, 0, 0, 0])
    expected = {1: [1, 1, 1, 0, 1], 2: [1, 1, 0, 0, 0], 3: [1, 0, 0, 0, 0]}[vote]
    np.testing.assert_array_equal(vote_semantic(a, b, c, vote), expected)


def test_a_view_that_merges_touching_objects_does_not_merge_them():
    # empanada's merge_clusters lost its secondary edges; here xz merging D1 and D2 into one
    # object changes nothing as long as the other views separate them
    xy, xz, yz = views()
    for vote in (1, 2, 3):
        out = consensus_labels(xy, xz, yz, vote_threshold=vote)
        d1, d2 = np.unique(out[D1]), np.unique(out[D2])
        assert len(d1) == len(d2) == 1 and d1[0] != d2[0] and d1[0] and d2[0]
