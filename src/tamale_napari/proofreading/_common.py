"""What every proofreading dock shares: layer choices, picks, regions, applying edits.

An edit computed by the engine is applied to the layer in one of two ways:

* up to :data:`UNDO_LIMIT` voxels: ``Labels.data_setitem`` on the GUI thread,
  which records it in napari's undo history (Ctrl-Z / ``layer.undo()``);
* larger: written block by block by the engine inside the worker (a zarr
  store chunk by chunk), with a notification that it cannot be undone
  (napari's history would keep a copy of every changed voxel).

Read-only labels (dask) are never edited silently: the dock offers to convert
the layer to a numpy array (if it fits in memory) or to a zarr store, then
runs the edit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container
from napari.layers import Labels, Points, Shapes
from napari.utils.notifications import (
    Notification,
    NotificationSeverity,
    notification_manager,
    show_info,
    show_warning,
)

import napari
from tamale.errors import TamaleInputError
from tamale.progress import CancelToken, ProgressEvent, drain
from tamale.proofread import (
    Edit,
    SparseEdit,
    is_writable,
    iter_apply_edit,
    iter_copy_to_numpy,
    iter_copy_to_zarr,
    iter_materialize,
)
from tamale_napari._layers import (
    current_region,
    layer_array,
    layers_of_type,
    points_to_data,
    shapes_to_data,
)
from tamale_napari._workers import TaskRunner, report_error

__all__ = ["SCOPES", "UNDO_LIMIT", "AppliedEdit", "ProofreadDock"]

SCOPES = ("current image", "2D patches", "3D volume")
"""What one image is for Filter and Count: the plane on screen, each plane of a
stack, or the whole volume (of the current flipbook)."""

UNDO_LIMIT = 5_000_000
"""Edits changing more voxels than this are written directly, without undo."""


@dataclass(frozen=True)
class AppliedEdit:
    """What a dock's worker hands back to the GUI thread."""

    edit: SparseEdit | None  # to apply with data_setitem (undoable), or None
    changed: int  # voxels already written directly (not undoable)
    description: str
    too_big: bool = False


def _available_memory() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil comes with the test extra
        return 4 * 2**30


