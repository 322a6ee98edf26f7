"""Find one object: where it is, how big, and a voxel at its centre (jump to label).

Two block-wise passes with bounded memory, so a zarr volume larger than RAM is
searched chunk by chunk: the first reads every block once and accumulates the
object's voxel count, coordinate sums (its centroid) and bounding box; the
second reads only the blocks inside that box and finds the object's voxel
nearest the centroid (an *anchor* guaranteed to lie on the object, even for
curved or hollow shapes whose centroid is outside them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.progress import ProgressEvent, Throttle, Work, check, drain

from ._arrays import Region, check_labels_dtype, count_blocks, iter_blocks, normalize_region

__all__ = ["LabelLocation", "iter_locate_label", "locate_label"]


@dataclass(frozen=True)
class LabelLocation:
    """Where an object lies (absolute data indices).

    Attributes
    ----------
    label_id : int
    voxels : int
        Size of the object.
    bbox_lo, bbox_hi : tuple of int
        Bounding box (``hi`` exclusive).
    centroid : tuple of float
        Mean voxel position.
    anchor : tuple of int
        The object's voxel nearest the centroid; its coordinates along the
        sliced axes give the object's central slice.
    """

    label_id: int
    voxels: int
    bbox_lo: tuple[int, ...]
    bbox_hi: tuple[int, ...]
    centroid: tuple[float, ...]
    anchor: tuple[int, ...]


def iter_locate_label(
    labels: Any, label_id: int, region: Region | None = None, *, cancel: Any = None
) -> Work[LabelLocation]:
    """Find ``label_id`` in ``labels`` (optionally only inside ``region``).

    Raises
    ------
    TamaleInputError
        The id is 0, negative, or not present.
    """
    check_labels_dtype(labels)
    label_id = int(label_id)
    if label_id <= 0:
        raise TamaleInputError("choose a label id of 1 or more (0 is background)")
    ndim = labels.ndim
    count = 0
    sums = np.zeros(ndim, dtype=np.float64)
    lo = np.full(ndim, np.iinfo(np.int64).max, np.int64)
    hi = np.full(ndim, -1, np.int64)
    total = count_blocks(labels, region)
    throttle = Throttle()
    for step, (index, block) in enumerate(iter_blocks(labels, region), start=1):
        check(cancel)
        mask = block == label_id
        if mask.any():
            offset = np.array([s.start for s in index], dtype=np.int64)
            n = int(mask.sum())
            count += n
            for axis in range(ndim):
                other = tuple(a for a in range(ndim) if a != axis)
                profile = mask.sum(axis=other) if other else mask.astype(np.int64)
                where = np.flatnonzero(profile)
                sums[axis] += float(np.dot(where + offset[axis], profile[where]))
                lo[axis] = min(lo[axis], int(where[0] + offset[axis]))
                hi[axis] = max(hi[axis], int(where[-1] + offset[axis] + 1))
        if throttle.ready() or step == total:
            yield ProgressEvent("search", step, total, f"looking for label {label_id}")
    if count == 0:
        raise TamaleInputError(f"label {label_id} does not exist in these labels")
    centroid = sums / count
    # second pass: only the blocks of the bounding box
    box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
    if region is not None:
        reg = normalize_region(region, labels.shape)
        box = tuple(slice(max(b.start, r.start), min(b.stop, r.stop)) for b, r in zip(box, reg))
    best, best_d = None, np.inf
    total = count_blocks(labels, box)
    for step, (index, block) in enumerate(iter_blocks(labels, box), start=1):
        check(cancel)
        where = np.nonzero(block == label_id)
        if len(where[0]):
            coords = np.stack(where, axis=1) + np.array([s.start for s in index])
            d = ((coords - centroid) ** 2).sum(axis=1)
            i = int(np.argmin(d))
            if d[i] < best_d:
                best_d, best = float(d[i]), coords[i]
        if throttle.ready() or step == total:
            yield ProgressEvent("centre", step, total, f"finding the centre of label {label_id}")
    assert best is not None  # the first pass found voxels inside this box
    return LabelLocation(
        label_id,
        count,
        tuple(int(v) for v in lo),
        tuple(int(v) for v in hi),
        tuple(float(c) for c in centroid),
        tuple(int(c) for c in best),
    )


def locate_label(
    labels: Any, label_id: int, region: Region | None = None, *, progress=None, cancel=None
) -> LabelLocation:
    """Plain wrapper of :func:`iter_locate_label`."""
    return drain(iter_locate_label(labels, label_id, region, cancel=cancel), progress, cancel)
