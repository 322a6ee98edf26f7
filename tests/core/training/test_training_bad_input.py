"""Bad input: a clear message naming the problem, and nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from _training_helpers import write_set

from tamale.config import ConfigError
from tamale.errors import TamaleInputError
from tamale.registry import list_models
from tamale.training import fit, load_train_config

# these tests count the registry's models exactly: hide the built-in one
pytestmark = pytest.mark.usefixtures("no_bundled_models")


def _nothing_written(config) -> None:
    assert not Path(config.model_dir).exists() or not any(Path(config.model_dir).iterdir())
    assert config.model_name not in list_models()


def _refused(config, match: str) -> None:
    with pytest.raises(TamaleInputError, match=match):
        fit(config)
    _nothing_written(config)


def test_too_few_patches_says_how_many(make_config):
    _refused(make_config(batch_size=16), r"gives 8 patch\(es\) .* at least 16")


def test_unpaired_files_are_named(make_config, train_dir):
    tifffile.imwrite(train_dir / "src" / "images" / "lonely.tif", np.zeros((64, 64), np.uint8))
    tifffile.imwrite(train_dir / "src" / "masks" / "orphan.tif", np.zeros((64, 64), np.uint32))
    _refused(make_config(), r"image without mask: src/lonely\.tif; mask without image: src/orphan")


def test_only_empty_masks(make_config, tmp_path, em_pairs):
    root = write_set(
        tmp_path / "empty", [p[0] for p in em_pairs], [np.zeros((128, 128), np.uint32)] * 2
    )
    _refused(make_config(train_dir=root), "every mask of the training set .* is empty")


def test_labels_outside_the_declared_classes(make_config, tmp_path, em_pairs):
    image = em_pairs[0][0]
    mask = np.zeros((128, 128), np.uint32)
    mask[10:30, 10:30] = 1001
    mask[50:70, 50:70] = 3001
    root = write_set(tmp_path / "pan", [image, image], [mask, mask])
    labels = "1,mito,instance\n2,er,semantic"
    _refused(
        make_config(train_dir=root, classes=labels, label_divisor=1000),
        r"holds label 3001 \(class 3 with divisor 1000\).*declare only class\(es\) 1 \(mito\), 2",
    )


def test_labels_below_the_divisor(make_config, tmp_path, em_pairs):
    mask = np.zeros((128, 128), np.uint32)
    mask[10:30, 10:30] = 5
    root = write_set(tmp_path / "low", [em_pairs[0][0]] * 2, [mask, mask])
    _refused(
        make_config(train_dir=root, classes="1,mito,instance\n2,er,semantic", label_divisor=1000),
        "holds label 5, below the label divisor 1000",
    )


def test_image_and_mask_of_different_shapes(make_config, tmp_path, em_pairs):
    root = write_set(tmp_path / "shape", [em_pairs[0][0]], [em_pairs[0][1][:100]])
    _refused(make_config(train_dir=root), r"has shape \(128, 128\) but its mask has \(100, 128\)")


def test_patch_size_not_divisible_by_the_padding_factor(make_config):
    _refused(make_config(patch_size=80), "patch size 80 .* padding factor 32: use 64 or 96")


def test_finetune_patch_size_checked_against_the_base_model(make_config, make_tiny_model):
    name = make_tiny_model(name="bifpn-base", preset="tiny_bifpn")
    cfg = make_config(base_model=name, architecture=None, patch_size=64)
    _refused(cfg, "padding factor 128")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_model_directory_not_writable(make_config, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(TamaleInputError, match="is not writable"):
            fit(make_config(model_dir=locked / "models"))
        assert not (locked / "models").exists()
    finally:
        locked.chmod(0o700)


def test_model_directory_not_writable_as_any_user(make_config, tmp_path, monkeypatch):
    import tamale.training.export as export

    monkeypatch.setattr(export.os, "access", lambda path, mode: False)
    _refused(make_config(model_dir=tmp_path / "ro" / "models"), r"ro/models is not writable")
    assert not (tmp_path / "ro").exists()


def test_model_directory_is_a_file(make_config, tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(TamaleInputError, match="is a file, not a folder"):
        fit(make_config(model_dir=tmp_path / "afile" / "models"))


def test_registered_name_is_never_overwritten(make_config, tiny_model, tmp_path):
    """empanada silently renamed a colliding model to '<name>New'."""
    cfg = make_config(model_name=tiny_model)
    with pytest.raises(
        TamaleInputError, match="already registered; choose another name or replace"
    ):
        fit(cfg)
    assert not (tmp_path / "models").exists()
    assert list_models() == [tiny_model]
    result = fit(make_config(model_name=tiny_model, replace=True))  # asked for: replaced
    assert result.registered is not None and list_models() == [tiny_model]
    assert result.registered.card.architecture == "tiny"


def test_existing_output_folder_is_not_overwritten(make_config, tmp_path):
    out = tmp_path / "models" / "trained"
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(TamaleInputError, match="already exists"):
        fit(make_config())
    assert (out / "notes.txt").read_text() == "mine" and len(list(out.iterdir())) == 1


def test_out_of_memory_suggests_a_smaller_batch(make_config, monkeypatch):
    from tamale.models.panoptic import PanopticModel

    def oom(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(PanopticModel, "forward", oom)
    cfg = make_config()
    with pytest.raises(TamaleInputError, match=r"out of memory .* batch of 4 .* \(e\.g\. 2\)"):
        fit(cfg)
    assert cfg.model_name not in list_models()


def test_unknown_base_model(make_config):
    _refused(make_config(base_model="nope", architecture=None), "no model named 'nope'")


def test_unknown_config_keys_are_named(tmp_path, train_dir):
    path = tmp_path / "custom.yaml"
    path.write_text("iterations: 10\naugment:\n  rotaton: 90\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError) as info:
        load_train_config(path, model_name="m", train_dir=train_dir, model_dir=tmp_path)
    text = str(info.value)
    assert "augment.rotaton: unknown key" in text and "learning_rate: unknown key" in text


def test_finetune_refuses_new_model_fields(train_dir, tmp_path):
    with pytest.raises(ConfigError, match="keeps its own classes, label_divisor"):
        load_train_config(
            model_name="m", train_dir=train_dir, model_dir=tmp_path, base_model="x",
            classes="1,a,instance\n2,b,semantic", label_divisor=1000,
        )  # fmt: skip


def test_several_classes_need_a_divisor(train_dir, tmp_path):
    with pytest.raises(ConfigError, match="several classes need a label divisor"):
        load_train_config(model_name="m", train_dir=train_dir, model_dir=tmp_path,
                          classes="1,a,instance\n2,b,semantic")  # fmt: skip


@pytest.mark.parametrize(
    "text, match",
    [
        ("1,mito", "must be 'id,name,kind'"),
        ("x,mito,instance", "is not an integer"),
        ("0,bg,semantic", "must be 1 or more"),
        ("1,mito,thing", "must be 'semantic' or 'instance'"),
        ("1,a,instance\n1,b,semantic", "must be unique"),
    ],
)
def test_dataset_label_lines(text, match):
    from tamale.training import parse_dataset_labels

    with pytest.raises(TamaleInputError, match=match):
        parse_dataset_labels(text)
