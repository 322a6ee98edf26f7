"""The "2D inference (parameter testing)" dock.

It segments the plane the viewer shows (any orientation: xy, or xz / yz after
transposing the dims), or every slice of a stack in batch mode, with
:func:`tamale.inference.iter_infer_2d` in a worker (progress bar, Cancel), and puts the
result on a new labels layer placed exactly over that plane, or into the current plane
of an existing labels layer (undoable).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label
from napari.layers import Image, Labels, Shapes
from napari.utils.notifications import show_info
from napari.utils.transforms import Affine
from pydantic import ValidationError
from qtpy.QtCore import QTimer

from tamale.config import format_validation_error
from tamale.errors import TamaleInputError
from tamale.inference import (
    DOWNSAMPLING_CHOICES,
    Inference2DConfig,
    Inference2DResult,
    iter_infer_2d,
)
from tamale_napari._inference_params import (
    chosen_image_and_model,
    parameter_widgets,
    read_values,
    show_values,
    update_precision_controls,
)
from tamale_napari._layers import PlaneSelection, current_plane, layer_array
from tamale_napari._model_choice import apply_recommended, model_combo
from tamale_napari._workers import TaskRunner, report_error

if TYPE_CHECKING:
    import napari

__all__ = ["Inference2DDock"]

WHOLE, VIEWPORT, SHAPES = "whole plane", "current view", "shapes layer"


def _tip(field: str) -> str:
    return Inference2DConfig.model_fields[field].description or ""


class _AxisStack:
    """A lazy view of an array as a stack of 2D planes along one axis (batch mode)."""

    def __init__(self, data: Any, axis: int) -> None:
        self.data, self.axis = data, axis
        shape = list(data.shape)
        n = shape.pop(axis)
        self.shape = (n, *shape)
        self.dtype = data.dtype

    def __getitem__(self, n: int) -> Any:
        index = [slice(None)] * len(self.data.shape)
        index[self.axis] = n
        return self.data[tuple(index)]


class Inference2DDock(Container):
    """Segment the current plane (or a stack) with a model; tune parameters quickly."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.viewer = viewer
        self.image = ComboBox(
            label="image layer", choices=self._image_choices, tooltip="The image to segment"
        )
        self.model = model_combo(tooltip="The model to segment with (from the model registry)")
        self.params = parameter_widgets()
        """The shared 2D inference parameter controls, by configuration field."""
        for field, widget in self.params.items():
            setattr(self, field, widget)
        self.batch_mode = CheckBox(text="batch mode", value=False, tooltip=_tip("batch_mode"))
        self.confine = ComboBox(
            label="confine to",
            choices=[WHOLE, VIEWPORT, SHAPES],
            value=WHOLE,
            tooltip="Segment the whole plane, only what the canvas shows, or only inside the "
            "shapes of the chosen shapes layer",
        )
        self.shapes = ComboBox(
            label="shapes layer",
            choices=self._shapes_choices,
            nullable=True,
            tooltip="Polygons, rectangles or ellipses to confine inference to",
        )
        self.output_to_layer = CheckBox(
            text="output to layer",
            value=False,
            tooltip="Write the result into the current plane of an existing labels layer "
            "(same shape as the image; undo with Ctrl+Z) instead of a new layer. Not with batch "
            "mode.",
        )
        self.output_layer = ComboBox(
            label="output layer",
            choices=self._labels_choices,
            nullable=True,
            tooltip="Labels layer to write into (for example the flipbook labels of pick patches)",
        )
        self.runner = TaskRunner(
            "Run 2D inference", tooltip="Segment the plane the viewer shows (or the whole stack)"
        )
        super().__init__(
            widgets=[
                self.image,
                self.model,
                self.downsampling,
                self.confidence_thr,
                self.center_confidence_thr,
                self.centers_min_distance,
                self.fine_boundaries,
                self.semantic_only,
                self.label_divisor,
                self.min_area,
                self.batch_mode,
                self.use_gpu,
                self.use_quantized,
                self.half_precision,
                self.confine,
                self.shapes,
                self.output_to_layer,
                self.output_layer,
                Label(value="tiles and speed"),
                self.tile_size,
                self.tile_overlap,
                self.batch_size,
                self.runner,
            ]
        )
        self.last_result: Inference2DResult | None = None
        """The latest result (for scripts and tests)."""
        self.last_layer: Labels | None = None
        """The layer the latest result went to."""
        self._summary = ""
        self._context: dict[str, Any] = {}
        self.runner.run_button.changed.connect(self._run)
        self.model.changed.connect(self._update_quantized)
        self.model.changed.connect(lambda name: apply_recommended(self, name))
        apply_recommended(self, self.model.value, notify=False)
        self.use_gpu.changed.connect(self._update_quantized)
        self.confine.changed.connect(self._update_visibility)
        self.output_to_layer.changed.connect(self._update_visibility)
        events = viewer.layers.events
        for name in ("inserted", "removed", "reordered"):
            getattr(events, name).connect(self._layers_changed)
        self._update_quantized()
        self._update_visibility()

    # -- choices -----------------------------------------------------------------------
    def _layers_of(self, kind: type) -> list[tuple[str, Any]]:
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, kind)]

    def _image_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return self._layers_of(Image)

    def _shapes_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return self._layers_of(Shapes)

    def _labels_choices(self, _widget: Any = None) -> list[tuple[str, Any]]:
        return self._layers_of(Labels)

    def _layers_changed(self, _event: Any = None) -> None:
        for combo in (self.image, self.shapes, self.output_layer):
            combo.reset_choices()

    def _update_visibility(self, _value: Any = None) -> None:
        self.shapes.visible = self.confine.value == SHAPES
        self.output_layer.visible = bool(self.output_to_layer.value)

    def _update_quantized(self, _value: Any = None) -> None:
        update_precision_controls(self.params, self.model.value)

    # -- config round trip -------------------------------------------------------------
    def to_config(self) -> Inference2DConfig:
        """The parameters shown, validated (raises TamaleInputError)."""
        values = {
            **read_values(self.params),
            "batch_mode": bool(self.batch_mode.value),
        }
        try:
            return Inference2DConfig(**values)
        except ValidationError as exc:
            raise TamaleInputError(format_validation_error(exc, "2D inference")) from None

    def set_config(self, config: Inference2DConfig) -> None:
        """Show ``config``'s values in the controls."""
        if config.downsampling not in DOWNSAMPLING_CHOICES:  # pragma: no cover - validated
            raise TamaleInputError(f"downsampling {config.downsampling} is not offered")
        show_values(self.params, config)
        self.batch_mode.value = config.batch_mode

    # -- running -------------------------------------------------------------------------
    def _run(self, _value: Any = None) -> None:
        self._summary = ""
        self.runner.start(
            self._work,
            on_result=self._show,
            description="2D inference",
            on_finished=self._finished,
        )

    def _finished(self) -> None:
        if self._summary:
            # after the runner's own "done in ..." line and any late progress event
            QTimer.singleShot(0, self._show_summary)

    def _show_summary(self) -> None:
        if self._summary and not self.runner.busy:
            self.runner.status.value = self._summary

    def _work(self, token: Any) -> Any:
        """Validate everything, then return the engine's work generator (no layer changes)."""
        cfg = self.to_config()
        name = self.model.value
        layer = chosen_image_and_model(self.image.value, name, "an image")
        if self.viewer.dims.ndisplay != 2:
            raise TamaleInputError("switch the viewer to 2D display to choose a plane")
        data = layer_array(layer, 0)
        plane = current_plane(self.viewer, layer)
        axes = tuple(sorted(plane.displayed))
        if len(axes) != 2:
            raise TamaleInputError(f"{layer.name!r} must show two axes, it shows {len(axes)}")

        if cfg.batch_mode:
            if self.output_to_layer.value:
                raise TamaleInputError(
                    "batch mode and 'output to layer' do not go together: batch mode makes a "
                    "new layer with the whole stack; turn one of them off"
                )
            if layer.ndim != 3:
                raise TamaleInputError(
                    f"batch mode needs a stack of 2D images (3 dimensions); {layer.name!r} has "
                    f"{layer.ndim}"
                )
            (axis,) = plane.fixed
            target: Any = _AxisStack(data, axis)
        else:
            target = data[plane.slices(layer.ndim)]

        output = None
        if self.output_to_layer.value:
            output = self.output_layer.value
            if output is None:
                raise TamaleInputError("choose the labels layer to write into (output layer)")
            if tuple(np.shape(layer_array(output, 0))) != tuple(data.shape):
                raise TamaleInputError(
                    f"the output layer {output.name!r} has shape "
                    f"{tuple(np.shape(output.data))} but the image is {tuple(data.shape)}; "
                    "choose a labels layer of the image's shape"
                )
            if getattr(output, "multiscale", False):
                raise TamaleInputError("cannot write into a multiscale labels layer")

        roi, mask = None, None
        plane_shape = tuple(data.shape[a] for a in axes)
        if self.confine.value == VIEWPORT:
            roi = self._viewport_box(layer, axes, plane_shape)
        elif self.confine.value == SHAPES:
            mask = self._shapes_mask(layer, plane, axes, plane_shape)

        region = None  # where the result may be written into an output layer
        if mask is not None:
            region = mask
        elif roi is not None:
            region = np.zeros(plane_shape, dtype=bool)
            region[roi[0] : roi[1], roi[2] : roi[3]] = True
        context = {
            "region": region,
            "layer": layer,
            "plane": plane,
            "axes": axes,
            "config": cfg,
            "output": output,
            "model": name,
        }
        self._context = context
        return iter_infer_2d(target, name, cfg, roi=roi, mask=mask, cancel=token)

    def _viewport_box(self, layer: Image, axes: tuple[int, ...], shape: tuple[int, ...]):
        corners = np.asarray(layer.corner_pixels, dtype=float)
        if getattr(layer, "multiscale", False):
            factors = np.asarray(layer.downsample_factors[layer.data_level], dtype=float)
            corners = corners * factors
        lo = [int(np.clip(np.floor(corners[0, a]), 0, s)) for a, s in zip(axes, shape)]
        hi = [int(np.clip(np.ceil(corners[1, a]) + 1, 0, s)) for a, s in zip(axes, shape)]
        if hi[0] <= lo[0] or hi[1] <= lo[1]:
            raise TamaleInputError("the image is not in view: pan or zoom to it first")
        return (lo[0], hi[0], lo[1], hi[1])

    def _shapes_mask(
        self, layer: Image, plane: PlaneSelection, axes: tuple[int, ...], shape: tuple[int, ...]
    ) -> np.ndarray:
        from skimage.draw import polygon2mask

        shapes = self.shapes.value
        if shapes is None:
            raise TamaleInputError("choose the shapes layer to confine inference to")
        mask = np.zeros(shape, dtype=bool)
        world_point = np.asarray(self.viewer.dims.point, dtype=float)
        for vertices, kind in zip(shapes.data, shapes.shape_type):
            if kind in ("line", "path"):
                continue
            vertices = np.asarray(vertices, dtype=float)
            if kind == "ellipse":
                vertices = _ellipse_outline(vertices)
            points = []
            for v in vertices:
                world = world_point.copy()
                w = np.asarray(shapes.data_to_world(v), dtype=float)
                world[len(world) - len(w) :] = w
                data_pt = np.asarray(layer.world_to_data(world), dtype=float)
                points.append([data_pt[a] for a in axes])
            mask |= polygon2mask(shape, np.asarray(points))
        if not mask.any():
            raise TamaleInputError(
                f"the shapes of {shapes.name!r} do not cover any pixel of this plane: draw "
                "polygons, rectangles or ellipses over the image"
            )
        return mask

    # -- results -------------------------------------------------------------------------
    def _show(self, result: Inference2DResult) -> None:
        try:
            self._place(result)
        except (TamaleInputError, ValueError) as exc:
            self.runner.status.value = f"failed: {exc}"
            report_error(exc)

    def _place(self, result: Inference2DResult) -> None:
        ctx = self._context
        layer, plane, cfg = ctx["layer"], ctx["plane"], ctx["config"]
        self.last_result = result
        for message in result.messages:
            show_info(message)
        meta = {
            "tamale": {
                "model": result.model_name,
                "config": cfg.model_dump(mode="json"),
                "device": result.device,
                "precision": result.precision,
                "source_layer": layer.name,
            }
        }
        if cfg.batch_mode:
            (axis,) = plane.fixed
            labels = np.moveaxis(result.labels, 0, axis)
            self.last_layer = self.viewer.add_labels(
                labels,
                name=f"{layer.name} {result.model_name} batch",
                scale=layer.scale,
                translate=layer.translate,
                rotate=layer.rotate,
                shear=layer.shear,
                affine=layer.affine,
                metadata=meta,
            )
        elif ctx["output"] is not None:
            self._write_into(ctx["output"], plane, result.labels, ctx["region"])
            self.last_layer = ctx["output"]
        else:
            self.last_layer = self._add_plane_layer(layer, plane, result.labels, meta)
        counts = ", ".join(f"{n} {k}" for k, n in result.object_counts().items()) or "no objects"
        self._summary = f"{counts} in {result.seconds:.1f} s ({result.device})"
        self.runner.status.value = self._summary

    def _add_plane_layer(
        self, layer: Image, plane: PlaneSelection, labels: np.ndarray, meta: dict
    ) -> Labels:
        """A labels layer of the image's ndim, one plane thick, placed on that plane."""
        shape = [1] * layer.ndim
        axes = sorted(plane.displayed)
        for a, s in zip(axes, labels.shape):
            shape[a] = s
        data = labels.reshape(shape)
        offset = np.zeros(layer.ndim)
        for a, i in plane.fixed.items():
            offset[a] = i
        physical = Affine(
            scale=layer.scale, translate=layer.translate, rotate=layer.rotate, shear=layer.shear
        )
        translate = np.asarray(physical(offset), dtype=float)
        return self.viewer.add_labels(
            data,
            name=f"{layer.name} {meta['tamale']['model']} 2D",
            scale=layer.scale,
            translate=translate,
            rotate=layer.rotate,
            shear=layer.shear,
            affine=layer.affine,
            metadata=meta,
        )

    def _write_into(
        self,
        output: Labels,
        plane: PlaneSelection,
        labels: np.ndarray,
        region: np.ndarray | None = None,
    ) -> None:
        """Write the plane (only ``region`` of it, when given) into ``output`` with
        ``data_setitem``: one undo step, the rest of the layer untouched."""
        dtype = np.dtype(output.data.dtype)
        if labels.size and np.issubdtype(dtype, np.integer) and labels.max() > np.iinfo(dtype).max:
            raise TamaleInputError(
                f"the output layer holds {dtype} values, too small for labels up to "
                f"{int(labels.max())}; lower 'max objects per class' or use another layer"
            )
        keep = np.ones(labels.shape, bool) if region is None else region
        grids = np.nonzero(keep)
        index: list[np.ndarray] = [np.empty(0)] * output.ndim
        for a, g in zip(sorted(plane.displayed), grids):
            index[a] = g
        for a, i in plane.fixed.items():
            index[a] = np.full(grids[0].shape[0], i)
        output.data_setitem(tuple(index), labels[keep].astype(dtype))


def _ellipse_outline(corners: np.ndarray, n: int = 64) -> np.ndarray:
    """Polygon approximating a napari ellipse given by its 4 bounding-box corners."""
    center = corners.mean(axis=0)
    u = (corners[1] - corners[0]) / 2
    w = (corners[3] - corners[0]) / 2
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return center + np.cos(t)[:, None] * u + np.sin(t)[:, None] * w
