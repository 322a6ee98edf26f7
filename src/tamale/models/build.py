"""Build models from presets or model cards, and load them with their weights."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tamale.errors import TamaleInputError
from tamale.models.panoptic import PanopticModel
from tamale.models.presets import build_preset
from tamale.models.torchscript import TorchScriptModel, load_torchscript
from tamale.models.weights import load_weights, verify_sha256
from tamale.registry.card import ModelCard, WeightsRef

__all__ = ["build_model", "card_num_classes", "load_model"]


def card_num_classes(card: ModelCard) -> int:
    """``sem_logits`` channels for a card: 1 for one class, else classes + 1 (background)."""
    n = len(card.classes)
    return 1 if n == 1 else n + 1


def build_model(card_or_preset: ModelCard | str, **options: Any) -> PanopticModel:
    """Build an untrained model from a preset name or a model card.

    Parameters
    ----------
    card_or_preset : ModelCard or str
        A card (its ``architecture`` and ``architecture_options`` are used; the
        number of classes comes from its ``classes``) or a preset name.
    **options
        Overrides of the preset's options (e.g. ``num_classes=3``).

    Raises
    ------
    TamaleInputError
        Unknown preset (the message lists them), unknown option (lists the
        accepted ones), or a card without an architecture (TorchScript).
    """
    if isinstance(card_or_preset, ModelCard):
        card = card_or_preset
        if card.architecture is None:
            raise TamaleInputError(
                f"model {card.name!r} is a TorchScript model without a tamale architecture; "
                "load it with load_model() or convert it with convert_empanada()"
            )
        opts = {"num_classes": card_num_classes(card), **card.architecture_options, **options}
        model = build_preset(card.architecture, **opts)
        model.padding_factor = math.lcm(model.padding_factor, card.padding_factor)
        return model
    if not isinstance(card_or_preset, str):
        raise TamaleInputError(
            f"build_model takes a ModelCard or a preset name, got {type(card_or_preset).__name__}"
        )
    return build_preset(card_or_preset, **options)


def _local_weights(card: ModelCard, ref: WeightsRef) -> Path:
    location = card.resolve(ref)
    if ref.is_url:
        raise TamaleInputError(
            f"the weights of model {card.name!r} are remote ({location}); download them "
            "through the model registry first"
        )
    path = Path(location)
    if not path.is_file():
        raise TamaleInputError(f"weights file of model {card.name!r} not found: {path}")
    verify_sha256(path, ref.sha256)
    return path


def load_model(
    card: ModelCard, device: str | torch.device = "cpu", quantized: bool = False
) -> nn.Module:
    """The model of a card with its weights, in eval mode, on ``device``.

    Parameters
    ----------
    card : ModelCard
        tamale card (preset + safetensors weights) or empanada card
        (TorchScript weights, run through :class:`TorchScriptModel`).
    device : str or torch.device
        Where the model runs.
    quantized : bool
        Load the card's int8 TorchScript weights (``weights_quantized``,
        empanada cards; CPU only). tamale cards are quantized locally with
        :func:`tamale.models.quantize_model` instead.

    Raises
    ------
    TamaleInputError
        Remote or missing weights, SHA-256 mismatch, weights that do not match
        the architecture (naming the layer), unreadable files.
    """
    ref = card.weights
    if quantized:
        if card.weights_quantized is None:
            raise TamaleInputError(
                f"model {card.name!r} has no quantized weights; build them with quantize_model()"
            )
        ref = card.weights_quantized
    path = _local_weights(card, ref)
    if ref.format == "torchscript":
        module = load_torchscript(path, device)
        module.eval()
        model: nn.Module = TorchScriptModel(module, card.padding_factor, card_num_classes(card))
        return model.eval()
    model = build_model(card)
    load_weights(model, path)
    return model.to(device).eval()
