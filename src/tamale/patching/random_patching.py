"""Random patching: uniform random patches, independent of each other."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tamale.patching._random import uniforms
from tamale.patching._validate import check_data_shapes, check_patch_size, check_too_small
from tamale.patching.specs import PatchSpecs, PatchSpecsBatch
from tamale.patching.strategy import SampleIndexedPatching

__all__ = ["RandomPatching"]


class RandomPatching(SampleIndexedPatching):
    """Uniformly random patch starts.

    Each sample gets ``prod(ceil(shape / patch_size))`` patches per epoch; every start
    in ``[0, shape - patch_size]`` is equally likely. Draws depend only on
    ``(seed, epoch, index)``.

    Parameters
    ----------
    data_shapes : sequence of sequence of int
        Shapes of the image stacks, axes SC(Z)YX.
    patch_size : sequence of int
        Patch size per spatial axis.
    seed : int, optional
        Seed of the draws (``None``: one from the operating system).
    allow_incomplete_patches : bool, default False
        Accept images smaller than the patch (start 0, zero-padded) instead of raising.
    """

    def __init__(
        self,
        data_shapes: Sequence[Sequence[int]],
        patch_size: Sequence[int],
        seed: int | None = None,
        *,
        allow_incomplete_patches: bool = False,
    ) -> None:
        ps = check_patch_size(patch_size)
        shapes = check_data_shapes(data_shapes, len(ps))
        check_too_small(shapes, ps, allow_incomplete_patches)
        super().__init__(shapes, seed)
        self._ps = ps
        self._range = np.array(
            [[max(0, s - p) + 1 for s, p in zip(shape[2:], ps)] for shape in shapes],
            dtype=np.int64,
        )
        per_stack = [math.prod(-(-s // p) for s, p in zip(shape[2:], ps)) for shape in shapes]
        self._set_counts(np.asarray(per_stack, dtype=np.int64)[self._gs_stack])

    @property
    def patch_size(self) -> tuple[int, ...]:
        """Patch size per spatial axis."""
        return self._ps

    def get_patch_spec(self, index: int) -> PatchSpecs:
        """The patch for ``index`` (same index, seed and epoch: same patch)."""
        gs, _ = self._locate(index)
        d = int(self._gs_stack[gs])
        key = self._key
        rng = self._range[d].tolist()
        coords = tuple(int(uniforms(key, index, j) * r) for j, r in enumerate(rng))
        return PatchSpecs(d, int(self._gs_sample[gs]), coords, self._ps)

    def get_patch_specs(self, indices: Any) -> PatchSpecsBatch:
        """The patches for many indices at once (vectorised)."""
        idx, gs, _ = self._locate_many(indices)
        key = self._key
        stack = self._gs_stack[gs]
        rng = self._range[stack]
        coords = np.stack(
            [(uniforms(key, idx, j) * rng[:, j]).astype(np.int64) for j in range(len(self._ps))],
            axis=1,
        ).reshape(len(idx), len(self._ps))
        return PatchSpecsBatch(
            data_idx=stack,
            sample_idx=self._gs_sample[gs],
            coords=coords,
            patch_size=np.broadcast_to(np.asarray(self._ps, np.int64), coords.shape),
        )

    def __repr__(self) -> str:
        return (
            f"RandomPatching(n_stacks={len(self._data_shapes)}, patch_size={self._ps}, "
            f"n_patches={self.n_patches}, seed={self._seed}, epoch={self._epoch})"
        )
