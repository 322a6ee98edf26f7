"""ResNet encoders (18/34/50 and a tiny test variant) for one-channel EM images.

Stages are named ``stem``, ``stage1`` .. ``stage4`` (not torchvision's
``layer1`` .. ``layer4``), like the RegNet encoders, so that finetuning can
freeze and unfreeze them by name. The forward pass returns the outputs of
``stage1`` .. ``stage4`` at strides 4, 8, 16 and 32 (16 for ``stage4`` when
``output_stride=16``: its stride is replaced by dilation 2 in every block).
Parameter layout and counts are those of torchvision's ResNet without the
classifier, with a one-channel stem (ResNet-50: 23,501,760 parameters).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ResNet", "resnet18", "resnet34", "resnet50", "resnet_tiny"]


def _downsample(nin: int, nout: int, stride: int) -> nn.Module | None:
    if stride == 1 and nin == nout:
        return None
    return nn.Sequential(nn.Conv2d(nin, nout, 1, stride=stride, bias=False), nn.BatchNorm2d(nout))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection."""

    expansion = 1

    def __init__(self, nin: int, planes: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        nout = planes * self.expansion
        self.conv1 = nn.Conv2d(nin, planes, 3, stride, dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.act = nn.ReLU(inplace=True)
        self.downsample = _downsample(nin, nout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.act(out + identity)


class Bottleneck(nn.Module):
    """1x1 → 3x3 (strided, torchvision's "v1.5") → 1x1 with a residual connection."""

    expansion = 4

    def __init__(self, nin: int, planes: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        nout = planes * self.expansion
        self.conv1 = nn.Conv2d(nin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, nout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(nout)
        self.act = nn.ReLU(inplace=True)
        self.downsample = _downsample(nin, nout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.act(out + identity)


class ResNetStem(nn.Module):
    """7x7 stride-2 convolution, BN, ReLU and a 3x3 stride-2 max-pool (stride 4 in all)."""

    def __init__(self, nin: int, nout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(nin, nout, 7, 2, 3, bias=False)
        self.bn = nn.BatchNorm2d(nout)
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))


class ResNet(nn.Module):
    """A ResNet encoder with stages ``stem``, ``stage1`` .. ``stage4``.

    Attributes
    ----------
    widths : list of int
        Output channels of ``stage1`` .. ``stage4``.
    strides : list of int
        Output strides of ``stage1`` .. ``stage4`` relative to the input.
    stage_names : tuple of str
        ``("stem", "stage1", "stage2", "stage3", "stage4")``.
    """

    stage_names = ("stem", "stage1", "stage2", "stage3", "stage4")

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        depths: tuple[int, int, int, int],
        planes: tuple[int, int, int, int] = (64, 128, 256, 512),
        stem_width: int = 64,
        in_channels: int = 1,
        output_stride: int = 32,
    ) -> None:
        super().__init__()
        if output_stride not in (16, 32):
            raise ValueError(f"output_stride must be 16 or 32, got {output_stride}")
        self.in_channels = in_channels
        self.output_stride = output_stride
        self.stem = ResNetStem(in_channels, stem_width)
        nin = stem_width
        self.widths: list[int] = []
        self.strides: list[int] = []
        stride_so_far = 4
        for i, (depth, p) in enumerate(zip(depths, planes), start=1):
            stride = 1 if i == 1 else 2
            dilation = 1
            if i == 4 and output_stride == 16:
                stride, dilation = 1, 2
            blocks = [block(nin, p, stride, dilation)]
            nin = p * block.expansion
            blocks += [block(nin, p, 1, dilation) for _ in range(depth - 1)]
            self.add_module(f"stage{i}", nn.Sequential(*blocks))
            stride_so_far *= stride
            self.widths.append(nin)
            self.strides.append(stride_so_far)
        self._init_weights()

    def _init_weights(self) -> None:
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


def resnet18(output_stride: int = 32, in_channels: int = 1) -> ResNet:
    """ResNet-18 (11.2 M parameters with one input channel)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), in_channels=in_channels, output_stride=output_stride)


def resnet34(output_stride: int = 32, in_channels: int = 1) -> ResNet:
    """ResNet-34 (21.3 M parameters with one input channel)."""
    return ResNet(BasicBlock, (3, 4, 6, 3), in_channels=in_channels, output_stride=output_stride)


def resnet50(output_stride: int = 32, in_channels: int = 1) -> ResNet:
    """ResNet-50 (23,501,760 parameters with one input channel)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), in_channels=in_channels, output_stride=output_stride)


def resnet_tiny(output_stride: int = 32, in_channels: int = 1) -> ResNet:
    """A four-stage ResNet with one basic block per stage and 8-64 channels (tests)."""
    return ResNet(
        BasicBlock,
        (1, 1, 1, 1),
        planes=(8, 16, 32, 64),
        stem_width=8,
        in_channels=in_channels,
        output_stride=output_stride,
    )
