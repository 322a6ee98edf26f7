"""StratifiedPatching: exact layout, expectations, exclusion, determinism, speed-critical paths."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from _patching_helpers import FAST, FEW, all_cells, brute_allowed_starts, shapes_and_patch
from hypothesis import given
from hypothesis import strategies as st

from tamale.errors import TamaleInputError
from tamale.patching import PatchIndexError, StratifiedPatching, grid_cells_overlapping


def region_areas(strategy, data_idx=0, sample_idx=0):
    """Number of selectable starts per region, from the exact expectation."""
    e = strategy.expected_start_counts(data_idx, sample_idx) > 0
    rg = strategy.region_grid_shape(data_idx)
    ps = strategy.patch_size
    out = np.zeros(rg, dtype=int)
    for idx in zip(*np.nonzero(e)):
        out[tuple(i // p for i, p in zip(idx, ps))] += 1
    return out


def test_region_areas_of_a_64_image_with_16_patches():
    s = StratifiedPatching([(1, 1, 64, 64)], (16, 16), seed=0)
    # regions hold the starts [g*16, g*16 + 16) ∩ [0, 48]: the last row/column is thin
    assert region_areas(s).tolist() == [
        [256, 256, 256, 16],
        [256, 256, 256, 16],
        [256, 256, 256, 16],
        [16, 16, 16, 1],
    ]
    assert s.n_patches == 16
    assert s.get_all_grid_coords()[(0, 0)] == all_cells((4, 4))


def test_patch_count_follows_the_formula():
    # 2 samples of 256^2 (16 each) + ceil(300 * 200 / 4096 = 14.65) = 47
    s = StratifiedPatching([(2, 3, 256, 256), (1, 3, 300, 200)], (64, 64), seed=1)
    assert s.n_patches == 47
    assert list(s.get_patch_indices(0)) == list(range(32))
    assert list(s.get_patch_indices(1)) == list(range(32, 47))
    # exclusion removes one patch per newly excluded cell (repeats do not count)
    s.exclude_patches(1, 0, [(0, 0), (1, 1)])
    s.exclude_patches(1, 0, [(1, 1)])
    assert s.n_patches == 45
    # probabilities remove (1 - p) per region, but not again for an excluded cell
    s.set_region_probs(0, 1, {(0, 0): 0.5, (1, 2): 0.25})
    assert s.n_patches == 45 - math.floor(0.5 + 0.75)
    s.set_region_probs(1, 0, {(1, 1): 0.0})
    assert s.n_patches == 44


def test_included_grid_coords_drop_excluded_cells_in_raster_order():
    s = StratifiedPatching([(1, 1, 48, 48)], (16, 16), seed=0)
    s.exclude_patches(0, 0, [(2, 0), (0, 1)])
    assert s.get_included_grid_coords()[(0, 0)] == [
        (0, 0), (0, 2), (1, 0), (1, 1), (1, 2), (2, 1), (2, 2),
    ]  # fmt: skip


@FAST
@given(shapes_and_patch(), st.integers(0, 2**31), st.data())
def test_expectation_is_uniform_over_allowed_starts_and_exclusion_is_exact(sp, seed, data):
    shape, ps = sp
    s = StratifiedPatching([(1, 1, *shape)], ps, seed=seed)
    cells = all_cells(s.cell_grid_shape(0))
    excluded = data.draw(st.lists(st.sampled_from(cells), max_size=len(cells)))
    s.exclude_patches(0, 0, excluded)
    expected = s.expected_start_counts(0, 0)
    allowed = brute_allowed_starts(shape, ps, excluded)
    assert np.array_equal(expected > 0, allowed)
    if allowed.any():
        n = s.n_patches
        assert np.allclose(expected[allowed], n / allowed.sum())
        assert math.isclose(expected.sum(), n)
        assert n == max(1, math.ceil(math.prod(shape) / math.prod(ps) - len(set(excluded)) - 1e-9))
    else:
        assert s.n_patches == 0


@FAST
@given(shapes_and_patch(max_cells=4), st.integers(0, 2**31), st.data())
def test_sampled_patches_never_touch_excluded_cells(sp, seed, data):
    shape, ps = sp
    s = StratifiedPatching([(1, 1, *shape)], ps, seed=seed)
    cells = all_cells(s.cell_grid_shape(0))
    excluded = data.draw(st.lists(st.sampled_from(cells), max_size=max(1, len(cells) // 3)))
    s.exclude_patches(0, 0, excluded)
    allowed = brute_allowed_starts(shape, ps, excluded)
    for epoch in range(4):
        s.set_epoch(epoch)
        coords = s.get_patch_specs(np.arange(s.n_patches)).coords
        assert allowed[tuple(coords.T)].all()


def test_mean_coverage_is_exactly_one_when_the_image_is_a_multiple_of_the_patch():
    s = StratifiedPatching([(1, 1, 64, 80)], (16, 16), seed=3)
    cov = s.expected_coverage(0, 0)
    assert cov.shape == (64, 80)
    assert math.isclose(cov.mean(), 1.0)
    s3 = StratifiedPatching([(2, 1, 12, 18, 24)], (3, 6, 4), seed=3)
    assert math.isclose(s3.expected_coverage(0, 1).mean(), 1.0)


@FAST
@given(shapes_and_patch(), st.integers(0, 2**31))
def test_mean_coverage_equals_n_patch_area_over_image_area(sp, seed):
    shape, ps = sp
    s = StratifiedPatching([(1, 1, *shape)], ps, seed=seed)
    cov = s.expected_coverage(0, 0)
    assert math.isclose(cov.mean(), s.n_patches * math.prod(ps) / math.prod(shape))
    assert 1.0 - 1e-9 <= cov.mean() < 1.0 + math.prod(ps) / math.prod(shape) + 1e-9


def test_sampled_coverage_matches_the_expectation():
    s = StratifiedPatching([(1, 1, 64, 80)], (16, 16), seed=7)
    counts = np.zeros((64 - 16 + 1, 80 - 16 + 1))
    epochs = 3000
    idx = np.arange(s.n_patches)
    for epoch in range(epochs):
        s.set_epoch(epoch)
        c = s.get_patch_specs(idx).coords
        np.add.at(counts, (c[:, 0], c[:, 1]), 1)
    expected = s.expected_start_counts(0, 0) * epochs
    # per region (16x16 starts) the counts are sums of many draws: compare within 5 sigma
    for gy in range(4):
        for gx in range(5):
            sl = (slice(gy * 16, gy * 16 + 16), slice(gx * 16, gx * 16 + 16))
            obs, exp = counts[sl].sum(), expected[sl].sum()
            assert abs(obs - exp) <= 5 * math.sqrt(exp) + 1, (gy, gx, obs, exp)
    assert counts.sum() == epochs * s.n_patches


def test_stratification_spreads_every_epoch_better_than_uniform_sampling():
    s = StratifiedPatching([(1, 1, 128, 128)], (16, 16), seed=0)
    uncovered = []
    for epoch in range(20):
        s.set_epoch(epoch)
        cov = np.zeros((128, 128), dtype=int)
        for y, x in s.get_patch_specs(np.arange(s.n_patches)).coords:
            cov[y : y + 16, x : x + 16] += 1
        uncovered.append((cov[16:-16, 16:-16] == 0).mean())
    # uniform random starts leave about exp(-n*256/113^2) ~ 27% of the interior uncovered
    assert np.mean(uncovered) < 0.22


@FAST
@given(shapes_and_patch(), st.integers(0, 2**31), st.integers(0, 5), st.data())
def test_scalar_and_batch_lookups_agree_and_stay_in_bounds(sp, seed, epoch, data):
    shape, ps = sp
    s = StratifiedPatching([(2, 1, *shape)], ps, seed=seed)
    cells = all_cells(s.cell_grid_shape(0))
    s.exclude_patches(0, 1, data.draw(st.lists(st.sampled_from(cells), max_size=3)))
    rg = s.region_grid_shape(0)
    probs = {
        c: data.draw(st.floats(0, 1))
        for c in data.draw(st.lists(st.sampled_from(all_cells(rg)), max_size=3))
    }
    s.set_region_probs(0, 0, probs)
    s.set_epoch(epoch)
    batch = s.get_patch_specs(np.arange(s.n_patches))
    for i in range(s.n_patches):
        spec = s.get_patch_spec(i)
        assert spec == batch[i]
        assert all(0 <= c <= n - p for c, n, p in zip(spec.coords, shape, ps))
        assert spec.patch_size == ps


def test_same_index_same_patch_in_any_order_copy_and_pickle_and_new_patch_per_epoch():
    s = StratifiedPatching([(3, 1, 100, 90)], (16, 16), seed=42)
    order = np.random.default_rng(0).permutation(s.n_patches)
    forward = [s.get_patch_spec(i) for i in range(s.n_patches)]
    shuffled = {int(i): s.get_patch_spec(int(i)) for i in order}
    assert forward == [shuffled[i] for i in range(s.n_patches)]
    clone = pickle.loads(pickle.dumps(s))
    assert [clone.get_patch_spec(i) for i in range(s.n_patches)] == forward
    same_seed = StratifiedPatching([(3, 1, 100, 90)], (16, 16), seed=42)
    assert same_seed.get_patch_spec(17) == forward[17]
    s.set_epoch(1)
    changed = sum(s.get_patch_spec(i) != forward[i] for i in range(s.n_patches))
    assert changed > 0.9 * s.n_patches
    s.set_epoch(0)
    assert s.get_patch_spec(5) == forward[5]
    # an index stays in its neighbourhood across epochs (stratification)
    ys = StratifiedPatching([(1, 1, 512, 512)], (32, 32), seed=1)
    spots = []
    for e in range(10):
        ys.set_epoch(e)
        spots.append(ys.get_patch_spec(100).coords)
    spread = np.ptp(np.array(spots), axis=0)
    assert (spread < 3 * 32).all()


def test_unseeded_strategies_draw_a_seed_and_keep_it():
    a = StratifiedPatching([(1, 1, 64, 64)], (16, 16))
    assert isinstance(a.seed, int)
    assert pickle.loads(pickle.dumps(a)).get_patch_spec(3) == a.get_patch_spec(3)


def test_region_probabilities_scale_the_expectation():
    s = StratifiedPatching([(1, 1, 64, 64)], (16, 16), seed=0)
    s.set_region_probs(0, 0, np.full((4, 4), 0.1))
    cov = s.expected_coverage(0, 0)
    assert s.n_patches == math.ceil(16 - 16 * 0.9 - 1e-9)
    assert math.isclose(cov.mean(), s.n_patches * 256 / 64**2)
    s2 = StratifiedPatching([(1, 1, 64, 64)], (16, 16), seed=0)
    s2.set_region_probs(0, 0, {(0, 0): 0.5})
    e = s2.expected_start_counts(0, 0)
    assert math.isclose(e[0, 0], 0.5 * e[20, 20])


def test_three_d_and_anisotropic_patches():
    s = StratifiedPatching([(1, 1, 20, 37, 41)], (4, 8, 5), seed=9)
    cells = [(0, 0, 0), (2, 3, 4), (4, 4, 8)]
    s.exclude_patches(0, 0, cells)
    allowed = brute_allowed_starts((20, 37, 41), (4, 8, 5), cells)
    coords = s.get_patch_specs(np.arange(s.n_patches)).coords
    assert allowed[tuple(coords.T)].all()
    assert np.array_equal(s.expected_start_counts(0, 0) > 0, allowed)


def test_small_images_raise_or_give_one_padded_patch():
    with pytest.raises(TamaleInputError, match="larger than image stack 0"):
        StratifiedPatching([(1, 1, 10, 100)], (16, 16))
    s = StratifiedPatching([(1, 1, 10, 100)], (16, 16), seed=0, allow_incomplete_patches=True)
    coords = s.get_patch_specs(np.arange(s.n_patches)).coords
    assert (coords[:, 0] == 0).all() and coords[:, 1].max() <= 84


def test_grid_cells_overlapping_converts_pixel_boxes():
    assert grid_cells_overlapping((10, 30), (20, 2), (16, 16)) == [(0, 1), (1, 1)]
    assert grid_cells_overlapping((16, 16), (16, 16), (16, 16)) == [(1, 1)]
    s = StratifiedPatching([(1, 1, 64, 64)], (16, 16), seed=0)
    stored = ((10, 30), (20, 20))
    s.exclude_patches(0, 0, grid_cells_overlapping(*stored, (16, 16)))
    for y, x in s.get_patch_specs(np.arange(s.n_patches)).coords:
        assert y + 16 <= 10 or y >= 30 or x + 16 <= 30 or x >= 50


@FEW
@given(st.integers(-3, 3), st.integers(0, 5))
def test_bad_grid_coordinates_are_refused(dy, dx):
    s = StratifiedPatching([(1, 1, 64, 70)], (16, 16), seed=0)  # cell grid 4 x 5
    y, x = 4 + abs(dy), 5 + dx
    with pytest.raises(TamaleInputError, match="outside the cell grid"):
        s.exclude_patches(0, 0, [(y, x)])
    with pytest.raises(TamaleInputError, match="outside the cell grid"):
        s.exclude_patches(0, 0, [(-1 - abs(dy), 0)])
    assert s.n_patches == 18  # nothing changed


def test_bad_inputs_name_the_problem():
    s = StratifiedPatching([(2, 1, 64, 64)], (16, 16), seed=0)
    with pytest.raises(TamaleInputError, match="must be 2 ints"):
        s.exclude_patches(0, 0, [(1, 1, 1)])
    with pytest.raises(TamaleInputError, match="grid indices, not pixels"):
        s.exclude_patches(0, 0, [(1.5, 1)])
    with pytest.raises(TamaleInputError, match="data_idx 3"):
        s.exclude_patches(3, 0, [(0, 0)])
    with pytest.raises(TamaleInputError, match="sample_idx 2"):
        s.exclude_patches(0, 2, [(0, 0)])
    with pytest.raises(TamaleInputError, match=r"in \[0, 1\]"):
        s.set_region_probs(0, 0, {(0, 0): 1.5})
    with pytest.raises(TamaleInputError, match=r"in \[0, 1\]"):
        s.set_region_probs(0, 0, {(0, 0): -0.1})
    with pytest.raises(TamaleInputError, match="outside the region grid"):
        s.set_region_probs(0, 0, {(4, 0): 0.5})
    with pytest.raises(TamaleInputError, match="shape"):
        s.set_region_probs(0, 0, np.ones((3, 3)))
    with pytest.raises(PatchIndexError, match="out of range"):
        s.get_patch_spec(s.n_patches)
    with pytest.raises(IndexError):
        s.get_patch_spec(-1)
    with pytest.raises(PatchIndexError):
        s.get_patch_specs([0, s.n_patches])
    with pytest.raises(TamaleInputError, match="3 spatial axes but the patch size is 2D"):
        StratifiedPatching([(1, 1, 8, 64, 64)], (16, 16))
    with pytest.raises(TamaleInputError, match="2 spatial axes but the patch size is 3D"):
        StratifiedPatching([(1, 1, 64, 64)], (4, 16, 16))
    with pytest.raises(TamaleInputError, match="single number"):
        StratifiedPatching([(1, 1, 64, 64)], 16)
    with pytest.raises(TamaleInputError, match="seed"):
        StratifiedPatching([(1, 1, 64, 64)], (16, 16), seed=-1)
    with pytest.raises(TamaleInputError, match="epoch"):
        s.set_epoch(-2)
