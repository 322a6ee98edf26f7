"""Exact mask coverage of image-space boxes, with the mask at any resolution.

A mask of shape ``M`` over an image of shape ``N`` (per spatial axis) gives each mask
pixel the image box ``[m * N / M, (m + 1) * N / M)``. Coverage of an image box is the
area (in image pixels) of its intersection with the True mask pixels. It is computed
from a summed-area table of the mask, at mask resolution, with integer arithmetic in
"fine units" (``M / gcd(N, M)`` per image pixel), so threshold tests are exact for any
integer or non-integer scale. Memory is that of the mask; nothing is built at image
resolution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from tamale.errors import TamaleInputError

__all__ = ["MaskCoverage"]


class MaskCoverage:
    """Coverage of image boxes by a (lower-resolution) boolean mask.

    Parameters
    ----------
    mask : array-like of bool
        The mask over the image's spatial axes (read once, at its own resolution).
    image_shape : sequence of int
        Spatial shape of the image the mask covers.
    """

    def __init__(self, mask: np.ndarray, image_shape: Sequence[int]) -> None:
        mask = np.asarray(mask)
        if mask.ndim != len(image_shape):
            raise TamaleInputError(
                f"the mask has {mask.ndim} dimensions but the image has {len(image_shape)} "
                f"spatial axes {tuple(image_shape)}: give one mask axis per image spatial axis"
            )
        if any(m < 1 for m in mask.shape):
            raise TamaleInputError(f"the mask is empty (shape {mask.shape})")
        self.image_shape = tuple(int(n) for n in image_shape)
        self.mask_shape = tuple(int(m) for m in mask.shape)
        g = [math.gcd(n, m) for n, m in zip(self.image_shape, self.mask_shape)]
        self.unit = [m // gg for m, gg in zip(self.mask_shape, g)]  # fine units per image px
        self.width = [n // gg for n, gg in zip(self.image_shape, g)]  # fine units per mask px
        self.n_true = int(np.count_nonzero(mask))
        fine_total = math.prod(n * u for n, u in zip(self.image_shape, self.unit))
        self.exact = fine_total < 2**62
        dtype = np.int64 if self.exact else np.float64
        sat = np.zeros(tuple(m + 1 for m in self.mask_shape), dtype=dtype)
        inner = sat[tuple(slice(1, None) for _ in self.mask_shape)]
        inner[...] = mask
        for axis in range(inner.ndim):
            np.cumsum(inner, axis=axis, out=inner)  # in place: memory is one table
        self._sat = sat

    @property
    def fine_area(self) -> int:
        """Fine units per image pixel of area."""
        return math.prod(self.unit)

    def threshold(self, min_pixels: float | Fraction) -> int:
        """Smallest fine-unit coverage meeting ``coverage >= min_pixels`` image pixels."""
        return math.ceil(Fraction(min_pixels) * self.fine_area)

    def to_pixels(self, fine: np.ndarray) -> np.ndarray:
        """Fine-unit coverage as image pixels (float)."""
        return np.asarray(fine) / self.fine_area

    def _axis_terms(self, axis: int, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, u, w, m = (
            self.image_shape[axis],
            self.unit[axis],
            self.width[axis],
            self.mask_shape[axis],
        )
        t = np.clip(np.asarray(ends, dtype=np.int64), 0, n) * u
        q = np.minimum(t // w, m - 1)
        r = t - q * w
        return q, w - r, r

    def coverage_grid(self, starts: Sequence[np.ndarray], size: Sequence[int]) -> np.ndarray:
        """Fine-unit coverage of every box on a grid of starts.

        Parameters
        ----------
        starts : sequence of 1D int arrays
            Box starts per axis (image pixels; may lie outside the image).
        size : sequence of int
            Box size per axis.

        Returns
        -------
        ndarray of int64, shape ``(len(starts[0]), len(starts[1]), ...)``
        """
        acc = self._sat
        for axis, (s, p) in enumerate(zip(starts, size)):
            s = np.asarray(s, dtype=np.int64)
            shape = [1] * acc.ndim
            shape[axis] = len(s)
            qb, w0b, w1b = self._axis_terms(axis, s + int(p))
            qa, w0a, w1a = self._axis_terms(axis, s)
            acc = (
                np.take(acc, qb, axis) * w0b.reshape(shape)
                + np.take(acc, qb + 1, axis) * w1b.reshape(shape)
                - np.take(acc, qa, axis) * w0a.reshape(shape)
                - np.take(acc, qa + 1, axis) * w1a.reshape(shape)
            )
        return acc

    def coverage_points(self, starts: np.ndarray, size: Sequence[int]) -> np.ndarray:
        """Fine-unit coverage of boxes at arbitrary starts.

        Parameters
        ----------
        starts : ndarray of int, shape (K, ndim)
            Box starts (image pixels).
        size : sequence of int
            Box size per axis.

        Returns
        -------
        ndarray of int64, shape (K,)
        """
        starts = np.asarray(starts, dtype=np.int64).reshape(-1, len(self.image_shape))
        d = starts.shape[1]
        index, weight = [], None
        for axis in range(d):
            qa, w0a, w1a = self._axis_terms(axis, starts[:, axis])
            qb, w0b, w1b = self._axis_terms(axis, starts[:, axis] + int(size[axis]))
            # four (index, weight) terms per axis: +F(b) and -F(a), each bilinear in the SAT
            idx = np.stack([qb, qb + 1, qa, qa + 1])
            w = np.stack([w0b, w1b, -w0a, -w1a])
            shape = [1] * d + [len(starts)]
            shape[axis] = 4
            index.append(idx.reshape(shape))
            w = w.reshape(shape)
            weight = w if weight is None else weight * w
        assert weight is not None
        values = self._sat[tuple(index)] * weight
        return values.reshape(-1, len(starts)).sum(axis=0)
