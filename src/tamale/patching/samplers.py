"""PatchSampler: patches on a stride grid, kept where a mask covers them enough.

After zarrdataset's sampler, with its defects fixed:

* ``min_area`` >= 1 is a pixel count and < 1 a fraction of the *patch* footprint, and
  coverage is measured over the patch footprint (not the stride cell), exactly;
* ``allow_incomplete_patches=False`` never returns a patch reaching past the image;
* the mask may have any resolution, is read once per image and is never expanded to
  image resolution (summed-area table at mask resolution).

:meth:`PatchSampler.compute_chunks` splits the image into windows aligned with its
storage chunks (rounded up to a multiple of the stride) that hold at least one patch;
:meth:`PatchSampler.compute_patches` lists the patches whose top-left lies in one
chunk. Every patch belongs to exactly one chunk.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.patching.image_collection import ImageCollection, Window

__all__ = ["PatchSampler"]


def _per_axis(value: Any, axes: str, name: str, default: int | None) -> dict[str, int] | None:
    if value is None:
        return None if default is None else dict.fromkeys(axes, default)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return dict.fromkeys(axes, int(value))
    if isinstance(value, Mapping):
        missing = [a for a in axes if a not in value]
        extra = [a for a in value if a not in axes]
        if missing or extra:
            raise TamaleInputError(
                f"{name} {dict(value)} must give a size for each of the spatial axes "
                f"{axes!r} and no other axis"
            )
        out = {a: value[a] for a in axes}
    else:
        try:
            values = list(value)
        except TypeError:
            raise TamaleInputError(
                f"{name} must be an int, a sequence or a dict, got {value!r}"
            ) from None
        if len(values) != len(axes):
            raise TamaleInputError(
                f"{name} has {len(values)} values but spatial_axes {axes!r} has {len(axes)}: "
                f"give one value per axis, or set spatial_axes (e.g. spatial_axes='YX' for 2D "
                "patches)"
            )
        out = dict(zip(axes, values))
    for a, v in out.items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TamaleInputError(f"{name} along {a} must be an int, got {v!r}")
    return {a: int(v) for a, v in out.items()}


class PatchSampler:
    """Grid sampler of image patches restricted by a mask.

    Parameters
    ----------
    patch_size : int, sequence of int or dict
        Patch size per axis of ``spatial_axes`` (an int: the same on every axis).
    stride : int, sequence of int or dict, optional
        Step between patch starts (default: the patch size).
    pad : int, sequence of int or dict, optional
        Pixels added on both sides of every returned window (not used for coverage).
    min_area : int or float, default 1
        A patch is kept when the mask covers at least this much of its footprint:
        >= 1 is a number of image pixels, in (0, 1) a fraction of the patch area.
    spatial_axes : str, default "ZYX"
        Axes patches are taken along. Image spatial axes not listed get patch size 1
        (e.g. ``"YX"`` over a ZYX volume gives 2D patches from every slice); listed
        axes the image lacks are ignored when ``patch_size`` is an int, and are an
        error when sizes are given per axis.
    allow_incomplete_patches : bool, default False
        Also start patches whose footprint reaches past the image end (zero-padded on
        reading), so an image smaller than the patch gives one patch. When False, no
        patch ever reaches past the image.
    """

    def __init__(
        self,
        patch_size: int | Sequence[int] | Mapping[str, int],
        stride: int | Sequence[int] | Mapping[str, int] | None = None,
        pad: int | Sequence[int] | Mapping[str, int] | None = None,
        min_area: float = 1,
        spatial_axes: str = "ZYX",
        allow_incomplete_patches: bool = False,
    ) -> None:
        if not isinstance(spatial_axes, str) or not spatial_axes:
            raise TamaleInputError(
                f"spatial_axes must be a string such as 'ZYX', got {spatial_axes!r}"
            )
        spatial_axes = spatial_axes.upper()
        if any(a not in "ZYX" for a in spatial_axes) or len(set(spatial_axes)) != len(spatial_axes):
            raise TamaleInputError(
                f"spatial_axes {spatial_axes!r} must use each of Z, Y, X at most once"
            )
        self.spatial_axes = spatial_axes
        self._explicit = not isinstance(patch_size, (int, np.integer))
        ps = _per_axis(patch_size, spatial_axes, "patch_size", None)
        assert ps is not None
        self._patch_size = ps
        self._stride = _per_axis(stride, spatial_axes, "stride", None) or dict(ps)
        self._pad = _per_axis(pad, spatial_axes, "pad", 0) or {}
        for name, vals, low in (
            ("patch_size", ps, 1),
            ("stride", self._stride, 1),
            ("pad", self._pad, 0),
        ):
            bad = {a: v for a, v in vals.items() if v < low}
            if bad:
                raise TamaleInputError(f"{name} must be >= {low} on every axis, got {vals}")
        try:
            area = float(min_area)
        except (TypeError, ValueError):
            raise TamaleInputError(f"min_area must be a number, got {min_area!r}") from None
        if not area > 0 or math.isinf(area) or (area >= 1 and area != int(area)):
            raise TamaleInputError(
                f"min_area must be a pixel count (an int >= 1) or a fraction of the patch "
                f"area in (0, 1), got {min_area!r}"
            )
        self._min_area = min_area
        self._allow_incomplete = bool(allow_incomplete_patches)

    # --------------------------------------------------------------- geometry
    def _geometry(
        self, coll: ImageCollection
    ) -> tuple[str, list[int], list[int], list[int], list[int]]:
        """(image spatial axes, shape, patch, stride, pad) per image spatial axis."""
        axes = coll.spatial_axes
        if self._explicit:
            lacking = [a for a in self.spatial_axes if a not in axes and self._patch_size[a] > 1]
            if lacking:
                raise TamaleInputError(
                    f"the patch size gives axis {lacking[0]} but the image has spatial axes "
                    f"{axes!r}: use a {len(axes)}D patch size (spatial_axes={axes!r})"
                )
        shape = [coll.shape[a] for a in axes]
        ps = [self._patch_size.get(a, 1) for a in axes]
        st = [self._stride.get(a, 1) for a in axes]
        pad = [self._pad.get(a, 0) for a in axes]
        return axes, shape, ps, st, pad

    def _last_start(self, shape: Sequence[int], ps: Sequence[int], axes: str) -> list[int]:
        out = []
        for a, n, p in zip(axes, shape, ps):
            if self._allow_incomplete:
                out.append(n - 1)
            elif p > n:
                raise TamaleInputError(
                    f"the patch ({p} px along {a}) is larger than the image ({n} px): use a "
                    "smaller patch, or allow_incomplete_patches=True for one zero-padded patch"
                )
            else:
                out.append(n - p)
        return out

    def _threshold(self, coll: ImageCollection, ps: Sequence[int]) -> int:
        area = math.prod(ps)
        need = (
            Fraction(self._min_area) * area if self._min_area < 1 else Fraction(int(self._min_area))
        )
        if need > area:
            raise TamaleInputError(
                f"min_area {self._min_area} is larger than the patch footprint ({area} px): "
                "no patch can satisfy it; lower min_area or use a fraction in (0, 1)"
            )
        return coll.coverage.threshold(need)

    def _check_mask(self, coll: ImageCollection) -> None:
        if coll.coverage.n_true == 0:
            raise TamaleInputError(
                "the mask is empty (no True pixel), so there are no patches to sample: paint "
                "where patches may come from, or pass no mask to sample everywhere"
            )

    def _chunk_size(self, coll: ImageCollection, axes: str, st: Sequence[int]) -> list[int]:
        return [max(1, -(-coll.chunks[a] // s)) * s for a, s in zip(axes, st)]

    def _starts_in(self, coll: ImageCollection, chunk: Mapping[str, slice] | None) -> np.ndarray:
        axes, shape, ps, st, _ = self._geometry(coll)
        last = self._last_start(shape, ps, axes)
        per_axis = []
        for a, n, s, e in zip(axes, shape, st, last):
            sl = chunk.get(a, slice(0, n)) if chunk is not None else slice(0, n)
            lo = 0 if sl.start is None else max(int(sl.start), 0)
            hi = n if sl.stop is None else min(int(sl.stop), n)
            first = -(-lo // s) * s
            per_axis.append(np.arange(first, min(hi - 1, e) + 1, s, dtype=np.int64))
        if any(len(p) == 0 for p in per_axis):
            return np.zeros((0, len(axes)), dtype=np.int64)
        cov = coll.coverage.coverage_grid(per_axis, ps)
        keep = np.nonzero(cov >= self._threshold(coll, ps))
        return np.stack([p[k] for p, k in zip(per_axis, keep)], axis=1)

    # --------------------------------------------------------------- public API
    def compute_toplefts(
        self, image_collection: ImageCollection, chunk_tlbr: Mapping[str, slice] | None = None
    ) -> np.ndarray:
        """Top-left corners of the kept patches, int64 (K, ndim) over the image's spatial axes.

        Parameters
        ----------
        image_collection : ImageCollection
            The image and its mask.
        chunk_tlbr : dict of str to slice, optional
            Restrict to patches whose top-left lies in this window (default: all).
        """
        self._check_mask(image_collection)
        return self._starts_in(image_collection, chunk_tlbr)

    def compute_chunks(self, image_collection: ImageCollection) -> list[Window]:
        """Chunk windows (aligned to the storage chunks) that hold at least one patch.

        Chunk sizes are the image's chunk sizes rounded up to a multiple of the stride.

        Raises
        ------
        TamaleInputError
            When the mask is empty or no patch meets ``min_area``.
        """
        coll = image_collection
        self._check_mask(coll)
        axes, shape, _, st, _ = self._geometry(coll)
        size = np.asarray(self._chunk_size(coll, axes, st))
        chunks: list[Window] = []
        # one slab of chunks along the first axis at a time: memory stays O(slab starts)
        for lo in range(0, shape[0], int(size[0])):
            slab = {axes[0]: slice(lo, min(lo + int(size[0]), shape[0]))}
            starts = self._starts_in(coll, slab)
            if not len(starts):
                continue
            for corner in np.unique(starts // size, axis=0) * size:
                chunks.append(
                    {
                        a: slice(int(c), int(min(c + s, n)))
                        for a, c, s, n in zip(axes, corner, size, shape)
                    }
                )
        if not chunks:
            self._no_patches(coll)
        return chunks

    def _no_patches(self, coll: ImageCollection) -> None:
        raise TamaleInputError(
            f"no patch of size {self._patch_size} has at least min_area={self._min_area} "
            "of its footprint inside the mask: lower min_area, use a smaller patch or a "
            "larger mask"
        )

    def compute_patches(
        self, image_collection: ImageCollection, chunk_tlbr: Mapping[str, slice]
    ) -> list[Window]:
        """Patch windows whose top-left lies in ``chunk_tlbr``, with ``pad`` added."""
        starts = self.compute_toplefts(image_collection, chunk_tlbr)
        return self._windows(image_collection, starts)

    def _windows(self, coll: ImageCollection, starts: np.ndarray) -> list[Window]:
        axes, _, ps, _, pad = self._geometry(coll)
        lo = (starts - np.asarray(pad)).tolist()
        hi = (starts + np.asarray(ps) + np.asarray(pad)).tolist()
        return [{a: slice(b, e) for a, b, e in zip(axes, lrow, hrow)} for lrow, hrow in zip(lo, hi)]

    def iter_windows(self, image_collection: ImageCollection) -> Iterable[Window]:
        """Every patch window of the image, chunk by chunk."""
        for chunk in self.compute_chunks(image_collection):
            yield from self.compute_patches(image_collection, chunk)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(patch_size={self._patch_size}, stride={self._stride}, "
            f"pad={self._pad}, min_area={self._min_area}, spatial_axes={self.spatial_axes!r}, "
            f"allow_incomplete_patches={self._allow_incomplete})"
        )
