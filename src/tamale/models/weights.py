"""Saving and loading weights (safetensors), with hashes and clear mismatch errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from tamale.errors import TamaleInputError

__all__ = ["file_sha256", "load_state_dict", "load_weights", "save_weights", "verify_sha256"]


def file_sha256(path: str | Path) -> str:
    """Lower-case hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_sha256(path: str | Path, expected: str | None) -> None:
    """Raise :class:`TamaleInputError` when ``path``'s SHA-256 is not ``expected`` (None: skip)."""
    if expected is None:
        return
    actual = file_sha256(path)
    if actual != expected.lower():
        raise TamaleInputError(
            f"weights file {path} does not match its model card: SHA-256 is {actual}, the card "
            f"says {expected}. The file is corrupt or was replaced; download or export it again."
        )


def save_weights(model: nn.Module, path: str | Path) -> str:
    """Write ``model``'s state dict as safetensors and return the file's SHA-256.

    The file's metadata records the preset name and options (``architecture``,
    ``options``) when the model has them.
    """
    path = Path(path)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "pt", "producer": "tamale"}
    architecture = getattr(model, "architecture", None)
    if architecture:
        metadata["architecture"] = str(architecture)
        metadata["options"] = json.dumps(getattr(model, "options", {}), default=list)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=metadata)
    return file_sha256(path)


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file (no code runs) into a CPU state dict."""
    path = Path(path)
    if not path.is_file():
        raise TamaleInputError(f"weights file not found: {path}")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise TamaleInputError(f"{path} is not a readable safetensors file: {exc}") from None


def load_weights(
    model: nn.Module, weights: str | Path | dict[str, torch.Tensor], source: str = ""
) -> nn.Module:
    """Load weights into ``model`` after checking every layer name and shape.

    Raises
    ------
    TamaleInputError
        Naming the first layer (in the model's order) that is missing, has
        another shape, or is unexpected.
    """
    if isinstance(weights, dict):
        state = weights
    else:
        source = source or str(weights)
        state = load_state_dict(weights)
    own = model.state_dict()
    where = f" in {source}" if source else ""
    arch = getattr(model, "architecture", None) or type(model).__name__
    for key, tensor in own.items():
        if key not in state:
            raise TamaleInputError(
                f"weights{where} do not match architecture {arch}: layer {key!r} is missing "
                f"({len(set(own) - set(state))} missing, {len(set(state) - set(own))} unexpected)"
            )
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise TamaleInputError(
                f"weights{where} do not match architecture {arch}: layer {key!r} has shape "
                f"{tuple(state[key].shape)}, the model expects {tuple(tensor.shape)}"
            )
    extra = [k for k in state if k not in own]
    if extra:
        raise TamaleInputError(
            f"weights{where} do not match architecture {arch}: unexpected layer {extra[0]!r} "
            f"({len(extra)} unexpected in all)"
        )
    model.load_state_dict(state, strict=True)
    return model
