"""Per-object statistics in one block-wise pass: sizes, bounding boxes, borders.

One scan over a region gives every object's voxel count, bounding box and
whether it touches the region's border, vectorised per block (``bincount``
through a compacting lookup table, ``ndimage.find_objects``), never one pass
per object. With ``per_plane_axis`` each plane along that axis counts as its
own image ("2D patches"): an id in two planes is two objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tamale.progress import ProgressEvent, Throttle, Work, check

from ._arrays import Region, count_blocks, iter_blocks, normalize_region

__all__ = ["LabelStats", "iter_label_stats", "unique_counts"]

_TABLE_LIMIT = 2**24  # widest id range handled with a dense lookup table


def unique_counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and their counts (``bincount`` when the range is small)."""
    flat = values.reshape(-1)
    if flat.size == 0:
        return np.zeros(0, values.dtype), np.zeros(0, np.int64)
    lo, hi = int(flat.min()), int(flat.max())
    if hi - lo < _TABLE_LIMIT and flat.dtype.kind in "uib":
        counts = np.bincount((flat - lo).astype(np.intp, copy=False), minlength=hi - lo + 1)
        ids = np.flatnonzero(counts)
        return (ids + lo).astype(values.dtype), counts[ids].astype(np.int64)
    ids, counts = np.unique(flat, return_counts=True)
    return ids, counts.astype(np.int64)


