"""Safetensors weights: round trip, mismatch errors, hashes, loading from cards."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from tamale.errors import TamaleInputError
from tamale.models import build_model, file_sha256, load_model, load_weights, save_weights
from tamale.registry.card import ModelCard, save_card


def _card(tmp_path, uri="w.safetensors", sha=None, arch="tiny", **extra) -> ModelCard:
    data = {
        "name": "tiny-test",
        "architecture": arch,
        "weights": {"uri": uri, "sha256": sha, "format": "safetensors"},
        "classes": [{"id": 1, "name": "mito", "kind": "instance"}],
        "padding_factor": 32,
        **extra,
    }
    card = ModelCard.from_mapping(data)
    save_card(card, tmp_path / "card.yaml")
    return card.with_path(tmp_path / "card.yaml")


def test_round_trip_is_bit_identical(tmp_path, tiny, x64):
    sha = save_weights(tiny, tmp_path / "w.safetensors")
    assert sha == file_sha256(tmp_path / "w.safetensors") and len(sha) == 64
    with safe_open(str(tmp_path / "w.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["architecture"] == "tiny" and json.loads(meta["options"]) == {}
    model = load_model(_card(tmp_path, sha=sha))
    assert not model.training and model.padding_factor == 32 and model.num_classes == 1
    a, b = tiny.predict(x64, upsample=2, fine=True), model.predict(x64, upsample=2, fine=True)
    for k in a:
        assert torch.equal(a[k], b[k])


def test_card_options_and_classes_shape_the_model(tmp_path):
    torch.manual_seed(0)
    three = build_model("tiny", num_classes=3, decoder_channels=8)
    save_weights(three, tmp_path / "w.safetensors")
    card = _card(
        tmp_path,
        architecture_options={"decoder_channels": 8},
        classes=[{"id": i, "name": f"c{i}", "kind": "instance"} for i in (1, 2)],
        padding_factor=64,
    )
    model = load_model(card)
    assert model.num_classes == 3 and model.padding_factor == 64
    assert build_model(card).semantic_decoder.fuse[0].pw.out_channels == 8


def test_mismatched_weights_name_the_layer(tmp_path, tiny):
    other = build_model("tiny", decoder_channels=8)
    save_weights(other, tmp_path / "w.safetensors")
    with pytest.raises(
        TamaleInputError,
        match=r"layer 'semantic_decoder\.aspp\.convs\.0\.conv\.weight' has shape \(8, 64, 1, 1\)",
    ):
        load_weights(tiny, tmp_path / "w.safetensors")
    state = tiny.state_dict()
    del state["ins_xy.head.1.bias"]
    with pytest.raises(TamaleInputError, match=r"layer 'ins_xy\.head\.1\.bias' is missing"):
        load_weights(tiny, state)
    state = {**tiny.state_dict(), "extra.weight": torch.zeros(1)}
    with pytest.raises(TamaleInputError, match=r"unexpected layer 'extra\.weight'"):
        load_weights(tiny, state)
    # loading from a card reports the same
    with pytest.raises(TamaleInputError, match="do not match architecture tiny"):
        load_model(_card(tmp_path))


def test_sha256_mismatch(tmp_path, tiny):
    save_weights(tiny, tmp_path / "w.safetensors")
    with pytest.raises(TamaleInputError, match="SHA-256"):
        load_model(_card(tmp_path, sha="0" * 64))


def test_missing_remote_and_corrupt_weights(tmp_path, tiny):
    with pytest.raises(TamaleInputError, match="not found"):
        load_model(_card(tmp_path))
    with pytest.raises(TamaleInputError, match="remote"):
        load_model(_card(tmp_path, uri="https://example.org/w.safetensors"))
    (tmp_path / "w.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(TamaleInputError, match="not a readable safetensors"):
        load_model(_card(tmp_path))
    with pytest.raises(TamaleInputError, match="no quantized weights"):
        load_model(_card(tmp_path), quantized=True)
