"""Min area, the card's recommended parameters, and how the CLI layers its parameters."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from ideal_model import ideal_engine

from tamale.errors import TamaleInputError
from tamale.inference import Inference2DConfig, infer_2d, recommended_config
from tamale.inference.config import layered_config
from tamale.inference.config3d import Inference3DConfig
from tamale.inference.volume import segment_volume
from tamale.postprocess import drop_small_instances
from tamale.registry import ModelCard, get_card


def test_drop_small_instances_keeps_stuff_background_and_large_objects():
    div = 1000
    labels = np.zeros((6, 8), np.uint32)
    labels[0, :3] = 1001  # 3 px instance of class 1
    labels[1:4, :4] = 1002  # 12 px
    labels[5, :2] = 2000  # 2 px of a stuff class: never dropped
    labels[4, 6:] = 3001  # 2 px instance of class 3, which is not a thing class here
    out = drop_small_instances(labels, {1}, div, 4)
    expected = labels.copy()
    expected[0, :3] = 0
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.uint32
    assert drop_small_instances(labels, {1}, div, 0) is labels
    np.testing.assert_array_equal(
        drop_small_instances(labels, {1, 3}, div, 3), np.where(labels == 3001, 0, labels)
    )
    # huge, sparse ids (counted by sorting, not by a bincount of the largest id)
    big_div = 2**30
    sparse = np.where(labels > 0, (labels // div) * big_div + labels % div, 0).astype(np.int64)
    np.testing.assert_array_equal(
        drop_small_instances(sparse, {1}, big_div, 4), np.where(expected > 0, sparse, 0)
    )


def test_min_area_drops_small_instances_in_2d_and_renumbers():
    ids = np.zeros((64, 64), np.uint8)
    ids[4:24, 4:24] = 1  # 400 px
    ids[40:46, 40:46] = 2  # 36 px
    ids[30:50, 4:24] = 3  # 400 px
    engine = ideal_engine()
    full = infer_2d(ids, engine, Inference2DConfig(label_divisor=1000)).labels
    assert sorted(np.unique(full)) == [0, 1001, 1002, 1003]
    cut = infer_2d(ids, engine, Inference2DConfig(label_divisor=1000, min_area=37)).labels
    assert sorted(np.unique(cut)) == [0, 1001, 1002]  # renumbered 1..N
    np.testing.assert_array_equal(cut > 0, (ids == 1) | (ids == 3))
    # 36 pixels are kept at min area 36 (strictly smaller ones are dropped)
    same = infer_2d(ids, engine, Inference2DConfig(label_divisor=1000, min_area=36)).labels
    np.testing.assert_array_equal(same, full)


def test_min_area_applies_to_each_slice_in_3d():
    from tamale.inference.slice_model import LabelEchoFactory

    div = 10_000  # the echo model reads panoptic ids (class * div + object) from the volume
    vol = np.zeros((4, 64, 64), np.uint32)
    vol[:, 4:24, 4:24] = div + 1
    vol[1, 40:44, 40:44] = div + 2  # 16 px in one slice only
    config = Inference3DConfig(
        median_slices=1, min_size=0, min_extent=0, min_area=0, label_divisor=div
    )
    kept = segment_volume(vol, LabelEchoFactory(label_divisor=div), config)
    assert sum(kept.n_objects.values()) == 2
    config = config.model_copy(update={"min_area": 17})
    cut = segment_volume(vol, LabelEchoFactory(label_divisor=div), config)
    assert sum(cut.n_objects.values()) == 1
    (labels,) = cut.labels.values()
    np.testing.assert_array_equal(np.asarray(labels) > 0, vol == div + 1)


def _card(**inference) -> ModelCard:
    return ModelCard(
        name="rec",
        architecture="tiny",
        weights={"uri": "w.safetensors"},
        classes=[{"id": 1, "name": "mito", "kind": "instance"}],
        inference=inference,
    )


def test_recommended_config_applies_the_cards_known_keys_only():
    card = _card(downsampling=2, min_area=300, min_size=900, centers_min_distance=7)
    two = recommended_config(card)
    assert (two.downsampling, two.min_area, two.centers_min_distance) == (2, 300, 7)
    assert not hasattr(two, "min_size")  # a 3D parameter is not forced onto 2D
    three = recommended_config(card, Inference3DConfig(plane="yz", median_slices=5))
    assert (three.min_size, three.plane, three.median_slices) == (900, "yz", 5)
    assert recommended_config(_card()) == Inference2DConfig()


def test_invalid_recommendations_name_the_model():
    with pytest.raises(TamaleInputError, match=r"(?s)recommended by model 'rec'.*power of two"):
        recommended_config(_card(downsampling=3))


def test_cli_layers_defaults_card_yaml_options(make_tiny_model, tmp_path):
    name = make_tiny_model(
        name="recommends", inference={"downsampling": 2, "min_area": 50, "confidence_thr": 0.4}
    )
    assert get_card(name).inference["min_area"] == 50
    cfg = layered_config(Inference2DConfig, name)
    assert (cfg.downsampling, cfg.min_area, cfg.confidence_thr) == (2, 50, 0.4)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"min_area": 80, "downsampling": 4}))
    cfg = layered_config(Inference2DConfig, name, path, {"downsampling": 1})
    assert (cfg.downsampling, cfg.min_area, cfg.confidence_thr) == (1, 80, 0.4)
    cfg3 = layered_config(Inference3DConfig, name, None, {"min_size": 10})
    assert (cfg3.downsampling, cfg3.min_area, cfg3.min_size) == (2, 50, 10)
    with pytest.raises(TamaleInputError, match="no-such-model"):
        layered_config(Inference2DConfig, "no-such-model")


def test_3d_inference_takes_the_2d_precision_choice(tiny_model):
    """Half precision and int8 are chosen for 3D exactly as for 2D (one implementation)."""
    import torch

    from tamale.inference.engine import choose_precision
    from tamale.inference.model_factory import model_factory
    from tamale.inference.volume_source import open_volume

    vol = np.random.default_rng(0).integers(0, 255, (3, 64, 64), dtype=np.uint8)
    card = get_card(tiny_model)
    for cfg in (
        Inference3DConfig(median_slices=1, half_precision=True, use_gpu=False),
        Inference3DConfig(median_slices=1, use_quantized=True, use_gpu=False),
        Inference3DConfig(median_slices=1, use_gpu=False),
    ):
        want, _ = choose_precision(cfg, torch.device("cpu"), card)
        segmenter = model_factory(tiny_model, cfg, open_volume(vol)).build()
        assert segmenter.engine.precision == want
        if not cfg.half_precision and not cfg.use_quantized:
            assert want == "float32"
        result = segment_volume(vol, tiny_model, cfg)
        (labels,) = result.labels.values()
        assert np.asarray(labels).shape == (3, 64, 64)


def test_3d_inference_reports_a_precision_fallback_like_2d(tiny_model, monkeypatch):
    """`--half` on a CPU without native bfloat16: the run says it used float32 (a
    warning event, shown by the CLI's progress line, and VolumeResult.messages)."""
    import tamale.inference.engine as engine_mod
    from tamale.progress import ProgressEvent

    real = engine_mod._models_attr
    monkeypatch.setattr(
        engine_mod,
        "_models_attr",
        lambda name: (
            (lambda device: (False, "no bf16 here")) if name == "bfloat16_available" else real(name)
        ),
    )
    vol = np.random.default_rng(0).integers(0, 255, (3, 64, 64), dtype=np.uint8)
    events: list[ProgressEvent] = []
    cfg = Inference3DConfig(median_slices=1, half_precision=True, use_gpu=False)
    result = segment_volume(vol, tiny_model, cfg, progress=events.append)
    want = "half precision not used: no bf16 here; running in float32"
    assert result.messages == [want]
    assert [e.message for e in events if e.stage == "warning"] == [want]
    # nothing to say when nothing falls back
    plain = segment_volume(vol, tiny_model, cfg.model_copy(update={"half_precision": False}))
    assert plain.messages == []
