"""Split picked objects by a watershed.

Two ways to seed the watershed inside each picked object:

* **distance** (default): peaks of the Euclidean distance transform at least
  ``min_distance`` pixels apart, flooded over ``-distance``;
* **points as markers**: each pick is a seed and the object is flooded
  geodesically (a flat energy) from them.

Every piece gets a new id that exists nowhere in the labels (the whole volume,
not only the plane being edited), or ids from a given start id after checking
they are free everywhere. Pieces the watershed cannot reach (a disconnected
part holding no seed) keep the original id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.progress import ProgressEvent, Work, check, drain

from ._arrays import Region, fixed_axes, normalize_region, read
from .edits import SparseEdit, check_ids_fit
from .ids import iter_allocate_ids
from .picks import Picks
from .stats import iter_label_stats

__all__ = ["iter_split_labels", "split_labels", "watershed_pieces"]


@dataclass(frozen=True)
class _Object:
    label_id: int
    box: tuple[slice, ...]  # absolute, full dimensionality
    pieces: np.ndarray  # watershed result inside box (squeezed), 0 = not reached
    n: int


def watershed_pieces(
    mask: np.ndarray,
    *,
    min_distance: int = 10,
    markers: np.ndarray | None = None,
    sampling: tuple[float, ...] | None = None,
) -> tuple[np.ndarray, int]:
    """Cut a binary ``mask`` into pieces; returns (pieces 1..n, n).

    ``markers``: integer coordinates (K, mask.ndim) used as seeds; otherwise the
    distance-transform peaks at least ``min_distance`` apart.
    """
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    if markers is not None:
        seeds = np.zeros(mask.shape, dtype=np.int32)
        for k, point in enumerate(markers, start=1):
            if seeds[tuple(point)] == 0:
                seeds[tuple(point)] = k
        kept = np.unique(seeds[seeds > 0])
        relabel = np.zeros(int(seeds.max()) + 1, np.int32)
        relabel[kept] = np.arange(1, len(kept) + 1)
        seeds = relabel[seeds]
        energy = np.zeros(mask.shape, dtype=np.float32)
    else:
        # pad with background: outside the crop is outside the object
        distance = ndi.distance_transform_edt(np.pad(mask, 1), sampling=sampling)
        distance = distance[tuple(slice(1, -1) for _ in range(mask.ndim))]
        peaks = peak_local_max(
            distance,
            min_distance=max(1, int(min_distance)),
            labels=mask.astype(np.int32),
            exclude_border=False,
        )
        peak_mask = np.zeros(mask.shape, dtype=bool)
        if len(peaks):
            peak_mask[tuple(peaks.T)] = True
        seeds, _ = ndi.label(peak_mask)
        energy = -distance
    n = int(seeds.max())
    if n < 2:
        return np.zeros(mask.shape, np.int32), n
    pieces = watershed(energy, seeds, mask=mask)
    return pieces.astype(np.int32), n


def _bboxes(labels, ids, region, cancel) -> Work[dict[int, tuple[slice, ...]]]:
    stats = yield from iter_label_stats(labels, region, bboxes=True, only_ids=ids, cancel=cancel)
    return {
        int(i): tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
        for i, lo, hi in zip(stats.ids, stats.bbox_lo, stats.bbox_hi)
    }


def iter_split_labels(
    labels: Any,
    picks: Picks,
    region: Region | None = None,
    *,
    min_distance: int = 10,
    points_as_markers: bool = False,
    start_id: int | None = None,
    label_divisor: int = 0,
    sampling: tuple[float, ...] | None = None,
    cancel: Any = None,
) -> Work[SparseEdit]:
    """Split each picked object inside ``region``; returns the edit (nothing written).

    Parameters
    ----------
    labels : array
        numpy, zarr or dask labels.
    picks : Picks
        Points on the objects to split (background picks removed).
    region : tuple, optional
        The plane (fixed axes) or volume where the split applies.
    min_distance : int
        Minimum distance, in pixels, between distance-transform peaks (seeds).
    points_as_markers : bool
        Use every pick as a seed instead (at least two per object).
    start_id : int, optional
        First new id; all new ids must be unused anywhere in the labels.
    label_divisor : int
        With a divisor > 0, new ids are the smallest free ids of the object's
        class (``id // divisor``), so pieces stay in their class.
    sampling : tuple of float, optional
        Voxel size per axis, for an anisotropic distance transform.

    Raises
    ------
    TamaleInputError
        Fewer than two seeds for an object; ids in use or overflowing.
    """
    shape = tuple(labels.shape)
    normalize_region(region, shape)  # validates the region
    fixed = set(fixed_axes(region))
    free_axes = [a for a in range(len(shape)) if a not in fixed]
    ids = picks.unique_ids
    if len(ids) == 0:
        raise TamaleInputError("place a point on the object to split")
    boxes = yield from _bboxes(labels, ids, region, cancel)
    sub_sampling = None if sampling is None else tuple(sampling[a] for a in free_axes)
    objects: list[_Object] = []
    for k, label_id in enumerate(ids.tolist(), start=1):
        check(cancel)
        box = boxes[label_id]
        crop = read(labels, box)
        mask = (
            np.squeeze(crop == label_id, axis=tuple(sorted(fixed))) if fixed else crop == label_id
        )
        markers = None
        if points_as_markers:
            mine = picks.coords[picks.ids == label_id]
            origin = np.array([s.start for s in box])
            local = (mine - origin)[:, free_axes]
            if len(np.unique(local, axis=0)) < 2:
                raise TamaleInputError(
                    f"label {label_id} has fewer than two markers: place at least two points "
                    "on it (one per piece) to split it with 'use points as markers'"
                )
            markers = local
        pieces, n = watershed_pieces(
            mask, min_distance=min_distance, markers=markers, sampling=sub_sampling
        )
        if n < 2:
            raise TamaleInputError(
                f"nothing to split: label {label_id} gives only {n} marker at minimum distance "
                f"{min_distance}; lower the minimum distance or use points as markers"
            )
        objects.append(_Object(label_id, box, pieces, n))
        yield ProgressEvent("split", k, len(ids), f"splitting label {label_id}")
    total = sum(o.n for o in objects)
    classes = sorted({o.label_id // label_divisor for o in objects}) if label_divisor > 0 else []
    if start_id is not None or label_divisor <= 0:
        if start_id is not None and len(classes) > 1:
            raise TamaleInputError(
                "the picked objects belong to different classes; split them one at a time "
                "when giving a start id"
            )
        new_ids = yield from iter_allocate_ids(
            labels,
            total,
            start_id=start_id,
            class_id=classes[0] if classes else None,
            label_divisor=label_divisor,
            cancel=cancel,
        )
        pools = {cls: list(new_ids) for cls in classes} if classes else {None: list(new_ids)}
    else:
        pools = {}
        for cls in classes:
            n = sum(o.n for o in objects if o.label_id // label_divisor == cls)
            pools[cls] = yield from iter_allocate_ids(
                labels, n, class_id=cls, label_divisor=label_divisor, cancel=cancel
            )
    ordered: list[list[int]] = []
    new_ids = []
    for o in objects:
        pool = pools[o.label_id // label_divisor if classes else None]
        ordered.append(pool[: o.n])
        del pool[: o.n]
        new_ids.extend(ordered[-1])
    check_ids_fit(labels.dtype, new_ids)
    edits = []
    for o, ids_for in zip(objects, ordered):
        lut = np.asarray([0, *ids_for], dtype=labels.dtype)
        piece = o.pieces > 0
        edits.append(
            SparseEdit.from_crop(
                piece, lut[o.pieces[piece]], o.box, tuple(sorted(fixed)), labels.dtype
            )
        )
    description = f"split {len(objects)} label(s) into {total} pieces"
    return SparseEdit.concatenate(
        edits,
        len(shape),
        labels.dtype,
        description,
        new_ids=tuple(int(i) for i in new_ids),
        shape=shape,
    )


def split_labels(labels, picks, region=None, *, progress=None, cancel=None, **kwargs) -> SparseEdit:
    """Plain wrapper of :func:`iter_split_labels`."""
    return drain(
        iter_split_labels(labels, picks, region, cancel=cancel, **kwargs), progress, cancel
    )
