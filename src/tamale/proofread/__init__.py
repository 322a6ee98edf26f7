"""Proofreading: edit panoptic/instance labels of EM images and volumes.

Every tool computes an *edit* (:mod:`tamale.proofread.edits`) without touching
the labels; the caller applies it (the napari plugin through
``Labels.data_setitem`` so undo works, scripts with :func:`apply_edit`, which
writes zarr stores chunk by chunk). Tools work on numpy, zarr and dask labels
(dask is read-only: convert before applying), on 2D images, 3D volumes and
4D flipbook stacks through a *region* (the plane or volume being edited).

============================  ==============================================
tool                          function
============================  ==============================================
pick objects                  :func:`resolve_picks`, :func:`line_pixels`
merge / delete                :func:`merge_labels`, :func:`delete_labels`
split                         :func:`iter_split_labels`
morph                         :func:`iter_morph_labels`
filter                        :func:`iter_filter_labels`
count                         :func:`iter_count_labels`
jump to label                 :func:`iter_locate_label`
next free label / new ids     :func:`iter_next_free_label`, :func:`iter_allocate_ids`
export                        :func:`iter_export_stack`, :func:`iter_export_tiff`,
                              :func:`iter_export_ome_zarr`, :func:`iter_copy_to_zarr`,
                              :func:`iter_copy_to_numpy`
============================  ==============================================
"""

from __future__ import annotations

from ._arrays import Region, backend, is_writable
from .count import CountRow, CountTable, count_labels, iter_count_labels, parse_class_names
from .edits import (
    Edit,
    RelabelEdit,
    RelabelPart,
    SparseEdit,
    apply_edit,
    iter_apply_edit,
    iter_materialize,
)
from .export import (
    iter_copy_to_numpy,
    iter_copy_to_zarr,
    iter_export_ome_zarr,
    iter_export_stack,
    iter_export_tiff,
    stack_file_names,
)
from .filter import FilterResult, filter_labels, iter_filter_labels
from .ids import iter_allocate_ids, iter_label_max, iter_next_free_label, next_free_label
from .locate import LabelLocation, iter_locate_label, locate_label
from .merge import delete_labels, merge_labels, merge_target
from .morph import OPERATIONS, iter_morph_labels, morph_labels
from .picks import Picks, line_pixels, resolve_picks
from .split import iter_split_labels, split_labels
from .stats import LabelStats, iter_label_stats

__all__ = [
    "OPERATIONS",
    "CountRow",
    "CountTable",
    "Edit",
    "FilterResult",
    "LabelLocation",
    "LabelStats",
    "Picks",
    "Region",
    "RelabelEdit",
    "RelabelPart",
    "SparseEdit",
    "apply_edit",
    "backend",
    "count_labels",
    "delete_labels",
    "filter_labels",
    "is_writable",
    "iter_allocate_ids",
    "iter_apply_edit",
    "iter_copy_to_numpy",
    "iter_copy_to_zarr",
    "iter_count_labels",
    "iter_export_ome_zarr",
    "iter_export_stack",
    "iter_export_tiff",
    "iter_filter_labels",
    "iter_label_max",
    "iter_label_stats",
    "iter_locate_label",
    "iter_materialize",
    "iter_morph_labels",
    "iter_next_free_label",
    "iter_split_labels",
    "line_pixels",
    "locate_label",
    "merge_labels",
    "merge_target",
    "morph_labels",
    "next_free_label",
    "parse_class_names",
    "resolve_picks",
    "split_labels",
    "stack_file_names",
]
