from __future__ import annotations

import pytest

from tamale.registry import ModelCard, notify_changed, save_card
from tamale.registry.store import user_card_path
from tamale_napari._model_choice import model_combo

# these tests count the registry's models exactly: hide the built-in one
pytestmark = pytest.mark.usefixtures("no_bundled_models")


def add_model(name: str) -> None:
    card = ModelCard(
        name=name,
        architecture="tiny",
        weights={"uri": "w.safetensors"},
        classes=[{"id": 1, "name": "mito", "kind": "instance"}],
    )
    path = user_card_path(name)
    path.parent.mkdir(parents=True)
    save_card(card, path)


def test_every_model_combo_follows_the_registry(qtbot):
    a, b = model_combo(), model_combo(label="model to finetune")
    qtbot.addWidget(a.native)
    qtbot.addWidget(b.native)
    assert list(a.choices) == [] and list(b.choices) == []
    add_model("new-model")
    notify_changed()
    qtbot.waitUntil(
        lambda: list(a.choices) == ["new-model"] and list(b.choices) == ["new-model"], timeout=5000
    )


def test_model_combo_keeps_the_registry_order(qtbot):
    add_model("m-beta")
    combo = model_combo()
    qtbot.addWidget(combo.native)
    combo.value = "m-beta"
    add_model("m-alpha")
    add_model("m-gamma")
    notify_changed()
    qtbot.waitUntil(lambda: len(combo.choices) == 3, timeout=5000)
    assert list(combo.choices) == ["m-alpha", "m-beta", "m-gamma"]
    assert combo.value == "m-beta"  # the selection survives the refresh
