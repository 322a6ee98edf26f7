"""Edits: what a proofreading tool changes, as data, before anything is written.

Every tool computes an edit without touching the labels; the caller decides how
to apply it. Two kinds exist:

:class:`SparseEdit`
    explicit voxel indices and their new values (split, morph, and any
    relabelling once materialised). The napari plugin hands these to
    ``Labels.data_setitem``, so napari's undo restores them.
:class:`RelabelEdit`
    "inside this region, replace these ids by those ids" (merge, delete,
    filter). Its size does not depend on the objects' size, so it describes an
    edit of a volume larger than RAM; :func:`iter_apply_edit` writes it block
    by block. :func:`iter_materialize` turns it into a :class:`SparseEdit` when
    that stays below a voxel limit (the plugin's undo limit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.progress import ProgressEvent, Throttle, Work, check, drain

from ._arrays import (
    Region,
    backend,
    block_grid,
    check_labels_dtype,
    count_blocks,
    is_writable,
    iter_blocks,
    normalize_region,
    read,
    write,
)

__all__ = [
    "Edit",
    "RelabelEdit",
    "RelabelPart",
    "SparseEdit",
    "apply_edit",
    "check_ids_fit",
    "iter_apply_edit",
    "iter_materialize",
]


def check_ids_fit(dtype: np.dtype | type, ids: Sequence[int] | np.ndarray) -> None:
    """Raise :class:`TamaleInputError` if an id does not fit the labels' dtype."""
    ids = np.asarray(ids)
    if ids.size == 0:
        return
    info = np.iinfo(np.dtype(dtype)) if np.dtype(dtype).kind in "ui" else None
    if info is None:
        return
    top = int(ids.max())
    if top > info.max:
        raise TamaleInputError(
            f"label id {top} does not fit the labels' type {np.dtype(dtype)} "
            f"(largest id {info.max}); convert the layer to uint32 first"
        )
    if int(ids.min()) < 0:
        raise TamaleInputError("label ids must not be negative")


@dataclass(frozen=True)
class SparseEdit:
    """New values at explicit voxel indices.

    Attributes
    ----------
    indices : tuple of ndarray of int64
        One array per axis (numpy fancy-index form, absolute coordinates).
    values : ndarray
        The new value of each voxel (same length as each index array).
    description : str
        What the edit does, for messages.
    new_ids : tuple of int
        Ids the edit creates (split), for the caller's information.
    """

    indices: tuple[np.ndarray, ...]
    values: np.ndarray
    description: str = ""
    new_ids: tuple[int, ...] = ()

    @property
    def size(self) -> int:
        """Number of voxels the edit writes."""
        return len(self.values)

    @classmethod
    def empty(cls, ndim: int, dtype: Any = np.uint32, description: str = "") -> SparseEdit:
        """An edit that changes nothing."""
        return cls(
            tuple(np.zeros(0, np.int64) for _ in range(ndim)),
            np.zeros(0, dtype),
            description,
        )

    @classmethod
    def from_crop(
        cls,
        mask: np.ndarray,
        values: np.ndarray | int,
        box: Sequence[slice],
        fixed: Sequence[int] = (),
        dtype: Any = np.uint32,
    ) -> SparseEdit:
        """The voxels of ``mask`` (a crop at ``box``, ``fixed`` axes squeezed out).

        ``values`` is one value or one per voxel of ``mask`` (C order).
        """
        where = np.nonzero(mask)
        n = len(where[0])
        full, j = [], 0
        for axis, sl in enumerate(box):
            if axis in fixed:
                full.append(np.full(n, sl.start, np.int64))
            else:
                full.append(where[j].astype(np.int64) + sl.start)
                j += 1
        vals = np.broadcast_to(np.asarray(values, dtype=dtype), (n,)).copy()
        return cls(tuple(full), vals)

    @classmethod
    def concatenate(
        cls,
        edits: Sequence[SparseEdit],
        ndim: int,
        dtype: Any,
        description: str = "",
        new_ids: tuple[int, ...] = (),
        shape: Sequence[int] | None = None,
    ) -> SparseEdit:
        """Join edits; a voxel written by several keeps the first value given.

        ``shape`` (the labels' shape) makes finding repeated voxels faster.
        """
        edits = [e for e in edits if e.size]
        if not edits:
            return cls.empty(ndim, dtype, description)
        idx = np.stack([np.concatenate([e.indices[a] for e in edits]) for a in range(ndim)])
        values = np.concatenate([e.values for e in edits]).astype(dtype, copy=False)
        if len(edits) > 1:
            if shape is not None:
                flat = np.ravel_multi_index(tuple(idx), tuple(int(s) for s in shape))
                _, first = np.unique(flat, return_index=True)
            else:
                _, first = np.unique(idx, axis=1, return_index=True)
            first.sort()
            idx, values = idx[:, first], values[first]
        return cls(tuple(idx), values, description, new_ids)


