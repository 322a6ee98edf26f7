"""The trained model on disk: card + safetensors weights, then into the registry.

``<model_dir>/<model_name>/`` receives ``card.yaml`` (tamale format: architecture,
options, classes, label divisor, padding factor, norms, the validation scores, the
training parameters) and ``weights.safetensors`` (its SHA-256 in the card); the model is
then registered under its name (:func:`tamale.registry.register_model`, which notifies
every model list). Existing models are never replaced unless ``replace`` was given:
:func:`check_output` refuses a taken name or a non-empty output folder before training
starts, and says how to proceed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from torch import nn

from tamale.errors import TamaleInputError
from tamale.models import save_weights
from tamale.registry import ModelCard, register_model, save_card
from tamale.registry.install import check_free_name
from tamale.registry.register import RegisteredModel
from tamale.registry.store import CARD_FILE
from tamale.training.config import TrainConfig

__all__ = ["WEIGHTS_FILE", "check_output", "make_card", "write_model"]

WEIGHTS_FILE = "weights.safetensors"


def _writable(folder: Path) -> None:
    """Refuse a model directory that cannot be created or written (nothing is written)."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise TamaleInputError(f"model directory {folder}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise TamaleInputError(
            f"model directory {folder} is not writable ({probe} does not allow writing); "
            "choose a folder you can write to"
        )


def check_output(config: TrainConfig) -> None:
    """Refuse, before training, a taken model name or an existing output folder
    (unless ``config.replace``), and an unwritable model directory."""
    if config.register_model:
        check_free_name(config.model_name, replace=config.replace)
    out = config.output_dir
    if out.exists() and not config.replace and config.resume is None:
        holds = [p for p in out.iterdir() if p.name != "checkpoints"] if out.is_dir() else [out]
        if holds or (out / "checkpoints").exists():
            raise TamaleInputError(
                f"{out} already exists (a model named {config.model_name!r} was written there "
                "before); choose another name or model directory, replace it (--replace), or "
                "continue its run from a checkpoint (--resume)"
            )
    _writable(Path(config.model_dir).expanduser())


def make_card(
    config: TrainConfig,
    *,
    architecture: str,
    options: dict[str, Any],
    classes: list[Any],
    label_divisor: int | None,
    padding_factor: int,
    norms: Any,
    sha256: str,
    base: ModelCard | None,
    quality: dict[str, float],
) -> ModelCard:
    """The card of the trained model."""
    if base is not None:
        description = config.description or (
            f"{base.name} finetuned on {config.train_dir}"
            + (f". {base.description}" if base.description else "")
        )
        license_ = config.license or base.license
        training_data = config.training_data or (
            f"{config.train_dir} (finetuning); base model: {base.training_data or base.name}"
        )
        citation = base.citation
        divisor = base.label_divisor
        inference = dict(base.inference)
    else:
        description = config.description
        license_ = config.license
        training_data = config.training_data or str(config.train_dir)
        citation = ""
        divisor = label_divisor or 1000
        inference = {}
    inference.update(config.inference)
    # the image downsampling the model was (last) trained at is the one to infer at
    inference.pop("downsampling", None)
    if config.downsampling > 1:
        inference["downsampling"] = config.downsampling
    finetune = {
        "patch_size": config.patch_size,
        "iterations": config.iterations,
        "batch_size": config.batch_size,
        "finetune_layers": config.trainable_layers,
    }
    if base is not None:
        finetune["base_model"] = base.name
    return ModelCard(
        name=config.model_name,
        description=description,
        architecture=architecture,
        architecture_options={k: v for k, v in options.items() if k != "num_classes"},
        weights={"uri": WEIGHTS_FILE, "sha256": sha256, "format": "safetensors"},
        classes=[c.model_dump() if hasattr(c, "model_dump") else c for c in classes],
        label_divisor=divisor,
        padding_factor=padding_factor,
        norms=norms.model_dump() if hasattr(norms, "model_dump") else norms,
        inference=inference,
        finetune=finetune,
        license=license_,
        training_data=training_data,
        quality={k: float(v) for k, v in quality.items() if math.isfinite(float(v))},
        citation=citation,
    )


def write_model(
    model: nn.Module, card_fields: dict[str, Any], config: TrainConfig
) -> tuple[ModelCard, Path, RegisteredModel | None]:
    """Write weights and card into the output folder and register the model.

    Returns the card, its path, and the registration (None when ``config.register_model`` is
    off).
    """
    out = config.output_dir
    out.mkdir(parents=True, exist_ok=True)
    sha = save_weights(model, out / WEIGHTS_FILE)
    card = make_card(config, sha256=sha, **card_fields)
    card_path = save_card(card, out / CARD_FILE)
    registered = None
    if config.register_model:
        registered = register_model(card_path, config.model_name, replace=config.replace)
    return card.with_path(card_path), card_path, registered
