"""PatchSampler and BlueNoisePatchSampler against brute-force references."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import zarr
from _patching_helpers import FAST, FEW
from hypothesis import given
from hypothesis import strategies as st

from tamale.errors import TamaleInputError
from tamale.patching import BlueNoisePatchSampler, ImageCollection, MaskCoverage, PatchSampler


def fine_mask(mask, image_shape):
    """The mask upsampled to fine units (exact), and fine units per image pixel."""
    mc = MaskCoverage(mask, image_shape)
    fine = mask
    for axis, w in enumerate(mc.width):
        fine = np.repeat(fine, w, axis=axis)
    return fine, mc.unit


def brute_coverage(mask, image_shape, start, size):
    """Pixels of the box [start, start + size) ∩ image covered by the mask (float)."""
    fine, unit = fine_mask(mask, image_shape)
    sl = tuple(
        slice(max(0, s) * u, max(0, min(n, s + p)) * u)
        for s, p, n, u in zip(start, size, image_shape, unit)
    )
    return fine[sl].sum() / math.prod(unit)


@st.composite
def masked_images(draw):
    d = draw(st.sampled_from([2, 2, 3]))
    shape = tuple(draw(st.integers(6, 40 if d == 2 else 14)) for _ in range(d))
    mshape = tuple(draw(st.integers(1, n)) for n in shape)  # any (also non-integer) scale
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    mask = rng.random(mshape) < draw(st.floats(0.2, 0.9))
    mask.flat[0] = True
    ps = tuple(draw(st.integers(1, max(1, n // 2))) for n in shape)
    return shape, mask, ps


@FAST
@given(masked_images(), st.data())
def test_grid_sampler_keeps_exactly_the_patches_meeting_min_area(case, data):
    shape, mask, ps = case
    axes = "ZYX"[-len(shape) :]
    stride = tuple(data.draw(st.integers(1, p + 2)) for p in ps)
    area = math.prod(ps)
    min_area = data.draw(st.one_of(st.integers(1, area), st.sampled_from([0.25, 0.5, 0.75, 0.999])))
    sampler = PatchSampler(ps, stride=stride, min_area=min_area, spatial_axes=axes)
    coll = ImageCollection(np.zeros(shape, np.uint8), mask)
    got = {tuple(p) for p in sampler.compute_toplefts(coll).tolist()}
    need = min_area if min_area >= 1 else min_area * area
    starts = [range(0, n - p + 1, s) for n, p, s in zip(shape, ps, stride)]
    expected = {
        c for c in itertools.product(*starts) if brute_coverage(mask, shape, c, ps) >= need - 1e-9
    }
    assert got == expected
    # no patch reaches past the image
    assert all(c + p <= n for start in got for c, p, n in zip(start, ps, shape))


@FAST
@given(masked_images(), st.data())
def test_chunks_partition_the_patches(case, data):
    shape, mask, ps = case
    chunks = tuple(data.draw(st.integers(1, n)) for n in shape)
    image = zarr.create_array(store={}, shape=shape, chunks=chunks, dtype="uint8")
    coll = ImageCollection(image, mask)
    sampler = PatchSampler(ps, min_area=1, spatial_axes="ZYX"[-len(shape) :], pad=1)
    whole = sampler.compute_toplefts(coll)
    per_chunk = []
    for chunk in sampler.compute_chunks(coll):
        for a, sl in chunk.items():
            assert sl.start % ps["ZYX"[-len(shape) :].index(a)] == 0  # stride-aligned
        windows = sampler.compute_patches(coll, chunk)
        assert windows, "compute_chunks returned an empty chunk"
        per_chunk += [tuple(w[a].start + 1 for a in coll.spatial_axes) for w in windows]
        for w in windows:
            assert all(w[a].stop - w[a].start == p + 2 for a, p in zip(coll.spatial_axes, ps))
    assert sorted(per_chunk) == sorted(map(tuple, whole.tolist()))
    assert len(set(per_chunk)) == len(per_chunk)


def test_low_resolution_mask_examples():
    image = np.zeros((100, 100), np.uint8)
    mask = np.zeros((10, 10), bool)
    mask[:2, :2] = True  # covers the image's [0, 20)^2
    coll = ImageCollection(image, mask)
    assert PatchSampler(20, min_area=400).compute_toplefts(coll).tolist() == [[0, 0]]
    assert PatchSampler(15).compute_toplefts(coll).tolist() == [[0, 0], [0, 15], [15, 0], [15, 15]]
    # a fraction is of the patch footprint, measured over the patch even with a small stride
    assert (
        len(PatchSampler(32, stride=16, min_area=0.5).compute_toplefts(ImageCollection(image)))
        == 25
    )
    half = PatchSampler(20, stride=10, min_area=0.5).compute_toplefts(coll).tolist()
    assert half == [[0, 0], [0, 10], [10, 0]]


def test_incomplete_patches_and_padding():
    image = np.arange(100, dtype=np.uint8)[None].repeat(100, 0)
    coll = ImageCollection(image)
    full = PatchSampler(32, stride=10).compute_toplefts(coll)
    assert len(full) == 49 and full.max() + 32 <= 100
    inc = PatchSampler(32, stride=10, allow_incomplete_patches=True).compute_toplefts(coll)
    assert len(inc) == 100 and inc.max() == 90
    with pytest.raises(TamaleInputError, match="larger than the image"):
        PatchSampler(128).compute_chunks(coll)
    one = PatchSampler(128, allow_incomplete_patches=True)
    windows = list(one.iter_windows(coll))
    assert len(windows) == 1
    patch = coll.read(windows[0])
    assert (
        patch.shape == (128, 128)
        and patch[:100, :100].sum() == image.sum()
        and patch[100:].sum() == 0
    )


def test_spatial_axes_and_per_axis_parameters():
    vol = np.zeros((4, 32, 32), np.uint8)
    coll = ImageCollection(vol)
    slices = PatchSampler(16, spatial_axes="YX").compute_toplefts(coll)
    assert len(slices) == 4 * 4 and set(slices[:, 0].tolist()) == {0, 1, 2, 3}
    cubes = PatchSampler({"Z": 2, "Y": 16, "X": 8}).compute_toplefts(coll)
    assert len(cubes) == 2 * 2 * 4
    flat = ImageCollection(np.zeros((32, 32), np.uint8))
    assert len(PatchSampler(16).compute_toplefts(flat)) == 4  # int size, Z ignored
    with pytest.raises(TamaleInputError, match="gives axis Z"):
        PatchSampler((2, 16, 16)).compute_toplefts(flat)
    with pytest.raises(TamaleInputError, match="spatial_axes 'ZYX' has 3"):
        PatchSampler((16, 16))
    with pytest.raises(TamaleInputError, match="min_area"):
        PatchSampler(16, min_area=0)
    with pytest.raises(TamaleInputError, match="min_area"):
        PatchSampler(16, min_area=2.5)
    with pytest.raises(TamaleInputError, match="stride"):
        PatchSampler(16, stride=0)


def test_empty_masks_are_said_plainly():
    coll = ImageCollection(np.zeros((64, 64)), np.zeros((8, 8), bool))
    for sampler in (PatchSampler(16), BlueNoisePatchSampler(16, rng=0)):
        with pytest.raises(TamaleInputError, match="mask is empty"):
            sampler.compute_chunks(coll)
    tiny = np.zeros((8, 8), bool)
    tiny[0, 0] = True
    coll = ImageCollection(np.zeros((64, 64)), tiny)
    with pytest.raises(TamaleInputError, match="no patch"):
        PatchSampler(16, min_area=0.5).compute_chunks(coll)
    with pytest.raises(TamaleInputError, match="mask has 3 dimensions"):
        ImageCollection(np.zeros((64, 64)), np.ones((2, 8, 8), bool))


# ---------------------------------------------------------------- blue noise
@FEW
@given(masked_images(), st.booleans(), st.integers(0, 2**16), st.sampled_from([1, 0.5, 0.99]))
def test_blue_noise_distance_overlap_and_mask_rules(case, overlap, seed, min_area):
    shape, mask, ps = case
    axes = "ZYX"[-len(shape) :]
    sampler = BlueNoisePatchSampler(
        ps, allow_overlap=overlap, rng=seed, min_area=min_area, spatial_axes=axes
    )
    coll = ImageCollection(np.zeros(shape, np.uint8), mask)
    need = min_area if min_area >= 1 else min_area * math.prod(ps)
    try:
        pos = sampler.compute_sampling_positions(coll)
    except TamaleInputError as exc:
        assert "no patch" in str(exc)
        return
    assert len(pos) >= 1
    psa = np.asarray(ps)
    assert ((pos >= 0) & (pos + psa <= np.asarray(shape))).all()
    for p in pos:
        assert brute_coverage(mask, shape, p, ps) >= need - 1e-9
    delta = np.abs(pos[:, None, :] - pos[None, :, :]) / psa
    off = ~np.eye(len(pos), dtype=bool)
    if overlap:
        assert ((delta**2).sum(axis=2)[off] >= 1.0 - 1e-12).all()
    else:
        # no two patches overlap: some axis separates every pair by a whole patch
        assert (delta >= 1.0).any(axis=2)[off].all()
    again = BlueNoisePatchSampler(
        ps, allow_overlap=overlap, rng=seed, min_area=min_area, spatial_axes=axes
    )
    assert np.array_equal(again.compute_sampling_positions(coll), pos)


def test_blue_noise_covers_the_mask_and_buckets_into_chunks():
    mask = np.zeros((64, 64), bool)
    mask[:, :16] = True  # left quarter of a 256^2 image
    mask[40:, 40:] = True  # and a separate block: growth restarts from seeds there too
    image = zarr.create_array(store={}, shape=(256, 256), chunks=(64, 64), dtype="uint8")
    coll = ImageCollection(image, mask)
    sampler = BlueNoisePatchSampler(16, rng=np.random.default_rng(0), min_area=256)
    pos = sampler.compute_sampling_positions(coll)
    assert (pos[:, 1] < 64).any() and ((pos[:, 0] >= 160) & (pos[:, 1] >= 160)).any()
    # maximal up to the 8-px seed lattice: every valid lattice point is blocked by a patch
    lattice = [(y, x) for y in range(0, 241, 8) for x in range(0, 241, 8)]
    valid = [p for p in lattice if brute_coverage(mask, (256, 256), p, (16, 16)) >= 256]
    for p in valid:
        assert (np.abs(pos - np.asarray(p)) < 16).all(axis=1).any()
    windows = [w for c in sampler.compute_chunks(coll) for w in sampler.compute_patches(coll, c)]
    assert sorted((w["Y"].start, w["X"].start) for w in windows) == sorted(map(tuple, pos.tolist()))
    # positions are kept per image unless resampling is asked for
    assert np.array_equal(sampler.compute_sampling_positions(coll), pos)
    resampling = BlueNoisePatchSampler(16, resample_positions=True, rng=1, min_area=256)
    first = resampling.compute_sampling_positions(coll).copy()
    resampling.compute_chunks(coll)
    assert not np.array_equal(resampling.compute_sampling_positions(coll), first)


def test_blue_noise_bad_inputs():
    with pytest.raises(TamaleInputError, match="no stride"):
        BlueNoisePatchSampler(16, stride=8)
    coll = ImageCollection(np.zeros((10, 64)))
    with pytest.raises(TamaleInputError, match="larger than the image"):
        BlueNoisePatchSampler(16, rng=0).compute_sampling_positions(coll)
    one = BlueNoisePatchSampler(16, rng=0, allow_incomplete_patches=True, spatial_axes="YX")
    pos = one.compute_sampling_positions(coll)
    assert (pos[:, 0] == 0).all() and len(pos) >= 3


def test_chunks_follow_zarr_shards_and_round_up_to_the_stride():
    sharded = zarr.create_array(
        store={}, shape=(96, 96), chunks=(8, 8), shards=(32, 32), dtype="uint8"
    )
    coll = ImageCollection(sharded)
    assert coll.chunks == {"Y": 32, "X": 32}
    chunks = PatchSampler(24, stride=12).compute_chunks(coll)
    assert {(c["Y"].start, c["Y"].stop) for c in chunks} == {(0, 36), (36, 72), (72, 96)}
