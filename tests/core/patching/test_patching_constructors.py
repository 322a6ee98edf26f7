"""Lateral context and the five patch constructors."""

from __future__ import annotations

import numpy as np
import pytest
from _patching_helpers import FAST
from hypothesis import given
from hypothesis import strategies as st

from tamale.errors import TamaleInputError
from tamale.patching import (
    ArrayImageStack,
    BasicPatchConstr,
    IndependentTargetsMsPatchConstr,
    MultiChannelTargetMsPatchConstr,
    PairedInputTargetMsPatchConstr,
    PatchExtractor,
    PatchSpecs,
    PredMsPatchConstr,
    StratifiedPatching,
    TiledPatching,
    TileSpecs,
    UncorrelatedPatchSpecs,
    extract_lateral_context,
)

CONSTANTS = np.array([1.0, 5.0, 10.0], dtype=np.float32)


def constant_channels(shape):
    """S, 3, Y, X with channel c equal to CONSTANTS[c] everywhere."""
    return np.broadcast_to(CONSTANTS[None, :, None, None], (shape[0], 3, *shape)).copy()


@pytest.fixture
def data():
    targets = [np.ones((2, 3, 256, 256), np.float32), np.ones((1, 3, 300, 200), np.float32)]
    for t in targets:
        t *= CONSTANTS[None, :, None, None]
    tgt = PatchExtractor([ArrayImageStack(t, "SCYX") for t in targets])
    inp = PatchExtractor(
        [
            ArrayImageStack(np.full((2, 1, 256, 256), 7, np.uint8), "SCYX"),
            ArrayImageStack(np.full((1, 1, 300, 200), 7, np.uint8), "SCYX"),
        ]
    )
    return tgt, inp, StratifiedPatching(tgt.shapes, (64, 64), seed=1)


class CountingStack(ArrayImageStack):
    """Records how many pixels were read."""

    read = 0

    def read_box(self, sample_idx, channels, start, stop):
        block = super().read_box(sample_idx, channels, start, stop)
        self.read += block[0].size
        return block


