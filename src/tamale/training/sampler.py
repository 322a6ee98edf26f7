"""Which patches each iteration trains on, drawn with the patching engine.

:class:`BatchSampler` lays a :class:`~tamale.patching.StratifiedPatching` over every
training image (so a small image and a large one both contribute, in proportion to their
area, and each epoch covers every image evenly), shuffles each epoch's indices with a
generator seeded by ``(seed, epoch)``, and hands out batches. Its whole state is
``(epoch, position)``: a checkpoint stores those two numbers and a resumed run draws the
very same patches.

Each patch is read through a :class:`~tamale.patching.PatchExtractor` as a *window*
``context`` times the patch size, centred on the patch, so that zooming out and rotating
in the augmentation show real image rather than padding (outside the image the window is
zero-padded: the training mean for images, background for labels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from tamale.errors import TamaleInputError
from tamale.patching import ArrayImageStack, PatchExtractor, PatchSpecs, StratifiedPatching
from tamale.training.data import LoadedSet

__all__ = ["BatchSampler", "PatchBatch", "window_size"]


def window_size(patch_size: int, context: float) -> int:
    """Side of the window read around a patch: ``patch + 2k >= context * patch``."""
    extra = math.ceil((context - 1.0) * patch_size / 2.0)
    return patch_size + 2 * max(extra, 0)


@dataclass
class PatchBatch:
    """Windows read for one batch (CPU tensors).

    Attributes
    ----------
    images : Tensor (B, 1, W, W) float32
    labels : Tensor (B, 1, W, W) float32
        Compact ids (exact in float32).
    luts : Tensor (B, K + 1, 2) int64
        Per sample: semantic channel and instance flag of each compact id (padded with
        zeros up to the largest K of the batch).
    specs : list of PatchSpecs
        The patches (not the windows) in the training images.
    """

    images: torch.Tensor
    labels: torch.Tensor
    luts: torch.Tensor
    specs: list[PatchSpecs]


class BatchSampler:
    """Stratified patches of a loaded training set, batch after batch.

    Parameters
    ----------
    data : LoadedSet
        The training set.
    patch_size : int
        Side of the patches.
    batch_size : int
        Patches per batch.
    seed : int
        Seed of the patch positions and of the shuffling.
    context : float
        Window side in patch sizes (see module docstring).

    Raises
    ------
    TamaleInputError
        When one epoch gives fewer patches than one batch (the message says how many
        are needed).
    """

    def __init__(
        self,
        data: LoadedSet,
        patch_size: int,
        batch_size: int,
        seed: int = 0,
        context: float = 1.0,
    ) -> None:
        self.data = data
        self.patch_size = int(patch_size)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.window = window_size(self.patch_size, context)
        shapes = [(1, 1, *it.image.shape) for it in data.items]
        self.patching = StratifiedPatching(
            shapes, (self.patch_size, self.patch_size), seed=self.seed,
            allow_incomplete_patches=True,
        )  # fmt: skip
        n = self.patching.n_patches
        if n < self.batch_size:
            raise TamaleInputError(
                f"the training set gives {n} patch(es) of {self.patch_size} x {self.patch_size} "
                f"pixels ({len(shapes)} image(s)); training needs at least {self.batch_size} "
                f"(one batch of {self.batch_size}): annotate more patches, or lower the patch "
                "size or the batch size"
            )
        self.images = PatchExtractor([ArrayImageStack(it.image) for it in data.items])
        self.labels = PatchExtractor([ArrayImageStack(it.compact) for it in data.items])
        self.epoch = 0
        self.position = 0
        self._order: np.ndarray | None = None

    # -- state ---------------------------------------------------------------
    @property
    def patches_per_epoch(self) -> int:
        return int(self.patching.n_patches)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self.epoch), "position": int(self.position)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._order = None

    def _epoch_order(self) -> np.ndarray:
        if self._order is None:
            self.patching.set_epoch(self.epoch)
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._order = torch.randperm(self.patches_per_epoch, generator=gen).numpy()
        return self._order

    # -- drawing -------------------------------------------------------------
    def next_specs(self) -> list[PatchSpecs]:
        """The patches of the next batch (an epoch's leftovers that do not fill a batch
        are skipped, as with ``drop_last``)."""
        if self.position + self.batch_size > self.patches_per_epoch:
            self.epoch += 1
            self.position = 0
            self._order = None
        order = self._epoch_order()
        picked = order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return [self.patching.get_patch_spec(int(i)) for i in picked]

    def read(self, specs: list[PatchSpecs]) -> PatchBatch:
        """Read the windows around ``specs``."""
        w, p = self.window, self.patch_size
        margin = (w - p) // 2
        images, labels, luts = [], [], []
        for spec in specs:
            y, x = spec.coords
            window = PatchSpecs(spec.data_idx, 0, (y - margin, x - margin), (w, w))
            images.append(self.images.extract(window))
            labels.append(self.labels.extract(window))
            luts.append(self.data.items[spec.data_idx].lut)
        k = max(len(lut) for lut in luts)
        lut_batch = np.zeros((len(luts), k, 2), dtype=np.int64)
        for i, lut in enumerate(luts):
            lut_batch[i, : len(lut)] = lut
        return PatchBatch(
            torch.from_numpy(np.stack(images)),
            torch.from_numpy(np.stack(labels)),
            torch.from_numpy(lut_batch),
            specs,
        )

    def next_batch(self) -> PatchBatch:
        """Draw and read the next batch."""
        return self.read(self.next_specs())