class ProofreadDock(Container):
    """Base of the proofreading docks: layer pickers, apply-in-3D, a TaskRunner.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    run_text, run_tooltip : str
        The Run button.
    points, shapes, apply_3d : bool
        Which shared controls this dock shows.
    """

    def __init__(
        self,
        viewer: napari.viewer.Viewer,
        *,
        run_text: str,
        run_tooltip: str,
        points: bool = True,
        points_required: bool = True,
        shapes: bool = False,
        apply_3d: bool = True,
        extra: list | None = None,
    ) -> None:
        self.viewer = viewer
        self.labels_layer = ComboBox(
            label="labels layer",
            choices=self._labels_choices,
            tooltip="The labels layer to edit (uint integer ids, 0 = background)",
        )
        widgets: list = [self.labels_layer]
        self.points_layer: ComboBox | None = None
        self.shapes_layer: ComboBox | None = None
        if points:
            self.points_layer = ComboBox(
                label="points layer",
                choices=self._points_choices,
                nullable=not points_required or shapes,
                tooltip="Points on the objects to pick (add a Points layer and click on the "
                "objects); points on background are ignored",
            )
            widgets.append(self.points_layer)
        if shapes:
            self.shapes_layer = ComboBox(
                label="shapes layer",
                choices=self._shapes_choices,
                nullable=True,
                tooltip="Optional: lines or paths drawn across objects; every object a "
                "line crosses is picked",
            )
            widgets.append(self.shapes_layer)
        widgets.extend(extra or [])
        self.apply_3d: CheckBox | None = None
        if apply_3d:
            self.apply_3d = CheckBox(
                value=False,
                text="apply in 3D",
                tooltip="Edit the whole volume (of the current flipbook in a 4D stack) "
                "instead of only the plane on screen",
            )
            widgets.append(self.apply_3d)
        self.runner = TaskRunner(run_text, tooltip=run_tooltip)
        widgets.append(self.runner)
        super().__init__(widgets=widgets)
        self.native.setMinimumWidth(320)
        self.runner.run_button.changed.connect(self._on_run)
        self.pending_conversion: dict[str, Callable[[], None]] = {}
        self.final_status = ""
        for event in ("inserted", "removed", "reordered"):
            getattr(viewer.layers.events, event).connect(self._refresh_choices)
        viewer.layers.selection.events.active.connect(self._follow_selection)
        self._follow_selection()

    # -- layer choices ---------------------------------------------------
    def _labels_choices(self, _widget: Any = None) -> list:
        return layers_of_type(self.viewer, Labels)

    def _points_choices(self, _widget: Any = None) -> list:
        return layers_of_type(self.viewer, Points)

    def _shapes_choices(self, _widget: Any = None) -> list:
        return layers_of_type(self.viewer, Shapes)

    def _refresh_choices(self, _event: Any = None) -> None:
        try:
            self.reset_choices()
        except RuntimeError:  # the dock's Qt widget was deleted
            self._disconnect()

    def _disconnect(self) -> None:
        for event in ("inserted", "removed", "reordered"):
            getattr(self.viewer.layers.events, event).disconnect(self._refresh_choices)
        self.viewer.layers.selection.events.active.disconnect(self._follow_selection)

    def _follow_selection(self, _event: Any = None) -> None:
        """Preselect the active labels (and points) layer, as a user expects."""
        try:
            self.reset_choices()
        except RuntimeError:  # the dock's Qt widget was deleted
            self._disconnect()
            return
        active = self.viewer.layers.selection.active
        if isinstance(active, Labels):
            self.labels_layer.value = active
        elif isinstance(active, Points) and self.points_layer is not None:
            self.points_layer.value = active

    # -- inputs ------------------------------------------------------------
    def labels(self) -> Labels:
        """The chosen labels layer (error if none)."""
        layer = self.labels_layer.value
        if layer is None:
            raise TamaleInputError("add or choose a labels layer first")
        if getattr(layer, "multiscale", False):
            raise TamaleInputError(
                f"{layer.name!r} is multiscale; proofread a single-resolution labels layer"
            )
        return layer

    def region(self, layer: Labels) -> tuple[int | slice, ...]:
        """The plane (or, with apply in 3D, the volume) being edited."""
        in_3d = bool(self.apply_3d is not None and self.apply_3d.value)
        return current_region(self.viewer, layer, in_3d)

    def scope(self, layer: Any, apply_to: str) -> tuple[tuple, int | None]:
        """(region, per-plane axis) for ``apply_to``."""
        if apply_to == "current image":
            return current_region(self.viewer, layer, False), None
        region = current_region(self.viewer, layer, True)
        if apply_to == "3D volume":
            return region, None
        plane = current_region(self.viewer, layer, False)
        freed = [
            a
            for a in range(layer.ndim)
            if isinstance(region[a], slice) and not isinstance(plane[a], slice)
        ]
        return region, (freed[0] if freed else None)

    def pick_coords(self, layer: Labels, *, required: bool = True) -> np.ndarray:
        """Picked positions in ``layer``'s data coordinates (points + line pixels)."""
        pieces = []
        points = self.points_layer.value if self.points_layer is not None else None
        shapes = self.shapes_layer.value if self.shapes_layer is not None else None
        if points is None and shapes is None and required:
            raise TamaleInputError(
                "choose a points layer: add a Points layer and click on the objects to pick"
                + (" (or draw lines in a Shapes layer)" if self.shapes_layer is not None else "")
            )
        for picker in (points, shapes):
            if picker is not None and picker.ndim != layer.ndim:
                raise TamaleInputError(
                    f"{picker.name!r} has {picker.ndim} dimensions but {layer.name!r} has "
                    f"{layer.ndim}; create the points/shapes layer while the labels are shown"
                )
        if points is not None and len(points.data):
            pieces.append(points_to_data(points, layer))
        if shapes is not None and len(shapes.data):
            pieces.append(shapes_to_data(shapes, layer))
        if not pieces:
            if required:
                raise TamaleInputError(
                    "the points layer is empty: click on the objects to pick them first"
                )
            return np.zeros((0, layer.ndim))
        return np.concatenate(pieces)

    def clear_picks(self) -> None:
        """Remove the used points and lines, so the next edit starts fresh."""
        for combo in (self.points_layer, self.shapes_layer):
            layer = combo.value if combo is not None else None
            if layer is not None and len(layer.data):
                layer.data = np.zeros((0, layer.ndim)) if isinstance(layer, Points) else []

    # -- running -----------------------------------------------------------
    def start(
        self,
        work: Callable[[CancelToken], Generator[ProgressEvent, Any, Any]],
        *,
        on_result: Callable[[Any], None] | None = None,
        description: str = "tamale",
        on_finished: Callable[[], None] | None = None,
    ) -> None:
        """``runner.start`` that leaves ``self.final_status`` (set by ``on_result``) shown."""
        self.final_status = ""

        def finished() -> None:
            if self.final_status:
                took = self.runner.status.value
                self.runner.status.value = (
                    f"{self.final_status} ({took})"
                    if took.startswith("done")
                    else self.final_status
                )
            if on_finished is not None:
                on_finished()

        self.runner.start(work, on_result=on_result, description=description, on_finished=finished)

    def _on_run(self, _value: Any = None) -> None:
        try:
            self.run()
        except Exception as exc:  # validation errors before any work starts
            self.runner.last_error = exc
            report_error(exc)

    def run(self) -> None:  # pragma: no cover - every dock overrides it
        raise NotImplementedError

    def run_edit(
        self,
        layer: Labels,
        compute: Callable[[Any, CancelToken], Generator[ProgressEvent, Any, Edit]],
        description: str,
        *,
        on_applied: Callable[[AppliedEdit], None] | None = None,
    ) -> None:
        """Compute an edit in a worker and apply it to ``layer`` (undoable if small).

        ``compute(data, token)`` is a work generator returning the edit; it
        runs in the worker and must not touch layers.
        """
        data = layer_array(layer)
        if not is_writable(data):
            self.offer_conversion(
                layer, lambda: self.run_edit(layer, compute, description, on_applied=on_applied)
            )
            return

        def work(token: CancelToken) -> Generator[ProgressEvent, Any, AppliedEdit]:
            edit = yield from compute(data, token)
            sparse = yield from iter_materialize(data, edit, UNDO_LIMIT, cancel=token)
            if sparse is None:
                # past this point Cancel cannot leave a half-written edit: no yields
                token.raise_if_cancelled()
                yield ProgressEvent("write", 0, 1, "writing the edit (not undoable)...")
                changed = drain(iter_apply_edit(data, edit))
                return AppliedEdit(None, changed, edit.description, too_big=True)
            return AppliedEdit(sparse, 0, sparse.description)

        def done(result: AppliedEdit) -> None:
            self.apply_result(layer, result)
            if on_applied is not None:
                on_applied(result)

        self.start(work, on_result=done, description=description)

    def apply_result(self, layer: Labels, result: AppliedEdit) -> None:
        """Put a finished edit into ``layer`` (GUI thread)."""
        if result.too_big:
            layer.refresh()
            show_warning(
                f"{result.description}: {result.changed:,} voxels changed, more than the undo "
                f"limit ({UNDO_LIMIT:,}), so the edit was written directly and cannot be undone"
            )
            self.final_status = f"{result.description}: not undoable"
            return
        edit = result.edit
        if edit is None or edit.size == 0:
            self.final_status = f"{result.description}: nothing changed"
            return
        layer.data_setitem(edit.indices, edit.values)
        self.final_status = f"{result.description}: {edit.size:,} voxels, Ctrl-Z undoes"

    # -- read-only labels ----------------------------------------------------
    def offer_conversion(self, layer: Labels, retry: Callable[[], None]) -> None:
        """Tell the user the labels are read-only and offer to convert them.

        The offered conversions are also kept in ``self.pending_conversion``
        (``"numpy"``, ``"zarr"``) so tests and scripts can choose one.
        """
        data = layer_array(layer)
        nbytes = math.prod(int(s) for s in data.shape) * np.dtype(data.dtype).itemsize
        fits = nbytes < _available_memory() // 2
        self.pending_conversion = {}
        actions = []
        if fits:
            self.pending_conversion["numpy"] = lambda: self.convert_to_numpy(layer, retry)
            actions.append(("Convert to numpy", lambda _n: self.pending_conversion["numpy"]()))
        self.pending_conversion["zarr"] = lambda: self.convert_to_zarr(layer, retry)
        actions.append(("Convert to zarr...", lambda _n: self.pending_conversion["zarr"]()))
        size = f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"
        message = (
            f"{layer.name!r} is read-only (lazy dask data) and cannot be edited. Convert it "
            + (f"to an in-memory numpy array ({size}) or " if fits else "")
            + "to a zarr store on disk, and the edit will run. Nothing was changed."
        )
        self.runner.status.value = "read-only labels: convert them to edit"
        notification_manager.dispatch(
            Notification(message, severity=NotificationSeverity.WARNING, actions=actions)
        )

    def convert_to_numpy(self, layer: Labels, then: Callable[[], None] | None = None) -> None:
        """Replace ``layer``'s data by an in-memory copy (worker), then run ``then``."""
        data = layer_array(layer)
        box: dict[str, Any] = {}

        def finished() -> None:
            if "data" in box:
                layer.data = box["data"]
                show_info(f"{layer.name!r} is now an in-memory numpy array and can be edited")
                if then is not None:
                    then()

        self.start(
            lambda tok: iter_copy_to_numpy(data, cancel=tok),
            on_result=lambda arr: box.__setitem__("data", arr),
            on_finished=finished,
            description="convert labels to numpy",
        )

    def ask_zarr_path(self) -> str | None:
        """Ask where to write the zarr store (a file dialog)."""
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(
            self.native, "Write the labels to a zarr store", "labels.zarr", "zarr store (*.zarr)"
        )
        return path or None

    def convert_to_zarr(
        self, layer: Labels, then: Callable[[], None] | None = None, path: str | None = None
    ) -> None:
        """Copy ``layer``'s data into a new zarr store (worker), use it, then run ``then``."""
        path = path or self.ask_zarr_path()
        if not path:
            return
        data = layer_array(layer)
        box: dict[str, Any] = {}

        def finished() -> None:
            if "data" in box:
                layer.data = box["data"]
                show_info(f"{layer.name!r} now lives in the zarr store {path} and can be edited")
                if then is not None:
                    then()

        self.start(
            lambda tok: iter_copy_to_zarr(data, path, cancel=tok),
            on_result=lambda arr: box.__setitem__("data", arr),
            on_finished=finished,
            description="convert labels to zarr",
        )