# ---------------------------------------------------------------- lateral context
@FAST
@given(
    st.tuples(st.integers(8, 40), st.integers(8, 40)),
    st.tuples(st.sampled_from([2, 4, 6]), st.sampled_from([2, 4, 8])),
    st.integers(1, 4),
    st.sampled_from(["reflect", "wrap"]),
    st.data(),
)
def test_lateral_context_equals_true_image_padding(shape, ps, scales, mode, data):
    ps = tuple(min(p, s) for p, s in zip(ps, shape))
    coords = tuple(data.draw(st.integers(0, s - p)) for s, p in zip(shape, ps))
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    stack = CountingStack(image)
    lc = extract_lateral_context(stack, 0, None, coords, ps, scales, mode)
    assert lc.shape == (1, scales, *ps) and lc.dtype == np.float32
    # scale 0 is the plain patch
    assert np.array_equal(lc[0, 0], stack.extract_patch(0, None, coords, ps)[0])
    # scale k: the 2^k-larger centred window of the padded image, block-averaged
    big = 2 ** (scales - 1) * max(ps) + max(shape)
    padded = np.pad(image, big, mode=mode)
    for k in range(scales):
        f = 2**k
        lo = [big + c + p // 2 - (p * f) // 2 for c, p in zip(coords, ps)]
        win = padded[lo[0] : lo[0] + ps[0] * f, lo[1] : lo[1] + ps[1] * f]
        ref = win.reshape(ps[0], f, ps[1], f).mean(axis=(1, 3), dtype=np.float32)
        np.testing.assert_allclose(lc[0, k], ref, rtol=1e-6, atol=1e-6)
    # the read is no larger than the largest window, clipped to the image
    stack.read = 0
    extract_lateral_context(stack, 0, None, coords, ps, scales, mode)
    largest = [min(p * 2 ** (scales - 1), s) for p, s in zip(ps, shape)]
    assert stack.read <= np.prod(largest)


def test_lateral_context_3d_resize_mode_and_constant_images():
    vol = np.full((16, 32, 32), 3.0, np.float32)
    lc = extract_lateral_context(ArrayImageStack(vol), 0, None, (4, 8, 8), (4, 8, 8), 3, "reflect")
    assert lc.shape == (1, 3, 4, 8, 8) and np.allclose(lc, 3.0)
    img = np.random.default_rng(1).random((64, 64)).astype(np.float32)
    a = extract_lateral_context(
        ArrayImageStack(img), 0, None, (20, 20), (16, 16), 2, "reflect", "resize"
    )
    assert np.array_equal(a[0, 0], img[20:36, 20:36])
    assert a.dtype == np.float32 and not np.allclose(a[0, 1], a[0, 0])


def test_lateral_context_read_is_small_in_the_interior():
    stack = CountingStack(np.zeros((1024, 1024), np.float32))
    extract_lateral_context(stack, 0, None, (448, 448), (64, 64), 3, "reflect")
    assert stack.read == 256 * 256  # CAREamics reads 512 x 512 here


# ---------------------------------------------------------------- constructors
def test_basic_constructor_inputs_targets_and_channels(data):
    tgt, inp, strat = data
    c = BasicPatchConstr(strat, inp, tgt)
    assert c.n_patches == 47
    x, y, spec = c.construct_patch(3)
    assert x.shape == (1, 64, 64) and x.dtype == np.float32 and (x == 7).all()
    assert y.shape == (3, 64, 64) and y.dtype == np.float32
    assert np.array_equal(y[:, 0, 0], CONSTANTS)
    assert spec == strat.get_patch_spec(3)
    assert c.get_principal_input(x) is x
    assert c.get_input_image_metadata(spec)["data_shape"] == inp.shapes[spec.data_idx]
    assert c.get_target_image_metadata(spec)["data_shape"] == tgt.shapes[spec.data_idx]
    assert list(c.get_patch_indices(1)) == list(range(32, 47))
    c2 = BasicPatchConstr(strat, tgt, None, channels=[2, 0])
    x, y, _ = c2.construct_patch(3)
    assert y is None and np.array_equal(x[:, 5, 5], [10.0, 1.0])
    assert c2.target_shapes is None and c2.get_target_image_metadata(spec) is None


@pytest.mark.parametrize("scales", [1, 2, 3])
@pytest.mark.parametrize("alphas", [None, [(0.5, 1.0)] * 3, [(0.0, 0.0), (1.0, 1.0), (0.2, 0.4)]])
@pytest.mark.parametrize("p_uncorrelated", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("channels", [None, [2, 0]])
def test_multichannel_target_constructor(data, scales, alphas, p_uncorrelated, channels):
    tgt, _, strat = data
    c = MultiChannelTargetMsPatchConstr(
        strat,
        tgt,
        scales,
        "reflect",
        alphas,
        p_uncorrelated,
        channels,
        rng=np.random.default_rng(3),
    )
    chans = [0, 1, 2] if channels is None else channels
    kinds = set()
    for index in (0, 5, 46):
        x, y, spec = c.construct_patch(index)
        assert x.shape == (scales, 64, 64) and y.shape == (len(chans), 64, 64)
        assert x.dtype == np.float32 and y.dtype == np.float32
        assert np.array_equal(y[:, 3, 3], CONSTANTS[chans])
        kinds.add(type(spec))
        assert c.get_principal_input(x).shape == (1, 64, 64)
        value = float(x[0, 0, 0])
        if alphas is None:
            assert np.isclose(value, CONSTANTS[chans].mean())
        else:
            low = sum(alphas[ch][0] * CONSTANTS[ch] for ch in chans)
            high = sum(alphas[ch][1] * CONSTANTS[ch] for ch in chans)
            assert low - 1e-5 <= value <= high + 1e-5
        if isinstance(spec, UncorrelatedPatchSpecs):
            assert spec.all_coords[0] == strat.get_patch_spec(index).coords
            assert len(spec.all_coords) == len(chans)
            meta = c.get_input_image_metadata(spec)["additional_metadata"]
            assert len(meta["all_sources"]) == len(chans)
        # same index, same patch (explicit rng gives the base seed)
        x2, _, spec2 = c.construct_patch(index)
        assert np.array_equal(x, x2) and spec == spec2
    if p_uncorrelated == 0.0:
        assert kinds == {PatchSpecs}
    if p_uncorrelated == 1.0:
        assert kinds == {UncorrelatedPatchSpecs}


def test_multichannel_mixing_is_exact_and_changes_per_epoch():
    from tamale.patching._random import rng_for

    rng = np.random.default_rng(5)
    tgt = PatchExtractor([ArrayImageStack(rng.random((3, 96, 96)).astype(np.float32), "CYX")])
    strat = StratifiedPatching(tgt.shapes, (32, 32), seed=2)
    c = MultiChannelTargetMsPatchConstr(strat, tgt, 2, "wrap", [(0.2, 0.8)] * 3, 0.0, rng=11)
    x, y, _ = c.construct_patch(4)
    draws = rng_for(c.seed, 0, 4)
    draws.random()  # the uncorrelated-channel draw comes first
    alphas = np.array([draws.uniform(0.2, 0.8) for _ in range(3)], dtype=np.float32)
    expected = np.zeros((32, 32), np.float32)
    for a, plane in zip(alphas, y):
        expected += a * plane
    assert np.array_equal(x[0], expected)
    c.set_epoch(1)
    x1, _, _ = c.construct_patch(4)
    assert not np.array_equal(x, x1)
    c.set_epoch(0)
    assert np.array_equal(c.construct_patch(4)[0], x)


def test_independent_targets_constructor():
    a = PatchExtractor([ArrayImageStack(np.full((256, 256), 2.0, np.float32))])
    b = PatchExtractor([ArrayImageStack(np.full((3, 128, 128), 4.0, np.float32), "SYX")])
    sa = StratifiedPatching(a.shapes, (64, 64), seed=1)
    sb = StratifiedPatching(b.shapes, (64, 64), seed=2)
    c = IndependentTargetsMsPatchConstr([sa, sb], [a, b], 2, "wrap", None, rng=0)
    assert c.principal == 0 and c.n_patches == 16
    x, y, spec = c.construct_patch(5)
    assert x.shape == (2, 64, 64) and y.shape == (2, 64, 64)
    assert np.allclose(x, 3.0) and np.array_equal(y[:, 0, 0], [2.0, 4.0])
    assert isinstance(spec, UncorrelatedPatchSpecs) and spec.all_data_idx == (0, 0)
    assert spec.coords == sa.get_patch_spec(5).coords
    meta = c.get_input_image_metadata(spec)["additional_metadata"]
    assert meta["all_data_shapes"] == [(1, 1, 256, 256), (3, 1, 128, 128)]
    assert list(c.get_patch_indices(0)) == list(range(16))
    with pytest.raises(TamaleInputError, match="single-channel"):
        three = PatchExtractor([ArrayImageStack(np.zeros((3, 64, 64)), "CYX")])
        IndependentTargetsMsPatchConstr(
            [StratifiedPatching(three.shapes, (32, 32))], [three], 1, "reflect", None
        )


def test_paired_constructor_handles_multichannel_inputs(data):
    tgt, _, strat = data
    rng = np.random.default_rng(0)
    inp = PatchExtractor(
        [
            ArrayImageStack(rng.random((2, 2, 256, 256)).astype(np.float32), "SCYX"),
            ArrayImageStack(rng.random((1, 2, 300, 200)).astype(np.float32), "SCYX"),
        ]
    )
    c = PairedInputTargetMsPatchConstr(strat, inp, tgt, 4, "reflect")
    x, y, spec = c.construct_patch(2)
    assert x.shape == (8, 64, 64) and x.dtype == np.float32 and y.shape == (3, 64, 64)
    assert np.array_equal(c.get_principal_input(x), inp.extract(spec))
    lc = extract_lateral_context(
        inp.image_stack(spec.data_idx), spec.sample_idx, None, spec.coords, (64, 64), 4
    )
    assert np.array_equal(x[2:4], lc[:, 1])  # scale 1 of both channels


def test_prediction_constructor(data):
    _, inp, _ = data
    tiles = TiledPatching(inp.shapes, (64, 64), 16)
    c = PredMsPatchConstr(tiles, inp, 3, "reflect")
    x, y, spec = c.construct_patch(0)
    assert x.shape == (3, 64, 64) and y is None and isinstance(spec, TileSpecs)
    assert c.target_shapes is None and c.n_patches == tiles.n_patches


def test_constructor_bad_inputs(data):
    tgt, inp, strat = data
    with pytest.raises(TamaleInputError, match="multiscale_count"):
        PairedInputTargetMsPatchConstr(strat, inp, tgt, 0, "reflect")
    with pytest.raises(TamaleInputError, match="padding_mode"):
        PairedInputTargetMsPatchConstr(strat, inp, tgt, 2, "zeros")
    with pytest.raises(TamaleInputError, match=r"in \[0, 1\]"):
        MultiChannelTargetMsPatchConstr(strat, tgt, 2, "reflect", None, 1.5)
    with pytest.raises(TamaleInputError, match="one pair per channel"):
        MultiChannelTargetMsPatchConstr(strat, tgt, 2, "reflect", [(0, 1)], 0.0)
    with pytest.raises(TamaleInputError, match="low <= high"):
        MultiChannelTargetMsPatchConstr(strat, tgt, 2, "reflect", [(1, 0)] * 3, 0.0)
    other = StratifiedPatching([(1, 1, 128, 128)], (64, 64))
    with pytest.raises(TamaleInputError, match="knows 1 image stack"):
        BasicPatchConstr(other, inp)
    wrong = PatchExtractor(
        [
            ArrayImageStack(np.zeros((2, 1, 256, 250)), "SCYX"),
            ArrayImageStack(np.zeros((1, 1, 300, 200)), "SCYX"),
        ]
    )
    with pytest.raises(TamaleInputError, match="spatial sizes must agree"):
        BasicPatchConstr(strat, inp, wrong)
    with pytest.raises(TamaleInputError, match="channels"):
        BasicPatchConstr(strat, inp, channels=[1])
    with pytest.raises(TamaleInputError, match="rng"):
        MultiChannelTargetMsPatchConstr(strat, tgt, 2, "reflect", None, 0.0, rng="x")
