"""Training targets for a batch, on its device: semantic channel, center heatmap, offsets.

The conventions are those of :func:`tamale.postprocess.make_targets` (and the tests check
that both give the same arrays): the centre of an instance is *its pixel* nearest to its
centroid (ties: first in raster order), the heatmap is the maximum of unit Gaussians of
``sigma`` pixels truncated at ``ceil(3 sigma)`` (every centre is exactly 1, neighbours
never merge), and offsets are ``(dy, dx)`` from each instance pixel to its centre (0
elsewhere). Everything is vectorised over every instance of the batch at once — one
``bincount``/``scatter_reduce`` pass over the pixels, no loop over objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["BatchTargets", "batch_targets"]


@dataclass
class BatchTargets:
    """Targets of a batch (all on the batch's device).

    Attributes
    ----------
    semantic : Tensor (B, H, W) int64
        Semantic channel of every pixel (0 background; ``i`` the i-th class).
    heatmap : Tensor (B, 1, H, W) float32
    offsets : Tensor (B, 2, H, W) float32
    things : Tensor (B, H, W) bool
        Pixels that belong to instances.
    centers : Tensor (K, 3) int64
        ``(sample, row, col)`` of every instance centre.
    """

    semantic: torch.Tensor
    heatmap: torch.Tensor
    offsets: torch.Tensor
    things: torch.Tensor
    centers: torch.Tensor


def batch_targets(labels: torch.Tensor, luts: torch.Tensor, sigma: float = 6.0) -> BatchTargets:
    """Targets from compact labels.

    Parameters
    ----------
    labels : Tensor (B, H, W) int64
        Compact ids per sample (0 = background).
    luts : Tensor (B, K + 1, 2) int64
        Per sample and id: semantic channel, instance flag.
    sigma : float
        Standard deviation of the centre Gaussians, in pixels.
    """
    device = labels.device
    b, h, w = labels.shape
    luts = luts.to(device)
    k1 = luts.shape[1]
    labels = labels.clamp(0, k1 - 1)
    flat_lut = luts.reshape(b * k1, 2)
    gid = (labels + (torch.arange(b, device=device) * k1).view(b, 1, 1)).reshape(-1)
    semantic = flat_lut[gid, 0].view(b, h, w)
    things = (flat_lut[gid, 1] > 0) & (labels.reshape(-1) > 0)

    heatmap = torch.zeros(b * h * w, device=device, dtype=torch.float32)
    offsets = torch.zeros(2, b * h * w, device=device, dtype=torch.float32)
    idx = torch.nonzero(things).squeeze(1)
    if idx.numel() == 0:
        return BatchTargets(
            semantic,
            heatmap.view(b, 1, h, w),
            offsets.view(2, b, h, w).transpose(0, 1).contiguous(),
            things.view(b, h, w),
            torch.zeros(0, 3, dtype=torch.long, device=device),
        )
    g = gid[idx]
    uniq, inv = torch.unique(g, return_inverse=True)
    n = uniq.numel()
    pix = idx % (h * w)
    ys = torch.div(pix, w, rounding_mode="floor").double()
    xs = (pix % w).double()
    counts = torch.bincount(inv, minlength=n).double()
    cy = torch.bincount(inv, weights=ys, minlength=n) / counts
    cx = torch.bincount(inv, weights=xs, minlength=n) / counts
    d2 = (ys - cy[inv]) ** 2 + (xs - cx[inv]) ** 2
    best = torch.full((n,), float("inf"), dtype=torch.float64, device=device)
    best = best.scatter_reduce(0, inv, d2, reduce="amin")
    # among the nearest pixels, the first in raster order (smallest flat index)
    cand = torch.where(d2 == best[inv], idx, torch.full_like(idx, b * h * w))
    first = torch.full((n,), b * h * w, dtype=torch.long, device=device)
    first = first.scatter_reduce(0, inv, cand, reduce="amin")
    c_sample = torch.div(first, h * w, rounding_mode="floor")
    c_pix = first % (h * w)
    c_y = torch.div(c_pix, w, rounding_mode="floor")
    c_x = c_pix % w

    # offsets of every instance pixel to its centre
    offsets[0, idx] = (c_y[inv].double() - ys).float()
    offsets[1, idx] = (c_x[inv].double() - xs).float()

    # heatmap: maximum of truncated Gaussians around the centres
    r = max(1, math.ceil(3 * sigma))
    d = torch.arange(-r, r + 1, device=device)
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    dy, dx = dy.reshape(1, -1), dx.reshape(1, -1)
    gauss = torch.exp(-(dy**2 + dx**2).double() / (2.0 * sigma**2)).float()
    py = c_y.view(-1, 1) + dy
    px = c_x.view(-1, 1) + dx
    inside = (py >= 0) & (py < h) & (px >= 0) & (px < w)
    target = (c_sample.view(-1, 1) * (h * w) + py * w + px)[inside]
    values = gauss.expand(n, -1)[inside]
    heatmap = heatmap.scatter_reduce(0, target, values, reduce="amax")
    return BatchTargets(
        semantic,
        heatmap.view(b, 1, h, w),
        offsets.view(2, b, h, w).transpose(0, 1).contiguous(),
        things.view(b, h, w),
        torch.stack([c_sample, c_y, c_x], dim=1),
    )
