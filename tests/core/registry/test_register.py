"""Registering models: empanada cards with TorchScript files, URLs, names, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from registry_helpers import EMPANADA_CARD, sha256

from tamale import _paths
from tamale.config import ConfigError
from tamale.errors import TamaleInputError
from tamale.progress import Cancelled, CancelToken
from tamale.registry import events, get_card, list_models, register_model
from tamale.registry.install import MARKER


def _staging_is_empty() -> bool:
    root = _paths.user_data_dir() / ".staging"
    return not root.exists() or not any(root.iterdir())


def test_empanada_card_with_torchscript_registers_and_copies(empanada_card, scripted_model):
    before = scripted_model.read_bytes()
    heard = []
    unsubscribe = events.subscribe(lambda: heard.append(1))
    try:
        events_seen = []
        reg = register_model(empanada_card, progress=events_seen.append)
    finally:
        unsubscribe()
    assert reg.name == "TestNet" and list_models() == ["TestNet"] and heard == [1]
    assert reg.directory == _paths.models_dir() / "TestNet"
    assert sorted(p.name for p in reg.directory.iterdir()) == ["card.yaml", MARKER, "weights.pth"]
    # the user's files are untouched, the weights were copied and hashed
    assert scripted_model.read_bytes() == before and empanada_card.is_file()
    card = get_card("TestNet")
    assert card.weights.uri == "weights.pth" and card.weights.sha256 == sha256(scripted_model)
    assert card.source == "empanada" and card.label_divisor == 1000 and card.padding_factor == 16
    assert card.finetune["engine_params"]["nms_kernel"] == 7
    assert reg.parameters == 1 * 4 * 9 + 4
    assert {e.stage for e in events_seen} >= {"copy", "verify", "install"}
    assert _staging_is_empty()


def test_relative_model_path_resolves_against_the_card(tmp_path, scripted_model):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "Net.pth").write_bytes(scripted_model.read_bytes())
    (folder / "Net.yaml").write_text(EMPANADA_CARD.format(model="Net.pth"))
    assert register_model(folder / "Net.yaml").name == "Net"


def test_weights_override_and_name(empanada_card, scripted_model, tmp_path):
    text = empanada_card.read_text().replace(str(scripted_model), "/nowhere/missing.pth")
    empanada_card.write_text(text)
    reg = register_model(empanada_card, name="mito-v2", weights=str(scripted_model))
    assert reg.name == "mito-v2" and get_card("mito-v2").weights.uri == "weights.pth"


def test_url_weights_download_and_record_the_hash(
    empanada_card, scripted_model, http_server, cache_files
):
    http_server.files["files/TestNet.pth"] = scripted_model.read_bytes()
    url = http_server.url("files/TestNet.pth?download=1")
    reg = register_model(empanada_card, weights=url)
    card = get_card(reg.name)
    assert card.weights.uri == url and card.weights.sha256 == sha256(scripted_model)
    assert len(cache_files()) == 1
    # the weights are in the cache, not copied into the model's directory
    assert sorted(p.name for p in reg.directory.iterdir()) == ["card.yaml", MARKER]


def test_url_404_is_an_error_never_valid(empanada_card, http_server, cache_files):
    with pytest.raises(TamaleInputError, match="HTTP 404"):
        register_model(empanada_card, weights=http_server.url("nope.pth"))
    assert list_models() == [] and cache_files() == [] and _staging_is_empty()


def test_card_hash_is_verified_for_urls_and_files(
    tmp_path, scripted_model, http_server, cache_files
):
    http_server.files["w.pth"] = scripted_model.read_bytes()
    card = {
        "name": "hashed",
        "architecture": None,
        "weights": {"uri": http_server.url("w.pth"), "sha256": "1" * 64, "format": "torchscript"},
        "classes": [{"id": 1, "name": "mito", "kind": "instance"}],
    }
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(card))
    with pytest.raises(TamaleInputError, match="hash mismatch"):
        register_model(path)
    assert cache_files() == []
    with pytest.raises(TamaleInputError, match="hash mismatch"):
        register_model(path, weights=scripted_model)
    assert list_models() == [] and _staging_is_empty()
    card["weights"]["sha256"] = sha256(scripted_model)
    path.write_text(yaml.safe_dump(card))
    assert register_model(path).name == "hashed"


def test_duplicate_name_is_an_error_unless_replace(empanada_card, other_scripted_model):
    first = register_model(empanada_card)
    with pytest.raises(TamaleInputError, match="already registered"):
        register_model(empanada_card)
    with pytest.raises(TamaleInputError, match="already registered"):
        register_model(empanada_card, weights=other_scripted_model)
    assert get_card("TestNet").weights.sha256 == first.card.weights.sha256
    again = register_model(empanada_card, weights=other_scripted_model, replace=True)
    assert again.parameters != first.parameters
    assert get_card("TestNet").weights.sha256 == sha256(other_scripted_model)
    assert list_models() == ["TestNet"]


def test_replace_moves_a_folder_tamale_did_not_make_aside(empanada_card, tamale_home):
    # a folder the user made by hand in the models folder is never deleted
    manual = _paths.models_dir() / "TestNet"
    manual.mkdir(parents=True)
    (manual / "notes.txt").write_text("mine")
    register_model(empanada_card, replace=True)
    kept = list(_paths.archive_dir().glob("TestNet.replaced-*/notes.txt"))
    assert len(kept) == 1 and kept[0].read_text() == "mine"


def test_a_bundled_name_is_refused_even_with_replace(
    empanada_card, tmp_path, monkeypatch, scripted_model
):
    bundled = tmp_path / "bundled"
    (bundled / "TestNet").mkdir(parents=True)
    (bundled / "TestNet" / "card.yaml").write_text(EMPANADA_CARD.format(model=scripted_model))
    monkeypatch.setattr("tamale.registry.store.bundled_dir", lambda: bundled)
    for replace in (False, True):
        with pytest.raises(TamaleInputError, match="bundled"):
            register_model(empanada_card, replace=replace)
    assert not (_paths.models_dir() / "TestNet").exists()


@pytest.mark.parametrize("bad", ["../evil", "a/b", "with space", "..", ".hidden"])
def test_bad_names_are_refused(empanada_card, bad):
    with pytest.raises(TamaleInputError, match="not allowed"):
        register_model(empanada_card, name=bad)
    assert not _paths.models_dir().exists() or list(_paths.models_dir().iterdir()) == []


def test_unknown_key_and_wrong_type_are_named(empanada_card, tmp_path):
    empanada_card.write_text(empanada_card.read_text() + "colour: red\n")
    with pytest.raises(ConfigError, match="colour"):
        register_model(empanada_card)
    card = tmp_path / "t.yaml"
    card.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "architecture": None,
                "weights": {"uri": "w.pth", "format": "torchscript"},
                "classes": [{"id": 1, "name": "m", "kind": "instance"}],
                "padding_factor": "large",
            }
        )
    )
    with pytest.raises(ConfigError, match="padding_factor"):
        register_model(card)
    assert list_models() == []


def test_missing_files_are_named(empanada_card, tmp_path):
    with pytest.raises(TamaleInputError, match="model card not found"):
        register_model(tmp_path / "nope.yaml")
    with pytest.raises(TamaleInputError, match=r"weights file not found: .*missing\.pth"):
        register_model(empanada_card, weights=tmp_path / "missing.pth")
    with pytest.raises(TamaleInputError, match="quantized weights file not found"):
        register_model(empanada_card, weights_quantized=tmp_path / "missing_q.pth")
    assert list_models() == [] and _staging_is_empty()


def test_weights_that_are_not_a_model_are_refused(empanada_card, tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(TamaleInputError, match="not a TorchScript file"):
        register_model(empanada_card, weights=junk)
    assert list_models() == [] and _staging_is_empty()


def test_first_registration_with_quantized_weights_works(empanada_card, other_scripted_model):
    # empanada's import failed when the first model had a quantized file
    assert not _paths.user_data_dir().exists() or not _paths.models_dir().exists()
    reg = register_model(empanada_card, weights_quantized=other_scripted_model)
    card = get_card(reg.name)
    assert card.weights_quantized.uri == "weights_quantized.pth"
    assert card.weights_quantized.sha256 == sha256(other_scripted_model)
    assert (reg.directory / "weights_quantized.pth").is_file()


def test_cancel_registers_nothing(empanada_card):
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        register_model(empanada_card, cancel=token)
    assert list_models() == [] and _staging_is_empty()


def test_url_in_a_card_survives_as_text(empanada_card, scripted_model, http_server):
    # empanada's FileEdit turned https:// into https:/ ; here the URL is kept verbatim
    http_server.files["x/TestNet.pth"] = scripted_model.read_bytes()
    url = http_server.url("x/TestNet.pth")
    empanada_card.write_text(empanada_card.read_text().replace(str(scripted_model), url))
    reg = register_model(empanada_card)
    assert get_card(reg.name).weights.uri == url
    assert "://" in url and os.sep not in url.split("://", 1)[0]


def test_user_model_files_are_read_only_to_registration(empanada_card, scripted_model):
    mtime = scripted_model.stat().st_mtime_ns
    register_model(empanada_card)
    assert scripted_model.stat().st_mtime_ns == mtime
    assert Path(empanada_card).read_text().startswith("class_names")
