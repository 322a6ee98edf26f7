"""PatchExtractor: patches from a list of image stacks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.patching.image_stack import ImageMetadata, ImageStack, image_stack
from tamale.patching.specs import PatchSpecs

__all__ = ["PatchExtractor"]


class PatchExtractor:
    """Reads patches (float32 C(Z)YX, zero-padded outside the image) from image stacks.

    All stacks must have the same number of spatial axes and of channels; their
    spatial sizes may differ.

    Parameters
    ----------
    image_stacks : sequence of ImageStack
        The stacks; ``data_idx`` in a patch specification indexes this list.
    """

    def __init__(self, image_stacks: Sequence[ImageStack]) -> None:
        stacks = list(image_stacks)
        if not stacks:
            raise TamaleInputError("PatchExtractor needs at least one image stack")
        first = stacks[0].data_shape
        for i, st in enumerate(stacks[1:], start=1):
            shape = st.data_shape
            if len(shape) != len(first):
                raise TamaleInputError(
                    f"image stack {i} ({st.source}) has {len(shape) - 2} spatial axes but "
                    f"stack 0 ({stacks[0].source}) has {len(first) - 2}: mix 2D images and 3D "
                    "volumes in separate extractors"
                )
            if shape[1] != first[1]:
                raise TamaleInputError(
                    f"image stack {i} ({st.source}) has {shape[1]} channel(s) but stack 0 has "
                    f"{first[1]}: all stacks of one extractor need the same channels"
                )
        self._stacks = stacks

    @classmethod
    def from_sources(cls, sources: Sequence[Any], axes: str | None = None) -> PatchExtractor:
        """An extractor over numpy/dask/zarr arrays or TIFF/zarr paths (see :func:`image_stack`)."""
        if isinstance(sources, (np.ndarray, str, Path)) or hasattr(sources, "shape"):
            sources = [sources]
        return cls([image_stack(s, axes) for s in sources])

    @property
    def image_stacks(self) -> list[ImageStack]:
        """The stacks."""
        return self._stacks

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """Data shapes SC(Z)YX of the stacks (the ``data_shapes`` of a strategy)."""
        return [st.data_shape for st in self._stacks]

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return self._stacks[0].data_shape[1]

    @property
    def ndim(self) -> int:
        """Number of spatial axes (2 or 3)."""
        return len(self._stacks[0].data_shape) - 2

    def _stack(self, data_idx: int) -> ImageStack:
        if not isinstance(data_idx, (int, np.integer)) or not 0 <= data_idx < len(self._stacks):
            raise TamaleInputError(
                f"data_idx {data_idx!r} is out of range: the extractor has "
                f"{len(self._stacks)} image stack(s)"
            )
        return self._stacks[int(data_idx)]

    def extract_patch(
        self, data_idx: int, sample_idx: int, coords: Sequence[int], patch_size: Sequence[int]
    ) -> np.ndarray:
        """All channels of a patch, float32 C(Z)YX."""
        return self._stack(data_idx).extract_patch(sample_idx, None, coords, patch_size)

    def extract_channel_patch(
        self,
        data_idx: int,
        sample_idx: int,
        channels: Sequence[int] | None,
        coords: Sequence[int],
        patch_size: Sequence[int],
    ) -> np.ndarray:
        """Selected channels of a patch (``None``: all), float32 C(Z)YX."""
        return self._stack(data_idx).extract_patch(sample_idx, channels, coords, patch_size)

    def extract(self, spec: PatchSpecs, channels: Sequence[int] | None = None) -> np.ndarray:
        """The patch a specification describes, float32 C(Z)YX."""
        return self.extract_channel_patch(
            spec.data_idx, spec.sample_idx, channels, spec.coords, spec.patch_size
        )

    def image_stack(self, data_idx: int) -> ImageStack:
        """Stack ``data_idx``."""
        return self._stack(data_idx)

    def metadata(self, data_idx: int) -> ImageMetadata:
        """Metadata of stack ``data_idx``."""
        return self._stack(data_idx).metadata()

    def __len__(self) -> int:
        return len(self._stacks)

    def __repr__(self) -> str:
        return f"PatchExtractor(shapes={self.shapes})"
