"""The patching-strategy protocol and the index bookkeeping every strategy shares.

A strategy maps a dataset index in ``[0, n_patches)`` to a :class:`PatchSpecs`. The
indices of one image stack are contiguous (``get_patch_indices``), and inside a
stack the indices of one sample are contiguous too.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tamale.errors import TamaleInputError
from tamale.patching._random import new_seed, stream_key
from tamale.patching._validate import check_epoch, check_index, check_indices, check_seed
from tamale.patching.specs import PatchSpecs, PatchSpecsBatch

__all__ = ["Patching"]


@runtime_checkable
class Patching(Protocol):
    """What every patching strategy offers.

    Randomised strategies derive their random numbers from ``(seed, epoch, index)``:
    the same index gives the same patch in any call order, process or DataLoader
    worker; :meth:`set_epoch` gives a new draw.
    """

    @property
    def data_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes SC(Z)YX of the image stacks."""
        ...

    @property
    def n_patches(self) -> int:
        """Number of patches (the dataset length for one epoch)."""
        ...

    def get_patch_spec(self, index: int) -> PatchSpecs:
        """The patch for ``index`` in ``[0, n_patches)``."""
        ...

    def get_patch_specs(self, indices: Any) -> PatchSpecsBatch:
        """The patches for many indices at once (vectorised)."""
        ...

    def get_patch_indices(self, data_idx: int) -> Sequence[int]:
        """The indices whose patches come from image stack ``data_idx``."""
        ...

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draw ``get_patch_spec`` returns."""
        ...


class SampleIndexedPatching:
    """Base class: a number of patches per sample, indices concatenated in order.

    Subclasses call :meth:`_set_counts` with the number of patches of every sample
    (samples of stack 0 first) and use :meth:`_locate` / :meth:`_locate_many` to turn
    a dataset index into ``(global sample, index inside the sample)``.
    """

    def __init__(self, data_shapes: tuple[tuple[int, ...], ...], seed: int | None) -> None:
        self._data_shapes = data_shapes
        seed = check_seed(seed)
        self._seed = new_seed() if seed is None else seed
        self._epoch = 0
        self._key = stream_key(self._seed, 0)
        n_samples = [shape[0] for shape in data_shapes]
        self._stack_first = np.concatenate([[0], np.cumsum(n_samples)]).astype(np.int64)
        self._gs_stack = np.repeat(np.arange(len(data_shapes)), n_samples).astype(np.int64)
        self._gs_sample = (
            np.arange(self._stack_first[-1], dtype=np.int64) - self._stack_first[self._gs_stack]
        )
        self._counts = np.zeros(int(self._stack_first[-1]), dtype=np.int64)
        self._cum = np.zeros(0, dtype=np.int64)
        self._cum_list: list[int] = []
        self._n = 0

    # ---------------------------------------------------------------- bookkeeping
    def _set_counts(self, counts: np.ndarray) -> None:
        self._counts = np.asarray(counts, dtype=np.int64)
        self._cum = np.cumsum(self._counts)
        self._cum_list = self._cum.tolist()
        self._n = self._cum_list[-1] if self._cum_list else 0

    def _global_sample(self, data_idx: int, sample_idx: int) -> int:
        self._check_data_idx(data_idx)
        n = self._data_shapes[data_idx][0]
        if not isinstance(sample_idx, (int, np.integer)) or not 0 <= sample_idx < n:
            raise TamaleInputError(
                f"sample_idx {sample_idx!r} is out of range: image stack {data_idx} has "
                f"{n} sample(s) (valid 0..{n - 1})"
            )
        return int(self._stack_first[data_idx]) + int(sample_idx)

    def _check_data_idx(self, data_idx: Any) -> int:
        n = len(self._data_shapes)
        if not isinstance(data_idx, (int, np.integer)) or not 0 <= data_idx < n:
            raise TamaleInputError(
                f"data_idx {data_idx!r} is out of range: there are {n} image stack(s) "
                f"(valid 0..{n - 1})"
            )
        return int(data_idx)

    def _sample_start(self, gs: int) -> int:
        return self._cum_list[gs - 1] if gs else 0

    def _locate(self, index: Any) -> tuple[int, int]:
        """(global sample, local index) of one dataset index (validated)."""
        if type(index) is not int or not 0 <= index < self._n:
            index = check_index(index, self._n)
        gs = bisect_right(self._cum_list, index)
        return gs, index - self._sample_start(gs)

    def _locate_many(self, indices: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indices, global samples, local indices) as arrays (validated)."""
        idx = check_indices(indices, self.n_patches)
        gs = np.searchsorted(self._cum, idx, side="right")
        start = np.where(gs > 0, self._cum[np.maximum(gs - 1, 0)], 0)
        return idx, gs, idx - start

    # ---------------------------------------------------------------- public API
    @property
    def data_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes SC(Z)YX of the image stacks."""
        return self._data_shapes

    @property
    def n_patches(self) -> int:
        """Number of patches (the dataset length for one epoch)."""
        return self._n

    @property
    def seed(self) -> int:
        """The seed (drawn from the OS when none was given, so copies agree)."""
        return self._seed

    @property
    def epoch(self) -> int:
        """The current epoch."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draw is returned."""
        self._epoch = check_epoch(epoch)
        self._key = stream_key(self._seed, self._epoch)

    def get_patch_indices(self, data_idx: int) -> range:
        """The contiguous range of indices whose patches come from stack ``data_idx``."""
        data_idx = self._check_data_idx(data_idx)
        first = int(self._stack_first[data_idx])
        last = int(self._stack_first[data_idx + 1])
        start = self._sample_start(first)
        stop = self._cum_list[last - 1]
        return range(start, stop)

    def get_patch_spec(self, index: int) -> PatchSpecs:  # pragma: no cover - abstract
        raise NotImplementedError

    def get_patch_specs(self, indices: Any) -> PatchSpecsBatch:
        """The patches for many indices (one call per index; subclasses vectorise)."""
        idx = check_indices(indices, self.n_patches)
        specs = [self.get_patch_spec(int(i)) for i in idx]
        return batch_from_specs(specs, ndim=len(self._data_shapes[0]) - 2)

    def __len__(self) -> int:
        return self.n_patches


def batch_from_specs(specs: Sequence[PatchSpecs], ndim: int) -> PatchSpecsBatch:
    """Pack a list of :class:`PatchSpecs` into a :class:`PatchSpecsBatch`."""
    n = len(specs)
    return PatchSpecsBatch(
        data_idx=np.fromiter((s.data_idx for s in specs), np.int64, n),
        sample_idx=np.fromiter((s.sample_idx for s in specs), np.int64, n),
        coords=np.array([s.coords for s in specs], dtype=np.int64).reshape(n, ndim),
        patch_size=np.array([s.patch_size for s in specs], dtype=np.int64).reshape(n, ndim),
    )
