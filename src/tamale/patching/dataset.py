"""A torch ``Dataset`` over a patch constructor, safe with DataLoader workers.

Workers are safe because nothing random or open is shared: strategies and
constructors draw from ``(seed, epoch, index)``, and file-backed image stacks re-open
their files in every process. The epoch lives in a shared-memory tensor, so
:meth:`PatchDataset.set_epoch` in the main process reaches persistent workers too
(call it before iterating the DataLoader for that epoch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from tamale.patching._validate import check_epoch
from tamale.patching.constructor import BasicPatchConstr, PatchConstr
from tamale.patching.extractor import PatchExtractor
from tamale.patching.specs import PatchSpecs, TileSpecs
from tamale.patching.strategy import Patching
from tamale.patching.stratified import StratifiedPatching

__all__ = ["PatchDataset", "spec_to_item"]


def spec_to_item(spec: PatchSpecs) -> dict[str, Any]:
    """The fields of a spec as ints and int64 tensors (collatable by DataLoader)."""
    item: dict[str, Any] = {
        "data_idx": spec.data_idx,
        "sample_idx": spec.sample_idx,
        "coords": torch.tensor(spec.coords, dtype=torch.int64),
        "patch_size": torch.tensor(spec.patch_size, dtype=torch.int64),
    }
    if isinstance(spec, TileSpecs):
        item["crop_coords"] = torch.tensor(spec.crop_coords, dtype=torch.int64)
        item["crop_size"] = torch.tensor(spec.crop_size, dtype=torch.int64)
        item["stitch_coords"] = torch.tensor(spec.stitch_coords, dtype=torch.int64)
    return item


class PatchDataset(Dataset):
    """Patches of a constructor as dicts of tensors.

    Each item is ``{"input": float32 tensor, "target": float32 tensor (if any),
    "index": int, "data_idx": int, "sample_idx": int, "coords": int64 tensor,
    "patch_size": int64 tensor}`` plus ``crop_coords``, ``crop_size`` and
    ``stitch_coords`` for tiles.

    Parameters
    ----------
    constructor : PatchConstr
        Builds the patches (e.g. :class:`BasicPatchConstr`).
    transform : callable, optional
        Applied to every item dict (augmentation, normalisation).
    """

    def __init__(
        self, constructor: PatchConstr, transform: Callable[[dict], dict] | None = None
    ) -> None:
        self.constructor = constructor
        self.transform = transform
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._applied = 0

    @classmethod
    def from_arrays(
        cls,
        images: Sequence[Any],
        targets: Sequence[Any] | None = None,
        *,
        patch_size: Sequence[int],
        axes: str | None = None,
        target_axes: str | None = None,
        seed: int | None = None,
        strategy: Patching | None = None,
        transform: Callable[[dict], dict] | None = None,
    ) -> PatchDataset:
        """Training patches from images (and targets): stratified over all images.

        Parameters
        ----------
        images : sequence
            numpy / dask / zarr arrays or TIFF / zarr paths (see
            :func:`~tamale.patching.image_stack.image_stack`).
        targets : sequence, optional
            Targets (e.g. label images) at the same size, in the same order.
        patch_size : sequence of int
            (Y, X) or (Z, Y, X).
        axes, target_axes : str, optional
            Axis letters of the images / targets (default by dimension: YX or ZYX).
        seed : int, optional
            Seed of the stratified draws.
        strategy : Patching, optional
            Use this strategy instead of a new :class:`StratifiedPatching` (its data
            shapes must be the images').
        transform : callable, optional
            Applied to every item.
        """
        inputs = PatchExtractor.from_sources(list(images), axes)
        tgt = None if targets is None else PatchExtractor.from_sources(list(targets), target_axes)
        if strategy is None:
            strategy = StratifiedPatching(inputs.shapes, patch_size, seed)
        return cls(BasicPatchConstr(strategy, inputs, tgt), transform)

    @property
    def patching_strategy(self) -> Patching | None:
        """The constructor's strategy (e.g. to exclude cells), if it has one."""
        return getattr(self.constructor, "patching_strategy", None)

    @property
    def epoch(self) -> int:
        """The current epoch."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (visible to DataLoader workers, persistent ones included)."""
        epoch = check_epoch(epoch)
        self._epoch.fill_(epoch)
        self.constructor.set_epoch(epoch)
        self._applied = epoch

    def __len__(self) -> int:
        return self.constructor.n_patches

    def __getitem__(self, index: int) -> dict[str, Any]:
        epoch = int(self._epoch)
        if epoch != self._applied:
            self.constructor.set_epoch(epoch)
            self._applied = epoch
        index = int(index) if isinstance(index, (int, np.integer, torch.Tensor)) else index
        x, y, spec = self.constructor.construct_patch(index)
        item = {"input": torch.from_numpy(x), "index": index, **spec_to_item(spec)}
        if y is not None:
            item["target"] = torch.from_numpy(y)
        return self.transform(item) if self.transform is not None else item

    def get_patch_indices(self, data_idx: int) -> Sequence[int]:
        """Indices whose patches come from image stack ``data_idx``."""
        return self.constructor.get_patch_indices(data_idx)

    def __repr__(self) -> str:
        return f"PatchDataset({self.constructor!r}, n={len(self)}, epoch={self.epoch})"
