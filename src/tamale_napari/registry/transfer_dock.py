"""The "Export / import model" dock: one zip archive per model, safe to move between machines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import Container, Label, LineEdit

from tamale._names import check_name
from tamale.errors import TamaleInputError
from tamale.registry import iter_export_model, iter_import_model, read_manifest
from tamale.registry.register import RegisteredModel
from tamale.registry.store import user_models
from tamale_napari._model_choice import model_combo
from tamale_napari._path_field import PathField, ask_yes_no
from tamale_napari._workers import TaskRunner, report_error

if TYPE_CHECKING:
    import napari

__all__ = ["ExportImportDock"]


class ExportImportDock(Container):
    """Export a registered model to a zip archive, or import an archive under a chosen name.

    Archives hold the card, the weights and their SHA-256; they import on
    another machine (empanada-napari ``.empanada`` exports import too).
    Overwriting a file or replacing a model asks first.
    """

    def __init__(self, viewer: napari.viewer.Viewer | None = None) -> None:
        self.viewer = viewer
        self.export_model = model_combo(label="model to export", tooltip="A registered model")
        self.export_path = PathField(
            "archive to write",
            mode="save",
            filter="Model archive (*.zip)",
            tooltip="The .zip file to write (a folder: <folder>/<model>.zip)",
        )
        self.export_runner = TaskRunner("Export", tooltip="Write the model's archive")
        self.import_path = PathField(
            "archive to import",
            filter="Model archive (*.zip *.empanada)",
            tooltip="A model archive from tamale (or an empanada-napari export)",
        )
        self.import_name = LineEdit(
            label="import as", tooltip="Name in this registry; empty: the name it was exported as"
        )
        self.import_runner = TaskRunner("Import", tooltip="Check and register the archive")
        self.result = Label(value="")
        export_box = Container(
            widgets=[self.export_model, self.export_path, self.export_runner], label="Export"
        )
        import_box = Container(
            widgets=[self.import_path, self.import_name, self.import_runner], label="Import"
        )
        super().__init__(widgets=[export_box, import_box, self.result])
        self.confirm: Callable[[str], bool] = lambda q: ask_yes_no(q, self.native)
        """Asks the user a yes/no question (tests substitute an answer)."""
        self.last_export: Path | None = None
        self.last_import: RegisteredModel | None = None
        self.export_runner.run_button.changed.connect(self.export)
        self.import_runner.run_button.changed.connect(self.import_)

    def export(self) -> None:
        """Write the chosen model's archive (asks before overwriting a file)."""
        name, out = self.export_model.value, self.export_path.value
        if not name:
            report_error(TamaleInputError("no model to export: register or import one first"))
            return
        if not out:
            report_error(TamaleInputError("choose the archive file to write"))
            return
        target = Path(out).expanduser()
        if target.is_dir():
            target = target / f"{name}.zip"
        elif not target.suffix:
            target = target.with_suffix(".zip")
        overwrite = False
        if target.is_file():
            if not self.confirm(f"{target} already exists. Overwrite it?"):
                self.result.value = "nothing exported"
                return
            overwrite = True
        self.export_runner.start(
            lambda token: iter_export_model(name, target, overwrite=overwrite, cancel=token),
            on_result=self._exported,
            description=f"export {name}",
        )

    def _exported(self, path: Path) -> None:
        self.last_export = path
        self.result.value = f"exported to {path}"

    def import_(self) -> None:
        """Import the chosen archive (asks before replacing a registered model)."""
        archive = self.import_path.value
        try:
            if not archive:
                raise TamaleInputError("choose a model archive to import")
            typed = str(self.import_name.value).strip()
            name = check_name(typed, "model name") if typed else read_manifest(archive).name
        except (TamaleInputError, ValueError) as exc:
            report_error(exc)
            return
        replace = False
        if name in user_models():
            if not self.confirm(f"A model named {name!r} is already registered. Replace it?"):
                self.result.value = "nothing imported"
                return
            replace = True
        self.import_runner.start(
            lambda token: iter_import_model(archive, typed or None, replace=replace, cancel=token),
            on_result=self._imported,
            description=f"import {name}",
        )

    def _imported(self, reg: RegisteredModel) -> None:
        self.last_import = reg
        self.result.value = f"imported {reg.name} ({reg.parameters:,} parameters)"
