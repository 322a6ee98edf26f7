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
    """Bilinear samples of ``features`` (N, C, H, W) at ``coords`` (N, P, 2), points first.

    ``coords`` are (x, y) in [0, 1] with 0 and 1 the outer pixel edges; samples
    outside the image count as zero. This is ``grid_sample(features, 2 *
    coords - 1, align_corners=False)`` (zero padding), computed as four row
    gathers from a channels-last view, which is much faster on CPU for a few
    thousand points. Returns float32 samples (N, P, C), whatever the features' dtype.
    """
    n, c, h, w = features.shape
    return sample_rows(features.permute(0, 2, 3, 1).reshape(n, h * w, c), h, w, coords)


def sample_rows(rows: torch.Tensor, h: int, w: int, coords: torch.Tensor) -> torch.Tensor:
    """:func:`point_sample` on features already laid out as rows (N, H*W, C)."""
    n, _, c = rows.shape
    p = coords.shape[1]
    coords = coords.float()
    x = coords[..., 0] * w - 0.5
    y = coords[..., 1] * h - 0.5
    x0 = torch.floor(x)
    y0 = torch.floor(y)
    fx = (x - x0).unsqueeze(2)
    fy = (y - y0).unsqueeze(2)
    # the four neighbours of every point, (N, P, 4): (y0, x0), (y0, x1), (y1, x0), (y1, x1)
    xs = x0.unsqueeze(2) + torch.tensor([0.0, 1.0, 0.0, 1.0], device=x.device)
    ys = y0.unsqueeze(2) + torch.tensor([0.0, 0.0, 1.0, 1.0], device=x.device)
    weights = torch.cat([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], dim=2)
    inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
    weights = weights * inside.to(weights.dtype)
    idx = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).long()
    idx = idx + (torch.arange(n, device=idx.device) * (h * w)).view(n, 1, 1)
    picked = rows.reshape(n * h * w, c).index_select(0, idx.reshape(-1)).view(n, p, 4, c)
    return torch.matmul(weights.unsqueeze(2), picked.float()).squeeze(2)


def uncertain_points_on_grid(
    unc: torch.Tensor, num_points: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices (N, P) and pixel-centre coordinates (N, P, 2) of the most uncertain pixels."""
    n, _, h, w = unc.shape
    num_points = min(h * w, num_points)
    idx = torch.topk(unc.reshape(n, h * w), k=num_points, dim=1)[1]
    xs = ((idx % w).float() + 0.5) / w
    ys = (torch.div(idx, w, rounding_mode="floor").float() + 0.5) / h
    return idx, torch.stack([xs, ys], dim=2)


def uncertain_points_with_randomness(
    coarse: torch.Tensor, num_points: int, oversample_ratio: int, importance_sample_ratio: float
) -> torch.Tensor:
    """Training point coordinates (N, P, 2): the most uncertain of a random oversample + random."""
    n = coarse.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    coords = torch.rand(n, num_sampled, 2, device=coarse.device)
    unc = uncertainty(point_sample(coarse, coords).transpose(1, 2))
    num_uncertain = int(importance_sample_ratio * num_points)
    idx = torch.topk(unc[:, 0, :], k=num_uncertain, dim=1)[1]
    coords = torch.gather(coords, 1, idx.unsqueeze(2).expand(-1, -1, 2))
    num_random = num_points - num_uncertain
    if num_random > 0:
        rand = torch.rand(n, num_random, 2, device=coarse.device)
        coords = torch.cat([coords, rand], dim=1)
    return coords


class PointHead(nn.Module):
    """Point MLP: ``num_fc`` 1x1 Conv1d + ReLU layers, the coarse logits re-appended to each input.

    The weights are Conv1d weights (as in the published models); the forward
    pass applies them as matrix products on points-first tensors.
    """

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
        """Point logits (N, P, K) from fine features (N, P, C) and coarse logits (N, P, K)."""
        x = torch.cat([fine, coarse], dim=2)
        for layer in self.fc_layers:
            conv = layer[0]
            x = torch.relu(F.linear(x, conv.weight.squeeze(2), conv.bias))
            x = torch.cat([x, coarse], dim=2)
        return F.linear(x, self.predictor.weight.squeeze(2), self.predictor.bias)


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
        return logits.transpose(1, 2), coords

    def render(self, coarse: torch.Tensor, features: torch.Tensor, steps: int) -> torch.Tensor:
        """Logits at ``2**steps`` times the resolution of ``coarse``."""
        logits = coarse
        n, c, hc, wc = coarse.shape
        coarse_rows = coarse.permute(0, 2, 3, 1).reshape(n, hc * wc, c)
        nf, cf, hf, wf = features.shape
        feature_rows = features.permute(0, 2, 3, 1).reshape(nf, hf * wf, cf)
        for _ in range(steps):
            logits = F.interpolate(logits, scale_factor=2.0, mode="bilinear", align_corners=False)
            n, c, h, w = logits.shape
            idx, coords = uncertain_points_on_grid(uncertainty(logits), self.subdivision_num_points)
            point_logits = self.point_head(
                sample_rows(feature_rows, hf, wf, coords), sample_rows(coarse_rows, hc, wc, coords)
            ).transpose(1, 2)
            logits = (
                logits.reshape(n, c, h * w)
                .scatter(2, idx.unsqueeze(1).expand(-1, c, -1), point_logits)
                .view(n, c, h, w)
            )
        return logits
