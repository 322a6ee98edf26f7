"""Picks: the voxels a user points at (points, or every pixel along drawn lines).

Coordinates here are the labels' own data indices (the plugin maps points and
shapes from world coordinates first). :func:`resolve_picks` validates them
against the labels and the region being edited and reads the ids under them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError

from ._arrays import Region, check_labels_dtype, normalize_region, read_at

__all__ = ["Picks", "line_pixels", "resolve_picks"]


@dataclass(frozen=True)
class Picks:
    """Picked voxels on objects (background picks removed).

    Attributes
    ----------
    coords : ndarray of int64, shape (N, ndim)
        Voxel indices of the picks that landed on an object.
    ids : ndarray, shape (N,)
        The label under each pick (never 0).
    n_background : int
        How many picks were on background and were ignored.
    """

    coords: np.ndarray
    ids: np.ndarray
    n_background: int = 0

    @property
    def unique_ids(self) -> np.ndarray:
        """The distinct picked ids, sorted."""
        return np.unique(self.ids)


def line_pixels(vertices: np.ndarray, closed: bool = False) -> np.ndarray:
    """Every pixel along the polyline through ``vertices`` (float, shape (K, ndim)).

    Segments are rasterised with Bresenham-style steps (``skimage.draw.line_nd``)
    including both end points; ``closed`` adds the segment back to the start.
    """
    from skimage.draw import line_nd

    vertices = np.asarray(vertices, dtype=float)
    if vertices.ndim != 2 or len(vertices) == 0:
        return np.zeros((0, vertices.shape[-1] if vertices.ndim == 2 else 0), np.int64)
    points = np.round(vertices)
    if closed and len(points) > 2:
        points = np.vstack([points, points[:1]])
    pieces = [points[:1].astype(np.int64)]
    for start, stop in itertools.pairwise(points):
        line = np.stack(line_nd(start, stop, endpoint=True), axis=1)
        pieces.append(line.astype(np.int64))
    out = np.concatenate(pieces)
    _, first = np.unique(out, axis=0, return_index=True)
    return out[np.sort(first)]


def _describe(coords: np.ndarray, limit: int = 3) -> str:
    shown = ", ".join(str(tuple(int(c) for c in p)) for p in coords[:limit])
    return shown + (f" and {len(coords) - limit} more" if len(coords) > limit else "")


def resolve_picks(
    labels: Any,
    coords: np.ndarray | Sequence[Sequence[float]],
    region: Region | None = None,
    *,
    allow_background: bool = False,
) -> Picks:
    """Validate picks and read the ids under them.

    Parameters
    ----------
    labels : array
        The labels (numpy, zarr or dask).
    coords : array, shape (N, ndim)
        Pick positions in the labels' data coordinates (rounded to voxels).
    region : tuple, optional
        The part of the labels being edited (e.g. the current plane); picks
        outside it are an error.
    allow_background : bool
        If False (default), an error is raised when every pick is on background.

    Raises
    ------
    TamaleInputError
        No picks; picks outside the labels or outside ``region``; all picks on
        background; float or negative labels.
    """
    check_labels_dtype(labels)
    shape = tuple(int(s) for s in labels.shape)
    coords = np.asarray(coords, dtype=float)
    if coords.size == 0:
        raise TamaleInputError(
            "no points were given: add points (or draw lines) on the objects to pick them"
        )
    coords = coords.reshape(-1, coords.shape[-1])
    if coords.shape[1] != len(shape):
        raise TamaleInputError(
            f"the points have {coords.shape[1]} coordinates but the labels have {len(shape)} axes"
        )
    if not np.all(np.isfinite(coords)):
        raise TamaleInputError("some points have undefined (NaN) coordinates")
    idx = np.round(coords).astype(np.int64)
    outside = ~np.all((idx >= 0) & (idx < np.asarray(shape)), axis=1)
    if outside.any():
        raise TamaleInputError(
            f"{int(outside.sum())} point(s) lie outside the labels (shape {shape}): "
            f"{_describe(idx[outside])}. Check that the points belong to this labels layer "
            "and that both layers have the same scale and translation"
        )
    reg = normalize_region(region, shape)
    lo = np.array([s.start for s in reg])
    hi = np.array([s.stop for s in reg])
    off = ~np.all((idx >= lo) & (idx < hi), axis=1)
    if off.any():
        fixed = {a: s.start for a, s in enumerate(reg) if s.stop - s.start == 1}
        where = ", ".join(f"axis {a} = {i}" for a, i in fixed.items()) or "the region"
        raise TamaleInputError(
            f"{int(off.sum())} point(s) are not on the plane or volume being edited "
            f"({where}): {_describe(idx[off])}. Move to their plane, remove them, or tick "
            "'apply in 3D'"
        )
    ids = read_at(labels, idx)
    on_object = ids != 0
    n_background = int((~on_object).sum())
    if not on_object.any() and not allow_background:
        raise TamaleInputError(
            "every point is on background (label 0): place the points on the objects to edit"
        )
    return Picks(idx[on_object], ids[on_object], n_background)
