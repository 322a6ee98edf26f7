"""Labels arrays of any backend: validation, regions and block-wise access.

Proofreading reads and writes labels held as numpy arrays, zarr arrays (on disk,
possibly larger than RAM) or dask arrays (read-only). Everything here works on
*blocks*: pieces of the array aligned with its storage chunks and a few tens of
megabytes large, so a scan over a volume larger than RAM keeps memory bounded
and every chunk is decoded once.

A *region* says which part of the array an operation sees: a tuple with one
entry per axis, an ``int`` (the axis is fixed at that index, e.g. the current
plane) or a ``slice`` (step 1). ``None`` means the whole array.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError

__all__ = [
    "BLOCK_BYTES",
    "Region",
    "backend",
    "block_grid",
    "check_labels_dtype",
    "count_blocks",
    "fixed_axes",
    "is_writable",
    "iter_blocks",
    "normalize_region",
    "read",
    "read_at",
    "region_shape",
    "write",
]

Region = tuple[int | slice, ...]
"""One entry per axis: an ``int`` fixes the axis, a ``slice`` (step 1) keeps a range."""

BLOCK_BYTES = 32 * 2**20
"""Target size of one block read at a time (bytes)."""


def backend(array: Any) -> str:
    """``"numpy"``, ``"zarr"``, ``"dask"`` or ``"other"`` (without importing them)."""
    if isinstance(array, np.ndarray):
        return "numpy"
    module = type(array).__module__.split(".")[0]
    if module in ("zarr", "dask"):
        return module
    return "other"


def is_writable(array: Any) -> bool:
    """Whether edits can be written into ``array`` in place."""
    kind = backend(array)
    if kind == "numpy":
        return bool(array.flags.writeable)
    if kind == "dask":
        return False
    if kind == "zarr":
        return not bool(getattr(array, "read_only", False))
    return hasattr(array, "__setitem__")


def check_labels_dtype(array: Any) -> np.dtype:
    """Raise :class:`TamaleInputError` unless ``array`` holds integer labels."""
    dtype = np.dtype(array.dtype)
    if dtype.kind not in "uib":
        raise TamaleInputError(
            f"the labels hold {dtype} values; labels must be whole numbers "
            "(convert the layer to an unsigned integer type, e.g. uint32, first)"
        )
    return dtype


def _check_block_values(block: np.ndarray) -> None:
    if block.dtype.kind == "i" and block.size and block.min() < 0:
        raise TamaleInputError(
            f"the labels contain negative values (e.g. {int(block.min())}); labels must be "
            "0 (background) or positive ids: fix or convert the layer to uint32 first"
        )


def normalize_region(region: Region | None, shape: Sequence[int]) -> tuple[slice, ...]:
    """``region`` as one ``slice(start, stop)`` per axis, checked against ``shape``."""
    shape = tuple(int(s) for s in shape)
    if region is None:
        return tuple(slice(0, s) for s in shape)
    if len(region) != len(shape):
        raise TamaleInputError(
            f"the region has {len(region)} axes but the labels have {len(shape)}"
        )
    out = []
    for axis, (item, size) in enumerate(zip(region, shape)):
        if isinstance(item, slice):
            if item.step not in (None, 1):
                raise TamaleInputError("regions must use contiguous slices (step 1)")
            start, stop, _ = item.indices(size)
            out.append(slice(start, max(start, stop)))
        else:
            index = int(item)
            if not 0 <= index < size:
                raise TamaleInputError(
                    f"index {index} is outside axis {axis} of the labels (size {size})"
                )
            out.append(slice(index, index + 1))
    return tuple(out)


def fixed_axes(region: Region | None) -> tuple[int, ...]:
    """Axes that ``region`` fixes to one index (its ``int`` entries)."""
    if region is None:
        return ()
    return tuple(a for a, item in enumerate(region) if not isinstance(item, slice))


def region_shape(region: Sequence[slice]) -> tuple[int, ...]:
    """Shape of a normalised region."""
    return tuple(s.stop - s.start for s in region)


def _storage_chunks(array: Any) -> tuple[int, ...] | None:
    kind = backend(array)
    if kind == "zarr":
        shards = getattr(array, "shards", None)
        return tuple(int(c) for c in (shards or array.chunks))
    if kind == "dask":
        return tuple(int(c) for c in array.chunksize)
    return None


def block_grid(
    array: Any, region: Sequence[slice], target_bytes: int = BLOCK_BYTES
) -> tuple[int, ...]:
    """Block shape for scanning ``region``: whole storage chunks, about ``target_bytes``.

    Blocks are multiples of the storage chunk (numpy: of single pixels) and are
    laid on a grid anchored at index 0, so every chunk is read exactly once.
    """
    ndim = len(region)
    extent = region_shape(region)
    unit = _storage_chunks(array) or (1,) * ndim
    itemsize = np.dtype(array.dtype).itemsize
    block = [min(u, max(e, 1)) for u, e in zip(unit, extent)]
    for axis in reversed(range(ndim)):
        per_unit = math.prod(block) * itemsize
        needed = max(1, math.ceil(extent[axis] / max(block[axis], 1)))
        k = max(1, min(needed, target_bytes // max(per_unit, 1)))
        block[axis] = block[axis] * k
    return tuple(max(1, b) for b in block)


def _block_slices(region: Sequence[slice], block: Sequence[int]) -> Iterator[tuple[slice, ...]]:
    ranges = []
    for sl, b in zip(region, block):
        first = (sl.start // b) * b
        cuts = [sl.start, *range(first + b, sl.stop, b), sl.stop]
        ranges.append([slice(lo, hi) for lo, hi in itertools.pairwise(cuts) if hi > lo])
    yield from _product(ranges)


def _product(ranges: list[list[slice]]) -> Iterator[tuple[slice, ...]]:
    if not ranges:
        yield ()
        return
    for head in ranges[0]:
        for tail in _product(ranges[1:]):
            yield (head, *tail)


def count_blocks(array: Any, region: Region | None = None, target_bytes: int = BLOCK_BYTES) -> int:
    """How many blocks :func:`iter_blocks` yields for ``region``."""
    reg = normalize_region(region, array.shape)
    if any(s.stop <= s.start for s in reg):
        return 0
    block = block_grid(array, reg, target_bytes)
    n = 1
    for sl, b in zip(reg, block):
        n *= (sl.stop - 1) // b - sl.start // b + 1
    return n


def read(array: Any, index: tuple[slice, ...]) -> np.ndarray:
    """Read ``array[index]`` as numpy (a view for numpy arrays), checking the values."""
    kind = backend(array)
    if kind == "numpy":
        block = array[index]
    elif kind == "dask":
        block = np.asarray(array[index].compute())
    else:
        block = np.asarray(array[index])
    _check_block_values(block)
    return block


def write(array: Any, index: tuple[slice, ...], block: np.ndarray) -> None:
    """Write ``block`` into ``array[index]`` (numpy or zarr)."""
    if not is_writable(array):
        raise TamaleInputError(
            "these labels are read-only (a dask array or a read-only store); "
            "convert the layer to a numpy array or a zarr store to edit it"
        )
    array[index] = block


def iter_blocks(
    array: Any, region: Region | None = None, target_bytes: int = BLOCK_BYTES
) -> Iterator[tuple[tuple[slice, ...], np.ndarray]]:
    """Yield ``(index, block)`` for the blocks covering ``region``.

    ``index`` is a tuple of absolute slices (full dimensionality: fixed axes
    keep a length-1 slice) and ``block`` the numpy data there.
    """
    check_labels_dtype(array)
    reg = normalize_region(region, array.shape)
    if any(s.stop <= s.start for s in reg):
        return
    block = block_grid(array, reg, target_bytes)
    for index in _block_slices(reg, block):
        yield index, read(array, index)


def read_at(array: Any, coords: np.ndarray) -> np.ndarray:
    """Values of ``array`` at integer ``coords`` (shape ``(N, ndim)``, inside the array).

    Points are grouped by storage block, so each chunk is read once however
    many points fall in it.
    """
    check_labels_dtype(array)
    coords = np.asarray(coords, dtype=np.int64).reshape(-1, array.ndim)
    out = np.zeros(len(coords), dtype=array.dtype)
    if len(coords) == 0:
        return out
    if backend(array) == "numpy":
        out[:] = array[tuple(coords.T)]
        _check_block_values(out)
        return out
    full = normalize_region(None, array.shape)
    block = np.asarray(block_grid(array, full, target_bytes=4 * 2**20))
    keys = coords // block
    _, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.reshape(-1)
    for g in range(int(group.max()) + 1):
        members = np.flatnonzero(group == g)
        pts = coords[members]
        lo, hi = pts.min(axis=0), pts.max(axis=0) + 1
        data = read(array, tuple(slice(int(a), int(b)) for a, b in zip(lo, hi)))
        out[members] = data[tuple((pts - lo).T)]
    return out
