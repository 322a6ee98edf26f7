"""Image stacks (numpy, dask, zarr, TIFF) and PatchExtractor."""

from __future__ import annotations

import pickle

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from _patching_helpers import FAST
from hypothesis import given
from hypothesis import strategies as st

from tamale.errors import TamaleInputError
from tamale.patching import (
    ArrayImageStack,
    PatchExtractor,
    PatchSpecs,
    TiffImageStack,
    ZarrImageStack,
    image_stack,
)

DATA = np.arange(2 * 20 * 3 * 30, dtype=np.uint16).reshape(2, 20, 3, 30)  # axes SYCX


def reference(sample, channels, coords, size):
    """Zero-padded patch from DATA, C Y X."""
    scyx = DATA.transpose(0, 2, 1, 3)[sample]
    if channels is not None:
        scyx = scyx[channels]
    padded = np.pad(scyx, ((0, 0), (40, 40), (40, 40))).astype(np.float32)
    y, x = coords[0] + 40, coords[1] + 40
    return padded[:, y : y + size[0], x : x + size[1]]


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    root = tmp_path_factory.mktemp("stacks")
    z = zarr.create_array(root / "a.zarr", shape=DATA.shape, chunks=(1, 8, 3, 8), dtype=DATA.dtype)
    z[...] = DATA
    tifffile.imwrite(root / "plain.tif", DATA, photometric="minisblack")
    tifffile.imwrite(
        root / "tiled.tif",
        DATA.transpose(0, 2, 1, 3),
        compression="zlib",
        tile=(16, 16),
        photometric="minisblack",
    )
    return {
        "numpy": ArrayImageStack(DATA, "SYCX"),
        "dask": ArrayImageStack(da.from_array(DATA, chunks=(1, 7, 2, 9)), "SYCX"),
        "zarr-array": ArrayImageStack(z, "SYCX"),
        "zarr-path": ZarrImageStack(root / "a.zarr", "SYCX"),
        "tiff-memmap": TiffImageStack(root / "plain.tif", "SYCX"),
        "tiff-tiled": TiffImageStack(root / "tiled.tif", "SCYX"),
    }


@FAST
@given(
    st.sampled_from(["numpy", "dask", "zarr-array", "zarr-path", "tiff-memmap", "tiff-tiled"]),
    st.integers(0, 1),
    st.sampled_from([None, [0], [2, 0], [1, 2]]),
    st.tuples(st.integers(-12, 28), st.integers(-12, 38)),
    st.tuples(st.integers(1, 12), st.integers(1, 12)),
)
def test_every_source_gives_the_same_zero_padded_float32_patch(stacks, name, s, ch, coords, size):
    stack = stacks[name]
    assert stack.data_shape == (2, 3, 20, 30)
    patch = stack.extract_patch(s, ch, coords, size)
    assert patch.dtype == np.float32 and patch.flags.c_contiguous
    assert np.array_equal(patch, reference(s, ch, coords, size))


def test_tiff_memory_maps_when_it_can_and_stacks_survive_pickling(stacks):
    assert stacks["tiff-memmap"].memory_mapped
    assert not stacks["tiff-tiled"].memory_mapped
    for name in ("zarr-path", "tiff-memmap", "tiff-tiled", "numpy"):
        clone = pickle.loads(pickle.dumps(stacks[name]))
        assert np.array_equal(
            clone.extract_patch(1, [2], (3, 4), (5, 6)), reference(1, [2], (3, 4), (5, 6))
        )
    meta = stacks["zarr-path"].metadata()
    assert meta["additional_metadata"]["chunks"] == (1, 8, 3, 8)
    assert meta["original_axes"] == "SYCX" and meta["data_shape"] == (2, 3, 20, 30)


def test_patches_are_copies_not_views():
    image = np.zeros((10, 10), np.float32)
    patch = ArrayImageStack(image).extract_patch(0, None, (0, 0), (4, 4))
    patch += 1
    assert image.sum() == 0


def test_axes_defaults_and_sample_flattening():
    assert ArrayImageStack(np.zeros((5, 6))).data_shape == (1, 1, 5, 6)
    assert ArrayImageStack(np.zeros((4, 5, 6))).data_shape == (1, 1, 4, 5, 6)
    ts = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    st_ = ArrayImageStack(ts, "TSYX")
    assert st_.data_shape == (6, 1, 4, 5)
    # sample index runs over the sample axes in their stored order (T then S here)
    assert np.array_equal(st_.extract_patch(4, None, (0, 0), (4, 5))[0], ts[1, 1])
    with pytest.raises(TamaleInputError, match="say what they are"):
        ArrayImageStack(np.zeros((2, 3, 4, 5)))
    with pytest.raises(TamaleInputError, match="names 3 dimensions"):
        ArrayImageStack(np.zeros((4, 5)), "ZYX")
    with pytest.raises(TamaleInputError, match="at most once"):
        ArrayImageStack(np.zeros((4, 5, 6)), "YYX")


def test_image_stack_factory_and_extractor(tmp_path):
    tifffile.imwrite(tmp_path / "x.tif", np.ones((8, 9), np.uint8))
    assert isinstance(image_stack(tmp_path / "x.tif"), TiffImageStack)
    ex = PatchExtractor.from_sources([np.ones((8, 9)), tmp_path / "x.tif"])
    assert ex.shapes == [(1, 1, 8, 9), (1, 1, 8, 9)] and ex.n_channels == 1 and ex.ndim == 2
    spec = PatchSpecs(1, 0, (6, 7), (4, 4))
    p = ex.extract(spec)
    assert p.shape == (1, 4, 4) and p.sum() == 4
    assert np.array_equal(ex.extract_patch(1, 0, (6, 7), (4, 4)), p)


def test_extractor_bad_inputs():
    with pytest.raises(TamaleInputError, match="spatial axes"):
        PatchExtractor([ArrayImageStack(np.zeros((4, 5))), ArrayImageStack(np.zeros((3, 4, 5)))])
    with pytest.raises(TamaleInputError, match="channel"):
        PatchExtractor(
            [ArrayImageStack(np.zeros((2, 4, 5)), "CYX"), ArrayImageStack(np.zeros((4, 5)))]
        )
    ex = PatchExtractor([ArrayImageStack(np.zeros((2, 4, 5)), "CYX")])
    with pytest.raises(TamaleInputError, match="channels"):
        ex.extract_channel_patch(0, 0, [2], (0, 0), (2, 2))
    with pytest.raises(TamaleInputError, match="data_idx 1"):
        ex.extract_patch(1, 0, (0, 0), (2, 2))
    with pytest.raises(TamaleInputError, match="sample_idx 1"):
        ex.extract_patch(0, 1, (0, 0), (2, 2))
    with pytest.raises(TamaleInputError, match="spatial axes"):
        ex.extract_patch(0, 0, (0, 0, 0), (2, 2, 2))
    with pytest.raises(TamaleInputError, match="not found"):
        TiffImageStack("/nonexistent/x.tif")
    with pytest.raises(TamaleInputError, match="zarr"):
        ZarrImageStack("/nonexistent/x.zarr")
