"""Static int8 quantization of a float model for CPU inference, built locally.

torch 2.13 still ships ``torch.ao.quantization`` (deprecated in favour of the
torchao/PT2E flow, which needs ``torch.compile`` to produce int8 kernels).
Its FX graph mode runs real int8 kernels (fbgemm / oneDNN behind the ``x86``
backend) in eager mode, with no compilation step, so tamale uses it: the
convolutional trunk (encoder, decoders, heads) is traced, conv + BN (+ ReLU)
fused, observed on a few calibration batches and converted; the BiFPN fusion
nodes (learned scalar weights, SiLU) and the PointRend head stay in float.
Deprecation warnings of that API are silenced locally while quantizing.

:func:`quantization_available` says whether this torch and CPU can do it,
and why not otherwise, so a GUI can disable the option.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from tamale.errors import TamaleInputError
from tamale.models.panoptic import PanopticModel, check_model_input, render_steps

__all__ = ["QuantizedPanopticModel", "quantization_available", "quantize_model"]

_BACKEND = "x86"


@contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.ao\..*")
        warnings.filterwarnings("ignore", message=".*quant.*")
        yield


class _Trunk(nn.Module):
    """Traceable view of a model's convolutional part (returns the four stride-4 maps)."""

    def __init__(self, model: PanopticModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.model.trunk(x)


_available: tuple[bool, str] | None = None


def quantization_available() -> tuple[bool, str]:
    """Whether int8 quantization works here: ``(True, what)`` or ``(False, why not)``."""
    global _available
    if _available is not None:
        return _available
    if _BACKEND not in torch.backends.quantized.supported_engines:
        _available = (
            False,
            f"this torch build has no '{_BACKEND}' quantized backend "
            f"(it has {', '.join(torch.backends.quantized.supported_engines) or 'none'}); "
            "int8 CPU inference needs an x86-64 CPU",
        )
        return _available
    try:
        with _quiet(), _engine():
            from torch.ao.quantization import get_default_qconfig_mapping
            from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

            net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU()).eval()
            x = torch.randn(1, 1, 8, 8)
            prepared = prepare_fx(net, get_default_qconfig_mapping(_BACKEND), (x,))
            prepared(x)
            convert_fx(prepared)(x)
    except Exception as exc:  # any failure means: not usable here
        _available = (False, f"int8 kernels do not run on this machine: {exc}")
        return _available
    _available = (True, f"static int8 quantization (torch FX graph mode, '{_BACKEND}' backend)")
    return _available


