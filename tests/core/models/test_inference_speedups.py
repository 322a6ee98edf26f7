"""BatchNorm folding, channels-last / bfloat16 inference, int8 quantization."""

from __future__ import annotations

import copy

import pytest
import torch

from tamale.errors import TamaleInputError
from tamale.models import build_model, fold_batchnorm
from tamale.models.quantize import QuantizedPanopticModel, quantization_available, quantize_model
from tamale.models.testing import lively_model, synthetic_batch


@pytest.fixture(scope="module")
def lively():
    torch.manual_seed(0)
    return lively_model(build_model("tiny", decoder_channels=32), [synthetic_batch(128, 2, seed=5)])


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / (b - b.mean()).norm())


@pytest.mark.parametrize("name", ["tiny", "tiny_bifpn"])
def test_fold_batchnorm_keeps_outputs(name):
    torch.manual_seed(0)
    model = lively_model(build_model(name), [synthetic_batch(128, 2, seed=3)])
    x = synthetic_batch(128, 1, seed=4)
    folded = fold_batchnorm(copy.deepcopy(model))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    for a, b in zip(folded.trunk(x), model.trunk(x)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_optimize_for_inference(lively):
    x = synthetic_batch(128, 1, seed=1)
    ref = lively.predict(x, fine=True)
    fast = copy.deepcopy(lively).optimize_for_inference()
    assert fast.channels_last
    out = fast.predict(x, fine=True)
    for k in ("ctr_hmp", "offsets"):
        torch.testing.assert_close(out[k], ref[k], rtol=1e-4, atol=1e-4)
    assert ((out["sem_logits"] - ref["sem_logits"]).abs() > 1e-3).float().mean() < 0.01
    bf16 = copy.deepcopy(lively).optimize_for_inference(torch.bfloat16)
    out = bf16.predict(x, fine=True)
    assert all(v.dtype == torch.float32 for v in out.values())
    assert _rel(out["ctr_hmp"], ref["ctr_hmp"]) < 0.1
    with pytest.raises(TamaleInputError, match="dtype"):
        copy.deepcopy(lively).optimize_for_inference(torch.int8)


def test_quantization_available_says_why():
    ok, why = quantization_available()
    assert isinstance(ok, bool) and why


@pytest.mark.skipif(not quantization_available()[0], reason=quantization_available()[1])
def test_quantized_model_is_close_to_float(lively):
    x = synthetic_batch(128, 1, seed=1)
    q = quantize_model(lively, [synthetic_batch(128, 1, seed=s) for s in (7, 8)])
    assert isinstance(q, QuantizedPanopticModel)
    assert q.padding_factor == lively.padding_factor and q.num_classes == 1
    ref = lively.predict(x)
    out = q.predict(x)
    assert {k: v.shape for k, v in out.items()} == {k: v.shape for k, v in ref.items()}
    # an untrained 16-32 channel network is a harsh case for int8: ask for the signal to survive
    for k in ref:
        assert _corr(out[k], ref[k]) > 0.85, k
    agree = ((out["sem_logits"] > 0) == (ref["sem_logits"] > 0)).float().mean()
    assert agree > 0.8
    up = q.predict(x, upsample=2, fine=True)
    assert up["sem_logits"].shape == (1, 1, 256, 256) and up["ctr_hmp"].shape == (1, 1, 128, 128)


def test_quantize_bad_input(lively):
    if not quantization_available()[0]:
        pytest.skip("no int8 here")
    with pytest.raises(TamaleInputError, match="calibration"):
        quantize_model(lively, [])
    with pytest.raises(TamaleInputError, match="padding factor"):
        quantize_model(lively, [torch.zeros(1, 1, 100, 100)])
    with pytest.raises(TamaleInputError, match="only tamale models"):
        quantize_model(torch.nn.Conv2d(1, 1, 1), [torch.zeros(1, 1, 64, 64)])
