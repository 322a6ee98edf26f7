"""Filter labels dock: remove small objects and/or objects touching the border."""

from __future__ import annotations

from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, RadioButtons, SpinBox
from napari.utils.notifications import show_info

import napari
from tamale.errors import TamaleInputError
from tamale.proofread import iter_apply_edit, iter_copy_to_numpy, iter_filter_labels
from tamale.proofread.config import FilterConfig
from tamale_napari._layers import layer_array

from ._common import SCOPES, ProofreadDock, _available_memory

__all__ = ["FilterLabels"]

_FIELDS = FilterConfig.model_fields


class FilterLabels(ProofreadDock):
    """Remove objects smaller than a size or touching the border, in one pass."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.remove_small = CheckBox(
            value=True, text="Small labels", tooltip=_FIELDS["remove_small"].description
        )
        self.min_size = SpinBox(
            label="minimum size",
            value=100,
            min=1,
            max=10**9,
            tooltip=_FIELDS["min_size"].description,
        )
        self.remove_border = CheckBox(
            value=False, text="Boundary labels", tooltip=_FIELDS["remove_border"].description
        )
        self.apply_to = RadioButtons(
            label="apply to",
            choices=list(SCOPES),
            value="current image",
            tooltip=_FIELDS["apply_to"].description,
        )
        self.new_layer = CheckBox(
            value=False, text="output to a new layer", tooltip=_FIELDS["new_layer"].description
        )
        super().__init__(
            viewer,
            run_text="Filter labels",
            run_tooltip="Remove the matching objects (in place: Ctrl-Z undoes)",
            points=False,
            apply_3d=False,
            extra=[
                self.remove_small,
                self.min_size,
                self.remove_border,
                self.apply_to,
                self.new_layer,
            ],
        )

    def to_config(self) -> FilterConfig:
        return FilterConfig.from_mapping(
            {
                "remove_small": self.remove_small.value,
                "min_size": self.min_size.value,
                "remove_border": self.remove_border.value,
                "apply_to": self.apply_to.value,
                "new_layer": self.new_layer.value,
            }
        )

    def set_config(self, cfg: FilterConfig) -> None:
        self.remove_small.value = cfg.remove_small
        self.min_size.value = cfg.min_size
        self.remove_border.value = cfg.remove_border
        self.apply_to.value = cfg.apply_to
        self.new_layer.value = cfg.new_layer

    def run(self) -> None:
        cfg = self.to_config()
        layer = self.labels()
        region, per_plane = self.scope(layer, cfg.apply_to)
        info: dict[str, Any] = {}

        def compute(data: Any, token: Any):
            result = yield from iter_filter_labels(
                data,
                region,
                min_size=cfg.min_size,
                remove_small=cfg.remove_small,
                remove_border=cfg.remove_border,
                per_plane_axis=per_plane,
                cancel=token,
            )
            info["result"] = result
            return result.edit

        if not cfg.new_layer:
            self.run_edit(layer, compute, "filter labels", on_applied=lambda _r: self._report(info))
            return
        data = layer_array(layer)
        nbytes = int(np.prod(data.shape)) * np.dtype(data.dtype).itemsize
        if nbytes > _available_memory() // 2:
            raise TamaleInputError(
                f"{layer.name!r} is too large for a new in-memory layer; filter it in place "
                "(untick 'output to a new layer')"
            )

        def work(token: Any):
            copy = yield from iter_copy_to_numpy(data, cancel=token)
            edit = yield from compute(copy, token)
            yield from iter_apply_edit(copy, edit, cancel=token)
            return copy

        def add(copy: np.ndarray) -> None:
            self.viewer.add_labels(
                copy,
                name=f"{layer.name} filtered",
                scale=layer.scale,
                translate=layer.translate,
                metadata=dict(layer.metadata),
            )
            self._report(info)

        self.start(work, on_result=add, description="filter labels")

    def _report(self, info: dict[str, Any]) -> None:
        result = info.get("result")
        if result is not None:
            text = f"removed {result.n_removed} of {result.n_objects} objects"
            self.final_status = text
            show_info(f"Filter labels: {text}")
