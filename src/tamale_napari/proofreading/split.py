"""Split labels dock."""

from __future__ import annotations

from typing import Any

from magicgui.widgets import CheckBox, LineEdit, Slider

import napari
from tamale.errors import TamaleInputError
from tamale.progress import ProgressEvent
from tamale.proofread import iter_split_labels, resolve_picks
from tamale.proofread.config import SplitConfig

from ._common import AppliedEdit, ProofreadDock

__all__ = ["SplitLabels"]

_FIELDS = SplitConfig.model_fields


class SplitLabels(ProofreadDock):
    """Split the picked object(s) with a distance or marker watershed."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.min_distance = Slider(
            label="Minimum Distance",
            value=10,
            min=1,
            max=100,
            tooltip=_FIELDS["min_distance"].description,
        )
        self.points_as_markers = CheckBox(
            text="Use points as markers", tooltip=_FIELDS["points_as_markers"].description
        )
        self.new_label = CheckBox(
            text="Specify new label IDs",
            tooltip="Choose the first id of the pieces yourself (otherwise: after the largest "
            "id in the whole labels)",
        )
        self.start_label = LineEdit(
            label="start id", value="", tooltip=_FIELDS["start_id"].description
        )
        self.label_divisor = LineEdit(
            label="label divisor", value="0", tooltip=_FIELDS["label_divisor"].description
        )
        super().__init__(
            viewer,
            run_text="Split labels",
            run_tooltip="Cut the picked object into pieces, each with a new unused id "
            "(Ctrl-Z undoes)",
            extra=[
                self.min_distance,
                self.points_as_markers,
                self.new_label,
                self.start_label,
                self.label_divisor,
            ],
        )
        self.start_label.visible = False
        self.new_label.changed.connect(lambda v: setattr(self.start_label, "visible", bool(v)))

    def to_config(self) -> SplitConfig:
        start_text = self.start_label.value.strip()
        try:
            start = int(start_text) if (self.new_label.value and start_text) else None
            divisor = int(self.label_divisor.value.strip() or 0)
        except ValueError:
            raise TamaleInputError(
                "the start id and the label divisor must be whole numbers"
            ) from None
        if self.new_label.value and start is None:
            raise TamaleInputError("type the first new label id, or untick 'Specify new label IDs'")
        return SplitConfig.from_mapping(
            {
                "min_distance": self.min_distance.value,
                "points_as_markers": self.points_as_markers.value,
                "apply_3d": bool(self.apply_3d.value),
                "start_id": start,
                "label_divisor": divisor,
            }
        )

    def set_config(self, cfg: SplitConfig) -> None:
        self.min_distance.value = cfg.min_distance
        self.points_as_markers.value = cfg.points_as_markers
        self.apply_3d.value = cfg.apply_3d
        self.new_label.value = cfg.start_id is not None
        self.start_label.value = "" if cfg.start_id is None else str(cfg.start_id)
        self.label_divisor.value = str(cfg.label_divisor)

    def run(self) -> None:
        cfg = self.to_config()
        layer = self.labels()
        region = self.region(layer)
        coords = self.pick_coords(layer)
        sampling = tuple(float(s) for s in layer.scale)

        def compute(data: Any, token: Any):
            picks = resolve_picks(data, coords, region)
            yield ProgressEvent("pick", 1, 1, "reading the picked labels")
            return (
                yield from iter_split_labels(
                    data,
                    picks,
                    region,
                    min_distance=cfg.min_distance,
                    points_as_markers=cfg.points_as_markers,
                    start_id=cfg.start_id,
                    label_divisor=cfg.label_divisor,
                    sampling=sampling,
                    cancel=token,
                )
            )

        self.run_edit(layer, compute, "split labels", on_applied=self._done)

    def _done(self, result: AppliedEdit) -> None:
        self.clear_picks()
