"""The "3D inference" dock: stack and ortho-plane inference of a whole volume.

The simple section holds what most runs change (image, model, plane, median filter,
min size and extent, zarr output); the advanced section, folded away by default, holds
the 2D parameters, the ortho-plane consensus options and where the work runs (chunk size,
Dask scheduler). The run is :func:`tamale.inference.volume.iter_segment_volume` in a
worker with per-slice (per-slab on a cluster) progress and Cancel; results become one
labels layer per class (zarr-backed when written to zarr), other layers are left as
they are.

An existing zarr output is never overwritten silently: the dock asks whether to
resume it, overwrite it or write to a new name (:attr:`Inference3DDock.ask_existing`
can be replaced, e.g. by tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    Label,
    LineEdit,
    SpinBox,
)
from napari.layers import Image
from napari.utils.notifications import show_info, show_warning
from pydantic import ValidationError

from tamale.config import format_validation_error
from tamale.errors import TamaleInputError
from tamale.inference.config3d import Inference3DConfig
from tamale.inference.volume import VolumeResult, anisotropy_message, iter_segment_volume
from tamale.inference.volume_store import free_store_path, read_store_info
from tamale.postprocess.median import MEDIAN_SIZES
from tamale_napari._inference_params import (
    chosen_image_and_model,
    parameter_widgets,
    read_values,
    show_values,
    update_precision_controls,
)
from tamale_napari._layers import layer_array
from tamale_napari._model_choice import apply_recommended, model_combo
from tamale_napari._workers import TaskRunner, report_error

if TYPE_CHECKING:
    import napari

__all__ = ["Inference3DDock", "ask_existing_store"]

PLANES = ("xy", "xz", "yz")


def _tip(field: str) -> str:
    return Inference3DConfig.model_fields[field].description or ""


def ask_existing_store(path: Path, info: dict[str, Any] | None) -> str | None:
    """Ask what to do with an existing output: "resume", "overwrite", "new" or None."""
    from qtpy.QtWidgets import QMessageBox

    box = QMessageBox()
    box.setWindowTitle("Output exists")
    status = (info or {}).get("status")
    if info is None:
        text = f"{path} exists and is not a tamale segmentation. Write to a new name?"
    elif status == "complete":
        text = f"{path} holds a finished segmentation. Overwrite it or write to a new name?"
    else:
        text = f"{path} holds an unfinished segmentation. Resume it, overwrite it, or write to a new name?"
    box.setText(text)
    buttons = {}
    if info is not None and status != "complete":
        buttons[box.addButton("Resume", QMessageBox.ButtonRole.AcceptRole)] = "resume"
    if info is not None:
        buttons[box.addButton("Overwrite", QMessageBox.ButtonRole.DestructiveRole)] = "overwrite"
    buttons[box.addButton("New name", QMessageBox.ButtonRole.ActionRole)] = "new"
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return buttons.get(box.clickedButton())


def _parse_chunks(text: str) -> int | tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in str(text).replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) == 1 and values[0] > 0:
        return values[0]
    if len(values) == 3 and min(values) > 0:
        return values  # type: ignore[return-value]
    raise TamaleInputError(f"chunk size must be one number or three (z,y,x), got {text!r}")


class Inference3DDock(Container):
    """Segment a whole volume: stack (xy, xz or yz) or ortho-plane, in memory or to zarr."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.viewer = viewer
        # -- simple ---------------------------------------------------------------------
        self.image = ComboBox(
            label="image layer", choices=self._image_choices, tooltip="The volume to segment"
        )
        self.model = model_combo(tooltip="The model to segment with (from the model registry)")
        self.plane = ComboBox(
            label="inference plane",
            choices=list(PLANES),
            value="xy",
            tooltip="Slices to segment: xy, xz or yz",
        )
        self.orthoplane = CheckBox(
            text="run ortho-plane",
            value=False,
            tooltip="Segment xy, xz and yz slices and keep their consensus (best on isotropic voxels)",
        )
        self.median_slices = ComboBox(
            label="median filter size",
            choices=list(MEDIAN_SIZES),
            value=3,
            tooltip=_tip("median_slices"),
        )
        self.min_size = SpinBox(
            label="min size (voxels)",
            value=500,
            min=0,
            max=10**9,
            step=100,
            tooltip=_tip("min_size"),
        )
        self.min_extent = SpinBox(
            label="min box extent", value=5, min=0, max=10**6, tooltip=_tip("min_extent")
        )
        self.output = FileEdit(
            label="zarr output",
            mode="w",
            filter="*.zarr",
            value="",
            tooltip="OME-Zarr directory to write (chunk by chunk, resumable). Empty: keep the "
            "result in memory",
        )
        self.params = parameter_widgets(divisor_label="max objects per class in 3D")
        """The shared 2D inference parameter controls, by configuration field."""
        for field, widget in self.params.items():
            setattr(self, field, widget)
        # -- advanced -------------------------------------------------------------------
        self.show_advanced = CheckBox(
            text="advanced parameters", value=False, tooltip="Show or hide the advanced parameters"
        )
        self.vote_threshold = SpinBox(
            label="voxel vote thr out of 3", value=2, min=1, max=3, tooltip=_tip("vote_threshold")
        )
        self.permit_single_view = CheckBox(
            text="permit detections found in 1 stack",
            value=False,
            tooltip=_tip("permit_single_view"),
        )
        self.return_panoptic = CheckBox(
            text="return xy, xz, yz stacks", value=False, tooltip=_tip("return_panoptic")
        )
        self.level = SpinBox(
            label="pyramid level",
            value=0,
            min=0,
            max=0,
            tooltip="Level of a multiscale image to segment (0: full resolution)",
        )
        self.chunk_size = LineEdit(
            label="chunk size",
            value="64",
            tooltip="Chunk shape of the zarr output: one number, or z,y,x",
        )
        self.scheduler = LineEdit(
            label="Dask scheduler address",
            value="",
            tooltip="Empty: run here. 'local': a local Dask cluster with one worker per GPU "
            "(several GPUs on this workstation). Or the address of a running scheduler "
            "(tcp://host:8786): slabs of the volume run on its workers, which must see the "
            "input and the zarr output",
        )
        self.advanced = Container(
            widgets=[
                Label(value="2D parameters"),
                self.downsampling,
                self.confidence_thr,
                self.center_confidence_thr,
                self.centers_min_distance,
                self.fine_boundaries,
                self.semantic_only,
                self.label_divisor,
                self.min_area,
                self.use_quantized,
                self.half_precision,
                self.tile_size,
                self.tile_overlap,
                self.batch_size,
                Label(value="ortho-plane"),
                self.vote_threshold,
                self.permit_single_view,
                self.return_panoptic,
                Label(value="input, output and workers"),
                self.level,
                self.chunk_size,
                self.scheduler,
            ],
            visible=False,
        )
        self.runner = TaskRunner("Run 3D inference", tooltip="Segment the whole volume")
        super().__init__(
            widgets=[
                self.image,
                self.model,
                self.plane,
                self.orthoplane,
                self.median_slices,
                self.min_size,
                self.min_extent,
                self.output,
                self.use_gpu,
                self.show_advanced,
                self.advanced,
                self.runner,
            ]
        )
        self.ask_existing = ask_existing_store
        """Called as ``ask_existing(path, info)`` when the zarr output exists; returns
        "resume", "overwrite", "new" or None (do nothing). Replaceable (tests)."""
        self.last_result: VolumeResult | None = None
        self.last_layers: list[Any] = []
        self.runner.run_button.changed.connect(self._run)
        self.show_advanced.changed.connect(self._toggle_advanced)
        self.orthoplane.changed.connect(self._plane_changed)
        self.plane.changed.connect(self._plane_changed)
        self.image.changed.connect(self._image_changed)
        self.model.changed.connect(self._update_quantized)
        self.use_gpu.changed.connect(self._update_quantized)
        self.model.changed.connect(lambda name: apply_recommended(self, name))
        apply_recommended(self, self.model.value, notify=False)
        for name in ("inserted", "removed", "reordered"):
            getattr(viewer.layers.events, name).connect(self._layers_changed)
        self._update_quantized()
        self._image_changed()
        self._plane_changed(warn=False)

    # -- choices and state ----------------------------------------------------------------
    def _image_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _layers_changed(self, _event: Any = None) -> None:
        self.image.reset_choices()

    def _toggle_advanced(self, value: Any = None) -> None:
        self.advanced.visible = bool(self.show_advanced.value)

    def _image_changed(self, _value: Any = None) -> None:
        layer = self.image.value
        levels = len(layer.data) if layer is not None and getattr(layer, "multiscale", False) else 1
        self.level.max = max(0, levels - 1)
        self.level.visible = levels > 1

    def _plane_changed(self, _value: Any = None, warn: bool = True) -> None:
        ortho = bool(self.orthoplane.value)
        self.plane.enabled = not ortho
        for w in (self.vote_threshold, self.permit_single_view, self.return_panoptic):
            w.enabled = ortho
        if warn:
            message = self.anisotropy_warning()
            if message:
                show_warning(message)

    def anisotropy_warning(self) -> str | None:
        """The warning for the chosen plane and the image's voxel size, or None."""
        layer = self.image.value
        if layer is None or layer.ndim < 3:
            return None
        plane = "ortho" if self.orthoplane.value else self.plane.value
        return anisotropy_message(tuple(layer.scale[-3:]), plane)

    def _update_quantized(self, _value: Any = None) -> None:
        update_precision_controls(self.params, self.model.value)

    # -- config round trip ------------------------------------------------------------------
    def to_config(self) -> Inference3DConfig:
        """The parameters shown, validated (raises TamaleInputError)."""
        values = {
            "plane": "ortho" if self.orthoplane.value else self.plane.value,
            "median_slices": int(self.median_slices.value),
            "min_size": int(self.min_size.value),
            "min_extent": int(self.min_extent.value),
            **read_values(self.params),
            "vote_threshold": int(self.vote_threshold.value),
            "permit_single_view": bool(self.permit_single_view.value),
            "return_panoptic": bool(self.return_panoptic.value),
        }
        try:
            return Inference3DConfig(**values)
        except ValidationError as exc:
            raise TamaleInputError(format_validation_error(exc, "3D inference")) from None

    def set_config(self, config: Inference3DConfig) -> None:
        """Show ``config``'s values in the controls."""
        if config.plane == "ortho":
            self.orthoplane.value = True
        else:
            self.orthoplane.value = False
            self.plane.value = config.plane
        self.median_slices.value = config.median_slices
        self.min_size.value = config.min_size
        self.min_extent.value = config.min_extent
        show_values(self.params, config)
        self.vote_threshold.value = config.vote_threshold
        self.permit_single_view.value = config.permit_single_view
        self.return_panoptic.value = config.return_panoptic

    def output_path(self) -> Path | None:
        """The zarr output, or None for in memory (an empty field)."""
        value = self.output.value
        text = str(value) if value is not None else ""
        if text in ("", "."):
            return None
        path = Path(text).expanduser()
        return path if path.suffix == ".zarr" else path.with_name(path.name + ".zarr")

    # -- running ------------------------------------------------------------------------------
    def _run(self, _value: Any = None) -> None:
        try:
            out, if_exists = self._choose_output()
        except (TamaleInputError, ValueError) as exc:
            report_error(exc)
            return
        if if_exists is None:
            return  # the user cancelled the question
        self._if_exists = if_exists
        self._out = out
        self.runner.start(self._work, on_result=self._show, description="3D inference")

    def _choose_output(self) -> tuple[Path | None, str | None]:
        out = self.output_path()
        if out is None or not out.exists():
            return out, "error"
        choice = self.ask_existing(out, read_store_info(out))
        if choice == "new":
            out = free_store_path(out)
            self.output.value = out
            return out, "error"
        if choice in ("resume", "overwrite"):
            return out, choice
        return out, None

    def _work(self, token: Any) -> Any:
        """Validate everything, then return the engine's work generator (no layer changes)."""
        cfg = self.to_config()
        name = self.model.value
        layer = chosen_image_and_model(self.image.value, name, "a volume")
        level = int(self.level.value) if getattr(layer, "multiscale", False) else 0
        data = layer_array(layer, level)
        chunks = _parse_chunks(self.chunk_size.value)
        scale = np.asarray(layer.scale, dtype=float)
        if getattr(layer, "multiscale", False) and level:
            scale = scale * np.asarray(layer.downsample_factors[level], dtype=float)
        voxel = tuple(float(v) for v in scale[-3:]) if layer.ndim >= 3 else None
        scheduler = self.scheduler.value.strip() or None
        self._context = {"layer": layer, "config": cfg, "scale": scale, "model": name}
        return iter_segment_volume(
            data,
            name,
            cfg,
            out=self._out,
            if_exists=self._if_exists,  # type: ignore[arg-type]
            chunks=chunks,
            scheduler=scheduler,
            voxel_size=voxel,  # type: ignore[arg-type]
            name=layer.name,
            warn=False,
            cancel=token,
        )

    # -- results --------------------------------------------------------------------------------
    def _show(self, result: VolumeResult) -> None:
        try:
            self._place(result)
        except (TamaleInputError, ValueError) as exc:
            self.runner.status.value = f"failed: {exc}"
            report_error(exc)

    def _place(self, result: VolumeResult) -> None:
        ctx = self._context
        layer = ctx["layer"]
        self.last_result = result
        meta = {"tamale": {**result.metadata, "store": result.store, "source_layer": layer.name}}
        nd = layer.ndim
        scale = ctx["scale"][-3:] if nd >= 3 else None
        translate = np.asarray(layer.translate, dtype=float)[-3:]
        self.last_layers = []
        for c in result.classes:
            data = result.labels[c.name]
            self.last_layers.append(
                self.viewer.add_labels(
                    data,
                    name=f"{layer.name}-{c.name}-prediction",
                    scale=scale,
                    translate=translate,
                    metadata=meta,
                )
            )
        for plane, data in result.panoptic.items():
            self.last_layers.append(
                self.viewer.add_labels(
                    data,
                    name=f"{layer.name}-panoptic-stack-{plane}",
                    scale=scale,
                    translate=translate,
                    metadata=meta,
                    visible=False,
                )
            )
        counts = ", ".join(f"{n} {k}" for k, n in result.n_objects.items()) or "nothing"
        where = f" -> {result.store}" if result.store else ""
        self.runner.status.value = f"{counts}{where}"
        show_info(f"3D inference: {counts}{where}")
        shown = self.anisotropy_warning()  # already shown when the plane was chosen
        for message in result.messages:
            if message != shown:
                show_info(message)
