"""Which ids exist: maximum, free ids of a class, new ids that collide with nothing.

Every function scans the *whole* array block by block (bounded memory), never
just the plane being edited, so a new id is guaranteed unused anywhere in the
volume.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.progress import ProgressEvent, Throttle, Work, check, drain

from ._arrays import check_labels_dtype, count_blocks, iter_blocks

__all__ = [
    "class_range",
    "iter_allocate_ids",
    "iter_label_max",
    "iter_next_free_label",
    "iter_used_ids",
    "next_free_label",
]


def _dtype_max(labels: Any) -> int:
    dtype = np.dtype(labels.dtype)
    return int(np.iinfo(dtype).max) if dtype.kind in "ui" else 1


def class_range(class_id: int, label_divisor: int, dtype_max: int) -> tuple[int, int]:
    """Ids ``[first, last]`` of ``class_id`` under ``label_divisor`` (0: all positive ids).

    Raises
    ------
    TamaleInputError
        Negative class or divisor, or ids that do not fit the labels' type.
    """
    if label_divisor < 0:
        raise TamaleInputError("the label divisor must be 0 (no classes) or positive")
    if label_divisor == 0:
        return 1, dtype_max
    if class_id < 0:
        raise TamaleInputError("the class id must be 0 or positive")
    first = class_id * label_divisor + 1
    last = (class_id + 1) * label_divisor - 1
    if first > dtype_max:
        raise TamaleInputError(
            f"class {class_id} with label divisor {label_divisor} starts at id {first}, "
            f"beyond the largest id these labels can hold ({dtype_max}); use a smaller "
            "divisor or class"
        )
    return first, min(last, dtype_max)


def iter_label_max(labels: Any, *, cancel: Any = None) -> Work[int]:
    """Largest id anywhere in ``labels``."""
    check_labels_dtype(labels)
    best = 0
    total = count_blocks(labels)
    throttle = Throttle()
    for step, (_, block) in enumerate(iter_blocks(labels), start=1):
        check(cancel)
        if block.size:
            best = max(best, int(block.max()))
        if throttle.ready() or step == total:
            yield ProgressEvent("scan", step, total, "finding the largest id")
    return best


def iter_used_ids(
    labels: Any, lo: int = 1, hi: int | None = None, *, cancel: Any = None
) -> Work[np.ndarray]:
    """Sorted distinct ids in ``[lo, hi]`` present anywhere in ``labels``."""
    check_labels_dtype(labels)
    hi = _dtype_max(labels) if hi is None else hi
    found: list[np.ndarray] = []
    total = count_blocks(labels)
    throttle = Throttle()
    for step, (_, block) in enumerate(iter_blocks(labels), start=1):
        check(cancel)
        values = block[(block >= lo) & (block <= hi)]
        if values.size:
            found.append(np.unique(values))
        if len(found) > 64:
            found = [np.unique(np.concatenate(found))]
        if throttle.ready() or step == total:
            yield ProgressEvent("scan", step, total, "collecting the ids in use")
    if not found:
        return np.zeros(0, dtype=labels.dtype)
    return np.unique(np.concatenate(found))


def _first_free(used: np.ndarray, first: int, last: int, n: int) -> list[int]:
    """The ``n`` smallest ids in ``[first, last]`` not in sorted ``used``."""
    out: list[int] = []
    candidate = first
    for value in used[(used >= first) & (used <= last)].tolist():
        if value > candidate:
            take = min(n - len(out), value - candidate)
            out.extend(range(candidate, candidate + take))
            if len(out) == n:
                return out
        candidate = max(candidate, value + 1)
    take = min(n - len(out), last - candidate + 1)
    if take > 0:
        out.extend(range(candidate, candidate + take))
    return out


def iter_next_free_label(
    labels: Any, class_id: int = 1, label_divisor: int = 0, *, cancel: Any = None
) -> Work[int]:
    """The smallest id of ``class_id`` not used anywhere in ``labels``.

    With ``label_divisor = 0`` every positive id belongs to one class and the
    smallest unused id >= 1 is returned.

    Raises
    ------
    TamaleInputError
        The class has no free id left (divisor overflow) or does not fit the
        labels' type.
    """
    check_labels_dtype(labels)
    first, last = class_range(class_id, label_divisor, _dtype_max(labels))
    used = yield from iter_used_ids(labels, first, last, cancel=cancel)
    free = _first_free(used, first, last, 1)
    if not free:
        raise TamaleInputError(
            f"class {class_id} has no free id left: all {last - first + 1} ids from {first} "
            f"to {last} are used (label divisor {label_divisor}); increase the divisor"
        )
    return free[0]


def next_free_label(
    labels: Any, class_id: int = 1, label_divisor: int = 0, *, progress=None, cancel=None
) -> int:
    """Plain wrapper of :func:`iter_next_free_label`."""
    return drain(iter_next_free_label(labels, class_id, label_divisor, cancel=cancel), progress)


def iter_allocate_ids(
    labels: Any,
    n: int,
    *,
    start_id: int | None = None,
    class_id: int | None = None,
    label_divisor: int = 0,
    cancel: Any = None,
) -> Work[list[int]]:
    """``n`` new ids that are not used anywhere in ``labels``.

    * ``start_id`` given: exactly ``start_id .. start_id + n - 1``; an error if
      any of them is already used anywhere.
    * ``label_divisor > 0`` and ``class_id`` given: the smallest free ids of
      that class.
    * otherwise: the ids following the largest id in the whole array.

    Raises
    ------
    TamaleInputError
        Ids in use, or more ids than the class or the dtype can hold.
    """
    check_labels_dtype(labels)
    top = _dtype_max(labels)
    if n <= 0:
        return []
    if start_id is not None:
        if start_id < 1:
            raise TamaleInputError("the start id must be 1 or larger")
        last = start_id + n - 1
        if last > top:
            raise TamaleInputError(
                f"ids {start_id}..{last} do not fit these labels (largest id {top})"
            )
        if label_divisor > 0 and class_id is not None:
            lo, hi = class_range(class_id, label_divisor, top)
            if start_id < lo or last > hi:
                raise TamaleInputError(
                    f"ids {start_id}..{last} are outside class {class_id} ({lo}..{hi}) "
                    f"under label divisor {label_divisor}"
                )
        used = yield from iter_used_ids(labels, start_id, last, cancel=cancel)
        if len(used):
            raise TamaleInputError(
                f"label id(s) {', '.join(str(int(u)) for u in used[:5])} already exist in "
                f"the labels; choose a start id above them (or leave it empty)"
            )
        return list(range(start_id, last + 1))
    if label_divisor > 0 and class_id is not None:
        lo, hi = class_range(class_id, label_divisor, top)
        used = yield from iter_used_ids(labels, lo, hi, cancel=cancel)
        free = _first_free(used, lo, hi, n)
        if len(free) < n:
            raise TamaleInputError(
                f"class {class_id} has only {len(free)} free id(s) left under label divisor "
                f"{label_divisor}; {n} are needed"
            )
        return free
    biggest = yield from iter_label_max(labels, cancel=cancel)
    if biggest + n > top:
        raise TamaleInputError(
            f"no room for {n} new ids above the largest id {biggest} (these labels hold ids "
            f"up to {top}); convert the layer to uint32 or give a start id"
        )
    return list(range(biggest + 1, biggest + n + 1))
