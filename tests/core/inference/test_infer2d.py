"""2D inference end to end: models from the registry, cache, dtypes, bad input, options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from ideal_model import ideal_card, ideal_engine, same_partition
from pydantic import ValidationError

from tamale import _paths
from tamale.config import ConfigError
from tamale.errors import TamaleInputError
from tamale.inference import (
    Engine,
    Inference2DConfig,
    ModelCache,
    choose_device,
    infer_2d,
    iter_infer_2d,
    make_normalizer,
    model_input,
    predict_raw,
    quantization_status,
)
from tamale.progress import Cancelled, CancelToken, ProgressEvent
from tamale.registry import Norms, get_card
from tamale.synthetic import synthetic_em_2d

CPU = Inference2DConfig(use_gpu=False)


class ThresholdModel:
    """Foreground where the normalised input is positive; no instance centres."""

    padding_factor = 16
    num_classes = 1

    def predict(self, x, upsample=1, fine=False):
        s = 1 if fine else 4
        sem = torch.nn.functional.interpolate(x * 10, scale_factor=upsample, mode="nearest")
        n, _, h, w = x.shape
        return {
            "sem_logits": sem,
            "ctr_hmp": torch.zeros(n, 1, h // s, w // s),
            "offsets": torch.zeros(n, 2, h // s, w // s),
        }


def threshold_engine() -> Engine:
    card = ideal_card("threshold").model_copy(update={"norms": Norms(mean=0.5, std=0.25)})
    return Engine(card=card, model=ThresholdModel(), device=torch.device("cpu"))


# -- registry models and the cache ---------------------------------------------------------


def test_tiny_registered_model_runs_end_to_end(tiny_model):
    s = synthetic_em_2d((100, 150), seed=0)
    events: list[ProgressEvent] = []
    result = infer_2d(s.image, tiny_model, CPU, cache=ModelCache(), progress=events.append)
    assert result.labels.shape == (100, 150) and result.labels.dtype == np.uint32
    assert result.model_name == tiny_model and result.device == "cpu"
    assert result.precision == "float32" and result.label_divisor == 10000
    assert result.class_names == {1: "mitochondria"}
    assert result.normalization == "uint8 / 255"
    stages = [e.stage for e in events]
    assert stages[0] == "load" and stages[-1] == "infer"
    assert events[-1].step == events[-1].total == 1
    # whatever random weights predict, ids follow the panoptic convention
    ids = np.unique(result.labels)
    assert set(ids[ids > 0] // 10000) <= {1}


def test_the_second_run_loads_nothing(tiny_model):
    cache = ModelCache()
    image = synthetic_em_2d((64, 64), seed=1).image
    infer_2d(image, tiny_model, CPU, cache=cache)
    assert cache.loads == 1
    # other thresholds, downsampling, fine boundaries: same model, nothing reloaded
    for update in ({"confidence_thr": 0.3}, {"downsampling": 2}, {"fine_boundaries": True}):
        infer_2d(image, tiny_model, CPU.model_copy(update=update), cache=cache)
    infer_2d(image, get_card(tiny_model), CPU, cache=cache)
    assert cache.loads == 1 and len(cache) == 1


def test_a_replaced_model_is_reloaded(make_tiny_model):
    cache = ModelCache()
    image = synthetic_em_2d((64, 64), seed=1).image
    name = make_tiny_model("swap", seed=0)
    first = infer_2d(image, name, CPU, cache=cache)
    make_tiny_model("swap", seed=1)  # re-registered: new weights under the same name
    infer_2d(image, name, CPU, cache=cache)
    assert cache.loads == 2
    assert first.labels.shape == (64, 64)


def test_the_cache_keeps_a_bounded_number_of_models(make_tiny_model):
    cache = ModelCache(max_models=1)
    image = np.zeros((32, 32), np.uint8)
    a, b = make_tiny_model("a"), make_tiny_model("b")
    for name in (a, b, a):
        infer_2d(image, name, CPU, cache=cache)
    assert cache.loads == 3 and len(cache) == 1


def test_unknown_model_is_a_clear_error(tiny_model):
    with pytest.raises(TamaleInputError, match=r"no model named 'nope'.*tiny-test"):
        infer_2d(np.zeros((32, 32), np.uint8), "nope", CPU)


def test_model_that_fails_to_load_is_a_clear_error(tiny_model):
    weights = _paths.models_dir() / tiny_model / "weights.safetensors"
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(TamaleInputError, match=r"SHA-256|could not be loaded"):
        infer_2d(np.zeros((32, 32), np.uint8), tiny_model, CPU, cache=ModelCache())


def test_torchscript_card_runs_through_the_same_engine(tmp_path):
    """An empanada-style card pointing at a scripted module (render_steps, interpolate_ins)."""

    class Scripted(torch.nn.Module):
        def forward(self, x: torch.Tensor, render_steps: int, interpolate_ins: bool):
            up = 2 ** (render_steps - 2)
            sem = torch.nn.functional.interpolate(x * 10, scale_factor=float(up), mode="nearest")
            ctr = torch.nn.functional.max_pool2d(x, 4)
            if interpolate_ins:
                ctr = torch.nn.functional.interpolate(ctr, scale_factor=4.0, mode="nearest")
            off = torch.zeros(x.shape[0], 2, ctr.shape[2], ctr.shape[3])
            return {"sem_logits": sem, "ctr_hmp": ctr, "offsets": off}

    folder = _paths.models_dir() / "scripted"
    folder.mkdir(parents=True)
    torch.jit.save(torch.jit.script(Scripted()), str(folder / "model.pth"))
    (folder / "card.yaml").write_text(
        yaml.safe_dump(
            {
                "class_names": {1: "mito"},
                "labels": [1],
                "thing_list": [1],
                "model": "model.pth",
                "padding_factor": 16,
                "norms": {"mean": 0.5, "std": 0.25},
            }
        )
    )
    image = np.zeros((40, 50), np.uint8)
    image[10:20, 10:30] = 255
    result = infer_2d(image, "scripted", CPU.model_copy(update={"downsampling": 2}))
    assert result.labels.shape == (40, 50)
    np.testing.assert_array_equal(result.labels > 0, image > 0)
    assert set(np.unique(result.labels[image > 0]) // 10000) == {1}


# -- dtypes --------------------------------------------------------------------------------


def test_every_integer_and_float_dtype_gives_the_same_segmentation():
    s = synthetic_em_2d((96, 96), seed=2)
    engine = threshold_engine()
    cfg = CPU.model_copy(update={"semantic_only": True, "stuff_area": 0})
    base = s.image.astype(np.float64)
    variants = {
        "uint16": (base * 257).astype(np.uint16),
        "uint16-12bit": (base * 16).astype(np.uint16),
        "int32": (base * 1_000_000 - 100_000_000).astype(np.int32),  # empanada: empty
        "int64": (base * 3).astype(np.int64),
        "float32": (base / 255).astype(np.float32),
        "float64": base * 1e-3 - 7,
    }
    results = {k: infer_2d(v, engine, cfg).labels for k, v in variants.items()}
    first = results["uint16"]
    assert 0.1 < (first > 0).mean() < 0.9  # a real segmentation, not empty or full
    for key, labels in results.items():
        np.testing.assert_array_equal(labels, first, err_msg=key)
    uint8 = infer_2d(s.image, engine, cfg).labels
    assert 0.1 < (uint8 > 0).mean() < 0.9


def test_uint8_uses_the_card_norms_and_others_robust_percentiles():
    norms = Norms(mean=0.5, std=0.25)
    img8 = np.array([[0, 255], [128, 64]], np.uint8)
    np.testing.assert_allclose(
        make_normalizer(img8, norms)(img8), (img8 / 255 - 0.5) / 0.25, atol=1e-6
    )
    rng = np.random.default_rng(0)
    img = rng.integers(0, 4096, size=(64, 64)).astype(np.uint16)
    n = make_normalizer(img, norms)
    out = n(img)
    assert out.min() == pytest.approx(-2.0) and out.max() == pytest.approx(2.0)  # 0..1 clipped
    lo, hi = np.percentile(img, (0.1, 99.9))
    assert n.offset == pytest.approx(lo) and 1 / n.scale == pytest.approx(hi - lo)
    flat = np.full((8, 8), 7, np.int32)
    assert np.all(make_normalizer(flat, norms)(flat) == -2.0)  # constant image -> 0 -> -mean/std


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_float_images_is_refused(bad):
    img = np.ones((32, 32), np.float32)
    img[3, 4] = bad
    with pytest.raises(TamaleInputError, match="NaN"):
        infer_2d(img, threshold_engine(), CPU)


def test_boolean_and_complex_images_are_refused():
    for img in (np.zeros((8, 8), bool), np.zeros((8, 8), complex)):
        with pytest.raises(TamaleInputError, match="cannot segment an image of type"):
            infer_2d(img, threshold_engine(), CPU)


# -- bad input -----------------------------------------------------------------------------


def test_rgb_images_are_refused_with_instructions():
    with pytest.raises(TamaleInputError, match=r"RGB.*one"):
        infer_2d(np.zeros((64, 64, 3), np.uint8), threshold_engine(), CPU)
    with pytest.raises(TamaleInputError, match="RGB"):
        infer_2d(
            np.zeros((2, 64, 64, 4), np.uint8),
            threshold_engine(),
            CPU.model_copy(update={"batch_mode": True}),
        )


def test_3d_images_need_batch_mode_and_batch_mode_needs_a_stack():
    with pytest.raises(TamaleInputError, match="batch mode"):
        infer_2d(np.zeros((5, 64, 64), np.uint8), threshold_engine(), CPU)
    with pytest.raises(TamaleInputError, match="stack"):
        infer_2d(
            np.zeros((64, 64), np.uint8),
            threshold_engine(),
            CPU.model_copy(update={"batch_mode": True}),
        )
    with pytest.raises(TamaleInputError, match="empty"):
        infer_2d(np.zeros((0, 64), np.uint8), threshold_engine(), CPU)


@pytest.mark.parametrize("factor", [0, 3, 6, 128])
def test_downsampling_must_be_a_power_of_two_up_to_64(factor):
    with pytest.raises(ValidationError, match="power of two"):
        Inference2DConfig(downsampling=factor)
    with pytest.raises(ConfigError, match="downsampling"):
        Inference2DConfig.from_mapping({"downsampling": factor})


def test_images_smaller_than_the_padding_factor_are_padded():
    img = np.zeros((10, 7), np.uint8)
    img[2:8, 1:5] = 200
    engine = ideal_engine(padding_factor=32)
    out = infer_2d(
        (img > 0).astype(np.uint8), engine, CPU.model_copy(update={"fine_boundaries": True})
    )
    assert out.labels.shape == (10, 7)
    assert same_partition(img > 0, out.labels)
    assert engine.model.calls == [(1, 1, 32, 32)]


def test_gpu_requested_without_gpu_falls_back_to_cpu_and_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    choice = choose_device(True)
    assert choice.device.type == "cpu" and "no GPU" in choice.message
    assert choose_device(False).message == ""
    result = infer_2d(np.zeros((32, 32), np.uint8), threshold_engine(), Inference2DConfig())
    assert result.device == "cpu" and any("no GPU" in m for m in result.messages)


def test_quantized_unavailable_is_explained(tiny_model, monkeypatch):
    import tamale.inference.engine as engine_mod

    real = engine_mod._models_attr

    def no_int8(name):
        if name == "quantization_available":
            return lambda: (False, "no int8 kernels on this test machine")
        return real(name)

    monkeypatch.setattr(engine_mod, "_models_attr", no_int8)
    ok, reason = quantization_status(get_card(tiny_model))
    assert not ok and reason == "no int8 kernels on this test machine"
    with pytest.raises(TamaleInputError, match="no int8 kernels"):
        infer_2d(
            np.zeros((32, 32), np.uint8),
            tiny_model,
            CPU.model_copy(update={"use_quantized": True}),
            cache=ModelCache(),
        )


def test_quantized_model_is_built_locally_once_and_cached(tiny_model):
    card = get_card(tiny_model)
    ok, reason = quantization_status(card)
    if not ok:
        pytest.skip(f"int8 not available here: {reason}")
    cache = ModelCache()
    image = synthetic_em_2d((64, 64), seed=0).image
    q = CPU.model_copy(update={"use_quantized": True})
    first = infer_2d(image, tiny_model, q, cache=cache)
    assert first.precision == "int8" and first.device == "cpu"
    infer_2d(image, tiny_model, q, cache=cache)
    assert cache.loads == 1
    infer_2d(image, tiny_model, CPU, cache=cache)  # float is another cache entry
    assert cache.loads == 2


# -- options -------------------------------------------------------------------------------


def test_batch_mode_segments_each_slice_independently():
    s = synthetic_em_2d((64, 80), seed=3)
    labels = s.labels.astype(np.uint8)
    stack = np.stack([labels, np.zeros_like(labels), labels[::-1].copy()])
    engine = ideal_engine()
    cfg = CPU.model_copy(update={"batch_mode": True, "batch_size": 2, "fine_boundaries": True})
    out = infer_2d(stack, engine, cfg)
    assert out.labels.shape == stack.shape
    single = CPU.model_copy(update={"fine_boundaries": True})
    for i in range(3):
        np.testing.assert_array_equal(out.labels[i], infer_2d(stack[i], engine, single).labels)
    assert [c[0] for c in engine.model.calls[:2]] == [2, 1]  # batched forward passes


def test_confinement_to_a_box_and_to_a_mask():
    s = synthetic_em_2d((96, 96), seed=4)
    labels = s.labels.astype(np.uint8)
    engine = ideal_engine()
    cfg = CPU.model_copy(update={"fine_boundaries": True})
    boxed = infer_2d(labels, engine, cfg, roi=(10, 70, 20, 90)).labels
    assert not boxed[:10].any() and not boxed[70:].any() and not boxed[:, :20].any()
    assert same_partition(
        sk_relabel(labels[10:70, 20:90]), boxed[10:70, 20:90]
    )  # objects cut by the box: each piece is one object
    mask = np.zeros((96, 96), bool)
    yy, xx = np.mgrid[:96, :96]
    mask[(yy - 48) ** 2 + (xx - 48) ** 2 < 30**2] = True
    masked = infer_2d(labels, engine, cfg, mask=mask).labels
    assert not masked[~mask].any()
    np.testing.assert_array_equal(masked > 0, (labels > 0) & mask)
    with pytest.raises(TamaleInputError, match="empty"):
        infer_2d(labels, engine, cfg, mask=np.zeros((96, 96), bool))
    with pytest.raises(TamaleInputError, match="shape"):
        infer_2d(labels, engine, cfg, mask=np.zeros((10, 10), bool))


def sk_relabel(a: np.ndarray) -> np.ndarray:
    from skimage.measure import label

    return label(a, background=0, connectivity=2)


def test_cancel_stops_between_batches():
    stack = np.zeros((6, 32, 32), np.uint8)
    token = CancelToken()
    work = iter_infer_2d(
        stack,
        threshold_engine(),
        CPU.model_copy(update={"batch_mode": True, "batch_size": 1}),
        cancel=token,
    )
    seen = 0
    with pytest.raises(Cancelled):
        for event in work:
            if event.stage == "infer":
                seen += 1
                token.cancel()
    assert seen == 1


def test_predict_raw_shapes_crop_and_stride():
    model = ThresholdModel()
    images = torch.randn(2, 37, 45)
    x = model_input(images, 4, 16)
    assert x.shape == (2, 1, 16, 16)  # ceil(37/4)=10 -> 16, ceil(45/4)=12 -> 16
    raw = predict_raw(model, images, downsampling=4)
    assert raw.sem_probs.shape == (2, 1, 37, 45) and raw.stride == 4 and raw.downsampling == 4
    assert raw.ctr_hmp.shape == (2, 1, 4, 4)
    assert float(raw.sem_probs.min()) >= 0 and float(raw.sem_probs.max()) <= 1
    fine = predict_raw(model, images, downsampling=1, fine=True)
    assert fine.stride == 1 and fine.ctr_hmp.shape == (2, 1, 48, 48)
    # downsampling averages exact f x f blocks of the original pixels
    blocks = torch.arange(64.0).reshape(1, 8, 8)
    np.testing.assert_allclose(
        model_input(blocks, 2, 4)[0, 0, 0, :2].numpy(), [(0 + 1 + 8 + 9) / 4, (2 + 3 + 10 + 11) / 4]
    )
