"""Object centres from a center heatmap: threshold, non-maximum suppression, top-k.

The semantics are Panoptic-DeepLab's (and empanada's), kept exactly:

* values ``<= threshold`` are discarded (``F.threshold`` semantics: strictly greater
  survives);
* a pixel is a centre when it equals the maximum of the ``nms_kernel x nms_kernel``
  window around it ("centers min distance" in the dock; it is a window side in heatmap
  pixels, not a distance). For an even kernel the window reaches ``k/2`` pixels up and
  left and ``k/2 - 1`` down and right. Equal maxima inside one window are all kept;
* centres come out in raster order (row, then column).

``top_k`` (optional) keeps the ``k`` highest centres (ties: raster order) and returns
them, still in raster order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["find_centers"]


def find_centers(
    ctr_hmp: torch.Tensor,
    threshold: float = 0.1,
    nms_kernel: int = 3,
    top_k: int | None = None,
) -> list[torch.Tensor]:
    """Centres of every image of a batch.

    Parameters
    ----------
    ctr_hmp : Tensor, shape (N, 1, h, w)
        Center heatmaps.
    threshold : float
        Minimum heatmap value (exclusive) of a centre.
    nms_kernel : int
        Side of the non-maximum-suppression window, in heatmap pixels (>= 1).
    top_k : int, optional
        Keep at most this many centres per image (the highest).

    Returns
    -------
    list of Tensor
        One ``(K, 2)`` int64 tensor of ``(row, col)`` per image, in raster order, on
        the heatmap's device.
    """
    if ctr_hmp.ndim != 4 or ctr_hmp.shape[1] != 1:
        raise ValueError(f"center heatmap must have shape (N, 1, h, w), got {tuple(ctr_hmp.shape)}")
    if nms_kernel < 1:
        raise ValueError(f"nms_kernel must be at least 1, got {nms_kernel}")
    hmp = ctr_hmp.float()
    hmp = torch.where(hmp > threshold, hmp, torch.full_like(hmp, -1.0))
    pooled = F.max_pool2d(hmp, kernel_size=nms_kernel, stride=1, padding=nms_kernel // 2)
    if nms_kernel % 2 == 0:
        pooled = pooled[..., :-1, :-1]
    keep = (hmp == pooled) & (hmp > 0)
    out: list[torch.Tensor] = []
    for b in range(hmp.shape[0]):
        yx = torch.nonzero(keep[b, 0])
        if top_k is not None and yx.shape[0] > top_k:
            scores = hmp[b, 0][yx[:, 0], yx[:, 1]]
            # highest first; stable sort keeps raster order among equal scores
            order = torch.sort(-scores, stable=True).indices[:top_k]
            yx = yx[torch.sort(order).values]
        out.append(yx)
    return out
