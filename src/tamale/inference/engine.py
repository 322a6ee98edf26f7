"""Loaded models, cached across runs.

Loading a model (reading weights, building the network, moving it to the GPU,
quantizing it) costs far more than running it on one image, so the second click of a
dock — or the next call from a script — reuses what the first one loaded. The cache key
is the model's name, a hash of its card and of its weights file's size and time stamp
(so re-registering a model under the same name loads the new one), the device and the
precision (``float32`` or ``int8``). At most :attr:`ModelCache.max_models` models stay
loaded (least recently used first out).

Loading happens in whoever calls :func:`get_engine`: the plugin calls it from its
worker thread, never from the GUI thread.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tamale.errors import TamaleInputError
from tamale.postprocess import ClassTable
from tamale.registry import ModelCard, get_card

__all__ = [
    "Engine",
    "ModelCache",
    "choose_precision",
    "clear_cache",
    "default_cache",
    "get_engine",
    "half_precision_status",
    "quantization_status",
]


@dataclass(eq=False)
class Engine:
    """A model ready to predict, with what post-processing needs to know about it.

    Attributes
    ----------
    card : ModelCard
        The model's card.
    model : object
        Has ``predict(x, upsample, fine)`` and ``padding_factor`` (see
        :mod:`tamale.models`).
    device : torch.device
        Where the model lives.
    precision : str
        ``"float32"``, ``"bfloat16"``, ``"float16"`` or ``"int8"``.
    """

    card: ModelCard
    model: Any
    device: torch.device
    precision: str = "float32"
    classes: ClassTable = field(init=False)

    def __post_init__(self) -> None:
        self.classes = ClassTable.from_classes(self.card.classes)

    @property
    def padding_factor(self) -> int:
        return int(getattr(self.model, "padding_factor", self.card.padding_factor))


def _weights_stamp(card: ModelCard) -> str:
    parts = []
    for ref in (card.weights, card.weights_quantized):
        if ref is None:
            continue
        location = card.resolve(ref)
        path = Path(location)
        if not ref.is_url and path.is_file():
            st = path.stat()
            parts.append(f"{location}:{st.st_size}:{st.st_mtime_ns}")
        else:
            parts.append(location)
    return ";".join(parts)


def card_key(card: ModelCard) -> str:
    """A hash of the card's content, its location and its weights files' stamps."""
    h = hashlib.sha256()
    h.update(card.model_dump_json().encode())
    h.update(str(card.path).encode())
    h.update(_weights_stamp(card).encode())
    return h.hexdigest()[:16]


def _models_attr(name: str) -> Any:
    """An optional function of :mod:`tamale.models` (None when this version lacks it)."""
    import importlib

    from tamale import models

    found = getattr(models, name, None)
    if found is None and name in ("quantize_model", "quantization_available"):
        try:
            found = getattr(importlib.import_module("tamale.models.quantize"), name, None)
        except ImportError:
            found = None
    return found


def quantization_status(card: ModelCard) -> tuple[bool, str]:
    """Whether an int8 CPU model can be had for ``card``, and if not, why.

    Returns
    -------
    (available, reason)
        ``reason`` is empty when available.
    """
    engines = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    if not engines:
        return False, "this torch build has no quantized CPU backend (fbgemm, x86 or qnnpack)"
    if card.weights_quantized is not None:
        return True, ""
    if card.architecture is None:
        return False, (
            f"model {card.name!r} is a TorchScript model without int8 weights; convert it to a "
            "tamale model to quantize it locally"
        )
    if _models_attr("quantize_model") is None:
        return False, "this version of tamale cannot quantize models locally yet"
    available = _models_attr("quantization_available")
    if available is not None:
        ok, why = available()
        if not ok:
            return False, why
    return True, ""


def half_precision_status(card: ModelCard, device: torch.device | str) -> tuple[bool, str]:
    """Whether half-precision convolutions are fast for ``card`` on ``device``, and why not.

    bfloat16 on CPUs with native bfloat16 dot products (AVX512-BF16 or AMX), float16 on
    CUDA GPUs; never for TorchScript models (they run as exported).
    """
    device = torch.device(device)
    if card.architecture is None:
        return False, f"model {card.name!r} is a TorchScript model (float32 only)"
    if device.type == "cuda":
        return True, ""
    if device.type != "cpu":
        return False, f"half precision is not tuned for {device.type} here"
    check = _models_attr("bfloat16_available")
    if check is not None:
        return check(device)
    try:
        ok = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        ok = False
    if not ok:
        return False, "this CPU has no native bfloat16 instructions (AVX512-BF16 or AMX)"
    return True, ""


def choose_precision(config: Any, device: torch.device, card: ModelCard) -> tuple[str, str]:
    """The precision a run asks for (``config.use_quantized``, ``config.half_precision``)
    gets on ``device``, and a message when it falls back (empty otherwise).

    The one choice of 2D inference, of every 3D worker and of the 3D run's up-front
    messages.

    Raises
    ------
    TamaleInputError
        When int8 is asked for on a CPU and no quantized model can be had.
    """
    if config.use_quantized:
        if device.type == "cpu":
            ok, reason = quantization_status(card)
            if not ok:
                raise TamaleInputError(f"cannot use a quantized model: {reason}")
            return "int8", ""
        note = (
            "the quantized model runs on the CPU only; using the float model on the GPU "
            "(turn off 'use GPU' to run quantized)"
        )
        if not config.half_precision:
            return "float32", note
    if config.half_precision:
        ok, reason = half_precision_status(card, device)
        if ok:
            return ("float16" if device.type == "cuda" else "bfloat16"), ""
        return "float32", f"half precision not used: {reason}; running in float32"
    return "float32", ""


def _calibration_batches(card: ModelCard, padding_factor: int) -> list[torch.Tensor]:
    """Two synthetic EM images (deterministic) normalised with the card's norms."""
    from tamale.inference.normalize import make_normalizer
    from tamale.synthetic import synthetic_em_2d

    size = -(-max(256, padding_factor) // padding_factor) * padding_factor
    out = []
    for seed in (0, 1):
        image = synthetic_em_2d((size, size), seed=seed).image
        out.append(torch.from_numpy(make_normalizer(image, card.norms)(image))[None, None])
    return out


def _load(card: ModelCard, device: torch.device, precision: str) -> Any:
    """Load ``card``'s model at ``precision`` and make it fast for inference."""
    from tamale.models import load_model

    prepare = _models_attr("prepare_for_inference")
    if precision == "float32":
        model = load_model(card, device)
        if prepare is not None:
            return prepare(model, "float32")
        if hasattr(model, "optimize_for_inference"):
            return model.optimize_for_inference()
        return model.eval()
    if precision in ("bfloat16", "float16"):
        model = load_model(card, device)
        if prepare is not None:
            return prepare(model, precision)
        if not hasattr(model, "optimize_for_inference"):
            raise TamaleInputError(f"model {card.name!r} runs in float32 only")
        return model.optimize_for_inference(getattr(torch, precision))
    if precision != "int8":
        raise TamaleInputError(
            f"unknown precision {precision!r} (float32, bfloat16, float16 or int8)"
        )
    ok, reason = quantization_status(card)
    if not ok:
        raise TamaleInputError(f"cannot use a quantized model: {reason}")
    if card.weights_quantized is not None:
        return load_model(card, "cpu", quantized=True)
    model = load_model(card, "cpu")
    batches = _calibration_batches(card, int(getattr(model, "padding_factor", 16)))
    if prepare is not None:
        return prepare(model, "int8", calibration_batches=batches, norms=card.norms)
    return _models_attr("quantize_model")(model, batches)


class ModelCache:
    """Loaded models keyed by (name, card hash, device, precision); thread-safe."""

    def __init__(self, max_models: int = 2) -> None:
        self.max_models = max_models
        self.loads = 0
        """How many times a model was actually loaded (tests count it)."""
        self._engines: OrderedDict[tuple[str, str, str, str], Engine] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, card: ModelCard, device: torch.device, precision: str = "float32") -> Engine:
        """The engine for ``card`` on ``device``, loading it only if it is not cached."""
        device = torch.device(device)
        if precision == "int8":
            device = torch.device("cpu")
        key = (card.name, card_key(card), str(device), precision)
        with self._lock:
            engine = self._engines.get(key)
            if engine is not None:
                self._engines.move_to_end(key)
                return engine
            try:
                model = _load(card, device, precision)
            except TamaleInputError:
                raise
            except (OSError, RuntimeError, ValueError, KeyError) as exc:
                raise TamaleInputError(f"model {card.name!r} could not be loaded: {exc}") from exc
            self.loads += 1
            engine = Engine(card=card, model=model, device=device, precision=precision)
            self._engines[key] = engine
            while len(self._engines) > self.max_models:
                self._engines.popitem(last=False)
            return engine

    def clear(self) -> None:
        """Forget every loaded model (frees their memory once nothing else holds them)."""
        with self._lock:
            self._engines.clear()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def __len__(self) -> int:
        return len(self._engines)


_DEFAULT = ModelCache()


def default_cache() -> ModelCache:
    """The process-wide cache used when no other is given."""
    return _DEFAULT


def clear_cache() -> None:
    """Empty the process-wide cache."""
    _DEFAULT.clear()


def get_engine(
    model: str | ModelCard | Engine,
    device: torch.device | str = "cpu",
    precision: str = "float32",
    cache: ModelCache | None = None,
) -> Engine:
    """An :class:`Engine` for a model name, a card, or an engine (returned as is).

    Raises
    ------
    TamaleInputError
        Unknown model name (the message lists the registered ones), or a model that
        fails to load (missing or corrupt weights, ...).
    """
    if isinstance(model, Engine):
        return model
    card = get_card(model) if isinstance(model, str) else model
    if not isinstance(card, ModelCard):
        raise TamaleInputError(f"expected a model name or a ModelCard, got {type(model).__name__}")
    return (cache if cache is not None else _DEFAULT).get(card, torch.device(device), precision)
