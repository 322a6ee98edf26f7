"""Named architecture presets and the encoders they can use.

A preset is a model family plus default options; :func:`build_model` takes a
preset name (or a model card naming one) and option overrides. Every option a
family does not know is refused with the list of those it does.

=========================== ========================================= =========== =======
preset                      layout                                    params (1c) padding
=========================== ========================================= =========== =======
``panoptic_deeplab_r50``    MitoNet_v1: PDL + ResNet-50 (OS 16) + PR  55,158,486  16
``panoptic_bifpn_r50``      MitoNet_v1_mini: BiFPN + ResNet-50 + PR   27,350,786  128
``panoptic_deeplab_r18``    PDL + ResNet-18 (OS 16), 128-ch decoders  ~14.5 M     16
``panoptic_bifpn_r18``      BiFPN + ResNet-18, fpn_dim 64             ~11.7 M     128
``panoptic_bifpn_regnety``  BiFPN + RegNetY-800MF, fpn_dim 64         ~6.1 M      128
``tiny``                    PDL + 4-block ResNet, 16-ch decoders      ~0.1 M      32
``tiny_bifpn``              BiFPN + 4-block ResNet, fpn_dim 16        ~0.1 M      128
=========================== ========================================= =========== =======
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from tamale.errors import TamaleInputError
from tamale.models.panoptic import PanopticBiFPN, PanopticDeepLab, PanopticModel
from tamale.models.regnet import REGNET_CONFIGS, regnet
from tamale.models.resnet import resnet18, resnet34, resnet50, resnet_tiny

__all__ = ["ENCODERS", "PRESETS", "Preset", "available_presets", "build_encoder", "build_preset"]

ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet_tiny": resnet_tiny,
    **{
        name: (
            lambda output_stride=32, in_channels=1, _n=name: regnet(_n, output_stride, in_channels)
        )
        for name in REGNET_CONFIGS
    },
}


def build_encoder(name: str, output_stride: int = 32) -> nn.Module:
    """An encoder by name (see :data:`ENCODERS`)."""
    if name not in ENCODERS:
        raise TamaleInputError(
            f"unknown encoder {name!r}; available: {', '.join(sorted(ENCODERS))}"
        )
    if output_stride not in (16, 32):
        raise TamaleInputError(f"output_stride must be 16 or 32, got {output_stride}")
    return ENCODERS[name](output_stride=output_stride)


@dataclass(frozen=True)
class Preset:
    """A named architecture: a family and its default options."""

    name: str
    family: str
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


_FAMILIES: dict[str, type[PanopticModel]] = {
    "panoptic_deeplab": PanopticDeepLab,
    "panoptic_bifpn": PanopticBiFPN,
}
# options every family takes besides its class's keyword arguments
_COMMON = {"encoder", "output_stride", "frozen_bn"}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in [
        Preset(
            "panoptic_deeplab_r50",
            "panoptic_deeplab",
            {"encoder": "resnet50", "output_stride": 16},
            "Panoptic-DeepLab + ResNet-50 + PointRend, the MitoNet_v1 layout (55.2 M parameters).",
        ),
        Preset(
            "panoptic_bifpn_r50",
            "panoptic_bifpn",
            {"encoder": "resnet50", "fpn_dim": 128, "fpn_layers": 3},
            "Panoptic-BiFPN + ResNet-50 + PointRend, the MitoNet_v1_mini layout (27.4 M).",
        ),
        Preset(
            "panoptic_deeplab_r18",
            "panoptic_deeplab",
            {"encoder": "resnet18", "output_stride": 16, "decoder_channels": 128},
            "Panoptic-DeepLab + ResNet-18 with 128-channel decoders (CPU-friendly).",
        ),
        Preset(
            "panoptic_bifpn_r18",
            "panoptic_bifpn",
            {"encoder": "resnet18", "fpn_dim": 64, "fpn_layers": 3},
            "Panoptic-BiFPN + ResNet-18 with fpn_dim 64 (CPU-friendly).",
        ),
        Preset(
            "panoptic_bifpn_regnety",
            "panoptic_bifpn",
            {"encoder": "regnety_800mf", "fpn_dim": 64, "fpn_layers": 3},
            "Panoptic-BiFPN + RegNetY-800MF with fpn_dim 64 (CPU-friendly).",
        ),
        Preset(
            "tiny",
            "panoptic_deeplab",
            {
                "encoder": "resnet_tiny",
                "output_stride": 32,
                "decoder_channels": 16,
                "low_level_channels_project": (8,),
                "subdivision_num_points": 256,
                "train_num_points": 64,
            },
            "A ~0.1 M-parameter Panoptic-DeepLab for tests.",
        ),
        Preset(
            "tiny_bifpn",
            "panoptic_bifpn",
            {
                "encoder": "resnet_tiny",
                "fpn_dim": 16,
                "fpn_layers": 2,
                "subdivision_num_points": 256,
                "train_num_points": 64,
            },
            "A ~0.1 M-parameter Panoptic-BiFPN for tests.",
        ),
    ]
}


def available_presets() -> list[str]:
    """Names of the registered presets."""
    return sorted(PRESETS)


def preset_options(name: str) -> list[str]:
    """Option names a preset accepts."""
    cls = _FAMILIES[_get(name).family]
    params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "encoder")]
    return sorted({*params, *_COMMON})


def _get(name: str) -> Preset:
    if name not in PRESETS:
        raise TamaleInputError(
            f"unknown architecture preset {name!r}; available: {', '.join(available_presets())}"
        )
    return PRESETS[name]


def resolve_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The preset's defaults updated with ``options`` (unknown options refused)."""
    preset = _get(name)
    allowed = preset_options(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TamaleInputError(
            f"preset {name!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(allowed)}"
        )
    return {**preset.defaults, **options}


def build_preset(name: str, **options: Any) -> PanopticModel:
    """Build a preset with option overrides (no weights loaded)."""
    preset = _get(name)
    opts = resolve_options(name, options)
    kwargs = dict(opts)
    encoder_name = kwargs.pop("encoder")
    output_stride = int(kwargs.pop("output_stride", 32))
    frozen_bn = bool(kwargs.pop("frozen_bn", False))
    if preset.family == "panoptic_bifpn" and output_stride != 32:
        raise TamaleInputError("Panoptic-BiFPN needs output_stride 32")
    for key in ("low_level_stages", "low_level_channels_project", "atrous_rates"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    encoder = build_encoder(encoder_name, output_stride)
    try:
        model = _FAMILIES[preset.family](encoder, **kwargs)
    except TypeError as exc:  # a wrongly typed option
        raise TamaleInputError(f"invalid options for preset {name!r}: {exc}") from None
    model.architecture = name
    model.options = {k: v for k, v in options.items()}
    model.frozen_bn = frozen_bn
    return model
