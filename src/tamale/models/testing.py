"""Helpers for tests and benchmarks: synthetic inputs and untrained-but-lively models.

No trained weights can be downloaded here, so quality comparisons (float vs
int8, float vs bfloat16) use randomly initialised networks whose BatchNorm
statistics are re-estimated on synthetic EM (so every layer sees
unit-scale activations, as in a trained network) and whose heads are
re-initialised to give outputs of order one. Agreement between two versions
of such a network is a fair proxy for the numerical error of a precision
change; it says nothing about segmentation quality.
"""

from __future__ import annotations

import torch
from torch import nn

from tamale.registry.card import Norms
from tamale.synthetic import synthetic_em_2d

__all__ = ["lively_model", "synthetic_batch"]


def synthetic_batch(
    size: int = 256, n: int = 1, seed: int = 0, norms: Norms | None = None
) -> torch.Tensor:
    """``n`` synthetic EM images (n, 1, size, size), normalised like a card's ``norms``."""
    norms = norms or Norms()
    images = [synthetic_em_2d((size, size), seed=seed + i).image for i in range(n)]
    x = torch.from_numpy(__import__("numpy").stack(images)).float().unsqueeze(1) / 255.0
    return (x - norms.mean) / norms.std


@torch.no_grad()
def lively_model(model: nn.Module, batches: list[torch.Tensor], seed: int = 0) -> nn.Module:
    """Re-initialise the heads' convs and re-estimate BatchNorm statistics on ``batches``.

    Returns ``model`` in eval mode (modified in place).
    """
    g = torch.Generator().manual_seed(seed)
    for name in ("semantic_head", "ins_center", "ins_xy"):
        head = getattr(model, name, None)
        if head is None:
            continue
        for conv in head.modules():
            if isinstance(conv, nn.Conv2d):
                fan_in = conv.weight[0].numel()
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) / fan_in**0.5)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.eval()
    for m in bns:
        m.train()
    for x in batches:
        model.trunk(x)
    for m in bns:
        m.momentum = 0.1
    return model.eval()
