"""Patch specifications and counter-based randomness."""

from __future__ import annotations

import pickle

import numpy as np
from _patching_helpers import FAST
from hypothesis import given
from hypothesis import strategies as st

from tamale.patching import (
    PatchSpecs,
    TileSpecs,
    UncorrelatedPatchSpecs,
    is_tile_specs,
    is_uncorrelated_specs,
)
from tamale.patching._random import rng_for, stream_key, uniforms


def test_specs_are_frozen_hashable_and_convert_to_dicts():
    p = PatchSpecs(1, 2, (3, 4), (8, 8))
    assert p.as_dict() == {"data_idx": 1, "sample_idx": 2, "coords": (3, 4), "patch_size": (8, 8)}
    assert p.slices() == (slice(3, 11), slice(4, 12))
    assert hash(p) == hash(PatchSpecs(1, 2, (3, 4), (8, 8)))
    assert pickle.loads(pickle.dumps(p)) == p
    t = TileSpecs(0, 0, (0, 6), (8, 8), (0, 1), (7, 6), (0, 7), 12)
    u = UncorrelatedPatchSpecs(0, 0, (0, 0), (8, 8), 0, (0, 1), (0, 0), ((0, 0), (5, 5)))
    assert is_tile_specs(t) and not is_tile_specs(p) and is_uncorrelated_specs(u)
    assert t.as_dict()["stitch_coords"] == (0, 7)


@FAST
@given(
    st.integers(0, 2**63 - 1),
    st.integers(0, 10**6),
    st.lists(st.integers(0, 2**40), min_size=1, max_size=20),
    st.integers(0, 5),
)
def test_scalar_and_vector_draws_are_identical(seed, epoch, indices, j):
    key = stream_key(seed, epoch)
    vec = uniforms(key, np.asarray(indices), j)
    scal = [uniforms(key, i, j) for i in indices]
    assert vec.tolist() == scal
    assert all(0.0 <= u < 1.0 for u in scal)


def test_draws_look_uniform_and_independent_across_streams():
    key = stream_key(1, 0)
    u = uniforms(key, np.arange(100_000), 0)
    v = uniforms(key, np.arange(100_000), 1)
    assert abs(u.mean() - 0.5) < 0.005 and abs(np.corrcoef(u, v)[0, 1]) < 0.01
    counts = np.histogram(u, bins=10, range=(0, 1))[0]
    assert counts.min() > 9500
    assert rng_for(1, 2, 3).random() == rng_for(1, 2, 3).random() != rng_for(1, 3, 3).random()


def test_importing_the_package_is_light():
    import json
    import subprocess
    import sys

    code = (
        "import sys, json, tamale.patching; "
        "print(json.dumps(sorted(m for m in ('torch', 'zarr', 'dask', 'skimage', 'tifffile') "
        "if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