@dataclass(frozen=True)
class RelabelPart:
    """Inside ``region``, voxels equal to ``old_ids[i]`` become ``new_ids[i]``."""

    region: Region | None
    old_ids: np.ndarray
    new_ids: np.ndarray

    def __post_init__(self) -> None:
        order = np.argsort(self.old_ids, kind="stable")
        object.__setattr__(self, "old_ids", np.asarray(self.old_ids)[order])
        object.__setattr__(self, "new_ids", np.asarray(self.new_ids)[order])
        if len(self.old_ids) != len(self.new_ids):
            raise ValueError("old_ids and new_ids must have the same length")


@dataclass(frozen=True)
class RelabelEdit:
    """Replace ids inside regions; applied block by block (bounded memory).

    Attributes
    ----------
    parts : tuple of RelabelPart
        Disjoint regions with their id mapping (one part for merge or delete,
        one per plane for a per-image filter).
    description : str
        What the edit does, for messages.
    """

    parts: tuple[RelabelPart, ...]
    description: str = ""
    new_ids: tuple[int, ...] = field(default=())

    @property
    def is_empty(self) -> bool:
        return all(len(p.old_ids) == 0 for p in self.parts)


Edit = SparseEdit | RelabelEdit


def _map_block(block: np.ndarray, part: RelabelPart) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions in ``block`` to change and their new values, or None."""
    if len(part.old_ids) == 0:
        return None
    lo, hi = int(part.old_ids[0]), int(part.old_ids[-1])
    if hi - lo < 2**22:
        # lookup table over the ids' range: one O(n) gather
        inside = (block >= lo) & (block <= hi)
        if not inside.any():
            return None
        table = np.zeros(hi - lo + 1, dtype=bool)
        table[part.old_ids - lo] = True
        hit = np.zeros(block.shape, dtype=bool)
        hit[inside] = table[block[inside].astype(np.int64) - lo]
    else:
        hit = np.isin(block, part.old_ids)
    if not hit.any():
        return None
    where = np.nonzero(hit)
    old = block[where]
    new = part.new_ids[np.searchsorted(part.old_ids, old)]
    return where, new


def _n_blocks(labels: Any, edit: Edit) -> int:
    if isinstance(edit, RelabelEdit):
        return sum(count_blocks(labels, p.region) for p in edit.parts)
    return 1


def iter_materialize(
    labels: Any, edit: Edit, limit: int | None = None, *, cancel: Any = None
) -> Work[SparseEdit | None]:
    """The edit as a :class:`SparseEdit`, or None if it would exceed ``limit`` voxels.

    Reads the labels block by block (nothing is written). Voxels whose value
    would not change are left out.
    """
    check_labels_dtype(labels)
    ndim = labels.ndim
    if isinstance(edit, SparseEdit):
        if limit is not None and edit.size > limit:
            return None
        return edit
    total = _n_blocks(labels, edit)
    coords: list[np.ndarray] = []
    values: list[np.ndarray] = []
    count = 0
    step = 0
    throttle = Throttle()
    for part in edit.parts:
        for index, block in iter_blocks(labels, part.region):
            check(cancel)
            step += 1
            found = _map_block(block, part)
            if found is not None:
                where, new = found
                keep = new != block[where]
                offset = np.array([s.start for s in index], dtype=np.int64)[:, None]
                coords.append(np.stack(where)[:, keep].astype(np.int64) + offset)
                values.append(new[keep])
                count += int(keep.sum())
                if limit is not None and count > limit:
                    return None
            if throttle.ready() or step == total:
                yield ProgressEvent("scan", step, total, "finding the voxels to change")
    if not coords:
        return SparseEdit.empty(ndim, labels.dtype, edit.description)
    idx = np.concatenate(coords, axis=1)
    return SparseEdit(
        tuple(idx), np.concatenate(values).astype(labels.dtype), edit.description, edit.new_ids
    )


def _check_writable(labels: Any) -> None:
    if not is_writable(labels):
        raise TamaleInputError(
            "these labels are read-only (a dask array or a read-only store); convert "
            "the layer to a numpy array or a zarr store before editing it"
        )


def iter_apply_edit(labels: Any, edit: Edit, *, cancel: Any = None) -> Work[int]:
    """Write ``edit`` into ``labels`` in place, block by block; return voxels changed.

    Works on numpy and zarr arrays (a zarr store is rewritten only in the
    chunks the edit touches); read-only labels (dask) and ids that do not fit
    the dtype raise :class:`TamaleInputError` before anything is written. Not
    undoable: the napari plugin applies small edits through
    ``Labels.data_setitem`` instead.

    ``cancel`` is checked once, before the first write: a started write is
    finished, so an edit is never left half applied by a cancel. (Closing the
    generator early does stop it; drain it or let it run to the end.)
    """
    check_labels_dtype(labels)
    _check_writable(labels)
    check(cancel)
    changed = 0
    if isinstance(edit, RelabelEdit):
        for part in edit.parts:
            check_ids_fit(labels.dtype, part.new_ids)
        total = _n_blocks(labels, edit)
        step = 0
        throttle = Throttle()
        for part in edit.parts:
            for index, block in iter_blocks(labels, part.region):
                step += 1
                found = _map_block(block, part)
                if found is not None:
                    where, new = found
                    changed += int((block[where] != new).sum())
                    if backend(labels) == "numpy":
                        block[where] = new  # a view: written in place
                    else:
                        block = block.copy()
                        block[where] = new
                        write(labels, index, block)
                if throttle.ready() or step == total:
                    yield ProgressEvent("write", step, total, "writing the edit")
        return changed
    # sparse edit
    check_ids_fit(labels.dtype, edit.values)
    if edit.size == 0:
        return 0
    idx = np.stack(edit.indices)
    if backend(labels) == "numpy":
        changed = int((labels[edit.indices] != edit.values).sum())
        labels[edit.indices] = edit.values
        yield ProgressEvent("write", 1, 1, "writing the edit")
        return changed
    full = normalize_region(None, labels.shape)
    grid = np.asarray(block_grid(labels, full, target_bytes=4 * 2**20))
    keys = idx.T // grid
    _, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.reshape(-1)
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(int(group.max()) + 2))
    total = len(bounds) - 1
    for g in range(total):
        members = order[bounds[g] : bounds[g + 1]]
        pts = idx[:, members]
        lo, hi = pts.min(axis=1), pts.max(axis=1) + 1
        index = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
        block = read(labels, index).copy()
        local = tuple(pts - lo[:, None])
        changed += int((block[local] != edit.values[members]).sum())
        block[local] = edit.values[members]
        write(labels, index, block)
        yield ProgressEvent("write", g + 1, total, "writing the edit")
    return changed


def apply_edit(labels: Any, edit: Edit, *, progress: Any = None, cancel: Any = None) -> int:
    """Plain wrapper of :func:`iter_apply_edit`."""
    return drain(iter_apply_edit(labels, edit, cancel=cancel), progress, cancel)
