"""Helpers between napari layers and engine arrays.

Coordinates: points are mapped from their layer's data space to world space
and then into the target layer's data space with napari's public transforms,
so scaled, translated (and rotated) layers work; nothing assumes unit scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tamale.errors import TamaleInputError

if TYPE_CHECKING:
    from napari.layers import Layer, Points

    import napari

__all__ = [
    "PlaneSelection",
    "current_plane",
    "layer_array",
    "points_to_data",
    "points_to_indices",
]


def layer_array(layer: Layer, level: int = 0) -> Any:
    """The layer's array, or level ``level`` of a multiscale layer."""
    if getattr(layer, "multiscale", False):
        levels = layer.data
        if not 0 <= level < len(levels):
            raise TamaleInputError(
                f"layer {layer.name!r} has {len(levels)} multiscale levels; level {level} does not exist"
            )
        return levels[level]
    if level != 0:
        raise TamaleInputError(f"layer {layer.name!r} is not multiscale; only level 0 exists")
    return layer.data


def points_to_data(points: Points, target: Layer) -> np.ndarray:
    """Positions of ``points`` in ``target``'s data coordinates, shape (N, target.ndim)."""
    data = np.asarray(points.data, dtype=float)
    if data.size == 0:
        return np.zeros((0, target.ndim), dtype=float)
    out = np.empty((len(data), target.ndim), dtype=float)
    for i, p in enumerate(data):
        world = np.asarray(points.data_to_world(p), dtype=float)
        out[i] = target.world_to_data(world)
    return out


def points_to_indices(
    points: Points, target: Layer, shape: tuple[int, ...] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Integer pixel indices of ``points`` in ``target`` and which are inside.

    Returns
    -------
    indices : ndarray of int, shape (N, ndim)
        Rounded data coordinates (only meaningful where ``inside``).
    inside : ndarray of bool, shape (N,)
        Whether each point falls inside the array of shape ``shape``
        (default: ``target.data.shape``).
    """
    coords = points_to_data(points, target)
    if shape is None:
        shape = tuple(np.shape(layer_array(target)))
    idx = np.round(coords).astype(np.int64)
    inside = (
        np.all((idx >= 0) & (idx < np.asarray(shape)), axis=1) if len(idx) else np.zeros(0, bool)
    )
    return idx, inside


@dataclass(frozen=True)
class PlaneSelection:
    """The 2D plane a layer shows in the viewer.

    Attributes
    ----------
    displayed : tuple of int
        The layer's data axes shown on screen (the last two in 2D view).
    fixed : dict of int -> int
        Every other data axis and the index the viewer sits at.
    """

    displayed: tuple[int, ...]
    fixed: dict[int, int]

    def slices(self, ndim: int) -> tuple[slice | int, ...]:
        """Index that cuts the shown plane out of an ``ndim`` array."""
        return tuple(self.fixed.get(a, slice(None)) for a in range(ndim))


def current_plane(viewer: napari.Viewer, layer: Layer) -> PlaneSelection:
    """Which plane of ``layer`` the viewer is showing (any axis order)."""
    offset = viewer.dims.ndim - layer.ndim
    displayed = tuple(d - offset for d in viewer.dims.displayed if d - offset >= 0)
    data_point = np.asarray(layer.world_to_data(viewer.dims.point), dtype=float)
    shape = np.shape(layer_array(layer))
    fixed = {
        a: int(np.clip(np.round(data_point[a]), 0, shape[a] - 1))
        for a in range(layer.ndim)
        if a not in displayed
    }
    return PlaneSelection(displayed=displayed, fixed=fixed)
