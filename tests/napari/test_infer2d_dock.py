"""The 2D inference dock in a real viewer (Xvfb): planes in any orientation, output to a
layer with undo, batch mode, confinement, Cancel, and every bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tamale import _paths
from tamale.inference import Engine, Inference2DConfig
from tamale.postprocess import make_targets
from tamale.registry import ModelCard
from tamale.synthetic import synthetic_em_2d, synthetic_em_3d

DOCK = "2D inference (parameter testing)"


class IdealModel:
    """Reads instance ids from its input (see tests/core/inference/ideal_model.py)."""

    padding_factor = 32
    num_classes = 1

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def predict(self, x, upsample=1, fine=False):
        import time

        time.sleep(self.delay)
        ids = torch.round(x[:, 0]).long().numpy()
        outs = [make_targets(i, stride=1 if fine else 4) for i in ids]
        sem = torch.from_numpy((ids > 0).astype(np.float32) * 20 - 10)[:, None]
        sem = torch.nn.functional.interpolate(sem, scale_factor=upsample, mode="nearest")
        return {
            "sem_logits": sem,
            "ctr_hmp": torch.stack([torch.from_numpy(o.heatmap)[None] for o in outs]),
            "offsets": torch.stack([torch.from_numpy(o.offsets) for o in outs]),
        }


def ideal_engine(delay: float = 0.0) -> Engine:
    card = ModelCard(
        name="ideal",
        architecture="tiny",
        weights={"uri": "unused.safetensors"},
        classes=[{"id": 1, "name": "mitochondria", "kind": "instance"}],
        norms={"mean": 0.0, "std": 1 / 255},
    )
    return Engine(card=card, model=IdealModel(delay), device=torch.device("cpu"))


@pytest.fixture
def dock(make_napari_viewer, tiny_model):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("tamale", DOCK)
    widget.model.value = tiny_model
    widget.use_gpu.value = False
    return widget


@pytest.fixture
def ideal(monkeypatch):
    """Make the dock's engine call use the ideal model instead of the registered one."""
    import tamale_napari._infer2d as mod

    engine = {"value": ideal_engine()}
    real = mod.iter_infer_2d

    def fake(image, _model, config, **kwargs):
        return real(image, engine["value"], config, **kwargs)

    monkeypatch.setattr(mod, "iter_infer_2d", fake)
    return engine


