from __future__ import annotations

from pathlib import Path

import pytest

from tamale import _paths
from tamale.errors import TamaleInputError
from tamale.registry import ModelCard, events, get_card, list_models, save_card
from tamale.registry.store import user_card_path


def write_user_card(name: str) -> Path:
    card = ModelCard(
        name=name,
        architecture="tiny",
        weights={"uri": "weights.safetensors"},
        classes=[{"id": 1, "name": "mito", "kind": "instance"}],
    )
    path = user_card_path(name)
    path.parent.mkdir(parents=True)
    return save_card(card, path)


def test_user_models_are_listed_by_name_and_resolved_per_call(
    tamale_home: Path, monkeypatch, tmp_path
):
    assert list_models() == []
    write_user_card("zeta")
    write_user_card("alpha")
    assert list_models() == ["alpha", "zeta"]
    card = get_card("alpha")
    assert card.name == "alpha"
    assert card.resolve(card.weights) == str(_paths.models_dir() / "alpha" / "weights.safetensors")
    monkeypatch.setenv("TAMALE_HOME", str(tmp_path / "elsewhere"))
    assert list_models() == []


def test_unknown_model_lists_what_exists():
    write_user_card("alpha")
    with pytest.raises(TamaleInputError, match=r"no model named 'beta'.*available: alpha"):
        get_card("beta")


def test_model_dir_refuses_traversal():
    with pytest.raises(TamaleInputError):
        user_card_path("../../etc")


def test_subscribers_hear_changes_until_they_unsubscribe():
    heard = []
    unsubscribe = events.subscribe(lambda: heard.append(1))
    events.notify_changed()
    unsubscribe()
    events.notify_changed()
    assert heard == [1]


def test_folders_that_are_not_valid_names_are_not_listed():
    write_user_card("good")
    odd = _paths.models_dir() / "has space"
    odd.mkdir()
    (odd / "card.yaml").write_text("name: x\n")
    (_paths.models_dir() / "no-card").mkdir()
    assert list_models() == ["good"]
