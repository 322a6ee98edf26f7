"""The bad-input catalogue of the patching engine: every case raises TamaleInputError
with a message that says what is wrong and what to do."""

from __future__ import annotations

import numpy as np
import pytest

from tamale.errors import TamaleInputError
from tamale.patching import (
    ArrayImageStack,
    BasicPatchConstr,
    BlueNoisePatchSampler,
    ImageCollection,
    PatchExtractor,
    PatchSampler,
    RandomPatching,
    SequentialPatching,
    StratifiedPatching,
    TiledPatching,
)


def strat():
    return StratifiedPatching([(1, 1, 64, 64)], (16, 16), seed=0)


CASES = {
    # patch larger than the image: a clear error ...
    "stratified patch too large": (
        lambda: StratifiedPatching([(1, 1, 8, 64)], (16, 16)),
        "larger than image stack 0.*allow_incomplete_patches=True",
    ),
    "random patch too large": (
        lambda: RandomPatching([(1, 1, 64, 8)], (16, 16)),
        "larger than image stack 0",
    ),
    "sequential patch too large": (
        lambda: SequentialPatching([(1, 1, 64, 8)], (16, 16)),
        "larger than image stack 0",
    ),
    "sampler patch too large": (
        lambda: PatchSampler(128).compute_chunks(ImageCollection(np.zeros((100, 100)))),
        "larger than the image.*allow_incomplete_patches=True",
    ),
    "blue noise patch too large": (
        lambda: BlueNoisePatchSampler(128, rng=0).compute_chunks(
            ImageCollection(np.zeros((100, 100)))
        ),
        "larger than the image",
    ),
    # mismatched spatial dims
    "extractor mixes 2D and 3D": (
        lambda: PatchExtractor(
            [ArrayImageStack(np.zeros((8, 8))), ArrayImageStack(np.zeros((2, 8, 8)))]
        ),
        "spatial axes",
    ),
    "strategy and extractor disagree": (
        lambda: BasicPatchConstr(strat(), PatchExtractor([ArrayImageStack(np.zeros((64, 60)))])),
        "spatial sizes must agree",
    ),
    "mask dims differ from image": (
        lambda: ImageCollection(np.zeros((64, 64)), np.ones((4, 4, 4), bool)),
        "mask has 3 dimensions",
    ),
    # 2D patch sizes with 3D data and vice versa
    "2D patch with 3D data": (
        lambda: StratifiedPatching([(1, 1, 8, 64, 64)], (16, 16)),
        "3 spatial axes but the patch size is 2D",
    ),
    "3D patch with 2D data": (
        lambda: TiledPatching([(1, 1, 64, 64)], (4, 16, 16), 0),
        "2 spatial axes but the patch size is 3D",
    ),
    "3D sampler patch on a 2D image": (
        lambda: PatchSampler((2, 16, 16)).compute_toplefts(ImageCollection(np.zeros((64, 64)))),
        "gives axis Z",
    ),
    "2D sampler patch with 3 spatial axes": (
        lambda: PatchSampler((16, 16)),
        "spatial_axes 'ZYX' has 3",
    ),
    # excluded coordinates off the grid or out of range
    "excluded cell out of range": (
        lambda: strat().exclude_patches(0, 0, [(4, 0)]),
        "outside the cell grid",
    ),
    "excluded cell negative": (
        lambda: strat().exclude_patches(0, 0, [(0, -1)]),
        "outside the cell grid",
    ),
    "excluded cell not on the grid": (
        lambda: strat().exclude_patches(0, 0, [(0.5, 1)]),
        "grid indices, not pixels",
    ),
    "excluded cell of wrong dimension": (
        lambda: strat().exclude_patches(0, 0, [(1,)]),
        "must be 2 ints",
    ),
    "excluded cell of a missing sample": (
        lambda: strat().exclude_patches(0, 1, [(0, 0)]),
        "sample_idx 1",
    ),
    # probabilities outside [0, 1]
    "region probability above 1": (
        lambda: strat().set_region_probs(0, 0, {(0, 0): 1.01}),
        r"\[0, 1\]",
    ),
    "region probability below 0": (
        lambda: strat().set_region_probs(0, 0, np.full((4, 4), -0.5)),
        r"\[0, 1\]",
    ),
    # index >= n_patches
    "index past the end": (lambda: strat().get_patch_spec(16), "out of range.*16 patches"),
    "batch index past the end": (lambda: strat().get_patch_specs(np.arange(17)), "out of range"),
    # empty masks: no patches, said plainly
    "empty mask": (
        lambda: PatchSampler(16).compute_chunks(
            ImageCollection(np.zeros((64, 64)), np.zeros((4, 4), bool))
        ),
        "mask is empty",
    ),
    "mask too small for min_area": (
        lambda: PatchSampler(16, min_area=256).compute_chunks(
            ImageCollection(np.zeros((64, 64)), np.eye(64, dtype=bool))
        ),
        "no patch",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_raises_an_actionable_error(name):
    call, pattern = CASES[name]
    with pytest.raises(TamaleInputError, match=pattern):
        call()


def test_a_padded_patch_when_asked():
    s = StratifiedPatching([(1, 1, 8, 64)], (16, 16), seed=0, allow_incomplete_patches=True)
    assert {s.get_patch_spec(i).coords[0] for i in range(s.n_patches)} == {0}
    windows = list(
        PatchSampler(128, allow_incomplete_patches=True).iter_windows(
            ImageCollection(np.zeros((100, 100)))
        )
    )
    assert len(windows) == 1


def test_bad_input_leaves_the_strategy_unchanged():
    s = strat()
    before = [s.get_patch_spec(i) for i in range(s.n_patches)]
    for bad in ([(0, 0), (9, 9)], [(0, 0), (1.5, 0)]):
        with pytest.raises(TamaleInputError):
            s.exclude_patches(0, 0, bad)
    with pytest.raises(TamaleInputError):
        s.set_region_probs(0, 0, {(0, 0): 0.5, (1, 1): 2.0})
    assert [s.get_patch_spec(i) for i in range(s.n_patches)] == before
