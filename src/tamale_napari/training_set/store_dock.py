"""The "Store training set" dock.

Appends annotated patches or flipbooks (an image layer and its labels layer, as made
by the "Pick training patches" dock) to ``<save directory>/<dataset name>`` with
:func:`tamale.datasets.iter_store_annotated` in a worker. Flipbooks store their
middle plane; the provenance in the layers' metadata names the source and the region
of every patch. Patches with empty labels are announced and stored only when the
user confirms. Nothing is ever overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, Label
from napari.layers import Image, Labels
from napari.utils.notifications import show_info, show_warning

from tamale.config import ConfigError
from tamale.datasets import (
    MIN_TRAINING_PATCHES,
    StoreResult,
    annotated_planes,
    empty_label_patches,
    iter_store_annotated,
)
from tamale.errors import TamaleInputError
from tamale_napari._path_field import ask_yes_no
from tamale_napari._workers import TaskRunner, report_error
from tamale_napari.training_set._target import TargetFields, target_for

if TYPE_CHECKING:
    import napari

__all__ = ["StoreTrainingSetDock", "layer_provenance"]


def _field(record: Any, name: str) -> Any:
    return record.get(name) if isinstance(record, dict) else getattr(record, name, None)


def layer_provenance(layer: Any) -> list[Any] | None:
    """The patch provenance a pick recorded in a layer's metadata, if any."""
    meta = getattr(layer, "metadata", None) or {}
    records = (meta.get("tamale") or {}).get("provenance")
    return list(records) if records else None


class StoreTrainingSetDock(Container):
    """Store annotated patches or flipbooks in a training set (appending, never overwriting)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.viewer = viewer
        self.image = ComboBox(
            label="image layer",
            choices=self._layer_choices(Image),
            tooltip="The annotated patches (N, P, P) or flipbooks (N, 5, P, P)",
        )
        self.labels_layer = ComboBox(
            label="labels layer",
            choices=self._layer_choices(Labels),
            tooltip="Their labels (same shape); of flipbooks only the middle plane is stored",
        )
        self.target = target_for(viewer)
        self.target_fields = TargetFields(
            self.target,
            dir_tooltip="Folder that holds the training set (shared with the Pick training "
            "patches dock)",
            name_tooltip="Training set (dataset) folder name: created, or appended to if it "
            "exists (letters, digits, '.', '_', '-')",
        )
        self.info = Label(value="")
        self.info.native.setWordWrap(True)
        self.runner = TaskRunner(
            "Store", tooltip="Append the patches and their labels to the training set"
        )
        self.result = Label(value="")
        self.result.native.setWordWrap(True)
        super().__init__(
            widgets=[
                self.image,
                self.labels_layer,
                self.target_fields,
                self.info,
                self.runner,
                self.result,
            ]
        )
        self.confirm: Callable[[str], bool] = lambda q: ask_yes_no(q, self.native)
        """Asks the user a yes/no question (tests substitute an answer)."""
        self.last_result: StoreResult | None = None
        """The latest store (for scripts and tests)."""
        self.runner.run_button.changed.connect(self._run)
        self.image.changed.connect(self._image_changed)
        self.labels_layer.changed.connect(self._describe)
        events = viewer.layers.events
        for name in ("inserted", "removed", "reordered"):
            getattr(events, name).connect(self._layers_changed)
        self._image_changed()

    def _layer_choices(self, kind: type) -> Any:
        def choices(_widget: Any = None) -> list[Any]:
            return [layer for layer in self.viewer.layers if isinstance(layer, kind)]

        return choices

    def _layers_changed(self, event: Any = None) -> None:
        self.image.reset_choices()
        self.labels_layer.reset_choices()
        added = getattr(event, "value", None) if getattr(event, "type", "") == "inserted" else None
        if isinstance(added, Image) and layer_provenance(added):
            self.image.value = added  # freshly picked patches are what gets stored
        elif isinstance(added, Labels) and self.image.value is not None:
            if added.name == f"{self.image.value.name}_labels":
                self.labels_layer.value = added
        self._describe()

    def _image_changed(self, _value: Any = None) -> None:
        image = self.image.value
        if image is not None:
            match = [
                layer
                for layer in self.viewer.layers
                if isinstance(layer, Labels) and layer.name == f"{image.name}_labels"
            ]
            if match:
                self.labels_layer.value = match[0]
        self._describe()

    def _describe(self, _value: Any = None) -> None:
        image = self.image.value
        if image is None:
            self.info.value = ""
            return
        records = layer_provenance(image)
        origin = (
            f" picked from {_field(records[0], 'source_layer')!r}"
            if records
            else f" (not picked by tamale: stored as they are, source {image.name!r})"
        )
        shape = image.data.shape if not image.multiscale else None
        if shape is None:
            self.info.value = "a multiscale layer is not a set of patches"
        elif len(shape) == 4:
            self.info.value = f"{shape[0]} flipbooks{origin}; their middle plane (2) is stored"
        else:
            n = 1 if len(shape) == 2 else shape[0]
            self.info.value = f"{n} patch{'es' if n != 1 else ''}{origin}"

    # -- run -------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            image, labels = self.image.value, self.labels_layer.value
            if image is None or labels is None:
                raise TamaleInputError("choose the image layer and the labels layer to store")
            if image.multiscale or labels.multiscale:
                raise TamaleInputError(
                    "multiscale layers are not picked patches: choose the layers made by "
                    "'Pick training patches'"
                )
            folder = self.target.dataset_dir(required=True)
            provenance = layer_provenance(image) or layer_provenance(labels)
            kind = None
            if provenance is not None:
                kind = _field(provenance[0], "kind")
            # validate shapes, kind and provenance now: nothing starts on bad input
            annotated_planes(image.data, labels.data, kind=kind, provenance=provenance)
            empty = empty_label_patches(labels.data, kind=kind)
        except (TamaleInputError, ConfigError) as exc:
            report_error(exc)
            return
        if empty:
            n = len(labels.data) if labels.data.ndim > 2 else 1
            shown = ", ".join(map(str, empty[:12])) + (" ..." if len(empty) > 12 else "")
            plane = " (on the middle plane)" if labels.data.ndim == 4 else ""
            message = f"{len(empty)} of {n} patches have empty labels{plane}: {shown}"
            show_warning(message)
            if not self.confirm(
                f"{message}.\n\nStore them anyway, as background-only examples?\n"
                "(No: store nothing, so you can annotate them first.)"
            ):
                self.result.value = "nothing stored"
                return
        source = None if provenance else image.name
        images_data, labels_data = image.data, labels.data.copy()
        save_dir, name = folder.parent, folder.name
        self.runner.start(
            lambda token: iter_store_annotated(
                images_data,
                labels_data,
                save_dir,
                name,
                source=source,
                provenance=provenance,
                kind=kind,
                cancel=token,
            ),
            on_result=self._stored,
            description=f"store {image.name}",
        )

    def _stored(self, result: StoreResult) -> None:
        self.last_result = result
        text = (
            f"stored {len(result.names)} patches in {result.dataset_dir} "
            f"(source {result.source}); the training set now has {result.total_pairs}"
        )
        if result.total_pairs < MIN_TRAINING_PATCHES:
            text += (
                f". Finetuning needs at least {MIN_TRAINING_PATCHES}: annotate "
                f"{MIN_TRAINING_PATCHES - result.total_pairs} more"
            )
        self.result.value = text
        show_info(text)
        self.target.changed.emit()  # the pick dock re-reads what is stored
