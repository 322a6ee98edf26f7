"""An "ideal network" for inference tests: it reads instance ids from its input.

Feed it a uint8 image whose values are instance ids (0 = background) through a card with
``norms = {mean: 0, std: 1/255}``: the normalised input is then the ids themselves, and
the model answers with the targets of what it sees (tile-local centres, offsets, a
confident semantic map), exactly like a perfect network looking at that tile would.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tamale.inference import Engine
from tamale.postprocess import make_targets
from tamale.registry import ModelCard


class IdealModel:
    """``predict(x, upsample, fine)`` from the ids encoded in ``x``."""

    def __init__(self, padding_factor: int = 32) -> None:
        self.padding_factor = padding_factor
        self.num_classes = 1
        self.calls: list[tuple[int, ...]] = []

    def predict(self, x: torch.Tensor, upsample: int = 1, fine: bool = False) -> dict:
        self.calls.append(tuple(x.shape))
        assert x.shape[-2] % self.padding_factor == 0 and x.shape[-1] % self.padding_factor == 0
        ids = torch.round(x[:, 0]).long().cpu().numpy()
        stride = 1 if fine else 4
        sem, ctr, off = [], [], []
        for img in ids:
            t = make_targets(img, stride=stride)
            sem.append(torch.from_numpy((img > 0).astype(np.float32) * 20 - 10)[None])
            ctr.append(torch.from_numpy(t.heatmap)[None])
            off.append(torch.from_numpy(t.offsets))
        sem_t = torch.stack(sem)
        if upsample > 1:
            sem_t = F.interpolate(sem_t, scale_factor=upsample, mode="nearest")
        return {
            "sem_logits": sem_t.to(x.device),
            "ctr_hmp": torch.stack(ctr).to(x.device),
            "offsets": torch.stack(off).to(x.device),
        }


def ideal_card(name: str = "ideal") -> ModelCard:
    return ModelCard(
        name=name,
        architecture="tiny",
        weights={"uri": "unused.safetensors"},
        classes=[{"id": 1, "name": "mitochondria", "kind": "instance"}],
        norms={"mean": 0.0, "std": 1 / 255},
        padding_factor=32,
    )


def ideal_engine(padding_factor: int = 32) -> Engine:
    return Engine(card=ideal_card(), model=IdealModel(padding_factor), device=torch.device("cpu"))


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to renaming ids one-to-one, 0 staying 0."""
    pairs = np.unique(np.stack([np.ravel(a), np.ravel(b)]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1])) and bool(
        ((pairs[0] == 0) == (pairs[1] == 0)).all()
    )