@pytest.fixture
def errors(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr("tamale_napari._workers.show_error", shown.append)
    return shown


def run(dock, qtbot) -> None:
    dock.runner.run_button.clicked.emit()
    qtbot.waitUntil(lambda: not dock.runner.busy, timeout=60_000)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = np.unique(np.stack([np.ravel(a), np.ravel(b)]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def relabel(a: np.ndarray) -> np.ndarray:
    from skimage.measure import label

    return label(a, background=0, connectivity=2)


# -- real model, 2D image ------------------------------------------------------------------


def test_opens_through_the_manifest_and_segments_a_2d_image(dock, qtbot):
    viewer = dock.viewer
    image = viewer.add_image(synthetic_em_2d((96, 128), seed=0).image, name="em", scale=(2, 2))
    assert dock.image.value.name == image.name
    run(dock, qtbot)
    assert dock.runner.last_error is None
    out = dock.last_layer
    assert out.name == viewer.layers[-1].name and out.data.shape == (96, 128)
    assert out.data.dtype == np.uint32
    np.testing.assert_allclose(out.scale, image.scale)
    np.testing.assert_allclose(out.translate, image.translate)
    assert out.metadata["tamale"]["model"] == dock.model.value
    # the second click reuses the loaded model
    from tamale.inference import default_cache

    loads = default_cache().loads
    run(dock, qtbot)
    assert default_cache().loads == loads and len(viewer.layers) == 3


def test_config_round_trip_and_only_powers_of_two(dock):
    cfg = Inference2DConfig(
        downsampling=4,
        confidence_thr=0.3,
        center_confidence_thr=0.25,
        centers_min_distance=7,
        fine_boundaries=True,
        semantic_only=True,
        label_divisor=1000,
        batch_mode=True,
        use_gpu=False,
        tile_size=1024,
        tile_overlap=64,
        batch_size=2,
    )
    dock.set_config(cfg)
    assert dock.to_config() == cfg
    assert list(dock.downsampling.choices) == [1, 2, 4, 8, 16, 32, 64]
    assert "power" in dock.downsampling.tooltip or dock.downsampling.tooltip


def test_quantized_is_disabled_with_the_reason_when_unavailable(dock, monkeypatch):
    import tamale.inference.engine as engine_mod

    real = engine_mod._models_attr
    monkeypatch.setattr(
        engine_mod,
        "_models_attr",
        lambda name: (
            (lambda: (False, "no int8 here")) if name == "quantization_available" else real(name)
        ),
    )
    dock._update_quantized()
    assert not dock.use_quantized.enabled and not dock.use_quantized.value
    assert "Not available: no int8 here" in dock.use_quantized.tooltip
    monkeypatch.setattr(engine_mod, "_models_attr", real)
    dock._update_quantized()
    assert dock.use_quantized.enabled


# -- planes, placement, output to layer ----------------------------------------------------


def test_transposed_volume_segments_the_shown_xz_plane_and_places_it(dock, ideal, qtbot):
    viewer = dock.viewer
    vol = synthetic_em_3d((12, 64, 80), seed=1).labels.astype(np.uint8)
    image = viewer.add_image(vol, name="vol", scale=(5, 1, 1), translate=(100, 10, 0))
    dock.image.value = image
    dock.fine_boundaries.value = True
    viewer.dims.order = (1, 0, 2)  # show (z, x); y is the slider
    viewer.dims.set_point(1, 10 + 37)  # world y -> data y = 37
    run(dock, qtbot)
    assert dock.runner.last_error is None
    out = dock.last_layer
    assert out.data.shape == (12, 1, 80) and out.ndim == 3
    assert same_partition(relabel(vol[:, 37, :]), out.data[:, 0, :])
    # every output pixel sits exactly on the image pixel it was computed from
    for z, x in [(0, 0), (11, 79), (5, 40)]:
        np.testing.assert_allclose(out.data_to_world((z, 0, x)), image.data_to_world((z, 37, x)))


def test_output_to_layer_writes_the_current_plane_and_undo_restores_it(dock, ideal, qtbot):
    viewer = dock.viewer
    vol = synthetic_em_3d((5, 64, 64), seed=2).labels.astype(np.uint8)
    image = viewer.add_image(vol, name="flipbook")
    target = viewer.add_labels(np.zeros(vol.shape, np.uint32), name="flipbook labels")
    target.data[0, :3, :3] = 9  # an annotation elsewhere must survive
    dock.image.value = image
    dock.output_to_layer.value = True
    dock.output_layer.value = target
    dock.fine_boundaries.value = True
    viewer.dims.set_point(0, 2)
    n_layers = len(viewer.layers)
    run(dock, qtbot)
    assert dock.runner.last_error is None
    assert len(viewer.layers) == n_layers and dock.last_layer.name == target.name
    assert same_partition(relabel(vol[2]), target.data[2])
    assert target.data[2].any() and not target.data[1].any() and target.data[0, 0, 0] == 9
    target.undo()
    assert not target.data[2].any() and target.data[0, 0, 0] == 9


def test_batch_mode_segments_every_slice(dock, ideal, qtbot):
    viewer = dock.viewer
    vol = synthetic_em_3d((4, 64, 64), seed=3).labels.astype(np.uint8)
    image = viewer.add_image(vol, name="stack", scale=(3, 1, 1))
    dock.image.value = image
    dock.batch_mode.value = True
    dock.fine_boundaries.value = True
    run(dock, qtbot)
    out = dock.last_layer
    assert out.data.shape == vol.shape
    np.testing.assert_allclose(out.scale, image.scale)
    for z in range(4):
        assert same_partition(relabel(vol[z]), out.data[z])


def test_confinement_to_a_chosen_shapes_layer(dock, ideal, qtbot):
    viewer = dock.viewer
    labels = synthetic_em_2d((96, 96), seed=4).labels.astype(np.uint8)
    image = viewer.add_image(labels, name="em")
    viewer.add_shapes([[[0, 0], [0, 10], [10, 10]]], shape_type="polygon", name="decoy")
    shapes = viewer.add_shapes(
        [[[10, 10], [10, 60], [60, 60], [60, 10]]], shape_type="rectangle", name="roi"
    )
    dock.image.value = image
    dock.confine.value = "shapes layer"
    dock.shapes.value = shapes
    dock.fine_boundaries.value = True
    run(dock, qtbot)
    out = dock.last_layer.data
    inside = np.zeros_like(out, bool)
    inside[10:61, 10:61] = True
    assert not out[~inside].any() and out[inside].any()


def test_confinement_to_the_current_view(make_napari_viewer, tiny_model, ideal, qtbot):
    viewer = make_napari_viewer(show=True)  # the canvas must draw to know what is in view
    _, dock = viewer.window.add_plugin_dock_widget("tamale", DOCK)
    dock.model.value = tiny_model
    dock.use_gpu.value = False
    labels = synthetic_em_2d((256, 256), seed=5).labels.astype(np.uint8)
    image = viewer.add_image(labels, name="em")
    viewer.camera.center = (64, 64)
    viewer.camera.zoom = 8
    qtbot.waitUntil(lambda: image.corner_pixels[1, 0] < 200, timeout=10_000)
    (y0, x0), (y1, x1) = image.corner_pixels
    dock.image.value = image
    dock.confine.value = "current view"
    dock.fine_boundaries.value = True
    run(dock, qtbot)
    assert dock.runner.last_error is None
    out = dock.last_layer.data
    assert out.shape == (256, 256)
    inside = np.zeros(out.shape, bool)
    inside[y0 : y1 + 1, x0 : x1 + 1] = True
    assert not out[~inside].any() and out[inside].any()
    assert same_partition(relabel(labels[y0 : y1 + 1, x0 : x1 + 1]), out[inside])


# -- cancel and bad input ------------------------------------------------------------------


def test_cancel_stops_and_adds_nothing(dock, ideal, qtbot):
    ideal["value"] = ideal_engine(delay=0.2)
    viewer = dock.viewer
    viewer.add_image(np.zeros((40, 64, 64), np.uint8), name="stack")
    dock.batch_mode.value = True
    dock.batch_size.value = 1
    n_layers = len(viewer.layers)
    dock.runner.run_button.clicked.emit()
    qtbot.waitUntil(lambda: dock.runner.progress_bar.value >= 1, timeout=30_000)
    dock.runner.cancel_button.clicked.emit()
    qtbot.waitUntil(lambda: not dock.runner.busy, timeout=30_000)
    assert dock.runner.status.value == "cancelled" and len(viewer.layers) == n_layers


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("rgb", "RGB"),
        ("nan", "NaN"),
        ("wrong_shape", "shape"),
        ("batch_and_output", "batch mode and 'output to layer'"),
        ("no_image", "choose an image layer"),
        ("missing_model", "no model named"),
        ("broken_model", "SHA-256"),
    ],
)
def test_bad_input_is_a_notification_and_changes_nothing(dock, qtbot, errors, setup, message):
    viewer = dock.viewer
    if setup == "rgb":
        viewer.add_image(np.zeros((32, 32, 3), np.uint8), rgb=True)
    elif setup == "nan":
        img = np.ones((32, 32), np.float32)
        img[3, 3] = np.nan
        viewer.add_image(img)
    elif setup == "wrong_shape":
        viewer.add_image(np.zeros((32, 32), np.uint8))
        dock.output_to_layer.value = True
        dock.output_layer.value = viewer.add_labels(np.zeros((16, 32), np.uint32))
    elif setup == "batch_and_output":
        viewer.add_image(np.zeros((3, 32, 32), np.uint8))
        dock.output_layer.value = viewer.add_labels(np.zeros((3, 32, 32), np.uint32))
        dock.output_to_layer.value = True
        dock.batch_mode.value = True
    elif setup == "missing_model":
        viewer.add_image(np.zeros((32, 32), np.uint8))
        import shutil

        shutil.rmtree(_paths.models_dir() / dock.model.value)
    elif setup == "broken_model":
        viewer.add_image(np.zeros((32, 32), np.uint8))
        weights = _paths.models_dir() / dock.model.value / "weights.safetensors"
        weights.write_bytes(b"garbage")
    data_before = [np.array(layer.data, copy=True) for layer in viewer.layers]
    n_layers = len(viewer.layers)
    run(dock, qtbot)
    assert errors and message in errors[-1], errors
    assert len(viewer.layers) == n_layers
    for layer, before in zip(viewer.layers, data_before):
        np.testing.assert_array_equal(layer.data, before)
    assert dock.runner.run_button.enabled  # the dock stays usable


def test_gpu_asked_without_gpu_runs_on_cpu_and_says_so(dock, qtbot, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr("tamale_napari._infer2d.show_info", shown.append)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    dock.viewer.add_image(np.zeros((32, 32), np.uint8))
    dock.use_gpu.value = True
    run(dock, qtbot)
    assert dock.runner.last_error is None and dock.last_result.device == "cpu"
    assert any("no GPU" in m for m in shown)


def test_an_image_smaller_than_the_padding_factor_is_padded(dock, qtbot):
    dock.viewer.add_image(np.full((9, 13), 100, np.uint8))
    run(dock, qtbot)
    assert dock.runner.last_error is None and dock.last_layer.data.shape == (9, 13)
