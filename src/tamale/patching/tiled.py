"""Tiled patching for prediction, and stitching the predicted tiles back.

Per axis (tile ``t``, overlap ``o``, step ``t - o``): tiles start at ``0, step, 2*step,
...`` and the last one is shifted to end flush with the image. Each tile keeps a crop:
the first from its start, the last up to the image end, and every tile drops about
``o / 2`` pixels where it overlaps a neighbour. The crops of one axis partition
``[0, size)`` exactly, so :func:`stitch_tiles` is a plain copy and reassembles an image
bit for bit. An axis shorter than the tile gets one tile at 0 (zero-padded on
extraction) whose crop is the whole axis.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.patching._validate import check_data_shapes, check_patch_size
from tamale.patching.sequential import check_overlaps
from tamale.patching.specs import PatchSpecs, PatchSpecsBatch, TileSpecs
from tamale.patching.strategy import SampleIndexedPatching

__all__ = ["TiledPatching", "stitch_tiles", "tile_layout"]


def tile_layout(size: int, tile: int, overlap: int) -> dict[str, np.ndarray]:
    """Tiles of one axis.

    Returns
    -------
    dict
        ``starts`` (tile start in the image), ``crop_coords`` (crop start in the tile),
        ``crop_size`` and ``stitch_coords`` (crop start in the image), int64 arrays of
        one entry per tile.
    """
    if size <= tile:
        zero = np.zeros(1, dtype=np.int64)
        return {
            "starts": zero,
            "crop_coords": zero.copy(),
            "crop_size": np.array([size], dtype=np.int64),
            "stitch_coords": zero.copy(),
        }
    step = tile - overlap
    n = -(-(size - overlap) // step)
    starts = np.arange(n, dtype=np.int64) * step
    starts[-1] = size - tile
    lo = overlap // 2
    hi = overlap - lo
    stitch_start = starts + lo
    stitch_end = starts + tile - hi
    stitch_start[0] = 0
    stitch_end[-1] = size
    stitch_start[-1] = stitch_end[-2]
    return {
        "starts": starts,
        "crop_coords": stitch_start - starts,
        "crop_size": stitch_end - stitch_start,
        "stitch_coords": stitch_start,
    }


class TiledPatching(SampleIndexedPatching):
    """Overlapping tiles covering every sample, for prediction.

    Parameters
    ----------
    data_shapes : sequence of sequence of int
        Shapes of the image stacks, axes SC(Z)YX.
    tile_size : sequence of int
        Tile size per spatial axis.
    overlaps : int or sequence of int
        Overlap of neighbouring tiles per axis (``0 <= overlap < tile``). Predictions
        are kept ``overlap // 2`` pixels away from tile borders that face a neighbour.
    """

    def __init__(
        self,
        data_shapes: Sequence[Sequence[int]],
        tile_size: Sequence[int],
        overlaps: int | Sequence[int],
    ) -> None:
        ts = check_patch_size(tile_size, "tile_size")
        shapes = check_data_shapes(data_shapes, len(ts))
        super().__init__(shapes, seed=0)
        self._ps = ts
        self._overlaps = check_overlaps(overlaps, ts, "overlaps")
        self._layouts = [
            [tile_layout(s, t, o) for s, t, o in zip(shape[2:], ts, self._overlaps)]
            for shape in shapes
        ]
        per_sample = [math.prod(len(a["starts"]) for a in lay) for lay in self._layouts]
        self._total = [n * shape[0] for n, shape in zip(per_sample, shapes)]
        self._set_counts(np.asarray(per_sample, dtype=np.int64)[self._gs_stack])

    @property
    def patch_size(self) -> tuple[int, ...]:
        """Tile size per spatial axis."""
        return self._ps

    @property
    def overlaps(self) -> tuple[int, ...]:
        """Overlap per spatial axis."""
        return self._overlaps

    def get_patch_spec(self, index: int) -> TileSpecs:
        """The ``index``-th tile with its crop and stitch coordinates."""
        gs, local = self._locate(index)
        d = int(self._gs_stack[gs])
        lay = self._layouts[d]
        pos = np.unravel_index(local, [len(a["starts"]) for a in lay])

        def take(key: str) -> tuple[int, ...]:
            return tuple(int(a[key][p]) for a, p in zip(lay, pos))

        return TileSpecs(
            d,
            int(self._gs_sample[gs]),
            take("starts"),
            self._ps,
            crop_coords=take("crop_coords"),
            crop_size=take("crop_size"),
            stitch_coords=take("stitch_coords"),
            total_tiles=self._total[d],
        )

    def get_patch_specs(self, indices: Any) -> PatchSpecsBatch:
        """The tiles for many indices at once (vectorised)."""
        idx, gs, local = self._locate_many(indices)
        stack = self._gs_stack[gs]
        n, nd = len(idx), len(self._ps)
        arrays = {
            k: np.empty((n, nd), np.int64)
            for k in ("starts", "crop_coords", "crop_size", "stitch_coords")
        }
        for d in np.unique(stack):
            sel = stack == d
            lay = self._layouts[int(d)]
            pos = np.unravel_index(local[sel], [len(a["starts"]) for a in lay])
            for key, arr in arrays.items():
                arr[sel] = np.stack([a[key][p] for a, p in zip(lay, pos)], axis=1)
        return PatchSpecsBatch(
            data_idx=stack,
            sample_idx=self._gs_sample[gs],
            coords=arrays["starts"],
            patch_size=np.broadcast_to(np.asarray(self._ps, np.int64), (n, nd)),
            crop_coords=arrays["crop_coords"],
            crop_size=arrays["crop_size"],
            stitch_coords=arrays["stitch_coords"],
            total_tiles=np.asarray(self._total, dtype=np.int64)[stack],
        )


def stitch_tiles(
    tiles: Iterable[Any],
    specs: Iterable[PatchSpecs],
    *,
    data_shape: Sequence[int] | None = None,
    out: Any = None,
) -> Any:
    """Reassemble predicted tiles of one image stack.

    Parameters
    ----------
    tiles : iterable of array, each C(Z)YX
        Predictions, one per tile (numpy arrays or CPU tensors).
    specs : iterable of TileSpecs
        The tiles' specifications, in the same order; all from one image stack.
    data_shape : sequence of int, optional
        Output shape SC(Z)YX (C may differ from the input's). Needed when ``out`` is
        not given; C is then taken from the first tile.
    out : array, optional
        Where to write (numpy, zarr...), shape SC(Z)YX. Only the crops are written.

    Returns
    -------
    array
        ``out``, or a new numpy array of the tiles' dtype.
    """
    data_idx = None
    for tile, spec in zip(tiles, specs):
        if not isinstance(spec, TileSpecs):
            raise TamaleInputError(
                "stitch_tiles needs TileSpecs (from TiledPatching), got " + type(spec).__name__
            )
        if data_idx is None:
            data_idx = spec.data_idx
        elif spec.data_idx != data_idx:
            raise TamaleInputError(
                f"stitch_tiles reassembles one image stack at a time; got tiles of stacks "
                f"{data_idx} and {spec.data_idx}: filter the specs by data_idx first"
            )
        tile = np.asarray(tile)
        if out is None:
            if data_shape is None:
                raise TamaleInputError("stitch_tiles needs data_shape (SC(Z)YX) or out")
            shape = (data_shape[0], tile.shape[0], *data_shape[2:])
            out = np.zeros(shape, dtype=tile.dtype)
        crop = tile[
            (slice(None), *(slice(c, c + s) for c, s in zip(spec.crop_coords, spec.crop_size)))
        ]
        dst = (
            spec.sample_idx,
            slice(None),
            *(slice(c, c + s) for c, s in zip(spec.stitch_coords, spec.crop_size)),
        )
        out[dst] = crop
    if out is None:
        raise TamaleInputError("stitch_tiles got no tiles")
    return out
