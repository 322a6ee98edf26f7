"""The "Pick training patches" dock.

Maps layers and controls onto :func:`tamale.datasets.iter_pick_patches` (run in a
worker) and puts the result on two new layers, ``<image>_flipbooks`` and
``<image>_flipbooks_labels`` (or ``_patches``), whose ``metadata["tamale"]`` holds
the :class:`~tamale.datasets.PatchProvenance` of every patch, which the "Store
training set" dock needs. Points are mapped from world to data coordinates with the
layers' transforms (any scale and translation); points that gave a patch are marked
(``used`` feature, grey face), never deleted, and are skipped by the next pick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, Label, LineEdit, PushButton, SpinBox
from napari.layers import Image, Labels, Points
from napari.utils.colormaps.standardize_color import transform_color
from pydantic import ValidationError

from tamale.config import ConfigError, format_validation_error
from tamale.datasets import PickConfig, PickResult, iter_pick_patches, stored_regions
from tamale.datasets.regions import PLANE_AXES
from tamale.errors import TamaleInputError
from tamale_napari._layers import points_to_data
from tamale_napari._workers import TaskRunner, report_error
from tamale_napari.training_set._target import TargetFields, target_for

if TYPE_CHECKING:
    import napari

__all__ = ["PickPatchesDock", "used_mask"]

USED = "used"
USED_COLOR = np.array([0.5, 0.5, 0.5, 1.0])
AXIS_CHOICES = [
    ("xy", "xy"),
    ("xz", "xz"),
    ("yz", "yz"),
    ("xy, xz or yz (isotropic data)", "any"),
]


def _tip(field: str) -> str:
    return PickConfig.model_fields[field].description or ""


def used_mask(layer: Points) -> np.ndarray:
    """Which points of ``layer`` already gave a patch (its ``used`` feature)."""
    n = len(layer.data)
    if USED not in layer.features.columns:
        return np.zeros(n, dtype=bool)
    return layer.features[USED].to_numpy(dtype=bool)[:n]


def _set_used(layer: Points, used: np.ndarray, color: Any = None) -> None:
    """Write the ``used`` feature (new points default to unused); recolour changed points."""
    before = used_mask(layer)
    features = layer.features.copy()
    features[USED] = used
    layer.features = features
    defaults = layer.feature_defaults
    defaults = defaults.iloc[0].to_dict() if len(defaults) else {}
    layer.feature_defaults = {**defaults, USED: False}
    changed = used != before
    if changed.any():
        colors = np.array(layer.face_color, dtype=float, copy=True)
        colors[changed & used] = USED_COLOR
        colors[changed & ~used] = transform_color(layer.current_face_color)[0]
        layer.face_color = colors


def _output_scale(image: Image, result: PickResult) -> tuple[float, ...]:
    """Scale of the output layers: the source's pixel size in the patches' plane.

    The leading patch axis has scale 1. A flipbook's plane axis has scale
    ``min(1, pixel size along the normal)``: napari's slider steps by the smallest
    scale of any layer on an axis (1 for a points layer), so one step is one plane.
    Flipbooks from several orientations use the xy pixel sizes.
    """
    level0 = np.asarray(np.shape(image.data[0] if image.multiscale else image.data), float)
    shape = np.asarray(result.provenance[0].source_shape or level0, float)
    pixel = np.asarray(image.scale, float)[-len(level0) :] * level0 / shape
    if len(pixel) == 2:
        return (1.0, *pixel)
    axes = {r.axis for r in result.provenance}
    normal, rows, cols = PLANE_AXES[axes.pop() if len(axes) == 1 and None not in axes else "xy"]
    if result.kind == "patch":
        return (1.0, pixel[rows], pixel[cols])
    return (1.0, min(1.0, pixel[normal]), pixel[rows], pixel[cols])


def _levels(layer: Image | Labels) -> Any:
    return list(layer.data) if layer.multiscale else layer.data


class PickPatchesDock(Container):
    """Pick patches or flipbooks to annotate: at points, and spread at random elsewhere."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self.viewer = viewer
        self.image = ComboBox(
            label="image layer",
            choices=self._layer_choices(Image),
            tooltip="The image to pick from",
        )
        self.points = ComboBox(
            label="points layer",
            choices=self._layer_choices(Points),
            nullable=True,
            tooltip="Optional: points to centre patches on (used in order; used points turn grey "
            "and are skipped next time)",
        )
        self.n_patches = SpinBox(
            label="number of patches", value=16, min=1, max=10_000, tooltip=_tip("n_patches")
        )
        self.patch_size = SpinBox(
            label="patch size (px)",
            value=256,
            min=8,
            max=100_000,
            step=16,
            tooltip=_tip("patch_size"),
        )
        self.level = SpinBox(
            label="multiscale level", value=0, min=0, max=16, tooltip=_tip("level")
        )
        self.pick_all_points = CheckBox(
            text="pick all points", value=False, tooltip=_tip("pick_all_points")
        )
        self.axis = ComboBox(
            label="pick from", choices=AXIS_CHOICES, value="xy", tooltip=_tip("axis")
        )
        self.stack = CheckBox(text="image is a 2D stack", value=False, tooltip=_tip("stack"))
        self.paired = CheckBox(
            text="pick paired patches",
            value=False,
            tooltip="Also crop an existing labels layer (same shape as the image) instead of "
            "giving empty labels",
        )
        self.labels_layer = ComboBox(
            label="labels layer",
            choices=self._layer_choices(Labels),
            nullable=True,
            tooltip="The labels to crop with the image (paired patches)",
        )
        self.seed = LineEdit(label="seed", tooltip=_tip("seed"))
        self.seed.native.setPlaceholderText("random")
        self.target = target_for(viewer)
        self.target_fields = TargetFields(
            self.target,
            dir_tooltip="Folder of the training set; regions already stored there are not "
            "picked again (shared with the Store training set dock)",
            name_tooltip="Training set (dataset) name; regions already stored in it are not "
            "picked again",
        )
        self.count = Label(value="")
        self.count.native.setWordWrap(True)
        self.unmark_button = PushButton(
            text="Unmark used points", tooltip="Let the points that gave patches be used again"
        )
        self.runner = TaskRunner("Pick patches", tooltip="Pick the patches into two new layers")
        self.result = Label(value="")
        self.result.native.setWordWrap(True)
        super().__init__(
            widgets=[
                self.image,
                self.points,
                self.n_patches,
                self.patch_size,
                self.level,
                self.pick_all_points,
                self.axis,
                self.stack,
                self.paired,
                self.labels_layer,
                self.seed,
                Label(value="training set (to avoid what is stored)"),
                self.target_fields,
                self.count,
                self.unmark_button,
                self.runner,
                self.result,
            ]
        )
        self.last_result: PickResult | None = None
        """The latest pick (for scripts and tests)."""
        self.last_layers: tuple[Image, Labels] | None = None
        """The layers the latest pick went to."""
        self._stored_count = 0
        self._watched: Points | None = None
        self.runner.run_button.changed.connect(self._run)
        self.unmark_button.changed.connect(self.unmark_used_points)
        for widget in (self.n_patches, self.pick_all_points, self.stack, self.image):
            widget.changed.connect(self.update_count)
        self.image.changed.connect(self._image_changed)
        self.points.changed.connect(self._watch_points)
        self.paired.changed.connect(self._update_visibility)
        self.stack.changed.connect(self._update_enabled)
        self.target.changed.connect(self._refresh_stored)
        events = viewer.layers.events
        for name in ("inserted", "removed", "reordered"):
            getattr(events, name).connect(self._layers_changed)
        self._image_changed()
        self._watch_points()
        self._update_visibility()

    # -- layer lists ---------------------------------------------------------------
    def _layer_choices(self, kind: type) -> Any:
        def choices(_widget: Any = None) -> list[Any]:
            return [layer for layer in self.viewer.layers if isinstance(layer, kind)]

        return choices

    def _layers_changed(self, event: Any = None) -> None:
        for combo in (self.image, self.points, self.labels_layer):
            combo.reset_choices()
        added = getattr(event, "value", None) if getattr(event, "type", "") == "inserted" else None
        if isinstance(added, Points) and self.points.value is None:
            self.points.value = added  # a new points layer is the one to use
        self.update_count()

    def _update_visibility(self) -> None:
        self.labels_layer.visible = bool(self.paired.value)

    def _image_changed(self, _value: Any = None) -> None:
        layer = self.image.value
        if layer is not None:
            self.level.max = len(layer.data) - 1 if layer.multiscale else 0
        self._update_enabled()
        self._refresh_stored()

    def _is_volume(self) -> bool:
        layer = self.image.value
        return layer is not None and layer.ndim == 3 and not layer.rgb and not self.stack.value

    def _update_enabled(self, _value: Any = None) -> None:
        """Planes other than xy exist only for volumes; stacks only for 3D images."""
        layer = self.image.value
        self.stack.enabled = layer is not None and layer.ndim == 3 and not layer.rgb
        self.axis.enabled = self._is_volume()

    def _refresh_stored(self) -> None:
        layer = self.image.value
        try:
            folder = self.target.dataset_dir()
            self._stored_count = (
                len(stored_regions(folder, layer.name)) if folder and layer is not None else 0
            )
        except (TamaleInputError, ConfigError, OSError):
            self._stored_count = 0
        self.update_count()

    def _watch_points(self, _value: Any = None) -> None:
        if self._watched is not None:
            self._watched.events.data.disconnect(self.update_count)
            self._watched.events.features.disconnect(self.update_count)
        self._watched = self.points.value
        if self._watched is not None:
            self._watched.events.data.connect(self.update_count)
            self._watched.events.features.connect(self.update_count)
        self.update_count()

    # -- count ---------------------------------------------------------------------
    def planned(self) -> tuple[int, int, int]:
        """(unused points, patches from points, patches in all) the next pick gives."""
        layer = self.points.value
        unused = int((~used_mask(layer)).sum()) if layer is not None else 0
        if self.pick_all_points.value:
            return unused, unused, unused
        n = int(self.n_patches.value)
        return unused, min(unused, n), n

    def update_count(self, _event: Any = None) -> None:
        """Refresh the line saying how many points are placed and what will come out."""
        layer = self.points.value
        kind = "flipbooks" if self._is_volume() else "patches"
        unused, from_points, total = self.planned()
        if layer is None:
            text = f"no points layer: {total} random {kind}"
        else:
            used = len(layer.data) - unused
            placed = f"{len(layer.data)} point{'s' if len(layer.data) != 1 else ''} placed"
            if used:
                placed += f" ({used} used)"
            text = (
                f"{placed}; {total} {kind} will be picked: {from_points} at points, "
                f"{total - from_points} random"
            )
        if self._stored_count:
            text += f"\n{self._stored_count} patches of this image are stored: their regions are avoided"
        self.count.value = text

    # -- config ----------------------------------------------------------------------
    def to_config(self) -> PickConfig:
        """The controls as a :class:`PickConfig` (raises ConfigError / TamaleInputError)."""
        seed_text = str(self.seed.value).strip()
        try:
            seed = int(seed_text) if seed_text else None
        except ValueError:
            raise TamaleInputError(
                f"the seed must be a whole number (or empty for a random seed), got {seed_text!r}"
            ) from None
        try:
            return PickConfig(
                n_patches=self.n_patches.value,
                patch_size=self.patch_size.value,
                level=self.level.value,
                pick_all_points=self.pick_all_points.value,
                axis=self.axis.value,
                stack=self.stack.value,
                seed=seed,
            )
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc)) from None

    def set_config(self, config: PickConfig) -> None:
        """Show ``config`` in the controls."""
        self.n_patches.value = config.n_patches
        self.patch_size.value = config.patch_size
        self.level.max = max(self.level.max, config.level)
        self.level.value = config.level
        self.pick_all_points.value = config.pick_all_points
        self.axis.value = config.axis
        self.stack.value = config.stack
        self.seed.value = "" if config.seed is None else str(config.seed)

    # -- run -------------------------------------------------------------------------
    def _inputs(self) -> dict[str, Any]:
        image = self.image.value
        if image is None:
            raise TamaleInputError("choose an image layer to pick patches from")
        if image.rgb:
            raise TamaleInputError(
                f"{image.name!r} is an RGB image; pick patches from a grayscale image"
            )
        config = self.to_config()
        if not self._is_volume():  # the plane control is disabled: 2D patches are xy
            config = config.model_copy(update={"axis": "xy"})
        points_layer = self.points.value
        points, point_ids = None, np.zeros(0, dtype=np.int64)
        if points_layer is not None and len(points_layer.data):
            point_ids = np.flatnonzero(~used_mask(points_layer))
            points = points_to_data(points_layer, image)[point_ids]
        if config.pick_all_points and points_layer is None:
            raise TamaleInputError(
                "'pick all points' needs a points layer: choose one, or untick 'pick all points'"
            )
        labels = None
        if self.paired.value:
            if self.labels_layer.value is None:
                raise TamaleInputError(
                    "'pick paired patches' needs a labels layer: choose one, or untick it"
                )
            label_layer = self.labels_layer.value
            if label_layer.multiscale != image.multiscale:
                raise TamaleInputError(
                    f"the labels layer {label_layer.name!r} is "
                    f"{'' if label_layer.multiscale else 'not '}multiscale but the image is "
                    f"{'' if image.multiscale else 'not '}multiscale: pair layers with the same "
                    "multiscale structure"
                )
            labels = _levels(label_layer)
        folder = self.target.dataset_dir()
        exclude = stored_regions(folder, image.name) if folder is not None else []
        return {
            "image_layer": image,
            "config": config,
            "points_layer": points_layer,
            "points": points,
            "point_ids": point_ids,
            "labels": labels,
            "exclude": exclude,
        }

    def _run(self) -> None:
        try:
            inputs = self._inputs()
        except (TamaleInputError, ConfigError) as exc:
            report_error(exc)
            return
        image = inputs["image_layer"]
        data = _levels(image)

        def work(token):
            return iter_pick_patches(
                data,
                inputs["config"],
                points=inputs["points"],
                labels=inputs["labels"],
                exclude=inputs["exclude"],
                source=image.name,
                cancel=token,
            )

        self.runner.start(
            work,
            on_result=lambda result: self._show(result, inputs),
            description=f"pick patches of {image.name}",
        )

    def _show(self, result: PickResult, inputs: dict[str, Any]) -> None:
        image = inputs["image_layer"]
        suffix = "flipbooks" if result.kind == "flipbook" else "patches"
        meta = {
            "tamale": {
                "provenance": list(result.provenance),
                "kind": result.kind,
                "source": result.source,
                "seed": result.seed,
                "pick_config": result.config.model_dump(mode="json"),
            }
        }
        scale = _output_scale(image, result)
        image_layer = self.viewer.add_image(
            result.images,
            name=f"{image.name}_{suffix}",
            contrast_limits=list(image.contrast_limits),
            scale=scale,
            metadata=meta,
        )
        labels_layer = self.viewer.add_labels(
            result.labels,
            name=f"{image.name}_{suffix}_labels",
            scale=scale,
            metadata={"tamale": dict(meta["tamale"])},
        )
        self.last_result = result
        self.last_layers = (image_layer, labels_layer)
        # used points are marked, never deleted
        points_layer = inputs["points_layer"]
        if points_layer is not None and result.n_from_points:
            ids = inputs["point_ids"][result.points_used]
            used = used_mask(points_layer).copy()
            used[ids] = True
            _set_used(points_layer, used)
        for layer in (image, points_layer, self.labels_layer.value if self.paired.value else None):
            if layer is not None:
                layer.visible = False
        # show patch 0 (and plane 2 of a flipbook): set the world point, whatever the scales
        first = (0, 2, 0, 0) if result.kind == "flipbook" else (0, 0, 0)
        world = image_layer.data_to_world(first)
        offset = self.viewer.dims.ndim - image_layer.ndim
        lead = 2 if result.kind == "flipbook" else 1
        for axis in range(lead):
            self.viewer.dims.set_point(offset + axis, world[axis])
        self.viewer.reset_view(layers=[image_layer])
        self.viewer.layers.selection.active = labels_layer
        where = (
            "flipbook 0, plane 2 (annotate the middle plane of each)"
            if result.kind == "flipbook"
            else "patch 0"
        )
        self.result.value = (
            f"picked {len(result)} {suffix} ({result.n_from_points} at points), seed "
            f"{result.seed}; showing {where}. The image"
            f"{' and points' if points_layer is not None else ''} are hidden."
        )
        self.update_count()

    def unmark_used_points(self) -> None:
        """Make every point of the chosen points layer usable again (face colour reset)."""
        layer = self.points.value
        if layer is None or not len(layer.data):
            return
        _set_used(layer, np.zeros(len(layer.data), dtype=bool))
        self.update_count()
