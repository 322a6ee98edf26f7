"""The "Model info" dock: everything about a model, shown in the dock and copyable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui.widgets import Container, PushButton, TextEdit
from qtpy.QtWidgets import QApplication

from tamale.registry import ModelInfo, format_info, iter_model_info
from tamale_napari._model_choice import model_combo
from tamale_napari._workers import TaskRunner

if TYPE_CHECKING:
    import napari

__all__ = ["ModelInfoDock"]

EMPTY = "No model is registered yet: use the *Register model* or *Export / import model* dock."


class ModelInfoDock(Container):
    """Choose a model; its description, classes, labeling ids, patch sizes, parameter
    count, license and files appear below (Markdown), with a button to copy them."""

    def __init__(self, viewer: napari.viewer.Viewer | None = None) -> None:
        self.viewer = viewer
        self.model = model_combo(tooltip="The model to describe")
        self.text = TextEdit(value="", tooltip="Model information (select text to copy)")
        self.text.read_only = True
        self.text.native.setMinimumHeight(320)
        self.copy_button = PushButton(text="Copy", tooltip="Copy the information as Markdown")
        self.runner = TaskRunner("Refresh", tooltip="Read the model's card and files again")
        super().__init__(widgets=[self.model, self.runner, self.text, self.copy_button])
        self.markdown = ""
        """The information shown, as Markdown (what Copy copies)."""
        self.info: ModelInfo | None = None
        self._pending = False
        self.model.changed.connect(self.refresh)
        self.runner.run_button.changed.connect(self.refresh)
        self.copy_button.changed.connect(self.copy)
        self.refresh()

    def refresh(self) -> None:
        """Gather the selected model's information in a worker and show it."""
        name = self.model.value
        if not name:
            self._show(EMPTY, None)
            return
        if self.runner.busy:  # show the latest choice once the running task ends
            self._pending = True
            return
        self._pending = False
        self.runner.start(
            lambda token: iter_model_info(name, cancel=token),
            on_result=lambda info: self._show(format_info(info), info),
            description=f"info {name}",
            on_finished=self._finished,
        )

    def _finished(self) -> None:
        if self._pending:
            self.refresh()

    def _show(self, markdown: str, info: ModelInfo | None) -> None:
        self.markdown = markdown
        self.info = info
        try:
            self.text.native.setMarkdown(markdown)
        except RuntimeError:  # the dock was closed while the information was gathered
            pass

    def copy(self) -> None:
        """Put the information (Markdown) on the clipboard."""
        QApplication.clipboard().setText(self.markdown)
