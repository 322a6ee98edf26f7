"""Make docs/images/inference-3d.png: the 3D inference dock in napari (run under Xvfb).

    xvfb-run -a -s "-screen 0 1920x1200x24" python docs/images/make_infer3d_screenshot.py

Opens the packaged ssTEM sample, runs the *3D inference* dock with the built-in model
(its recommended parameters, xy stack, zarr output in a temporary folder) and takes a
screenshot of the window with the result.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import napari
from tamale.demo import BUILTIN_MODEL

OUT = Path(__file__).with_name("inference-3d.png")


def main() -> None:
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    app = napari.qt.get_qapp()
    viewer.open_sample("tamale", "vnc-sstem")
    viewer.layers[1].visible = False  # the ground truth
    _, dock = viewer.window.add_plugin_dock_widget("tamale", "3D inference")
    dock.image.value = viewer.layers[0]
    dock.model.value = BUILTIN_MODEL
    dock.use_gpu.value = False
    dock.output.value = Path(tempfile.mkdtemp()) / "vnc_sstem_crop_seg.zarr"
    dock.show_advanced.value = True
    dock.runner.run_button.clicked.emit()
    end = time.monotonic() + 600
    while dock.runner.busy and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.05)
    if dock.runner.last_error:
        raise dock.runner.last_error
    viewer.dims.set_current_step(0, 10)
    for _ in range(20):
        app.processEvents()
    viewer.window.screenshot(str(OUT), canvas_only=False)
    print(f"wrote {OUT}")
    viewer.close()


if __name__ == "__main__":
    main()
