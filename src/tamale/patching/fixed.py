"""Fixed patching: a given list of patches, e.g. a validation set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.patching._validate import check_data_shapes, check_epoch, check_index, check_indices
from tamale.patching.specs import PatchSpecs, PatchSpecsBatch
from tamale.patching.strategy import batch_from_specs

__all__ = ["FixedPatching"]


class FixedPatching:
    """Always the same patches, in the given order.

    Parameters
    ----------
    data_shapes : sequence of sequence of int
        Shapes of the image stacks, axes SC(Z)YX.
    patch_specs : sequence of PatchSpecs
        The patches; each must name an existing stack and sample.
    """

    def __init__(
        self, data_shapes: Sequence[Sequence[int]], patch_specs: Sequence[PatchSpecs]
    ) -> None:
        specs = list(patch_specs)
        if not specs:
            raise TamaleInputError("FixedPatching needs at least one patch specification")
        ndim = len(specs[0].coords)
        self._data_shapes = check_data_shapes(data_shapes, ndim)
        for i, spec in enumerate(specs):
            if not isinstance(spec, PatchSpecs):
                raise TamaleInputError(f"patch_specs[{i}] is not a PatchSpecs: {spec!r}")
            if not 0 <= spec.data_idx < len(self._data_shapes):
                raise TamaleInputError(
                    f"patch_specs[{i}] names image stack {spec.data_idx}, but there are "
                    f"{len(self._data_shapes)}"
                )
            if not 0 <= spec.sample_idx < self._data_shapes[spec.data_idx][0]:
                raise TamaleInputError(
                    f"patch_specs[{i}] names sample {spec.sample_idx} of stack "
                    f"{spec.data_idx}, which has {self._data_shapes[spec.data_idx][0]}"
                )
            if len(spec.coords) != ndim:
                raise TamaleInputError(f"patch_specs[{i}] is not {ndim}D like the first one")
        self._specs = specs
        self._epoch = 0

    @property
    def data_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes SC(Z)YX of the image stacks."""
        return self._data_shapes

    @property
    def n_patches(self) -> int:
        """Number of patches."""
        return len(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def set_epoch(self, epoch: int) -> None:
        """Accepted for the protocol; fixed patches do not change."""
        self._epoch = check_epoch(epoch)

    def get_patch_spec(self, index: int) -> PatchSpecs:
        """The ``index``-th given patch."""
        return self._specs[check_index(index, len(self._specs))]

    def get_patch_specs(self, indices: Any) -> PatchSpecsBatch:
        """The given patches at ``indices``."""
        idx = check_indices(indices, len(self._specs))
        return batch_from_specs([self._specs[i] for i in idx], len(self._specs[0].coords))

    def get_patch_indices(self, data_idx: int) -> list[int]:
        """Indices of the patches from stack ``data_idx``."""
        if not isinstance(data_idx, (int, np.integer)) or not 0 <= data_idx < len(
            self._data_shapes
        ):
            raise TamaleInputError(
                f"data_idx {data_idx!r} is out of range: there are {len(self._data_shapes)} stacks"
            )
        return [i for i, s in enumerate(self._specs) if s.data_idx == data_idx]
