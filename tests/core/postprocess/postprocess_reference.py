"""A straightforward (slow, loop-based) implementation of the reference post-processing.

Written from the algorithm's description (Panoptic-DeepLab post-processing as empanada's
2D inference runs it, then its connected-component step), one pixel and one object at a
time, to check tamale's vectorised implementation exactly. Only for small test images.
"""

from __future__ import annotations

import numpy as np
from skimage.measure import label as sk_label


def find_centers(hmp: np.ndarray, threshold: float, kernel: int, top_k: int | None = None):
    """Centres (row, col) in raster order: > threshold and equal to the window maximum."""
    h, w = hmp.shape
    hm = np.where(hmp > threshold, hmp, -1.0).astype(np.float32)
    before = kernel // 2
    after = kernel // 2 if kernel % 2 else kernel // 2 - 1
    centers = []
    for y in range(h):
        for x in range(w):
            v = hm[y, x]
            if v <= 0:
                continue
            window = hm[max(0, y - before) : y + after + 1, max(0, x - before) : x + after + 1]
            if v == window.max():
                centers.append((y, x))
    if top_k is not None and len(centers) > top_k:
        scores = [hm[y, x] for y, x in centers]
        best = sorted(range(len(centers)), key=lambda i: (-scores[i], i))[:top_k]
        centers = [centers[i] for i in sorted(best)]
    return centers


def group_pixels(centers, offsets: np.ndarray, step: int) -> np.ndarray:
    """1 + index of the nearest centre for every grid point (first on ties)."""
    _, h, w = offsets.shape
    ids = np.zeros((h, w), dtype=np.int64)
    if not centers:
        return ids
    for i in range(h):
        for j in range(w):
            ly = np.float32(i * step) + offsets[0, i, j]
            lx = np.float32(j * step) + offsets[1, i, j]
            best, best_d = 0, np.inf
            for k, (cy, cx) in enumerate(centers):
                d = np.hypot(float(cy * step) - float(ly), float(cx * step) - float(lx))
                if d < best_d:
                    best, best_d = k, d
            ids[i, j] = best + 1
    return ids


def postprocess(
    sem_probs: np.ndarray,
    ctr_hmp: np.ndarray,
    offsets: np.ndarray,
    *,
    class_ids: list[int],
    things: set[int],
    stride: int,
    downsampling: int = 1,
    confidence_thr: float = 0.5,
    center_thr: float = 0.1,
    nms_kernel: int = 3,
    top_k: int | None = None,
    label_divisor: int = 10000,
    stuff_area: int = 64,
    semantic_only: bool = False,
    force_connected: bool = True,
) -> np.ndarray:
    """Panoptic labels of one image (sem_probs (C, H, W), ctr_hmp (h, w), offsets (2, h, w))."""
    c, height, width = sem_probs.shape
    if c == 1:
        sem_idx = (sem_probs[0] >= confidence_thr).astype(np.int64)
    else:
        sem_idx = np.argmax(sem_probs, axis=0)
    sem = np.asarray([0, *class_ids])[sem_idx]  # class ids
    thing_list = [] if semantic_only else sorted(things)

    # instance cells on the grid, nearest upsampling, crop
    if thing_list:
        centers = find_centers(ctr_hmp, center_thr, nms_kernel, top_k)
        grid = group_pixels(centers, offsets, stride)
        scale = stride * downsampling
        cells = np.zeros((height, width), dtype=np.int64)
        for y in range(height):
            for x in range(width):
                cells[y, x] = grid[y // scale, x // scale]
    else:
        cells = np.zeros((height, width), dtype=np.int64)

    is_thing = np.isin(sem, thing_list)
    ins = np.where(is_thing, cells, 0)

    pan = np.zeros((height, width), dtype=np.int64)
    tracker: dict[int, int] = {}
    for ins_id in np.unique(ins):
        if ins_id == 0:
            continue
        mask = (ins == ins_id) & is_thing
        if not mask.any():
            continue
        values, counts = np.unique(sem[mask], return_counts=True)
        cls = int(values[np.argmax(counts)])  # most frequent, lowest on ties
        tracker[cls] = tracker.get(cls, 0) + 1
        if tracker[cls] >= label_divisor:
            raise OverflowError(cls)
        pan[mask] = cls * label_divisor + tracker[cls]
    for cls in np.unique(sem):
        if cls in thing_list or cls == 0:
            continue
        mask = (sem == cls) & (ins == 0)
        if mask.sum() >= stuff_area:
            pan[mask] = cls * label_divisor

    if force_connected:
        for cls in thing_list:
            lo, hi = cls * label_divisor, (cls + 1) * label_divisor
            inst = np.where((pan > lo) & (pan < hi), pan, 0)
            pieces = sk_label(inst)  # full connectivity, background 0
            if pieces.max() >= label_divisor:
                raise OverflowError(cls)
            pan[pieces > 0] = lo + pieces[pieces > 0]
    return pan.astype(np.uint32)
