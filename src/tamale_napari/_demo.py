"""The GUI behind ``tamale demo``: napari with a sample, every tamale dock, the built-in
model chosen and the current slice being segmented."""

from __future__ import annotations

from typing import Any

from napari.utils.notifications import show_info
from npe2 import PluginManager

import napari
from tamale.demo import BUILTIN_MODEL

PLUGIN = "tamale"
FIRST_DOCK = "2D inference (parameter testing)"


def dock_names() -> list[str]:
    """Display names of every dock widget the tamale manifest contributes."""
    manifest = PluginManager.instance().get_manifest(PLUGIN)
    return [w.display_name for w in (manifest.contributions.widgets or [])]


def open_demo(
    sample: str = "vnc-sstem",
    viewer: napari.Viewer | None = None,
    model: str | None = BUILTIN_MODEL,
    segment: bool = True,
) -> tuple[napari.Viewer, dict[str, Any]]:
    """Open ``sample`` and the tamale docks in ``viewer`` (a new one by default).

    The inference docks get ``model`` (when it is registered) and, with ``segment``,
    the 2D inference dock starts segmenting the slice on screen (in a worker thread:
    the window stays responsive and the result appears as a labels layer; the sample's
    ground truth is hidden under it). Returns the viewer and the dock widgets by display
    name.
    """
    viewer = viewer if viewer is not None else napari.Viewer(title="tamale demo")
    viewer.open_sample(PLUGIN, sample)
    docks: dict[str, Any] = {}
    frames: dict[str, Any] = {}
    # the 2D inference dock first, and its tab raised at the end
    for i, name in enumerate(sorted(dock_names(), key=lambda n: n != FIRST_DOCK)):
        frames[name], docks[name] = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=i > 0)
    if FIRST_DOCK in frames:
        frames[FIRST_DOCK].raise_()
    infer2d = docks.get(FIRST_DOCK)
    for dock in (infer2d, docks.get("3D inference")):
        if dock is not None and model and model in dock.model.choices:
            dock.model.value = model
    if segment and infer2d is not None and model and infer2d.model.value == model:
        images = [layer for layer in viewer.layers if isinstance(layer, napari.layers.Image)]
        # the sample's ground truth stays in the layer list, hidden under the result
        for layer in viewer.layers:
            if isinstance(layer, napari.layers.Labels):
                layer.visible = False
        if images:
            infer2d.image.value = images[0]
            show_info(f"segmenting the slice on screen with {model!r}")
            infer2d.runner.run_button.clicked.emit()
    return viewer, docks


def launch(sample: str = "vnc-sstem", model: str | None = BUILTIN_MODEL) -> None:
    """Open the demo and run the Qt event loop until the window closes."""
    open_demo(sample, model=model)
    napari.run()
