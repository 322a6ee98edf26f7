"""Shared fixtures for engine and plugin tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# the real EM datasets beside the checkout; TAMALE_SHARED_DATA overrides
SHARED_DATA = Path(
    os.environ.get("TAMALE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(autouse=True)
def tamale_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty TAMALE_HOME: the user's real registry is never touched."""
    home = tmp_path_factory.mktemp("tamale_home")
    monkeypatch.setenv("TAMALE_HOME", str(home))
    return home


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real EM datasets beside the checkout (../shared/data); skipped if absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real EM data not found at {SHARED_DATA}")
    return SHARED_DATA
