"""tamale's vectorised post-processing equals a loop-based reference, exactly."""

from __future__ import annotations

import numpy as np
import postprocess_reference as ref
import pytest
import torch
from scipy import ndimage as ndi

from tamale.errors import TamaleInputError
from tamale.postprocess import (
    ClassTable,
    PostprocessConfig,
    RawPrediction,
    find_centers,
    group_pixels,
    nearest_center,
    postprocess,
    split_disconnected,
)
from tamale.registry import ClassSpec

BINARY = ClassTable.binary(1, "mito")
MULTI = ClassTable.from_classes(
    [
        ClassSpec(id=1, name="mito", kind="instance"),
        ClassSpec(id=2, name="er", kind="semantic"),
        ClassSpec(id=3, name="vesicle", kind="instance"),
    ]
)


def random_outputs(
    rng: np.random.Generator,
    n_channels: int,
    size: tuple[int, int],
    stride: int,
    downsampling: int = 1,
    padding: int = 16,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth random network outputs; heatmap and offsets quantised so ties happen
    and float arithmetic is exact in both implementations."""
    h, w = size
    mh = -(-h // downsampling)
    mw = -(-w // downsampling)
    mh, mw = -(-mh // padding) * padding, -(-mw // padding) * padding
    gh, gw = mh // stride, mw // stride
    sem = ndi.gaussian_filter(rng.normal(size=(n_channels, h, w)), sigma=(0, 3, 3))
    sem = sem / sem.std() * 3
    if n_channels == 1:
        probs = 1 / (1 + np.exp(-sem))
    else:
        e = np.exp(sem - sem.max(axis=0, keepdims=True))
        probs = e / e.sum(axis=0, keepdims=True)
    hmp = np.zeros((gh, gw))
    for _ in range(max(3, gh * gw // 40)):
        cy, cx = rng.uniform(0, gh), rng.uniform(0, gw)
        yy, xx = np.mgrid[0:gh, 0:gw]
        hmp = np.maximum(hmp, rng.uniform(0.05, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 4))
    hmp = np.round(hmp * 16) / 16  # plateaus: equal maxima inside one window
    off = ndi.gaussian_filter(rng.normal(size=(2, gh, gw)), sigma=(0, 2, 2))
    off = np.round(off / off.std() * 6 * stride * 8) / 8  # multiples of 1/8 px
    return probs.astype(np.float32), hmp.astype(np.float32), off.astype(np.float32)


def to_raw(probs, hmp, off, stride, downsampling=1) -> RawPrediction:
    return RawPrediction(
        torch.from_numpy(probs)[None],
        torch.from_numpy(hmp)[None, None],
        torch.from_numpy(off)[None],
        stride=stride,
        downsampling=downsampling,
    )


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 7])
def test_find_centers_matches_reference_including_plateaus_and_even_kernels(rng, kernel):
    for _ in range(3):
        _, hmp, _ = random_outputs(rng, 1, (64, 64), stride=1)
        got = find_centers(torch.from_numpy(hmp)[None, None], 0.1, kernel)[0]
        assert [tuple(p) for p in got.tolist()] == ref.find_centers(hmp, 0.1, kernel)


def test_find_centers_threshold_is_exclusive_and_top_k_keeps_raster_order():
    hmp = np.zeros((9, 9), np.float32)
    hmp[1, 1], hmp[1, 7], hmp[7, 1], hmp[7, 7] = 0.1, 0.5, 0.9, 0.5
    t = torch.from_numpy(hmp)[None, None]
    assert find_centers(t, 0.1, 3)[0].tolist() == [[1, 7], [7, 1], [7, 7]]
    assert find_centers(t, 0.1, 3, top_k=2)[0].tolist() == [[1, 7], [7, 1]]  # tie: raster
    assert ref.find_centers(hmp, 0.1, 3, top_k=2) == [(1, 7), (7, 1)]


def test_find_centers_handles_a_batch_and_nan():
    hmp = torch.zeros(2, 1, 8, 8)
    hmp[0, 0, 2, 2] = 1
    hmp[1, 0, 5, 5] = float("nan")
    hmp[1, 0, 6, 1] = 0.5
    got = find_centers(hmp, 0.1, 3)
    assert got[0].tolist() == [[2, 2]] and got[1].tolist() == [[6, 1]]


def test_nearest_center_equals_brute_force_with_ties_and_far_points(rng):
    for k in (1, 5, 9, 60, 300):
        centers = torch.from_numpy(rng.integers(0, 200, size=(k, 2)).astype(np.float32))
        pts = rng.integers(-50, 250, size=(5000, 2)).astype(np.float32)
        pts[:10] = [[1e5, -1e5]] * 10  # far away votes
        pts = torch.from_numpy(pts)
        d2 = ((pts[:, None, :] - centers[None]) ** 2).sum(-1)
        expected = torch.argmin(d2, dim=1)  # first minimum on ties
        assert torch.equal(nearest_center(pts, centers), expected), k


def test_nearest_center_clustered_centres_and_duplicate_centres(rng):
    centers = torch.from_numpy(rng.normal(100, 0.5, size=(50, 2)).astype(np.float32))
    centers[10] = centers[3]  # an exact duplicate: the lower index wins
    pts = torch.from_numpy(rng.normal(100, 5, size=(4000, 2)).astype(np.float32))
    d2 = ((pts[:, None, :] - centers[None]) ** 2).sum(-1)
    got = nearest_center(pts, centers)
    assert torch.equal(got, torch.argmin(d2, dim=1))
    assert not (got == 10).any()


@pytest.mark.parametrize("step", [1, 4])
def test_group_pixels_matches_reference(rng, step):
    _, hmp, off = random_outputs(rng, 1, (64 * step, 64 * step), stride=step)
    centers = ref.find_centers(hmp, 0.1, 3)
    assert len(centers) > 8  # the pruned (not the direct) search runs
    got = group_pixels(torch.tensor(centers), torch.from_numpy(off), step=step)
    np.testing.assert_array_equal(got.numpy(), ref.group_pixels(centers, off, step))


def test_group_pixels_without_centres_is_zero():
    out = group_pixels(torch.zeros((0, 2), dtype=torch.long), torch.zeros(2, 4, 5), 4)
    assert out.shape == (4, 5) and not out.any()


CASES = [
    # (channels, classes, stride, downsampling, size, kernel, top_k, semantic_only)
    (1, BINARY, 4, 1, (61, 70), 3, None, False),
    (1, BINARY, 1, 1, (48, 40), 3, None, False),
    (1, BINARY, 4, 2, (75, 64), 2, None, False),
    (1, BINARY, 4, 1, (64, 64), 5, 4, False),
    (4, MULTI, 4, 1, (64, 57), 3, None, False),
    (4, MULTI, 1, 2, (50, 64), 4, None, False),
    (4, MULTI, 4, 1, (64, 64), 3, None, True),
    (1, BINARY, 4, 1, (64, 64), 3, None, True),
]


@pytest.mark.parametrize(
    "case", CASES, ids=lambda c: f"c{c[0]}-s{c[2]}-f{c[3]}-k{c[5]}-t{c[6]}-so{c[7]}"
)
def test_postprocess_equals_reference(rng, case):
    n_ch, classes, stride, f, size, kernel, top_k, sem_only = case
    for threshold in (0.3, 0.6):
        probs, hmp, off = random_outputs(rng, n_ch, size, stride, f)
        cfg = PostprocessConfig(
            confidence_thr=threshold,
            centers_min_distance=kernel,
            top_k=top_k,
            semantic_only=sem_only,
            label_divisor=1000,
            stuff_area=20,
        )
        got = postprocess(to_raw(probs, hmp, off, stride, f), cfg, classes)[0]
        expected = ref.postprocess(
            probs,
            hmp,
            off,
            class_ids=list(classes.class_ids[1:]),
            things=set(classes.things),
            stride=stride,
            downsampling=f,
            confidence_thr=threshold,
            nms_kernel=kernel,
            top_k=top_k,
            label_divisor=1000,
            stuff_area=20,
            semantic_only=sem_only,
        )
        assert got.dtype == np.uint32
        np.testing.assert_array_equal(got, expected)
        if not sem_only:
            assert len(np.unique(got)) > 3


def test_batch_gives_the_same_as_one_by_one(rng):
    outs = [random_outputs(rng, 1, (64, 64), 4) for _ in range(3)]
    raw = RawPrediction(
        torch.stack([torch.from_numpy(o[0]) for o in outs]),
        torch.stack([torch.from_numpy(o[1])[None] for o in outs]),
        torch.stack([torch.from_numpy(o[2]) for o in outs]),
        stride=4,
    )
    cfg = PostprocessConfig()
    together = postprocess(raw, cfg, BINARY)
    assert together.shape == (3, 64, 64)
    for b in range(3):
        np.testing.assert_array_equal(together[b], postprocess(raw[b], cfg, BINARY)[0])


def test_majority_vote_picks_the_most_frequent_class_and_lowest_on_ties():
    # one centre in the middle, all offsets 0: a single cell covers the image
    probs = np.zeros((4, 8, 8), np.float32)
    probs[0] = 1.0
    probs[1, 0:2, :], probs[0, 0:2, :] = 1, 0  # 16 px of class 1
    probs[3, 2:5, :], probs[0, 2:5, :] = 1, 0  # 24 px of class 3
    hmp = np.zeros((8, 8), np.float32)
    hmp[4, 4] = 1
    raw = to_raw(probs, hmp, np.zeros((2, 8, 8), np.float32), stride=1)
    out = postprocess(raw, PostprocessConfig(label_divisor=100, stuff_area=0), MULTI)[0]
    assert set(np.unique(out)) == {0, 301}
    assert (out[0:5] == 301).all()  # the class-1 pixels of the cell joined the winner
    probs[3, 4, :], probs[0, 4, :] = 0, 1  # now 16 px each: tie -> lower class (1)
    raw = to_raw(probs, hmp, np.zeros((2, 8, 8), np.float32), stride=1)
    out = postprocess(raw, PostprocessConfig(label_divisor=100, stuff_area=0), MULTI)[0]
    assert set(np.unique(out)) == {0, 101}


def test_too_many_objects_for_the_divisor_is_an_error_not_a_spill():
    # 12 separate squares, each with its own centre
    probs = np.zeros((1, 48, 64), np.float32)
    hmp = np.zeros((48, 64), np.float32)
    for i in range(12):
        y, x = 4 + 16 * (i // 4), 4 + 16 * (i % 4)
        probs[0, y : y + 8, x : x + 8] = 1
        hmp[y + 4, x + 4] = 1
    raw = to_raw(probs, hmp, np.zeros((2, 48, 64), np.float32), stride=1)
    ok = postprocess(raw, PostprocessConfig(label_divisor=13), BINARY)[0]
    assert ok.max() == 13 + 12 and ok[ok > 0].min() == 14
    with pytest.raises(TamaleInputError, match="max objects per class"):
        postprocess(raw, PostprocessConfig(label_divisor=12), BINARY)
    with pytest.raises(OverflowError):
        ref.postprocess(
            probs[:, :, :], hmp, np.zeros((2, 48, 64), np.float32),
            class_ids=[1], things={1}, stride=1, label_divisor=12,
        )  # fmt: skip


def test_connected_pieces_overflow_is_detected_too():
    pan = np.zeros((10, 20), np.int64)
    pan[:, ::2] = 11  # object 1 of class 1 (divisor 10), in 10 separate columns
    with pytest.raises(TamaleInputError, match="max objects per class"):
        split_disconnected(pan, {1}, 10)
    pan[:, ::2] = 12  # the same with divisor 11
    assert split_disconnected(pan, {1}, 11).max() == 1 * 11 + 10


def test_stuff_area_filter_counts_the_whole_class():
    probs = np.zeros((4, 32, 32), np.float32)
    probs[0] = 1
    for sl in (np.s_[0:3, 0:10], np.s_[20:23, 0:11]):  # 30 + 33 = 63 px of class 2
        probs[2][sl], probs[0][sl] = 1, 0
    raw = to_raw(probs, np.zeros((8, 8), np.float32), np.zeros((2, 8, 8), np.float32), 4)
    out = postprocess(raw, PostprocessConfig(stuff_area=64, label_divisor=1000), MULTI)[0]
    assert not out.any()
    out = postprocess(raw, PostprocessConfig(stuff_area=63, label_divisor=1000), MULTI)[0]
    assert set(np.unique(out)) == {0, 2000} and (out == 2000).sum() == 63


def test_split_disconnected_uses_8_connectivity_and_raster_order():
    pan = np.zeros((6, 8), np.int64)
    pan[0, 5] = 105  # a later instance whose first pixel comes first in raster order
    pan[1, 0:2] = 107
    pan[2, 2] = 107  # diagonal neighbour: same piece
    pan[4, 0:2] = 107  # a second, separate piece
    pan[5, 7] = 2000  # stuff is left alone
    out = split_disconnected(pan, {1}, 100)
    assert out[0, 5] == 101
    assert out[1, 0] == out[1, 1] == out[2, 2] == 102
    assert out[4, 0] == out[4, 1] == 103
    assert out[5, 7] == 2000 and out.dtype == np.uint32


def test_semantic_only_returns_one_region_per_class(rng):
    probs, hmp, off = random_outputs(rng, 4, (64, 64), 4)
    cfg = PostprocessConfig(semantic_only=True, label_divisor=1000, stuff_area=0)
    out = postprocess(to_raw(probs, hmp, off, 4), cfg, MULTI)[0]
    assert set(np.unique(out)) <= {0, 1000, 2000, 3000}
    np.testing.assert_array_equal(out // 1000, np.asarray([0, 1, 2, 3])[probs.argmax(0)])


def test_divisor_too_large_for_uint32_is_refused():
    with pytest.raises(TamaleInputError, match="uint32"):
        postprocess(
            to_raw(np.zeros((4, 8, 8), np.float32), np.zeros((2, 2), np.float32),
                   np.zeros((2, 2, 2), np.float32), 4),
            PostprocessConfig(label_divisor=2**31),
            MULTI,
        )  # fmt: skip


def test_raw_prediction_checks_shapes():
    with pytest.raises(ValueError, match="does not cover"):
        RawPrediction(torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 8, 8), torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="offsets"):
        RawPrediction(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 8, 8), torch.zeros(1, 2, 4, 8))
