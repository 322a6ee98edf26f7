"""Check that a card's weights really build its model, and count parameters.

Registration and import call :func:`check_model` on the assembled card (weights
already local) before anything enters the registry, so weights that do not fit
the card's architecture are refused at once with the name of the offending
layer (``tamale.models`` names it), rather than failing later in an
inference dock.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from tamale.config import ConfigError
from tamale.errors import TamaleInputError
from tamale.registry.card import ModelCard, WeightsRef

__all__ = ["architecture_parameters", "check_model", "count_parameters", "load_for_check"]


def count_parameters(model: Any) -> int:
    """Number of parameters of a torch module (scripted or eager)."""
    return int(sum(p.numel() for p in model.parameters()))


def _check_torchscript_file(path: Path, what: str) -> None:
    # TorchScript files are zip archives holding a TorchScript program; refuse
    # anything else before torch tries to read it
    if not zipfile.is_zipfile(path):
        raise TamaleInputError(
            f"{what} {path} is not a TorchScript file (not a zip archive); "
            "empanada models are TorchScript .pth files"
        )


def load_for_check(card: ModelCard) -> Any:
    """Build the model of ``card`` on the CPU from its local weights.

    Raises
    ------
    TamaleInputError
        When the weights cannot be read or do not fit the architecture; the
        message comes from ``tamale.models`` and names the mismatched layer.
    """
    path = Path(card.resolve(card.weights))
    if card.weights.is_url:
        raise TamaleInputError(f"weights of {card.name!r} are not downloaded yet: {path}")
    if not path.is_file():
        raise TamaleInputError(f"weights file not found: {path}")
    if card.weights.format == "torchscript":
        _check_torchscript_file(path, "weights file")
    from tamale.models import load_model  # imported on use: torch is heavy

    try:
        return load_model(card, "cpu")
    except (TamaleInputError, ConfigError):
        raise
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        what = card.architecture or "TorchScript"
        raise TamaleInputError(
            f"the weights {path.name} do not fit model {card.name!r} ({what}): {exc}"
        ) from None


def architecture_parameters(card: ModelCard) -> dict[str, int] | None:
    """Parameter counts of ``card``'s architecture (no weights needed), or None for TorchScript.

    The model is built on torch's ``meta`` device: no memory, no time.
    ``total`` plus ``encoder``, ``decoders``, ``heads`` and ``pointrend``.
    """
    if card.architecture is None:
        return None
    import torch

    from tamale.models import build_model
    from tamale.models import count_parameters as parts

    with torch.device("meta"):
        model = build_model(card)
    counts = parts(model)
    return {k: int(counts[k]) for k in ("total", "encoder", "decoders", "heads", "pointrend")}


def _check_quantized(card: ModelCard, ref: WeightsRef) -> None:
    path = Path(card.resolve(ref))
    if not path.is_file():
        raise TamaleInputError(f"quantized weights file not found: {path}")
    if ref.format == "torchscript":
        # only the container is checked: int8 TorchScript loads only where its
        # quantization engine exists (it does not on every platform)
        _check_torchscript_file(path, "quantized weights file")


def check_model(card: ModelCard) -> int:
    """Build ``card``'s model from its local weights and return its parameter count.

    The hashes were checked while the files were copied, downloaded or
    extracted, so they are not computed again here.
    """
    unhashed = {"weights": card.weights.model_copy(update={"sha256": None})}
    model = load_for_check(card.updated(**unhashed))
    if card.weights_quantized is not None:
        _check_quantized(card, card.weights_quantized)
    return count_parameters(model)
