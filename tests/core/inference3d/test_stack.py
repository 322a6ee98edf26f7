"""Stack inference end to end (model stand-in): exact labels, any plane, memory == zarr."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DIV, reference_stack
from tamale.inference.config3d import Inference3DConfig
from tamale.inference.slabs import plan_slabs
from tamale.inference.volume import segment_volume


def cfg(**kw):
    base = dict(median_slices=3, min_size=20, min_extent=2, label_divisor=DIV)
    base.update(kw)
    return Inference3DConfig(**base)


@pytest.mark.parametrize("plane,axis", [("xy", 0), ("xz", 1), ("yz", 2)])
@pytest.mark.parametrize("median", [1, 3, 5])
def test_stack_equals_reference_pipeline(panoptic_volume, echo, plane, axis, median):
    config = cfg(plane=plane, median_slices=median)
    result = segment_volume(
        panoptic_volume,
        echo,
        config.model_copy(update={"batch_size": 3}),
        slab_size=8,
        prefetch=median == 3,  # the producer thread + bounded queue (the GPU path) too
    )
    expected = reference_stack(panoptic_volume, axis, median, 20, 2)
    np.testing.assert_array_equal(result.labels["mito"], expected["mito"])
    np.testing.assert_array_equal(result.labels["er"], expected["er"])
    n = int(expected["mito"].max())
    assert result.n_objects == {"mito": n, "er": int(expected["er"].any())}
    assert n >= 8
    assert set(np.unique(result.labels["mito"])) == set(range(n + 1))  # 1..N, no gaps


def test_median_longer_than_the_volume(echo, panoptic_volume):
    short = panoptic_volume[:3]
    result = segment_volume(short, echo, cfg(median_slices=11, min_size=0, min_extent=0))
    expected = reference_stack(short, 0, 11, 0, 0)
    assert result.labels["mito"].shape == short.shape  # no slice lost
    np.testing.assert_array_equal(result.labels["mito"], expected["mito"])


@pytest.mark.parametrize(
    "slab_size,chunks,batch",
    [(8, (8, 16, 16), 1), (16, (16, 40, 48), 4), (8, (4, 7, 9), 5), (64, 64, 2)],
)
def test_zarr_output_equals_memory_and_slab_borders_keep_ids(
    tmp_path, panoptic_volume, echo, slab_size, chunks, batch
):
    config = cfg()
    mem = segment_volume(panoptic_volume, echo, config, slab_size=64)
    out = tmp_path / "run.zarr"
    res = segment_volume(
        panoptic_volume,
        echo,
        config.model_copy(update={"batch_size": batch}),
        out=out,
        chunks=chunks,
        slab_size=slab_size,
    )
    for name in ("mito", "er"):
        np.testing.assert_array_equal(res.labels[name][:], mem.labels[name])
    # objects that cross slab borders kept one id (they are compared exactly, not up to permutation)
    borders = [s.start for s in plan_slabs(16, slab_size, 1)[1:]]
    crossing = [
        i
        for i in np.unique(mem.labels["mito"])
        if i
        and any(
            (mem.labels["mito"][b - 1] == i).any() and (mem.labels["mito"][b] == i).any()
            for b in borders
        )
    ]
    if slab_size < 16:
        assert crossing, "the test volume should have objects crossing the slab border"
    assert res.n_objects == mem.n_objects


def test_input_types(tmp_path, panoptic_volume, echo):
    import dask.array as da
    import tifffile
    import zarr

    config = cfg()
    expected = segment_volume(panoptic_volume, echo, config).labels["mito"]
    tif = tmp_path / "vol.tif"
    tifffile.imwrite(tif, panoptic_volume)
    ctif = tmp_path / "vol_c.tif"
    tifffile.imwrite(ctif, panoptic_volume, compression="zlib")
    z = zarr.create_array(
        str(tmp_path / "in.zarr"), shape=panoptic_volume.shape, chunks=(3, 7, 50), dtype="uint32"
    )
    z[:] = panoptic_volume
    inputs = [
        tif,
        ctif,
        z,
        str(tmp_path / "in.zarr"),
        da.from_array(panoptic_volume, chunks=(5, 20, 20)),
        [panoptic_volume, panoptic_volume[::2, ::2, ::2]],  # pyramid: level 0
        panoptic_volume[..., None],  # trailing channel axis of 1
        np.stack(
            [panoptic_volume, np.zeros_like(panoptic_volume)], axis=-1
        ),  # 2 channels, first used
    ]
    for data in inputs:
        got = segment_volume(data, echo, config).labels["mito"]
        np.testing.assert_array_equal(got, expected, err_msg=str(type(data)))
