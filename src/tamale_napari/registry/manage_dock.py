"""The "Archive / restore / hide model" dock.

User models are archived (moved aside, restorable) and archived ones can be
deleted for good (asks first); bundled models are hidden from the model lists
(the installed package is never touched) and unhidden. Every list here and in
every other dock follows at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from magicgui.widgets import Container, Label, PushButton

from tamale.errors import TamaleInputError
from tamale.registry import (
    archive_model,
    hidden_models,
    hide_model,
    list_archived,
    remove_archived_model,
    restore_model,
    unhide_model,
)
from tamale.registry.store import bundled_models
from tamale_napari._model_choice import model_combo
from tamale_napari._path_field import ask_yes_no
from tamale_napari._workers import report_error

if TYPE_CHECKING:
    import napari

__all__ = ["ManageModelsDock"]


def _hidden() -> list[str]:
    return sorted(hidden_models(), key=lambda n: (n.lower(), n))


class ManageModelsDock(Container):
    """Archive, restore, delete archived, hide and unhide models."""

    def __init__(self, viewer: napari.viewer.Viewer | None = None) -> None:
        self.viewer = viewer
        self.model = model_combo(label="model", tooltip="A registered model")
        self.archive_button = PushButton(
            text="Archive", tooltip="Move this user model into the archive (restorable)"
        )
        self.hide_button = PushButton(
            text="Hide", tooltip="Hide this bundled model from every model list"
        )
        self.archived = model_combo(
            label="archived", tooltip="Archived models", source=list_archived
        )
        self.restore_button = PushButton(text="Restore", tooltip="Register it again")
        self.delete_button = PushButton(
            text="Delete for good", tooltip="Delete the archived model's files (asks first)"
        )
        self.hidden = model_combo(label="hidden", tooltip="Hidden bundled models", source=_hidden)
        self.unhide_button = PushButton(text="Unhide", tooltip="List it again")
        self.result = Label(value="")

        def row(*widgets: PushButton) -> Container:
            box = Container(layout="horizontal", widgets=list(widgets), labels=False)
            box.margins = (0, 0, 0, 0)
            return box

        super().__init__(
            widgets=[
                self.model,
                row(self.archive_button, self.hide_button),
                self.archived,
                row(self.restore_button, self.delete_button),
                self.hidden,
                row(self.unhide_button),
                self.result,
            ]
        )
        self.confirm: Callable[[str], bool] = lambda q: ask_yes_no(q, self.native)
        """Asks the user a yes/no question (tests substitute an answer)."""
        self.model.changed.connect(self._update_buttons)
        self.archived.changed.connect(self._update_buttons)
        self.hidden.changed.connect(self._update_buttons)
        self.archive_button.changed.connect(self.archive)
        self.hide_button.changed.connect(self.hide)
        self.restore_button.changed.connect(self.restore)
        self.delete_button.changed.connect(self.delete)
        self.unhide_button.changed.connect(self.unhide)
        self._update_buttons()

    def _update_buttons(self) -> None:
        name = self.model.value
        bundled = bool(name) and name in bundled_models()
        self.archive_button.enabled = bool(name) and not bundled
        self.hide_button.enabled = bundled
        self.restore_button.enabled = self.delete_button.enabled = bool(self.archived.value)
        self.unhide_button.enabled = bool(self.hidden.value)

    def _do(self, action: Callable[[], str]) -> None:
        try:
            self.result.value = action()
        except (TamaleInputError, OSError) as exc:
            report_error(exc)
        self._update_buttons()

    def archive(self) -> None:
        """Archive the selected user model."""
        name = self.model.value
        self._do(lambda: f"archived {name} in {archive_model(name)}")

    def hide(self) -> None:
        """Hide the selected bundled model."""
        name = self.model.value

        def act() -> str:
            hide_model(name)
            return f"{name} is hidden"

        self._do(act)

    def restore(self) -> None:
        """Restore the selected archived model."""
        name = self.archived.value
        self._do(lambda: f"restored {name} to {restore_model(name)}")

    def delete(self) -> None:
        """Delete the selected archived model for good, after asking."""
        name = self.archived.value
        if not name:
            return
        if not self.confirm(f"Delete the archived model {name!r} and its files for good?"):
            self.result.value = "nothing deleted"
            return

        def act() -> str:
            remove_archived_model(name)
            return f"deleted {name}"

        self._do(act)

    def unhide(self) -> None:
        """List the selected hidden bundled model again."""
        name = self.hidden.value

        def act() -> str:
            unhide_model(name)
            return f"{name} is listed again"

        self._do(act)
