"""Training targets (semantic map, center heatmap, offsets) made from ground-truth labels.

The same targets serve training and the exactness tests of post-processing: feeding them
back through :func:`tamale.postprocess.postprocess` as if a network had produced them
returns the ground truth (exactly at ``stride=1``; see below).

Conventions
-----------
* **Labels**: a 2D integer array. Without ``label_divisor`` every nonzero value is one
  instance of class 1. With ``label_divisor`` a value ``v`` belongs to class
  ``v // label_divisor`` and distinct values are distinct objects (``class * divisor +
  instance``); stuff classes may use any value of their range (``1001`` for class 1).
* **Centre of an instance**: the pixel *of the instance* nearest to its centroid (ties:
  first in raster order). It equals the rounded centroid for convex objects, lies inside
  non-convex ones (whose centroid may fall outside), and never coincides with another
  instance's centre, so every centre can be recovered.
* **Heatmap**: a Gaussian of ``sigma`` pixels around each centre, combined by maximum
  (not by sum): every centre has value exactly 1 and nearby centres never merge into one
  peak, so non-maximum suppression with any odd window ≥ 3 keeps each of them.
* **Offsets**: ``(dy, dx)`` from a pixel to its instance's centre, in full-resolution
  pixels; 0 on background and stuff.
* **Stride**: targets can be made on a coarser grid (``stride=4`` is what the network's
  1/4-resolution heads predict). Grid point ``(i, j)`` stands for pixel ``(i*stride,
  j*stride)``; centres are then chosen among an instance's grid points, and an instance
  with no grid point gets no centre (it cannot be represented at that resolution).

Everything is vectorised over instances (one pass over the image, not one per object).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tamale.errors import TamaleInputError

__all__ = ["PanopticTargets", "instance_centers", "make_targets"]


@dataclass(frozen=True)
class PanopticTargets:
    """Targets for one 2D label image.

    Attributes
    ----------
    semantic : ndarray of int64, shape (H, W)
        Class id of every pixel (0 = background).
    heatmap : ndarray of float32, shape (h, w)
        Center heatmap on the grid of spacing ``stride`` (h = ceil(H / stride)).
    offsets : ndarray of float32, shape (2, h, w)
        ``(dy, dx)`` to the instance centre, in full-resolution pixels.
    centers : ndarray of int64, shape (K, 2)
        Centre of each instance in grid coordinates ``(row, col)``.
    instance_ids : ndarray of int64, shape (K,)
        Label value of the instance each centre belongs to.
    stride : int
        Grid spacing in full-resolution pixels.
    """

    semantic: np.ndarray
    heatmap: np.ndarray
    offsets: np.ndarray
    centers: np.ndarray
    instance_ids: np.ndarray
    stride: int


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise TamaleInputError(f"targets need a 2D label image, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TamaleInputError(f"labels must be integers, got {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise TamaleInputError("labels must not be negative")
    return labels.astype(np.int64, copy=False)


def _semantic_and_things(
    labels: np.ndarray, label_divisor: int | None, thing_classes: Iterable[int] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Semantic map and the mask of pixels that belong to instances (thing classes)."""
    if label_divisor is None:
        semantic = (labels > 0).astype(np.int64)
        return semantic, labels > 0
    if label_divisor < 1:
        raise TamaleInputError(f"label_divisor must be at least 1, got {label_divisor}")
    semantic = labels // label_divisor
    if thing_classes is None:
        things = semantic > 0
    else:
        lut_size = int(semantic.max()) + 1
        is_thing = np.zeros(lut_size, dtype=bool)
        for c in thing_classes:
            if 0 < int(c) < lut_size:
                is_thing[int(c)] = True
        things = is_thing[semantic]
    return semantic, things


