"""Patch specifications: where a patch lies in a list of image stacks.

A patching strategy maps a dataset index to a specification; an extractor turns a
specification into pixels. Specifications are small frozen dataclasses of plain ints
and int tuples, so they hash, compare, pickle and print well:

* :class:`PatchSpecs`: ``data_idx`` (which image stack), ``sample_idx`` (which sample
  of that stack, axis S), ``coords`` (top-left(-front) corner, spatial axes (Z)YX)
  and ``patch_size``;
* :class:`TileSpecs`: a prediction tile plus where its central crop goes when the
  predictions are stitched back together;
* :class:`UncorrelatedPatchSpecs`: a MicroSplit patch whose channels come from
  different locations (one location per channel).

:class:`PatchSpecsBatch` holds many specifications as arrays (the result of the
vectorised ``get_patch_specs(indices)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = [
    "PatchSpecs",
    "PatchSpecsBatch",
    "TileSpecs",
    "UncorrelatedPatchSpecs",
    "is_tile_specs",
    "is_uncorrelated_specs",
]


@dataclass(frozen=True, slots=True)
class PatchSpecs:
    """One patch in a list of image stacks.

    Attributes
    ----------
    data_idx : int
        Index of the image stack.
    sample_idx : int
        Index of the sample inside that stack (axis S of SC(Z)YX).
    coords : tuple of int
        Top-left(-front) corner of the patch, spatial axes (Z)YX. May lie partly
        outside the image (the extractor zero-pads).
    patch_size : tuple of int
        Size of the patch per spatial axis.
    """

    data_idx: int
    sample_idx: int
    coords: tuple[int, ...]
    patch_size: tuple[int, ...]

    def slices(self) -> tuple[slice, ...]:
        """Spatial slices of the patch (may reach outside the image)."""
        return tuple(slice(c, c + p) for c, p in zip(self.coords, self.patch_size))

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (CAREamics' ``PatchSpecs`` TypedDict layout)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class TileSpecs(PatchSpecs):
    """A prediction tile and its stitching information.

    Tiles overlap; each keeps only a central crop, and the crops of a sample
    partition it exactly, so stitching is a plain copy.

    Attributes
    ----------
    crop_coords : tuple of int
        Start of the kept crop, relative to the tile.
    crop_size : tuple of int
        Size of the kept crop.
    stitch_coords : tuple of int
        Where the crop goes in the image (= ``coords + crop_coords``).
    total_tiles : int
        Number of tiles of this image stack (all samples).
    """

    crop_coords: tuple[int, ...]
    crop_size: tuple[int, ...]
    stitch_coords: tuple[int, ...]
    total_tiles: int


@dataclass(frozen=True, slots=True)
class UncorrelatedPatchSpecs(PatchSpecs):
    """A MicroSplit patch whose channels come from different locations.

    The inherited fields describe the principal channel's patch.

    Attributes
    ----------
    principal_channel : int
        Channel whose location the inherited fields describe.
    all_data_idx, all_sample_idx : tuple of int
        Image stack and sample of every channel's patch.
    all_coords : tuple of tuple of int
        Corner of every channel's patch.
    """

    principal_channel: int
    all_data_idx: tuple[int, ...]
    all_sample_idx: tuple[int, ...]
    all_coords: tuple[tuple[int, ...], ...]


def is_tile_specs(spec: PatchSpecs) -> bool:
    """Whether ``spec`` is a :class:`TileSpecs`."""
    return isinstance(spec, TileSpecs)


def is_uncorrelated_specs(spec: PatchSpecs) -> bool:
    """Whether ``spec`` is an :class:`UncorrelatedPatchSpecs`."""
    return isinstance(spec, UncorrelatedPatchSpecs)


@dataclass(frozen=True)
class PatchSpecsBatch:
    """Many patch specifications as arrays (result of ``get_patch_specs``).

    Attributes
    ----------
    data_idx, sample_idx : ndarray of int64, shape (N,)
    coords : ndarray of int64, shape (N, ndim)
    patch_size : ndarray of int64, shape (N, ndim)
    crop_coords, crop_size, stitch_coords : ndarray of int64, shape (N, ndim), or None
        Present for tiles only.
    total_tiles : ndarray of int64, shape (N,), or None
        Present for tiles only.
    """

    data_idx: np.ndarray
    sample_idx: np.ndarray
    coords: np.ndarray
    patch_size: np.ndarray
    crop_coords: np.ndarray | None = None
    crop_size: np.ndarray | None = None
    stitch_coords: np.ndarray | None = None
    total_tiles: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.data_idx)

    def __getitem__(self, i: int) -> PatchSpecs:
        base = (
            int(self.data_idx[i]),
            int(self.sample_idx[i]),
            tuple(int(c) for c in self.coords[i]),
            tuple(int(p) for p in self.patch_size[i]),
        )
        if self.crop_coords is None:
            return PatchSpecs(*base)
        assert self.crop_size is not None and self.stitch_coords is not None
        assert self.total_tiles is not None
        return TileSpecs(
            *base,
            crop_coords=tuple(int(c) for c in self.crop_coords[i]),
            crop_size=tuple(int(c) for c in self.crop_size[i]),
            stitch_coords=tuple(int(c) for c in self.stitch_coords[i]),
            total_tiles=int(self.total_tiles[i]),
        )

    def __iter__(self) -> Iterator[PatchSpecs]:
        return (self[i] for i in range(len(self)))

    def to_list(self) -> list[PatchSpecs]:
        """The specifications as a list of :class:`PatchSpecs` / :class:`TileSpecs`."""
        return list(self)
