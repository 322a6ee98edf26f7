"""Tiled inference: layout, and one id per object across tile borders."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from ideal_model import ideal_engine, same_partition
from skimage.measure import label as sk_label

from tamale.errors import TamaleInputError
from tamale.inference import Inference2DConfig, infer_2d, plan_tiles
from tamale.inference.tiling import plan_axis
from tamale.synthetic import synthetic_em_2d


@pytest.mark.parametrize("length", [1, 31, 64, 65, 100, 257, 1000, 1023])
@pytest.mark.parametrize(("tile", "overlap", "align"), [(64, 16, 32), (128, 40, 16), (96, 0, 32)])
def test_axis_plan_covers_aligns_overlaps_and_partitions(length, tile, overlap, align):
    runs = plan_axis(length, tile, overlap, align)
    starts = [s for s, *_ in runs]
    assert starts[0] == 0 and runs[-1][1] == length
    assert all(s % align == 0 for s in starts)
    assert all(e - s <= tile for s, e, *_ in runs)
    for (s0, e0, _, c0), (s1, _, c1, _) in itertools.pairwise(runs):
        assert s1 > s0 and e0 - s1 >= overlap  # consecutive tiles overlap enough
        assert c0 == c1 and s1 <= c1 <= e0  # cores meet inside the overlap
    assert runs[0][2] == 0 and runs[-1][3] == length


def test_tile_plan_in_original_pixels_with_downsampling():
    tiles = plan_tiles((300, 200), downsampling=2, tile_size=64, overlap=16, align=32)
    cover = np.zeros((300, 200), int)
    for t in tiles:
        cover[t.core] += 1
        assert t.read[0].start % 64 == 0 and t.read[1].start % 64 == 0
    assert (cover == 1).all()  # cores partition the image


def test_too_small_tiles_are_explained():
    with pytest.raises(TamaleInputError, match="padding factor"):
        plan_tiles((500, 500), downsampling=1, tile_size=16, overlap=0, align=32)
    with pytest.raises(TamaleInputError, match="overlap"):
        plan_tiles((500, 500), downsampling=1, tile_size=64, overlap=60, align=32)


def tricky_labels() -> np.ndarray:
    """Objects wider than a tile, objects on tile borders, touching objects."""
    s = synthetic_em_2d((256, 352), seed=5, touch_fraction=0.7, n_objects=25)
    labels = s.labels.astype(np.int64)
    n = int(labels.max())
    labels[100:110, 10:340] = n + 1  # a bar far wider than a 64-px tile
    labels[110:118, 10:340] = n + 2  # touching it all along
    labels[20:90, 190:195] = n + 3  # a thin object along a tile seam
    labels[20:90, 195:200] = n + 4  # touching it across the seam
    labels[200:256, 300:352] = n + 5  # in the image corner
    # the bars cut some objects in pieces: each connected piece is one object
    pieces = sk_label(labels, background=0, connectivity=2)
    assert pieces.max() < 256
    return pieces.astype(np.uint8)


@pytest.mark.parametrize(("tile", "overlap"), [(64, 16), (96, 40)])
def test_tiled_equals_untiled_and_ground_truth_in_fine_mode(tile, overlap):
    labels = tricky_labels()
    engine = ideal_engine()
    base = Inference2DConfig(fine_boundaries=True, use_gpu=False, tile_size=0)
    whole = infer_2d(labels, engine, base)
    assert whole.n_tiles == 1 and same_partition(labels, whole.labels)
    tiled = infer_2d(
        labels, engine, base.model_copy(update={"tile_size": tile, "tile_overlap": overlap})
    )
    assert tiled.n_tiles > 15
    assert same_partition(labels, tiled.labels)
    np.testing.assert_array_equal(tiled.labels, whole.labels)  # same ids, same order


def test_tiles_of_different_shapes_are_batched_separately():
    labels = tricky_labels()[:250, :330]  # the last tiles are shorter than the others
    tiles = plan_tiles(labels.shape, downsampling=1, tile_size=64, overlap=16, align=32)
    assert len({t.shape for t in tiles}) > 1
    cfg = Inference2DConfig(fine_boundaries=True, tile_size=64, tile_overlap=16, batch_size=8)
    out = infer_2d(labels, ideal_engine(), cfg)
    assert same_partition(labels, out.labels)


def test_coarse_tiled_keeps_one_id_per_object():
    """At 1/4 resolution thin objects are blocky anyway; tiles must not make it worse."""
    labels = tricky_labels()
    engine = ideal_engine()
    cfg = Inference2DConfig(tile_size=64, tile_overlap=32, split_disconnected=False)
    out = infer_2d(labels, engine, cfg)
    whole = infer_2d(labels, engine, cfg.model_copy(update={"tile_size": 0})).labels
    assert out.n_tiles > 15
    out = out.labels
    np.testing.assert_array_equal(out > 0, labels > 0)

    def dominant(pred: np.ndarray, g: int) -> float:
        _, counts = np.unique(pred[labels == g], return_counts=True)
        return counts.max() / counts.sum()

    for g in np.unique(labels)[1:]:
        assert dominant(out, g) >= dominant(whole, g) - 0.1, g
    bar = labels[105, 200]  # 330 px wide: crosses 10 tiles
    assert dominant(out, bar) > 0.99


def test_downsampled_tiles_line_up():
    labels = np.kron(tricky_labels(), np.ones((2, 2), np.uint8))  # ids constant on 2x2
    engine = ideal_engine()
    cfg = Inference2DConfig(fine_boundaries=True, downsampling=2, tile_size=64, tile_overlap=16)
    out = infer_2d(labels, engine, cfg)
    assert out.n_tiles > 20 and same_partition(labels, out.labels)


def test_batch_mode_with_tiles_keeps_slices_apart():
    labels = tricky_labels()
    stack = np.stack([labels, labels[::-1], np.zeros_like(labels)])
    engine = ideal_engine()
    cfg = Inference2DConfig(fine_boundaries=True, tile_size=64, tile_overlap=16, batch_mode=True)
    out = infer_2d(stack, engine, cfg).labels
    assert out.shape == stack.shape and out.dtype == np.uint32
    assert same_partition(stack[0], out[0]) and same_partition(stack[1], out[1])
    assert not out[2].any()
