"""Slabs on a real Dask LocalCluster (2 workers x 1 thread) give the single-process result."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DIV
from tamale.inference.config3d import Inference3DConfig
from tamale.inference.volume import segment_volume

pytest.importorskip("distributed")

CFG = Inference3DConfig(median_slices=3, min_size=20, min_extent=2, label_divisor=DIV)


def same_up_to_permutation(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


@pytest.mark.parametrize("plane,to_zarr", [("xy", True), ("ortho", False)])
def test_local_cluster_equals_single_process(tmp_path, panoptic_volume, echo, plane, to_zarr):
    config = CFG.model_copy(update={"plane": plane})
    single = segment_volume(panoptic_volume, echo, config)
    events = []
    out = tmp_path / "c.zarr" if to_zarr else None
    clustered = segment_volume(
        panoptic_volume,
        echo,
        config,
        out=out,
        scheduler="local",
        n_workers=2,
        processes=False,
        slab_size=4,
        progress=events.append,
    )
    for name in ("mito", "er"):
        got = np.asarray(clustered.labels[name][:])
        assert same_up_to_permutation(got, single.labels[name])
        np.testing.assert_array_equal(got, single.labels[name])  # in fact identical
    assert clustered.metadata["executor"].startswith("Dask scheduler")
    assert any("on 2 workers" in e.message for e in events)
    assert clustered.metadata["workers_used"]  # the slabs really ran on the cluster's workers
