"""ImageCollection: an image, its optional sampling mask and its chunking.

The input of :class:`~tamale.patching.samplers.PatchSampler` and
:class:`~tamale.patching.blue_noise.BlueNoisePatchSampler` (after zarrdataset's
``ImageCollection``, reduced to what sampling needs). The mask may have any
resolution: mask pixel ``m`` covers the image box ``[m * N / M, (m + 1) * N / M)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.patching.image_stack import parse_axes
from tamale.patching.mask_coverage import MaskCoverage

__all__ = ["ImageCollection", "Window"]

Window = dict[str, slice]
"""A patch or chunk window: one slice per spatial image axis (may reach outside)."""


class ImageCollection:
    """An image to sample patches from, with an optional mask.

    Parameters
    ----------
    image : array-like
        numpy, dask or zarr array (anything with ``shape`` and basic indexing).
    mask : array-like of bool, optional
        Where patches may come from, over the image's spatial axes (Z, Y, X present
        in ``axes``, same order) at any resolution. ``None``: everywhere. Read once.
    axes : str, optional
        Axis letters of ``image`` (from STCZYX; default ``"YX"`` / ``"ZYX"`` by dimension).
    """

    def __init__(self, image: Any, mask: Any = None, *, axes: str | None = None) -> None:
        if not hasattr(image, "shape"):
            image = np.asarray(image)
        self.image = image
        self.axes = parse_axes(axes, len(image.shape))
        self.spatial_axes = "".join(a for a in self.axes if a in "ZYX")
        size = dict(zip(self.axes, (int(s) for s in image.shape)))
        self.shape: dict[str, int] = {a: size[a] for a in self.spatial_axes}
        self.chunks = self._chunks(image, size)
        spatial = tuple(self.shape.values())
        if mask is None:
            self.mask = None
            self._coverage = MaskCoverage(np.ones((1,) * len(spatial), dtype=bool), spatial)
        else:
            lazy = hasattr(mask, "shape") and not isinstance(mask, np.ndarray)
            m = np.asarray(mask[...]) if lazy else np.asarray(mask)
            if m.dtype != bool:
                m = m != 0
            self.mask = m
            self._coverage = MaskCoverage(m, spatial)

    def _chunks(self, image: Any, size: Mapping[str, int]) -> dict[str, int]:
        # zarr: shards when sharded (the unit stored in one object), else chunks
        chunks = getattr(image, "shards", None) or getattr(image, "chunks", None)
        if chunks is not None and not all(isinstance(c, (int, np.integer)) for c in chunks):
            chunks = getattr(image, "chunksize", None)  # dask: tuple of tuples
        if chunks is None:
            chunks = image.shape
        by_axis = dict(zip(self.axes, (int(c) for c in chunks)))
        return {a: by_axis[a] for a in self.spatial_axes}

    @property
    def coverage(self) -> MaskCoverage:
        """The mask's coverage calculator."""
        return self._coverage

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Sizes of the spatial axes, in image order."""
        return tuple(self.shape.values())

    def read(self, window: Mapping[str, slice]) -> np.ndarray:
        """Pixels of a window in the image's axis order; outside the image is 0.

        Axes missing from ``window`` are read whole.
        """
        lo, hi, src, dst, out_shape = [], [], [], [], []
        for a, n in zip(self.axes, self.image.shape):
            sl = window.get(a, slice(0, n))
            start = 0 if sl.start is None else int(sl.start)
            stop = int(n) if sl.stop is None else int(sl.stop)
            if stop < start:
                raise TamaleInputError(f"window along {a} is reversed: {sl}")
            cs, ce = min(max(start, 0), n), min(max(stop, 0), n)
            lo.append(start)
            hi.append(stop)
            src.append(slice(cs, ce))
            dst.append(slice(cs - start, ce - start))
            out_shape.append(stop - start)
        out = np.zeros(out_shape, dtype=self.image.dtype)
        if all(s.stop > s.start for s in src):
            block = self.image[tuple(src)]
            if hasattr(block, "compute"):
                block = block.compute(scheduler="synchronous")
            out[tuple(dst)] = np.asarray(block)
        return out

    def __repr__(self) -> str:
        mask = "none" if self.mask is None else str(self.mask.shape)
        return f"ImageCollection(axes={self.axes!r}, shape={self.shape}, mask={mask})"
