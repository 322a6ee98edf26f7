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
    from napari.layers import Layer, Points, Shapes

    import napari

__all__ = [
    "PlaneSelection",
    "current_plane",
    "current_region",
    "layer_array",
    "layers_of_type",
    "points_to_data",
    "points_to_indices",
    "shapes_to_data",
    "source_file_names",
    "world_axes",
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


def current_region(
    viewer: napari.Viewer, layer: Layer, in_3d: bool = False
) -> tuple[int | slice, ...]:
    """The part of ``layer`` an edit applies to: the shown plane, or its volume.

    Every axis the viewer does not display is fixed at the viewer's position
    (an ``int``); displayed axes are whole (``slice(None)``). With ``in_3d``
    the sliced axis nearest the displayed ones (the one the main slider moves,
    e.g. z of a ZYX volume or of a TZYX flipbook stack) is whole too, so a 4D
    stack is edited one flipbook volume at a time. In napari's 3D view the
    displayed volume is already 3D and is returned as is.
    """
    plane = current_plane(viewer, layer)
    fixed = dict(plane.fixed)
    if in_3d and fixed and len(plane.displayed) < 3:
        offset = viewer.dims.ndim - layer.ndim
        order = [a - offset for a in viewer.dims.order if a - offset in fixed]
        if order:
            fixed.pop(order[-1])
    return tuple(fixed.get(a, slice(None)) for a in range(layer.ndim))


def world_axes(viewer: napari.Viewer, layer: Layer) -> list[int]:
    """The viewer (world) axis of each of ``layer``'s data axes."""
    offset = viewer.dims.ndim - layer.ndim
    return [a + offset for a in range(layer.ndim)]


def shapes_to_data(shapes: Shapes, target: Layer, step: float = 1.0) -> np.ndarray:
    """Every pixel of ``target`` along the outlines of ``shapes``, shape (N, target.ndim).

    Vertices are mapped to ``target``'s data coordinates first (scale,
    translate, rotation), then each outline is rasterised on ``target``'s
    pixel grid: lines and paths are open, other shapes closed.
    """
    from tamale.proofread.picks import line_pixels

    pieces = []
    for vertices, kind in zip(shapes.data, shapes.shape_type):
        verts = np.asarray(vertices, dtype=float)
        mapped = np.array(
            [target.world_to_data(np.asarray(shapes.data_to_world(v), dtype=float)) for v in verts]
        )
        pieces.append(line_pixels(mapped, closed=kind not in ("line", "path")))
    if not pieces:
        return np.zeros((0, target.ndim), dtype=float)
    return np.concatenate(pieces).astype(float)


def layers_of_type(viewer: napari.Viewer, kind: type) -> list[tuple[str, Any]]:
    """``(name, layer)`` choices of every layer of type ``kind`` in ``viewer``."""
    return [(layer.name, layer) for layer in viewer.layers if isinstance(layer, kind)]


def source_file_names(layer: Layer, n: int) -> list[str] | None:
    """The file names the ``n`` images of a stack layer were opened from, if known.

    Looked up, in order: ``layer.metadata["filenames"]`` (a list set by a
    reader or by hand); then, when the layer was opened from a folder
    (*File > Open Folder*, ``layer.source.path`` is a directory), the folder
    listed the way napari's builtin reader stacks it (``*.*`` files, sorted
    with numbers compared as numbers); a layer opened from one file gives that
    file's name for ``n == 1``. Returns None when the count does not match ``n``.
    """
    from pathlib import Path

    from tamale.proofread.export import natural_key

    names = (layer.metadata or {}).get("filenames")
    if isinstance(names, (list, tuple)) and len(names) == n:
        return [str(x) for x in names]
    path = getattr(getattr(layer, "source", None), "path", None)
    if path and Path(path).is_dir():
        files = sorted(
            (p for p in Path(path).glob("*.*") if p.is_file()), key=lambda p: natural_key(str(p))
        )
        if len(files) == n:
            return [p.name for p in files]
    elif path and Path(path).is_file() and n == 1:
        return [Path(path).name]
    return None
