"""Store annotated patches or flipbooks (as picked) into a training set.

:func:`store_annotated` takes what :func:`~tamale.datasets.pick_patches` produced and a
person annotated (the layers of the "Pick training patches" dock, or the files of
``tamale pick``) and appends it to a training set with
:func:`~tamale.datasets.store_patches`:

* ``(N, 5, P, P)`` flipbooks store only their middle plane (index 2);
* ``(N, P, P)`` patches, or one ``(P, P)`` patch, are stored as they are;
* the provenance records (if any) name the source and the region of every patch, so
  later picks keep away from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tamale.config import ConfigError
from tamale.datasets.store import PatchProvenance, StoreResult, iter_store_patches
from tamale.errors import TamaleInputError
from tamale.progress import CancelToken, Work, drain

__all__ = [
    "MIN_TRAINING_PATCHES",
    "annotated_planes",
    "empty_label_patches",
    "iter_store_annotated",
    "store_annotated",
]

MIN_TRAINING_PATCHES = 16
"""Finetuning needs at least this many annotated patches."""

Kind = Literal["patch", "flipbook"]


def _records(provenance: Sequence[Any] | None, n: int) -> list[PatchProvenance] | None:
    if provenance is None:
        return None
    records = []
    for i, rec in enumerate(provenance):
        if isinstance(rec, PatchProvenance):
            records.append(rec)
            continue
        if not isinstance(rec, Mapping):
            raise TamaleInputError(f"provenance record {i} is not a mapping: {rec!r}")
        try:
            records.append(PatchProvenance.from_mapping(dict(rec), source=f"provenance record {i}"))
        except ConfigError as exc:
            raise TamaleInputError(str(exc)) from None
    if len(records) != n:
        raise TamaleInputError(
            f"the provenance lists {len(records)} patches but the layer holds {n}: it does "
            "not belong to these patches"
        )
    return records


def _kind(shape: tuple[int, ...], kind: Kind | None, records: list[PatchProvenance] | None) -> Kind:
    if kind is None and records:
        kind = records[0].kind
    if kind is None:
        if len(shape) == 4:
            kind = "flipbook"
        elif len(shape) in (2, 3):
            kind = "patch"
    if kind == "flipbook" and (len(shape) != 4 or shape[1] % 2 == 0):
        raise TamaleInputError(
            f"flipbooks are (N, 5, P, P) arrays (an odd number of planes); this one has "
            f"shape {shape}"
        )
    if kind == "patch" and len(shape) not in (2, 3):
        raise TamaleInputError(
            f"patches are (N, P, P) arrays (or one (P, P) patch); this one has shape {shape}"
        )
    if kind is None:
        raise TamaleInputError(
            f"cannot tell patches (N, P, P) from flipbooks (N, 5, P, P) in shape {shape}"
        )
    return kind


def annotated_planes(
    images: Any,
    labels: Any,
    *,
    kind: Kind | None = None,
    provenance: Sequence[Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, Kind, list[PatchProvenance] | None]:
    """The planes to store: ``(images, labels, kind, records)`` with ``(N, P, P)`` arrays.

    Flipbooks give their middle plane; a single ``(P, P)`` patch becomes ``(1, P, P)``.
    Raises :class:`TamaleInputError` when the shapes differ or do not fit ``kind``.
    """
    img, lab = np.asarray(images), np.asarray(labels)
    if img.shape != lab.shape:
        raise TamaleInputError(
            f"the image ({img.shape}) and labels ({lab.shape}) have different shapes: choose "
            "the labels layer that was picked with this image"
        )
    if lab.dtype.kind not in "biu":
        raise TamaleInputError(f"labels must be integers, got {lab.dtype}: use a labels layer")
    if lab.dtype.kind == "i" and lab.size and lab.min() < 0:
        raise TamaleInputError("labels must be >= 0")
    n = 1 if img.ndim == 2 else img.shape[0]
    records = _records(provenance, n)
    kind = _kind(img.shape, kind, records)
    if kind == "flipbook":
        middle = img.shape[1] // 2
        img, lab = img[:, middle], lab[:, middle]
    elif img.ndim == 2:
        img, lab = img[None], lab[None]
    if img.shape[0] == 0:
        raise TamaleInputError("there are no patches to store")
    return img, lab, kind, records


def empty_label_patches(labels: Any, kind: Kind | None = None) -> list[int]:
    """Indices of patches whose (middle-plane) labels are all zero."""
    lab = np.asarray(labels)
    kind = _kind(lab.shape, kind, None)
    if kind == "flipbook":
        lab = lab[:, lab.shape[1] // 2]
    elif lab.ndim == 2:
        lab = lab[None]
    return [i for i in range(lab.shape[0]) if not lab[i].any()]


def iter_store_annotated(
    images: Any,
    labels: Any,
    save_dir: str | Path,
    dataset_name: str,
    *,
    source: str | None = None,
    provenance: Sequence[Any] | None = None,
    kind: Kind | None = None,
    cancel: CancelToken | None = None,
) -> Work[StoreResult]:
    """Append annotated patches or flipbooks to a training set (work generator).

    Parameters
    ----------
    images, labels : array-like
        ``(N, 5, P, P)`` flipbooks, ``(N, P, P)`` patches or one ``(P, P)`` patch,
        same shape.
    save_dir, dataset_name : path, str
        The dataset is ``save_dir/dataset_name`` (created, or appended to).
    source : str, optional
        Source folder name; default: the provenance's source, else ``"image"``.
    provenance : sequence of PatchProvenance (or dicts), optional
        One record per patch (as picked); patches of different sources go to their
        own source folders.
    kind : {"patch", "flipbook"}, optional
        Default: from the provenance, else from the shape (4D: flipbooks).
    cancel : CancelToken, optional

    Returns
    -------
    StoreResult
        Of the last source written; ``names`` and ``empty_masks`` cover all of them,
        ``total_pairs`` is the dataset's size afterwards.
    """
    img, lab, _, records = annotated_planes(images, labels, kind=kind, provenance=provenance)
    groups: dict[str, list[int]] = {}
    for i in range(img.shape[0]):
        name = source or (records[i].source_layer if records else "image")
        groups.setdefault(name, []).append(i)
    total: StoreResult | None = None
    names: list[str] = []
    empty: list[str] = []
    for name, idx in groups.items():
        result = yield from iter_store_patches(
            save_dir,
            dataset_name,
            name,
            [img[i] for i in idx],
            [lab[i] for i in idx],
            [records[i] for i in idx] if records else None,
            cancel=cancel,
        )
        names += result.names
        empty += result.empty_masks
        total = result
    assert total is not None
    total.names, total.empty_masks = names, empty
    return total


def store_annotated(
    images: Any,
    labels: Any,
    save_dir: str | Path,
    dataset_name: str,
    *,
    source: str | None = None,
    provenance: Sequence[Any] | None = None,
    kind: Kind | None = None,
    progress=None,
    cancel: CancelToken | None = None,
) -> StoreResult:
    """Append annotated patches or flipbooks to a training set; see :func:`iter_store_annotated`."""
    return drain(
        iter_store_annotated(
            images,
            labels,
            save_dir,
            dataset_name,
            source=source,
            provenance=provenance,
            kind=kind,
            cancel=cancel,
        ),
        progress,
        cancel,
    )
