"""A registered model as a slice segmenter for 3D inference (the 2D pipeline's steps).

:func:`model_factory` turns a model name or card plus the 3D parameters into a
:class:`ModelSegmenterFactory`: a small picklable recipe (card, parameters,
intensity normalisation) that every worker -- this process, or each Dask
worker on its own GPU -- turns into a :class:`ModelSegmenter` once, through the
shared model cache (:func:`tamale.inference.get_engine`).

The three steps are the 2D pipeline's (:mod:`tamale.postprocess`):
``predict`` is :func:`~tamale.inference.predict_raw` on a batch of normalised
slices, ``probabilities`` gives a slice's semantic probabilities (a tensor on
the model's device, where the median filter runs too), and ``panoptic`` is
:func:`~tamale.postprocess.panoptic_labels` on the device with the filtered
probabilities put back (connected pieces are split later, by the 3D linking).

Intensities are normalised once for the whole volume (:func:`volume_normalizer`),
not per slice: every slice of every plane, on every worker, sees the same
mapping, so the result does not depend on the slicing or on the slab layout.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from tamale.errors import TamaleInputError
from tamale.inference.config import Inference2DConfig
from tamale.inference.device import choose_device
from tamale.inference.engine import card_key, get_engine, quantization_status
from tamale.inference.normalize import Normalizer, make_normalizer
from tamale.inference.predict import predict_raw
from tamale.inference.slice_model import ClassInfo
from tamale.postprocess import ClassTable, RawPrediction, panoptic_labels
from tamale.registry import ModelCard, get_card

__all__ = ["ModelSegmenter", "ModelSegmenterFactory", "model_factory", "volume_normalizer"]

_SAMPLE_PIXELS = 1 << 22


def volume_normalizer(source: Any, card: ModelCard) -> Normalizer:
    """One intensity normalisation for a whole volume (a strided sample of it).

    ``source`` is a :class:`~tamale.inference.volume_source.VolumeSource`.
    """
    z, y, x = source.shape
    if source.dtype == np.uint8:
        return make_normalizer(np.zeros((1, 1), np.uint8), card.norms)
    n_slices = min(z, 16)
    planes = np.unique(np.linspace(0, z - 1, n_slices).round().astype(int))
    step = max(1, int(np.ceil(np.sqrt(y * x * len(planes) / _SAMPLE_PIXELS))))
    sample = np.stack(
        [
            source.read((slice(p, p + 1), slice(None, None, step), slice(None, None, step)))[0]
            for p in planes
        ]
    )
    return make_normalizer(sample, card.norms)


class ModelSegmenter:
    """A loaded model on one device, running the 2D pipeline's three steps."""

    def __init__(self, factory: ModelSegmenterFactory, device: str | None) -> None:
        cfg = factory.config
        choice = choose_device(cfg.use_gpu)
        dev = choice.device
        if device is not None and dev.type == "cuda":
            dev = torch.device(device)
        precision = "float32"
        if cfg.use_quantized and dev.type == "cpu":
            ok, reason = quantization_status(factory.card)
            if not ok:
                raise TamaleInputError(f"cannot use a quantized model: {reason}")
            precision = "int8"
        self.engine = get_engine(factory.card, dev, precision)
        self.device = self.engine.device
        self.config = cfg
        self.normalizer = factory.normalizer
        table = ClassTable.from_classes(factory.card.classes)
        self.classes = table.semantic_only() if cfg.semantic_only else table
        self.classes.check_divisor(cfg.label_divisor)

    def predict(self, images: np.ndarray) -> list[RawPrediction]:
        x = torch.from_numpy(self.normalizer(np.asarray(images))).to(self.device)
        with torch.inference_mode():
            raw = predict_raw(
                self.engine.model,
                x,
                downsampling=self.config.downsampling,
                fine=self.config.fine_boundaries,
            )
        return [raw[i] for i in range(raw.batch_size)]

    def probabilities(self, raw: RawPrediction) -> torch.Tensor:
        return raw.sem_probs[0]

    def panoptic(self, raw: RawPrediction, probs: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            filtered = replace(raw, sem_probs=probs[None])
            pan = panoptic_labels(filtered, self.config, self.classes)
        return pan[0].cpu().numpy().astype(np.uint32)


@dataclass(frozen=True)
class ModelSegmenterFactory:
    """Picklable recipe for a :class:`ModelSegmenter` (card, parameters, normalisation)."""

    card: ModelCard
    config: Inference2DConfig
    normalizer: Normalizer
    classes: tuple[ClassInfo, ...]
    label_divisor: int

    @property
    def cache_key(self) -> str:
        return f"model:{card_key(self.card)}:{self.config.model_dump_json()}:{self.normalizer}"

    def build(self, device: str | None = None) -> ModelSegmenter:
        return ModelSegmenter(self, device)

    def describe(self) -> dict[str, Any]:
        weights = self.card.weights
        return {
            "name": self.card.name,
            "architecture": self.card.architecture,
            "weights_sha256": weights.sha256,
            "weights": None if weights.sha256 else weights.uri,
            "source": self.card.source,
            "normalization": self.normalizer.description,
        }


def model_factory(
    model: str | ModelCard, config: Inference2DConfig, source: Any
) -> ModelSegmenterFactory:
    """The factory for a registered model name (or a card) and the volume ``source``."""
    if isinstance(model, str):
        card = get_card(model)
    elif isinstance(model, ModelCard):
        card = model
    else:
        raise TamaleInputError(f"expected a model name or a ModelCard, got {type(model).__name__}")
    classes = tuple(ClassInfo(c.id, c.name, c.kind) for c in card.classes)
    return ModelSegmenterFactory(
        card=card,
        config=config,
        normalizer=volume_normalizer(source, card),
        classes=classes,
        label_divisor=config.label_divisor,
    )
