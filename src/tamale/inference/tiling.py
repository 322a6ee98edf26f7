"""Tiled 2D inference: overlapping tiles, and one id per object across tile borders.

Layout
------
Tiles are laid out on the model's input grid (after downsampling): every tile has the
same size (``tile_size``, or the image size along an axis that fits in one tile) and
starts on a multiple of the alignment (the model's padding factor, a multiple of 4), so
the 1/4-resolution grids and the network's strides of neighbouring tiles line up.
Consecutive tiles overlap by at least ``overlap`` pixels; the last one along an axis
ends at the image border. Each tile *owns* a core region: overlaps are split in the
middle, so cores partition the image.

Stitching
---------
Each tile is post-processed on its own (panoptic ids local to the tile). Where two tiles
overlap, both have predicted the same pixels: an instance of one tile and an instance of
the other with the same class whose masks agree there (IoU > 0.5 *inside the overlap*)
are the same object. These matches are joined (connected components of the match
graph), so an object crossing any number of tile borders — wider than a tile included —
gets one id. Each pixel then takes its owning tile's prediction, mapped to its object.
Touching objects that the tiles agree on stay apart: an IoU above 0.5 can only pair an
instance with one partner. Ids are finally renumbered per class in raster order (and
split into connected pieces when asked), exactly like the untiled path.

Everything here is array code over whole tiles and overlaps (``np.unique`` on pairs,
sparse connected components); no loop over pixels or objects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from tamale.errors import TamaleInputError

__all__ = ["Tile", "plan_axis", "plan_tiles", "stitch"]


@dataclass(frozen=True)
class Tile:
    """One tile, in original-image pixels.

    Attributes
    ----------
    read : tuple of slice
        The region given to the network.
    core : tuple of slice
        The region this tile owns in the result (inside ``read``).
    """

    read: tuple[slice, slice]
    core: tuple[slice, slice]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.read[0].stop - self.read[0].start, self.read[1].stop - self.read[1].start)


def plan_axis(length: int, tile: int, overlap: int, align: int) -> list[tuple[int, int, int, int]]:
    """Tiles along one axis (model-input pixels): (start, stop, core_start, core_stop)."""
    if tile <= 0 or length <= tile:
        return [(0, length, 0, length)]
    step = ((tile - overlap) // align) * align
    if step < align:
        raise TamaleInputError(
            f"tile size {tile} with overlap {overlap} leaves no room to advance (tiles start "
            f"on multiples of {align}); use a larger tile size or a smaller overlap"
        )
    starts = [0]
    while starts[-1] + tile < length:
        nxt = starts[-1] + step
        if nxt + tile >= length:
            # the last tile: the earliest aligned start that still reaches the border
            nxt = -(-(length - tile) // align) * align
        starts.append(nxt)
    out = []
    for i, s in enumerate(starts):
        e = min(s + tile, length)
        core_lo = 0 if i == 0 else (s + min(starts[i - 1] + tile, length)) // 2
        core_hi = length if i == len(starts) - 1 else (starts[i + 1] + e) // 2
        out.append((s, e, core_lo, core_hi))
    return out


def plan_tiles(
    shape: tuple[int, int],
    *,
    downsampling: int,
    tile_size: int,
    overlap: int,
    align: int,
) -> list[Tile]:
    """Tiles covering an image of ``shape`` (original pixels), in raster order.

    ``tile_size``, ``overlap`` and ``align`` are in model-input pixels (the image
    downsampled by ``downsampling``); tiles start on multiples of ``align *
    downsampling`` original pixels.
    """
    f = downsampling
    if tile_size and tile_size < align:
        raise TamaleInputError(
            f"tile size {tile_size} is smaller than the model's padding factor {align}; "
            f"use at least {align} (or 0 to never tile)"
        )
    axes = []
    for length in shape:
        model_len = math.ceil(length / f)
        tile = (tile_size // align) * align if tile_size else 0
        runs = plan_axis(model_len, tile, overlap, align)
        axes.append(
            [
                (s * f, min(e * f, length), min(cs * f, length), min(ce * f, length))
                for s, e, cs, ce in runs
            ]
        )
    tiles = []
    for ys, ye, ycs, yce in axes[0]:
        for xs, xe, xcs, xce in axes[1]:
            tiles.append(
                Tile(
                    read=(slice(ys, ye), slice(xs, xe)),
                    core=(slice(ycs, yce), slice(xcs, xce)),
                )
            )
    return tiles


def _intersect(a: tuple[slice, slice], b: tuple[slice, slice]) -> tuple[slice, slice] | None:
    out = []
    for sa, sb in zip(a, b):
        lo, hi = max(sa.start, sb.start), min(sa.stop, sb.stop)
        if hi <= lo:
            return None
        out.append(slice(lo, hi))
    return out[0], out[1]


def _local(region: tuple[slice, slice], origin: tuple[slice, slice]) -> tuple[slice, slice]:
    return tuple(slice(r.start - o.start, r.stop - o.start) for r, o in zip(region, origin))  # type: ignore[return-value]


def stitch(
    tiles: Sequence[Tile],
    predictions: Sequence[np.ndarray],
    shape: tuple[int, int],
    things: Sequence[int] | frozenset[int],
    label_divisor: int,
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """Merge per-tile panoptic labels into one image (see the module docstring).

    Parameters
    ----------
    tiles : sequence of Tile
    predictions : sequence of ndarray of int, each of its tile's ``read`` shape
        Panoptic labels of each tile (``class * label_divisor + k``, stuff ``class *
        label_divisor``).
    shape : (H, W)
    things : classes whose ids are instances

    Returns
    -------
    ndarray of int64, shape (H, W)
        Stuff as ``class * label_divisor``; thing pixels hold provisional object ids
        ``class * label_divisor + k`` where ``k`` may exceed the divisor: pass the result
        through :func:`tamale.postprocess.renumber_instances`.
    """
    things_arr = np.asarray(sorted(int(t) for t in things), dtype=np.int64)

    def instance_mask(lab: np.ndarray) -> np.ndarray:
        return np.isin(lab // label_divisor, things_arr) & (lab % label_divisor > 0)

    # nodes: (tile, local panoptic id) of every instance
    node_ids: list[np.ndarray] = []
    offsets = [0]
    for lab in predictions:
        ids = np.unique(lab[instance_mask(lab)])
        node_ids.append(ids)
        offsets.append(offsets[-1] + len(ids))
    n_nodes = offsets[-1]

    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    for i in range(len(tiles)):
        for j in range(i + 1, len(tiles)):
            region = _intersect(tiles[i].read, tiles[j].read)
            if region is None:
                continue
            a = predictions[i][_local(region, tiles[i].read)].ravel().astype(np.int64)
            b = predictions[j][_local(region, tiles[j].read)].ravel().astype(np.int64)
            ma, mb = instance_mask(a), instance_mask(b)
            if not (ma.any() and mb.any()):
                continue
            ia = np.where(ma, np.searchsorted(node_ids[i], a), -1)
            ib = np.where(mb, np.searchsorted(node_ids[j], b), -1)
            area_a = np.bincount(ia[ma], minlength=len(node_ids[i]))
            area_b = np.bincount(ib[mb], minlength=len(node_ids[j]))
            both = ma & mb & (a // label_divisor == b // label_divisor)
            if not both.any():
                continue
            pair = ia[both] * len(node_ids[j]) + ib[both]
            keys, inter = np.unique(pair, return_counts=True)
            pa, pb = keys // len(node_ids[j]), keys % len(node_ids[j])
            iou = inter / (area_a[pa] + area_b[pb] - inter)
            keep = iou > iou_threshold
            rows.append(pa[keep] + offsets[i])
            cols.append(pb[keep] + offsets[j])

    if n_nodes:
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(n_nodes, n_nodes))
        _, group = connected_components(graph, directed=False)
    else:
        group = np.zeros(0, np.int64)

    out = np.zeros(shape, dtype=np.int64)
    for t, (tile, lab) in enumerate(zip(tiles, predictions)):
        core = lab[_local(tile.core, tile.read)].astype(np.int64)
        inst = instance_mask(core)
        idx = np.searchsorted(node_ids[t], core[inst]) + offsets[t]
        # provisional id: class * divisor + (group + 1); k may exceed the divisor here
        core = core.copy()
        core[inst] = (core[inst] // label_divisor) * label_divisor + group[idx] + 1
        out[tile.core] = core
    return out
