"""3D inference with a real (tiny, random-weight) network through the 2D pipeline's steps."""

from __future__ import annotations

import numpy as np
import pytest

from tamale.inference import Inference2DConfig, infer_2d
from tamale.inference.config3d import Inference3DConfig
from tamale.inference.volume import segment_volume
from tamale.synthetic import synthetic_em_3d

# random weights give probabilities within 1e-4 of 0.5 and a flat centre heatmap: these
# thresholds turn them into a few dozen objects per volume, enough to exercise everything
LIVELY = dict(confidence_thr=0.49996, center_confidence_thr=0.0, min_size=0, min_extent=0)


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    return synthetic_em_3d((12, 48, 64), seed=0).image


def test_median_one_xy_equals_2d_inference_slice_by_slice(tiny_model, volume):
    config = Inference3DConfig(median_slices=1, **LIVELY)
    res = segment_volume(volume, tiny_model, config)
    fg3d = res.labels["mitochondria"] > 0
    cfg2d = Inference2DConfig(
        batch_mode=True, confidence_thr=LIVELY["confidence_thr"], center_confidence_thr=0.0
    )
    fg2d = infer_2d(volume, tiny_model, cfg2d).labels > 0
    assert fg3d.any()
    np.testing.assert_array_equal(fg3d, fg2d)


def test_tiled_slices_equal_tiled_2d_inference(tiny_model):
    volume = synthetic_em_3d((4, 96, 128), seed=2).image
    # 64-pixel tiles overlapping by 32: 2x3 tiles per slice
    tiling = dict(tile_size=64, tile_overlap=32)
    config = Inference3DConfig(median_slices=1, **tiling, **LIVELY)
    res = segment_volume(volume, tiny_model, config)
    cfg2d = Inference2DConfig(
        batch_mode=True,
        confidence_thr=LIVELY["confidence_thr"],
        center_confidence_thr=0.0,
        **tiling,
    )
    fg2d = infer_2d(volume, tiny_model, cfg2d).labels > 0
    np.testing.assert_array_equal(res.labels["mitochondria"] > 0, fg2d)
    # with a median filter too (tile by tile), and the same answer in slabs
    config = config.model_copy(update={"median_slices": 3})
    whole = segment_volume(volume, tiny_model, config)
    slabs = segment_volume(volume, tiny_model, config, slab_size=2)
    np.testing.assert_array_equal(whole.labels["mitochondria"], slabs.labels["mitochondria"])


def test_cluster_and_zarr_equal_single_process(tiny_model, volume, tmp_path):
    pytest.importorskip("distributed")
    config = Inference3DConfig(median_slices=3, batch_size=2, **LIVELY)
    single = segment_volume(volume, tiny_model, config)
    assert single.n_objects["mitochondria"] > 3
    clustered = segment_volume(
        volume,
        tiny_model,
        config,
        out=tmp_path / "c.zarr",
        scheduler="local",
        n_workers=2,
        processes=False,
        slab_size=4,
        chunks=(4, 16, 16),
    )
    np.testing.assert_array_equal(
        clustered.labels["mitochondria"][:], single.labels["mitochondria"]
    )


@pytest.mark.parametrize(
    "update",
    [
        {"downsampling": 2},
        {"fine_boundaries": True},
        {"semantic_only": True},
        {"plane": "yz"},
        {"plane": "ortho", "return_panoptic": True},
    ],
)
def test_2d_parameters_apply(tiny_model, volume, update):
    config = Inference3DConfig(median_slices=3, **LIVELY).model_copy(update=update)
    res = segment_volume(volume, tiny_model, config)
    labels = res.labels["mitochondria"]
    assert labels.shape == volume.shape and labels.dtype == np.uint32
    if update.get("semantic_only"):
        assert set(np.unique(labels)) <= {0, 1}
    if "return_panoptic" in update:
        assert set(res.panoptic) == {"xy", "xz", "yz"}


def test_quantized_runs_or_explains(tiny_model, volume):
    config = Inference3DConfig(use_quantized=True, use_gpu=False, **LIVELY)
    try:
        res = segment_volume(volume[:4], tiny_model, config)
    except ValueError as exc:  # TamaleInputError: no quantized backend or model
        assert "quantized" in str(exc)
    else:
        assert res.labels["mitochondria"].shape == (4, *volume.shape[1:])


def test_unknown_model(volume):
    with pytest.raises(ValueError, match="no model named"):
        segment_volume(volume, "no-such-model", Inference3DConfig())
