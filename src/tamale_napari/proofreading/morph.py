"""Morph labels dock."""

from __future__ import annotations

from typing import Any

from magicgui.widgets import ComboBox, SpinBox

import napari
from tamale.progress import ProgressEvent
from tamale.proofread import OPERATIONS, iter_morph_labels, resolve_picks
from tamale.proofread.config import MorphConfig

from ._common import ProofreadDock

__all__ = ["MorphLabels"]

_FIELDS = MorphConfig.model_fields


class MorphLabels(ProofreadDock):
    """Dilate, erode, open, close or fill holes of each object (picked ones or all)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.operation = ComboBox(
            label="operation",
            choices=list(OPERATIONS),
            value="dilate",
            tooltip=_FIELDS["operation"].description,
        )
        self.radius = SpinBox(
            label="radius", value=1, min=1, max=7, tooltip=_FIELDS["radius"].description
        )
        self.hole_size = SpinBox(
            label="hole size",
            value=64,
            min=1,
            max=10**9,
            tooltip=_FIELDS["hole_size"].description,
        )
        super().__init__(
            viewer,
            run_text="Morph labels",
            run_tooltip="Apply the operation to each picked object (or every object when no "
            "points layer is chosen); Ctrl-Z undoes",
            points_required=False,
            extra=[self.operation, self.radius, self.hole_size],
        )
        self.points_layer.tooltip = (
            "Optional: points on the objects to process; empty choice = every object"
        )
        self.operation.changed.connect(self._show_relevant)
        self._show_relevant()

    def _show_relevant(self, _v: Any = None) -> None:
        fill = self.operation.value == "fill holes"
        self.hole_size.visible = fill
        self.radius.visible = not fill

    def to_config(self) -> MorphConfig:
        return MorphConfig.from_mapping(
            {
                "operation": self.operation.value,
                "radius": self.radius.value,
                "hole_size": self.hole_size.value,
                "apply_3d": bool(self.apply_3d.value),
            }
        )

    def set_config(self, cfg: MorphConfig) -> None:
        self.operation.value = cfg.operation
        self.radius.value = cfg.radius
        self.hole_size.value = cfg.hole_size
        self.apply_3d.value = cfg.apply_3d

    def run(self) -> None:
        cfg = self.to_config()
        layer = self.labels()
        region = self.region(layer)
        use_points = self.points_layer.value is not None
        coords = self.pick_coords(layer) if use_points else None

        def compute(data: Any, token: Any):
            ids = None
            if coords is not None:
                ids = resolve_picks(data, coords, region).unique_ids
                yield ProgressEvent("pick", 1, 1, "reading the picked labels")
            return (
                yield from iter_morph_labels(
                    data,
                    region,
                    operation=cfg.operation,
                    radius=cfg.radius,
                    hole_size=cfg.hole_size,
                    ids=ids,
                    cancel=token,
                )
            )

        self.run_edit(layer, compute, f"{cfg.operation} labels")
