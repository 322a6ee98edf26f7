"""Fixtures for model tests: tiny models and inputs, one torch thread budget untouched."""

from __future__ import annotations

import pytest
import torch

from tamale.models import build_model


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return build_model("tiny").eval()


@pytest.fixture
def x64() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 1, 64, 64, generator=g)
