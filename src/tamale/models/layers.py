"""Small building blocks shared by encoders, decoders and heads.

Convention used by :func:`tamale.models.fuse.fold_batchnorm` and by the
empanada converter: a ``BatchNorm`` registered *immediately after* a
convolution in the same parent module normalises that convolution's output
(``conv → bn`` with nothing in between). Every block here follows it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ConvBNAct",
    "SeparableConvBNAct",
    "make_act",
    "resize_to",
]


def make_act(name: str | None) -> nn.Module:
    """An activation module by name (``relu``, ``silu`` or None for identity)."""
    if name is None:
        return nn.Identity()
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "silu":
        return nn.SiLU(inplace=True)
    raise ValueError(f"unknown activation {name!r}")


class ConvBNAct(nn.Module):
    """``conv`` (no bias) → ``bn`` → ``act``; a 1x1 or k x k convolution."""

    def __init__(
        self,
        nin: int,
        nout: int,
        kernel_size: int = 1,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        act: str | None = "relu",
    ) -> None:
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(
            nin, nout, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=False
        )
        self.bn = nn.BatchNorm2d(nout)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class SeparableConvBNAct(nn.Module):
    """Depthwise k x k conv ``dw`` → pointwise 1x1 conv ``pw`` → ``bn`` → ``act`` (no biases)."""

    def __init__(self, nin: int, nout: int, kernel_size: int = 3, act: str | None = "relu") -> None:
        super().__init__()
        padding = (kernel_size - 1) // 2
        self.dw = nn.Conv2d(nin, nin, kernel_size, padding=padding, groups=nin, bias=False)
        self.pw = nn.Conv2d(nin, nout, 1, bias=False)
        self.bn = nn.BatchNorm2d(nout)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.pw(self.dw(x))))


class ConvTransposeBNAct(nn.Module):
    """2x upsampling: transposed conv (kernel 2, stride 2, no bias) → ``bn`` → ``act``."""

    def __init__(self, nin: int, nout: int, act: str | None = "relu") -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(nin, nout, 2, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(nout)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


def resize_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``x`` to the spatial size of ``like`` (align_corners=True)."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=True)
