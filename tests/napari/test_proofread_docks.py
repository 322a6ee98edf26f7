"""Proofreading docks in a real viewer: opened through the manifest, real clicks, undo."""

from __future__ import annotations

import numpy as np

PLUGIN = "tamale"


def two_objects(shape=(64, 96)) -> np.ndarray:
    lab = np.zeros(shape, np.uint32)
    lab[10:30, 10:30] = 3
    lab[10:30, 40:60] = 5
    lab[40:50, 70:90] = 8
    return lab


def open_dock(viewer, name):
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    return dock


def click(dock, qtbot):
    dock.runner.run_button.clicked.emit()
    qtbot.waitUntil(lambda: not dock.runner.busy, timeout=30_000)


def test_merge_through_the_manifest_then_undo(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    original = two_objects()
    labels = viewer.add_labels(original.copy(), name="labels")
    points = viewer.add_points([[20, 20], [20, 50]], name="picks")
    dock = open_dock(viewer, "Merge labels")
    dock.labels_layer.value = labels
    dock.points_layer.value = points
    click(dock, qtbot)
    assert dock.runner.last_error is None, dock.runner.last_error
    expected = original.copy()
    expected[expected == 5] = 3
    np.testing.assert_array_equal(labels.data, expected)
    assert len(points.data) == 0  # picks cleared for the next edit
    labels.undo()
    np.testing.assert_array_equal(labels.data, original)
