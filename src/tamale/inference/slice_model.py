"""What 3D inference needs from a 2D model, and a model-free stand-in for tests.

Stack inference calls a 2D pipeline in three public steps (see
:mod:`tamale.inference` for the real one):

1. ``predict(images)``: a batch of 2D slices (B, H, W) -> one raw prediction per
   slice (semantic probabilities at slice resolution, centres and offsets);
2. ``probabilities(raw)``: the (C, H, W) semantic probabilities of a raw
   prediction -- 3D inference replaces them by their median across slices;
3. ``panoptic(raw, probs)``: a raw prediction with (filtered) probabilities ->
   a 2D panoptic image (uint32, ``class_id * label_divisor + instance``).

A :class:`SegmenterFactory` is the picklable recipe (model card + parameters)
that a worker process turns into a :class:`SliceSegmenter` on its own device;
workers cache what they build, so a model is loaded once per worker.

:class:`LabelEchoFactory` is a stand-in without a network: its "images" are
panoptic label volumes and it predicts exactly them. Tests and benchmarks use
it to drive the whole 3D machinery (median filter, linking, slabs, stores,
clusters) with known answers.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "ClassInfo",
    "LabelEchoFactory",
    "SegmenterFactory",
    "SliceSegmenter",
    "build_cached",
    "class_key",
]


def class_key(name: str) -> str:
    """A file-system and zarr-safe key for a class name."""
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._") or "class"
    return key


@dataclass(frozen=True)
class ClassInfo:
    """One output class of a model."""

    id: int
    name: str
    kind: Literal["instance", "semantic"]

    @property
    def key(self) -> str:
        """Name of the class's output array."""
        return class_key(self.name)


@runtime_checkable
class SliceSegmenter(Protocol):
    """A 2D model ready to run on one device (see module docstring)."""

    def predict(self, images: np.ndarray) -> list[Any]: ...

    def probabilities(self, raw: Any) -> Any: ...

    def panoptic(self, raw: Any, probs: Any) -> np.ndarray: ...


@runtime_checkable
class SegmenterFactory(Protocol):
    """A picklable recipe for a :class:`SliceSegmenter`."""

    classes: tuple[ClassInfo, ...]
    label_divisor: int

    @property
    def cache_key(self) -> str: ...

    def build(self, device: str | None = None) -> SliceSegmenter: ...

    def describe(self) -> dict[str, Any]: ...


_cache: dict[tuple[str, str | None], SliceSegmenter] = {}
_cache_lock = threading.Lock()


def build_cached(factory: SegmenterFactory, device: str | None = None) -> SliceSegmenter:
    """Build ``factory`` on ``device`` once per process and reuse it."""
    key = (factory.cache_key, device)
    with _cache_lock:
        seg = _cache.get(key)
        if seg is None:
            seg = factory.build(device)
            _cache[key] = seg
        return seg


class _EchoSegmenter:
    def __init__(self, factory: LabelEchoFactory) -> None:
        self.f = factory

    def predict(self, images: np.ndarray) -> list[Any]:
        return [np.asarray(img).astype(np.int64) for img in images]

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        cls = raw // self.f.label_divisor
        return np.stack([(cls == c.id) for c in self.f.classes]).astype(np.float32)

    def panoptic(self, raw: np.ndarray, probs: Any) -> np.ndarray:
        probs = np.asarray(probs)
        div = self.f.label_divisor
        best = np.argmax(probs, axis=0)
        on = np.take_along_axis(probs, best[None], 0)[0] >= self.f.threshold
        ids = np.array([c.id for c in self.f.classes])
        cls = np.where(on, ids[best], 0)
        out = np.zeros(raw.shape, np.uint32)
        for c in self.f.classes:
            here = cls == c.id
            if not here.any():
                continue
            if c.kind == "semantic":
                out[here] = c.id * div
                continue
            same = here & (raw // div == c.id) & (raw % div != 0)
            out[same] = raw[same]
            # foreground the median filter added where the input had none: a new instance
            fresh = here & ~same
            if fresh.any():
                top = int(raw[same].max() % div) if same.any() else 0
                out[fresh] = c.id * div + top + 1
        return out


@dataclass(frozen=True)
class LabelEchoFactory:
    """A model stand-in whose input is a panoptic label volume it "predicts" exactly.

    Semantic probabilities are 1 where a voxel's class is the channel's class
    and 0 elsewhere; after the median filter a pixel belongs to the class
    with probability >= ``threshold``, keeping its input instance id (pixels
    the filter turned on get a new id).
    """

    classes: tuple[ClassInfo, ...] = (ClassInfo(1, "mito", "instance"),)
    label_divisor: int = 1000
    threshold: float = 0.5

    @property
    def cache_key(self) -> str:
        return f"echo:{self.classes}:{self.label_divisor}:{self.threshold}"

    def build(self, device: str | None = None) -> SliceSegmenter:
        return _EchoSegmenter(self)

    def describe(self) -> dict[str, Any]:
        return {"name": "label-echo", "kind": "test stand-in"}
