"""The napari-console steps of the volumetric, finetuning and panoptic-training tutorials
run, in order, in a real viewer, as written in docs/tutorials (only the number of
iterations, batch size and working folder are made small for the test)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tamale.demo import BUILTIN_MODEL
from tamale.registry import get_card, list_models
from tamale.samples import vnc_sstem_crop

TUTORIALS = Path(__file__).resolve().parents[2] / "docs" / "tutorials"


def run(code: str, name: str, viewer) -> None:
    exec(compile(code, str(TUTORIALS / name), "exec"), {"viewer": viewer})


def test_volumetric_tutorial_console_step(make_napari_viewer, tutorial_code, capsys):
    sample = vnc_sstem_crop()
    viewer = make_napari_viewer()
    viewer.add_image(sample.image, name=sample.name, scale=sample.spacing)
    run(tutorial_code("volumetric.md"), "volumetric.md", viewer)
    assert [layer.name for layer in viewer.layers] == [sample.name, f"{sample.name}-mitochondria"]
    labels = viewer.layers[f"{sample.name}-mitochondria"]
    assert labels.data.shape == sample.image.shape and labels.data.dtype == np.uint32
    assert tuple(labels.scale) == sample.spacing
    ids = np.unique(np.asarray(labels.data))[1:]
    np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))  # objects numbered 1..N
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed == f"{{'mitochondria': {len(ids)}}}"
    assert 8 <= len(ids) <= 18  # the demo's range for the 12 objects of the crop


@pytest.mark.slow
def test_finetune_tutorial_console_steps(
    make_napari_viewer, tutorial_code, shared_data, tmp_path, capsys
):
    work = str(tmp_path / "tutorial")
    code = tutorial_code(
        "finetune-existing-model.md",
        {
            '"../shared/data/': f'"{shared_data}/',
            '"~/tamale-tutorial/': f'"{work}/',
            "iterations=300": "iterations=4",
            "val_every=60": "val_every=2",
        },
    )
    assert "~/tamale-tutorial" not in code and "../shared" not in code
    viewer = make_napari_viewer()
    run(code, "finetune-existing-model.md", viewer)
    out = capsys.readouterr().out
    assert BUILTIN_MODEL in out and "divisible by 128" in out  # format_info printed
    assert [layer.name for layer in viewer.layers] == ["before finetuning", "after finetuning"]
    for layer in viewer.layers:
        assert layer.data.shape == (256, 256)
    # the finetuned model is registered, remembers its base, and lives where it was asked to
    assert "mito-tile" in list_models()
    card = get_card("mito-tile")
    written = Path(work) / "models" / "mito-tile"
    assert (written / "card.yaml").is_file() and (written / "weights.safetensors").is_file()
    assert card.weights.format == "safetensors" and card.finetune["base_model"] == BUILTIN_MODEL
    assert card.finetune["iterations"] == 4 and card.finetune["finetune_layers"] == "all"
    assert "downsampling" not in card.inference  # finetuned at full resolution
    assert card.inference == {
        k: v for k, v in get_card(BUILTIN_MODEL).inference.items() if k != "downsampling"
    }  # the base model's post-processing is kept
    stored = tifffile.imread(next((Path(work) / "tile_set" / "mito_tile").rglob("*.tif")))
    assert stored.shape == (256, 256)


@pytest.mark.slow
def test_panoptic_training_tutorial_console_steps(
    make_napari_viewer, tutorial_code, shared_data, tmp_path, capsys
):
    sys.path.insert(0, str(TUTORIALS))
    try:
        from build_vnc_panoptic_set import main as build_set
    finally:
        sys.path.remove(str(TUTORIALS))
    work = tmp_path / "tutorial"
    build_set(shared_data, work)
    code = tutorial_code(
        "train-panoptic-model.md",
        {
            '"~/tamale-tutorial/': f'"{work}/',
            "iterations=500": "iterations=2",
            "batch_size=8": "batch_size=2",
            "val_every=125": "val_every=2",
        },
    )
    viewer = make_napari_viewer()
    viewer.add_image(tifffile.imread(shared_data / "vnc_sstem" / "image.tif"), name="image")
    run(code, "train-panoptic-model.md", viewer)
    out = capsys.readouterr().out.strip().splitlines()
    card = get_card("vnc-panoptic")
    assert [(c.id, c.name, c.kind) for c in card.classes] == [
        (1, "membrane", "semantic"),
        (2, "mitochondria", "instance"),
        (3, "glia", "semantic"),
    ]
    assert card.label_divisor == 1000 and card.inference.get("downsampling") == 2
    assert out[-2].endswith(str(work / "models" / "vnc-panoptic" / "card.yaml"))
    counts = ast.literal_eval(out[-1])  # object_counts(): class name -> number of objects
    assert set(counts) <= {"membrane", "mitochondria", "glia"}
    labels = viewer.layers["vnc-panoptic"].data
    assert labels.shape == (1024, 1024) and set(np.unique(labels // 1000)) <= {0, 1, 2, 3}