def _compact(block: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``block`` with ``ids[i]`` replaced by ``i + 1`` and everything else by 0."""
    lo, hi = int(ids[0]), int(ids[-1])
    if hi - lo < _TABLE_LIMIT:
        table = np.zeros(hi - lo + 2, dtype=np.int32)
        table[ids.astype(np.int64) - lo] = np.arange(1, len(ids) + 1, dtype=np.int32)
        shifted = block.astype(np.int64) - lo
        shifted[(shifted < 0) | (shifted > hi - lo)] = hi - lo + 1  # -> 0
        return table[shifted]
    pos = np.searchsorted(ids, block)
    pos = np.clip(pos, 0, len(ids) - 1)
    hit = ids[pos] == block
    return np.where(hit, pos + 1, 0).astype(np.int32)


@dataclass
class LabelStats:
    """Statistics of the objects in a region.

    Attributes
    ----------
    ids : ndarray
        Object ids, sorted (background 0 excluded). With ``per_plane_axis``
        there is one entry per (plane, id) pair, sorted by plane then id.
    planes : ndarray of int64 or None
        The plane of each entry when counted per plane.
    counts : ndarray of int64
        Voxels of each object.
    bbox_lo, bbox_hi : ndarray of int64, shape (n, ndim) or None
        Bounding box (absolute indices, ``hi`` exclusive) when requested.
    touches_border : ndarray of bool or None
        Whether the object touches the region's border when requested.
    """

    ids: np.ndarray
    counts: np.ndarray
    planes: np.ndarray | None = None
    bbox_lo: np.ndarray | None = None
    bbox_hi: np.ndarray | None = None
    touches_border: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)


class _Accumulator:
    """Merges per-block results keyed by (plane, id)."""

    def __init__(self, ndim: int, bboxes: bool) -> None:
        self.ndim = ndim
        self.bboxes = bboxes
        self.keys: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.border: list[np.ndarray] = []

    def add(self, keys, counts, lo=None, hi=None) -> None:
        self.keys.append(keys)
        self.counts.append(counts)
        if self.bboxes:
            self.lo.append(lo)
            self.hi.append(hi)

    def finish(self) -> tuple[np.ndarray, ...]:
        if not self.keys:
            empty = np.zeros((0, 2), np.int64)
            return empty, np.zeros(0, np.int64), None, None
        keys = np.concatenate(self.keys)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        counts = np.bincount(inverse, weights=np.concatenate(self.counts), minlength=len(uniq))
        lo = hi = None
        if self.bboxes:
            big = np.iinfo(np.int64).max
            lo = np.full((len(uniq), self.ndim), big, np.int64)
            hi = np.full((len(uniq), self.ndim), -1, np.int64)
            np.minimum.at(lo, inverse, np.concatenate(self.lo))
            np.maximum.at(hi, inverse, np.concatenate(self.hi))
        return uniq, counts.astype(np.int64), lo, hi


def iter_label_stats(
    labels: Any,
    region: Region | None = None,
    *,
    per_plane_axis: int | None = None,
    bboxes: bool = False,
    border: bool = False,
    only_ids: np.ndarray | None = None,
    cancel: Any = None,
) -> Work[LabelStats]:
    """Count every object in ``region`` (and optionally its box and border contact).

    Parameters
    ----------
    labels : array
        numpy, zarr or dask labels.
    region : tuple, optional
        Part of the labels to measure (default: all).
    per_plane_axis : int, optional
        Treat each plane along this axis as a separate image.
    bboxes : bool
        Also compute bounding boxes.
    border : bool
        Also find objects touching the region's border. The border is every
        face of the region along axes that are not fixed by ``region`` and are
        not ``per_plane_axis``.
    only_ids : array, optional
        Measure only these ids (faster when few are wanted).
    """
    shape = tuple(labels.shape)
    ndim = len(shape)
    reg = normalize_region(region, shape)
    fixed = {a for a, item in enumerate(region or ()) if not isinstance(item, slice)}
    border_axes = [a for a in range(ndim) if a not in fixed and a != per_plane_axis]
    wanted = None if only_ids is None else np.unique(np.asarray(only_ids))
    acc = _Accumulator(ndim, bboxes)
    border_keys: list[np.ndarray] = []
    total = count_blocks(labels, region)
    throttle = Throttle()
    for step, (index, block) in enumerate(iter_blocks(labels, region), start=1):
        check(cancel)
        offset = np.array([s.start for s in index], dtype=np.int64)
        if per_plane_axis is None:
            planes = [(None, block)]
        else:
            planes = [
                (index[per_plane_axis].start + i, np.take(block, [i], axis=per_plane_axis))
                for i in range(block.shape[per_plane_axis])
            ]
        for plane, data in planes:
            plane_offset = offset.copy()
            if plane is not None:
                plane_offset[per_plane_axis] = plane
            if wanted is not None:
                data = np.where(np.isin(data, wanted), data, 0)
            ids, counts = unique_counts(data)
            keep = ids != 0
            ids, counts = ids[keep], counts[keep]
            if len(ids) == 0:
                continue
            key_plane = np.full(len(ids), -1 if plane is None else plane, np.int64)
            keys = np.stack([key_plane, ids.astype(np.int64)], axis=1)
            if bboxes:
                from scipy import ndimage as ndi

                compact = _compact(data, ids)
                boxes = ndi.find_objects(compact, max_label=len(ids))
                lo = np.array([[s.start for s in b] for b in boxes], np.int64) + plane_offset
                hi = np.array([[s.stop for s in b] for b in boxes], np.int64) + plane_offset
                acc.add(keys, counts, lo, hi)
            else:
                acc.add(keys, counts)
            if border:
                for a in border_axes:
                    for face, at in ((0, reg[a].start), (-1, reg[a].stop - 1)):
                        edge = plane_offset[a] + (0 if face == 0 else data.shape[a] - 1)
                        if edge != at:
                            continue
                        face_ids = np.unique(np.take(data, face, axis=a))
                        face_ids = face_ids[face_ids != 0].astype(np.int64)
                        if len(face_ids):
                            fp = np.full(len(face_ids), -1 if plane is None else plane, np.int64)
                            border_keys.append(np.stack([fp, face_ids], axis=1))
        if throttle.ready() or step == total:
            yield ProgressEvent("measure", step, total, "measuring objects")
    keys, counts, lo, hi = acc.finish()
    touches = None
    if border:
        touches = np.zeros(len(keys), bool)
        if border_keys and len(keys):
            bk = np.unique(np.concatenate(border_keys), axis=0)
            pos = _row_lookup(keys, bk)
            touches[pos[pos >= 0]] = True
    ids = keys[:, 1].astype(labels.dtype) if len(keys) else np.zeros(0, labels.dtype)
    planes = keys[:, 0] if per_plane_axis is not None else None
    return LabelStats(ids, counts, planes, lo, hi, touches)


def _row_lookup(table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Index of each of ``rows`` in the sorted unique ``table`` of (plane, id), or -1."""
    if len(table) == 0:
        return np.full(len(rows), -1, np.int64)
    lookup = {(int(p), int(i)): n for n, (p, i) in enumerate(table)}
    return np.array([lookup.get((int(p), int(i)), -1) for p, i in rows], dtype=np.int64)
