"""Counter-based randomness: every draw is a pure function of (seed, epoch, index).

A strategy or constructor never keeps a mutable generator. The random numbers for
dataset index ``i`` in epoch ``e`` are a hash of ``(seed, e, i, j)`` (SplitMix64
finaliser), so the same index gives the same patch whatever the call order, the
process or the DataLoader worker, and a new epoch gives new patches.

:func:`uniforms` works on Python ints (fast scalar path) and on ``uint64`` arrays
(vectorised path) with bit-identical results.
"""

from __future__ import annotations

import secrets
from typing import overload

import numpy as np

__all__ = ["new_seed", "rng_for", "stream_key", "uniforms"]

_M64 = 0xFFFFFFFFFFFFFFFF
_GOLDEN = 0x9E3779B97F4A7C15
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB
_TO_UNIT = 2.0**-53


@overload
def _mix(x: int) -> int: ...
@overload
def _mix(x: np.ndarray) -> np.ndarray: ...
def _mix(x):
    """SplitMix64 step; ``x`` is a Python int in [0, 2**64) or a uint64 array."""
    x = (x + _GOLDEN) & _M64
    x = ((x ^ (x >> 30)) * _C1) & _M64
    x = ((x ^ (x >> 27)) * _C2) & _M64
    return x ^ (x >> 31)


def new_seed() -> int:
    """A fresh 63-bit seed from the operating system's entropy."""
    return secrets.randbits(63)


def stream_key(seed: int, epoch: int, stream: int = 0) -> int:
    """Key of one random stream for one epoch (a Python int)."""
    return _mix(_mix(_mix(seed & _M64) ^ (epoch & _M64)) ^ (stream & _M64))


def uniforms(key: int, index, j: int):
    """The ``j``-th uniform number in [0, 1) of ``index`` under ``key``.

    ``index`` is a Python int (returns a float) or an integer array (returns a
    float64 array); both give the same values.
    """
    jj = (j * _GOLDEN) & _M64
    if isinstance(index, (int, np.integer)):
        h = _mix(_mix(key ^ (int(index) & _M64)) ^ jj)
        return (h >> 11) * _TO_UNIT
    idx = np.asarray(index).astype(np.uint64)
    h = _mix(_mix(idx ^ np.uint64(key)) ^ np.uint64(jj))
    return (h >> np.uint64(11)).astype(np.float64) * _TO_UNIT


def rng_for(seed: int, epoch: int, index: int) -> np.random.Generator:
    """A numpy Generator that depends only on ``(seed, epoch, index)``."""
    return np.random.default_rng([seed & _M64, epoch & _M64, index & _M64])
