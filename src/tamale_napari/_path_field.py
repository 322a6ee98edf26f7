"""A text field for a path *or URL*, with a Browse button, and a yes/no question.

magicgui's ``FileEdit`` turns its text into a ``pathlib.Path``, which collapses
``https://`` into ``https:/`` (URLs cannot be typed) and turns an empty field
into ``Path('.')`` (the current folder). :class:`PathField` keeps exactly the
text the user typed or picked; an empty field is ``""``.

:func:`ask_yes_no` is the confirmation dialog docks use before replacing
anything; docks keep it in an attribute so tests can substitute an answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from magicgui.widgets import Container, LineEdit, PushButton
from qtpy.QtWidgets import QFileDialog, QMessageBox

__all__ = ["PathField", "ask_yes_no"]

Mode = Literal["open", "save", "folder"]


class PathField(Container):
    """A ``LineEdit`` holding a path or URL as text, plus a Browse button.

    Parameters
    ----------
    label : str
        Label shown in the dock.
    mode : {"open", "save", "folder"}
        What the Browse dialog picks.
    filter : str
        Qt file-name filter for the dialog (e.g. ``"YAML (*.yaml *.yml)"``).
    tooltip, placeholder : str
        Shown on the text field.
    """

    def __init__(
        self,
        label: str,
        mode: Mode = "open",
        filter: str = "",
        tooltip: str = "",
        placeholder: str = "",
    ) -> None:
        self.text = LineEdit(tooltip=tooltip)
        self.text.native.setPlaceholderText(placeholder)
        self.browse_button = PushButton(text="Browse...", tooltip="Choose a file")
        super().__init__(
            layout="horizontal", widgets=[self.text, self.browse_button], labels=False, label=label
        )
        self.margins = (0, 0, 0, 0)
        self.mode = mode
        self.filter = filter
        self.dialog: Callable[[], str] = self._dialog
        """Returns the chosen path or "" (replaceable in tests)."""
        self.browse_button.changed.connect(self.browse)

    @property
    def value(self) -> str:
        """The text, stripped (``""`` when empty)."""
        return str(self.text.value).strip()

    @value.setter
    def value(self, text: str) -> None:
        self.text.value = str(text)

    def browse(self) -> None:
        """Open the file dialog and put the choice into the field."""
        chosen = self.dialog()
        if chosen:
            self.text.value = chosen

    def _dialog(self) -> str:
        parent = self.native
        start = self.value if self.value and "://" not in self.value else ""
        if self.mode == "folder":
            return QFileDialog.getExistingDirectory(parent, "Choose a folder", start)
        if self.mode == "save":
            path, _ = QFileDialog.getSaveFileName(parent, "Save as", start, self.filter)
            return path
        path, _ = QFileDialog.getOpenFileName(parent, "Choose a file", start, self.filter)
        return path


def ask_yes_no(question: str, parent: object | None = None) -> bool:
    """A modal Yes/No question; True when the user answers Yes (No is the default)."""
    answer = QMessageBox.question(
        parent,  # type: ignore[arg-type]
        "tamale",
        question,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes
