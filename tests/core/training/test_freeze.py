"""Finetunable layers really freeze what they say, for ResNet and RegNet encoders, and the
frozen stages' batch-norm statistics stay put (empanada: 'stage1'..'stage4' froze nothing
different from 'none' on ResNets, and frozen BN statistics kept updating)."""

from __future__ import annotations

import pytest
import torch

from tamale.models import build_model
from tamale.models.freeze import ENCODER_STAGES
from tamale.training import LossConfig, OptimizerConfig
from tamale.training.freeze import freeze_stages, train_mode, trainable_parameters
from tamale.training.losses import panoptic_loss
from tamale.training.optim import make_optimizer
from tamale.training.targets import batch_targets

CHOICES = ["none", "stage4", "stage3", "stage2", "stage1", "all"]
MODELS = {
    "resnet": lambda: build_model("tiny"),
    "regnet": lambda: build_model("tiny", encoder="regnetx_400mf"),
}


def _stage_params(model) -> dict[str, int]:
    return {
        s: sum(p.numel() for p in getattr(model.encoder, s).parameters()) for s in ENCODER_STAGES
    }


@pytest.mark.parametrize("kind", list(MODELS))
def test_trainable_parameter_counts(kind):
    model = MODELS[kind]()
    total = sum(p.numel() for p in model.parameters())
    per_stage = _stage_params(model)
    encoder = sum(per_stage.values())
    counts = {}
    for choice in CHOICES:
        freeze_stages(model, choice)
        counts[choice] = trainable_parameters(model)
    assert counts["none"] == total - encoder
    assert counts["all"] == total
    assert counts["stage4"] == total - encoder + per_stage["stage4"]
    assert counts["stage3"] == counts["stage4"] + per_stage["stage3"]
    assert counts["stage2"] == counts["stage3"] + per_stage["stage2"]
    assert counts["stage1"] == counts["stage2"] + per_stage["stage1"]
    assert len(set(counts.values())) == len(CHOICES)  # every choice differs


def _one_step(model, frozen, seed=0):
    torch.manual_seed(seed)
    x = torch.randn(2, 1, 64, 64)
    labels = torch.zeros(2, 64, 64, dtype=torch.long)
    labels[:, 10:30, 15:35] = 1
    labels[:, 40:55, 40:60] = 2
    luts = torch.tensor([[[0, 0], [1, 1], [1, 1]]] * 2)
    targets = batch_targets(labels, luts)
    opt = make_optimizer(model, OptimizerConfig(lr=1e-2))
    train_mode(model, frozen)
    loss, _ = panoptic_loss(model(x), targets, LossConfig())
    opt.zero_grad()
    loss.backward()
    opt.step()


@pytest.mark.parametrize("kind", list(MODELS))
@pytest.mark.parametrize("choice", ["none", "stage3", "all"])
def test_a_step_changes_exactly_the_trainable_stages(kind, choice):
    torch.manual_seed(0)
    model = MODELS[kind]()
    frozen = freeze_stages(model, choice)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _one_step(model, frozen)
    after = model.state_dict()
    frozen_names = {s for s in ENCODER_STAGES if getattr(model.encoder, s) in frozen}
    for key, value in after.items():
        if key.endswith("num_batches_tracked"):
            continue
        parts = key.split(".")
        stage = parts[1] if parts[0] == "encoder" else None
        changed = not torch.equal(before[key], value)
        if stage in frozen_names:
            # weights AND batch-norm running statistics of frozen stages are untouched
            assert not changed, f"{key} changed although {stage} is frozen ({choice})"
        elif "running_mean" in key or (key.endswith("weight") and value.ndim > 1):
            assert changed, f"{key} did not change although it trains ({choice})"
    if choice == "none":
        assert frozen_names == set(ENCODER_STAGES)
    if choice == "all":
        assert not frozen


def test_stage_names_are_those_of_the_encoders():
    for make in MODELS.values():
        model = make()
        assert all(hasattr(model.encoder, s) for s in ENCODER_STAGES)
        assert not any(name.startswith("encoder.layer") for name, _ in model.named_parameters())
