"""Archive, restore, hide, unhide, remove; listing order; nothing deleted by surprise."""

from __future__ import annotations

from pathlib import Path

import pytest
from registry_helpers import EMPANADA_CARD

from tamale import _paths
from tamale.errors import TamaleInputError
from tamale.registry import (
    archive_model,
    events,
    get_card,
    hidden_models,
    hide_model,
    list_archived,
    list_models,
    model_info,
    register_model,
    remove_archived_model,
    restore_model,
    unhide_model,
)
from tamale.registry.store import bundled_dir


@pytest.fixture
def bundled(tmp_path, monkeypatch, scripted_model) -> Path:
    """Two bundled models in a fake package folder."""
    root = tmp_path / "package" / "bundled"
    for name in ("Zeta-builtin", "alpha-builtin"):
        (root / name).mkdir(parents=True)
        (root / name / "card.yaml").write_text(EMPANADA_CARD.format(model=scripted_model))
    monkeypatch.setattr("tamale.registry.store.bundled_dir", lambda: root)
    return root


@pytest.fixture
def heard():
    calls = []
    unsubscribe = events.subscribe(lambda: calls.append(1))
    yield calls
    unsubscribe()


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_listing_is_bundled_first_then_users_by_name(bundled, tmp_path, scripted_model):
    for name in ("beta", "Alpha", "gamma"):
        card = tmp_path / f"{name}.yaml"
        card.write_text(EMPANADA_CARD.format(model=scripted_model))
        register_model(card)
    assert list_models() == ["alpha-builtin", "Zeta-builtin", "Alpha", "beta", "gamma"]


def test_archive_and_restore_move_the_directory(empanada_card, heard):
    reg = register_model(empanada_card)
    files = _snapshot(reg.directory)
    heard.clear()
    where = archive_model("TestNet")
    assert where == _paths.archive_dir() / "TestNet" and _snapshot(where) == files
    assert list_models() == [] and list_archived() == ["TestNet"] and heard == [1]
    with pytest.raises(TamaleInputError, match="no model named"):
        get_card("TestNet")
    back = restore_model("TestNet")
    assert back == reg.directory and _snapshot(back) == files
    assert list_models() == ["TestNet"] and list_archived() == [] and heard == [1, 1]
    assert model_info("TestNet").parameters == 40


def test_archive_and_restore_refuse_collisions(empanada_card):
    register_model(empanada_card)
    archive_model("TestNet")
    register_model(empanada_card)
    with pytest.raises(TamaleInputError, match="is registered"):
        restore_model("TestNet")
    with pytest.raises(TamaleInputError, match="already exists"):
        archive_model("TestNet")
    with pytest.raises(TamaleInputError, match="no archived model named 'nope'"):
        restore_model("nope")
    with pytest.raises(TamaleInputError, match="no user model named 'nope'"):
        archive_model("nope")


def test_bundled_models_are_hidden_never_moved(bundled, heard):
    before = _snapshot(bundled)
    with pytest.raises(TamaleInputError, match="hide it instead"):
        archive_model("alpha-builtin")
    hide_model("alpha-builtin")
    assert list_models() == ["Zeta-builtin"] and hidden_models() == {"alpha-builtin"}
    assert (_paths.user_data_dir() / "hidden_models.txt").read_text() == "alpha-builtin\n"
    info = model_info("alpha-builtin", count=False)  # still described when asked by name
    assert info.hidden and info.location == "bundled"
    unhide_model("alpha-builtin")
    assert list_models() == ["alpha-builtin", "Zeta-builtin"] and heard == [1, 1]
    assert _snapshot(bundled) == before
    with pytest.raises(TamaleInputError, match="not hidden"):
        unhide_model("alpha-builtin")


def test_user_models_are_archived_not_hidden(empanada_card, bundled):
    register_model(empanada_card, name="mine")
    with pytest.raises(TamaleInputError, match="archive it instead"):
        hide_model("mine")
    with pytest.raises(TamaleInputError, match="no bundled model named 'ghost'"):
        hide_model("ghost")


def test_remove_deletes_only_archived_models_tamale_made(empanada_card, scripted_model, heard):
    register_model(empanada_card)
    archive_model("TestNet")
    remove_archived_model("TestNet")
    assert list_archived() == [] and scripted_model.is_file() and empanada_card.is_file()
    # a folder the user put in the archive by hand is never deleted
    manual = _paths.archive_dir() / "handmade"
    manual.mkdir(parents=True)
    (manual / "card.yaml").write_text("mine")
    with pytest.raises(TamaleInputError, match="not created by tamale"):
        remove_archived_model("handmade")
    assert (manual / "card.yaml").read_text() == "mine"
    with pytest.raises(TamaleInputError, match="no archived model"):
        remove_archived_model("TestNet")


@pytest.mark.parametrize("op", [archive_model, restore_model, hide_model, unhide_model])
def test_names_are_validated_everywhere(op):
    with pytest.raises(TamaleInputError, match="not allowed"):
        op("../../etc")


def test_bundled_folder_is_inside_the_package():
    import tamale

    assert bundled_dir().is_relative_to(Path(tamale.__file__).parent)
