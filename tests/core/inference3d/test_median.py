from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from tamale.errors import TamaleInputError
from tamale.postprocess.median import (
    StreamingMedian,
    median_filter_stack,
    reflect_index,
    window_indices,
)


def scipy_median(stack: np.ndarray, size: int) -> np.ndarray:
    return ndi.median_filter(stack, size=(size,) + (1,) * (stack.ndim - 1), mode="reflect")


def test_true_median_not_recursive():
    # empanada's running median gives 0,0,0,0,0,(...) here; a median filter keeps the pattern
    x = np.array([0, 10, 0, 10, 0, 10], np.float32)[:, None]
    out = median_filter_stack(x, 3)[:, 0]
    np.testing.assert_array_equal(out, [0, 0, 10, 0, 10, 10])
    np.testing.assert_array_equal(out, scipy_median(x, 3)[:, 0])


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 12])
@pytest.mark.parametrize("size", [1, 3, 5, 7, 9, 11])
def test_equals_scipy_reflect_for_every_length_and_size(n, size):
    rng = np.random.default_rng(n * 100 + size)
    stack = rng.random((n, 3, 4)).astype(np.float32)
    expected = scipy_median(stack, size)
    np.testing.assert_array_equal(median_filter_stack(stack, size), expected)
    # streaming: same values, no slice lost, even when the stack is shorter than the window
    stream = StreamingMedian(n, size)
    out = dict(stream.run((i, stack[i]) for i in stream.needed_inputs()))
    assert sorted(out) == list(range(n))
    np.testing.assert_array_equal(np.stack([out[i] for i in range(n)]), expected)


def test_short_volumes_that_empanada_truncated():
    # empanada: N=3, ks=5 gave 2 slices; N=4, ks=5 gave 3. Here every slice comes out.
    for n in (3, 4):
        stack = np.arange(n, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
        out = median_filter_stack(stack, 5)
        assert out.shape == stack.shape
        np.testing.assert_array_equal(out, scipy_median(stack, 5))


def test_window_and_reflect():
    assert [reflect_index(i, 4) for i in range(-5, 10)] == [
        3,
        3,
        2,
        1,
        0,
        0,
        1,
        2,
        3,
        3,
        2,
        1,
        0,
        0,
        1,
    ]
    assert window_indices(0, 2, 5) == [1, 0, 0, 1, 1]
    assert window_indices(0, 1, 11) == [0] * 11


def test_streaming_slab_with_halo_holds_few_slices():
    n, size = 40, 7
    rng = np.random.default_rng(1)
    stack = rng.random((n, 5, 5)).astype(np.float32)
    expected = scipy_median(stack, size)
    stream = StreamingMedian(n, size, outputs=range(10, 20))
    assert stream.needed_inputs() == list(range(7, 23))
    held = []
    got = {}
    for i in stream.needed_inputs():
        for j, v in stream.push(i, stack[i]):
            got[j] = v
        held.append(stream.held)
    assert max(held) <= size
    assert stream.finished
    np.testing.assert_array_equal(np.stack([got[i] for i in range(10, 20)]), expected[10:20])


def test_streaming_rejects_out_of_order():
    stream = StreamingMedian(5, 3)
    stream.push(0, np.zeros(1))
    with pytest.raises(ValueError):
        stream.push(0, np.zeros(1))


def test_torch_tensors_give_the_same_median():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    stack = rng.random((6, 4, 4)).astype(np.float32)
    stream = StreamingMedian(6, 5)
    out = dict(stream.run((i, torch.from_numpy(stack[i])) for i in stream.needed_inputs()))
    np.testing.assert_array_equal(
        np.stack([out[i].numpy() for i in range(6)]), scipy_median(stack, 5)
    )


@pytest.mark.parametrize("size", [0, 2, -1, 4])
def test_even_or_nonpositive_sizes_are_refused(size):
    with pytest.raises(TamaleInputError, match="odd"):
        median_filter_stack(np.zeros((3, 2)), size)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 15),
    size=st.sampled_from([1, 3, 5, 7, 9, 11]),
    seed=st.integers(0, 10_000),
)
def test_property_equals_scipy(n, size, seed):
    stack = np.random.default_rng(seed).integers(0, 5, (n, 3)).astype(np.float32)
    np.testing.assert_array_equal(median_filter_stack(stack, size), scipy_median(stack, size))
