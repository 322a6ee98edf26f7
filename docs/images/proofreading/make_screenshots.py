"""Screenshots of the proofreading docks for docs/proofreading.md.

Run under a virtual display from the repository root::

    xvfb-run -s "-screen 0 1600x1000x24" python docs/images/proofreading/make_screenshots.py

Each PNG shows napari with the synthetic 3D sample, the layers the tool uses and
its dock, after a real click where that shows a result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtWidgets import QApplication

import napari

HERE = Path(__file__).resolve().parent
PLUGIN = "tamale"


def wait(viewer, dock=None) -> None:
    app = QApplication.instance()
    for _ in range(200):
        app.processEvents()
        if dock is None or not dock.runner.busy:
            break
        import time

        time.sleep(0.05)
    for _ in range(20):
        app.processEvents()


def centre(labels: np.ndarray, label_id: int) -> list[float]:
    return list(np.argwhere(labels == label_id).mean(axis=0))


def shot(name: str, setup) -> None:
    viewer = napari.Viewer(title="tamale proofreading")
    viewer.window.resize(1500, 900)
    viewer.open_sample(PLUGIN, "synthetic-3d")
    image, labels = viewer.layers[0], viewer.layers[1]
    labels.opacity = 0.6
    labels.name = "labels"
    z = labels.data.shape[0] // 2
    viewer.dims.set_point(0, z * labels.scale[0])
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    setup(viewer, image, labels, dock, z)
    wait(viewer, dock)
    out = HERE / f"{name.lower().replace(' ', '_')}.png"
    viewer.screenshot(str(out), canvas_only=False)
    print("wrote", out)
    viewer.close()


def ids_on_plane(labels, z):
    ids = np.unique(labels.data[z])
    return [int(i) for i in ids if i]


def with_points(viewer, labels, z, ids):
    pts = [[z, *centre(labels.data[z], i)] for i in ids]
    return viewer.add_points(np.array(pts) * labels.scale, name="picks", size=6, face_color="red")


def merge(viewer, image, labels, dock, z):
    ids = ids_on_plane(labels, z)[:2]
    dock.points_layer.value = with_points(viewer, labels, z, ids)
    dock.labels_layer.value = labels


def delete(viewer, image, labels, dock, z):
    dock.points_layer.value = with_points(viewer, labels, z, ids_on_plane(labels, z)[:1])
    dock.labels_layer.value = labels


def split(viewer, image, labels, dock, z):
    dock.points_layer.value = with_points(viewer, labels, z, ids_on_plane(labels, z)[:1])
    dock.labels_layer.value = labels
    dock.min_distance.value = 5


def morph(viewer, image, labels, dock, z):
    dock.points_layer.value = None
    dock.operation.value = "dilate"


def filter_(viewer, image, labels, dock, z):
    dock.min_size.value = 2000
    dock.apply_to.value = "3D volume"
    dock.new_layer.value = True
    dock.runner.run_button.clicked.emit()


def count(viewer, image, labels, dock, z):
    dock.class_names.value = "1,mitochondria"
    dock.runner.run_button.clicked.emit()


def jump(viewer, image, labels, dock, z):
    # an object far from the current slice, near the middle of the field
    data = labels.data

    def distance(i):
        c = np.argwhere(data == i).mean(axis=0)
        return abs(c[1] - 128) + abs(c[2] - 128) + 3 * abs(c[0] - 6)

    dock.label_id.value = str(min(ids_on_plane(labels, 5), key=distance))
    viewer.scene.camera.zoom = 2.0
    dock.runner.run_button.clicked.emit()


def next_label(viewer, image, labels, dock, z):
    dock.runner.run_button.clicked.emit()


def export(viewer, image, labels, dock, z):
    dock.export_type.value = "3D image (OME-Zarr)"
    dock.folder_name.value = "mito_segmentation"


if __name__ == "__main__":
    for name, setup in [
        ("Merge labels", merge),
        ("Delete labels", delete),
        ("Split labels", split),
        ("Morph labels", morph),
        ("Filter labels", filter_),
        ("Count labels", count),
        ("Jump to label", jump),
        ("Find next available label", next_label),
        ("Export segmentation", export),
    ]:
        shot(name, setup)
