"""An empanada-style TorchScript export of a tamale model (for finetuning tests)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class EmpanadaStyle(nn.Module):
    """empanada's export contract: ``forward(x, render_steps, interpolate_ins)`` -> dict."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.net = model

    def forward(
        self, x: torch.Tensor, render_steps: int = 2, interpolate_ins: bool = True
    ) -> dict[str, torch.Tensor]:
        sem, feats, ctr, off = self.net.trunk(x)
        out = {"sem_logits": self.net.render(sem, feats, render_steps)}
        if interpolate_ins:
            ctr = F.interpolate(ctr, scale_factor=4.0, mode="bilinear", align_corners=True)
            off = F.interpolate(off, scale_factor=4.0, mode="bilinear", align_corners=True)
        out["ctr_hmp"] = ctr
        out["offsets"] = off
        return out


def script_empanada_style(model: nn.Module, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(EmpanadaStyle(model)), str(path))
