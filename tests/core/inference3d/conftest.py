"""Shared data for the 3D inference tests: small synthetic panoptic volumes and a reference pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from tamale.inference.slice_model import ClassInfo, LabelEchoFactory
from tamale.postprocess.linking import link_instance_stack
from tamale.synthetic import synthetic_em_3d

DIV = 1000
TWO_CLASSES = (ClassInfo(1, "mito", "instance"), ClassInfo(2, "er", "semantic"))


def make_panoptic(shape=(16, 40, 48), seed=3) -> np.ndarray:
    """Mitochondria instances (class 1) and a semantic slab of 'ER' (class 2), with noise."""
    s = synthetic_em_3d(
        shape, spacing=(1, 1, 1), object_size=(3, 6), n_objects=20, touch_fraction=0.5, seed=seed
    )
    pan = np.where(s.labels > 0, DIV + s.labels, 0).astype(np.uint32)
    rng = np.random.default_rng(seed)
    er = s.membranes & (s.labels == 0)
    pan[er] = 2 * DIV
    # a few one-slice flickers for the median filter to remove
    flick = rng.random(shape) < 0.002
    pan[flick & (pan == 0)] = DIV + 500
    return pan


def reference_stack(pan: np.ndarray, axis: int, median: int, min_size: int, min_extent: int):
    """The stack pipeline written directly: scipy median, echo rule, in-memory linking."""
    size = [1, 1, 1]
    size[axis] = median
    out = {}
    cls = pan // DIV
    probs = {
        c: ndi.median_filter((cls == c).astype(np.float32), size=size, mode="reflect")
        for c in (1, 2)
    }
    best = np.where(probs[2] > probs[1], 2, 1)
    on = np.maximum(probs[1], probs[2]) >= 0.5
    klass = np.where(on, best, 0)
    inst = np.where((klass == 1) & (cls == 1) & (pan % DIV != 0), pan, 0).astype(np.int64)
    moved = np.moveaxis(inst, axis, 0)
    fresh_mask = np.moveaxis((klass == 1) & (inst == 0), axis, 0)
    for z in range(moved.shape[0]):  # pixels the filter turned on: one new id per slice
        if fresh_mask[z].any():
            top = int(moved[z].max() % DIV) if moved[z].any() else 0
            moved[z][fresh_mask[z]] = DIV + top + 1
    inst = np.moveaxis(moved, 0, axis)
    out["mito"] = link_instance_stack(inst, axis=axis, min_size=min_size, min_extent=min_extent)
    out["er"] = (klass == 2).astype(np.uint32)
    return out


@pytest.fixture(scope="session")
def panoptic_volume() -> np.ndarray:
    return make_panoptic()


@pytest.fixture
def echo() -> LabelEchoFactory:
    return LabelEchoFactory(classes=TWO_CLASSES, label_divisor=DIV)
