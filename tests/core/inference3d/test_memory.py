"""Memory stays bounded: no full-volume densification, no per-voxel bookkeeping (yz included)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import zarr

from tamale.inference.config3d import Inference3DConfig
from tamale.inference.volume import segment_volume

DIV = 10_000


def grid_volume(path, n_slices_x: int) -> zarr.Array:
    """Dense foreground: a grid of 20^3 cubes, one object each (written chunk by chunk)."""
    shape = (96, 96, n_slices_x)
    arr = zarr.create_array(str(path), shape=shape, chunks=(96, 96, 16), dtype="uint32")
    zz, yy = np.mgrid[:96, :96]
    for x0 in range(0, n_slices_x, 16):
        xx = np.arange(x0, min(x0 + 16, n_slices_x))
        cell = (zz[..., None] // 24) * 1000 + (yy[..., None] // 24) * 100 + xx // 24
        inside = (zz[..., None] % 24 < 20) & (yy[..., None] % 24 < 20) & (xx % 24 < 20)
        arr[:, :, x0 : x0 + len(xx)] = np.where(inside, DIV + (cell % 900) + 1, 0)
    return arr


def peak_bytes(volume, out) -> int:
    config = Inference3DConfig(
        plane="yz", median_slices=3, min_size=0, min_extent=0, label_divisor=DIV
    )
    from tamale.inference.slice_model import LabelEchoFactory

    tracemalloc.start()
    try:
        segment_volume(
            volume, LabelEchoFactory(label_divisor=DIV), config, out=out, chunks=32, slab_size=32
        )
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_yz_peak_memory_does_not_grow_with_the_volume(tmp_path):
    small = grid_volume(tmp_path / "small.zarr", 32)
    large = grid_volume(tmp_path / "large.zarr", 256)  # 8x the voxels, 8x the yz slices
    # first-call imports, caches and the interpreter's interned-string table (which
    # grows once by megabytes while modules load) must not count as growth
    peak_bytes(large, tmp_path / "warm-up.zarr")
    p_small = peak_bytes(small, tmp_path / "s.zarr")
    p_large = peak_bytes(large, tmp_path / "l.zarr")
    fg_large = int((large[:] > 0).sum())
    # empanada's yz tracker held ~16 bytes per foreground voxel until the end. Here the
    # growth is (a) the relabel pass's blocks, which widen along the last axis up to
    # 16 MiB (bounded, whatever the volume; a few uint32 copies of a 32x32xX strip), and
    # (b) bookkeeping per 2D piece (a few dozen bytes each)
    strip_growth = 32 * 32 * (256 - 32) * 4
    growth = p_large - p_small
    assert growth < 4 * strip_growth + 8192 * (256 - 32), (p_small, p_large, growth)
    assert p_large < 16 * fg_large / 2, (p_large, fg_large)
