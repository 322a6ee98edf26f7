"""Panoptic-DeepLab decoder: ASPP on the deepest features, then low-level fusion.

Layout (and parameter count) of the MitoNet Panoptic-DeepLab decoder: ASPP with
a 1x1 branch, three dilated 3x3 branches and an image-pooling branch (1x1
conv + ReLU, no BN), concatenated and projected to ``aspp_channels`` (1x1 conv,
BN, ReLU, dropout); then, for each low-level stage, a 1x1 projection of that
stage's features (conv, BN, ReLU), bilinear upsampling (align_corners=True) of
the running features, concatenation and a 5x5 depthwise-separable conv + BN +
ReLU to ``decoder_channels``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tamale.models.layers import ConvBNAct, SeparableConvBNAct, resize_to

__all__ = ["ASPP", "PanopticDeepLabDecoder"]


class ASPPPooling(nn.Module):
    """Image pooling branch: global average, 1x1 conv (no BN), ReLU, broadcast back."""

    def __init__(self, nin: int, nout: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(nin, nout, 1, bias=False)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv(self.pool(x)))
        # bilinear upsampling of a 1x1 map is a broadcast
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=True)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (branches in ``convs``, then ``project``)."""

    def __init__(
        self,
        nin: int,
        nout: int,
        rates: tuple[int, int, int] = (2, 4, 6),
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        branches: list[nn.Module] = [ConvBNAct(nin, nout, 1)]
        branches += [ConvBNAct(nin, nout, 3, dilation=r) for r in rates]
        branches.append(ASPPPooling(nin, nout))
        self.convs = nn.ModuleList(branches)
        self.project = ConvBNAct(len(branches) * nout, nout, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.project(torch.cat([conv(x) for conv in self.convs], dim=1)))


class PanopticDeepLabDecoder(nn.Module):
    """ASPP + low-level fusion; returns features at the finest low-level stage's stride.

    Parameters
    ----------
    nin : int
        Channels of the deepest encoder features.
    decoder_channels : int
        Output channels.
    low_level_stages : list of int
        Encoder stages (1-4) fused in order, e.g. ``[1]`` (stride 4).
    low_level_channels : list of int
        Channels of those stages' features.
    low_level_project : list of int
        Channels they are projected to (e.g. ``[32]``; the instance decoder uses
        ``ins_ratio`` times this).
    atrous_rates : tuple of int
        ASPP dilation rates.
    aspp_channels : int, optional
        ASPP width (defaults to ``decoder_channels``).
    aspp_dropout : float
        Dropout after the ASPP projection (training only).
    """

    def __init__(
        self,
        nin: int,
        decoder_channels: int,
        low_level_stages: list[int],
        low_level_channels: list[int],
        low_level_project: list[int],
        atrous_rates: tuple[int, int, int] = (2, 4, 6),
        aspp_channels: int | None = None,
        aspp_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        aspp_channels = aspp_channels or decoder_channels
        self.aspp = ASPP(nin, aspp_channels, atrous_rates, aspp_dropout)
        self.low_level_stages = list(low_level_stages)
        project, fuse = [], []
        running = aspp_channels
        for nlow, nproj in zip(low_level_channels, low_level_project):
            project.append(ConvBNAct(nlow, nproj, 1))
            fuse.append(SeparableConvBNAct(running + nproj, decoder_channels, 5))
            running = decoder_channels
        self.project = nn.ModuleList(project)
        self.fuse = nn.ModuleList(fuse)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = self.aspp(features[-1])
        for stage, proj, fuse in zip(self.low_level_stages, self.project, self.fuse):
            low = proj(features[stage - 1])
            x = fuse(torch.cat([resize_to(x, low), low], dim=1))
        return x
