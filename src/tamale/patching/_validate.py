"""Validation shared by the patching modules; every failure is a TamaleInputError."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError

__all__ = [
    "PatchIndexError",
    "check_data_shapes",
    "check_index",
    "check_indices",
    "check_patch_size",
    "check_probability",
    "check_seed",
]


class PatchIndexError(TamaleInputError, IndexError):
    """A patch index outside ``[0, n_patches)``.

    Also an ``IndexError``, so Python's sequence protocol (``for x in dataset``)
    stops at the end as usual.
    """


def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def check_patch_size(patch_size: Any, name: str = "patch_size") -> tuple[int, ...]:
    """A 2- or 3-element tuple of positive ints."""
    if _is_int(patch_size):
        raise TamaleInputError(
            f"{name} must give one size per spatial axis, (Y, X) or (Z, Y, X); "
            f"got the single number {patch_size}"
        )
    try:
        values = tuple(patch_size)
    except TypeError:
        raise TamaleInputError(
            f"{name} must be a sequence of 2 or 3 ints, got {patch_size!r}"
        ) from None
    if len(values) not in (2, 3) or not all(_is_int(v) for v in values):
        raise TamaleInputError(
            f"{name} must be 2 ints (Y, X) or 3 ints (Z, Y, X), got {patch_size!r}"
        )
    if any(v < 1 for v in values):
        raise TamaleInputError(f"{name} must be positive on every axis, got {values}")
    return tuple(int(v) for v in values)


def check_data_shapes(data_shapes: Any, ndim: int) -> tuple[tuple[int, ...], ...]:
    """Data shapes SC(Z)YX whose spatial part has ``ndim`` axes."""
    try:
        shapes = [tuple(s) for s in data_shapes]
    except TypeError:
        raise TamaleInputError(
            f"data_shapes must be a sequence of SC(Z)YX shapes, got {data_shapes!r}"
        ) from None
    if not shapes:
        raise TamaleInputError("data_shapes is empty: give at least one image stack shape")
    out = []
    for i, shape in enumerate(shapes):
        if not all(_is_int(v) for v in shape):
            raise TamaleInputError(f"data_shapes[{i}] must hold ints, got {shape!r}")
        spatial = len(shape) - 2
        if spatial != ndim:
            kind = {2: "2D (Y, X)", 3: "3D (Z, Y, X)"}.get(ndim, f"{ndim}D")
            raise TamaleInputError(
                f"data_shapes[{i}] = {shape} has {spatial} spatial axes but the patch size is "
                f"{kind}: shapes are SC(Z)YX, so a 2D stack needs 4 numbers and a 3D stack 5; "
                "use a patch size with one entry per spatial axis"
            )
        if any(v < 1 for v in shape):
            raise TamaleInputError(f"data_shapes[{i}] = {shape} has an empty axis")
        out.append(tuple(int(v) for v in shape))
    return tuple(out)


def check_too_small(
    data_shapes: Sequence[tuple[int, ...]],
    patch_size: Sequence[int],
    allow_incomplete_patches: bool,
    what: str = "patch",
) -> None:
    """Raise when a patch is larger than an image, unless padding was asked for."""
    if allow_incomplete_patches:
        return
    for i, shape in enumerate(data_shapes):
        spatial = shape[2:]
        if any(p > s for p, s in zip(patch_size, spatial)):
            raise TamaleInputError(
                f"the {what} size {tuple(patch_size)} is larger than image stack {i} "
                f"(spatial shape {tuple(spatial)}): use a smaller {what} size, or pass "
                "allow_incomplete_patches=True to get one zero-padded patch along the short axes"
            )


def check_index(index: Any, n: int) -> int:
    """``index`` as an int in ``[0, n)``."""
    if not _is_int(index):
        raise TamaleInputError(f"a patch index must be an int, got {index!r}")
    index = int(index)
    if not 0 <= index < n:
        raise PatchIndexError(
            f"patch index {index} is out of range: this strategy has {n} patches "
            f"(valid indices 0..{n - 1})"
            if n
            else f"patch index {index} is out of range: this strategy has no patches"
        )
    return index


def check_indices(indices: Any, n: int) -> np.ndarray:
    """``indices`` as a 1D int64 array with every value in ``[0, n)``."""
    arr = np.asarray(indices)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TamaleInputError(f"patch indices must be ints, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False).ravel()
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        bad = int(arr[(arr < 0) | (arr >= n)][0])
        check_index(bad, n)
    return arr


def check_probability(p: Any, name: str) -> float:
    """A float in [0, 1]."""
    try:
        value = float(p)
    except (TypeError, ValueError):
        raise TamaleInputError(f"{name} must be a number in [0, 1], got {p!r}") from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise TamaleInputError(f"{name} must be in [0, 1], got {value}")
    return value


def check_seed(seed: Any) -> int | None:
    """``None`` or a non-negative int."""
    if seed is None:
        return None
    if not _is_int(seed) or seed < 0:
        raise TamaleInputError(f"seed must be a non-negative int or None, got {seed!r}")
    return int(seed)


def check_epoch(epoch: Any) -> int:
    """A non-negative int."""
    if not _is_int(epoch) or epoch < 0:
        raise TamaleInputError(f"epoch must be a non-negative int, got {epoch!r}")
    return int(epoch)
