"""One call to make any loaded model fast for inference at a chosen precision."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from tamale.errors import TamaleInputError
from tamale.models.panoptic import PanopticModel
from tamale.models.quantize import QuantizedPanopticModel, quantize_model
from tamale.registry.card import Norms

__all__ = ["PRECISIONS", "bfloat16_available", "prepare_for_inference"]

PRECISIONS = ("float32", "bfloat16", "float16", "int8")


def bfloat16_available(device: str | torch.device = "cpu") -> tuple[bool, str]:
    """Whether bfloat16 convolutions are fast on ``device``: ``(ok, reason)``.

    On CPUs this needs native bfloat16 dot products (AVX512-BF16 or AMX); without
    them oneDNN emulates bfloat16 and it is slower than float32.
    """
    device = torch.device(device)
    if device.type == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return ok, "CUDA bfloat16" if ok else "this GPU has no bfloat16 support"
    if device.type != "cpu":
        return False, f"bfloat16 is not tuned for {device.type} here"
    try:
        ok = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        ok = False
    if not ok:
        return False, "this CPU has no native bfloat16 instructions (AVX512-BF16 or AMX)"
    return True, "oneDNN bfloat16 convolutions (native AVX512-BF16/AMX)"


def prepare_for_inference(
    model: nn.Module,
    precision: str = "float32",
    calibration_batches: Iterable[torch.Tensor] | None = None,
    norms: Norms | None = None,
) -> nn.Module:
    """Return ``model`` ready for fast inference at ``precision`` (may modify it in place).

    Parameters
    ----------
    model : nn.Module
        From :func:`tamale.models.load_model`: an eager tamale model, or a
        :class:`TorchScriptModel` (float32 only, returned unchanged).
    precision : {"float32", "bfloat16", "float16", "int8"}
        ``float32``: BN folded, channels-last, same results up to float
        rounding. ``bfloat16``: also bfloat16 convolutions (about 2x faster
        on CPUs with AVX512-BF16; outputs within ~1% of float32).
        ``float16``: GPUs only. ``int8``: static quantization on the CPU
        (see :func:`tamale.models.quantize_model`).
    calibration_batches : iterable of Tensor, optional
        int8 only: normalised inputs to calibrate on. Default: two synthetic
        EM images of 256^2 normalised with ``norms``.
    norms : Norms, optional
        The card's normalisation (for the default calibration images).
    """
    if precision not in PRECISIONS:
        raise TamaleInputError(
            f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}"
        )
    if isinstance(model, QuantizedPanopticModel):
        if precision != "int8":
            raise TamaleInputError("this model is already quantized (int8)")
        return model
    if not isinstance(model, PanopticModel):
        if precision != "float32":
            raise TamaleInputError(
                f"{type(model).__name__} runs in float32 only; convert empanada models with "
                "convert_empanada() to use other precisions"
            )
        return model.eval()
    device = next(model.parameters()).device
    if precision == "int8":
        if device.type != "cpu":
            raise TamaleInputError("int8 models run on the CPU only")
        if calibration_batches is None:
            from tamale.models.testing import synthetic_batch

            size = max(256, model.padding_factor)
            calibration_batches = [synthetic_batch(size, 1, seed=s, norms=norms) for s in (0, 1)]
        return quantize_model(model, calibration_batches)
    if precision == "float16" and device.type != "cuda":
        raise TamaleInputError("float16 inference is for GPUs; use bfloat16 or int8 on the CPU")
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[
        precision
    ]
    return model.optimize_for_inference(dtype)
