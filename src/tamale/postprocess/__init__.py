"""Panoptic post-processing: from network outputs to labels, and labels to targets.

The 2D pipeline has three public steps, so that 3D inference can filter semantic
probabilities across slices between steps 1 and 3. Everything carries a batch dimension
``N`` (images of a batch, or slices of a stack) and runs on the tensors' device
(CPU, CUDA or MPS); only the last step, connected components, runs on the host.

1. **Model outputs → :class:`RawPrediction`** (``tamale.inference.predict_raw``): the
   image is downsampled by ``f``, normalised and padded to the model's padding factor;
   the network renders semantic logits back up by ``f`` (PointRend) and predicts the
   center heatmap and offsets at 1/4 of its input (``stride=4``) or at its input
   resolution (``stride=1``, "fine boundaries"). ``RawPrediction.sem_probs`` holds
   probabilities (sigmoid for one channel, softmax otherwise) at the **original**
   resolution with the padding cropped; ``ctr_hmp`` and ``offsets`` stay on the
   model's grid (padding included), since instance grouping happens there.

2. *(3D only)* filter ``sem_probs`` across slices, e.g. a median over neighbouring
   slices: ``dataclasses.replace(raw, sem_probs=filtered)``.

3. **RawPrediction + PostprocessConfig → panoptic labels** (:func:`postprocess`,
   uint32, shape (N, H, W), original resolution):

   a. semantic: ``prob >= confidence_thr`` for binary models, argmax for multi-class
      (:func:`harden_semantic`);
   b. centres: threshold + non-maximum suppression in a ``centers_min_distance`` window
      (+ optional top-k) (:func:`find_centers`);
   c. grouping: every heatmap grid point joins the centre nearest to where its offset
      points (:func:`group_pixels`); the id map is upsampled (nearest) by
      ``stride * f`` and cropped (:func:`instance_cells`);
   d. merge: thing pixels take their cell's id, each cell's class by majority vote,
      ids ``class * label_divisor + k``; stuff classes of at least ``stuff_area``
      pixels get ``class * label_divisor``; a class with ``label_divisor`` objects or
      more raises an error (:func:`merge_semantic_and_instance`,
      :func:`panoptic_labels`);
   e. connected components: each 8-connected piece of an instance gets its own id, and
      the instances of each class are renumbered in raster order
      (:func:`split_disconnected`).

   ``semantic_only`` skips b, c and e: every class becomes one region.

The result equals the reference algorithm (Panoptic-DeepLab's post-processing as used by
empanada-napari's 2D inference, plus its connected-component step) on the same outputs,
with two deliberate differences: the class vote and the stuff area count only pixels
inside the image (not the padding), and an overflow of ``label_divisor`` is an error.

:func:`make_targets` goes the other way: semantic, center-heatmap and offset targets
from ground truth. Post-processing targets made at ``stride=1`` with ``stride=1``
returns the ground truth exactly.

3D parts: :mod:`~tamale.postprocess.median` (true median filter across slices),
:mod:`~tamale.postprocess.pieces` (2D pieces and their overlaps),
:mod:`~tamale.postprocess.linking` (slice-to-slice linking, size and extent filters,
numbering) and :mod:`~tamale.postprocess.consensus` (ortho-plane consensus).
"""

from tamale.postprocess.centers import find_centers
from tamale.postprocess.config import MAX_LABEL, PostprocessConfig
from tamale.postprocess.grouping import group_pixels, nearest_center
from tamale.postprocess.panoptic import (
    ClassTable,
    RawPrediction,
    drop_small_instances,
    harden_semantic,
    instance_cells,
    merge_semantic_and_instance,
    panoptic_labels,
    postprocess,
    renumber_instances,
    split_disconnected,
)
from tamale.postprocess.targets import PanopticTargets, instance_centers, make_targets

__all__ = [
    "MAX_LABEL",
    "ClassTable",
    "PanopticTargets",
    "PostprocessConfig",
    "RawPrediction",
    "drop_small_instances",
    "find_centers",
    "group_pixels",
    "harden_semantic",
    "instance_cells",
    "instance_centers",
    "make_targets",
    "merge_semantic_and_instance",
    "nearest_center",
    "panoptic_labels",
    "postprocess",
    "renumber_instances",
    "split_disconnected",
]
