"""Every bad input gets a clear message and leaves nothing half-written."""

from __future__ import annotations

import time

import numpy as np
import pytest

from conftest import DIV
from tamale.errors import TamaleInputError
from tamale.inference.config3d import Inference3DConfig
from tamale.inference.volume import AnisotropyWarning, anisotropy_message, segment_volume
from tamale.inference.volume_source import open_volume

CFG = Inference3DConfig(median_slices=3, min_size=0, min_extent=0, label_divisor=DIV)


def test_2d_image(echo, tmp_path):
    with pytest.raises(TamaleInputError, match="2D image"):
        segment_volume(np.zeros((32, 32), np.uint8), echo, CFG, out=tmp_path / "o.zarr")
    assert not (tmp_path / "o.zarr").exists()


def test_4d_without_an_obvious_channel_axis(echo):
    with pytest.raises(TamaleInputError, match="channel axis"):
        segment_volume(np.zeros((5, 6, 16, 16), np.uint8), echo, CFG)
    with pytest.raises(TamaleInputError, match="channel axis"):
        segment_volume(np.zeros((2, 8, 16, 3), np.uint8), echo, CFG)  # first and last both small
    with pytest.raises(TamaleInputError, match="channel axis"):
        open_volume(np.zeros((2, 3, 16, 16, 16), np.uint8))


def test_4d_with_an_obvious_channel_axis_uses_it():
    assert open_volume(np.zeros((1, 8, 16, 16))).shape == (8, 16, 16)
    assert open_volume(np.zeros((3, 8, 16, 16))).shape == (8, 16, 16)
    assert open_volume(np.zeros((8, 16, 16, 4))).shape == (8, 16, 16)
    src = open_volume(np.arange(2 * 8 * 8 * 8).reshape(8, 8, 8, 2), channel=1)
    assert src.read((slice(0, 1), slice(0, 1), slice(0, 2))).tolist() == [[[1, 3]]]
    with pytest.raises(TamaleInputError, match="channel 5"):
        open_volume(np.zeros((8, 16, 16, 4)), channel=5)


def test_volume_shorter_than_the_median_window_is_handled(echo, panoptic_volume):
    res = segment_volume(panoptic_volume[:2], echo, CFG.model_copy(update={"median_slices": 11}))
    assert res.labels["mito"].shape == (2, *panoptic_volume.shape[1:])


def test_volume_smaller_than_the_padding_factor_is_padded_by_the_model(echo):
    # 8x8 slices: the 2D pipeline pads them (models need multiples of 16-512); only
    # slices too small to mean anything are refused
    res = segment_volume(np.full((3, 8, 8), DIV + 1, np.uint32), echo, CFG)
    assert res.labels["mito"].all()
    with pytest.raises(TamaleInputError, match="too small"):
        segment_volume(
            np.zeros((2, 64, 64), np.uint32), echo, CFG.model_copy(update={"plane": "xz"})
        )
    with pytest.raises(TamaleInputError, match="after downsampling"):
        segment_volume(
            np.zeros((16, 16, 16), np.uint32), echo, CFG.model_copy(update={"downsampling": 8})
        )


def test_bad_paths_and_types(tmp_path, echo):
    with pytest.raises(TamaleInputError, match="does not exist"):
        segment_volume(tmp_path / "missing.tif", echo, CFG)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(TamaleInputError, match="cannot read"):
        segment_volume(tmp_path / "notes.txt", echo, CFG)
    with pytest.raises(TamaleInputError, match="as zarr"):
        segment_volume(tmp_path, echo, CFG)  # a folder that is not zarr
    with pytest.raises(TamaleInputError, match="cannot segment"):
        segment_volume(object(), echo, CFG)
    with pytest.raises(TamaleInputError, match="cannot segment"):
        segment_volume(np.zeros((4, 16, 16), "U1"), echo, CFG)
    with pytest.raises(TamaleInputError, match="chunk size"):
        segment_volume(np.zeros((4, 16, 16), np.uint32), echo, CFG, chunks=(0, 4, 4))


def test_scheduler_that_does_not_answer(tmp_path, echo, panoptic_volume):
    pytest.importorskip("distributed")
    start = time.monotonic()
    with pytest.raises(TamaleInputError, match="could not reach the Dask scheduler"):
        segment_volume(
            panoptic_volume,
            echo,
            CFG,
            out=tmp_path / "o.zarr",
            scheduler="tcp://127.0.0.1:9",
            scheduler_timeout=2,
        )
    assert time.monotonic() - start < 30
    assert not (tmp_path / "o.zarr").exists()  # nothing half-written


@pytest.mark.parametrize("plane", ["xz", "yz", "ortho"])
def test_anisotropic_voxels_warn_and_say_why(echo, panoptic_volume, plane):
    with pytest.warns(AnisotropyWarning, match="anisotropic.*5.0x"):
        segment_volume(
            panoptic_volume, echo, CFG.model_copy(update={"plane": plane}), voxel_size=(50, 10, 10)
        )


def test_no_warning_for_xy_or_isotropic():
    assert anisotropy_message((50, 10, 10), "xy") is None
    assert anisotropy_message((10, 10, 11), "ortho") is None
    assert anisotropy_message(None, "yz") is None


def test_config_validation():
    with pytest.raises(ValueError, match="odd"):
        Inference3DConfig(median_slices=4)
    with pytest.raises(ValueError):
        Inference3DConfig(vote_threshold=4)
    with pytest.raises(ValueError):
        Inference3DConfig(plane="zz")
    with pytest.raises(ValueError):
        Inference3DConfig(median_slices=13)
