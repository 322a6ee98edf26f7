"""Memory stays bounded: no full-volume densification, no per-voxel bookkeeping (yz included)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import zarr
DIV = 10_000

from tamale.inference.config3d import Inference3DConfig
from tamale.inference.volume import segment_volume


def grid_volume(path, n_slices_x: int) -> zarr.Array:
    """Dense foreground: a grid of 6^3 cubes, one object each (written chunk by chunk)."""
    shape = (48, 48, n_slices_x)
    arr = zarr.create_array(str(path), shape=shape, chunks=(48, 48, 16), dtype="uint32")
    zz, yy = np.mgrid[:48, :48]
    for x0 in range(0, n_slices_x, 16):
        xx = np.arange(x0, min(x0 + 16, n_slices_x))
        cell = (zz[..., None] // 8) * 1000 + (yy[..., None] // 8) * 100 + xx // 8
        inside = (zz[..., None] % 8 < 6) & (yy[..., None] % 8 < 6) & (xx % 8 < 6)
        arr[:, :, x0 : x0 + len(xx)] = np.where(inside, DIV + (cell % 900) + 1, 0)
    return arr


def peak_bytes(volume, out) -> int:
    config = Inference3DConfig(plane="yz", median_slices=3, min_size=0, min_extent=0, label_divisor=DIV)
    from tamale.inference.slice_model import LabelEchoFactory

    tracemalloc.start()
    try:
        segment_volume(volume, LabelEchoFactory(label_divisor=DIV), config, out=out, chunks=16, slab_size=32)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_yz_peak_memory_does_not_grow_with_the_volume(tmp_path):
    small = grid_volume(tmp_path / "small.zarr", 32)
    large = grid_volume(tmp_path / "large.zarr", 256)  # 8x the voxels, 8x the yz slices
    peak_bytes(small, tmp_path / "warm-up.zarr")  # first-call imports and caches
    p_small = peak_bytes(small, tmp_path / "s.zarr")
    p_large = peak_bytes(large, tmp_path / "l.zarr")
    fg_large = int((large[:] > 0).sum())
    # empanada's yz tracker held ~16 bytes per foreground voxel until the end
    assert p_large < 0.5 * 16 * fg_large
    assert p_large < 1.5 * p_small, (p_small, p_large)
