"""Checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint is one ``torch.save`` file holding only tensors, numbers, strings, lists and
dicts, so it loads with ``torch.load(weights_only=True)`` (no code runs): the model
weights, the optimiser, schedule and gradient-scaler states, the random-number states
(torch's global generator, CUDA's, the augmentation generator), the sampler position
``(epoch, position)``, the iteration, the metrics history and the run's configuration.
Files are written to a temporary name and renamed, so an interrupted save never leaves a
half-written checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from tamale.errors import TamaleInputError

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "tamale-training-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus format tags) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(data, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises
    ------
    TamaleInputError
        Missing file, or a file that is not a tamale training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise TamaleInputError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TamaleInputError(f"{path} is not a readable checkpoint: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise TamaleInputError(f"{path} is not a tamale training checkpoint")
    if int(data.get("version", 0)) > CHECKPOINT_VERSION:
        raise TamaleInputError(f"{path} was written by a newer tamale; upgrade tamale")
    return data
