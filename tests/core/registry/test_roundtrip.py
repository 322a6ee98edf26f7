"""End to end with a real tamale network (the ``tiny`` preset): register → info → export →
import on a fresh TAMALE_HOME → the model computes exactly the same outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tamale import _paths
from tamale.errors import TamaleInputError
from tamale.models import build_model, count_parameters, load_model, load_weights, save_weights
from tamale.registry import (
    ModelCard,
    export_model,
    format_info,
    get_card,
    import_model,
    list_models,
    local_card,
    model_info,
    register_model,
    save_card,
)


def _tiny_card(folder: Path, architecture: str = "tiny", seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    sha = save_weights(build_model(architecture), folder / "tiny.safetensors")
    card = ModelCard(
        name="tiny-mito",
        description="A tiny test network.",
        architecture="tiny",
        weights={"uri": "tiny.safetensors", "sha256": sha},
        classes=[{"id": 1, "name": "mitochondria", "kind": "instance"}],
        label_divisor=1000,
        padding_factor=32,
        inference={"confidence_thr": 0.5, "centers_min_distance": 3},
        finetune={"patch_size": 256, "iterations": 100},
        license="CC-BY-NC-SA-3.0",
        training_data="none: random weights",
    )
    return save_card(card, folder / "tiny.yaml")


def _predict(card: ModelCard, x: torch.Tensor) -> dict[str, torch.Tensor]:
    model = load_model(local_card(card), "cpu")
    return model.predict(x)


def test_register_info_export_import_predict_identically(tmp_path, monkeypatch):
    card_path = _tiny_card(tmp_path / "mine")
    reg = register_model(card_path)
    expected_params = count_parameters(build_model("tiny"))["total"]
    assert reg.parameters == expected_params

    info = model_info("tiny-mito")
    assert info.parameters == expected_params and info.parameter_parts["encoder"] > 0
    assert info.architecture == "tiny" and info.padding_factor == 32
    text = format_info(info)
    assert f"Parameters: {expected_params:,} (encoder" in text
    assert "centers_min_distance: 3" in text and "patch_size: 256" in text
    assert "License: CC-BY-NC-SA-3.0" in text

    x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(3))
    before = _predict(get_card("tiny-mito"), x)
    archive = export_model("tiny-mito", tmp_path / "tiny-mito.zip")

    monkeypatch.setenv("TAMALE_HOME", str(tmp_path / "another_machine"))
    assert list_models() == []
    import_model(archive, name="tiny-imported")
    after = _predict(get_card("tiny-imported"), x)
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key


def test_weights_of_another_architecture_are_refused_naming_the_layer(tmp_path):
    card_path = _tiny_card(tmp_path / "mine", architecture="tiny_bifpn")
    text = card_path.read_text()
    card_path.write_text("\n".join(ln for ln in text.splitlines() if "sha256" not in ln) + "\n")
    with pytest.raises(TamaleInputError, match=r"do not match architecture tiny: .*layer '"):
        register_model(card_path)
    assert list_models() == []


def test_url_weights_run_after_registration(tmp_path, http_server):
    card_path = _tiny_card(tmp_path / "mine")
    weights = tmp_path / "mine" / "tiny.safetensors"
    http_server.files["models/tiny.safetensors"] = weights.read_bytes()
    reg = register_model(card_path, weights=http_server.url("models/tiny.safetensors"))
    x = torch.rand(1, 1, 32, 32)
    local = load_weights(build_model("tiny"), weights)
    out = _predict(get_card(reg.name), x)
    ref = local.eval().predict(x)
    assert all(torch.equal(out[k], ref[k]) for k in ref)
    # 2D inference runs it from the card with local weights (downloaded when missing)
    from tamale.inference import Inference2DConfig, ModelCache, infer_2d

    result = infer_2d(
        np.zeros((64, 64), np.uint8),
        local_card(get_card(reg.name)),
        Inference2DConfig(use_gpu=False),
        cache=ModelCache(),
    )
    assert result.labels.shape == (64, 64)


def test_info_counts_parameters_of_url_models_without_downloading(tmp_path, http_server):
    card_path = _tiny_card(tmp_path / "mine")
    http_server.files["t.safetensors"] = (tmp_path / "mine" / "tiny.safetensors").read_bytes()
    reg = register_model(card_path, weights=http_server.url("t.safetensors"))
    n = len(http_server.requests)
    for f in _paths.downloads_dir().iterdir():
        f.unlink()  # clear the cache
    info = model_info(reg.name)
    assert info.parameters == reg.parameters and not info.weights[0].available
    assert len(http_server.requests) == n


def test_2d_inference_is_identical_after_export_and_import(tmp_path, monkeypatch):
    from tamale.inference import Inference2DConfig, ModelCache, infer_2d
    from tamale.synthetic import synthetic_em_2d

    register_model(_tiny_card(tmp_path / "mine", seed=5))
    image = synthetic_em_2d((96, 96), seed=1).image
    cfg = Inference2DConfig(use_gpu=False, confidence_thr=0.0, center_confidence_thr=0.0)
    before = infer_2d(image, "tiny-mito", cfg, cache=ModelCache())
    archive = export_model("tiny-mito", tmp_path / "t.zip")
    monkeypatch.setenv("TAMALE_HOME", str(tmp_path / "another_machine"))
    import_model(archive, name="tiny-again")
    after = infer_2d(image, "tiny-again", cfg, cache=ModelCache())
    assert before.labels.dtype == after.labels.dtype
    assert len(np.unique(before.labels)) > 2  # several objects, not an empty result
    assert (before.labels == after.labels).all()
