from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tamale.datasets import (
    PatchProvenance,
    read_image,
    read_mask,
    sanitize_source_name,
    scan_training_set,
    store_patches,
    stored_regions,
    summarize_training_set,
)
from tamale.datasets import store as store_module
from tamale.errors import TamaleInputError


def patches(n: int, seed: int = 0, dtype=np.uint8, size: int = 32):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 200, (size, size)).astype(dtype) for _ in range(n)]
    masks = []
    for i in range(n):
        m = np.zeros((size, size), np.int32)
        m[2:10, 2:10] = i + 1
        m[12:20, 12:20] = 1000 + i
        masks.append(m)
    return images, masks


def prov(i: int) -> PatchProvenance:
    return PatchProvenance(
        source_layer="vnc image",
        kind="flipbook",
        axis="xy",
        plane=10 + i,
        box=[(0, 32), (32 * i, 32 * i + 32)],
    )


def test_store_writes_empanada_layout_with_uint32_masks_and_sidecar(tmp_path: Path):
    images, masks = patches(3)
    result = store_patches(
        tmp_path, "mito-set", "vnc image", images, masks, [prov(i) for i in range(3)]
    )
    source = tmp_path / "mito-set" / "vnc_image"
    assert result.source == "vnc_image" and result.total_pairs == 3
    assert result.names == ["vnc_image_0000.tif", "vnc_image_0001.tif", "vnc_image_0002.tif"]
    for i, name in enumerate(result.names):
        np.testing.assert_array_equal(tifffile.imread(source / "images" / name), images[i])
        mask = tifffile.imread(source / "masks" / name)
        assert mask.dtype == np.uint32
        np.testing.assert_array_equal(mask, masks[i])
    sidecar = json.loads((source / "tamale.json").read_text())
    assert sidecar["format"] == "tamale-training-set"
    assert sidecar["patches"]["vnc_image_0001.tif"]["plane"] == 11
    assert sorted(p.name for p in source.iterdir()) == ["images", "masks", "tamale.json"]
    assert not [p for p in source.rglob(".*")], "no temporary files left behind"


def test_appending_never_overwrites_and_regions_accumulate(tmp_path: Path):
    images, masks = patches(2)
    store_patches(tmp_path, "ds", "img", images, masks, [prov(0), prov(1)])
    images2, masks2 = patches(2, seed=5)
    result = store_patches(tmp_path, "ds", "img", images2, masks2, [prov(2), prov(3)])
    assert result.names == ["img_0002.tif", "img_0003.tif"] and result.total_pairs == 4
    np.testing.assert_array_equal(read_image(tmp_path / "ds/img/images/img_0000.tif"), images[0])
    regions = stored_regions(tmp_path / "ds", "img")
    assert [r.plane for r in regions] == [10, 11, 12, 13]
    assert all(r.time for r in regions)


def test_a_file_with_the_next_name_already_there_is_left_alone(tmp_path: Path):
    (tmp_path / "ds/img/images").mkdir(parents=True)
    (tmp_path / "ds/img/masks").mkdir(parents=True)
    (tmp_path / "ds/img/images/img_0000.tif").write_bytes(b"user data")
    result = store_patches(tmp_path, "ds", "img", *patches(1))
    assert result.names == ["img_0001.tif"]
    assert (tmp_path / "ds/img/images/img_0000.tif").read_bytes() == b"user data"


def test_interrupted_write_leaves_no_half_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    store_patches(tmp_path, "ds", "img", *patches(1))
    real = store_module._write_tiff_tmp
    calls = {"n": 0}

    def crash_on_second_file(folder, array):
        calls["n"] += 1
        if calls["n"] == 2:  # the image is written, the mask write dies
            raise OSError("disk full")
        return real(folder, array)

    monkeypatch.setattr(store_module, "_write_tiff_tmp", crash_on_second_file)
    with pytest.raises(OSError, match="disk full"):
        store_patches(tmp_path, "ds", "img", *patches(1, seed=3))
    index = scan_training_set(tmp_path / "ds")
    assert [p.name for p in index.pairs] == ["img_0000.tif"]
    assert index.problems == []
    assert not [p for p in (tmp_path / "ds").rglob(".*tmp")]
    assert list(json.loads((tmp_path / "ds/img/tamale.json").read_text())["patches"]) == [
        "img_0000.tif"
    ]


def test_empty_masks_are_reported(tmp_path: Path):
    images, masks = patches(2)
    masks[1][:] = 0
    result = store_patches(tmp_path, "ds", "img", images, masks)
    assert result.empty_masks == ["img_0001.tif"]


@pytest.mark.parametrize("bad", ["../up", "a/b", "", "x y", ".."])
def test_dataset_names_that_escape_are_refused(tmp_path: Path, bad: str):
    with pytest.raises(TamaleInputError):
        store_patches(tmp_path, bad, "img", *patches(1))
    assert list(tmp_path.iterdir()) == []


