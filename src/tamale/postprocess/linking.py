"""Link the 2D pieces of a stack into 3D objects, filter them and number them.

The rules are empanada's slice-to-slice tracking, computed on a compact graph
instead of on pixels:

1. **Forward pass.** Slice 0's pieces start objects. Each later slice is
   matched against the previous slice, where pieces that already share an
   object id count as one region: the Hungarian assignment maximising IoU
   pairs regions with pieces, and pairs with IoU >= ``iou_threshold`` (0.25)
   inherit the id. A piece left unmatched whose largest intersection-over-its-
   own-area (IoA) with a region is >= ``ioa_threshold`` (0.25) joins that
   region (a false split). Any other piece starts a new object.
2. **Backward pass.** From the last slice down, each slice's objects (its
   pieces grouped by forward id) are matched against the following slice with
   the same rules; a match or IoA merge takes the following slice's id, an
   unmatched object keeps its forward id. Branches that join further up the
   stack (a "Y") thereby end up with one id.

Only consecutive slices are compared: an object missing from one slice is
cut in two (it "leaves and re-enters" as two objects), as in empanada; the
median filter of the probabilities is what bridges one-slice gaps.

Everything a pass needs is per piece (area, box) and per pair of consecutive
slices (overlap counts) -- see :class:`StackGraph` -- so linking a stack of any
size costs a few bytes per piece, never a dense volume.

After linking, :func:`summarize_objects` gives each object's voxel count,
bounding box and first appearance, :func:`select_objects` drops objects
smaller than ``min_size`` voxels or thinner than ``min_extent`` along any axis,
and numbers the rest ``1..N`` in order of first appearance along the stack
(slice, then raster order of the piece), so the numbering does not depend on
how the stack was cut into slabs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from tamale.errors import TamaleInputError

__all__ = [
    "ObjectTable",
    "StackGraph",
    "link_instance_stack",
    "link_stack",
    "piece_luts",
    "select_objects",
    "summarize_objects",
]

_EMPTY = np.zeros(0, np.int64)


@dataclass
class StackGraph:
    """Piece statistics and consecutive-slice overlaps of one class along one stack.

    Attributes
    ----------
    areas : list of ndarray (int64)
        ``areas[z][k - 1]`` is the pixel count of piece ``k`` of slice ``z``.
    boxes : list of ndarray (int32, shape (n, 4))
        In-plane boxes ``(row_start, row_stop, col_start, col_stop)``.
    overlaps : list of (prev_ids, cur_ids, counts)
        ``overlaps[z]`` are the overlapping pairs between slice ``z - 1`` and
        slice ``z`` (1-based piece ids); ``overlaps[0]`` is empty.
    """

    areas: list[np.ndarray] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    overlaps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    @property
    def n_slices(self) -> int:
        return len(self.areas)

    @property
    def n_pieces(self) -> int:
        return int(sum(len(a) for a in self.areas))

    def append(
        self,
        areas: np.ndarray,
        boxes: np.ndarray,
        overlap: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    ) -> None:
        """Add the next slice (``overlap`` with the slice before it; None for none)."""
        self.areas.append(np.asarray(areas, np.int64))
        self.boxes.append(np.asarray(boxes, np.int32).reshape(-1, 4))
        self.overlaps.append(overlap if overlap is not None else (_EMPTY, _EMPTY, _EMPTY))


def _assign(rows: np.ndarray, cols: np.ndarray, iou: np.ndarray) -> np.ndarray:
    """Indices of the edges chosen by a max-IoU assignment (per connected component)."""
    n_edges = len(rows)
    if n_edges == 0:
        return np.zeros(0, np.int64)
    row_deg = np.bincount(rows)
    col_deg = np.bincount(cols)
    simple = (row_deg[rows] == 1) & (col_deg[cols] == 1)
    chosen = [np.flatnonzero(simple)]
    rest = np.flatnonzero(~simple)
    if len(rest):
        r, c = rows[rest], cols[rest]
        ur, ri = np.unique(r, return_inverse=True)
        uc, ci = np.unique(c, return_inverse=True)
        n_r = len(ur)
        graph = coo_matrix(
            (np.ones(len(rest)), (ri, n_r + ci)), shape=(n_r + len(uc), n_r + len(uc))
        )
        _, comp = connected_components(graph, directed=False)
        edge_comp = comp[ri]
        order = np.argsort(edge_comp, kind="stable")
        bounds = np.flatnonzero(np.diff(edge_comp[order])) + 1
        for group in np.split(order, bounds):
            gr, gri = np.unique(ri[group], return_inverse=True)
            gc, gci = np.unique(ci[group], return_inverse=True)
            matrix = np.zeros((len(gr), len(gc)))
            matrix[gri, gci] = iou[rest[group]]
            mr, mc = linear_sum_assignment(matrix, maximize=True)
            lookup = {(a, b): e for a, b, e in zip(gri, gci, rest[group])}
            chosen.append(
                np.array([lookup[(a, b)] for a, b in zip(mr, mc) if (a, b) in lookup], np.int64)
            )
    return np.concatenate(chosen).astype(np.int64)


def _match(
    target_labels: np.ndarray,
    target_areas: np.ndarray,
    unit_of_piece: np.ndarray,
    n_units: int,
    piece_areas: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    iou_threshold: float,
    ioa_threshold: float,
) -> np.ndarray:
    """Match units (groups of pieces) against labelled target pieces.

    Returns the target label each unit takes (0 where it matches nothing).
    ``pairs`` are (target piece id, unit piece id, count), 1-based.
    """
    result = np.zeros(n_units, np.int64)
    t_piece, u_piece, counts = pairs
    if n_units == 0 or len(counts) == 0:
        return result
    labels, t_inv = np.unique(target_labels, return_inverse=True)
    label_area = np.bincount(t_inv, weights=target_areas, minlength=len(labels))
    unit_area = np.bincount(unit_of_piece, weights=piece_areas, minlength=n_units)
    rows_all = t_inv[t_piece - 1]
    cols_all = unit_of_piece[u_piece - 1]
    codes, inv = np.unique(rows_all * n_units + cols_all, return_inverse=True)
    inter = np.bincount(inv, weights=counts)
    rows, cols = codes // n_units, codes % n_units
    iou = inter / (label_area[rows] + unit_area[cols] - inter)
    ioa = inter / unit_area[cols]

    chosen = _assign(rows, cols, iou)
    chosen = chosen[iou[chosen] >= iou_threshold]
    result[cols[chosen]] = labels[rows[chosen]]

    # unmatched units: merge into the region holding most of them (false split)
    open_units = result[cols] == 0
    if open_units.any():
        e = np.flatnonzero(open_units & (ioa >= ioa_threshold))
        if len(e):
            # best IoA first; ties go to the smallest label
            order = np.lexsort((rows[e], -ioa[e], cols[e]))
            e = e[order]
            first = np.ones(len(e), bool)
            first[1:] = cols[e][1:] != cols[e][:-1]
            e = e[first]
            result[cols[e]] = labels[rows[e]]
    return result


def link_stack(
    graph: StackGraph, iou_threshold: float = 0.25, ioa_threshold: float = 0.25
) -> list[np.ndarray]:
    """Object id of every piece of every slice (forward, then backward pass).

    Returns
    -------
    list of ndarray (int64)
        ``ids[z][k - 1]`` is the object id (>= 1) of piece ``k`` of slice ``z``.
        Ids are unique per object but not consecutive; see
        :func:`select_objects` for the final numbering.
    """
    n = graph.n_slices
    forward: list[np.ndarray] = []
    next_id = 1
    for z in range(n):
        n_z = len(graph.areas[z])
        if z == 0 or n_z == 0:
            ids = np.zeros(n_z, np.int64)
        else:
            ids = _match(
                forward[z - 1],
                graph.areas[z - 1],
                np.arange(n_z),
                n_z,
                graph.areas[z],
                graph.overlaps[z],
                iou_threshold,
                ioa_threshold,
            )
        new = ids == 0
        ids[new] = np.arange(next_id, next_id + int(new.sum()))
        next_id += int(new.sum())
        forward.append(ids)

    backward: list[np.ndarray] = [np.empty(0, np.int64)] * n
    if n:
        backward[n - 1] = forward[n - 1].copy()
    for z in range(n - 2, -1, -1):
        fwd = forward[z]
        if len(fwd) == 0:
            backward[z] = fwd.copy()
            continue
        units, unit_of_piece = np.unique(fwd, return_inverse=True)
        prev_ids, cur_ids, counts = graph.overlaps[z + 1]
        taken = _match(
            backward[z + 1],
            graph.areas[z + 1],
            unit_of_piece,
            len(units),
            graph.areas[z],
            (cur_ids, prev_ids, counts),
            iou_threshold,
            ioa_threshold,
        )
        unit_ids = np.where(taken > 0, taken, units)
        backward[z] = unit_ids[unit_of_piece]
    return backward


@dataclass(frozen=True)
class ObjectTable:
    """Linked objects of one class along one stack.

    Attributes
    ----------
    ids : ndarray of int64
        Object ids as returned by :func:`link_stack`, sorted.
    sizes : ndarray of int64
        Voxel count of each object.
    boxes : ndarray of int64, shape (n, 6)
        ``(s0, s1, r0, r1, c0, c1)``: slices, rows and columns (stop exclusive).
    first : ndarray of int64
        Sort key of each object's first appearance (slice, then piece order).
    """

    ids: np.ndarray
    sizes: np.ndarray
    boxes: np.ndarray
    first: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def summarize_objects(graph: StackGraph, ids: list[np.ndarray]) -> ObjectTable:
    """Size, box and first appearance of every linked object."""
    counts = [len(a) for a in graph.areas]
    if sum(counts) == 0:
        z6 = np.zeros((0, 6), np.int64)
        return ObjectTable(_EMPTY, _EMPTY, z6, _EMPTY)
    obj = np.concatenate(ids)
    area = np.concatenate(graph.areas)
    box = np.concatenate(graph.boxes).astype(np.int64)
    slice_of = np.repeat(np.arange(len(counts)), counts)
    piece_no = np.concatenate([np.arange(c) for c in counts])
    max_pieces = max(counts) + 1
    key = slice_of.astype(np.int64) * max_pieces + piece_no

    uniq, inv = np.unique(obj, return_inverse=True)
    n = len(uniq)
    sizes = np.bincount(inv, weights=area, minlength=n).astype(np.int64)
    order = np.argsort(inv, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(inv[order]) != 0])

    def red(func: np.ufunc, values: np.ndarray) -> np.ndarray:
        return func.reduceat(values[order], starts)

    boxes = np.stack(
        [
            red(np.minimum, slice_of),
            red(np.maximum, slice_of) + 1,
            red(np.minimum, box[:, 0]),
            red(np.maximum, box[:, 1]),
            red(np.minimum, box[:, 2]),
            red(np.maximum, box[:, 3]),
        ],
        axis=1,
    ).astype(np.int64)
    first = red(np.minimum, key).astype(np.int64)
    return ObjectTable(uniq.astype(np.int64), sizes, boxes, first)


def select_objects(
    table: ObjectTable,
    *,
    min_size: int = 0,
    min_extent: int = 0,
    max_objects: int | None = None,
    class_name: str = "objects",
) -> dict[int, int]:
    """Filter objects and number the kept ones ``1..N`` by first appearance.

    Parameters
    ----------
    min_size : int
        Objects with fewer voxels are dropped.
    min_extent : int
        Objects whose bounding box spans fewer voxels than this along any axis
        are dropped ("pancakes").
    max_objects : int, optional
        Largest allowed number of kept objects (ids must stay below the label
        divisor); more is an error that says how to fix it.

    Returns
    -------
    dict
        Linked object id -> final id (dropped objects are absent).
    """
    if len(table) == 0:
        return {}
    extents = table.boxes[:, 1::2] - table.boxes[:, 0::2]
    keep = (table.sizes >= min_size) & np.all(extents >= min_extent, axis=1)
    kept = np.flatnonzero(keep)
    kept = kept[np.argsort(table.first[kept], kind="stable")]
    if max_objects is not None and len(kept) > max_objects:
        raise TamaleInputError(
            f"found {len(kept)} {class_name} after filtering, more than the {max_objects} allowed "
            "by 'max objects per class' (the label divisor); raise it, or raise min size"
        )
    return {int(table.ids[k]): i + 1 for i, k in enumerate(kept)}


def piece_luts(ids: list[np.ndarray], final: dict[int, int]) -> list[np.ndarray]:
    """Per slice, the final id of each piece, with entry 0 for the background.

    ``luts[z][pieces]`` turns slice ``z``'s piece image into final ids.
    """
    if final:
        keys = np.fromiter(final.keys(), np.int64, len(final))
        vals = np.fromiter(final.values(), np.int64, len(final))
        order = np.argsort(keys)
        keys, vals = keys[order], vals[order]
    luts = []
    for piece_ids in ids:
        lut = np.zeros(len(piece_ids) + 1, np.uint32)
        if final and len(piece_ids):
            pos = np.clip(np.searchsorted(keys, piece_ids), 0, len(keys) - 1)
            hit = keys[pos] == piece_ids
            lut[1:][hit] = vals[pos[hit]]
        luts.append(lut)
    return luts


def link_instance_stack(
    stack: np.ndarray,
    *,
    axis: int = 0,
    iou_threshold: float = 0.25,
    ioa_threshold: float = 0.25,
    min_size: int = 0,
    min_extent: int = 0,
    max_objects: int | None = None,
) -> np.ndarray:
    """Link a stack of 2D instance images (in memory) into numbered 3D objects.

    The same steps stack inference runs slice by slice: pieces, overlaps,
    forward/backward linking, filters and numbering. Returns uint32 labels of
    the same shape, objects ``1..N``.
    """
    from tamale.postprocess.pieces import overlap_pairs, split_pieces

    moved = np.moveaxis(np.asarray(stack), axis, 0)
    graph = StackGraph()
    pieces = []
    previous = None
    for plane in moved:
        p = split_pieces(plane)
        overlap = overlap_pairs(previous, p.labels) if previous is not None else None
        graph.append(p.areas, p.boxes, overlap)
        pieces.append(p.labels)
        previous = p.labels
    ids = link_stack(graph, iou_threshold, ioa_threshold)
    final = select_objects(
        summarize_objects(graph, ids),
        min_size=min_size,
        min_extent=min_extent,
        max_objects=max_objects,
    )
    luts = piece_luts(ids, final)
    out = np.stack([lut[p] for lut, p in zip(luts, pieces)]) if pieces else moved.astype(np.uint32)
    return np.moveaxis(out, 0, axis)
