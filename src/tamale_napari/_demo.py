"""The GUI behind ``tamale demo``: napari with a sample and every tamale dock."""

from __future__ import annotations

from npe2 import PluginManager

import napari

PLUGIN = "tamale"


def dock_names() -> list[str]:
    """Display names of every dock widget the tamale manifest contributes."""
    manifest = PluginManager.instance().get_manifest(PLUGIN)
    return [w.display_name for w in (manifest.contributions.widgets or [])]


def open_demo(sample: str = "synthetic-3d", viewer: napari.Viewer | None = None) -> napari.Viewer:
    """Open ``sample`` and the tamale docks in ``viewer`` (a new one by default)."""
    viewer = viewer if viewer is not None else napari.Viewer(title="tamale demo")
    viewer.open_sample(PLUGIN, sample)
    for i, name in enumerate(dock_names()):
        viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=i > 0)
    return viewer


def launch(sample: str = "synthetic-3d") -> None:
    """Open the demo and run the Qt event loop until the window closes."""
    open_demo(sample)
    napari.run()
