from __future__ import annotations

from pathlib import Path

import pytest

from tamale._names import check_name
from tamale.config import ConfigError
from tamale.errors import TamaleInputError
from tamale.registry.card import ModelCard, load_card, save_card

EMPANADA_YAML = """\
class_names:
  1: mito
description: MitoNet mini
labels: [1]
model: https://zenodo.org/record/6861565/files/MitoNet_v1_mini.pth?download=1
model_quantized: MitoNet_v1_mini_quantized.pth
norms: {mean: 0.57571, std: 0.12765}
padding_factor: 128
thing_list: [1]
FINETUNE:
  criterion: PanopticLoss
  dataset_class: SingleClassInstanceDataset
  engine_params: {confidence_thr: 0.5, label_divisor: 1000, nms_kernel: 7}
"""

PANOPTIC_EMPANADA = """\
class_names: {1: er, 2: mito, 3: nucleus}
labels: [1, 2, 3]
thing_list: [2]
model: /models/pan.pth
padding_factor: 16
norms: {mean: 0.5, std: 0.1}
"""


def test_empanada_card_loads_as_it_is(tmp_path: Path):
    f = tmp_path / "MitoNet_v1_mini.yaml"
    f.write_text(EMPANADA_YAML)
    card = load_card(f)
    assert card.name == "MitoNet_v1_mini" and card.source == "empanada"
    assert card.architecture is None and card.weights.format == "torchscript"
    assert card.weights.is_url and card.resolve(card.weights).startswith("https://zenodo.org/")
    assert card.resolve(card.weights_quantized) == str(tmp_path / "MitoNet_v1_mini_quantized.pth")
    assert card.padding_factor == 128 and card.label_divisor == 1000
    assert card.thing_list == [1] and card.class_names == {1: "mito"}
    assert card.finetune["engine_params"]["nms_kernel"] == 7


def test_empanada_panoptic_card_types_classes(tmp_path: Path):
    f = tmp_path / "pan.yaml"
    f.write_text(PANOPTIC_EMPANADA)
    card = load_card(f, name="liver")
    assert [(c.id, c.name, c.kind) for c in card.classes] == [
        (1, "er", "semantic"),
        (2, "mito", "instance"),
        (3, "nucleus", "semantic"),
    ]
    assert card.label_divisor is None and card.norms.std == 0.1


def test_unknown_keys_are_named(tmp_path: Path):
    f = tmp_path / "bad.yaml"
    f.write_text(EMPANADA_YAML + "extra_thing: 1\n")
    with pytest.raises(ConfigError, match="extra_thing"):
        load_card(f)
    g = tmp_path / "bad2.yaml"
    card = ModelCard(
        name="m",
        architecture="x",
        weights={"uri": "w.safetensors"},
        classes=[{"id": 1, "name": "mito", "kind": "instance"}],
    )
    save_card(card, g)
    g.write_text(g.read_text() + "colour: red\n")
    with pytest.raises(ConfigError, match="colour: unknown key"):
        load_card(g)
    g.write_text(
        g.read_text()
        .replace("padding_factor: 16", "padding_factor: big")
        .replace("colour: red\n", "")
    )
    with pytest.raises(ConfigError, match="padding_factor"):
        load_card(g)


def test_round_trip_and_relative_weights(tmp_path: Path):
    card = ModelCard(
        name="tiny-1",
        architecture="panoptic_deeplab_r18",
        weights={"uri": "tiny.safetensors", "sha256": "A" * 64},
        classes=[{"id": 1, "name": "mitochondria", "kind": "instance"}],
        license="CC-BY-NC-SA-3.0",
        quality={"f1_at_0.5": 0.9},
    )
    assert card.weights.sha256 == "a" * 64
    path = save_card(card, tmp_path / "tiny-1.yaml")
    again = load_card(path)
    assert again.model_dump() == card.model_dump()
    assert again.resolve(again.weights) == str(tmp_path / "tiny.safetensors")


def test_newer_format_and_bad_hash_and_duplicate_ids_are_refused():
    base = {
        "name": "m",
        "architecture": "x",
        "weights": {"uri": "w"},
        "classes": [{"id": 1, "name": "a", "kind": "instance"}],
    }
    with pytest.raises(ConfigError, match="newer tamale"):
        ModelCard.from_mapping({**base, "format_version": 99})
    with pytest.raises(ConfigError, match=r"weights\.sha256"):
        ModelCard.from_mapping({**base, "weights": {"uri": "w", "sha256": "xyz"}})
    with pytest.raises(ConfigError, match="unique"):
        ModelCard.from_mapping(
            {**base, "classes": [{"id": 1, "name": "a", "kind": "instance"}] * 2}
        )
    with pytest.raises(ConfigError, match="TorchScript"):
        ModelCard.from_mapping({**base, "architecture": None})


@pytest.mark.parametrize("bad", ["", "a/b", "..", "../x", "a b", "x\\y", ".hidden", "a" * 101])
def test_names_that_could_escape_a_folder_are_refused(bad: str):
    with pytest.raises(TamaleInputError):
        check_name(bad, "model name")
    with pytest.raises(ConfigError, match="name"):
        ModelCard.from_mapping(
            {
                "name": bad,
                "architecture": "x",
                "weights": {"uri": "w"},
                "classes": [{"id": 1, "name": "a", "kind": "instance"}],
            }
        )


def test_missing_card_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(TamaleInputError, match="not found"):
        load_card(tmp_path / "nope.yaml")
