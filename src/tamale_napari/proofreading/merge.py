"""Merge labels and Delete labels docks."""

from __future__ import annotations

from typing import Any

import napari
from tamale.progress import ProgressEvent
from tamale.proofread import delete_labels, merge_labels, resolve_picks
from tamale.proofread._arrays import Region

from ._common import AppliedEdit, ProofreadDock

__all__ = ["DeleteLabels", "MergeLabels"]


class MergeLabels(ProofreadDock):
    """Merge the picked objects into one label.

    The merged id is the layer's selected label if it was picked, else the
    smallest picked id. Objects are picked with points and/or lines or paths
    in a Shapes layer (every pixel along a line counts).
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(
            viewer,
            run_text="Merge labels",
            run_tooltip="Merge every picked object into one label (Ctrl-Z undoes)",
            shapes=True,
        )

    def run(self) -> None:
        layer = self.labels()
        region: Region = self.region(layer)
        coords = self.pick_coords(layer)
        selected = int(layer.selected_label)

        def compute(data: Any, token: Any):
            picks = resolve_picks(data, coords, region)
            yield ProgressEvent("pick", 1, 1, "reading the picked labels")
            return merge_labels(data, picks, region, selected_label=selected)

        self.run_edit(layer, compute, "merge labels", on_applied=self._done)

    def _done(self, result: AppliedEdit) -> None:
        self.clear_picks()


class DeleteLabels(ProofreadDock):
    """Delete the picked objects (set them to background)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(
            viewer,
            run_text="Delete labels",
            run_tooltip="Set every picked object to background (Ctrl-Z undoes)",
        )

    def run(self) -> None:
        layer = self.labels()
        region = self.region(layer)
        coords = self.pick_coords(layer)

        def compute(data: Any, token: Any):
            picks = resolve_picks(data, coords, region)
            yield ProgressEvent("pick", 1, 1, "reading the picked labels")
            return delete_labels(data, picks, region)

        self.run_edit(layer, compute, "delete labels", on_applied=lambda _r: self.clear_picks())
