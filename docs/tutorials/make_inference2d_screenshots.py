"""Screenshots of docs/tutorials/inference-2d.md, from a real napari window (run under Xvfb):

    xvfb-run -a -s "-screen 0 1920x1200x24" python docs/tutorials/make_inference2d_screenshots.py

Uses the packaged sample and the built-in model; writes ``docs/images/inference2d-*.png``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

IMAGES = Path(__file__).resolve().parents[1] / "images"


def wait(app, predicate, timeout_s: float = 600.0) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        app.processEvents()
        time.sleep(0.05)
        if time.monotonic() > end:
            raise TimeoutError("the step took too long")


def run_dock(app, dock) -> None:
    dock.runner.run_button.clicked.emit()
    wait(app, lambda: not dock.runner.busy)
    if dock.runner.last_error:
        raise dock.runner.last_error
    app.processEvents()


def main() -> None:
    import imageio.v3 as iio

    import napari
    from tamale_napari._demo import FIRST_DOCK, open_demo

    IMAGES.mkdir(exist_ok=True)
    viewer = napari.Viewer(title="tamale demo")
    viewer.window._qt_window.resize(1600, 1000)
    app = napari.qt.get_qapp()
    viewer.dims.set_current_step(0, 10)
    viewer, docks = open_demo(viewer=viewer, segment=False)
    viewer.dims.set_current_step(0, 10)
    viewer.layers[1].visible = False  # the ground truth
    dock = docks[FIRST_DOCK]
    run_dock(app, dock)
    viewer.window.screenshot(str(IMAGES / "inference2d-01-demo.png"), canvas_only=False)

    # downsampling 1, 2, 4: the dock's results side by side (rendered from the layers'
    # data over the slice, with the object count of each)
    from skimage.color import label2rgb

    first = dock.last_layer
    z = int(viewer.dims.current_step[0])
    image = viewer.layers[0].data[z]
    panels = []
    for factor in (1, 2, 4):
        dock.downsampling.value = factor
        run_dock(app, dock)
        dock.last_layer.name = f"downsampling {factor}"
        labels = np.asarray(dock.last_layer.data[0])
        overlay = label2rgb(labels, image=image, bg_label=0, alpha=0.35, image_alpha=1.0)
        panels.append((overlay * 255).astype(np.uint8))
    gap = np.full((image.shape[0], 8, 3), 255, np.uint8)
    row = [panels[0], gap, panels[1], gap, panels[2]]
    iio.imwrite(IMAGES / "inference2d-02-downsampling.png", np.concatenate(row, axis=1))

    for layer in viewer.layers[2:]:
        layer.visible = False
    first.visible = False
    dock.downsampling.value = 2
    dock.batch_mode.value = True
    run_dock(app, dock)
    viewer.window.screenshot(str(IMAGES / "inference2d-03-batch.png"), canvas_only=False)
    viewer.close()
    print("screenshots in", IMAGES)


if __name__ == "__main__":
    main()
