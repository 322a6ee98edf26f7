"""2D pieces: the connected parts of one slice's instances, and how slices overlap.

Stack inference links 2D instances of consecutive slices into 3D objects. The
unit of linking is a *piece*: one 8-connected component of one 2D instance
(an instance made of two separate parts becomes two pieces, as in empanada).
Pieces are numbered ``1..n`` in raster order of their first pixel, so the
numbering depends only on the slice's content.

What linking needs is small: per piece its area and bounding box, and per
pair of consecutive slices the overlap (pixel count) of every pair of pieces
that touch. :func:`split_pieces` and :func:`overlap_pairs` compute them; the
pixels themselves are written to the output once and relabelled at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as _cc_label

__all__ = ["SlicePieces", "empty_pieces", "overlap_pairs", "split_pieces"]


@dataclass(frozen=True)
class SlicePieces:
    """The pieces of one class in one slice.

    Attributes
    ----------
    labels : ndarray of uint32, 2D
        0 for background, ``1..n`` for the pieces (raster order of first pixel).
    areas : ndarray of int64, shape (n,)
        Pixel count of piece ``k`` at index ``k - 1``.
    boxes : ndarray of int32, shape (n, 4)
        ``(row_start, row_stop, col_start, col_stop)`` of each piece (stop exclusive).
    """

    labels: np.ndarray
    areas: np.ndarray
    boxes: np.ndarray

    @property
    def n(self) -> int:
        """Number of pieces."""
        return len(self.areas)


def empty_pieces(shape: tuple[int, int]) -> SlicePieces:
    """A slice without any piece."""
    return SlicePieces(
        np.zeros(shape, np.uint32), np.zeros(0, np.int64), np.zeros((0, 4), np.int32)
    )


def _stats(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(np.int64)
    boxes = np.zeros((n, 4), np.int32)
    for k, sl in enumerate(ndi.find_objects(labels, max_label=n)):
        if sl is not None:
            boxes[k] = (sl[0].start, sl[0].stop, sl[1].start, sl[1].stop)
    return areas, boxes


def split_pieces(instances: np.ndarray, *, connected: bool = True) -> SlicePieces:
    """Pieces of a 2D instance image (any integer ids; 0 is background).

    Parameters
    ----------
    instances : ndarray, 2D
        Instance ids of one class in one slice.
    connected : bool
        True: every 8-connected part of an instance is its own piece. False:
        every distinct id is one piece (for semantic classes, pass the mask).
    """
    instances = np.asarray(instances)
    if instances.ndim != 2:
        raise ValueError(f"a slice must be 2D, got shape {instances.shape}")
    if not instances.any():
        return empty_pieces(instances.shape)
    if connected:
        labels, n = _cc_label(instances, background=0, connectivity=2, return_num=True)
        labels = labels.astype(np.uint32, copy=False)
    else:
        # number the distinct ids in raster order of their first pixel
        flat = instances.ravel()
        ids, first = np.unique(flat, return_index=True)
        keep = ids != 0
        ids, first = ids[keep], first[keep]
        order = np.argsort(first, kind="stable")
        lut_keys = ids[order]
        n = len(lut_keys)
        sorter = np.argsort(lut_keys)
        pos = np.searchsorted(lut_keys, flat, sorter=sorter)
        pos = np.clip(pos, 0, n - 1)
        labels = np.where(flat != 0, sorter[pos] + 1, 0).astype(np.uint32).reshape(instances.shape)
    areas, boxes = _stats(labels, int(n))
    return SlicePieces(labels, areas, boxes)


def overlap_pairs(
    previous: np.ndarray, current: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlapping piece pairs of two equally shaped piece images.

    Returns
    -------
    prev_ids, cur_ids : ndarray of int64
        1-based piece ids of each overlapping pair, sorted by ``(prev, cur)``.
    counts : ndarray of int64
        Shared pixels of each pair.
    """
    if previous.shape != current.shape:
        raise ValueError(f"slices differ in shape: {previous.shape} vs {current.shape}")
    both = (previous != 0) & (current != 0)
    if not both.any():
        empty = np.zeros(0, np.int64)
        return empty, empty.copy(), empty.copy()
    a = previous[both].astype(np.int64)
    b = current[both].astype(np.int64)
    width = int(b.max()) + 1
    codes, counts = np.unique(a * width + b, return_counts=True)
    return codes // width, codes % width, counts.astype(np.int64)
