"""Screenshots for annotate-training-set.md, taken in napari (run under Xvfb).

    xvfb-run -a python docs/tutorials/make_annotate_screenshots.py /path/to/vnc_sstem [OUT]

Writes docs/images/annotate-*.png (or into OUT). Follows the tutorial step by step with
the real docks, so the pictures show what a user sees.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QApplication

import napari
from tamale.datasets import PickConfig

HERE = Path(__file__).resolve().parent


def show(dock) -> None:
    QApplication.processEvents()
    dock.show()
    dock.raise_()


def shot(viewer: napari.Viewer, out: Path, name: str) -> None:
    for _ in range(5):
        QApplication.processEvents()
    rgb = Image.fromarray(viewer.screenshot(canvas_only=False, flash=False)).convert("RGB")
    small = rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(out / f"annotate-{name}.png", optimize=True)  # 256 colours: half the bytes
    print("wrote", out / f"annotate-{name}.png")


def wait(dock) -> None:
    while dock.runner.busy:
        QApplication.processEvents()


def main(data: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    training = Path(tempfile.mkdtemp(prefix="tamale-training-"))
    volume = tifffile.imread(data / "image.tif")
    truth = tifffile.imread(data / "mito_instances_2d_cc.tif")

    viewer = napari.Viewer(title="tamale: annotate a training set")
    viewer.window.resize(1720, 1000)
    viewer.add_image(volume, name="image", scale=(45.0, 4.6, 4.6))
    pick_dock, pick = viewer.window.add_plugin_dock_widget("tamale", "Pick training patches")
    store_dock, store = viewer.window.add_plugin_dock_widget(
        "tamale", "Store training set", tabify=True
    )
    viewer.window._qt_window.resizeDocks(  # give the docks room to show every control
        [pick_dock], [440], Qt.Orientation.Horizontal
    )
    viewer.dims.set_current_step(0, 10)
    points = viewer.add_points(ndim=3, name="Points", size=120, face_color="yellow")
    points.add(np.array([[10 * 45.0, 500 * 4.6, 300 * 4.6], [10 * 45.0, 200 * 4.6, 820 * 4.6]]))
    pick.points.value = points
    pick.target_fields.save_dir.value = str(training)
    pick.target_fields.dataset_name.value = "mito"
    pick.set_config(PickConfig(n_patches=16, patch_size=256, seed=11))
    show(pick_dock)
    viewer.reset_view()
    shot(viewer, out, "01-points")

    pick.runner.run_button.clicked.emit()
    wait(pick)
    shot(viewer, out, "02-flipbooks")

    books, labels = pick.last_layers
    for i, rec in enumerate(pick.last_result.provenance):
        (r0, r1), (c0, c1) = rec.box
        labels.data[i, 2] = truth[rec.plane, r0:r1, c0:c1]
    labels.refresh()
    busiest = int(np.argmax([len(np.unique(m)) for m in labels.data[:, 2]]))
    viewer.dims.set_point(0, busiest)  # the flipbook with the most mitochondria
    shot(viewer, out, "03-annotated")

    store.confirm = lambda question: True
    show(store_dock)
    store.runner.run_button.clicked.emit()
    wait(store)
    shot(viewer, out, "04-stored")

    for layer in (books, labels):
        layer.visible = False
    viewer.layers["image"].visible = True
    points.visible = True
    viewer.reset_view()
    viewer.dims.set_point(1, 10 * 45.0)
    show(pick_dock)
    pick.set_config(PickConfig(n_patches=8, patch_size=256, seed=3))
    shot(viewer, out, "05-second-round")
    viewer.close()


if __name__ == "__main__":
    data = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else HERE.parent / "images"
    main(data, out)
