"""Fixtures for training tests: tiny training sets on disk and tiny run configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _training_helpers import write_set

from tamale.synthetic import synthetic_em_2d
from tamale.training import TrainConfig


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests run on a shared CPU: keep torch to one thread (restored afterwards)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def em_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Two synthetic 128 x 128 EM images with mitochondria instances."""
    return [(em.image, em.labels) for em in (synthetic_em_2d((128, 128), seed=s) for s in range(2))]


@pytest.fixture
def train_dir(tmp_path: Path, em_pairs) -> Path:
    """A training set of the two synthetic images (one source)."""
    return write_set(tmp_path / "train", [p[0] for p in em_pairs], [p[1] for p in em_pairs])


@pytest.fixture
def make_config(tmp_path: Path, train_dir: Path):
    """``make_config(**overrides)``: a tiny, fast run (tiny preset, 64^2 patches, batch 4)."""

    def make(**overrides) -> TrainConfig:
        values = {
            "model_name": "trained",
            "train_dir": train_dir,
            "model_dir": tmp_path / "models",
            "architecture": "tiny",
            "iterations": 3,
            "patch_size": 64,
            "batch_size": 4,
            "device": "cpu",
        }
        values.update(overrides)
        return TrainConfig.from_mapping(values)

    return make
