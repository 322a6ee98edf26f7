"""Remove small objects and objects touching the border, in one vectorised pass.

One block-wise scan (:func:`~tamale.proofread.stats.iter_label_stats`) counts
every object's voxels and notes which touch the border; the removal is then a
single relabelling (ids -> 0) applied through a lookup table, never one pass
over the array per object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.progress import Work, drain

from ._arrays import Region, normalize_region
from .edits import RelabelEdit, RelabelPart
from .stats import LabelStats, iter_label_stats

__all__ = ["FilterResult", "filter_labels", "iter_filter_labels"]


@dataclass(frozen=True)
class FilterResult:
    """What a filter removes.

    Attributes
    ----------
    edit : RelabelEdit
        Removed ids -> 0 (one part per plane when filtering per plane).
    n_objects : int
        Objects measured.
    n_removed : int
        Objects removed.
    """

    edit: RelabelEdit
    n_objects: int
    n_removed: int


def iter_filter_labels(
    labels: Any,
    region: Region | None = None,
    *,
    min_size: int = 100,
    remove_small: bool = True,
    remove_border: bool = False,
    per_plane_axis: int | None = None,
    cancel: Any = None,
) -> Work[FilterResult]:
    """Find the objects to remove; returns the edit (nothing is written).

    Parameters
    ----------
    labels : array
        numpy, zarr or dask labels.
    region : tuple, optional
        The current image (fixed axes), the current volume, or everything.
    min_size : int
        With ``remove_small``, objects with fewer voxels than this are removed.
    remove_small, remove_border : bool
        Which objects to remove: small ones, ones touching the region's border
        (every free face; in 3D also the first and last slice), or both.
    per_plane_axis : int, optional
        Each plane along this axis is its own image ("2D patches"): objects
        are measured and removed plane by plane.
    """
    if not (remove_small or remove_border):
        raise TamaleInputError("choose what to remove: small labels, border labels, or both")
    if min_size < 1:
        raise TamaleInputError("the minimum size must be 1 or more")
    stats: LabelStats = yield from iter_label_stats(
        labels, region, per_plane_axis=per_plane_axis, border=remove_border, cancel=cancel
    )
    remove = np.zeros(len(stats), bool)
    if remove_small:
        remove |= stats.counts < min_size
    if remove_border and stats.touches_border is not None:
        remove |= stats.touches_border
    what = []
    if remove_small:
        what.append(f"smaller than {min_size}")
    if remove_border:
        what.append("touching the border")
    description = f"remove {int(remove.sum())} label(s) {' or '.join(what)}"
    dtype = np.dtype(labels.dtype)
    if per_plane_axis is None:
        ids = stats.ids[remove]
        parts = (RelabelPart(region, ids, np.zeros(len(ids), dtype)),) if len(ids) else ()
    else:
        reg = normalize_region(region, labels.shape)
        parts_list = []
        for plane in np.unique(stats.planes[remove]).tolist():
            ids = stats.ids[remove & (stats.planes == plane)]
            sub = tuple(
                int(plane)
                if a == per_plane_axis
                else (s.start if region is not None and not isinstance(region[a], slice) else s)
                for a, s in enumerate(reg)
            )
            parts_list.append(RelabelPart(sub, ids, np.zeros(len(ids), dtype)))
        parts = tuple(parts_list)
    return FilterResult(RelabelEdit(parts, description), len(stats), int(remove.sum()))


def filter_labels(labels, region=None, *, progress=None, cancel=None, **kwargs) -> FilterResult:
    """Plain wrapper of :func:`iter_filter_labels`."""
    return drain(iter_filter_labels(labels, region, cancel=cancel, **kwargs), progress, cancel)
