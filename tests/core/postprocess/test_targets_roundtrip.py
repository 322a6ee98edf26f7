"""Targets made from ground truth and post-processed back reproduce the ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from tamale.postprocess import (
    ClassTable,
    PostprocessConfig,
    RawPrediction,
    find_centers,
    instance_centers,
    make_targets,
    postprocess,
)
from tamale.registry import ClassSpec
from tamale.synthetic import synthetic_em_2d


def panoptic_quality(gt: np.ndarray, pred: np.ndarray, divisor: int | None = None) -> float:
    """PQ over all classes together (segments match when IoU > 0.5 and classes agree)."""

    def cls(v):
        return v // divisor if divisor else (v > 0).astype(np.int64)

    g_ids, p_ids = np.unique(gt[gt > 0]), np.unique(pred[pred > 0])
    pairs, inter = np.unique(np.stack([gt.ravel(), pred.ravel()]), axis=1, return_counts=True)
    g_area = dict(zip(*np.unique(gt, return_counts=True)))
    p_area = dict(zip(*np.unique(pred, return_counts=True)))
    tp, iou_sum = 0, 0.0
    for (g, p), n in zip(pairs.T, inter):
        if g == 0 or p == 0 or cls(g) != cls(p):
            continue
        iou = n / (g_area[g] + p_area[p] - n)
        if iou > 0.5:
            tp += 1
            iou_sum += iou
    fp, fn = len(p_ids) - tp, len(g_ids) - tp
    denom = tp + 0.5 * fp + 0.5 * fn
    return iou_sum / denom if denom else 1.0


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to renaming ids (one-to-one), with 0 kept as 0."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return (
        len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))
        and ((pairs[0] == 0) == (pairs[1] == 0)).all()
    )


def n_touching(labels: np.ndarray) -> int:
    """Number of pixel borders between two different instances."""
    n = 0
    for a, b in ((labels[1:], labels[:-1]), (labels[:, 1:], labels[:, :-1])):
        n += int(((a != b) & (a > 0) & (b > 0)).sum())
    return n


def raw_from_targets(labels, stride=1, n_classes=1, **kwargs) -> RawPrediction:
    full = make_targets(labels, **kwargs)
    grid = make_targets(labels, stride=stride, **kwargs) if stride > 1 else full
    sem = torch.from_numpy(full.semantic)
    if n_classes == 1:
        probs = (sem > 0).float()[None, None]
    else:
        probs = torch.nn.functional.one_hot(sem, n_classes + 1).permute(2, 0, 1).float()[None]
    return RawPrediction(
        probs,
        torch.from_numpy(grid.heatmap)[None, None],
        torch.from_numpy(grid.offsets)[None],
        stride=stride,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kernel", [3, 5, 9])
def test_synthetic_touching_objects_round_trip_exactly(seed, kernel):
    s = synthetic_em_2d((320, 320), seed=seed, touch_fraction=0.8)
    raw = raw_from_targets(s.labels)
    out = postprocess(raw, PostprocessConfig(centers_min_distance=kernel), ClassTable.binary())[0]
    assert n_touching(s.labels) >= 20  # the case that matters: instances that touch
    assert same_partition(s.labels, out)
    assert panoptic_quality(s.labels, out) == 1.0
    assert set(np.unique(out // 10000)) == {0, 1}


def test_panoptic_tile_round_trips_exactly(shared_data):
    gt = tifffile.imread(shared_data / "panoptic_tile" / "panoptic_labels_original.tif")
    classes = ClassTable.from_classes(
        [
            ClassSpec(id=1, name="membrane", kind="semantic"),
            ClassSpec(id=2, name="mitochondria", kind="instance"),
            ClassSpec(id=3, name="nucleus", kind="semantic"),
        ]
    )
    raw = raw_from_targets(gt, n_classes=3, label_divisor=1000, thing_classes=[2])
    out = postprocess(raw, PostprocessConfig(label_divisor=1000), classes)[0]
    assert panoptic_quality(gt.astype(np.int64), out.astype(np.int64), divisor=1000) == 1.0
    assert same_partition(gt, out)
    np.testing.assert_array_equal(out // 1000, gt // 1000)  # every pixel's class
    # stuff is one region per class; mitochondria 2001..2007 (touching) stay 7 objects
    assert set(np.unique(out[gt // 1000 == 1])) == {1000}
    assert len(np.unique(out[gt // 1000 == 2])) == 7


def test_panoptic_tile_with_the_mitochondria_only_instance_file(shared_data):
    gt = tifffile.imread(shared_data / "panoptic_tile" / "mito_instances.tif")
    out = postprocess(raw_from_targets(gt), PostprocessConfig(), ClassTable.binary())[0]
    assert same_partition(gt, out) and panoptic_quality(gt, out) == 1.0


def test_coarse_round_trip_finds_every_object():
    s = synthetic_em_2d((256, 256), seed=3, touch_fraction=0.6)
    raw = raw_from_targets(s.labels, stride=4)
    cfg = PostprocessConfig(split_disconnected=False)
    out = postprocess(raw, cfg, ClassTable.binary())[0]
    # blocky 4x4 boundaries, but every object with a grid point is found, once
    _, ids = instance_centers(s.labels, stride=4)
    assert len(np.unique(out)) - 1 == len(ids)
    assert panoptic_quality(s.labels, out) > 0.85
    np.testing.assert_array_equal(out > 0, s.labels > 0)  # semantics are exact


def test_centres_lie_inside_non_convex_objects_and_are_unique():
    labels = np.zeros((40, 40), np.int64)
    labels[5:35, 5:10] = 1  # a "C": its centroid is outside it
    labels[5:10, 5:30] = 1
    labels[30:35, 5:30] = 1
    labels[15:25, 15:25] = 2  # another object sits where the C's centroid is
    t = make_targets(labels)
    for (y, x), i in zip(t.centers, t.instance_ids):
        assert labels[y, x] == i
    assert t.heatmap[tuple(t.centers.T)].tolist() == [1.0, 1.0]
    found = find_centers(torch.from_numpy(t.heatmap)[None, None], 0.1, 3)[0]
    assert sorted(map(tuple, found.tolist())) == sorted(map(tuple, t.centers.tolist()))
    out = postprocess(raw_from_targets(labels), PostprocessConfig(), ClassTable.binary())[0]
    assert same_partition(labels, out)


def test_targets_conventions():
    labels = np.zeros((20, 30), np.int64)
    labels[2:7, 3:8] = 5
    labels[10:15, 20:29] = 9
    t = make_targets(labels, sigma=2.0)
    assert t.semantic.dtype == np.int64 and set(np.unique(t.semantic)) == {0, 1}
    assert t.instance_ids.tolist() == [5, 9]
    assert t.centers.tolist() == [[4, 5], [12, 24]]
    assert t.heatmap.max() == 1.0 and t.heatmap[4, 5] == 1.0
    assert t.heatmap[4, 7] == pytest.approx(np.exp(-4 / 8))
    # offsets point from each pixel to its centre; background stays 0
    assert t.offsets[:, 2, 3].tolist() == [2.0, 2.0]
    assert t.offsets[:, 0, 0].tolist() == [0.0, 0.0]
    # stride 4: the grid, centres in grid units, offsets in pixels
    t4 = make_targets(labels, stride=4)
    assert t4.heatmap.shape == (5, 8) and t4.offsets.shape == (2, 5, 8)
    assert t4.centers.tolist() == [[1, 1], [3, 6]]
    assert t4.offsets[:, 1, 1].tolist() == [0.0, 0.0]
    assert t4.offsets[:, 3, 5].tolist() == [0.0, 4.0]


def test_targets_with_divisor_and_stuff_classes():
    labels = np.zeros((10, 10), np.int64)
    labels[:5] = 1001  # stuff
    labels[6:9, 1:4] = 2001
    labels[6:9, 4:7] = 2002
    t = make_targets(labels, label_divisor=1000, thing_classes=[2])
    assert t.instance_ids.tolist() == [2001, 2002]
    assert set(np.unique(t.semantic)) == {0, 1, 2}
    assert not t.offsets[:, :5].any()  # no offsets on stuff


def test_targets_are_vectorised_over_instances():
    """Many objects cost about as much as few (one pass, not one per object)."""
    import time

    s = synthetic_em_2d((512, 512), seed=0, n_objects=120)
    t0 = time.perf_counter()
    t = make_targets(s.labels)
    elapsed = time.perf_counter() - t0
    assert len(t.instance_ids) == s.n_objects
    assert elapsed < 2.0  # generous: a per-object full-image pass would be far slower
