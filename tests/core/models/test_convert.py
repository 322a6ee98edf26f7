"""TorchScript adapter and conversion of empanada-style TorchScript models."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tamale.errors import TamaleInputError
from tamale.models import TorchScriptModel, build_model, fold_batchnorm, load_model, save_weights
from tamale.models.empanada import _state_groups, convert_empanada
from tamale.registry.card import ModelCard


class EmpanadaStyle(nn.Module):
    """empanada's export contract: ``forward(x, render_steps, interpolate_ins)`` → dict."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.net = model

    def forward(
        self, x: torch.Tensor, render_steps: int = 2, interpolate_ins: bool = True
    ) -> dict[str, torch.Tensor]:
        sem, feats, ctr, off = self.net.trunk(x)
        out = {"sem_logits": self.net.render(sem, feats, render_steps)}
        if interpolate_ins:
            ctr = F.interpolate(ctr, scale_factor=4.0, mode="bilinear", align_corners=True)
            off = F.interpolate(off, scale_factor=4.0, mode="bilinear", align_corners=True)
        out["ctr_hmp"] = ctr
        out["offsets"] = off
        return out


def assert_rendered_close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> None:
    """Equal up to float error except at < 1% of pixels, and within 1e-2 everywhere."""
    assert a.shape == b.shape
    diff = (a - b).abs()
    assert (diff > tol).float().mean() < 0.01
    assert diff.max() < 1e-2


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def _script(module: nn.Module, path) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(module)
        torch.jit.save(scripted, str(path))
    return scripted


def _empanada_card(tmp_path, pth: str, padding: int = 32, quantized: str = "null") -> ModelCard:
    (tmp_path / "m.yaml").write_text(
        f"class_names: {{1: mito}}\nlabels: [1]\nthing_list: [1]\nmodel: {pth}\n"
        f"model_quantized: {quantized}\n"
        f"padding_factor: {padding}\nnorms: {{mean: 0.5, std: 0.2}}\n"
    )
    from tamale.registry.card import load_card

    return load_card(tmp_path / "m.yaml", name="mito-test")


@pytest.mark.parametrize("name", ["tiny", "tiny_bifpn"])
def test_torchscript_adapter_runs_predict(tmp_path, name, x64):
    torch.manual_seed(0)
    model = build_model(name).eval()
    _script(EmpanadaStyle(model), tmp_path / "m.pth")
    card = _empanada_card(tmp_path, "m.pth", padding=model.padding_factor)
    ts = load_model(card)
    assert isinstance(ts, TorchScriptModel)
    assert ts.padding_factor == model.padding_factor and ts.num_classes == 1
    x = torch.randn(1, 1, 128, 128)
    for upsample, fine in [(1, False), (2, True)]:
        a, b = ts.predict(x, upsample, fine), model.predict(x, upsample, fine)
        assert set(a) == {"sem_logits", "ctr_hmp", "offsets"}
        for k in b:
            torch.testing.assert_close(a[k], b[k])
    with pytest.raises(TamaleInputError, match="padding factor"):
        ts.predict(torch.zeros(1, 1, 100, 128))
    with pytest.raises(TamaleInputError, match="float32 only"):
        load_model(card, precision="int8")
    # empanada's int8 archive (here: the same scripted module) is used for int8
    card = _empanada_card(tmp_path, "m.pth", padding=model.padding_factor, quantized="m.pth")
    assert isinstance(load_model(card, precision="int8"), TorchScriptModel)


@pytest.mark.parametrize(
    ("name", "fold"),
    [("tiny", "encoder"), ("tiny", "all"), ("tiny", "none"), ("tiny_bifpn", "encoder")],
)
def test_convert_empanada_equal_outputs(tmp_path, name, fold):
    torch.manual_seed(0)
    original = build_model(name, num_classes=3).eval()
    _randomise_bn(original)
    x = torch.randn(2, 1, 128, 128)
    expected = original.predict(x, upsample=2, fine=True)
    # empanada exported fuse_model()-ed networks: BN folded in some parts only
    exported = build_model(name, num_classes=3).eval()
    exported.load_state_dict(original.state_dict())
    if fold == "encoder":
        fold_batchnorm(exported.encoder)
    elif fold == "all":
        fold_batchnorm(exported)
    scripted = _script(EmpanadaStyle(exported), tmp_path / "m.pth")
    model, card = convert_empanada(scripted, preset=name)
    assert model.architecture == name and model.num_classes == 3
    assert model.frozen_bn and not model.training
    got = model.predict(x, upsample=2, fine=True)
    for k in ("ctr_hmp", "offsets"):
        torch.testing.assert_close(got[k], expected[k], rtol=1e-4, atol=1e-4)
    # PointRend picks the most uncertain pixels: float rounding may swap a few near-ties
    assert_rendered_close(got["sem_logits"], expected["sem_logits"])
    for a, b in zip(model.trunk(x), original.trunk(x)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # the card round-trips through safetensors into the same model
    assert card.architecture == name and card.architecture_options["num_classes"] == 3
    sha = save_weights(model, tmp_path / card.weights.uri)
    card = card.model_copy(update={"weights": card.weights.model_copy(update={"sha256": sha})})
    card = card.with_path(tmp_path / "card.yaml")
    again = load_model(card)
    torch.testing.assert_close(again.predict(x)["sem_logits"], model.predict(x)["sem_logits"])


def test_convert_from_path_with_card(tmp_path):
    torch.manual_seed(0)
    original = build_model("tiny").eval()
    _script(EmpanadaStyle(fold_batchnorm(original)), tmp_path / "m.pth")
    card = _empanada_card(tmp_path, "m.pth")
    _, new = convert_empanada(tmp_path / "m.pth", card, preset="tiny")
    assert new.name == "mito-test" and new.norms.mean == 0.5 and new.classes[0].name == "mito"
    assert new.source == "tamale" and new.padding_factor == 32


def test_convert_mismatch_names_the_layer(tmp_path):
    scripted = _script(EmpanadaStyle(build_model("tiny_bifpn").eval()), tmp_path / "m.pth")
    with pytest.raises(TamaleInputError, match=r"layout of tiny: tamale layer 'encoder\.stem"):
        convert_empanada(scripted, preset="tiny", options={"encoder": "resnet18"})
    with pytest.raises(TamaleInputError, match="matches no tamale preset"):
        convert_empanada(scripted)


def test_top_level_modules_in_another_order():
    torch.manual_seed(0)
    original = build_model("tiny_bifpn", num_classes=3).eval()
    _randomise_bn(original)
    shuffled = nn.Module()  # empanada's module names, registered in another order
    for name in reversed([n for n, _ in original.named_children()]):
        shuffled.add_module(name, getattr(original, name))
    fold_batchnorm(shuffled.encoder)
    model, _ = convert_empanada(shuffled, preset="tiny_bifpn")
    x = torch.randn(1, 1, 128, 128)
    for a, b in zip(model.trunk(x), original.trunk(x)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_shared_modules_are_read_once():
    conv = nn.Conv2d(4, 4, 3, bias=False)
    bn = nn.BatchNorm2d(4)
    shared = nn.ModuleList([nn.Sequential(conv, bn), nn.Sequential(conv, bn)])
    groups = _state_groups(shared.state_dict(), dedupe=True)
    assert [(g.kind, g.prefix) for g in groups] == [("conv", "0.0"), ("bn", "0.1")]
