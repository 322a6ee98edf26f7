"""The network a run starts from: a registered model (finetuning) or a new preset.

:func:`prepare_model` returns the model on the CPU with everything the run needs to know
about it (classes, label divisor, norms, padding factor, the card it came from). A
finetuned model keeps its base model's architecture, classes, divisor and norms; an
empanada TorchScript model is converted into its tamale preset first
(:func:`tamale.models.empanada.convert_empanada`). A new model can take its encoder from
a registered model or a weights file (:func:`encoder_state`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tamale.errors import TamaleInputError
from tamale.models import build_model, load_model
from tamale.models.panoptic import PanopticModel
from tamale.models.weights import load_state_dict, verify_sha256
from tamale.registry import ModelCard, get_card, list_models
from tamale.registry.card import ClassSpec, Norms
from tamale.training.config import DEFAULT_ARCHITECTURE, TrainConfig

__all__ = ["ModelSetup", "encoder_state", "load_encoder", "prepare_model"]

DEFAULT_CLASS = ClassSpec(id=1, name="object", kind="instance")


@dataclass
class ModelSetup:
    """A model to train and what goes with it."""

    model: PanopticModel
    classes: list[ClassSpec]
    label_divisor: int | None
    """Divisor of the training masks (None: every nonzero value is an object)."""
    norms: Norms | None
    """The model's norms; None: measure them on the training set."""
    architecture: str
    options: dict[str, Any]
    base_card: ModelCard | None = None
    messages: list[str] = field(default_factory=list)

    @property
    def padding_factor(self) -> int:
        return int(self.model.padding_factor)


def _card_model(card: ModelCard) -> PanopticModel:
    """The eager model of a registered card (TorchScript cards converted)."""
    if card.architecture is not None:
        return load_model(card, "cpu")  # type: ignore[return-value]
    from tamale.models.empanada import convert_empanada

    location = card.resolve(card.weights)
    if card.weights.is_url:
        raise TamaleInputError(
            f"the weights of model {card.name!r} are remote ({location}); download them "
            "through the model registry first"
        )
    if not Path(location).is_file():
        raise TamaleInputError(f"weights file of model {card.name!r} not found: {location}")
    verify_sha256(location, card.weights.sha256)
    model, _ = convert_empanada(location, card)
    return model


def _registered(name: str) -> ModelCard:
    if name not in list_models(include_hidden=True):
        available = ", ".join(list_models()) or "none"
        raise TamaleInputError(f"no model named {name!r} is registered (available: {available})")
    return get_card(name)


def encoder_state(source: str) -> tuple[dict[str, torch.Tensor], Norms | None, str]:
    """Encoder weights from a registered model (by name) or a weights file.

    Returns the state dict (keys as in ``model.state_dict()``, i.e. ``encoder.*``), the
    source model's norms when known, and a description of the source.
    """
    path = Path(source).expanduser()
    if path.suffix and (path.is_file() or "/" in source or "\\" in source):
        if not path.is_file():
            raise TamaleInputError(f"encoder weights file not found: {path}")
        if path.suffix.lower() == ".safetensors":
            state = load_state_dict(path)
        else:
            try:
                loaded = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise TamaleInputError(
                    f"cannot read encoder weights {path}: {exc}. Give a .safetensors file or a "
                    "PyTorch state dict (.pth/.pt) that loads with weights_only=True"
                ) from None
            if isinstance(loaded, dict) and "state_dict" in loaded:
                loaded = loaded["state_dict"]
            if not isinstance(loaded, dict):
                raise TamaleInputError(f"{path} does not hold a state dict")
            state = {
                str(k).removeprefix("module."): v
                for k, v in loaded.items()
                if isinstance(v, torch.Tensor)
            }
        if state and not any(k.startswith("encoder.") for k in state):
            state = {f"encoder.{k}": v for k, v in state.items()}
        return state, None, str(path)
    card = _registered(source)
    model = _card_model(card)
    return model.state_dict(), card.norms, f"model {card.name}"


def load_encoder(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> int:
    """Copy the encoder layers of ``state`` whose names and shapes fit into ``model``.

    Returns the number of tensors loaded; raises when none fits.
    """
    own = model.state_dict()
    encoder_keys = [k for k in own if k.startswith("encoder.")]
    fits = {
        k: state[k]
        for k in encoder_keys
        if k in state and tuple(state[k].shape) == tuple(own[k].shape)
    }
    if not fits:
        example = next(iter(state), "none")
        raise TamaleInputError(
            f"no encoder layer of {source} fits this architecture's encoder (e.g. its layer "
            f"{example!r}); choose a model or weights file with the same encoder"
        )
    missing = [k for k in encoder_keys if k not in fits]
    if missing:
        raise TamaleInputError(
            f"the encoder of {source} does not match this architecture: layer {missing[0]!r} "
            f"is missing or has another shape ({len(missing)} of {len(encoder_keys)} layers); "
            "choose a model or weights file with the same encoder"
        )
    with torch.no_grad():
        for k, v in fits.items():
            own[k].copy_(v)
    return len(fits)


def prepare_model(config: TrainConfig) -> ModelSetup:
    """The model a run starts from (on the CPU) and its classes, divisor and norms.

    Raises
    ------
    TamaleInputError
        Unknown base model, architecture or option; remote or missing weights; encoder
        weights that do not fit.
    """
    if config.base_model is not None:
        card = _registered(config.base_model)
        model = _card_model(card)
        classes = list(card.classes)
        divisor = None if len(classes) == 1 else card.label_divisor
        if len(classes) > 1 and divisor is None:
            raise TamaleInputError(
                f"model {card.name!r} has {len(classes)} classes but no label divisor in its "
                "card; it cannot be finetuned on panoptic masks"
            )
        return ModelSetup(
            model=model,
            classes=classes,
            label_divisor=divisor,
            norms=card.norms,
            architecture=str(model.architecture),
            options=dict(model.options),
            base_card=card,
        )

    classes = list(config.classes) or [DEFAULT_CLASS]
    architecture = config.architecture or DEFAULT_ARCHITECTURE
    options = dict(config.architecture_options)
    options.pop("num_classes", None)
    if not any(c.kind == "instance" for c in classes):
        options.setdefault("ins_decoder", False)
    n_out = 1 if len(classes) == 1 else len(classes) + 1
    model = build_model(architecture, num_classes=n_out, **options)
    messages: list[str] = []
    norms: Norms | None = None
    if config.encoder_init is not None:
        state, norms, source = encoder_state(config.encoder_init)
        n = load_encoder(model, state, source)
        messages.append(f"encoder initialised from {source} ({n} tensors)")
    return ModelSetup(
        model=model,
        classes=classes,
        label_divisor=config.label_divisor,
        norms=norms,
        architecture=architecture,
        options=options,
        messages=messages,
    )
