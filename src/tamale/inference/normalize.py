"""Intensity normalisation of EM images for the networks.

Models carry ``norms`` (mean, std) measured on 8-bit training images in units of the
8-bit range (empanada's convention: MitoNet's are 0.57571 and 0.12765). tamale turns
every input into that 8-bit-like scale first, then standardises:

``uint8``
    ``v / 255`` — the card's norms apply as they were meant to.
every other integer type (``uint16``, ``int32``, ...) and floats
    robust percentiles: the 0.1 and 99.9 percentiles of the image (``lo``, ``hi``) map
    to 0 and 1, ``(v - lo) / (hi - lo)`` clipped to [0, 1]. This puts a 12-bit camera
    image stored as uint16, a signed int32 export or a float image in [0, 1] or
    [0, 255] on the scale the model was trained on. (Dividing by the dtype's maximum, as
    empanada does, leaves int32 and most uint16 images nearly constant: empty output.)
    A constant image maps to 0.

and the network input is ``(v01 - mean) / std``.

The percentiles are computed once per image (on at most about 4 million evenly strided
pixels), so all tiles of a tiled image share them; a stack in batch mode gets them per
slice, since each slice is an independent image. NaN or infinite values are refused
with a clear message (they would poison every convolution around them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tamale.errors import TamaleInputError
from tamale.registry.card import Norms

__all__ = ["PERCENTILES", "Normalizer", "check_finite", "make_normalizer"]

PERCENTILES = (0.1, 99.9)
"""Low and high percentiles mapped to 0 and 1 for non-uint8 images."""
_MAX_SAMPLES = 1 << 22


@dataclass(frozen=True)
class Normalizer:
    """Maps raw intensities to network input: ``((v - offset) * scale - mean) / std``.

    Attributes
    ----------
    offset, scale : float
        ``v01 = (v - offset) * scale`` (then clipped to [0, 1] when ``clip``).
    mean, std : float
        The model card's norms.
    clip : bool
        Whether ``v01`` is clipped to [0, 1] (percentile mode).
    description : str
        How the values were derived, for the result's metadata.
    """

    offset: float
    scale: float
    mean: float
    std: float
    clip: bool
    description: str

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """Normalised float32 copy of ``values``."""
        v = np.asarray(values, dtype=np.float32)
        v = (v - np.float32(self.offset)) * np.float32(self.scale)
        if self.clip:
            np.clip(v, 0.0, 1.0, out=v)
        v -= np.float32(self.mean)
        v /= np.float32(self.std)
        return v


def check_finite(image: np.ndarray) -> None:
    """Refuse float images holding NaN or infinite values."""
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        n_nan = int(np.isnan(image).sum())
        n_inf = int(np.isinf(image).sum())
        raise TamaleInputError(
            f"the image contains {n_nan} NaN and {n_inf} infinite value(s); replace them "
            "(e.g. with 0 or the image's median: numpy.nan_to_num) or crop them out, then run "
            "again"
        )


def _sample(image: np.ndarray) -> np.ndarray:
    step = max(1, int(np.ceil(np.sqrt(image.size / _MAX_SAMPLES))))
    if image.ndim >= 2 and step > 1:
        return np.asarray(image[..., ::step, ::step])
    return np.asarray(image)


def make_normalizer(image: np.ndarray, norms: Norms) -> Normalizer:
    """The normaliser for ``image`` (see the module docstring for the rules).

    Raises
    ------
    TamaleInputError
        For boolean, complex or non-numeric images, and NaN/inf in floats.
    """
    dtype = np.dtype(image.dtype)
    if dtype == np.bool_ or not (
        np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
    ):
        raise TamaleInputError(
            f"cannot segment an image of type {dtype}: use integer or float intensities"
        )
    mean, std = float(norms.mean), float(norms.std)
    if dtype == np.uint8:
        return Normalizer(0.0, 1.0 / 255.0, mean, std, False, "uint8 / 255")
    check_finite(np.asarray(image))
    sample = _sample(image).astype(np.float64)
    lo, hi = np.percentile(sample, PERCENTILES) if sample.size else (0.0, 1.0)
    lo, hi = float(lo), float(hi)
    scale = 1.0 / (hi - lo) if hi > lo else 0.0
    return Normalizer(
        lo,
        scale,
        mean,
        std,
        True,
        f"{dtype}: percentiles {PERCENTILES[0]}-{PERCENTILES[1]} ({lo:.6g}-{hi:.6g}) -> 0-1",
    )
