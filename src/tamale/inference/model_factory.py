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

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from tamale.errors import TamaleInputError
from tamale.inference.config import Inference2DConfig
from tamale.inference.device import choose_device
from tamale.inference.engine import card_key, choose_precision, get_engine
from tamale.inference.normalize import Normalizer, make_normalizer
from tamale.inference.predict import predict_raw
from tamale.inference.slice_model import ClassInfo
from tamale.inference.tiling import Tile, plan_tiles, stitch
from tamale.postprocess import ClassTable, RawPrediction, panoptic_labels, renumber_instances
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


class TiledRaw(tuple):
    """The raw predictions of a tiled slice: one per tile, plus the slice's shape."""

    shape: tuple[int, int]

    def __new__(cls, parts: Any, shape: tuple[int, int]) -> TiledRaw:
        obj = super().__new__(cls, parts)
        obj.shape = (int(shape[0]), int(shape[1]))
        return obj


class ModelSegmenter:
    """A loaded model on one device, running the 2D pipeline's three steps.

    Slices larger than ``config.tile_size`` (model-input pixels) are cut into the 2D
    pipeline's overlapping tiles: a slice's raw prediction is then the tuple of its
    tiles' predictions, the median filter works tile by tile (the tiles of every slice
    are the same regions), and :meth:`panoptic` post-processes each tile and stitches
    them (:func:`tamale.inference.tiling.stitch`), so objects crossing tile borders keep
    one id and memory is bounded by the tile size, not the slice size.
    """

    def __init__(self, factory: ModelSegmenterFactory, device: str | None) -> None:
        cfg = factory.config
        choice = choose_device(cfg.use_gpu)
        dev = choice.device
        if device is not None and dev.type == "cuda":
            dev = torch.device(device)
        # the same choice as 2D inference (int8 on a CPU, bfloat16 / float16 where native)
        precision, _note = choose_precision(cfg, dev, factory.card)
        self.engine = get_engine(factory.card, dev, precision)
        self.device = self.engine.device
        self.config = cfg
        self.normalizer = factory.normalizer
        table = ClassTable.from_classes(factory.card.classes)
        self.classes = table.semantic_only() if cfg.semantic_only else table
        self.classes.check_divisor(cfg.label_divisor)
        self._tiles: dict[tuple[int, int], list[Tile]] = {}

    def tiles(self, shape: tuple[int, int]) -> list[Tile]:
        """The tiles of a slice of ``shape`` (one tile: not tiled)."""
        if shape not in self._tiles:
            self._tiles[shape] = plan_tiles(
                shape,
                downsampling=self.config.downsampling,
                tile_size=self.config.tile_size,
                overlap=self.config.tile_overlap,
                align=math.lcm(self.engine.padding_factor, 4),
            )
        return self._tiles[shape]

    def slices_per_call(self, shape: tuple[int, int]) -> int:
        """Slices per :meth:`predict` call: the batch size, or 1 when slices are tiled
        (their tiles then fill the batches, and memory stays bounded by the tiles)."""
        return 1 if len(self.tiles(shape)) > 1 else self.config.batch_size

    def _forward(self, batch: np.ndarray) -> RawPrediction:
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        with torch.inference_mode():
            return predict_raw(
                self.engine.model,
                x,
                downsampling=self.config.downsampling,
                fine=self.config.fine_boundaries,
            )

    def predict(self, images: np.ndarray) -> list[Any]:
        images = np.asarray(images)
        tiles = self.tiles(images.shape[1:])
        norm = self.normalizer(images)
        if len(tiles) == 1:
            raw = self._forward(norm)
            return [raw[i] for i in range(raw.batch_size)]
        crops = [norm[b][t.read] for b in range(len(norm)) for t in tiles]
        raws: list[RawPrediction] = []
        step = max(1, self.config.batch_size)
        for k in range(0, len(crops), step):
            raw = self._forward(np.stack(crops[k : k + step]))
            raws.extend(raw[i] for i in range(raw.batch_size))
        n = len(tiles)
        return [TiledRaw(raws[b * n : (b + 1) * n], images.shape[1:]) for b in range(len(norm))]

    def probabilities(self, raw: Any) -> Any:
        if isinstance(raw, tuple):
            return tuple(r.sem_probs[0] for r in raw)
        return raw.sem_probs[0]

    def panoptic(self, raw: Any, probs: Any) -> np.ndarray:
        with torch.inference_mode():
            if not isinstance(raw, tuple):
                pan = panoptic_labels(
                    replace(raw, sem_probs=probs[None]), self.config, self.classes
                )
                return pan[0].cpu().numpy().astype(np.uint32)
            parts = [
                panoptic_labels(replace(r, sem_probs=p[None]), self.config, self.classes)[0]
                .cpu()
                .numpy()
                for r, p in zip(raw, probs)
            ]
        shape = raw.shape
        tiles = self.tiles(shape)
        things = self.classes.things
        stitched = stitch(tiles, parts, shape, things, self.config.label_divisor)
        return renumber_instances(stitched, things, self.config.label_divisor, split=False)


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

    def notes(self) -> list[str]:
        """What a worker on this machine will do differently from what was asked (no
        GPU, or a precision fallback), as 2D inference reports it; empty when nothing.

        Raises
        ------
        TamaleInputError
            When int8 is asked for on a CPU and no quantized model can be had (before
            any worker starts).
        """
        choice = choose_device(self.config.use_gpu)
        _, note = choose_precision(self.config, choice.device, self.card)
        return [m for m in (choice.message, note) if m]

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
