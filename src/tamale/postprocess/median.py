"""A true median filter of semantic probabilities across the slices of a stack.

Stack inference smooths the per-slice semantic probabilities with a median over
``size`` neighbouring slices (``size`` odd, 1-11) before thresholding. This is a
*true* median filter: every output slice is the element-wise median of the
**unfiltered** inputs in its window (empanada's running median fed already
filtered slices back into later windows, which is not a median filter).

Ends of the stack
-----------------
Windows that reach past either end of the stack are completed by mirroring
the stack about its end faces, which is exactly
``scipy.ndimage.median_filter(probs, size=(size, 1, ...), mode="reflect")``
(``d c b a | a b c d | d c b a``). Every output slice therefore has a full
window of ``size`` values, the filter is defined for every ``size`` and every
stack length, including stacks shorter than the window (the mirror image is
repeated as often as needed), and no slice is ever lost. A stack of one slice
is returned unchanged.

Two forms are offered: :func:`median_filter_stack` for a stack in memory, and
:class:`StreamingMedian`, which receives slices in order and emits filtered
slices as soon as their window is complete, holding at most ``size`` slices
(plus the few that mirroring at the start needs). Both accept numpy arrays or
torch tensors (on any device) as slices.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError

__all__ = [
    "MEDIAN_SIZES",
    "StreamingMedian",
    "check_median_size",
    "median_filter_stack",
    "median_of",
    "reflect_index",
    "window_indices",
]

MEDIAN_SIZES = (1, 3, 5, 7, 9, 11)
"""The window sizes offered to users (any odd size works in the engine)."""


def check_median_size(size: int) -> int:
    """Validate a median window size (odd and at least 1)."""
    size = int(size)
    if size < 1 or size % 2 == 0:
        raise TamaleInputError(
            f"the median filter size must be an odd number of slices (1, 3, 5, ...), got {size}"
        )
    return size


def reflect_index(index: int, length: int) -> int:
    """Map any integer position onto ``range(length)`` by mirroring about the ends.

    This is scipy.ndimage's ``reflect`` mode (the end values are repeated:
    ``d c b a | a b c d | d c b a``), applied as often as needed.
    """
    if length < 1:
        raise ValueError("length must be at least 1")
    period = 2 * length
    k = index % period
    return k if k < length else period - 1 - k


def window_indices(index: int, length: int, size: int) -> list[int]:
    """The input slices whose median gives output slice ``index`` (with repeats)."""
    half = size // 2
    return [reflect_index(j, length) for j in range(index - half, index + half + 1)]


def median_of(slices: list[Any]) -> Any:
    """Element-wise median of an odd number of equally shaped numpy arrays or torch tensors.

    A slice may also be a tuple of arrays (e.g. the tiles of a tiled slice): the median
    is then taken tuple element by tuple element.
    """
    if len(slices) == 1:
        return slices[0]
    first = slices[0]
    if isinstance(first, tuple):
        return tuple(median_of([s[k] for s in slices]) for k in range(len(first)))
    if isinstance(first, np.ndarray):
        if len(slices) == 3:
            a, b, c = slices
            return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
        stacked = np.stack(slices, axis=0)
        mid = len(slices) // 2
        return np.partition(stacked, mid, axis=0)[mid]
    import torch  # tensors: stay on their device

    if len(slices) == 3:  # a sorting network: no stack, no sort
        a, b, c = slices
        return torch.maximum(torch.minimum(a, b), torch.minimum(torch.maximum(a, b), c))
    stacked = torch.stack(list(slices), dim=0)
    # with an odd count, torch.median returns the true middle value
    return torch.median(stacked, dim=0).values


def median_filter_stack(probs: np.ndarray, size: int, axis: int = 0) -> np.ndarray:
    """Median filter of ``probs`` over ``size`` slices along ``axis`` (in memory).

    Equal to ``scipy.ndimage.median_filter(probs, size=s, mode="reflect")`` with
    ``s[axis] = size`` and 1 elsewhere, for every stack length.
    """
    size = check_median_size(size)
    probs = np.asarray(probs)
    if size == 1:
        return probs.copy()
    moved = np.moveaxis(probs, axis, 0)
    n = moved.shape[0]
    out = np.empty_like(moved)
    for i in range(n):
        out[i] = median_of([moved[j] for j in window_indices(i, n, size)])
    return np.moveaxis(out, 0, axis)


class StreamingMedian:
    """Median filter for slices that arrive one at a time, in increasing order.

    Parameters
    ----------
    length : int
        Number of slices in the whole stack (the mirror at the ends needs it).
    size : int
        Window size (odd).
    outputs : range, optional
        The output slices wanted (default: all). A slab of a larger stack asks
        for its own slices only; :meth:`needed_inputs` then says which input
        slices (its halo included) it must be fed.

    Feed every index of :meth:`needed_inputs`, in order, with :meth:`push`;
    each call returns the ``(index, filtered)`` pairs that became complete.
    Inputs are released as soon as no later output needs them.
    """

    def __init__(self, length: int, size: int, outputs: range | None = None) -> None:
        self.length = int(length)
        self.size = check_median_size(size)
        self.outputs = range(self.length) if outputs is None else outputs
        if self.outputs.step != 1 or (
            len(self.outputs) and (self.outputs.start < 0 or self.outputs.stop > self.length)
        ):
            raise ValueError(f"outputs {self.outputs} must be a contiguous part of 0..{length}")
        self._windows = {i: window_indices(i, self.length, self.size) for i in self.outputs}
        last_use: dict[int, int] = {}
        for i, window in self._windows.items():
            for j in window:
                last_use[j] = max(last_use.get(j, -1), i)
        self._last_use = last_use
        self._needed = sorted(last_use)
        self._held: dict[int, Any] = {}
        self._next = self.outputs.start
        self._last_pushed = -1

    def needed_inputs(self) -> list[int]:
        """Input slice indices to push, in the order to push them."""
        return list(self._needed)

    @property
    def held(self) -> int:
        """How many input slices are held right now."""
        return len(self._held)

    def push(self, index: int, probs: Any) -> list[tuple[int, Any]]:
        """Add input slice ``index``; return the outputs completed by it."""
        if index not in self._last_use:
            raise ValueError(f"slice {index} is not needed by outputs {self.outputs}")
        if index <= self._last_pushed:
            raise ValueError(
                f"slices must be pushed in increasing order ({index} after {self._last_pushed})"
            )
        self._last_pushed = index
        self._held[index] = probs
        done: list[tuple[int, Any]] = []
        while self._next < self.outputs.stop:
            window = self._windows[self._next]
            if max(window) > index:
                break
            done.append((self._next, median_of([self._held[j] for j in window])))
            for j in set(window):
                if self._last_use[j] <= self._next:
                    self._held.pop(j, None)
            self._next += 1
        return done

    @property
    def finished(self) -> bool:
        """Whether every wanted output has been emitted."""
        return self._next >= self.outputs.stop

    def run(self, inputs: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
        """Filter an iterable of ``(index, probs)`` pairs, yielding outputs in order."""
        for index, probs in inputs:
            yield from self.push(index, probs)
