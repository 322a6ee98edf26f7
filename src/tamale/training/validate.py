"""Validation during training: the inference pipeline on whole images, then the metrics.

Each validation image goes through exactly what 2D inference does with the model
(:func:`tamale.inference.predict_raw` on the normalised image padded to the padding
factor, then :func:`tamale.postprocess.postprocess` with default parameters), and the
panoptic result is scored against the mask (:mod:`tamale.training.metrics`): semantic
IoU, PQ and F1 at IoU 0.5, pooled over the set, plus per-image PQ and F1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tamale.inference.predict import predict_raw
from tamale.postprocess import ClassTable, PostprocessConfig, drop_small_instances, postprocess
from tamale.progress import CancelToken, check
from tamale.training.data import LoadedSet
from tamale.training.metrics import SegmentationScores, segment_keys

__all__ = ["ValidationResult", "predict_labels", "validate", "validation_config"]

PRED_DIVISOR = 65536
"""Label divisor of the predictions scored (large: never limits the object count)."""


@dataclass
class ValidationResult:
    """Scores of one validation pass."""

    scores: dict[str, float]
    """Pooled ``iou``, ``pq``, ``f1`` (and per class, see ``SegmentationScores.summary``)."""
    per_image: dict[str, dict[str, float]] = field(default_factory=dict)
    """Image name → its own ``iou``, ``pq``, ``f1``."""


def predict_labels(
    model: torch.nn.Module,
    image: np.ndarray,
    classes: ClassTable,
    device: torch.device,
    config: PostprocessConfig | None = None,
    downsampling: int = 1,
    min_area: int = 0,
) -> np.ndarray:
    """Panoptic labels of one normalised image (the model in eval mode), at the image's
    resolution; ``downsampling`` and ``min_area`` as in 2D inference."""
    cfg = config or PostprocessConfig(label_divisor=PRED_DIVISOR)
    x = torch.from_numpy(np.ascontiguousarray(image))[None].to(device)
    with torch.inference_mode():
        raw = predict_raw(model, x, downsampling=downsampling)
        labels = postprocess(raw, cfg, classes)[0]
    if min_area > 0:
        labels = drop_small_instances(labels, classes.things, cfg.label_divisor, min_area)
    return labels


def validation_config(inference: dict[str, Any] | None) -> tuple[PostprocessConfig, int]:
    """The post-processing parameters and min area of recommended ``inference``
    parameters (the others, e.g. 3D ones, do not apply to validation)."""
    wanted = {
        k: v
        for k, v in (inference or {}).items()
        if k in PostprocessConfig.model_fields and k != "label_divisor"
    }
    cfg = PostprocessConfig(**{**wanted, "label_divisor": PRED_DIVISOR})
    return cfg, int((inference or {}).get("min_area", 0))


def _single_class_keys(labels: np.ndarray, instance: bool) -> np.ndarray:
    if instance:
        return segment_keys(labels, None, (1,))
    return np.where(np.asarray(labels) > 0, np.int64(1) << np.int64(32), np.int64(0))


def validate(
    model: torch.nn.Module,
    data: LoadedSet,
    device: torch.device,
    cancel: CancelToken | None = None,
    downsampling: int = 1,
    inference: dict[str, Any] | None = None,
) -> ValidationResult:
    """Score ``model`` (already in eval mode) on every image of ``data`` (full resolution;
    the model sees it downsampled by ``downsampling``, as 2D inference would, and the
    results are post-processed with the recommended ``inference`` parameters)."""
    post, min_area = validation_config(inference)
    spec = data.spec
    table = ClassTable.from_classes(spec.classes)
    things = spec.things
    single = spec.label_divisor is None
    single_things = frozenset({1}) if things else frozenset()
    pooled = SegmentationScores(things=single_things if single else things)
    per_image: dict[str, dict[str, float]] = {}
    for item in data.items:
        check(cancel)
        pred = predict_labels(
            model, item.image, table, device, post, downsampling=downsampling, min_area=min_area
        )
        if single:  # one class: any nonzero id is an object (the class id does not matter)
            pred_keys = _single_class_keys(pred, bool(things))
            gt_keys = _single_class_keys(item.mask, bool(things))
        else:
            pred_keys = segment_keys(pred, PRED_DIVISOR, things)
            gt_keys = segment_keys(item.mask, spec.label_divisor, things)
        pooled.add(pred_keys, gt_keys)
        one = SegmentationScores(things=pooled.things).add(pred_keys, gt_keys).summary()
        per_image[item.name] = {k: one[k] for k in ("iou", "pq", "f1", "tp", "fp", "fn")}
    return ValidationResult(pooled.summary(), per_image)
