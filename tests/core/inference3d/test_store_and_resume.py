"""Output stores: OME-Zarr layout, never overwritten silently, resume after a kill or a cancel."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
import pytest
import zarr

from conftest import DIV, TWO_CLASSES
from tamale.errors import TamaleInputError
from tamale.inference.config3d import Inference3DConfig
from tamale.inference.slice_model import LabelEchoFactory, _EchoSegmenter
from tamale.inference.volume import iter_segment_volume, segment_volume
from tamale.inference.volume_store import free_store_path, is_tamale_store, read_store_info
from tamale.progress import Cancelled, CancelToken, drain

CFG = Inference3DConfig(median_slices=3, min_size=20, min_extent=2, label_divisor=DIV, batch_size=2)


class Killed(Exception):
    """Stands for the process dying."""


class _Dying(_EchoSegmenter):
    calls = 0

    def predict(self, images):
        _Dying.calls += 1
        if _Dying.calls > self.f.die_after:
            raise Killed("power cut")
        return super().predict(images)


@dataclass(frozen=True)
class DyingEcho(LabelEchoFactory):
    """The echo model, dying after ``die_after`` batches; same identity as the echo."""

    die_after: int = 3

    @property
    def cache_key(self) -> str:
        return f"dying:{id(self)}"

    def build(self, device=None):
        _Dying.calls = 0
        return _Dying(self)


def test_store_layout_and_metadata(tmp_path, panoptic_volume, echo):
    out = tmp_path / "seg.zarr"
    res = segment_volume(
        panoptic_volume,
        echo,
        CFG,
        out=out,
        chunks=(8, 16, 16),
        voxel_size=(2.0, 1.0, 1.0),
        unit="nanometer",
    )
    root = json.loads((out / "zarr.json").read_text())
    info = root["attributes"]["tamale"]
    assert info["status"] == "complete"
    assert info["model"] == echo.describe()
    assert info["parameters"]["median_slices"] == 3
    assert info["input"]["shape"] == list(panoptic_volume.shape)
    assert info["n_objects"] == res.n_objects
    assert not (out / "_work").exists()
    labels = zarr.open_group(str(out / "labels"), mode="r")
    assert labels.attrs["ome"]["labels"] == ["mito", "er"]
    mito = zarr.open_group(str(out / "labels" / "mito"), mode="r")
    ms = mito.attrs["ome"]["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    assert ms["axes"][0]["unit"] == "nanometer"
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [2.0, 1.0, 1.0]
    arr = mito["0"]
    assert arr.dtype == np.uint32 and arr.chunks == (8, 16, 16)
    assert arr.metadata.dimension_names == ("z", "y", "x")
    assert is_tamale_store(out)


def test_existing_store_is_never_overwritten_silently(tmp_path, panoptic_volume, echo):
    out = tmp_path / "seg.zarr"
    first = segment_volume(panoptic_volume, echo, CFG, out=out)
    before = first.labels["mito"][:]
    with pytest.raises(FileExistsError, match="already exists"):
        segment_volume(panoptic_volume[::-1].copy(), echo, CFG, out=out)
    np.testing.assert_array_equal(zarr.open_array(str(out / "labels/mito/0"))[:], before)
    # explicit overwrite
    again = segment_volume(panoptic_volume[::-1].copy(), echo, CFG, out=out, if_exists="overwrite")
    assert not np.array_equal(again.labels["mito"][:], before)
    # a new name
    assert free_store_path(out) == tmp_path / "seg-2.zarr"
    # a complete run cannot be "resumed"
    with pytest.raises(TamaleInputError, match="already complete"):
        segment_volume(panoptic_volume, echo, CFG, out=out, if_exists="resume")


def test_a_folder_that_is_not_a_tamale_store_is_never_removed(tmp_path, panoptic_volume, echo):
    data = tmp_path / "raw.zarr"
    zarr.create_array(str(data), shape=(4, 4), dtype="uint8")
    with pytest.raises(TamaleInputError, match="not a tamale segmentation store"):
        segment_volume(panoptic_volume, echo, CFG, out=data, if_exists="overwrite")
    assert (data / "zarr.json").is_file()


def test_unwritable_output(tmp_path, panoptic_volume, echo):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(TamaleInputError, match="not writable"):
            segment_volume(panoptic_volume, echo, CFG, out=locked / "seg.zarr")
        assert not (locked / "seg.zarr").exists()
    finally:
        locked.chmod(0o700)


def test_unwritable_output_file_in_the_way(tmp_path, panoptic_volume, echo):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(TamaleInputError, match="not writable"):
        segment_volume(panoptic_volume, echo, CFG, out=blocker / "seg.zarr")


@pytest.mark.parametrize("plane", ["xy", "ortho"])
def test_resume_after_a_simulated_kill_gives_the_same_result(
    tmp_path, panoptic_volume, echo, plane
):
    config = CFG.model_copy(update={"plane": plane})
    expected = segment_volume(panoptic_volume, echo, config)
    out = tmp_path / "seg.zarr"
    dying = DyingEcho(classes=TWO_CLASSES, label_divisor=DIV, die_after=5)
    with pytest.raises(Killed):
        segment_volume(panoptic_volume, dying, config, out=out, slab_size=8)
    info = read_store_info(out)
    assert info["status"] == "incomplete"
    done_before = sorted((out / "_work" / "xy" / "slabs").glob("*.npz"))
    assert len(done_before) >= 1  # some slabs finished and were recorded
    # resume: finished slabs are not recomputed
    predicted = []

    class Counting(_EchoSegmenter):
        def predict(self, images):
            predicted.append(len(images))
            return super().predict(images)

    @dataclass(frozen=True)
    class CountingEcho(LabelEchoFactory):
        @property
        def cache_key(self):
            return f"counting:{id(self)}"

        def build(self, device=None):
            return Counting(self)

    counting = CountingEcho(classes=TWO_CLASSES, label_divisor=DIV)
    segment_volume(panoptic_volume, counting, config, slab_size=8)
    full = sum(predicted)
    predicted.clear()
    res = segment_volume(panoptic_volume, counting, config, out=out, if_exists="resume")
    assert read_store_info(out)["status"] == "complete"
    for name in ("mito", "er"):
        np.testing.assert_array_equal(res.labels[name][:], expected.labels[name])
    assert 0 < sum(predicted) < full  # finished slabs were not run again


def test_cancel_leaves_an_incomplete_store_that_resume_completes(tmp_path, panoptic_volume, echo):
    out = tmp_path / "seg.zarr"
    token = CancelToken()
    work = iter_segment_volume(panoptic_volume, echo, CFG, out=out, slab_size=8, cancel=token)
    seen = 0

    def progress(event):
        nonlocal seen
        if event.stage.startswith("slices") and event.step >= 10:
            token.cancel()

    with pytest.raises(Cancelled):
        drain(work, progress, token)
    assert read_store_info(out)["status"] == "incomplete"
    res = segment_volume(panoptic_volume, echo, CFG, out=out, if_exists="resume")
    expected = segment_volume(panoptic_volume, echo, CFG)
    np.testing.assert_array_equal(res.labels["mito"][:], expected.labels["mito"])


def test_resume_refuses_other_parameters_or_input(tmp_path, panoptic_volume, echo):
    out = tmp_path / "seg.zarr"
    token = CancelToken()

    def stop(event):
        if event.stage.startswith("slices"):
            token.cancel()

    with pytest.raises(Cancelled):
        segment_volume(panoptic_volume, echo, CFG, out=out, cancel=token, progress=stop)
    with pytest.raises(TamaleInputError, match="slab_parameters"):
        segment_volume(
            panoptic_volume,
            echo,
            CFG.model_copy(update={"median_slices": 5}),
            out=out,
            if_exists="resume",
        )
    with pytest.raises(TamaleInputError, match="input"):
        segment_volume(panoptic_volume[:8], echo, CFG, out=out, if_exists="resume")
    # post-processing parameters may change on resume
    res = segment_volume(
        panoptic_volume, echo, CFG.model_copy(update={"min_size": 100}), out=out, if_exists="resume"
    )
    assert read_store_info(out)["parameters"]["min_size"] == 100
    assert res.n_objects["mito"] >= 1
    with pytest.raises(TamaleInputError, match="does not exist"):
        segment_volume(panoptic_volume, echo, CFG, out=tmp_path / "nope.zarr", if_exists="resume")


def test_a_slab_file_cut_short_is_recomputed(tmp_path, panoptic_volume, echo):
    out = tmp_path / "seg.zarr"
    dying = DyingEcho(classes=TWO_CLASSES, label_divisor=DIV, die_after=6)
    with pytest.raises(Killed):
        segment_volume(panoptic_volume, dying, CFG, out=out, slab_size=8)
    slab_files = sorted((out / "_work" / "xy" / "slabs").glob("*.npz"))
    slab_files[0].write_bytes(slab_files[0].read_bytes()[:100])  # torn write
    res = segment_volume(panoptic_volume, echo, CFG, out=out, if_exists="resume")
    expected = segment_volume(panoptic_volume, echo, CFG)
    np.testing.assert_array_equal(res.labels["mito"][:], expected.labels["mito"])


def test_resume_may_add_the_panoptic_stacks(tmp_path, panoptic_volume, echo):
    out = tmp_path / "seg.zarr"
    config = CFG.model_copy(update={"plane": "ortho"})
    token = CancelToken()

    def stop(event):
        if event.stage.startswith("slices") and event.step >= 8:
            token.cancel()

    with pytest.raises(Cancelled):
        segment_volume(panoptic_volume, echo, config, out=out, cancel=token, progress=stop)
    res = segment_volume(
        panoptic_volume,
        echo,
        config.model_copy(update={"return_panoptic": True}),
        out=out,
        if_exists="resume",
    )
    assert set(res.panoptic) == {"xy", "xz", "yz"}
    expected = segment_volume(
        panoptic_volume, echo, config.model_copy(update={"return_panoptic": True})
    )
    np.testing.assert_array_equal(res.panoptic["xz"][:], expected.panoptic["xz"])