def instance_centers(
    labels: np.ndarray, mask: np.ndarray | None = None, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Centre of every instance: its grid point nearest to its centroid.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Instance ids (0 = none).
    mask : ndarray of bool, optional
        Pixels that count as instances (default: ``labels > 0``).
    stride : int
        Grid spacing; centres are chosen among pixels ``(i*stride, j*stride)``.

    Returns
    -------
    centers : ndarray of int64, shape (K, 2)
        Grid coordinates ``(row, col)`` of the centres, ordered by instance id.
    ids : ndarray of int64, shape (K,)
        The instance id of each centre. Instances without a grid point are left out.
    """
    labels = np.asarray(labels)
    if mask is None:
        mask = labels > 0
    ys, xs = np.nonzero(mask)
    ids_all = labels[ys, xs].astype(np.int64)
    if ids_all.size == 0:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    uniq, inverse = np.unique(ids_all, return_inverse=True)
    counts = np.bincount(inverse).astype(np.float64)
    cy = np.bincount(inverse, weights=ys) / counts
    cx = np.bincount(inverse, weights=xs) / counts
    on_grid = (ys % stride == 0) & (xs % stride == 0)
    ys, xs, inverse = ys[on_grid], xs[on_grid], inverse[on_grid]
    if ys.size == 0:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    d2 = (ys - cy[inverse]) ** 2 + (xs - cx[inverse]) ** 2
    # nearest grid point per instance; np.nonzero gave raster order and lexsort is
    # stable, so ties go to the first point in raster order
    order = np.lexsort((d2, inverse))
    first = np.ones(order.size, dtype=bool)
    first[1:] = inverse[order[1:]] != inverse[order[:-1]]
    pick = order[first]
    centers = np.stack([ys[pick] // stride, xs[pick] // stride], axis=1).astype(np.int64)
    return centers, uniq[inverse[pick]]


def _gaussian_max(shape: tuple[int, int], centers: np.ndarray, sigma: float) -> np.ndarray:
    """Max-composition of unit Gaussians (truncated at 3 sigma) centred on ``centers``."""
    heatmap = np.zeros(shape, dtype=np.float32)
    if len(centers) == 0:
        return heatmap
    radius = max(1, int(np.ceil(3 * sigma)))
    d = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(d, d, indexing="ij")
    patch = np.exp(-(dy**2 + dx**2) / (2.0 * sigma**2)).astype(np.float32)
    # every centre's patch at once: (K, P) positions and values
    py = centers[:, 0:1] + dy.reshape(1, -1)
    px = centers[:, 1:2] + dx.reshape(1, -1)
    vals = np.broadcast_to(patch.reshape(1, -1), py.shape)
    keep = (py >= 0) & (py < shape[0]) & (px >= 0) & (px < shape[1])
    flat = (py[keep] * shape[1] + px[keep]).astype(np.int64)
    vals = vals[keep]
    # maximum per pixel without a Python loop: sort by (pixel, value), take the last
    order = np.lexsort((vals, flat))
    flat, vals = flat[order], vals[order]
    last = np.ones(flat.size, dtype=bool)
    last[:-1] = flat[1:] != flat[:-1]
    heatmap.reshape(-1)[flat[last]] = vals[last]
    return heatmap


def make_targets(
    labels: np.ndarray,
    *,
    label_divisor: int | None = None,
    thing_classes: Iterable[int] | None = None,
    sigma: float = 6.0,
    stride: int = 1,
) -> PanopticTargets:
    """Semantic, center-heatmap and offset targets for a 2D label image.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Ground truth (see the module docstring for the conventions).
    label_divisor : int, optional
        Panoptic divisor; None means "every nonzero value is an instance of class 1".
    thing_classes : iterable of int, optional
        Classes whose values are instances (default: every class). Other classes are
        stuff: they get a semantic target but no centres or offsets.
    sigma : float
        Standard deviation of the centre Gaussians, in full-resolution pixels.
    stride : int
        Grid spacing of the heatmap and offsets (1 = full resolution, 4 = the network's
        1/4-resolution heads).
    """
    labels = _check_labels(labels)
    if stride < 1:
        raise TamaleInputError(f"stride must be at least 1, got {stride}")
    if sigma <= 0:
        raise TamaleInputError(f"sigma must be positive, got {sigma}")
    semantic, things = _semantic_and_things(labels, label_divisor, thing_classes)
    centers, ids = instance_centers(labels, things, stride)

    grid = labels[::stride, ::stride]
    grid_things = things[::stride, ::stride]
    gh, gw = grid.shape
    heatmap = _gaussian_max((gh, gw), centers, sigma / stride)

    offsets = np.zeros((2, gh, gw), dtype=np.float32)
    if len(ids):
        # centre (full-resolution pixels) of every grid point's instance
        slot = np.searchsorted(ids, grid)
        slot = np.clip(slot, 0, len(ids) - 1)
        has_center = grid_things & (ids[slot] == grid)
        yy, xx = np.mgrid[0:gh, 0:gw]
        cy = centers[slot, 0] * stride
        cx = centers[slot, 1] * stride
        offsets[0] = np.where(has_center, cy - yy * stride, 0)
        offsets[1] = np.where(has_center, cx - xx * stride, 0)
    return PanopticTargets(
        semantic=semantic,
        heatmap=heatmap,
        offsets=offsets,
        centers=centers,
        instance_ids=ids,
        stride=stride,
    )
