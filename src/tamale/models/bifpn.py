"""BiFPN (EfficientDet-style, simplified as in MitoNet-mini) and its decoder.

The encoder's stride-8, 16 and 32 features (P3-P5) are extended with P6 and
P7 (1x1 conv + BN on P5, then 3x3 stride-2 max-pools) and passed through
``fpn_layers`` bidirectional layers of width ``fpn_dim``. Each layer has a
top-down and a bottom-up path; features whose channels differ from
``fpn_dim`` (first layer only) are resampled by 1x1 conv + BN. Fusion is
"fast fusion": ReLU-clipped weights normalised over the whole path, and each
node normalises its own 2 or 3 adjacent weights again. Each path applies
**one shared** 3x3 separable conv + BN + SiLU after every fusion (the
published model's convs are shared across levels, which is what its parameter
count reflects).

:class:`BiFPNDecoder` climbs from P7 back to stride 4: 2x2 stride-2 transposed
conv + BN + ReLU, concatenation with the next finer level (P6 .. P3, then the
resampled stride-4 features P2), and a final 5x5 separable conv + BN + ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tamale.models.layers import ConvBNAct, ConvTransposeBNAct, SeparableConvBNAct

__all__ = ["BiFPN", "BiFPNDecoder", "Resample"]


class Resample(nn.Module):
    """1x1 conv + BN to ``nout`` channels, or identity when ``nin == nout``."""

    def __init__(self, nin: int, nout: int) -> None:
        super().__init__()
        self.proj = ConvBNAct(nin, nout, 1, act=None) if nin != nout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.proj is None else self.proj(x)


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def _down2(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, 2, 1)


def _norm_weights(w: torch.Tensor, eps: float) -> torch.Tensor:
    w = F.relu(w)
    return w / (w.sum() + eps)


class TopDownPath(nn.Module):
    """From the coarsest level to the finest: ``node_i = conv(w_i·up(node_{i-1}) + w_{i+1}·p_i)``.

    ``nins`` are the channels of the levels after the coarsest, coarse to fine.
    """

    def __init__(self, nins: list[int], fpn_dim: int, eps: float = 1e-4) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.ones(len(nins) + 1))
        self.resamplings = nn.ModuleList([Resample(n, fpn_dim) for n in nins])
        self.after_combine = SeparableConvBNAct(fpn_dim, fpn_dim, 3, act="silu")
        self.eps = eps

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        # features: coarse to fine
        w = _norm_weights(self.weights, self.eps)
        out = [features[0]]
        for i, resample in enumerate(self.resamplings):
            w1, w2 = w[i], w[i + 1]
            fused = (w1 * _up2(out[-1]) + w2 * resample(features[i + 1])) / (w1 + w2 + self.eps)
            out.append(self.after_combine(fused))
        return out


class BottomUpPath(nn.Module):
    """From the finest level to the coarsest, fusing the input and top-down features.

    ``nins`` are the channels of the input levels after the finest, fine to coarse.
    """

    def __init__(self, nins: list[int], fpn_dim: int, eps: float = 1e-4) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.ones(len(nins) + 1))
        self.resamplings = nn.ModuleList([Resample(n, fpn_dim) for n in nins])
        self.after_combine = SeparableConvBNAct(fpn_dim, fpn_dim, 3, act="silu")
        self.eps = eps

    def forward(
        self, features: list[torch.Tensor], top_down: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        # features: input levels after the finest, fine to coarse; top_down: fine to coarse
        w = _norm_weights(self.weights, self.eps)
        out = [top_down[0]]
        last = len(self.resamplings) - 1
        for i, resample in enumerate(self.resamplings):
            x = resample(features[i])
            if i < last:
                w1, w2, w3 = w[i], w[i + 1], w[i + 2]
                fused = (w1 * _down2(out[-1]) + w2 * x + w3 * top_down[i + 1]) / (
                    w1 + w2 + w3 + self.eps
                )
            else:
                w1, w2 = w[i], w[i + 1]
                fused = (w1 * _down2(out[-1]) + w2 * x) / (w1 + w2 + self.eps)
            out.append(self.after_combine(fused))
        return out


class BiFPNLayer(nn.Module):
    """One bidirectional layer over levels given fine to coarse."""

    def __init__(self, nins: list[int], fpn_dim: int) -> None:
        super().__init__()
        self.top_down = TopDownPath(nins[::-1][1:], fpn_dim)
        self.bottom_up = BottomUpPath(nins[1:], fpn_dim)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        td = self.top_down(features[::-1])
        return self.bottom_up(features[1:], td[::-1])


class BiFPN(nn.Module):
    """P3-P5 (+ P6, P7 made here) → ``fpn_layers`` BiFPN layers; returns P3..P7 (fine to coarse)."""

    def __init__(self, nins: list[int], fpn_dim: int = 128, fpn_layers: int = 3) -> None:
        super().__init__()
        self.p6_resample = Resample(nins[-1], fpn_dim)
        levels = [*nins, fpn_dim, fpn_dim]
        self.layers = nn.ModuleList(
            [
                BiFPNLayer(levels if i == 0 else [fpn_dim] * len(levels), fpn_dim)
                for i in range(fpn_layers)
            ]
        )

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        p6 = _down2(self.p6_resample(features[-1]))
        p7 = _down2(p6)
        levels = [*features, p6, p7]
        for layer in self.layers:
            levels = layer(levels)
        return levels


class BiFPNDecoder(nn.Module):
    """Climb from the coarsest level to the finest (see module docstring)."""

    def __init__(self, fpn_dim: int = 128, n_levels: int = 6) -> None:
        super().__init__()
        self.upsamplings = nn.ModuleList(
            [
                ConvTransposeBNAct(fpn_dim if i == 0 else 2 * fpn_dim, fpn_dim)
                for i in range(n_levels - 1)
            ]
        )
        self.fusion = SeparableConvBNAct(2 * fpn_dim, fpn_dim, 5)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        # levels: coarse to fine (P7 .. P2)
        x = levels[0]
        for i, up in enumerate(self.upsamplings):
            x = torch.cat([up(x), levels[i + 1]], dim=1)
        return self.fusion(x)
