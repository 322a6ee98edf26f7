"""The reader contribution: opens tamale stores lazily, declines everything else."""

from __future__ import annotations

import numpy as np
import zarr

from tamale.inference.config3d import Inference3DConfig
from tamale.inference.slice_model import LabelEchoFactory
from tamale.inference.volume import segment_volume
from tamale.progress import Cancelled, CancelToken
from tamale_napari._reader import get_reader


def _volume() -> np.ndarray:
    vol = np.zeros((6, 24, 24), np.uint32)
    vol[1:5, 4:12, 4:12] = 1001
    vol[1:5, 14:20, 14:22] = 1002
    return vol


def test_reader_declines_other_paths(tmp_path):
    other = tmp_path / "other.zarr"
    zarr.create_array(str(other), shape=(4, 4), dtype="uint8")
    assert get_reader(str(other)) is None
    assert get_reader(str(tmp_path / "missing.zarr")) is None
    assert get_reader([str(other), str(other)]) is None


def test_reader_opens_classes_and_stacks_lazily(tmp_path):
    out = tmp_path / "seg.zarr"
    config = Inference3DConfig(
        plane="ortho",
        return_panoptic=True,
        min_size=0,
        min_extent=0,
        median_slices=1,
        label_divisor=1000,
    )
    segment_volume(
        _volume(), LabelEchoFactory(), config, out=out, voxel_size=(4, 2, 2), name="em", warn=False
    )
    reader = get_reader(str(out))
    layers = reader(str(out))
    names = [kw["name"] for _, kw, _ in layers]
    assert names == [
        "em-mito-prediction",
        "em-panoptic-stack-xy",
        "em-panoptic-stack-xz",
        "em-panoptic-stack-yz",
    ]
    data, kwargs, kind = layers[0]
    assert kind == "labels" and isinstance(data, zarr.Array)
    assert kwargs["scale"] == (4, 2, 2)
    assert set(np.unique(data[:])) == {0, 1, 2}


def test_an_unfinished_store_opens_marked_incomplete(tmp_path):
    out = tmp_path / "seg.zarr"
    token = CancelToken()

    def stop(event):
        if event.stage.startswith("slices"):
            token.cancel()

    try:
        segment_volume(
            _volume(),
            LabelEchoFactory(),
            Inference3DConfig(label_divisor=1000),
            out=out,
            cancel=token,
            progress=stop,
            slab_size=8,
        )
    except Cancelled:
        pass
    layers = get_reader(str(out))(str(out))
    assert layers and layers[0][1]["name"].endswith("(incomplete)")
