"""The panoptic loss: bootstrapped cross-entropy, heatmap MSE, offset L1, point loss.

``total = ce_weight * BootstrapCE + mse_weight * MSE(heatmap) + l1_weight * L1(offsets)
+ pr_weight * PointCE`` with empanada's weights by default (1, 200, 0.01, 1):

* **bootstrapped cross-entropy**: per-pixel binary (one channel) or multi-class
  cross-entropy of the semantic logits, averaged over the ``top_k_percent`` hardest
  pixels of the batch;
* **heatmap MSE**: mean squared error of the center heatmap over every pixel;
* **offset L1**: absolute error of both offset channels, summed over instance pixels and
  divided by their number;
* **point loss**: PointRend's point logits against the labels sampled at the same points
  (nearest, ``align_corners=False``), plain cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tamale.training.config import LossConfig
from tamale.training.targets import BatchTargets

__all__ = ["bootstrapped_cross_entropy", "panoptic_loss", "point_labels"]


def _pixel_ce(logits: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(
            logits[:, 0], (semantic > 0).to(logits.dtype), reduction="none"
        )
    return F.cross_entropy(logits, semantic, reduction="none")


def bootstrapped_cross_entropy(
    logits: torch.Tensor, semantic: torch.Tensor, top_k_percent: float = 0.2
) -> torch.Tensor:
    """Mean cross-entropy of the hardest ``top_k_percent`` pixels.

    ``logits`` (N, C, H, W) with C = 1 (sigmoid, foreground = ``semantic > 0``) or
    C = classes + 1 (softmax); ``semantic`` (N, H, W) int64 channel indices.
    """
    losses = _pixel_ce(logits.float(), semantic).reshape(-1)
    if top_k_percent >= 1.0:
        return losses.mean()
    k = max(1, int(top_k_percent * losses.numel()))
    return torch.topk(losses, k, sorted=False)[0].mean()


def point_labels(semantic: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Labels (N, P) at PointRend's point coordinates ((x, y) in [0, 1]), nearest."""
    grid = (2.0 * coords.float() - 1.0).unsqueeze(2)  # (N, P, 1, 2)
    sampled = F.grid_sample(
        semantic[:, None].float(), grid, mode="nearest", padding_mode="border", align_corners=False
    )
    return sampled[:, 0, :, 0].round().long()


def panoptic_loss(
    out: dict[str, torch.Tensor], targets: BatchTargets, cfg: LossConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its terms (as floats, for the log).

    ``out`` is the train-mode model output (``sem_logits``, ``ctr_hmp``, ``offsets`` at
    input resolution, and with PointRend ``sem_points``, ``point_coords``).
    """
    sem = targets.semantic
    ce = bootstrapped_cross_entropy(out["sem_logits"], sem, cfg.top_k_percent)
    mse = F.mse_loss(out["ctr_hmp"].float(), targets.heatmap)
    mask = targets.things[:, None].float()
    n_things = mask.sum()
    l1 = ((out["offsets"].float() - targets.offsets).abs() * mask).sum() / n_things.clamp(min=1)
    total = cfg.ce_weight * ce + cfg.mse_weight * mse + cfg.l1_weight * l1
    terms = {
        "loss_ce": float(ce.detach()),
        "loss_mse": float(mse.detach()),
        "loss_l1": float(l1.detach()),
    }
    if "sem_points" in out:
        labels = point_labels(sem, out["point_coords"])
        pr = _pixel_ce(out["sem_points"].float().unsqueeze(-1), labels.unsqueeze(-1)).mean()
        total = total + cfg.pr_weight * pr
        terms["loss_point"] = float(pr.detach())
    terms["loss"] = float(total.detach())
    return total, terms
