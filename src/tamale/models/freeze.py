"""Choose which encoder stages train when finetuning."""

from __future__ import annotations

from torch import nn

from tamale.errors import TamaleInputError

__all__ = ["ENCODER_STAGES", "freeze_encoder"]

ENCODER_STAGES = ("stem", "stage1", "stage2", "stage3", "stage4")
_CHOICES = ("none", "stage4", "stage3", "stage2", "stage1", "all")


def freeze_encoder(model: nn.Module, trainable: str = "none") -> list[str]:
    """Freeze the encoder except its last stages (empanada's "finetunable layers").

    Parameters
    ----------
    model : nn.Module
        A model with an ``encoder`` whose stages are named ``stem``,
        ``stage1`` .. ``stage4``.
    trainable : str
        ``"none"`` (whole encoder frozen), ``"stageN"`` (stages N..4 train),
        or ``"all"``. Decoders and heads always train.

    Returns
    -------
    list of str
        The encoder stages left trainable.
    """
    if trainable not in _CHOICES:
        raise TamaleInputError(
            f"finetunable layers must be one of {', '.join(_CHOICES)}, got {trainable!r}"
        )
    encoder = getattr(model, "encoder", None)
    if encoder is None or not all(hasattr(encoder, s) for s in ENCODER_STAGES):
        raise TamaleInputError("this model has no encoder with stages stem, stage1 .. stage4")
    if trainable == "all":
        train_stages = list(ENCODER_STAGES)
    elif trainable == "none":
        train_stages = []
    else:
        train_stages = list(ENCODER_STAGES[ENCODER_STAGES.index(trainable) :])
    for p in model.parameters():
        p.requires_grad_(True)
    for stage in ENCODER_STAGES:
        for p in getattr(encoder, stage).parameters():
            p.requires_grad_(stage in train_stages)
    return train_stages
