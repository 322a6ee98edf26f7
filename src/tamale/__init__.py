"""tamale: panoptic segmentation of electron-microscopy images and volumes.

The engine runs headless (scripts, the CLI, notebooks, Dask workers, the napari
console); the napari plugin lives in the separate ``tamale_napari`` package and
only maps layers and widget values onto the engine's functions.

Importing ``tamale`` is cheap: sub-packages (``tamale.patching``,
``tamale.inference``...) are imported on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
