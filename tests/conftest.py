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


@pytest.fixture
def make_tiny_model(tamale_home: Path):
    """Factory registering a tiny random-weight model in this test's TAMALE_HOME.

    ``make_tiny_model(name="tiny-test", classes=None, preset="tiny", seed=0)`` saves
    the preset's randomly initialised weights (safetensors, seeded) and a tamale card
    under ``tamale._paths.models_dir()/<name>/``, tells the registry (open model
    dropdowns refresh) and returns the name. ``classes`` is a list of
    ``(id, name, kind)`` tuples; the default is one instance class (mitochondria).
    """

    def make(
        name: str = "tiny-test",
        classes: list[tuple[int, str, str]] | None = None,
        preset: str = "tiny",
        seed: int = 0,
        **card_fields,
    ) -> str:
        import torch

        from tamale._paths import models_dir
        from tamale.models import build_model, save_weights
        from tamale.registry import ModelCard, notify_changed, save_card

        specs = classes or [(1, "mitochondria", "instance")]
        folder = models_dir() / name
        folder.mkdir(parents=True, exist_ok=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            n_out = 1 if len(specs) == 1 else len(specs) + 1
            model = build_model(preset, num_classes=n_out)
        sha = save_weights(model, folder / "weights.safetensors")
        card = ModelCard(
            name=name,
            architecture=preset,
            weights={"uri": "weights.safetensors", "sha256": sha},
            classes=[{"id": i, "name": n, "kind": k} for i, n, k in specs],
            padding_factor=model.padding_factor,
            **card_fields,
        )
        save_card(card, folder / "card.yaml")
        notify_changed()
        return name

    return make


@pytest.fixture
def tiny_model(make_tiny_model) -> str:
    """Name of a tiny random-weight one-class model registered in this test's TAMALE_HOME."""
    return make_tiny_model()


@pytest.fixture
def no_bundled_models(tmp_path_factory, monkeypatch):
    """Hide the package's bundled models (the built-in one) for tests that count the
    registry's models exactly: the registry then holds only what the test registers.
    Tests of bundled behaviour point ``bundled_dir`` at their own folder instead."""
    empty = tmp_path_factory.mktemp("no-bundled")
    monkeypatch.setattr("tamale.registry.store.bundled_dir", lambda: empty)
    return empty
