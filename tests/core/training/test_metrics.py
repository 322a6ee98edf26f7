"""Metrics on hand-made cases: exact IoU, PQ and F1@0.5 values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tamale.training.metrics import SegmentationScores, score_labels, segment_keys


def _boxes(shape, boxes):
    out = np.zeros(shape, np.uint32)
    for value, (y0, y1, x0, x1) in boxes.items():
        out[y0:y1, x0:x1] = value
    return out


def test_perfect_prediction_with_other_ids():
    gt = _boxes((20, 20), {1: (0, 5, 0, 5), 2: (10, 15, 10, 15)})
    pred = _boxes((20, 20), {7: (0, 5, 0, 5), 3: (10, 15, 10, 15)})
    s = score_labels(pred, gt)
    assert s["pq"] == 1.0 and s["f1"] == 1.0 and s["iou"] == 1.0
    assert (s["tp"], s["fp"], s["fn"]) == (2, 0, 0)


def test_one_missed_one_false_positive():
    gt = _boxes((20, 20), {1: (0, 4, 0, 4), 2: (10, 14, 10, 14)})
    pred = _boxes((20, 20), {1: (0, 4, 0, 4), 2: (16, 20, 0, 4)})
    s = score_labels(pred, gt)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 1)
    assert s["f1"] == pytest.approx(2 / 4)
    assert s["pq"] == pytest.approx(1.0 / (1 + 0.5 + 0.5))
    assert s["iou"] == pytest.approx(16 / 48)  # |∩| = 16, |∪| = 16 + 16 + 16


def test_iou_exactly_half_is_not_a_match():
    gt = _boxes((10, 10), {1: (0, 2, 0, 4)})  # 8 pixels
    pred = _boxes((10, 10), {1: (0, 2, 0, 2), 2: (0, 2, 2, 4)})  # halves: IoU 0.5 each
    s = score_labels(pred, gt)
    assert (s["tp"], s["fp"], s["fn"]) == (0, 2, 1)
    assert s["pq"] == 0.0 and s["f1"] == 0.0 and s["iou"] == 1.0


def test_partial_overlap_counts_its_iou():
    gt = _boxes((10, 10), {1: (0, 4, 0, 4)})  # 16 px
    pred = _boxes((10, 10), {5: (0, 4, 0, 3)})  # 12 px inside: IoU 0.75
    s = score_labels(pred, gt)
    assert s["pq"] == pytest.approx(0.75) and s["f1"] == 1.0


def test_panoptic_classes_and_stuff():
    div = 1000
    gt = np.zeros((10, 10), np.uint32)
    gt[:5] = 1001  # stuff class 1 (any value of the class: one segment)
    gt[:5, :2] = 1002
    gt[6:8, 0:2] = 2001  # instance class 2
    gt[6:8, 4:6] = 2002
    pred = np.zeros_like(gt)
    pred[:5] = 1000  # stuff as predicted: class * divisor
    pred[6:8, 0:2] = 2001
    s = score_labels(pred, gt, things=(2,), pred_divisor=div, gt_divisor=div)
    assert s["pq/1"] == 1.0 and s["iou/1"] == 1.0
    assert s["f1/2"] == pytest.approx(2 / 3) and s["f1"] == pytest.approx(2 / 3)
    assert s["pq"] == pytest.approx((1.0 + 1.0 / 1.5) / 2)
    assert s["iou/2"] == pytest.approx(0.5)


def test_wrong_class_is_no_match():
    gt = np.full((4, 4), 2001, np.uint32)
    pred = np.full((4, 4), 3001, np.uint32)
    s = score_labels(pred, gt, things=(2, 3), pred_divisor=1000, gt_divisor=1000)
    assert s["f1"] == 0.0 and s["iou"] == 0.0


def test_pooled_over_images_and_empty_cases():
    scores = SegmentationScores(things=frozenset({1}))
    empty = np.zeros((4, 4), np.uint32)
    one = _boxes((4, 4), {1: (0, 2, 0, 2)})
    scores.add(segment_keys(empty, None, (1,)), segment_keys(empty, None, (1,)))
    assert math.isnan(scores.summary()["pq"])  # nothing anywhere: undefined, not 0 or 1
    scores.add(segment_keys(one, None, (1,)), segment_keys(one, None, (1,)))
    scores.add(segment_keys(empty, None, (1,)), segment_keys(one, None, (1,)))
    s = scores.summary()
    assert (s["tp"], s["fp"], s["fn"]) == (1, 0, 1)
    assert s["pq"] == pytest.approx(1 / 1.5)
