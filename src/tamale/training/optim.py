"""AdamW without weight decay on biases and normalisation weights, and the schedule."""

from __future__ import annotations

import torch
from torch import nn

from tamale.training.config import OptimizerConfig

__all__ = ["make_optimizer", "make_scheduler"]


def make_optimizer(model: nn.Module, cfg: OptimizerConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters: weight decay on weight matrices and kernels
    only (parameters with more than one dimension), none on biases, batch-norm weights
    and the BiFPN fusion weights."""
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim > 1 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr)


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimizerConfig, iterations: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """One-cycle (warm-up to ``lr``, cosine annealing) over ``iterations``, or constant."""
    if cfg.schedule == "constant" or iterations < 2:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _step: 1.0)
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=iterations, pct_start=cfg.pct_start
    )