def test_bad_pairs_and_folders_are_refused_before_anything_is_written(tmp_path: Path):
    images, masks = patches(2)
    with pytest.raises(TamaleInputError, match="shape"):
        store_patches(tmp_path, "ds", "img", images, [masks[0], masks[1][:10]])
    with pytest.raises(TamaleInputError, match=">= 0"):
        store_patches(tmp_path, "ds", "img", images, [masks[0], -masks[1]])
    with pytest.raises(TamaleInputError, match="integers"):
        store_patches(tmp_path, "ds", "img", images, [masks[0], masks[1] + 0.5])
    with pytest.raises(TamaleInputError, match="does not exist"):
        store_patches(tmp_path / "missing", "ds", "img", images, masks)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_save_directory(tmp_path: Path):
    if os.geteuid() == 0:  # root may write anywhere except pseudo file systems
        target = Path("/sys")
    else:
        target = tmp_path / "locked"
        target.mkdir()
        target.chmod(0o500)
    with pytest.raises(TamaleInputError, match=r"not writable|cannot create"):
        store_patches(target, "ds", "img", *patches(1))


def make_empanada_set(root: Path) -> None:
    """Written like empanada does: TIFFs, int32 masks, stray files, unsorted-looking names."""
    for src, names in {"b_src": ["z.tiff", "a.tiff"], "a_src": ["patch1.tiff"]}.items():
        (root / src / "images").mkdir(parents=True)
        (root / src / "masks").mkdir(parents=True)
        for k, name in enumerate(names):
            tifffile.imwrite(root / src / "images" / name, np.full((16, 16), k, np.uint8))
            tifffile.imwrite(root / src / "masks" / name, np.full((16, 16), 1000 + k, np.int32))
    (root / "b_src" / "images" / "Thumbs.db").write_bytes(b"\x00")
    (root / "b_src" / "masks" / ".DS_Store").write_bytes(b"\x00")
    (root / "b_src" / "notes.txt").write_text("my notes")
    tifffile.imwrite(root / "b_src" / "images" / "orphan.tiff", np.zeros((16, 16), np.uint8))


def test_empanada_layout_pairs_by_name_ignores_strays_and_names_mismatches(tmp_path: Path):
    make_empanada_set(tmp_path)
    index = scan_training_set(tmp_path)
    assert [(p.source, p.name) for p in index.pairs] == [
        ("a_src", "patch1.tiff"),
        ("b_src", "a.tiff"),
        ("b_src", "z.tiff"),
    ]
    for pair in index.pairs:  # image k pairs with mask 1000 + k, whatever the listing order
        assert int(read_mask(pair.mask)[0, 0]) == 1000 + int(read_image(pair.image)[0, 0])
    assert index.images_without_masks == ["b_src/orphan.tiff"]
    with pytest.raises(TamaleInputError, match=r"image without mask: b_src/orphan\.tiff"):
        index.raise_for_problems()


def test_scanning_something_that_is_not_a_training_set(tmp_path: Path):
    with pytest.raises(TamaleInputError, match="not found"):
        scan_training_set(tmp_path / "nope")
    (tmp_path / "random").mkdir()
    with pytest.raises(TamaleInputError, match="not a training set"):
        scan_training_set(tmp_path)


def test_read_mask_converts_and_refuses_negative(tmp_path: Path):
    tifffile.imwrite(tmp_path / "m.tif", np.array([[0, 5], [1001, 2]], np.int32))
    assert read_mask(tmp_path / "m.tif").dtype == np.uint32
    tifffile.imwrite(tmp_path / "n.tif", np.array([[0, -5], [1, 2]], np.int32))
    with pytest.raises(TamaleInputError, match="negative"):
        read_mask(tmp_path / "n.tif")


def test_sixteen_bit_images_keep_their_bits(tmp_path: Path):
    images, masks = patches(1, dtype=np.uint16)
    images[0][0, 0] = 60000
    store_patches(tmp_path, "ds", "img", images, masks)
    back = read_image(tmp_path / "ds/img/images/img_0000.tif")
    assert back.dtype == np.uint16 and back[0, 0] == 60000


def test_sanitize_source_name():
    assert sanitize_source_name("vnc image [1]") == "vnc_image_1"
    assert sanitize_source_name("../../etc") == "etc"
    assert sanitize_source_name("...") == "source"


def test_summary_and_cli(tmp_path: Path):
    make_empanada_set(tmp_path)
    summary = summarize_training_set(tmp_path, label_divisor=1000)
    assert summary.pairs_per_source == {"a_src": 1, "b_src": 2}
    assert summary.classes == {1: 3} and summary.instances == 3
    out = subprocess.run(
        [sys.executable, "-m", "tamale.cli", "dataset", "info", str(tmp_path), "--divisor", "1000"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1  # unpaired file reported
    assert (
        "3 image/mask pairs" in out.stdout and "image without mask: b_src/orphan.tiff" in out.stdout
    )


def test_a_home_relative_save_directory_is_the_users_home(tmp_path: Path, monkeypatch):
    """``~/...`` as typed in the tutorials means the home folder, not a folder named ``~``."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sets").mkdir()
    result = store_patches("~/sets", "ds", "img", *patches(2))
    assert not (tmp_path / "~").exists()
    assert len(scan_training_set("~/sets/ds").pairs) == 2
    assert len(scan_training_set(tmp_path / "sets" / "ds").pairs) == 2
    assert Path(result.dataset_dir) == tmp_path / "sets" / "ds"
