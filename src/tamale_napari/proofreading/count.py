"""Count labels dock: objects per class, shown as a table, saved as CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magicgui.widgets import FileEdit, LineEdit, PushButton, RadioButtons, Table, TextEdit
from napari.utils.notifications import show_info

import napari
from tamale.errors import TamaleInputError
from tamale.proofread import CountTable, iter_count_labels, parse_class_names
from tamale.proofread.config import CountConfig
from tamale_napari._layers import layer_array
from tamale_napari._workers import report_error

from ._common import SCOPES, ProofreadDock

__all__ = ["CountLabels"]

_FIELDS = CountConfig.model_fields


class CountLabels(ProofreadDock):
    """Count the objects of each class; show a table; export it as CSV."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.apply_to = RadioButtons(
            label="count in",
            choices=list(SCOPES),
            value="3D volume",
            tooltip=_FIELDS["apply_to"].description,
        )
        self.label_divisor = LineEdit(
            label="label divisor", value="0", tooltip=_FIELDS["label_divisor"].description
        )
        self.class_names = TextEdit(
            label="class names", value="1,mitochondria", tooltip=_FIELDS["class_names"].description
        )
        self.table = Table(value=[], tooltip="Objects per class (and per image for 2D patches)")
        self.csv_path = FileEdit(
            label="CSV file",
            mode="w",
            filter="*.csv",
            tooltip="Where 'Save CSV' writes the table (an existing file is never replaced)",
        )
        self.save_button = PushButton(
            text="Save CSV", tooltip="Write the table (with every label id) as a CSV file"
        )
        super().__init__(
            viewer,
            run_text="Count labels",
            run_tooltip="Count the distinct objects of each class",
            points=False,
            apply_3d=False,
            extra=[self.apply_to, self.label_divisor, self.class_names],
        )
        self.extend([self.table, self.csv_path, self.save_button])
        self.result: CountTable | None = None
        self.save_button.changed.connect(self._on_save)

    def to_config(self) -> CountConfig:
        try:
            divisor = int(self.label_divisor.value.strip() or 0)
        except ValueError:
            raise TamaleInputError(
                "the label divisor must be a whole number (0: no classes)"
            ) from None
        return CountConfig.from_mapping(
            {
                "apply_to": self.apply_to.value,
                "label_divisor": divisor,
                "class_names": self.class_names.value,
            }
        )

    def set_config(self, cfg: CountConfig) -> None:
        self.apply_to.value = cfg.apply_to
        self.label_divisor.value = str(cfg.label_divisor)
        self.class_names.value = cfg.class_names

    def run(self) -> None:
        cfg = self.to_config()
        names = parse_class_names(cfg.class_names)
        layer = self.labels()
        region, per_plane = self.scope(layer, cfg.apply_to)
        self.start(
            lambda tok: iter_count_labels(
                layer_array(layer),
                region,
                label_divisor=cfg.label_divisor,
                class_names=names,
                per_plane_axis=per_plane,
                cancel=tok,
            ),
            on_result=self.show_table,
            description="count labels",
        )

    def show_table(self, table: CountTable) -> None:
        self.result = table
        per_image = any(r.image is not None for r in table.rows)
        columns = (["image"] if per_image else []) + ["class", "name", "count"]
        rows = [
            ([r.image] if per_image else []) + [r.class_id, r.class_name, r.count]
            for r in table.rows
        ]
        self.table.value = {
            "data": rows,
            "index": list(range(1, len(rows) + 1)),
            "columns": columns,
        }
        self.final_status = f"{table.total} objects"

    def _on_save(self, _v: Any = None) -> None:
        try:
            self.save_csv(self.csv_path.value)
        except Exception as exc:
            report_error(exc)

    def save_csv(self, path: str | Path) -> Path:
        if self.result is None:
            raise TamaleInputError("count the labels first, then save the table")
        path = Path(path)
        if path.is_dir() or not path.name:
            raise TamaleInputError("choose a CSV file name to save the table to")
        if path.suffix.lower() != ".csv":
            path = path.with_suffix(".csv")
        self.result.to_csv(path)
        show_info(f"saved the label counts to {path}")
        return path
