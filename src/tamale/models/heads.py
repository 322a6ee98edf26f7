"""Prediction heads: 5x5 separable conv + BN + ReLU, then a 1x1 conv with bias."""

from __future__ import annotations

import torch
from torch import nn

from tamale.models.layers import SeparableConvBNAct

__all__ = ["PanopticHead"]


class PanopticHead(nn.Module):
    """``head[0]``: separable 5x5 conv + BN + ReLU; ``head[1]``: 1x1 conv to ``nout`` (bias)."""

    def __init__(self, nin: int, nout: int) -> None:
        super().__init__()
        self.head = nn.Sequential(SeparableConvBNAct(nin, nin, 5), nn.Conv2d(nin, nout, 1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)
