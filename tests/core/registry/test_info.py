"""Model info: labeling ids, patch sizes, parameter count, files, rendering."""

from __future__ import annotations

import pytest
import yaml

from tamale.errors import TamaleInputError
from tamale.registry import format_info, model_info, register_model
from tamale.registry.info import labeling_ids


def test_info_of_a_registered_empanada_model(empanada_card, scripted_model):
    reg = register_model(empanada_card)
    info = model_info("TestNet")
    assert info.location == "user" and info.architecture == "TorchScript"
    assert info.card_format == "empanada" and info.parameters == reg.parameters == 40
    assert info.padding_factor == 16 and info.label_divisor == 1000
    (mito,) = info.classes
    assert (mito.name, mito.kind, mito.first_label) == ("mito", "instance", 1001)
    assert "1001, 1002, 1003" in mito.labeling
    assert info.weights[0].available and info.weights[0].path == reg.directory / "weights.pth"
    assert info.weights[0].size_bytes == scripted_model.stat().st_size
    assert info.created["origin"] == "register"
    text = format_info(info)
    assert text.startswith("# TestNet\n")
    assert "label each mito object with its own id: 1001, 1002, 1003, ..." in text
    assert "Use a label divisor of 1000" in text
    assert "divisible by 16 (e.g. 128, 256, 384, 512)" in text
    assert "Parameters: 40" in text
    assert "A scripted test model" in text
    assert str(reg.directory / "weights.pth") in text
    assert "nms_kernel: 7" in text  # finetuning defaults from FINETUNE


def test_panoptic_classes_get_their_own_ranges(tmp_path, scripted_model):
    card = {
        "name": "pan",
        "architecture": None,
        "weights": {"uri": str(scripted_model), "format": "torchscript"},
        "classes": [
            {"id": 1, "name": "er", "kind": "semantic"},
            {"id": 2, "name": "mitochondria", "kind": "instance"},
        ],
        "label_divisor": 1000,
        "padding_factor": 128,
        "license": "CC-BY-4.0",
        "training_data": "synthetic",
        "quality": {"f1_at_0.5": 0.91},
        "inference": {"confidence_thr": 0.4},
        "citation": "Doe et al. (2024) doi:10.0000/example",
    }
    path = tmp_path / "pan.yaml"
    path.write_text(yaml.safe_dump(card))
    register_model(path)
    info = model_info("pan")
    er, mito = info.classes
    assert er.first_label == 1001 and "label every er pixel 1001" in er.labeling
    assert mito.first_label == 2001 and "2001, 2002, 2003" in mito.labeling
    text = format_info(info)
    for piece in ("128, 256, 384, 512", "License: CC-BY-4.0", "Training data: synthetic"):
        assert piece in text
    assert "f1_at_0.5: 0.91" in text and "confidence_thr: 0.4" in text
    assert "Cite: Doe et al. (2024) doi:10.0000/example" in text


def test_labeling_ids_without_divisor():
    assert labeling_ids(3, None) == [1, 2, 3]
    assert labeling_ids(2, 1000) == [2001, 2002, 2003]


def test_url_model_not_downloaded_says_so(tmp_path, scripted_model):
    card = {
        "name": "remote",
        "architecture": None,
        "weights": {"uri": "https://example.invalid/remote.pth", "format": "torchscript"},
        "classes": [{"id": 1, "name": "mito", "kind": "instance"}],
    }
    from tamale import _paths
    from tamale.registry.store import user_card_path

    path = user_card_path("remote")
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(card))
    info = model_info("remote")
    assert info.parameters is None and "not downloaded" in info.parameters_note
    assert not info.weights[0].available
    assert info.weights[0].path.parent == _paths.downloads_dir()
    text = format_info(info)
    assert "not downloaded yet" in text and "https://example.invalid/remote.pth" in text


def test_unknown_model_is_an_error():
    with pytest.raises(TamaleInputError, match="no model named 'ghost'"):
        model_info("ghost")
