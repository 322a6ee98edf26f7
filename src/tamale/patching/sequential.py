"""Sequential patching: a regular grid of patches with a chosen overlap."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.patching._validate import check_data_shapes, check_patch_size, check_too_small
from tamale.patching.specs import PatchSpecs, PatchSpecsBatch
from tamale.patching.strategy import SampleIndexedPatching

__all__ = ["SequentialPatching", "sequential_starts"]


def sequential_starts(size: int, patch: int, overlap: int) -> np.ndarray:
    """Starts ``0, step, 2*step, ...`` (step = patch - overlap) plus one flush with the end.

    An axis shorter than the patch gets the single start 0.
    """
    if size <= patch:
        return np.zeros(1, dtype=np.int64)
    step = patch - overlap
    starts = np.arange(0, size - patch + 1, step, dtype=np.int64)
    if starts[-1] != size - patch:
        starts = np.append(starts, size - patch)
    return starts


def check_overlaps(overlaps: Any, patch_size: tuple[int, ...], name: str) -> tuple[int, ...]:
    """One overlap per axis, each in ``[0, patch)``."""
    if isinstance(overlaps, (int, np.integer)):
        overlaps = (int(overlaps),) * len(patch_size)
    values = tuple(overlaps)
    if len(values) != len(patch_size) or not all(isinstance(v, (int, np.integer)) for v in values):
        raise TamaleInputError(
            f"{name} must be one int per spatial axis ({len(patch_size)}), got {overlaps!r}"
        )
    for v, p in zip(values, patch_size):
        if not 0 <= v < p:
            raise TamaleInputError(
                f"{name} {tuple(values)} must be >= 0 and smaller than the patch size "
                f"{patch_size} on every axis"
            )
    return tuple(int(v) for v in values)


class SequentialPatching(SampleIndexedPatching):
    """Patches on a regular grid (C order), the last one per axis flush with the end.

    Parameters
    ----------
    data_shapes : sequence of sequence of int
        Shapes of the image stacks, axes SC(Z)YX.
    patch_size : sequence of int
        Patch size per spatial axis.
    overlaps : int or sequence of int, default 0
        Overlap between neighbouring patches per axis (``0 <= overlap < patch``).
    allow_incomplete_patches : bool, default False
        Accept images smaller than the patch (one zero-padded patch) instead of raising.
    """

    def __init__(
        self,
        data_shapes: Sequence[Sequence[int]],
        patch_size: Sequence[int],
        overlaps: int | Sequence[int] = 0,
        *,
        allow_incomplete_patches: bool = False,
    ) -> None:
        ps = check_patch_size(patch_size)
        shapes = check_data_shapes(data_shapes, len(ps))
        check_too_small(shapes, ps, allow_incomplete_patches)
        super().__init__(shapes, seed=0)
        self._ps = ps
        self._overlaps = check_overlaps(overlaps, ps, "overlaps")
        self._starts = [
            [sequential_starts(s, p, o) for s, p, o in zip(shape[2:], ps, self._overlaps)]
            for shape in shapes
        ]
        per_stack = [math.prod(len(a) for a in starts) for starts in self._starts]
        self._set_counts(np.asarray(per_stack, dtype=np.int64)[self._gs_stack])

    @property
    def patch_size(self) -> tuple[int, ...]:
        """Patch size per spatial axis."""
        return self._ps

    def get_patch_spec(self, index: int) -> PatchSpecs:
        """The ``index``-th patch."""
        gs, local = self._locate(index)
        d = int(self._gs_stack[gs])
        starts = self._starts[d]
        pos = np.unravel_index(local, [len(a) for a in starts])
        coords = tuple(int(a[p]) for a, p in zip(starts, pos))
        return PatchSpecs(d, int(self._gs_sample[gs]), coords, self._ps)

    def get_patch_specs(self, indices: Any) -> PatchSpecsBatch:
        """The patches for many indices at once (vectorised)."""
        idx, gs, local = self._locate_many(indices)
        stack = self._gs_stack[gs]
        coords = np.empty((len(idx), len(self._ps)), dtype=np.int64)
        for d in np.unique(stack):
            sel = stack == d
            starts = self._starts[int(d)]
            pos = np.unravel_index(local[sel], [len(a) for a in starts])
            coords[sel] = np.stack([a[p] for a, p in zip(starts, pos)], axis=1)
        return PatchSpecsBatch(
            data_idx=stack,
            sample_idx=self._gs_sample[gs],
            coords=coords,
            patch_size=np.broadcast_to(np.asarray(self._ps, np.int64), coords.shape),
        )
