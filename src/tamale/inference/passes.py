"""Chunk-by-chunk passes over a run's arrays after the slabs are segmented.

Each pass works on a list of blocks (regions of the output chunk grid), so
memory is bounded by a few chunks whatever the volume, and blocks can be
spread over Dask workers: every block is written by exactly one task, and
blocks are whole output chunks, so writers never share a chunk.

Arrays are named by :class:`ArrayRef`: a zarr array inside the run's store
(opened by path, on any machine that sees the store) or, for in-memory runs,
the numpy array itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tamale.postprocess.consensus import (
    ConsensusPlan,
    TripleTable,
    apply_consensus,
    iter_blocks,
    vote_semantic,
)
from tamale.progress import ProgressEvent, Work

__all__ = [
    "ArrayRef",
    "block_groups",
    "iter_consensus_table",
    "iter_consensus_write",
    "iter_panoptic",
    "iter_relabel",
    "slice_lut",
]


@dataclass(frozen=True)
class ArrayRef:
    """A zarr array of a store (``store`` + ``path``) or an in-memory array."""

    store: str | None = None
    path: str | None = None
    array: Any = None

    def open(self) -> Any:
        if self.array is not None:
            return self.array
        import zarr

        return zarr.open_array(self.store, path=self.path, mode="r+")


def block_groups(
    shape: tuple[int, int, int],
    chunks: tuple[int, int, int],
    n_groups: int,
    max_bytes: int = 16 * 2**20,
) -> list[list[tuple[slice, ...]]]:
    """Blocks of whole output chunks covering ``shape``, split into about ``n_groups`` lists.

    A block is one chunk, widened along the last axis to as many chunks as fit in
    ``max_bytes`` of uint32 (fewer, larger reads and writes; still whole chunks, so two
    blocks never share a chunk).
    """
    per_chunk = 4 * int(np.prod(chunks))
    along = max(1, min(-(-shape[2] // chunks[2]), max_bytes // max(1, per_chunk)))
    blocks = list(iter_blocks(shape, (chunks[0], chunks[1], chunks[2] * along)))
    n_groups = max(1, min(n_groups, len(blocks)))
    size = -(-len(blocks) // n_groups)
    return [blocks[i : i + size] for i in range(0, len(blocks), size)]


def slice_lut(luts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One lookup table for a whole stack: ``(table, offsets)``.

    Piece ``k`` of slice ``s`` becomes ``table[offsets[s] + k]`` (``k = 0`` is
    background and maps to 0).
    """
    sizes = np.array([len(t) for t in luts], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    table = np.concatenate(luts).astype(np.uint32) if luts else np.zeros(1, np.uint32)
    return table, offsets


def iter_relabel(
    source: ArrayRef,
    dest: ArrayRef,
    regions: list[tuple[slice, ...]],
    table: np.ndarray,
    offsets: np.ndarray,
    axis: int,
) -> Work[int]:
    """Turn piece images into final labels, block by block (per-slice lookup)."""
    src, dst = source.open(), dest.open()
    for k, region in enumerate(regions):
        pieces = np.asarray(src[region])
        start = region[axis].start
        shape = [1, 1, 1]
        shape[axis] = pieces.shape[axis]
        offs = offsets[start : start + pieces.shape[axis]].reshape(shape)
        dst[region] = table[pieces.astype(np.int64) + offs]
        yield ProgressEvent("write", k + 1, len(regions))
    return len(regions)


def iter_consensus_table(
    views: tuple[ArrayRef, ArrayRef, ArrayRef],
    regions: list[tuple[slice, ...]],
    shape: tuple[int, int, int],
    max_id: int,
) -> Work[TripleTable]:
    """Count the voxel triples of the three views over some blocks."""
    arrays = [v.open() for v in views]
    table = TripleTable(shape, max_id)
    for k, region in enumerate(regions):
        a, b, c = (np.asarray(arr[region]) for arr in arrays)
        table.add(a, b, c, region)
        yield ProgressEvent("consensus", k + 1, len(regions))
    table.columns()  # compact before shipping it back
    return table


def iter_consensus_write(
    views: tuple[ArrayRef, ArrayRef, ArrayRef],
    dest: ArrayRef,
    regions: list[tuple[slice, ...]],
    plan: ConsensusPlan | None,
    vote_threshold: int,
) -> Work[int]:
    """Write consensus labels (``plan``) or a semantic vote (``plan=None``)."""
    arrays = [v.open() for v in views]
    dst = dest.open()
    for k, region in enumerate(regions):
        a, b, c = (np.asarray(arr[region]) for arr in arrays)
        if plan is None:
            dst[region] = vote_semantic(a, b, c, vote_threshold)
        else:
            dst[region] = apply_consensus(plan, a, b, c)
        yield ProgressEvent("consensus", k + 1, len(regions))
    return len(regions)


def iter_panoptic(
    parts: list[tuple[ArrayRef, int, bool]],
    dest: ArrayRef,
    regions: list[tuple[slice, ...]],
    label_divisor: int,
) -> Work[int]:
    """Combine per-class labels ``(array, class id, is_instance)`` into panoptic ids."""
    arrays = [(p.open(), cid, inst) for p, cid, inst in parts]
    dst = dest.open()
    for k, region in enumerate(regions):
        out = None
        for arr, cid, inst in arrays:
            lab = np.asarray(arr[region]).astype(np.uint32)
            if out is None:
                out = np.zeros(lab.shape, np.uint32)
            on = lab > 0
            out[on] = cid * label_divisor + (lab[on] if inst else 0)
        if out is not None:
            dst[region] = out
        yield ProgressEvent("panoptic", k + 1, len(regions))
    return len(regions)
