"""Whole-sample patching: one patch per sample, the sample itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.patching._validate import check_data_shapes
from tamale.patching.specs import PatchSpecs, PatchSpecsBatch
from tamale.patching.strategy import SampleIndexedPatching

__all__ = ["WholeSamplePatching"]


class WholeSamplePatching(SampleIndexedPatching):
    """One patch per sample, at the origin, as large as the sample.

    Parameters
    ----------
    data_shapes : sequence of sequence of int
        Shapes of the image stacks, axes SC(Z)YX; all must have the same number of
        spatial axes (2 or 3).
    """

    def __init__(self, data_shapes: Sequence[Sequence[int]]) -> None:
        try:
            first = tuple(next(iter(data_shapes)))
        except (TypeError, StopIteration):
            raise TamaleInputError("data_shapes must hold at least one SC(Z)YX shape") from None
        ndim = len(first) - 2
        if ndim not in (2, 3):
            raise TamaleInputError(
                f"data_shapes[0] = {first} must be SCYX (4 numbers) or SCZYX (5 numbers)"
            )
        shapes = check_data_shapes(data_shapes, ndim)
        super().__init__(shapes, seed=0)
        self._set_counts(np.ones(len(self._gs_stack), dtype=np.int64))

    def get_patch_spec(self, index: int) -> PatchSpecs:
        """The whole sample ``index``."""
        gs, _ = self._locate(index)
        d = int(self._gs_stack[gs])
        spatial = self._data_shapes[d][2:]
        return PatchSpecs(d, int(self._gs_sample[gs]), (0,) * len(spatial), spatial)

    def get_patch_specs(self, indices: Any) -> PatchSpecsBatch:
        """The whole samples for many indices at once."""
        _, gs, _ = self._locate_many(indices)
        stack = self._gs_stack[gs]
        sizes = np.asarray([s[2:] for s in self._data_shapes], dtype=np.int64)[stack]
        return PatchSpecsBatch(
            data_idx=stack,
            sample_idx=self._gs_sample[gs],
            coords=np.zeros_like(sizes),
            patch_size=sizes,
        )
