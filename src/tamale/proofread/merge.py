"""Merge and delete picked objects (relabelling edits)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tamale.errors import TamaleInputError

from ._arrays import Region
from .edits import RelabelEdit, RelabelPart
from .picks import Picks

__all__ = ["delete_labels", "merge_labels", "merge_target"]


def merge_target(picked_ids: np.ndarray, selected_label: int | None = None) -> int:
    """The id merged objects get: ``selected_label`` if it was picked, else the smallest."""
    picked = np.unique(np.asarray(picked_ids))
    if selected_label is not None and int(selected_label) in set(picked.tolist()):
        return int(selected_label)
    return int(picked.min())


def merge_labels(
    labels: Any, picks: Picks, region: Region | None = None, *, selected_label: int | None = None
) -> RelabelEdit:
    """Merge every picked object into one id, inside ``region``.

    Parameters
    ----------
    labels : array
        The labels (only its dtype is used here; the edit is applied later).
    picks : Picks
        From :func:`~tamale.proofread.picks.resolve_picks` (background removed).
    region : tuple, optional
        Where the merge applies: the current plane, a volume, or everything.
    selected_label : int, optional
        The label selected in the viewer; it is the target if it was picked.

    Raises
    ------
    TamaleInputError
        Fewer than two different objects were picked.
    """
    ids = picks.unique_ids
    if len(ids) < 2:
        which = f" (only label {int(ids[0])})" if len(ids) else ""
        raise TamaleInputError(
            f"pick at least two different objects to merge{which}: add points on each "
            "object (or draw a line across them)"
        )
    target = merge_target(ids, selected_label)
    old = ids[ids != target]
    new = np.full(len(old), target, dtype=np.dtype(labels.dtype))
    return RelabelEdit(
        (RelabelPart(region, old, new),),
        f"merge {len(ids)} labels into {target}",
    )


def delete_labels(labels: Any, picks: Picks, region: Region | None = None) -> RelabelEdit:
    """Set every picked object to background (0) inside ``region``."""
    ids = picks.unique_ids
    if len(ids) == 0:
        raise TamaleInputError("no object was picked: place points on the objects to delete")
    zeros = np.zeros(len(ids), dtype=np.dtype(labels.dtype))
    return RelabelEdit((RelabelPart(region, ids, zeros),), f"delete {len(ids)} label(s)")
