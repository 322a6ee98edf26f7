"""Training and validation sets in memory: read, checked, normalised, relabelled.

:func:`load_dataset` reads a training-set directory (tamale's or empanada's layout,
images and masks paired by file name) and checks every mask against the dataset's
classes *before* anything trains:

* **single-class instance sets** (``label_divisor=None``): every nonzero value is one
  object of the only class;
* **panoptic sets**: ``value = class * divisor + instance``; a value whose class is not
  declared, or below the divisor (class 0 is background), is an error naming the file,
  the value and the declared classes.

Images keep their dtype until they are normalised exactly as at inference
(:func:`tamale.inference.make_normalizer`: uint8 through the norms, everything else
through robust percentiles), so 16-bit data trains at full precision. Masks are
relabelled per image to compact ids ``0..K`` with a look-up table giving each id's
semantic channel and whether it is an instance: the ids then survive float resampling
exactly, and targets need no divisor arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tamale.datasets import read_image, read_mask, scan_training_set
from tamale.errors import TamaleInputError
from tamale.inference.normalize import make_normalizer
from tamale.progress import CancelToken, ProgressEvent, Work, check
from tamale.registry.card import ClassSpec, Norms

__all__ = [
    "DatasetSpec",
    "LoadedImage",
    "LoadedSet",
    "data_norms",
    "downsample_pair",
    "iter_load_dataset",
]


@dataclass(frozen=True)
class DatasetSpec:
    """How mask values map to classes.

    Attributes
    ----------
    classes : list of ClassSpec
        The model's classes in output order (channel ``i + 1`` is ``classes[i]``; a
        one-class model has one sigmoid channel).
    label_divisor : int or None
        None: every nonzero value is an object of the only class.
    """

    classes: Sequence[ClassSpec]
    label_divisor: int | None

    @property
    def things(self) -> frozenset[int]:
        return frozenset(c.id for c in self.classes if c.kind == "instance")

    def channel_of(self) -> dict[int, int]:
        """Class id → semantic channel (1-based; 0 is background)."""
        return {c.id: i + 1 for i, c in enumerate(self.classes)}


@dataclass
class LoadedImage:
    """One image of a set, ready for patching.

    Attributes
    ----------
    name : str
        ``source/file`` (for messages).
    image : ndarray of float32 (H, W)
        Normalised as at inference (0 is the training mean).
    compact : ndarray of int32 (H, W)
        Compact ids ``0..K`` (0 = background).
    lut : ndarray of int64 (K + 1, 2)
        Per compact id: semantic channel, 1 if an instance (else 0).
    mask : ndarray of uint32 or None
        The original mask (validation sets only, for the metrics).
    """

    name: str
    image: np.ndarray
    compact: np.ndarray
    lut: np.ndarray
    mask: np.ndarray | None = None

    @property
    def n_objects(self) -> int:
        return int(self.lut[1:, 1].sum())


@dataclass
class LoadedSet:
    """A training or validation set in memory."""

    root: Path
    spec: DatasetSpec
    items: list[LoadedImage] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    """Names of the images whose mask is empty (kept: they teach "nothing here")."""

    @property
    def shapes(self) -> list[tuple[int, int]]:
        return [tuple(it.image.shape) for it in self.items]  # type: ignore[misc]


def _check_values(name: str, values: np.ndarray, spec: DatasetSpec) -> None:
    """Refuse mask values that belong to no declared class."""
    if spec.label_divisor is None:
        return
    div = spec.label_divisor
    nonzero = values[values > 0].astype(np.int64)
    classes = np.unique(nonzero // div)
    declared = sorted(c.id for c in spec.classes)
    listing = ", ".join(f"{c.id} ({c.name})" for c in spec.classes)
    if classes.size and classes[0] == 0:
        bad = int(nonzero[nonzero < div][0])
        raise TamaleInputError(
            f"mask {name} holds label {bad}, below the label divisor {div}: with a divisor, "
            f"labels are class * {div} + instance (class 0 is background). Relabel the mask "
            f"(e.g. {div + 1} for the first object of class 1) or fix the label divisor"
        )
    unknown = [int(c) for c in classes if int(c) not in declared]
    if unknown:
        example = int(nonzero[(nonzero // div) == unknown[0]][0])
        raise TamaleInputError(
            f"mask {name} holds label {example} (class {unknown[0]} with divisor {div}), but "
            f"the dataset labels declare only class(es) {listing}: declare the class, fix the "
            "label divisor, or relabel the mask"
        )


def _compact(mask: np.ndarray, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray]:
    values, inverse = np.unique(mask, return_inverse=True)
    if values[0] != 0:
        values = np.concatenate([[0], values])
        inverse = inverse + 1
    lut = np.zeros((len(values), 2), dtype=np.int64)
    if spec.label_divisor is None:
        lut[1:, 0] = 1
        lut[1:, 1] = 1 if spec.things else 0
    else:
        channel = spec.channel_of()
        things = spec.things
        cls = values[1:].astype(np.int64) // spec.label_divisor
        lut[1:, 0] = [channel[int(c)] for c in cls]
        lut[1:, 1] = [1 if int(c) in things else 0 for c in cls]
    return inverse.reshape(mask.shape).astype(np.int32), lut


def downsample_pair(image: np.ndarray, mask: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Image and mask at ``1/f`` resolution, aligned as 2D inference aligns them.

    The image is area-averaged over ``f x f`` blocks after replicating its last row and
    column up to a multiple of ``f`` (exactly :func:`tamale.inference.model_input`); the
    mask takes the pixel nearest each block's centre.
    """
    import torch

    from tamale.inference.predict import model_input

    small = model_input(torch.from_numpy(image)[None], f, 1)[0, 0].numpy()
    h, w = small.shape
    ys = np.minimum(np.arange(h) * f + f // 2, mask.shape[0] - 1)
    xs = np.minimum(np.arange(w) * f + f // 2, mask.shape[1] - 1)
    return np.ascontiguousarray(small), np.ascontiguousarray(mask[np.ix_(ys, xs)])


def data_norms(root: str | Path) -> Norms:
    """Mean and standard deviation of a training set's intensities, on the 0-1 scale
    inference maps them to (uint8: /255; other types: robust percentiles)."""
    total = 0.0
    total_sq = 0.0
    count = 0
    index = scan_training_set(root)
    for pair in index.pairs:
        image = read_image(pair.image)
        v = make_normalizer(image, Norms(mean=0.0, std=1.0))(image).astype(np.float64)
        total += float(v.sum())
        total_sq += float((v * v).sum())
        count += v.size
    if count == 0:
        return Norms()
    mean = total / count
    std = max((total_sq / count - mean * mean) ** 0.5, 1e-3)
    return Norms(mean=mean, std=std)


def iter_load_dataset(
    root: str | Path,
    spec: DatasetSpec,
    norms: Norms,
    *,
    role: str = "training",
    keep_masks: bool = False,
    downsampling: int = 1,
    cancel: CancelToken | None = None,
) -> Work[LoadedSet]:
    """Read, check, normalise and relabel a training-set directory.

    Parameters
    ----------
    root : path
        The set (``<source>/images``, ``<source>/masks``).
    spec : DatasetSpec
        Classes and label divisor.
    norms : Norms
        The model's normalisation.
    role : str
        ``training`` or ``validation`` (for messages).
    keep_masks : bool
        Keep the original masks (validation).
    downsampling : int
        Shrink images and masks by this factor (images: the area average inference uses,
        :func:`tamale.inference.model_input`; masks: the centre pixel of each block).

    Raises
    ------
    TamaleInputError
        Missing directory, unpaired files (named), no pairs, image and mask of different
        shapes, multi-channel images, labels outside the declared classes.
    """
    index = scan_training_set(root)
    index.raise_for_problems()
    if not index.pairs:
        raise TamaleInputError(f"the {role} set {root} holds no image/mask pairs")
    out = LoadedSet(root=Path(root), spec=spec)
    n = len(index.pairs)
    for k, pair in enumerate(index.pairs):
        check(cancel)
        name = f"{pair.source}/{pair.name}"
        image = read_image(pair.image)
        mask = read_mask(pair.mask)
        if image.shape != mask.shape:
            raise TamaleInputError(
                f"{role} image {name} has shape {image.shape} but its mask has {mask.shape}"
            )
        values = np.unique(mask)
        _check_values(name, values, spec)
        if values.max() == 0:
            out.empty.append(name)
        normalised = make_normalizer(image, norms)(image).astype(np.float32, copy=False)
        if downsampling > 1:
            normalised, mask = downsample_pair(normalised, mask, downsampling)
        compact, lut = _compact(mask, spec)
        out.items.append(LoadedImage(name, normalised, compact, lut, mask if keep_masks else None))
        yield ProgressEvent("read", k + 1, n, f"reading the {role} set")
    if role == "training" and len(out.empty) == len(out.items):
        raise TamaleInputError(
            f"every mask of the {role} set {root} is empty: annotate objects in at least "
            "one patch (empty masks are fine as extra negative examples)"
        )
    return out
