"""The 3D inference dock in a real viewer (Xvfb): runs, zarr output, Cancel then resume,
the existing-output question, the anisotropy warning, the reader, and bad input."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest
import zarr

from tamale.inference.config3d import Inference3DConfig
from tamale.inference.slice_model import ClassInfo, LabelEchoFactory, _EchoSegmenter
from tamale.inference.volume import segment_volume
from tamale.inference.volume_store import read_store_info
from tamale.synthetic import synthetic_em_3d

DOCK = "3D inference"
DIV = 10_000
CLASSES = (ClassInfo(1, "mitochondria", "instance"),)


class _Slow(_EchoSegmenter):
    def predict(self, images):
        time.sleep(self.f.delay)
        return super().predict(images)


@dataclass(frozen=True)
class SlowEcho(LabelEchoFactory):
    delay: float = 0.0

    def build(self, device=None):
        return _Slow(self)


def panoptic_volume(shape=(16, 48, 48), seed=0) -> np.ndarray:
    s = synthetic_em_3d(shape, spacing=(1, 1, 1), object_size=(4, 7), n_objects=12, seed=seed)
    return np.where(s.labels > 0, DIV + s.labels, 0).astype(np.uint32)


@pytest.fixture
def dock(make_napari_viewer, tiny_model):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("tamale", DOCK)
    widget.model.value = tiny_model
    widget.use_gpu.value = False
    widget.min_size.value = 10
    widget.min_extent.value = 2
    return widget


@pytest.fixture
def echo(monkeypatch):
    """The dock's engine call runs the label-echo stand-in (its image is a label volume)."""
    import tamale_napari._infer3d as mod

    state = {"delay": 0.0, "slab_size": None}
    real = mod.iter_segment_volume

    def fake(volume, _model, config, **kwargs):
        factory = SlowEcho(classes=CLASSES, label_divisor=DIV, delay=state["delay"])
        return real(volume, factory, config, slab_size=state["slab_size"], **kwargs)

    monkeypatch.setattr(mod, "iter_segment_volume", fake)
    return state


