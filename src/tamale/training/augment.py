"""Batch augmentation on the training device.

One random affine map per sample — zoom (``scale``), rotation, horizontal and vertical
flips — takes the centre ``patch x patch`` of each window; it is applied with
``affine_grid`` + ``grid_sample`` (bilinear for the image, **nearest** for the labels,
zeros outside the window: the training mean for images, background for labels), so the
crop, the padding and every geometric change are one resampling. Brightness and contrast
change on the 0-1 intensity scale the model's norms refer to. Targets are built *after*
this, from the resampled labels (:mod:`tamale.training.targets`).

With augmentation off (or an identity draw) the centre crop is taken directly, so the
labels are the stored ones exactly. All random numbers come from a ``torch.Generator``
on the CPU (saved in checkpoints), so a run is reproducible whatever the device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tamale.registry.card import Norms
from tamale.training.config import AugmentConfig

__all__ = ["augment_batch", "center_crop"]


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size x size`` of (B, C, W, W) windows."""
    w = x.shape[-1]
    m = (w - size) // 2
    return x[..., m : m + size, m : m + size]


def _affine(
    n: int, patch: int, window: int, cfg: AugmentConfig, gen: torch.Generator
) -> torch.Tensor:
    """(n, 2, 3) maps from output to window coordinates (normalised, align_corners=False)."""
    lo, hi = cfg.scale
    scale = lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)
    angle = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * math.radians(cfg.rotation)
    if cfg.flips:
        fx = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()
        fy = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).double()
    else:
        fx = fy = torch.ones(n, dtype=torch.float64)
    cos, sin = torch.cos(angle), torch.sin(angle)
    k = (patch / window) / scale
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    # rows (x, y) of R(angle) @ diag(fx, fy), times the zoom
    theta[:, 0, 0] = k * cos * fx
    theta[:, 0, 1] = -k * sin * fy
    theta[:, 1, 0] = k * sin * fx
    theta[:, 1, 1] = k * cos * fy
    return theta.float()


def augment_batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    patch: int,
    cfg: AugmentConfig,
    norms: Norms,
    gen: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment windows and cut the patches out of them.

    Parameters
    ----------
    images : Tensor (B, 1, W, W) float32
        Normalised windows, on the training device.
    labels : Tensor (B, 1, W, W) float32
        Compact label ids, same device.
    patch : int
        Output side.
    cfg : AugmentConfig
    norms : Norms
        The model's norms (brightness and contrast act on the 0-1 scale).
    gen : torch.Generator
        CPU generator of every random draw.

    Returns
    -------
    images : Tensor (B, 1, patch, patch) float32
    labels : Tensor (B, patch, patch) int64
    """
    n, window = images.shape[0], images.shape[-1]
    if not cfg.enabled:
        return center_crop(images, patch), center_crop(labels, patch)[:, 0].round().long()
    theta = _affine(n, patch, window, cfg, gen).to(images.device)
    grid = F.affine_grid(theta, [n, 1, patch, patch], align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    lab = F.grid_sample(labels, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    if cfg.brightness > 0 or cfg.contrast > 0:
        alpha = 1 + (torch.rand(n, generator=gen) * 2 - 1) * cfg.contrast
        beta = (torch.rand(n, generator=gen) * 2 - 1) * cfg.brightness
        alpha = alpha.view(n, 1, 1, 1).to(images.device)
        beta = beta.view(n, 1, 1, 1).to(images.device)
        mean, std = float(norms.mean), float(norms.std)
        v01 = (out * std + mean) * alpha + beta
        out = (v01.clamp(0.0, 1.0) - mean) / std
    return out, lab[:, 0].round().long()
