"""From raw network outputs to panoptic labels: semantics, instances, merge, split.

See the package docstring (:mod:`tamale.postprocess`) for the pipeline and its steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import torch
from skimage.measure import label as cc_label

from tamale.errors import TamaleInputError
from tamale.postprocess.centers import find_centers
from tamale.postprocess.config import MAX_LABEL, PostprocessConfig
from tamale.postprocess.grouping import group_pixels

__all__ = [
    "ClassTable",
    "RawPrediction",
    "harden_semantic",
    "instance_cells",
    "merge_semantic_and_instance",
    "panoptic_labels",
    "postprocess",
    "renumber_instances",
    "split_disconnected",
]


class _ClassLike(Protocol):
    id: int
    kind: str


@dataclass(frozen=True)
class ClassTable:
    """Which class each semantic channel is, and which classes are instances.

    Attributes
    ----------
    class_ids : tuple of int
        Class id of each hardened semantic value: index 0 is background (0), index
        ``i >= 1`` is the i-th model class (binary models have exactly one).
    things : frozenset of int
        Class ids whose pixels are grouped into instances.
    names : dict of int -> str
        Class id -> name, for messages.
    """

    class_ids: tuple[int, ...]
    things: frozenset[int]
    names: dict[int, str]

    @classmethod
    def from_classes(cls, classes: Sequence[_ClassLike]) -> ClassTable:
        """Build from a model card's ``classes`` (``ClassSpec`` objects, in output order)."""
        ids = tuple(int(c.id) for c in classes)
        return cls(
            class_ids=(0, *ids),
            things=frozenset(int(c.id) for c in classes if c.kind == "instance"),
            names={int(c.id): str(getattr(c, "name", c.id)) for c in classes},
        )

    @classmethod
    def binary(cls, class_id: int = 1, name: str = "foreground") -> ClassTable:
        """One instance class (the usual mitochondria model)."""
        return cls(class_ids=(0, class_id), things=frozenset({class_id}), names={class_id: name})

    def semantic_only(self) -> ClassTable:
        """The same classes, all treated as semantic (stuff)."""
        return replace(self, things=frozenset())

    def name(self, class_id: int) -> str:
        return self.names.get(class_id, str(class_id))

    def check_divisor(self, label_divisor: int) -> None:
        """Refuse a divisor whose largest id would not fit in uint32."""
        top = (max(self.class_ids) + 1) * label_divisor - 1
        if top > MAX_LABEL:
            raise TamaleInputError(
                f"max objects per class {label_divisor} is too large for class id "
                f"{max(self.class_ids)}: labels would exceed the uint32 range; use at most "
                f"{(MAX_LABEL + 1) // (max(self.class_ids) + 1)}"
            )


