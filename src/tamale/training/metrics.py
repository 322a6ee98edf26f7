"""Segmentation quality: semantic IoU, panoptic quality (PQ) and F1 at IoU 0.5.

Both label images are first put into one canonical form, a *segment key* per pixel:
``class << 32 | instance`` for instance classes and ``class << 32`` for semantic
classes (all of a semantic class's pixels are one segment), 0 for background. Then:

* **semantic IoU** of a class: |pred ∩ gt| / |pred ∪ gt| over its pixels;
* **matching**: a predicted and a ground-truth segment of the same class match when
  their IoU is **above 0.5** — such a match is unique, so no assignment problem arises;
* **PQ** of a class: ``sum of matched IoUs / (TP + FP/2 + FN/2)`` (SQ x RQ);
* **F1@0.5** of a class: ``2 TP / (2 TP + FP + FN)`` (equal to RQ).

:class:`SegmentationScores` accumulates the counts over images, so dataset scores are
computed from the pooled counts (a class absent from both images contributes nothing).
Means run over the classes that occur in the ground truth or the prediction; F1 over the
instance classes only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ClassCounts", "SegmentationScores", "score_labels", "segment_keys"]

_SHIFT = np.int64(32)


def segment_keys(
    labels: np.ndarray, label_divisor: int | None, things: Iterable[int]
) -> np.ndarray:
    """Canonical segment keys (int64) of a label image.

    Parameters
    ----------
    labels : ndarray of int
        Panoptic labels ``class * label_divisor + instance``, or (``label_divisor`` None)
        instance ids of the single class 1.
    label_divisor : int or None
    things : iterable of int
        Instance classes; the others are semantic (one segment per class).
    """
    labels = np.asarray(labels).astype(np.int64, copy=False)
    if label_divisor is None:
        return np.where(labels > 0, (np.int64(1) << _SHIFT) | labels, 0)
    cls = labels // label_divisor
    inst = labels % label_divisor
    things_arr = np.asarray(sorted(set(int(t) for t in things)), dtype=np.int64)
    is_thing = np.isin(cls, things_arr)
    keys = (cls << _SHIFT) | np.where(is_thing, inst, 0)
    return np.where(labels > 0, keys, 0)


@dataclass
class ClassCounts:
    """Pooled counts of one class."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    iou_sum: float = 0.0
    intersection: int = 0
    union: int = 0

    @property
    def pq(self) -> float | None:
        denom = self.tp + 0.5 * self.fp + 0.5 * self.fn
        return self.iou_sum / denom if denom else None

    @property
    def f1(self) -> float | None:
        denom = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denom if denom else None

    @property
    def iou(self) -> float | None:
        return self.intersection / self.union if self.union else None


@dataclass
class SegmentationScores:
    """Counts per class, pooled over the images added with :meth:`add`."""

    things: frozenset[int] = frozenset()
    classes: dict[int, ClassCounts] = field(default_factory=dict)

    def _get(self, c: int) -> ClassCounts:
        return self.classes.setdefault(int(c), ClassCounts())

    def add(self, pred_keys: np.ndarray, gt_keys: np.ndarray) -> SegmentationScores:
        """Add one image (segment keys from :func:`segment_keys`)."""
        pred = np.asarray(pred_keys, dtype=np.int64).ravel()
        gt = np.asarray(gt_keys, dtype=np.int64).ravel()
        if pred.shape != gt.shape:
            raise ValueError(
                f"prediction and ground truth differ in size: {pred.size} vs {gt.size}"
            )
        p_ids, p_inv = np.unique(pred, return_inverse=True)
        g_ids, g_inv = np.unique(gt, return_inverse=True)
        p_area = np.bincount(p_inv, minlength=len(p_ids))
        g_area = np.bincount(g_inv, minlength=len(g_ids))
        pair = g_inv.astype(np.int64) * len(p_ids) + p_inv
        pairs, inter = np.unique(pair, return_counts=True)
        gi, pi = pairs // len(p_ids), pairs % len(p_ids)
        p_cls, g_cls = p_ids >> _SHIFT, g_ids >> _SHIFT

        # semantic IoU per class
        for c in set(p_cls[p_ids > 0].tolist()) | set(g_cls[g_ids > 0].tolist()):
            pa = int(p_area[(p_cls == c) & (p_ids > 0)].sum())
            ga = int(g_area[(g_cls == c) & (g_ids > 0)].sum())
            same = (p_cls[pi] == c) & (g_cls[gi] == c) & (p_ids[pi] > 0) & (g_ids[gi] > 0)
            i = int(inter[same].sum())
            counts = self._get(c)
            counts.intersection += i
            counts.union += pa + ga - i

        # segment matching (IoU > 0.5 within a class)
        valid = (p_ids[pi] > 0) & (g_ids[gi] > 0) & (p_cls[pi] == g_cls[gi])
        union = p_area[pi] + g_area[gi] - inter
        iou = np.where(valid, inter / np.maximum(union, 1), 0.0)
        matched = iou > 0.5
        for c in set(p_cls[p_ids > 0].tolist()) | set(g_cls[g_ids > 0].tolist()):
            counts = self._get(c)
            in_c = matched & (g_cls[gi] == c)
            tp = int(in_c.sum())
            n_pred = int(((p_cls == c) & (p_ids > 0)).sum())
            n_gt = int(((g_cls == c) & (g_ids > 0)).sum())
            counts.tp += tp
            counts.fp += n_pred - tp
            counts.fn += n_gt - tp
            counts.iou_sum += float(iou[in_c].sum())
        return self

    def summary(self) -> dict[str, float]:
        """``iou``, ``pq``, ``f1`` (means over classes; NaN when undefined) and per-class
        values ``iou/<c>``, ``pq/<c>``, ``f1/<c>``, plus ``tp``, ``fp``, ``fn`` of the
        instance classes."""
        out: dict[str, float] = {}
        ious, pqs, f1s = [], [], []
        tp = fp = fn = 0
        for c, counts in sorted(self.classes.items()):
            if counts.iou is not None:
                out[f"iou/{c}"] = counts.iou
                ious.append(counts.iou)
            if counts.pq is not None:
                out[f"pq/{c}"] = counts.pq
                pqs.append(counts.pq)
            if c in self.things:
                tp, fp, fn = tp + counts.tp, fp + counts.fp, fn + counts.fn
                if counts.f1 is not None:
                    out[f"f1/{c}"] = counts.f1
                    f1s.append(counts.f1)
        out["iou"] = float(np.mean(ious)) if ious else float("nan")
        out["pq"] = float(np.mean(pqs)) if pqs else float("nan")
        out["f1"] = float(np.mean(f1s)) if f1s else float("nan")
        out.update(tp=float(tp), fp=float(fp), fn=float(fn))
        return out


def score_labels(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    things: Iterable[int] = (1,),
    pred_divisor: int | None = None,
    gt_divisor: int | None = None,
) -> dict[str, float]:
    """Scores of one prediction against its ground truth (see :meth:`SegmentationScores.summary`).

    ``pred_divisor`` / ``gt_divisor`` None mean "every nonzero id is an object of class 1".
    """
    things = frozenset(int(t) for t in things)
    scores = SegmentationScores(things=things)
    scores.add(segment_keys(pred, pred_divisor, things), segment_keys(gt, gt_divisor, things))
    return scores.summary()
