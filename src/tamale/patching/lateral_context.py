"""Lateral-context (multiscale) patches for MicroSplit-style constructors.

For a patch of size ``ps`` at ``coords`` and ``L`` scales, scale ``k`` is the window of
size ``ps * 2**k`` centred on the patch centre (``coords + ps // 2``), shrunk back to
``ps`` by a factor ``2**k`` on every spatial axis. Scale 0 is the patch itself.

Windows reaching outside the image are filled by true image padding: ``"reflect"``
mirrors the image about its edge pixels (numpy's ``reflect``, repeated for windows
larger than the image) and ``"wrap"`` repeats the image periodically. Only the pixels
the largest window needs are read: at most ``min(ps * 2**(L-1), size)`` per axis (two
reads per axis when a wrapped window straddles the image border).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import numpy as np

from tamale.errors import TamaleInputError
from tamale.patching.image_stack import ImageStack

__all__ = ["extract_lateral_context", "padded_indices"]

PaddingMode = Literal["reflect", "wrap"]
Downsample = Literal["mean", "resize"]


def padded_indices(positions: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Image index that a (possibly outside) position reads under ``mode`` padding."""
    if mode == "wrap":
        return np.mod(positions, size)
    if size == 1:
        return np.zeros_like(positions)
    period = 2 * (size - 1)
    q = np.mod(positions, period)
    return np.where(q < size, q, period - q)


def check_multiscale(multiscale_count: int, padding_mode: str) -> None:
    """Validate the number of scales and the padding mode."""
    if not isinstance(multiscale_count, (int, np.integer)) or multiscale_count < 1:
        raise TamaleInputError(
            f"multiscale_count must be an int >= 1 (1 = no lateral context), got "
            f"{multiscale_count!r}"
        )
    if padding_mode not in ("reflect", "wrap"):
        raise TamaleInputError(f"padding_mode must be 'reflect' or 'wrap', got {padding_mode!r}")


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs ``[start, stop)`` of a sorted array of unique ints."""
    breaks = np.flatnonzero(np.diff(values) != 1) + 1
    return [(int(v[0]), int(v[-1]) + 1) for v in np.split(values, breaks)]


def extract_lateral_context(
    stack: ImageStack,
    sample_idx: int,
    channels: Sequence[int] | None,
    coords: Sequence[int],
    patch_size: Sequence[int],
    multiscale_count: int,
    padding_mode: PaddingMode = "reflect",
    downsample: Downsample = "mean",
) -> np.ndarray:
    """Multiscale patch, float32 of shape ``(C, L, *patch_size)``.

    Parameters
    ----------
    stack : ImageStack
        Where to read.
    sample_idx : int
        Sample of the stack.
    channels : sequence of int or None
        Channels to read (``None``: all).
    coords, patch_size : sequence of int
        The native patch (scale 0).
    multiscale_count : int
        Number of scales ``L`` (1: just the patch).
    padding_mode : {"reflect", "wrap"}
        Padding of windows reaching outside the image.
    downsample : {"mean", "resize"}
        ``"mean"`` averages ``2**k`` blocks (exact, cheap); ``"resize"`` uses
        scikit-image's anti-aliased bilinear resize (CAREamics' choice).
    """
    check_multiscale(multiscale_count, padding_mode)
    if downsample not in ("mean", "resize"):
        raise TamaleInputError(f"downsample must be 'mean' or 'resize', got {downsample!r}")
    spatial = stack.data_shape[2:]
    ps = [int(p) for p in patch_size]
    n_scales = int(multiscale_count)
    big = [p * 2 ** (n_scales - 1) for p in ps]
    centre = [int(c) + p // 2 for c, p in zip(coords, ps)]
    lo = [c - w // 2 for c, w in zip(centre, big)]
    inside = all(a >= 0 and a + w <= s for a, w, s in zip(lo, big, spatial))
    if inside:
        window = stack.read_box(sample_idx, channels, lo, [a + w for a, w in zip(lo, big)])
    else:
        mapped = [
            padded_indices(np.arange(a, a + w), s, padding_mode)
            for a, w, s in zip(lo, big, spatial)
        ]
        needed = [np.unique(m) for m in mapped]
        runs = [_runs(n) for n in needed]
        buffer = None
        for combo in itertools.product(*runs):
            block = stack.read_box(
                sample_idx, channels, [r[0] for r in combo], [r[1] for r in combo]
            )
            if buffer is None:
                buffer = np.empty((block.shape[0], *(len(n) for n in needed)), dtype=block.dtype)
            dst = tuple(
                slice(int(np.searchsorted(n, r[0])), int(np.searchsorted(n, r[0])) + r[1] - r[0])
                for n, r in zip(needed, combo)
            )
            buffer[(slice(None), *dst)] = block
        assert buffer is not None
        where = [np.searchsorted(n, m) for n, m in zip(needed, mapped)]
        window = buffer[np.ix_(np.arange(buffer.shape[0]), *where)]
    n_c = window.shape[0]
    out = np.empty((n_c, n_scales, *ps), dtype=np.float32)
    for k in range(n_scales):
        f = 2**k
        off = [(w // 2) - (p * f) // 2 for w, p in zip(big, ps)]
        sub = window[(slice(None), *(slice(o, o + p * f) for o, p in zip(off, ps)))]
        if k == 0:
            out[:, 0] = sub
        elif downsample == "mean":
            shape = [n_c]
            for p in ps:
                shape += [p, f]
            blocks = sub.astype(np.float32, copy=False).reshape(shape)
            out[:, k] = blocks.mean(axis=tuple(range(2, 2 + 2 * len(ps), 2)), dtype=np.float32)
        else:
            from skimage.transform import resize

            out[:, k] = resize(
                sub.astype(np.float32, copy=False),
                (n_c, *ps),
                order=1,
                anti_aliasing=True,
                preserve_range=True,
            )
    return out