@dataclass(frozen=True)
class RawPrediction:
    """Network outputs ready for post-processing (step 1 of the pipeline).

    Attributes
    ----------
    sem_probs : Tensor, shape (N, C, H, W)
        Semantic probabilities at the original image resolution (sigmoid for C = 1,
        softmax over background + classes otherwise), padding cropped.
    ctr_hmp : Tensor, shape (N, 1, h, w)
        Center heatmaps on the model's grid (padded model input / ``stride``).
    offsets : Tensor, shape (N, 2, h, w)
        ``(dy, dx)`` to the object centre, in model-input pixels.
    stride : int
        Model-input pixels per heatmap pixel (4 = coarse, 1 = fine boundaries).
    downsampling : int
        Original pixels per model-input pixel.
    """

    sem_probs: torch.Tensor
    ctr_hmp: torch.Tensor
    offsets: torch.Tensor
    stride: int = 4
    downsampling: int = 1

    def __post_init__(self) -> None:
        n = self.sem_probs.shape[0]
        if self.sem_probs.ndim != 4:
            raise ValueError(f"sem_probs must be (N, C, H, W), got {tuple(self.sem_probs.shape)}")
        if self.ctr_hmp.ndim != 4 or self.ctr_hmp.shape[:2] != (n, 1):
            raise ValueError(f"ctr_hmp must be (N, 1, h, w), got {tuple(self.ctr_hmp.shape)}")
        if self.offsets.shape != (n, 2, *self.ctr_hmp.shape[2:]):
            raise ValueError(
                f"offsets must be (N, 2, h, w) like the heatmap, got {tuple(self.offsets.shape)}"
            )
        scale = self.stride * self.downsampling
        h, w = self.ctr_hmp.shape[2:]
        if h * scale < self.image_shape[0] or w * scale < self.image_shape[1]:
            raise ValueError(
                f"heatmap {h}x{w} at scale {scale} does not cover the image {self.image_shape}"
            )

    @property
    def image_shape(self) -> tuple[int, int]:
        """(H, W) of the original image."""
        return int(self.sem_probs.shape[2]), int(self.sem_probs.shape[3])

    @property
    def batch_size(self) -> int:
        return int(self.sem_probs.shape[0])

    def __getitem__(self, index: slice | int) -> RawPrediction:
        """The images ``index`` of the batch (an int keeps the batch dimension)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return replace(
            self,
            sem_probs=self.sem_probs[index],
            ctr_hmp=self.ctr_hmp[index],
            offsets=self.offsets[index],
        )


def harden_semantic(sem_probs: torch.Tensor, confidence_thr: float = 0.5) -> torch.Tensor:
    """Semantic index per pixel: ``prob >= thr`` for one channel, argmax otherwise.

    Returns an int64 tensor of shape (N, H, W) with values in ``[0, C]`` for binary
    (0/1) and ``[0, C-1]`` for multi-class outputs.
    """
    if sem_probs.shape[1] == 1:
        return (sem_probs[:, 0] >= confidence_thr).long()
    return torch.argmax(sem_probs, dim=1)


def instance_cells(raw: RawPrediction, config: PostprocessConfig) -> torch.Tensor:
    """Instance ids before masking, at the original resolution: (N, H, W) int64.

    Centres are found per image (threshold + NMS (+ top-k)), pixels of the heatmap grid
    grouped to the nearest centre, and the id map upsampled (nearest) by ``stride *
    downsampling`` and cropped to the image.
    """
    h, w = raw.image_shape
    scale = raw.stride * raw.downsampling
    dev = raw.ctr_hmp.device
    centers = find_centers(
        raw.ctr_hmp, config.center_confidence_thr, config.centers_min_distance, config.top_k
    )
    rows = torch.arange(h, device=dev) // scale
    cols = torch.arange(w, device=dev) // scale
    out = torch.empty((raw.batch_size, h, w), dtype=torch.long, device=dev)
    for b, ctr in enumerate(centers):
        grid = group_pixels(ctr, raw.offsets[b], step=raw.stride)
        out[b] = grid[rows][:, cols]
    return out


def _count(index: torch.Tensor, size: int) -> torch.Tensor:
    """Occurrences of each value of a flat int64 tensor (like bincount; MPS-safe)."""
    counts = torch.zeros(size, dtype=torch.int32, device=index.device)
    return counts.index_add_(
        0, index, torch.ones(index.shape[0], dtype=torch.int32, device=index.device)
    )


def merge_semantic_and_instance(
    semantic: torch.Tensor,
    instances: torch.Tensor,
    classes: ClassTable,
    label_divisor: int,
    stuff_area: int = 64,
) -> torch.Tensor:
    """Panoptic ids of one image from its semantic indices and instance cells.

    Thing pixels take the id of their instance cell, each cell's class is the most
    frequent thing class among its pixels (ties: the lower class index), and the
    cells of a class are numbered ``1, 2, ...`` in order of cell id: the panoptic id
    is ``class * label_divisor + k``. Stuff classes covering at least ``stuff_area``
    pixels get ``class * label_divisor``; everything else is 0.

    Parameters
    ----------
    semantic : Tensor of int64, shape (H, W)
        Hardened semantic indices (into ``classes.class_ids``).
    instances : Tensor of int64, shape (H, W)
        Instance cells (0 = none), e.g. from :func:`instance_cells`.

    Raises
    ------
    TamaleInputError
        When a class has ``label_divisor`` objects or more.
    """
    dev = semantic.device
    n_sem = len(classes.class_ids)
    class_ids = torch.tensor(classes.class_ids, dtype=torch.long, device=dev)
    is_thing = torch.tensor(
        [c in classes.things for c in classes.class_ids], dtype=torch.bool, device=dev
    )
    sem = semantic.reshape(-1)
    thing_px = is_thing[sem]
    ins = torch.where(thing_px, instances.reshape(-1), torch.zeros_like(sem))
    n_cells = int(ins.max()) + 1 if ins.numel() else 1

    pan = torch.zeros_like(sem)
    if n_cells > 1:
        votes = _count(ins * n_sem + sem, n_cells * n_sem).reshape(n_cells, n_sem)
        votes[0] = 0
        cls_idx = torch.argmax(votes, dim=1)  # first maximum: lowest class index
        valid = votes.sum(dim=1) > 0
        member = torch.zeros((n_cells, n_sem), dtype=torch.long, device=dev)
        member[valid, cls_idx[valid]] = 1
        rank = torch.cumsum(member, dim=0).gather(1, cls_idx[:, None])[:, 0]
        per_class = member.sum(dim=0)
        _check_overflow(per_class, classes, label_divisor)
        lut = torch.where(valid, class_ids[cls_idx] * label_divisor + rank, torch.zeros_like(rank))
        pan = lut[ins]
    area = _count(sem, n_sem)
    stuff_ok = (~is_thing) & (area >= stuff_area) & (class_ids > 0)
    pan = torch.where(stuff_ok[sem], class_ids[sem] * label_divisor, pan)
    return pan.reshape(semantic.shape)


def _check_overflow(per_class: torch.Tensor, classes: ClassTable, label_divisor: int) -> None:
    worst = int(per_class.max()) if per_class.numel() else 0
    if worst >= label_divisor:
        idx = int(torch.argmax(per_class))
        cid = classes.class_ids[idx] if idx < len(classes.class_ids) else idx
        raise TamaleInputError(
            f"{worst} objects of class {classes.name(cid)!r} do not fit under 'max objects per "
            f"class' = {label_divisor} (at most {label_divisor - 1}); raise it, e.g. to "
            f"{10 ** len(str(worst))}"
        )


def panoptic_labels(
    raw: RawPrediction, config: PostprocessConfig, classes: ClassTable
) -> torch.Tensor:
    """Step 3 without connected-component splitting: (N, H, W) int64 on the device."""
    classes.check_divisor(config.label_divisor)
    if config.semantic_only:
        classes = classes.semantic_only()
    semantic = harden_semantic(raw.sem_probs, config.confidence_thr)
    if classes.things:
        cells = instance_cells(raw, config)
    else:
        cells = torch.zeros_like(semantic)
    return torch.stack(
        [
            merge_semantic_and_instance(
                semantic[b], cells[b], classes, config.label_divisor, config.stuff_area
            )
            for b in range(raw.batch_size)
        ]
    )


def renumber_instances(
    labels: np.ndarray,
    things: Sequence[int] | frozenset[int],
    label_divisor: int,
    *,
    source_divisor: int | None = None,
    split: bool = True,
) -> np.ndarray:
    """Renumber the instances of each thing class ``1, 2, ...`` in raster order.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W) or (N, H, W)
        Panoptic-like labels whose class is ``value // source_divisor``; instance pixels
        are those of thing classes with ``value % source_divisor > 0``. Every other
        pixel becomes ``class * label_divisor``. A stack is renumbered image by image.
    things : classes whose values are instances
    label_divisor : int
        Divisor of the result.
    source_divisor : int, optional
        Divisor of ``labels`` (default: ``label_divisor``); instance values may exceed it
        (provisional ids).
    split : bool
        Number the connected pieces (8-connectivity) of equal value separately (what
        ``skimage.measure.label`` numbers: raster order of their first pixel);
        otherwise each distinct value is one object, numbered by its first pixel.

    Returns
    -------
    ndarray of uint32, ids ``class * label_divisor + k``.

    Raises
    ------
    TamaleInputError
        When a class has ``label_divisor`` objects or more.
    """
    labels = np.asarray(labels)
    if labels.ndim == 3:
        return np.stack(
            [
                renumber_instances(
                    img, things, label_divisor, source_divisor=source_divisor, split=split
                )
                for img in labels
            ]
        ).reshape(labels.shape)
    src = source_divisor or label_divisor
    labels = labels.astype(np.int64, copy=False)
    cls = labels // src
    things_arr = np.asarray(sorted(int(t) for t in things), dtype=np.int64)
    inst = np.isin(cls, things_arr) & (labels % src > 0)
    out = cls * label_divisor
    if inst.any():
        if split:
            pieces = cc_label(np.where(inst, labels, 0), background=0, connectivity=2)
        else:
            values = labels[inst]
            uniq, first = np.unique(values, return_index=True)
            rank = np.empty(len(uniq), np.int64)
            rank[np.argsort(first, kind="stable")] = np.arange(1, len(uniq) + 1)
            pieces = np.zeros(labels.shape, np.int64)
            pieces[inst] = rank[np.searchsorted(uniq, values)]
        n = int(pieces.max())
        piece_class = np.zeros(n + 1, np.int64)
        piece_class[pieces[inst]] = cls[inst]
        # k = rank of each piece among the pieces of its class, in piece order
        order = np.argsort(piece_class[1:], kind="stable") + 1
        sorted_cls = piece_class[order]
        starts = np.searchsorted(sorted_cls, sorted_cls, side="left")
        k = np.zeros(n + 1, np.int64)
        k[order] = np.arange(n) - starts + 1
        worst = int(k.max())
        if worst >= label_divisor:
            bad = int(piece_class[np.argmax(k)])
            raise TamaleInputError(
                f"{worst} objects of class {bad} do not fit under 'max objects per class' = "
                f"{label_divisor} (at most {label_divisor - 1}); raise it, e.g. to "
                f"{10 ** len(str(worst))}"
            )
        out[inst] = (piece_class * label_divisor + k)[pieces[inst]]
    return out.astype(np.uint32)


def split_disconnected(
    labels: np.ndarray, things: Sequence[int] | frozenset[int], label_divisor: int
) -> np.ndarray:
    """Give every connected piece of an instance its own id; renumber instances.

    Pixels of thing classes are labelled by connected regions of equal value
    (8-connectivity); the regions of each class are numbered ``1, 2, ...`` in raster
    order of their first pixel (what ``skimage.measure.label`` numbers) and get
    ``class * label_divisor + k``. Stuff pixels keep ``class * label_divisor``.
    ``labels`` may be (H, W) or a stack (N, H, W), processed image by image; the
    result is uint32. Raises :class:`TamaleInputError` when a class ends up with
    ``label_divisor`` pieces or more.
    """
    return renumber_instances(labels, things, label_divisor, split=True)


def postprocess(raw: RawPrediction, config: PostprocessConfig, classes: ClassTable) -> np.ndarray:
    """Step 3 of the pipeline: panoptic uint32 labels (N, H, W) at the original resolution.

    :func:`panoptic_labels` on the device, then (``config.split_disconnected``, not in
    semantic-only mode) :func:`split_disconnected` on the host.
    """
    pan = panoptic_labels(raw, config, classes).cpu().numpy()
    things = set() if config.semantic_only else classes.things
    if config.split_disconnected and things:
        return split_disconnected(pan, things, config.label_divisor)
    return pan.astype(np.uint32)


def drop_small_instances(
    labels: np.ndarray,
    things: Sequence[int] | frozenset[int],
    label_divisor: int,
    min_area: int,
) -> np.ndarray:
    """Zero the instances of thing classes covering fewer than ``min_area`` pixels.

    ``labels`` is one panoptic image (``class * label_divisor + instance``); stuff pixels
    and instances at least ``min_area`` large are kept unchanged (ids are not renumbered).
    ``min_area <= 0`` returns ``labels`` itself.
    """
    if min_area <= 0:
        return labels
    labels = np.asarray(labels)
    flat = labels.ravel()
    top = int(flat.max()) if flat.size else 0
    if top < 4 * flat.size + 2**16:  # ids small enough to count directly (the usual case)
        counts = np.bincount(flat, minlength=top + 1)
        ids = np.flatnonzero(counts)
        counts = counts[ids]
        index = None
    else:  # huge sparse ids: count by sorting instead
        ids, index, counts = np.unique(flat, return_inverse=True, return_counts=True)
    cls = ids // label_divisor
    instance = (ids % label_divisor > 0) & np.isin(cls, np.asarray(sorted(things), dtype=cls.dtype))
    small = instance & (counts < min_area)
    if not small.any():
        return labels
    if index is None:
        drop = np.zeros(top + 1, dtype=bool)
        drop[ids[small]] = True
        mask = drop[flat]
    else:
        mask = small[index]
    return np.where(mask.reshape(labels.shape), 0, labels).astype(labels.dtype, copy=False)
