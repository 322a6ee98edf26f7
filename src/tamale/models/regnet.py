"""RegNetX and RegNetY encoders (Radosavovic et al. 2020) for one-channel images.

Stage widths and depths follow the paper's quantised linear rule from
``(depth, w_0, w_a, w_m, group_width)``; RegNetY adds squeeze-and-excitation
with a *global* average pool (empanada's version pooled 1x1, i.e. gated each
pixel on its own). Stages are ``stem`` (3x3 stride 2), ``stage1`` ..
``stage4`` (stride 2 each; ``stage4`` dilated instead when
``output_stride=16``); the forward pass returns the stage outputs at strides
4, 8, 16 and 32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["REGNET_CONFIGS", "RegNet", "RegNetConfig", "regnet", "regnet_widths"]


@dataclass(frozen=True)
class RegNetConfig:
    """Design-space parameters of one RegNet."""

    depth: int
    w_0: int
    w_a: float
    w_m: float
    group_width: int
    se_ratio: float = 0.0


# the published X and Y models of a few sizes (names: regnet{x,y}_{flops})
REGNET_CONFIGS: dict[str, RegNetConfig] = {
    "regnetx_400mf": RegNetConfig(22, 24, 24.48, 2.54, 16),
    "regnetx_800mf": RegNetConfig(16, 56, 35.73, 2.28, 16),
    "regnetx_1600mf": RegNetConfig(18, 80, 34.01, 2.25, 24),
    "regnety_400mf": RegNetConfig(16, 48, 27.89, 2.09, 8, 0.25),
    "regnety_800mf": RegNetConfig(14, 56, 38.84, 2.4, 16, 0.25),
    "regnety_1600mf": RegNetConfig(27, 48, 20.71, 2.65, 24, 0.25),
}


def regnet_widths(cfg: RegNetConfig) -> tuple[list[int], list[int], list[int]]:
    """Per-stage widths, depths and group widths of a RegNet design.

    Block widths grow linearly (``w_0 + w_a * j``), are snapped to powers of
    ``w_m`` times ``w_0`` and to multiples of 8; consecutive equal widths form
    a stage. Widths are then made divisible by the (capped) group width.
    """
    widths = []
    for j in range(cfg.depth):
        u = cfg.w_0 + cfg.w_a * j
        s = round(math.log(u / cfg.w_0) / math.log(cfg.w_m))
        w = cfg.w_0 * cfg.w_m**s
        widths.append(int(round(w / 8) * 8))
    stage_widths: list[int] = []
    stage_depths: list[int] = []
    for w in widths:
        if stage_widths and stage_widths[-1] == w:
            stage_depths[-1] += 1
        else:
            stage_widths.append(w)
            stage_depths.append(1)
    groups = [min(cfg.group_width, w) for w in stage_widths]
    # nearest multiple of the group width, halves rounded up, never 10% below
    adjusted = []
    for w, g in zip(stage_widths, groups):
        v = max(g, int(w + g / 2) // g * g)
        adjusted.append(v + g if v < 0.9 * w else v)
    return adjusted, stage_depths, groups


class SqueezeExcite(nn.Module):
    """Global average pool → 1x1 squeeze → ReLU → 1x1 excite → sigmoid gate."""

    def __init__(self, nin: int, nsqueeze: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.squeeze = nn.Conv2d(nin, nsqueeze, 1)
        self.act = nn.ReLU(inplace=True)
        self.excite = nn.Conv2d(nsqueeze, nin, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.excite(self.act(self.squeeze(self.pool(x)))))


class RegNetBlock(nn.Module):
    """X block (1x1, grouped 3x3, 1x1; bottleneck ratio 1), optionally with SE (Y block)."""

    def __init__(
        self, nin: int, nout: int, stride: int, group_width: int, se_ratio: float, dilation: int
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nin, nout, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(nout)
        self.conv2 = nn.Conv2d(
            nout,
            nout,
            3,
            stride,
            dilation,
            dilation=dilation,
            groups=nout // group_width,
            bias=False,
        )
        self.bn2 = nn.BatchNorm2d(nout)
        self.se = SqueezeExcite(nout, max(1, round(se_ratio * nin))) if se_ratio else None
        self.conv3 = nn.Conv2d(nout, nout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(nout)
        self.act = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or nin != nout:
            self.downsample = nn.Sequential(
                nn.Conv2d(nin, nout, 1, stride=stride, bias=False), nn.BatchNorm2d(nout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        if self.se is not None:
            out = self.se(out)
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.act(out + identity)


class RegNetStem(nn.Module):
    """3x3 stride-2 convolution, BN, ReLU."""

    def __init__(self, nin: int, nout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(nin, nout, 3, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(nout)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class RegNet(nn.Module):
    """A RegNet encoder with stages ``stem``, ``stage1`` .. ``stage4`` (see module docstring)."""

    stage_names = ("stem", "stage1", "stage2", "stage3", "stage4")

    def __init__(
        self, cfg: RegNetConfig, in_channels: int = 1, output_stride: int = 32, stem_width: int = 32
    ) -> None:
        super().__init__()
        if output_stride not in (16, 32):
            raise ValueError(f"output_stride must be 16 or 32, got {output_stride}")
        widths, depths, groups = regnet_widths(cfg)
        if len(widths) != 4:
            raise ValueError(f"RegNet design gives {len(widths)} stages, need 4")
        self.in_channels = in_channels
        self.output_stride = output_stride
        self.stem = RegNetStem(in_channels, stem_width)
        nin = stem_width
        self.widths: list[int] = []
        self.strides: list[int] = []
        stride_so_far = 2
        for i, (w, d, g) in enumerate(zip(widths, depths, groups), start=1):
            stride, dilation = 2, 1
            if i == 4 and output_stride == 16:
                stride, dilation = 1, 2
            blocks = []
            for k in range(d):
                blocks.append(
                    RegNetBlock(nin, w, stride if k == 0 else 1, g, cfg.se_ratio, dilation)
                )
                nin = w
            self.add_module(f"stage{i}", nn.Sequential(*blocks))
            stride_so_far *= stride
            self.widths.append(w)
            self.strides.append(stride_so_far)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        c3 = self.stage3(c2)
        c4 = self.stage4(c3)
        return [c1, c2, c3, c4]


def regnet(name: str, output_stride: int = 32, in_channels: int = 1) -> RegNet:
    """Build a RegNet encoder from :data:`REGNET_CONFIGS` by name."""
    return RegNet(REGNET_CONFIGS[name], in_channels=in_channels, output_stride=output_stride)
