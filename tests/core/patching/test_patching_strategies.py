"""Random, sequential, tiled, whole-sample and fixed strategies; the shared protocol."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from _patching_helpers import FAST, shapes_and_patch
from hypothesis import given
from hypothesis import strategies as st

from tamale.errors import TamaleInputError
from tamale.patching import (
    FixedPatching,
    Patching,
    PatchSpecs,
    RandomPatching,
    SequentialPatching,
    StratifiedPatching,
    TiledPatching,
    TileSpecs,
    WholeSamplePatching,
    stitch_tiles,
)
from tamale.patching.tiled import tile_layout

SHAPES = [(2, 1, 32, 32), (1, 1, 19, 37), (3, 1, 14, 9)]


def every_strategy(shapes, ps):
    return [
        StratifiedPatching(shapes, ps, seed=1),
        RandomPatching(shapes, ps, seed=1),
        SequentialPatching(shapes, ps, overlaps=tuple(p // 2 for p in ps)),
        TiledPatching(shapes, ps, overlaps=tuple(p // 2 for p in ps)),
        WholeSamplePatching(shapes),
    ]


@pytest.mark.parametrize("shapes, ps", [(SHAPES, (8, 5)), ([(2, 1, 9, 32, 17)], (8, 5, 7))])
def test_every_strategy_keeps_the_protocol(shapes, ps):
    for strategy in every_strategy(shapes, ps):
        assert isinstance(strategy, Patching)
        n = strategy.n_patches
        indices = [list(strategy.get_patch_indices(d)) for d in range(len(shapes))]
        assert [i for idx in indices for i in idx] == list(
            range(n)
        )  # contiguous partition, in stack order
        batch = strategy.get_patch_specs(np.arange(n))
        last = (-1, -1)
        for d, idx in enumerate(indices):
            for i in idx:
                spec = strategy.get_patch_spec(i)
                assert spec == batch[i]
                assert spec.data_idx == d and 0 <= spec.sample_idx < shapes[d][0]
                assert (spec.data_idx, spec.sample_idx) >= last
                last = (spec.data_idx, spec.sample_idx)
                spatial = shapes[d][2:]
                for c, p, s in zip(spec.coords, spec.patch_size, spatial):
                    assert c >= 0 and (c + p <= s or (c == 0 and s < p))


def test_random_patching_counts_and_range():
    s = RandomPatching([(2, 1, 64, 40), (1, 1, 33, 17)], (16, 16), seed=0)
    assert s.n_patches == 2 * 4 * 3 + 3 * 2
    coords = s.get_patch_specs(np.arange(s.n_patches)).coords
    many = []
    for e in range(200):
        s.set_epoch(e)
        many.append(s.get_patch_specs(np.arange(8)).coords)
    many = np.concatenate(many)
    assert many[:, 0].min() == 0 and many[:, 0].max() == 48
    assert many[:, 1].min() == 0 and many[:, 1].max() == 24
    assert coords.shape == (30, 2)


def test_random_patching_is_deterministic_per_index_and_changes_per_epoch():
    s = RandomPatching([(1, 1, 500, 500)], (16, 16), seed=3)
    a = [s.get_patch_spec(i) for i in range(50)]
    b = [s.get_patch_spec(i) for i in reversed(range(50))][::-1]
    assert a == b == [pickle.loads(pickle.dumps(s)).get_patch_spec(i) for i in range(50)]
    s.set_epoch(4)
    assert sum(x != s.get_patch_spec(i) for i, x in enumerate(a)) >= 45


def test_sequential_patching_grid_with_overlap():
    s = SequentialPatching([(1, 1, 20, 11)], (8, 4), overlaps=(2, 1))
    coords = s.get_patch_specs(np.arange(s.n_patches)).coords
    ys = sorted(set(coords[:, 0].tolist()))
    xs = sorted(set(coords[:, 1].tolist()))
    assert ys == [0, 6, 12] and xs == [0, 3, 6, 7]
    assert s.n_patches == 12
    cover = np.zeros((20, 11), int)
    for y, x in coords:
        cover[y : y + 8, x : x + 4] += 1
    assert (cover > 0).all()


def test_tile_layout_matches_the_reference_examples():
    lay = tile_layout(19, 8, 2)
    assert lay["starts"].tolist() == [0, 6, 11]
    assert lay["stitch_coords"].tolist() == [0, 7, 13]
    assert lay["crop_coords"].tolist() == [0, 1, 2]
    assert lay["crop_size"].tolist() == [7, 6, 6]
    lay = tile_layout(32, 8, 2)
    assert lay["starts"].tolist() == [0, 6, 12, 18, 24]
    assert lay["crop_size"].tolist() == [7, 6, 6, 6, 7]
    lay = tile_layout(5, 8, 2)
    assert lay["starts"].tolist() == [0] and lay["crop_size"].tolist() == [5]


@FAST
@given(st.integers(1, 80), st.integers(1, 16), st.data())
def test_tile_crops_partition_every_axis(size, tile, data):
    overlap = data.draw(st.integers(0, tile - 1))
    lay = tile_layout(size, tile, overlap)
    covered = np.zeros(size, int)
    for start, c0, cs, stitch in zip(
        *(lay[k] for k in ("starts", "crop_coords", "crop_size", "stitch_coords"))
    ):
        assert stitch == start + c0 and 0 <= c0 and c0 + cs <= tile and cs >= 1
        assert start >= 0 and (start + tile <= size or size <= tile)
        covered[stitch : stitch + cs] += 1
    assert (covered == 1).all()
    assert (np.diff(lay["starts"]) > 0).all()


@FAST
@given(shapes_and_patch(max_cells=4), st.integers(1, 3), st.data())
def test_tiles_stitch_back_bit_exactly(sp, n_samples, data):
    shape, ps = sp
    overlaps = tuple(data.draw(st.integers(0, p - 1)) for p in ps)
    rng = np.random.default_rng(0)
    image = rng.random((n_samples, 2, *shape)).astype(np.float32)
    tiles = TiledPatching([(n_samples, 2, *shape)], ps, overlaps)
    specs = [tiles.get_patch_spec(i) for i in range(tiles.n_patches)]
    assert all(isinstance(s, TileSpecs) for s in specs)
    assert specs[0].total_tiles == tiles.n_patches
    patches = [image[(s.sample_idx, slice(None), *s.slices())] for s in specs]
    out = stitch_tiles(patches, specs, data_shape=image.shape)
    assert out.dtype == np.float32 and np.array_equal(out, image)


def test_tiles_larger_than_the_image_give_one_padded_tile_and_stitch_into_zarr():
    import zarr

    image = np.arange(5 * 7, dtype=np.float32).reshape(1, 1, 5, 7)
    tiles = TiledPatching([image.shape], (8, 8), 2)
    assert tiles.n_patches == 1
    spec = tiles.get_patch_spec(0)
    assert spec.crop_size == (5, 7)
    padded = np.zeros((1, 8, 8), np.float32)
    padded[0, :5, :7] = image[0, 0]
    out = zarr.create_array(store={}, shape=image.shape, dtype="float32")
    stitch_tiles([padded], [spec], out=out)
    assert np.array_equal(out[...], image)


def test_stitch_tiles_refuses_mixed_stacks_and_plain_specs():
    t = TiledPatching([(1, 1, 16, 16), (1, 1, 16, 16)], (8, 8), 2)
    specs = [t.get_patch_spec(0), t.get_patch_spec(t.n_patches - 1)]
    with pytest.raises(TamaleInputError, match="one image stack at a time"):
        stitch_tiles([np.zeros((1, 8, 8))] * 2, specs, data_shape=(1, 1, 16, 16))
    with pytest.raises(TamaleInputError, match="TileSpecs"):
        stitch_tiles(
            [np.zeros((1, 8, 8))], [PatchSpecs(0, 0, (0, 0), (8, 8))], data_shape=(1, 1, 16, 16)
        )


def test_whole_sample_and_fixed_patching():
    w = WholeSamplePatching([(2, 1, 10, 12)])
    assert w.n_patches == 2
    assert w.get_patch_spec(1) == PatchSpecs(0, 1, (0, 0), (10, 12))
    specs = [PatchSpecs(1, 0, (3, 4), (8, 8)), PatchSpecs(0, 1, (0, 0), (8, 8))]
    f = FixedPatching([(2, 1, 32, 32), (1, 1, 32, 32)], specs)
    assert f.n_patches == 2 and f.get_patch_spec(0) == specs[0]
    assert f.get_patch_indices(0) == [1] and f.get_patch_specs([1, 0]).to_list() == specs[::-1]
    f.set_epoch(3)
    assert f.get_patch_spec(1) == specs[1]
    with pytest.raises(TamaleInputError, match="sample 2"):
        FixedPatching([(2, 1, 32, 32)], [PatchSpecs(0, 2, (0, 0), (8, 8))])


def test_bad_inputs_of_the_other_strategies():
    with pytest.raises(TamaleInputError, match="larger than image stack 1"):
        RandomPatching([(1, 1, 64, 64), (1, 1, 8, 64)], (16, 16))
    r = RandomPatching([(1, 1, 8, 64)], (16, 16), seed=0, allow_incomplete_patches=True)
    assert all(r.get_patch_spec(i).coords[0] == 0 for i in range(r.n_patches))
    with pytest.raises(TamaleInputError, match="smaller than the patch size"):
        SequentialPatching([(1, 1, 64, 64)], (16, 16), overlaps=16)
    with pytest.raises(TamaleInputError, match="smaller than the patch size"):
        TiledPatching([(1, 1, 64, 64)], (16, 16), overlaps=(-1, 2))
    with pytest.raises(TamaleInputError, match="3 spatial axes but the patch size is 2D"):
        TiledPatching([(1, 1, 4, 64, 64)], (16, 16), 0)
    with pytest.raises(TamaleInputError, match="data_idx 2"):
        RandomPatching([(1, 1, 64, 64)], (16, 16)).get_patch_indices(2)
    with pytest.raises(IndexError):
        WholeSamplePatching([(1, 1, 4, 4)]).get_patch_spec(1)
    with pytest.raises(TamaleInputError, match="empty"):
        RandomPatching([], (16, 16))
