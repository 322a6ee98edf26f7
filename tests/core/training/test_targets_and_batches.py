"""Training targets: equal to tamale.postprocess.make_targets, and round-trip to the ground
truth through post-processing (PQ = 1), also after the sampler's augmentation-free batching
and on a panoptic set with semantic and instance classes."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from _training_helpers import write_set

from tamale.postprocess import (
    ClassTable,
    PostprocessConfig,
    RawPrediction,
    make_targets,
    postprocess,
)
from tamale.registry import ClassSpec, Norms
from tamale.synthetic import synthetic_em_2d
from tamale.training.augment import augment_batch
from tamale.training.config import AugmentConfig
from tamale.training.data import DatasetSpec, iter_load_dataset
from tamale.training.metrics import score_labels
from tamale.training.sampler import BatchSampler
from tamale.training.targets import batch_targets

MITO = [ClassSpec(id=1, name="mito", kind="instance")]
PANOPTIC = [
    ClassSpec(id=1, name="membrane", kind="semantic"),
    ClassSpec(id=2, name="mito", kind="instance"),
    ClassSpec(id=3, name="nucleus", kind="semantic"),
]


def _drain(work):
    try:
        while True:
            next(work)
    except StopIteration as stop:
        return stop.value


def _compact(labels: np.ndarray, things: set[int] | None = None, divisor: int | None = None):
    values, inverse = np.unique(labels, return_inverse=True)
    lut = np.zeros((len(values), 2), np.int64)
    for k, v in enumerate(values):
        if v == 0:
            continue
        cls = int(v) // divisor if divisor else 1
        lut[k] = (cls, 1 if things is None or cls in things else 0)
    return inverse.reshape(labels.shape), lut


def _raw(t, b: int, n_channels: int) -> RawPrediction:
    sem = t.semantic[b]
    if n_channels == 1:
        probs = (sem > 0).float()[None, None]
    else:
        probs = torch.nn.functional.one_hot(sem, n_channels).permute(2, 0, 1).float()[None]
    return RawPrediction(probs, t.heatmap[b : b + 1], t.offsets[b : b + 1], stride=1)


def test_batch_targets_equal_make_targets():
    ems = [synthetic_em_2d((96, 128), seed=s, touch_fraction=0.6) for s in range(3)]
    comp = [_compact(em.labels) for em in ems]
    k = max(len(lut) for _, lut in comp)
    luts = np.zeros((3, k, 2), np.int64)
    for i, (_, lut) in enumerate(comp):
        luts[i, : len(lut)] = lut
    labels = torch.from_numpy(np.stack([c for c, _ in comp])).long()
    t = batch_targets(labels, torch.from_numpy(luts), sigma=4.0)
    for i, em in enumerate(ems):
        ref = make_targets(em.labels, sigma=4.0)
        np.testing.assert_array_equal(t.heatmap[i, 0].numpy(), ref.heatmap)
        np.testing.assert_array_equal(t.offsets[i].numpy(), ref.offsets)
        np.testing.assert_array_equal(t.semantic[i].numpy(), ref.semantic)
    assert len(t.centers) == sum(em.n_objects for em in ems)


def test_targets_round_trip_through_postprocessing():
    em = synthetic_em_2d((160, 160), seed=4, touch_fraction=0.8)
    labels, lut = _compact(em.labels)
    t = batch_targets(torch.from_numpy(labels)[None].long(), torch.from_numpy(lut)[None])
    out = postprocess(_raw(t, 0, 1), PostprocessConfig(), ClassTable.binary())[0]
    s = score_labels(out, em.labels)
    assert s["pq"] == 1.0 and s["f1"] == 1.0


def test_panoptic_targets_round_trip(shared_data):
    gt = tifffile.imread(shared_data / "panoptic_tile" / "panoptic_labels_original.tif")
    labels, lut = _compact(gt.astype(np.int64), things={2}, divisor=1000)
    t = batch_targets(torch.from_numpy(labels)[None].long(), torch.from_numpy(lut)[None])
    table = ClassTable.from_classes(PANOPTIC)
    out = postprocess(_raw(t, 0, 4), PostprocessConfig(label_divisor=1000), table)[0]
    s = score_labels(out, gt, things=(2,), pred_divisor=1000, gt_divisor=1000)
    assert s["pq"] == 1.0 and s["f1"] == 1.0 and s["iou"] == 1.0
    assert not t.offsets[0][:, gt // 1000 == 1].any()  # no offsets on semantic classes


@pytest.mark.parametrize("divisor", [None, 1000])
def test_batches_without_augmentation_round_trip(tmp_path, divisor):
    """Sampler windows -> crop (no augmentation) -> targets -> post-processing == the
    ground truth under each patch (PQ = 1), for every patch of an epoch."""
    ems = [synthetic_em_2d((100, 150), seed=s) for s in range(2)]
    masks = [em.labels + (1000 if divisor else 0) * (em.labels > 0) for em in ems]
    root = write_set(tmp_path / "set", [em.image for em in ems], masks)
    spec = DatasetSpec([MITO[0]], divisor)
    data = _drain(iter_load_dataset(root, spec, Norms()))
    sampler = BatchSampler(data, patch_size=64, batch_size=3, seed=1, context=2.0)
    off = AugmentConfig(enabled=False)
    seen = 0
    for _ in range(sampler.patches_per_epoch // 3):
        specs = sampler.next_specs()
        batch = sampler.read(specs)
        x, lab = augment_batch(batch.images, batch.labels, 64, off, Norms(), torch.Generator())
        t = batch_targets(lab, batch.luts)
        for b, sp in enumerate(specs):
            y, x0 = sp.coords
            gt = np.zeros((64, 64), np.int64)
            crop = masks[sp.data_idx][max(y, 0) : y + 64, max(x0, 0) : x0 + 64]
            gt[: crop.shape[0], : crop.shape[1]] = crop
            np.testing.assert_allclose(
                x[b, 0, : crop.shape[0], : crop.shape[1]].numpy(),
                data.items[sp.data_idx].image[y : y + 64, x0 : x0 + 64],
            )
            out = postprocess(_raw(t, b, 1), PostprocessConfig(), ClassTable.binary())[0]
            s = score_labels(out, gt, pred_divisor=None, gt_divisor=None)
            assert np.isnan(s["pq"]) or s["pq"] == 1.0
            seen += 1
    assert seen >= 6


def test_augmentation_keeps_labels_whole_and_is_seeded():
    em = synthetic_em_2d((128, 128), seed=2)
    labels, _ = _compact(em.labels)
    img = torch.from_numpy(em.image.astype(np.float32) / 255)[None, None].repeat(4, 1, 1, 1)
    lab = torch.from_numpy(labels.astype(np.float32))[None, None].repeat(4, 1, 1, 1)
    cfg = AugmentConfig()
    a = augment_batch(img, lab, 64, cfg, Norms(), torch.Generator().manual_seed(0))
    b = augment_batch(img, lab, 64, cfg, Norms(), torch.Generator().manual_seed(0))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[1].dtype == torch.int64 and a[1].shape == (4, 64, 64)
    # nearest resampling never invents ids
    assert set(a[1].unique().tolist()) <= set(np.unique(labels).tolist())
    assert not torch.equal(a[0][0], a[0][1])  # each sample gets its own transform
