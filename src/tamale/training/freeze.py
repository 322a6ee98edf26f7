"""Finetunable layers that really (un)freeze, batch-norm statistics included.

empanada froze parameters whose names contained ``encoder.stageN``, but its ResNet
stages are called ``layer1..layer4``: every choice froze the same set, and the frozen
layers' batch-norm running statistics kept changing in train mode. Here
:func:`freeze_stages` freezes by module (``encoder.stem``, ``encoder.stage1`` ..
``encoder.stage4``, for ResNet and RegNet alike, through
:func:`tamale.models.freeze_encoder`) and :func:`train_mode` puts the frozen stages'
batch-norm layers in eval mode after every ``model.train()``, so their statistics stay
exactly as they were.
"""

from __future__ import annotations

from torch import nn

from tamale.models.freeze import ENCODER_STAGES, freeze_encoder

__all__ = ["freeze_stages", "train_mode", "trainable_parameters"]


def freeze_stages(model: nn.Module, layers: str) -> list[nn.Module]:
    """Make only the chosen encoder stages (and everything after the encoder) trainable.

    Parameters
    ----------
    model : nn.Module
        A model whose ``encoder`` has stages ``stem``, ``stage1`` .. ``stage4``.
    layers : str
        ``none``, ``stage4``, ``stage3``, ``stage2``, ``stage1`` or ``all``.

    Returns
    -------
    list of nn.Module
        The frozen stages (pass them to :func:`train_mode`).
    """
    trainable = freeze_encoder(model, layers)
    encoder = model.encoder
    return [getattr(encoder, s) for s in ENCODER_STAGES if s not in trainable]


def train_mode(model: nn.Module, frozen: list[nn.Module]) -> None:
    """``model.train()``, with the batch-norm layers of ``frozen`` stages in eval mode."""
    model.train()
    for stage in frozen:
        for m in stage.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameters that receive gradients."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
