"""The napari demo: the sample, every dock, the built-in model, the current slice segmented."""

from __future__ import annotations

import numpy as np

from tamale.demo import BUILTIN_MODEL
from tamale.samples import vnc_sstem_crop
from tamale_napari._demo import FIRST_DOCK, dock_names, open_demo


def _docked(viewer) -> set[str]:
    return set(viewer.window.dock_widgets.keys())


def test_demo_opens_the_sample_and_every_dock(make_napari_viewer):
    viewer = make_napari_viewer()
    _, docks = open_demo("synthetic-3d", viewer=viewer, segment=False)
    assert [layer.name for layer in viewer.layers] == [
        "synthetic EM 3D",
        "synthetic EM 3D ground truth",
    ]
    for name in dock_names():
        assert any(name in key for key in _docked(viewer)), f"dock {name!r} missing"
    assert set(docks) == set(dock_names())
    assert docks[FIRST_DOCK].model.value == BUILTIN_MODEL
    assert docks["3D inference"].model.value == BUILTIN_MODEL
    assert docks[FIRST_DOCK].runner.busy is False  # segment=False: nothing started


def test_demo_segments_the_slice_on_screen_with_the_built_in_model(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _, docks = open_demo(viewer=viewer)
    dock = docks[FIRST_DOCK]
    # the built-in model's recommended parameters are shown in the dock
    assert dock.model.value == BUILTIN_MODEL
    assert dock.downsampling.value == 2 and dock.min_area.value > 0
    qtbot.waitUntil(lambda: dock.last_layer is not None and not dock.runner.busy, timeout=120_000)
    image = viewer.layers[0]
    assert image.name == "vnc ssTEM crop" and image.data.shape == (20, 384, 384)
    # the ground truth is there to compare with, hidden under the result
    assert viewer.layers["vnc ssTEM crop mitochondria"].visible is False
    assert dock.last_layer.visible is True
    z = int(viewer.dims.current_step[0])
    labels = dock.last_layer
    assert labels.name.endswith(f"{BUILTIN_MODEL} 2D")
    assert labels.data.shape == (1, 384, 384) and labels.data.dtype == np.uint32
    assert labels.translate[0] == z * image.scale[0]  # placed on the slice on screen
    assert labels.metadata["tamale"]["model"] == BUILTIN_MODEL
    truth = vnc_sstem_crop().labels[z]
    pred = labels.data[0] > 0
    n_found = len(np.unique(labels.data)) - 1
    n_truth = len(np.unique(truth)) - 1
    assert abs(n_found - n_truth) <= max(3, n_truth // 2), (n_found, n_truth)
    dice = 2 * np.logical_and(pred, truth > 0).sum() / (pred.sum() + (truth > 0).sum())
    assert dice >= 0.75, dice
