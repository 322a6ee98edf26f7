"""Morphological clean-up of objects: dilate, erode, open, close, fill holes.

Each object is processed on its own inside its bounding box padded by the
radius (one block-wise pass finds every box; no full-array pass per object).
Growth (dilate, close, fill holes) only claims background voxels, never
another object's; when two objects grow into the same voxel the smaller id
wins. Shrinking (erode, open) sets the removed voxels to background. In 2D
(the current plane) the footprint is a disk, in 3D a ball.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from tamale.errors import TamaleInputError
from tamale.progress import ProgressEvent, Throttle, Work, check, drain

from ._arrays import Region, fixed_axes, normalize_region, read
from .edits import SparseEdit
from .stats import iter_label_stats

__all__ = ["OPERATIONS", "Operation", "iter_morph_labels", "morph_labels", "morph_mask"]

Operation = Literal["dilate", "erode", "open", "close", "fill holes"]
OPERATIONS: tuple[str, ...] = ("dilate", "erode", "open", "close", "fill holes")


def _footprint(ndim: int, radius: int) -> np.ndarray:
    grid = np.indices((2 * radius + 1,) * ndim) - radius
    return (grid**2).sum(axis=0) <= radius**2


def morph_mask(
    mask: np.ndarray, operation: str, radius: int = 1, hole_size: int = 64
) -> np.ndarray:
    """Apply ``operation`` to a binary mask (any dimensionality).

    ``fill holes`` fills background regions enclosed by the mask with at most
    ``hole_size`` pixels; the others use a disk/ball of ``radius``.
    """
    from scipy import ndimage as ndi

    if operation == "fill holes":
        filled = ndi.binary_fill_holes(mask)
        holes = filled & ~mask
        if not holes.any():
            return mask.copy()
        lab, n = ndi.label(holes)
        sizes = np.bincount(lab.ravel(), minlength=n + 1)
        small = sizes <= hole_size
        small[0] = False
        return mask | small[lab]
    fp = _footprint(mask.ndim, radius)
    if operation == "dilate":
        return ndi.binary_dilation(mask, structure=fp)
    if operation == "erode":
        return ndi.binary_erosion(mask, structure=fp, border_value=1)
    if operation == "open":
        return (
            ndi.binary_dilation(
                ndi.binary_erosion(mask, structure=fp, border_value=1), structure=fp
            )
            & mask
        )
    if operation == "close":
        pad = radius + 1
        padded = np.pad(mask, pad)
        closed = ndi.binary_erosion(
            ndi.binary_dilation(padded, structure=fp), structure=fp, border_value=1
        )
        return closed[tuple(slice(pad, -pad) for _ in range(mask.ndim))] | mask
    raise TamaleInputError(
        f"unknown operation {operation!r}; choose one of {', '.join(OPERATIONS)}"
    )


def iter_morph_labels(
    labels: Any,
    region: Region | None = None,
    *,
    operation: str = "dilate",
    radius: int = 1,
    hole_size: int = 64,
    ids: np.ndarray | None = None,
    cancel: Any = None,
) -> Work[SparseEdit]:
    """The edit that applies ``operation`` to every object (or ``ids``) in ``region``.

    Parameters
    ----------
    labels : array
        numpy, zarr or dask labels (read only here).
    region : tuple, optional
        The plane (2D: disk footprint) or volume (3D: ball) to process.
    operation : str
        One of ``dilate``, ``erode``, ``open``, ``close``, ``fill holes``.
    radius : int
        Footprint radius in pixels (1 or more).
    hole_size : int
        Largest hole (pixels) that ``fill holes`` fills.
    ids : array, optional
        Process only these objects (the picked ones); default all.
    """
    if operation not in OPERATIONS:
        raise TamaleInputError(
            f"unknown operation {operation!r}; choose one of {', '.join(OPERATIONS)}"
        )
    if radius < 1:
        raise TamaleInputError("the radius must be 1 or more")
    if hole_size < 1:
        raise TamaleInputError("the hole size must be 1 or more")
    shape = tuple(labels.shape)
    ndim = len(shape)
    reg = normalize_region(region, shape)
    fixed = tuple(sorted(fixed_axes(region)))
    stats = yield from iter_label_stats(labels, region, bboxes=True, only_ids=ids, cancel=cancel)
    if ids is not None and len(stats) == 0:
        raise TamaleInputError("the picked objects are not in the plane or volume being edited")
    pad = radius if operation != "fill holes" else 1
    edits: list[SparseEdit] = []
    grow_first: list[SparseEdit] = []
    throttle = Throttle()
    n = len(stats)
    for k, (label_id, lo, hi) in enumerate(zip(stats.ids, stats.bbox_lo, stats.bbox_hi), start=1):
        check(cancel)
        box = tuple(
            slice(
                int(max(r.start, a - (0 if ax in fixed else pad))),
                int(min(r.stop, b + (0 if ax in fixed else pad))),
            )
            for ax, (a, b, r) in enumerate(zip(lo, hi, reg))
        )
        crop = read(labels, box)
        crop2 = np.squeeze(crop, axis=fixed) if fixed else crop
        mask = crop2 == label_id
        new = morph_mask(mask, operation, radius, hole_size)
        added = new & ~mask & (crop2 == 0)
        removed = mask & ~new
        for changed, value, bucket in ((added, label_id, grow_first), (removed, 0, edits)):
            if changed.any():
                bucket.append(SparseEdit.from_crop(changed, value, box, fixed, labels.dtype))
        if throttle.ready() or k == n:
            yield ProgressEvent("morph", k, n, f"{operation}: label {int(label_id)}")
    # objects are in ascending id order, so "first value wins" gives the smallest id
    description = f"{operation} (radius {radius}) on {n} label(s)"
    return SparseEdit.concatenate(grow_first + edits, ndim, labels.dtype, description, shape=shape)


def morph_labels(labels, region=None, *, progress=None, cancel=None, **kwargs) -> SparseEdit:
    """Plain wrapper of :func:`iter_morph_labels`."""
    return drain(iter_morph_labels(labels, region, cancel=cancel, **kwargs), progress, cancel)
