"""Parameter counts per model part."""

from __future__ import annotations

from torch import nn

__all__ = ["count_parameters"]

_PARTS = {
    "encoder": ("encoder",),
    "decoders": (
        "p2_resample",
        "semantic_fpn",
        "semantic_decoder",
        "instance_fpn",
        "instance_decoder",
    ),
    "heads": ("semantic_head", "ins_center", "ins_xy"),
    "pointrend": ("semantic_pr",),
}


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameters of a model: total, trainable, per part and per top-level module.

    Returns a dict with ``total``, ``trainable`` (``requires_grad``),
    ``encoder``, ``decoders``, ``heads``, ``pointrend`` (0 when absent) and one
    entry per top-level child (``semantic_decoder``, ``ins_center``, ...).
    Shared parameters are counted once. Works on meta-device models.
    """
    counts: dict[str, int] = {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    per_child = {
        name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()
    }
    for part, children in _PARTS.items():
        counts[part] = sum(per_child.get(c, 0) for c in children)
    counts.update(per_child)
    return counts
