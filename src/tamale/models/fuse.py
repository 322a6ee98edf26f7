"""Fold BatchNorm into the preceding convolution for inference.

Every tamale block registers a BatchNorm right after the convolution whose
output it normalises (see :mod:`tamale.models.layers`), so folding walks each
module's children in order and folds ``conv, bn`` pairs: the convolution gets
``w * g / sqrt(v + eps)`` and bias ``(b - m) * g / sqrt(v + eps) + beta``, the
BatchNorm becomes ``nn.Identity``. Outputs are unchanged up to float rounding.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

__all__ = ["fold_batchnorm", "fold_conv_bn"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)
_BNS = (nn.BatchNorm1d, nn.BatchNorm2d)


@torch.no_grad()
def fold_conv_bn(conv: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> None:
    """Fold ``bn`` into ``conv`` in place (``conv`` gains a bias)."""
    var = bn.running_var
    mean = bn.running_mean
    assert var is not None and mean is not None
    scale = (bn.weight if bn.affine else torch.ones_like(var)) / torch.sqrt(var + bn.eps)
    shift = bn.bias if bn.affine else torch.zeros_like(var)
    w = conv.weight
    if isinstance(conv, nn.ConvTranspose2d):
        if conv.groups != 1:
            raise ValueError("cannot fold BatchNorm into a grouped transposed convolution")
        w.mul_(scale.view(1, -1, *([1] * (w.ndim - 2))))
    else:
        w.mul_(scale.view(-1, *([1] * (w.ndim - 1))))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(mean)
    new_bias = (bias - mean) * scale + shift
    conv.bias = nn.Parameter(new_bias.to(w.dtype), requires_grad=w.requires_grad)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every ``conv → bn`` pair of ``model`` in place; returns ``model``.

    Use on eval-mode models only (the folded model has no BatchNorm to train).
    """
    for parent in list(model.modules()):
        names = list(parent._modules)
        for a, b in itertools.pairwise(names):
            conv, bn = parent._modules[a], parent._modules[b]
            if (
                isinstance(conv, _CONVS)
                and isinstance(bn, _BNS)
                and bn.running_mean is not None
                and bn.num_features == (conv.out_channels)
            ):
                fold_conv_bn(conv, bn)
                parent._modules[b] = nn.Identity()
    model.bn_folded = True  # type: ignore[assignment]
    return model
