"""Ortho-plane inference end to end (model stand-in)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DIV, reference_stack
from tamale.inference.config3d import Inference3DConfig
from tamale.inference.volume import segment_volume
from tamale.postprocess.consensus import consensus_labels, vote_semantic


@pytest.mark.parametrize("vote,permit", [(1, False), (2, False), (2, True), (3, True)])
def test_orthoplane_equals_consensus_of_the_three_stacks(
    panoptic_volume, echo, tmp_path, vote, permit
):
    config = Inference3DConfig(
        plane="ortho",
        median_slices=3,
        min_size=20,
        min_extent=2,
        label_divisor=DIV,
        vote_threshold=vote,
        permit_single_view=permit,
        return_panoptic=True,
    )
    stacks = [reference_stack(panoptic_volume, axis, 3, 20, 2) for axis in range(3)]
    expected = consensus_labels(
        *(s["mito"] for s in stacks),
        vote_threshold=vote,
        permit_single_view=permit,
        min_size=20,
        min_extent=2,
    )
    mem = segment_volume(panoptic_volume, echo, config, slab_size=8)
    np.testing.assert_array_equal(mem.labels["mito"], expected)
    np.testing.assert_array_equal(mem.labels["er"], vote_semantic(*(s["er"] for s in stacks), vote))
    assert mem.n_objects["mito"] == expected.max()
    # panoptic stacks: class * divisor + object, per plane
    for plane, s in zip(("xy", "xz", "yz"), stacks):
        pan = np.where(s["mito"] > 0, DIV + s["mito"], 0) + np.where(s["er"] > 0, 2 * DIV, 0)
        np.testing.assert_array_equal(mem.panoptic[plane], pan)
    zres = segment_volume(
        panoptic_volume, echo, config, out=tmp_path / "o.zarr", chunks=(8, 16, 16), slab_size=8
    )
    np.testing.assert_array_equal(zres.labels["mito"][:], expected)
    np.testing.assert_array_equal(zres.panoptic["yz"][:], mem.panoptic["yz"])


def test_single_voxel_objects_survive_linking_and_consensus(echo):
    # empanada's range join crashed on one-run objects
    vol = np.zeros((5, 12, 12), np.uint32)
    vol[2, 5, 5] = DIV + 1
    config = Inference3DConfig(
        plane="ortho",
        median_slices=1,
        min_size=0,
        min_extent=0,
        label_divisor=DIV,
        vote_threshold=3,
    )
    res = segment_volume(vol, echo, config)
    assert res.labels["mito"][2, 5, 5] == 1 and res.labels["mito"].sum() == 1
    res = segment_volume(vol, echo, config.model_copy(update={"plane": "yz"}))
    assert res.labels["mito"].sum() == 1
