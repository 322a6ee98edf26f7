"""Grouping of pixels to their nearest predicted centre.

Each grid point ``(i, j)`` of the offset map stands for the model-input pixel
``(i*step, j*step)``; it votes for the location ``(i*step + dy, j*step + dx)`` and joins
the centre nearest to that location (centres are scaled by ``step`` too). Ids are
``1 + index`` of the centre in the order given (raster order from
:func:`~tamale.postprocess.centers.find_centers`); equal distances go to the lower index.
This is exactly Panoptic-DeepLab's rule.

Speed: instead of measuring every pixel against every centre (O(pixels x centres)), the
vote locations are bucketed into square cells, and each cell keeps only the centres that
can be nearest to some point inside it: a centre whose distance to the cell exceeds the
smallest "farthest-corner" distance of any centre can never win there. Every pixel is
then compared with its cell's few candidates. The result is identical to the brute-force
search (candidates are a superset of the winners, ties included, with a margin for
rounding); the cost is O(pixels x candidates + cells x centres). All of it is tensor
code on the input's device, with no Python loop over pixels or centre pairs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["group_pixels", "nearest_center"]

# pixels compared at once (bounds peak memory of the distance matrices)
_CHUNK_ELEMENTS = 1 << 22
# below this many centres a direct search is as fast as building the cells
_DIRECT_MAX_CENTERS = 8


def _direct(points: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centre for each point (brute force, chunked)."""
    n, k = points.shape[0], centers.shape[0]
    out = torch.empty(n, dtype=torch.long, device=points.device)
    chunk = max(1, _CHUNK_ELEMENTS // max(k, 1))
    cy, cx = centers[:, 0], centers[:, 1]
    for s in range(0, n, chunk):
        p = points[s : s + chunk]
        d2 = (p[:, 0:1] - cy[None, :]) ** 2 + (p[:, 1:2] - cx[None, :]) ** 2
        out[s : s + chunk] = torch.argmin(d2, dim=1)
    return out


def _candidate_table(
    centers: torch.Tensor, origin: torch.Tensor, cell: float, ny: int, nx: int
) -> torch.Tensor:
    """For each cell, the indices (ascending) of centres that can be nearest inside it.

    Returns an int64 tensor of shape (ny * nx, M); unused slots hold ``K`` (a sentinel
    centre at infinity).
    """
    k = centers.shape[0]
    dev, dt = centers.device, centers.dtype
    y0 = origin[0] + cell * torch.arange(ny, device=dev, dtype=dt)
    x0 = origin[1] + cell * torch.arange(nx, device=dev, dtype=dt)
    cy, cx = centers[:, 0], centers[:, 1]
    # per axis: distance from each centre to each cell's interval, and to its far end
    dy_lo = (y0[:, None] - cy[None, :]).clamp(min=0) + (cy[None, :] - (y0[:, None] + cell)).clamp(
        min=0
    )  # (ny, K)
    dx_lo = (x0[:, None] - cx[None, :]).clamp(min=0) + (cx[None, :] - (x0[:, None] + cell)).clamp(
        min=0
    )  # (nx, K)
    dy_hi = torch.maximum(
        (cy[None, :] - y0[:, None]).abs(), (cy[None, :] - y0[:, None] - cell).abs()
    )
    dx_hi = torch.maximum(
        (cx[None, :] - x0[:, None]).abs(), (cx[None, :] - x0[:, None] - cell).abs()
    )
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // max(nx * k, 1))
    tables = []
    for r0 in range(0, ny, rows_per_chunk):
        r1 = min(ny, r0 + rows_per_chunk)
        dmin2 = dy_lo[r0:r1, None, :] ** 2 + dx_lo[None, :, :] ** 2  # (r, nx, K)
        dmax2 = dy_hi[r0:r1, None, :] ** 2 + dx_hi[None, :, :] ** 2
        bound = dmax2.amin(dim=2, keepdim=True)  # (r, nx, 1)
        # margin for float rounding: candidates must be a superset of the winners
        bound = (bound.sqrt() * (1 + 1e-4) + 1e-3) ** 2
        cand = (dmin2 <= bound).reshape(-1, k)
        m = max(1, int(cand.sum(dim=1).max()))
        # candidate indices first, in ascending order: stable sort of "not candidate"
        order = torch.sort((~cand).to(torch.uint8), dim=1, stable=True).indices[:, :m]
        valid = torch.gather(cand, 1, order)
        tables.append(torch.where(valid, order, torch.full_like(order, k)))
    width = max(t.shape[1] for t in tables)
    return torch.cat([F.pad(t, (0, width - t.shape[1]), value=k) for t in tables])


def nearest_center(points: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centre for every point (lowest index on ties).

    Parameters
    ----------
    points : Tensor, shape (P, 2)
        Query locations (float).
    centers : Tensor, shape (K, 2), K >= 1
        Centre locations (same dtype and device).

    Returns
    -------
    Tensor of int64, shape (P,)
    """
    k = centers.shape[0]
    if k == 0:
        raise ValueError("nearest_center needs at least one centre")
    if k <= _DIRECT_MAX_CENTERS or points.shape[0] == 0:
        return _direct(points, centers)
    dev, dt = points.device, points.dtype
    finite = torch.isfinite(points).all(dim=1)
    if not bool(finite.all()):
        # NaN/inf votes cannot be bucketed; they join centre 0 like argmin over NaN would
        safe = torch.where(finite[:, None], points, centers[0:1].expand_as(points))
        idx = nearest_center(safe, centers)
        return torch.where(finite, idx, torch.zeros_like(idx))
    lo = torch.minimum(points.amin(dim=0), centers.amin(dim=0))
    hi = torch.maximum(points.amax(dim=0), centers.amax(dim=0))
    extent = (hi - lo).clamp(min=1.0)
    area = float(extent[0] * extent[1])
    # about 4 cells per centre, but at most 2^16 cells
    cell = max(math.sqrt(area / (4.0 * k)), math.sqrt(area / 65536.0), 1e-3)
    ny = math.floor(float(extent[0]) / cell) + 1
    nx = math.floor(float(extent[1]) / cell) + 1
    table = _candidate_table(centers, lo, cell, ny, nx)  # (ny*nx, M)
    m = table.shape[1]
    padded = torch.cat([centers, torch.full((1, 2), float("inf"), device=dev, dtype=dt)])
    out = torch.empty(points.shape[0], dtype=torch.long, device=dev)
    chunk = max(1, _CHUNK_ELEMENTS // m)
    for s in range(0, points.shape[0], chunk):
        p = points[s : s + chunk]
        iy = ((p[:, 0] - lo[0]) / cell).floor().long().clamp(0, ny - 1)
        ix = ((p[:, 1] - lo[1]) / cell).floor().long().clamp(0, nx - 1)
        cand = table[iy * nx + ix]  # (p, M), ascending centre index, sentinel K last
        c = padded[cand]  # (p, M, 2)
        d2 = (p[:, None, 0] - c[..., 0]) ** 2 + (p[:, None, 1] - c[..., 1]) ** 2
        best = torch.argmin(d2, dim=1)
        out[s : s + chunk] = torch.gather(cand, 1, best[:, None])[:, 0]
    return out


def group_pixels(centers: torch.Tensor, offsets: torch.Tensor, step: int = 1) -> torch.Tensor:
    """Instance id (1 + centre index) of every grid point.

    Parameters
    ----------
    centers : Tensor of int64, shape (K, 2)
        Centres in grid coordinates, as returned by ``find_centers``.
    offsets : Tensor, shape (2, h, w)
        ``(dy, dx)`` offsets in model-input pixels.
    step : int
        Model-input pixels between grid points (4 at 1/4 resolution, 1 at full).

    Returns
    -------
    Tensor of int64, shape (h, w)
        0 everywhere when there are no centres.
    """
    _, h, w = offsets.shape
    dev = offsets.device
    if centers.shape[0] == 0:
        return torch.zeros((h, w), dtype=torch.long, device=dev)
    off = offsets.float()
    ys = torch.arange(h, device=dev, dtype=torch.float32) * step
    xs = torch.arange(w, device=dev, dtype=torch.float32) * step
    loc_y = ys[:, None] + off[0]
    loc_x = xs[None, :] + off[1]
    points = torch.stack([loc_y.reshape(-1), loc_x.reshape(-1)], dim=1)
    ctr = centers.to(torch.float32) * step
    return (nearest_center(points, ctr) + 1).reshape(h, w)