def _has_vnni() -> bool:
    """Whether the CPU has 8-bit dot products with 32-bit accumulation (AVX512-VNNI / AVX-VNNI)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def _qconfig_mapping():
    """x86 defaults; with VNNI, 8-bit activations instead of 7-bit (no overflow to avoid)."""
    from torch.ao.quantization import QConfig, get_default_qconfig_mapping
    from torch.ao.quantization.observer import HistogramObserver, PerChannelMinMaxObserver

    mapping = get_default_qconfig_mapping(_BACKEND)
    if _has_vnni():
        mapping.set_global(
            QConfig(
                activation=HistogramObserver.with_args(reduce_range=False),
                weight=PerChannelMinMaxObserver.with_args(
                    dtype=torch.qint8, qscheme=torch.per_channel_symmetric
                ),
            )
        )
    return mapping


@contextmanager
def _engine():
    """Select the x86 quantized engine for the duration of a call, restoring the previous one."""
    previous = torch.backends.quantized.engine
    if previous != _BACKEND:
        torch.backends.quantized.engine = _BACKEND
    try:
        yield
    finally:
        if torch.backends.quantized.engine != previous:
            torch.backends.quantized.engine = previous


def quantize_model(
    model: PanopticModel, calibration_batches: Iterable[torch.Tensor]
) -> QuantizedPanopticModel:
    """An int8 copy of ``model`` for CPU inference (``model`` is left unchanged).

    Parameters
    ----------
    model : PanopticModel
        A float tamale model (eager; a converted empanada model works too).
    calibration_batches : iterable of Tensor
        Normalised inputs (N, 1, h, w), h and w multiples of the padding
        factor, representative of the data (a few 256-512 px EM tiles).

    Raises
    ------
    TamaleInputError
        When quantization is not available here (see
        :func:`quantization_available`), the model is not a tamale model, or
        no calibration batch is given.
    """
    ok, why = quantization_available()
    if not ok:
        raise TamaleInputError(f"int8 quantization is not available: {why}")
    if not isinstance(model, PanopticModel):
        raise TamaleInputError(
            f"only tamale models can be quantized here, got {type(model).__name__}; "
            "convert empanada models with convert_empanada first"
        )
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    float_model = copy.deepcopy(model).cpu().float().eval()
    trunk = _Trunk(float_model)
    qconfig = _qconfig_mapping()
    # BiFPN fusion (scalar weights, SiLU) stays float; its convs and decoders are quantized
    for name, module in float_model.named_modules():
        if type(module).__name__ in ("TopDownPath", "BottomUpPath"):
            qconfig.set_module_name(f"model.{name}", None)
    batches = list(calibration_batches)
    if not batches:
        raise TamaleInputError("quantize_model needs at least one calibration batch")
    for b in batches:
        check_model_input(b, model.in_channels, model.padding_factor)
    with _quiet(), _engine(), torch.no_grad():
        prepared = prepare_fx(trunk, qconfig, (batches[0],))
        for b in batches:
            prepared(b.float())
        quantized = convert_fx(prepared)
    return QuantizedPanopticModel(quantized, float_model)


class QuantizedPanopticModel(nn.Module):
    """An int8 trunk with a float PointRend head; same ``predict`` interface (CPU only)."""

    def __init__(self, trunk: nn.Module, float_model: PanopticModel) -> None:
        super().__init__()
        self.trunk = trunk
        self.semantic_pr = float_model.semantic_pr
        self.padding_factor = float_model.padding_factor
        self.num_classes = float_model.num_classes
        self.in_channels = float_model.in_channels
        self.architecture = float_model.architecture
        self.options = dict(float_model.options)

    @property
    def encoder(self) -> nn.Module | None:
        """The quantized encoder (stages ``stem``, ``stage1`` .. ``stage4``), when traced as such."""
        model = getattr(self.trunk, "model", None)
        return getattr(model, "encoder", None)

    def _outputs(self, x: torch.Tensor, steps: int, fine: bool) -> dict[str, torch.Tensor]:
        x = x.float().contiguous(memory_format=torch.channels_last)
        with _engine(), _quiet():
            sem, semantic_x, ctr, off = self.trunk(x)
        if self.semantic_pr is None:
            sem = F.interpolate(
                sem, scale_factor=float(2**steps), mode="bilinear", align_corners=True
            )
        else:
            sem = self.semantic_pr.render(sem, semantic_x, steps)
        if fine:
            ctr = F.interpolate(ctr, scale_factor=4.0, mode="bilinear", align_corners=True)
            off = F.interpolate(off, scale_factor=4.0, mode="bilinear", align_corners=True)
        return {"sem_logits": sem, "ctr_hmp": ctr, "offsets": off}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Full-resolution outputs (like ``predict(x, 1, fine=True)``)."""
        return self._outputs(x, 2, True)

    def predict(
        self, x: torch.Tensor, upsample: int = 1, fine: bool = False
    ) -> dict[str, torch.Tensor]:
        """See :mod:`tamale.models`; ``x`` must be on the CPU."""
        steps = render_steps(upsample)
        check_model_input(x, self.in_channels, self.padding_factor)
        if x.device.type != "cpu":
            raise TamaleInputError(
                "quantized models run on the CPU only; move the input to the CPU"
            )
        with torch.inference_mode():
            return self._outputs(x, steps, fine)
