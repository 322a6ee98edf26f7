"""Shared pieces of the patching tests (hypothesis settings, brute-force references)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# modest example counts: the whole patching suite must stay well under a minute on 2 cores
FAST = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def shapes_and_patch(draw, ndim=None, max_cells=5):
    """(spatial shape, patch size) with every axis at least one patch long."""
    d = draw(st.sampled_from([2, 3])) if ndim is None else ndim
    ps = tuple(draw(st.integers(1, 6 if d == 3 else 9)) for _ in range(d))
    shape = tuple(draw(st.integers(p, p * max_cells + p - 1)) for p in ps)
    return shape, ps


def brute_allowed_starts(shape, ps, excluded_cells):
    """Bool array over starts [0, s - ps]: the patch avoids every excluded cell."""
    axes = [np.arange(s - p + 1) for s, p in zip(shape, ps)]
    out = np.ones([len(a) for a in axes], dtype=bool)
    for cell in excluded_cells:
        hit = np.ones_like(out)
        for i, (a, p, g) in enumerate(zip(axes, ps, cell)):
            lo, hi = g * p, (g + 1) * p
            touch = (a < hi) & (a + p > lo)
            shape_i = [1] * len(ps)
            shape_i[i] = len(a)
            hit &= touch.reshape(shape_i)
        out &= ~hit
    return out


def all_cells(grid):
    return list(itertools.product(*(range(g) for g in grid)))