@pytest.fixture
def errors(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr("tamale_napari._workers.show_error", shown.append)
    return shown


def run(dock, qtbot) -> None:
    dock.runner.run_button.clicked.emit()
    qtbot.waitUntil(lambda: not dock.runner.busy, timeout=60_000)


def expected_labels(volume, dock):
    factory = LabelEchoFactory(classes=CLASSES, label_divisor=DIV)
    return segment_volume(volume, factory, dock.to_config()).labels["mitochondria"]


def test_segments_in_memory_and_leaves_other_layers_visible(dock, echo, qtbot):
    viewer = dock.viewer
    vol = panoptic_volume()
    other = viewer.add_image(np.zeros((4, 4)), name="other")
    image = viewer.add_image(vol, name="vol", scale=(2, 2, 2), translate=(5, 0, 0))
    dock.image.value = image
    run(dock, qtbot)
    assert dock.runner.last_error is None
    [layer] = dock.last_layers
    assert layer.name == "vol-mitochondria-prediction"
    np.testing.assert_array_equal(layer.data, expected_labels(vol, dock))
    assert layer.data.max() >= 5
    np.testing.assert_allclose(layer.scale, image.scale)
    np.testing.assert_allclose(layer.translate, image.translate)
    assert other.visible and image.visible
    assert layer.metadata["tamale"]["n_objects"]["mitochondria"] == layer.data.max()


def test_zarr_output_is_lazy_and_the_reader_reopens_it(dock, echo, qtbot, tmp_path):
    viewer = dock.viewer
    vol = panoptic_volume()
    dock.image.value = viewer.add_image(vol, name="vol", scale=(3, 1, 1))
    out = tmp_path / "seg.zarr"
    dock.output.value = out
    dock.chunk_size.value = "8,16,16"
    run(dock, qtbot)
    assert dock.runner.last_error is None
    [layer] = dock.last_layers
    assert isinstance(layer.data, zarr.Array)  # zarr-backed, read lazily
    assert layer.data.chunks == (8, 16, 16)
    assert read_store_info(out)["status"] == "complete"
    np.testing.assert_array_equal(layer.data[:], expected_labels(vol, dock))
    # the plugin's reader opens the store as labels layers
    opened = viewer.open(str(out), plugin="tamale")
    assert len(opened) == 1 and opened[0].name.startswith("vol-mitochondria-prediction")
    assert isinstance(opened[0].data, zarr.Array)
    np.testing.assert_allclose(opened[0].scale, (3, 1, 1))
    np.testing.assert_array_equal(opened[0].data[:], layer.data[:])


def test_cancel_leaves_an_incomplete_store_that_resume_completes(dock, echo, qtbot, tmp_path):
    viewer = dock.viewer
    vol = panoptic_volume()
    dock.image.value = viewer.add_image(vol, name="vol")
    out = tmp_path / "seg.zarr"
    dock.output.value = out
    dock.batch_size.value = 1
    echo.update(delay=0.15, slab_size=4)
    dock.runner.run_button.clicked.emit()
    qtbot.waitUntil(lambda: dock.runner.progress_bar.value >= 6, timeout=30_000)
    dock.runner.cancel_button.clicked.emit()
    qtbot.waitUntil(lambda: not dock.runner.busy, timeout=30_000)
    assert dock.runner.status.value == "cancelled"
    assert read_store_info(out)["status"] == "incomplete"
    assert not dock.last_layers
    asked = []
    dock.ask_existing = lambda path, info: asked.append(info["status"]) or "resume"
    echo.update(delay=0.0)
    run(dock, qtbot)
    assert asked == ["incomplete"]
    assert dock.runner.last_error is None
    assert read_store_info(out)["status"] == "complete"
    np.testing.assert_array_equal(dock.last_layers[0].data[:], expected_labels(vol, dock))


def test_existing_output_is_never_overwritten_silently(dock, echo, qtbot, tmp_path):
    viewer = dock.viewer
    dock.image.value = viewer.add_image(panoptic_volume(), name="vol")
    out = tmp_path / "seg.zarr"
    dock.output.value = out
    run(dock, qtbot)
    stamp = read_store_info(out)["completed"]
    dock.ask_existing = lambda path, info: None  # the user cancels the question
    n_layers = len(viewer.layers)
    run(dock, qtbot)
    assert len(viewer.layers) == n_layers and read_store_info(out)["completed"] == stamp
    dock.ask_existing = lambda path, info: "new"
    run(dock, qtbot)
    assert (tmp_path / "seg-2.zarr").is_dir() and str(dock.output.value).endswith("seg-2.zarr")
    dock.output.value = out
    dock.ask_existing = lambda path, info: "overwrite"
    run(dock, qtbot)
    assert read_store_info(out)["status"] == "complete"


def test_anisotropic_voxels_warn_when_choosing_xz_yz_or_ortho(dock, monkeypatch):
    shown = []
    monkeypatch.setattr("tamale_napari._infer3d.show_warning", shown.append)
    viewer = dock.viewer
    dock.image.value = viewer.add_image(np.zeros((8, 32, 32), np.uint8), name="v", scale=(50, 8, 8))
    dock.plane.value = "xz"
    assert shown and "anisotropic" in shown[-1] and "6.2x" in shown[-1]
    dock.plane.value = "xy"
    n = len(shown)
    dock.orthoplane.value = True
    assert len(shown) == n + 1 and "ortho-plane" in shown[-1]


def test_config_round_trip_and_sections(dock):
    cfg = Inference3DConfig(
        plane="ortho",
        median_slices=7,
        min_size=1200,
        min_extent=3,
        use_gpu=False,
        downsampling=2,
        confidence_thr=0.3,
        center_confidence_thr=0.2,
        centers_min_distance=7,
        fine_boundaries=True,
        semantic_only=False,
        label_divisor=20000,
        batch_size=2,
        tile_size=1024,
        tile_overlap=64,
        vote_threshold=1,
        permit_single_view=True,
        return_panoptic=True,
    )
    dock.set_config(cfg)
    assert dock.to_config() == cfg
    dock.set_config(cfg.model_copy(update={"plane": "yz"}))
    assert dock.to_config().plane == "yz" and not dock.vote_threshold.enabled
    assert dock.advanced.native.isHidden()  # folded away by default
    dock.show_advanced.value = True
    assert not dock.advanced.native.isHidden()
    assert list(dock.median_slices.choices) == [1, 3, 5, 7, 9, 11]


def test_bad_input_is_reported_and_nothing_is_written(dock, echo, qtbot, tmp_path, errors):
    viewer = dock.viewer
    dock.image.value = viewer.add_image(np.zeros((32, 32), np.uint8), name="flat")
    dock.output.value = tmp_path / "seg.zarr"
    run(dock, qtbot)
    assert errors and "2D image" in errors[-1]
    assert not (tmp_path / "seg.zarr").exists()
    dock.image.value = viewer.add_image(panoptic_volume(), name="vol")
    dock.chunk_size.value = "8,8"
    run(dock, qtbot)
    assert "chunk size" in errors[-1]
    dock.chunk_size.value = "64"
    dock.scheduler.value = "tcp://127.0.0.1:9"
    run(dock, qtbot)
    assert "Dask scheduler" in errors[-1]
    assert not (tmp_path / "seg.zarr").exists()


def test_real_model_run(dock, qtbot):
    viewer = dock.viewer
    image = viewer.add_image(synthetic_em_3d((8, 48, 48), seed=0).image, name="em")
    dock.image.value = image
    run(dock, qtbot)
    assert dock.runner.last_error is None
    [layer] = dock.last_layers
    assert layer.data.shape == (8, 48, 48) and layer.data.dtype == np.uint32
    assert layer.metadata["tamale"]["model"]["name"] == dock.model.value
