"""PointRend semantic head (Kirillov et al. 2020), as used by MitoNet.

Evaluation ("rendering"): starting from coarse logits at stride 4, each
subdivision step upsamples the current logits 2x (bilinear,
align_corners=False), picks the ``subdivision_num_points`` most uncertain
pixels (binary: ``-|logit|``; multi-class: second-best minus best logit),
samples the *coarse* logits and the fine decoder features at those pixel
centres, runs a small point MLP and writes its logits back. Two steps bring
stride-4 logits to input resolution; each further step doubles the output
size (used to undo input downsampling). The number of points per step is
fixed, whatever the image size.

Training: ``train_num_points`` points are drawn, ``oversample_ratio`` times
more at random, of which the ``importance_sample_ratio`` most uncertain are
kept and the rest replaced by uniform random points; the point logits and
their normalised ``(x, y)`` coordinates in [0, 1] go to the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PointHead", "PointRendSemSegHead", "point_sample", "uncertainty"]


def uncertainty(logits: torch.Tensor) -> torch.Tensor:
    """Uncertainty per location, shape (N, 1, ...): higher is more uncertain."""
    if logits.shape[1] == 1:
        return -logits.abs()
    top2 = torch.topk(logits, k=2, dim=1)[0]
    return (top2[:, 1] - top2[:, 0]).unsqueeze(1)


def point_sample(features: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``features`` (N, C, H, W) at ``coords`` (N, P, 2) as (x, y) in [0, 1].

    Returns (N, C, P); align_corners=False, so 0 and 1 are the outer pixel edges.
    """
    grid = (2.0 * coords - 1.0).unsqueeze(2)
    return F.grid_sample(features, grid, mode="bilinear", align_corners=False).squeeze(3)


def uncertain_points_on_grid(
    unc: torch.Tensor, num_points: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices (N, P) and pixel-centre coordinates (N, P, 2) of the most uncertain pixels."""
    n, _, h, w = unc.shape
    num_points = min(h * w, num_points)
    idx = torch.topk(unc.reshape(n, h * w), k=num_points, dim=1)[1]
    xs = ((idx % w).to(unc.dtype) + 0.5) / w
    ys = (torch.div(idx, w, rounding_mode="floor").to(unc.dtype) + 0.5) / h
    return idx, torch.stack([xs, ys], dim=2)


def uncertain_points_with_randomness(
    coarse: torch.Tensor, num_points: int, oversample_ratio: int, importance_sample_ratio: float
) -> torch.Tensor:
    """Training point coordinates (N, P, 2): the most uncertain of a random oversample + random."""
    n = coarse.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    coords = torch.rand(n, num_sampled, 2, device=coarse.device, dtype=coarse.dtype)
    unc = uncertainty(point_sample(coarse, coords))
    num_uncertain = int(importance_sample_ratio * num_points)
    idx = torch.topk(unc[:, 0, :], k=num_uncertain, dim=1)[1]
    coords = torch.gather(coords, 1, idx.unsqueeze(2).expand(-1, -1, 2))
    num_random = num_points - num_uncertain
    if num_random > 0:
        rand = torch.rand(n, num_random, 2, device=coarse.device, dtype=coarse.dtype)
        coords = torch.cat([coords, rand], dim=1)
    return coords


class PointHead(nn.Module):
    """Point MLP: ``num_fc`` 1x1 Conv1d + ReLU layers, the coarse logits re-appended to each input."""

    def __init__(self, nin: int, num_classes: int, fc_dim: int, num_fc: int = 3) -> None:
        super().__init__()
        layers = []
        dim_in = nin + num_classes
        for _ in range(num_fc):
            layers.append(nn.Sequential(nn.Conv1d(dim_in, fc_dim, 1), nn.ReLU(inplace=True)))
            dim_in = fc_dim + num_classes
        self.fc_layers = nn.ModuleList(layers)
        self.predictor = nn.Conv1d(dim_in, num_classes, 1)
        for layer in self.fc_layers:
            nn.init.kaiming_normal_(layer[0].weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer[0].bias)
        nn.init.normal_(self.predictor.weight, std=0.001)
        nn.init.zeros_(self.predictor.bias)

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        x = torch.cat([fine, coarse], dim=1)
        for layer in self.fc_layers:
            x = torch.cat([layer(x), coarse], dim=1)
        return self.predictor(x)


class PointRendSemSegHead(nn.Module):
    """Point-based rendering of semantic logits (see module docstring)."""

    def __init__(
        self,
        nin: int,
        num_classes: int,
        num_fc: int = 3,
        train_num_points: int = 1024,
        oversample_ratio: int = 3,
        importance_sample_ratio: float = 0.75,
        subdivision_num_points: int = 8192,
    ) -> None:
        super().__init__()
        self.point_head = PointHead(nin, num_classes, nin, num_fc)
        self.train_num_points = train_num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.subdivision_num_points = subdivision_num_points

    def sample_train_points(
        self, coarse: torch.Tensor, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Point logits (N, C, P) and their coordinates (N, P, 2) for the point loss."""
        with torch.no_grad():
            coords = uncertain_points_with_randomness(
                coarse, self.train_num_points, self.oversample_ratio, self.importance_sample_ratio
            )
        logits = self.point_head(point_sample(features, coords), point_sample(coarse, coords))
        return logits, coords

    def render(self, coarse: torch.Tensor, features: torch.Tensor, steps: int) -> torch.Tensor:
        """Logits at ``2**steps`` times the resolution of ``coarse``."""
        logits = coarse
        for _ in range(steps):
            logits = F.interpolate(logits, scale_factor=2.0, mode="bilinear", align_corners=False)
            n, c, h, w = logits.shape
            idx, coords = uncertain_points_on_grid(uncertainty(logits), self.subdivision_num_points)
            point_logits = self.point_head(
                point_sample(features, coords), point_sample(coarse, coords)
            )
            logits = (
                logits.reshape(n, c, h * w)
                .scatter(2, idx.unsqueeze(1).expand(-1, c, -1), point_logits)
                .view(n, c, h, w)
            )
        return logits
