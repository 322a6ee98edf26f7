"""Small labels and backend helpers shared by the proofreading engine tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

BACKENDS = ("numpy", "zarr", "dask")


def as_backend(labels: np.ndarray, kind: str, tmp_path: Path, chunks=None):
    """``labels`` as a numpy copy, a zarr v3 array on disk, or a dask array."""
    chunks = chunks or tuple(max(1, s // 2) for s in labels.shape)
    if kind == "numpy":
        return labels.copy()
    if kind == "zarr":
        import zarr

        arr = zarr.create_array(
            str(tmp_path / f"labels_{labels.ndim}d.zarr"),
            shape=labels.shape,
            chunks=chunks,
            dtype=labels.dtype,
            fill_value=0,
            overwrite=True,
        )
        arr[...] = labels
        return arr
    if kind == "dask":
        import dask.array as da

        return da.from_array(labels.copy(), chunks=chunks)
    raise ValueError(kind)


def to_numpy(array) -> np.ndarray:
    if hasattr(array, "compute"):
        return np.asarray(array.compute())
    return np.asarray(array[...])


def reopen(array) -> np.ndarray:
    """Read a zarr array back from its store (what is really on disk)."""
    import zarr

    return zarr.open_array(array.store, mode="r")[...]


def squares_2d() -> np.ndarray:
    """Three separate squares: 3 (20x20), 5 (20x20), 8 (10x20)."""
    lab = np.zeros((64, 96), np.uint32)
    lab[10:30, 10:30] = 3
    lab[10:30, 40:60] = 5
    lab[40:50, 70:90] = 8
    return lab


def stack_3d() -> np.ndarray:
    """Four planes; plane p holds the squares with ids offset by 10*p (p=0: 3, 5, 8)."""
    base = squares_2d()
    return np.stack([np.where(base > 0, base + 10 * p, 0) for p in range(4)]).astype(np.uint32)


def flipbooks_4d() -> np.ndarray:
    """Two flipbooks of three slices each (t, z, y, x); ids differ per flipbook."""
    vol = stack_3d()[:3]
    return np.stack([vol, np.where(vol > 0, vol + 100, 0)]).astype(np.uint32)
