"""Jump to label and Find next available label docks."""

from __future__ import annotations

from typing import Any

import numpy as np
from magicgui.widgets import LineEdit
from napari.utils.notifications import show_info

import napari
from tamale.errors import TamaleInputError
from tamale.proofread import LabelLocation, iter_locate_label, iter_next_free_label
from tamale.proofread.config import NextLabelConfig
from tamale_napari._layers import layer_array, world_axes

from ._common import ProofreadDock

__all__ = ["JumpToLabel", "NextFreeLabel", "show_location"]

_FIELDS = NextLabelConfig.model_fields


def _whole_number(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise TamaleInputError(f"the {what} must be a whole number, not {text!r}") from None


def show_location(viewer: napari.viewer.Viewer, layer: Any, where: LabelLocation) -> None:
    """Move the sliders to the object's central slice and centre the camera on it."""
    anchor_world = np.asarray(layer.data_to_world(np.asarray(where.anchor, float)), float)
    centre_world = np.asarray(layer.data_to_world(np.asarray(where.centroid, float)), float)
    axes = world_axes(viewer, layer)
    displayed = set(viewer.dims.displayed)
    for data_axis, world_axis in enumerate(axes):
        if world_axis not in displayed:
            viewer.dims.set_point(world_axis, float(anchor_world[data_axis]))
    centre = [
        float(centre_world[axes.index(w)]) if w in axes else float(viewer.dims.point[w])
        for w in viewer.dims.displayed
    ]
    scene = getattr(viewer, "scene", None)  # napari >= 0.9 moved the camera there
    camera = scene.camera if scene is not None else viewer.camera
    camera.center = tuple(centre)
    layer.selected_label = int(where.label_id)


class JumpToLabel(ProofreadDock):
    """Show an object: its central slice, centred on screen, selected for painting."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.label_id = LineEdit(label="Label ID", value="1", tooltip="Id of the object to jump to")
        super().__init__(
            viewer,
            run_text="Jump to label",
            run_tooltip="Find the object (scanning a zarr volume chunk by chunk), move to its "
            "central slice, centre it and select it",
            points=False,
            apply_3d=False,
            extra=[self.label_id],
        )
        self.last_location: LabelLocation | None = None

    def run(self) -> None:
        label_id = _whole_number(self.label_id.value, "label id")
        layer = self.labels()
        data = layer_array(layer)
        self.start(
            lambda tok: iter_locate_label(data, label_id, cancel=tok),
            on_result=lambda where: self._show(layer, where),
            description=f"find label {label_id}",
        )

    def _show(self, layer: Any, where: LabelLocation) -> None:
        self.last_location = where
        show_location(self.viewer, layer, where)
        self.final_status = f"label {where.label_id}: {where.voxels:,} voxels"


class NextFreeLabel(ProofreadDock):
    """Select the smallest id of a class not used anywhere in the labels."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.class_id = LineEdit(
            label="class id", value="1", tooltip=_FIELDS["class_id"].description
        )
        self.label_divisor = LineEdit(
            label="label divisor", value="0", tooltip=_FIELDS["label_divisor"].description
        )
        super().__init__(
            viewer,
            run_text="Find next available label",
            run_tooltip="Scan the whole labels for the smallest unused id of the class and "
            "make it the selected label (paint with it next)",
            points=False,
            apply_3d=False,
            extra=[self.class_id, self.label_divisor],
        )

    def to_config(self) -> NextLabelConfig:
        return NextLabelConfig.from_mapping(
            {
                "class_id": _whole_number(self.class_id.value, "class id"),
                "label_divisor": _whole_number(self.label_divisor.value or "0", "label divisor"),
            }
        )

    def set_config(self, cfg: NextLabelConfig) -> None:
        self.class_id.value = str(cfg.class_id)
        self.label_divisor.value = str(cfg.label_divisor)

    def run(self) -> None:
        cfg = self.to_config()
        layer = self.labels()
        data = layer_array(layer)
        self.start(
            lambda tok: iter_next_free_label(data, cfg.class_id, cfg.label_divisor, cancel=tok),
            on_result=lambda label: self._select(layer, label),
            description="find next available label",
        )

    def _select(self, layer: Any, label: int) -> None:
        layer.selected_label = int(label)
        self.final_status = f"selected label {label}"
        show_info(f"{layer.name!r}: the next available label is {label} (now selected)")
