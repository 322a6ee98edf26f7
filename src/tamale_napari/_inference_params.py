"""The controls of the 2D inference parameters, shared by the 2D and 3D inference docks.

:func:`parameter_widgets` builds one widget per :class:`~tamale.inference.Inference2DConfig`
field shown in the docks (same labels, ranges and tooltips in both); :func:`read_values`
and :func:`show_values` move values between those widgets and a configuration;
:func:`update_precision_controls` offers int8 and half precision only where they run, and
:func:`chosen_image_and_model` checks a dock's layer and model before a run.
"""

from __future__ import annotations

from typing import Any

from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, SpinBox, Widget

from tamale.inference import DOWNSAMPLING_CHOICES, Inference2DConfig, gpu_name

__all__ = [
    "chosen_image_and_model",
    "parameter_widgets",
    "read_values",
    "show_values",
    "tip",
    "update_precision_controls",
]


def tip(field: str, config: type = Inference2DConfig) -> str:
    """The tooltip of a parameter: its documentation in the configuration class."""
    return config.model_fields[field].description or ""


def parameter_widgets(divisor_label: str = "max objects per class") -> dict[str, Widget]:
    """Widgets of the 2D inference parameters, by configuration field name."""
    gpu = gpu_name()
    return {
        "downsampling": ComboBox(
            label="image downsampling",
            choices=list(DOWNSAMPLING_CHOICES),
            value=1,
            tooltip=tip("downsampling"),
        ),
        "confidence_thr": FloatSpinBox(
            label="segmentation confidence",
            value=0.5,
            min=0.05,
            max=0.95,
            step=0.05,
            tooltip=tip("confidence_thr"),
        ),
        "center_confidence_thr": FloatSpinBox(
            label="center confidence",
            value=0.1,
            min=0.0,
            max=0.9,
            step=0.05,
            tooltip=tip("center_confidence_thr"),
        ),
        "centers_min_distance": SpinBox(
            label="centers min distance",
            value=3,
            min=1,
            max=35,
            tooltip=tip("centers_min_distance"),
        ),
        "fine_boundaries": CheckBox(
            text="fine boundaries", value=False, tooltip=tip("fine_boundaries")
        ),
        "semantic_only": CheckBox(text="semantic only", value=False, tooltip=tip("semantic_only")),
        "label_divisor": SpinBox(
            label=divisor_label, value=10000, min=2, max=2**31 - 1, tooltip=tip("label_divisor")
        ),
        "min_area": SpinBox(
            label="min area (pixels)", value=0, min=0, max=10**9, step=50, tooltip=tip("min_area")
        ),
        "use_gpu": CheckBox(
            text=f"use GPU ({gpu})" if gpu else "use GPU (none found)",
            value=gpu is not None,
            tooltip=tip("use_gpu"),
        ),
        "use_quantized": CheckBox(
            text="use quantized model", value=False, tooltip=tip("use_quantized")
        ),
        "half_precision": CheckBox(
            text="half precision", value=False, tooltip=tip("half_precision")
        ),
        "tile_size": SpinBox(
            label="tile size", value=2048, min=0, max=65536, step=256, tooltip=tip("tile_size")
        ),
        "tile_overlap": SpinBox(
            label="tile overlap", value=128, min=0, max=4096, step=16, tooltip=tip("tile_overlap")
        ),
        "batch_size": SpinBox(
            label="batch size", value=4, min=1, max=256, tooltip=tip("batch_size")
        ),
    }


def read_values(widgets: dict[str, Widget]) -> dict[str, Any]:
    """The widgets' values, typed as the configuration expects them."""
    values: dict[str, Any] = {}
    for field, widget in widgets.items():
        value = widget.value
        if isinstance(widget, FloatSpinBox):
            values[field] = round(float(value), 4)
        elif isinstance(widget, CheckBox):
            values[field] = bool(value)
        else:
            values[field] = int(value)
    return values


def show_values(widgets: dict[str, Widget], config: Any) -> None:
    """Show ``config``'s values; a disabled option (not available here) is only cleared."""
    for field, widget in widgets.items():
        value = getattr(config, field)
        if isinstance(widget, CheckBox) and not widget.enabled and value:
            continue
        widget.value = value


def update_precision_controls(widgets: dict[str, Widget], model: str | None) -> None:
    """Offer the quantized model and half precision only where they run with ``model``
    on the chosen device; a disabled box is cleared and its tooltip says why."""
    from tamale.errors import TamaleInputError
    from tamale.inference import choose_device, half_precision_status, quantization_status
    from tamale.registry import get_card

    card = None
    q_ok, q_reason = False, "choose a model first"
    h_ok, h_reason = False, "choose a model first"
    if model:
        try:
            card = get_card(model)
        except (TamaleInputError, ValueError) as exc:
            q_reason = h_reason = str(exc)
    if card is not None:
        q_ok, q_reason = quantization_status(card)
        device = choose_device(bool(widgets["use_gpu"].value)).device
        h_ok, h_reason = half_precision_status(card, device)
    for field, ok, reason in (
        ("use_quantized", q_ok, q_reason),
        ("half_precision", h_ok, h_reason),
    ):
        box = widgets[field]
        box.enabled = ok
        if not ok:
            box.value = False
        box.tooltip = tip(field) + ("" if ok else f"\n\nNot available: {reason}")


def chosen_image_and_model(layer: Any, model: str | None, what: str = "an image") -> Any:
    """Check an inference dock's image layer and model before anything runs.

    Raises TamaleInputError for a missing or RGB layer, no model, or a model whose card
    cannot be read; returns the layer.
    """
    from tamale.errors import TamaleInputError
    from tamale.registry import get_card

    if layer is None:
        raise TamaleInputError(f"choose an image layer (open or add {what} first)")
    if getattr(layer, "rgb", False):
        raise TamaleInputError(
            f"{layer.name!r} is an RGB image; the models take one grey channel: right-click "
            "the layer > Split RGB, then choose one of the channels"
        )
    if not model:
        raise TamaleInputError(
            "no model is registered: register one (Register model dock) and choose it"
        )
    get_card(model)  # an unknown or unreadable card fails here, before anything runs
    return layer
