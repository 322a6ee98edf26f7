"""Where patches lie in their source array: boxes from provenance records.

A picked or stored patch is described by a :class:`~tamale.datasets.PatchProvenance`
(plane axis, plane index, a (rows, cols) box, multiscale level). This module turns
such a record into an axis-aligned box of the source array at any level, so picking
can keep new patches away from annotated ones:

* 2D images (``plane`` is None): the box itself;
* 2D stacks (``axis`` is None, ``plane`` set): one plane ``[plane, plane + 1)``;
* volumes (``axis`` xy, xz or yz): the plane one voxel thick along the normal axis.

Plane coordinates follow napari's view of each plane: the rows and columns of an
``xz`` plane are Z and X, of a ``yz`` plane Z and Y.

A box recorded at another level (or from a source of another shape) is scaled by the
ratio of the array shapes (``2**level`` when the record has no shape) and rounded
outwards, so the box returned always covers the recorded one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tamale.datasets.store import PatchProvenance

__all__ = ["PLANE_AXES", "Box", "boxes_intersect", "plane_axes", "region_of"]

PLANE_AXES: dict[str, tuple[int, int, int]] = {
    "xy": (0, 1, 2),
    "xz": (1, 0, 2),
    "yz": (2, 0, 1),
}
"""Plane name -> (normal axis, row axis, column axis) in a ZYX array."""


def plane_axes(axis: str | None, ndim: int) -> tuple[int | None, int, int]:
    """(normal, rows, cols) array axes of a plane; 2D images have no normal axis."""
    if ndim == 2:
        return None, 0, 1
    return PLANE_AXES[axis or "xy"]


@dataclass(frozen=True)
class Box:
    """A half-open box ``[lo, hi)`` in array coordinates."""

    lo: tuple[int, ...]
    hi: tuple[int, ...]

    @property
    def slices(self) -> tuple[slice, ...]:
        return tuple(slice(a, b) for a, b in zip(self.lo, self.hi))

    @property
    def empty(self) -> bool:
        return any(b <= a for a, b in zip(self.lo, self.hi))

    def intersects(self, other: Box) -> bool:
        return all(
            a0 < b1 and b0 < a1 for a0, a1, b0, b1 in zip(self.lo, self.hi, other.lo, other.hi)
        )


def boxes_intersect(lo: np.ndarray, size: Sequence[int], boxes: Sequence[Box]) -> np.ndarray:
    """(K,) bool: whether each box ``[lo[k], lo[k] + size)`` meets any of ``boxes``."""
    lo = np.asarray(lo, dtype=np.int64).reshape(-1, len(size))
    if not boxes or not len(lo):
        return np.zeros(len(lo), dtype=bool)
    b_lo = np.array([b.lo for b in boxes], dtype=np.int64)
    b_hi = np.array([b.hi for b in boxes], dtype=np.int64)
    hi = lo + np.asarray(size, dtype=np.int64)
    out = np.zeros(len(lo), dtype=bool)
    step = max(1, 2_000_000 // max(1, len(boxes)))
    for s in range(0, len(lo), step):
        a_lo, a_hi = lo[s : s + step, None, :], hi[s : s + step, None, :]
        meet = ((a_lo < b_hi[None]) & (b_lo[None] < a_hi)).all(axis=2)
        out[s : s + step] = meet.any(axis=1)
    return out


def _scale(record: PatchProvenance, shape: Sequence[int], level: int) -> list[float]:
    src = record.source_shape
    if src is not None and len(src) == len(shape) and all(s > 0 for s in src):
        return [n / s for n, s in zip(shape, src)]
    return [2.0 ** (record.level - level)] * len(shape)


def region_of(record: PatchProvenance, shape: Sequence[int], level: int = 0) -> Box | None:
    """The box a record covers in an array of ``shape`` read at ``level``.

    Returns None when the record cannot lie in such an array (a 2D-image patch and
    a 3D array, or a plane record and a 2D image) or falls wholly outside it.
    """
    ndim = len(shape)
    (r0, r1), (c0, c1) = record.box
    if ndim == 2:
        if record.plane is not None:
            return None
        lo, hi = [r0, c0], [r1, c1]
    elif ndim == 3:
        if record.plane is None:
            return None
        normal, rows, cols = plane_axes(record.axis, 3)
        lo, hi = [0, 0, 0], [0, 0, 0]
        lo[normal], hi[normal] = record.plane, record.plane + 1
        lo[rows], hi[rows] = r0, r1
        lo[cols], hi[cols] = c0, c1
    else:
        return None
    scale = _scale(record, shape, level)
    box_lo = tuple(max(0, math.floor(a * f)) for a, f in zip(lo, scale))
    box_hi = tuple(min(n, math.ceil(b * f)) for b, f, n in zip(hi, scale, shape))
    box = Box(box_lo, box_hi)
    return None if box.empty else box
