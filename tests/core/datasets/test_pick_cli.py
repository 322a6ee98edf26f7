"""``tamale pick`` and ``tamale dataset add``: files in, files out, never overwriting;
a second round avoids the first; file readers for TIFF pyramids, npy, zarr and CSV points."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from tamale.cli import main
from tamale.datasets import PickConfig, pick_patches, scan_training_set, stored_regions
from tamale.datasets.pick_files import picked_regions, read_picks, save_picks
from tamale.datasets.volumes import open_levels, read_points_csv
from tamale.errors import TamaleInputError


def overlap(a, b) -> bool:
    return all(x0 < y1 and y0 < x1 for (x0, x1), (y0, y1) in zip(a, b))


def planes(records):
    return [[(r.plane, r.plane + 1), *r.box] for r in records]


def books(records):
    return [[(r.plane - 2, r.plane + 3), *r.box] for r in records]


@pytest.fixture
def volume_file(tmp_path: Path) -> Path:
    vol = np.random.default_rng(0).integers(0, 255, (16, 96, 96), dtype=np.uint8)
    path = tmp_path / "vol.tif"
    tifffile.imwrite(path, vol)
    return path


def test_pick_then_add_round_trip(tmp_path: Path, volume_file: Path, capsys):
    out = tmp_path / "picks"
    assert main([
        "pick", str(volume_file), "--out", str(out), "--n", "3", "--size", "32", "--seed", "7",
    ]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "picked 3 flipbooks of 32 px (0 at points, 3 random), seed 7" in text
    images = tifffile.imread(out / "vol_flipbooks.tif")
    labels = tifffile.imread(out / "vol_flipbooks_labels.tif")
    assert images.shape == labels.shape == (3, 5, 32, 32) and labels.dtype == np.uint32
    assert not labels.any()
    picks = read_picks(out / "vol_flipbooks.tif")
    first_file = (out / "vol_flipbooks.tif").read_bytes()
    assert picks.kind == "flipbook" and picks.source == "vol" and picks.seed == 7
    vol = tifffile.imread(volume_file)
    for book, rec in zip(images, picks.provenance):
        (r0, r1), (c0, c1) = rec.box
        np.testing.assert_array_equal(book, vol[rec.plane - 2 : rec.plane + 3, r0:r1, c0:c1])

    # empty labels are refused without --allow-empty
    dataset = tmp_path / "sets" / "mito"
    args = ["dataset", "add", str(out / "vol_flipbooks.tif"), str(out / "vol_flipbooks_labels.tif")]
    assert main([*args, "--dataset", str(dataset)]) == 2
    assert "empty labels" in capsys.readouterr().err and not dataset.exists()

    labels[:, 2, 4:12, 4:12] = 1
    labels[1, 2, 20:25, 20:25] = 2
    tifffile.imwrite(out / "painted.tif", labels)
    args = ["dataset", "add", str(out / "vol_flipbooks.tif"), str(out / "painted.tif")]
    assert main([*args, "--dataset", str(dataset)]) == 0
    text = capsys.readouterr().out
    assert "the training set now has 3" in text and "annotate 13 more" in text
    index = scan_training_set(dataset)
    assert [p.name for p in index.pairs] == ["vol_0000.tif", "vol_0001.tif", "vol_0002.tif"]
    for i, pair in enumerate(index.pairs):
        np.testing.assert_array_equal(tifffile.imread(pair.mask), labels[i, 2])
    assert planes(stored_regions(dataset, "vol")) == planes(picks.provenance)

    # a second round in the same folder: new files, away from earlier picks and stored ones
    assert main([
        "pick", str(volume_file), "--out", str(out), "--n", "3", "--size", "32",
        "--exclude", str(dataset),
    ]) == 0  # fmt: skip
    second = read_picks(out / "vol_flipbooks-2.json")
    assert (out / "vol_flipbooks.tif").read_bytes() == first_file
    for new in books(second.provenance):
        for old in planes(picks.provenance):
            assert not overlap(new, old)
    assert len(picked_regions(out, "vol")) == 6 and picked_regions(out, "other") == []


def test_pick_2d_stack_with_points_csv_and_paired_labels(tmp_path: Path, capsys):
    stack = np.arange(3 * 64 * 64, dtype=np.uint16).reshape(3, 64, 64)
    labels = (stack % 5).astype(np.uint16)
    np.save(tmp_path / "stack.npy", stack)
    tifffile.imwrite(tmp_path / "labels.tif", labels, photometric="minisblack")
    (tmp_path / "points.csv").write_text("index,axis-0,axis-1,axis-2\n0,2,30,30\n1,0,5,60\n")
    assert main([
        "pick", str(tmp_path / "stack.npy"), "--out", str(tmp_path / "o"), "--stack",
        "--size", "16", "--points", str(tmp_path / "points.csv"), "--all-points",
        "--labels", str(tmp_path / "labels.tif"), "--name", "my-stack",
    ]) == 0  # fmt: skip
    picks = read_picks(tmp_path / "o" / "my-stack_patches.json")
    assert picks.kind == "patch" and picks.source == "my-stack"
    assert [(r.plane, r.box) for r in picks.provenance] == [
        (2, [(22, 38), (22, 38)]),
        (0, [(0, 16), (48, 64)]),
    ]
    got = tifffile.imread(tmp_path / "o" / "my-stack_patches_labels.tif")
    np.testing.assert_array_equal(got[1], labels[0, 0:16, 48:64])


def test_cli_bad_input_exits_2(tmp_path: Path, volume_file: Path, capsys):
    out = str(tmp_path / "o")
    assert main(["pick", str(volume_file), "--out", out, "--size", "128"]) == 2
    assert "larger than" in capsys.readouterr().err
    assert main(["pick", str(tmp_path / "missing.tif"), "--out", out]) == 2
    assert main(["pick", str(volume_file), "--out", out, "--all-points", "--size", "16"]) == 2
    assert "needs points" in capsys.readouterr().err
    (tmp_path / "p.csv").write_text("1,2\n")
    assert main(["pick", str(volume_file), "--out", out, "--points", str(tmp_path / "p.csv")]) == 2
    assert "expected 3 numbers" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []


def test_save_picks_never_overwrites(tmp_path: Path):
    result = pick_patches(
        np.zeros((40, 40), np.uint8), PickConfig(n_patches=1, patch_size=16, seed=0)
    )
    (tmp_path / "image_patches_labels.tif").write_bytes(b"mine")
    files = save_picks(result, tmp_path)
    assert files.images.name == "image_patches-2.tif"
    assert (tmp_path / "image_patches_labels.tif").read_bytes() == b"mine"
    assert not (tmp_path / "image_patches.tif").exists()
    doc = json.loads(files.sidecar.read_text())
    assert doc["images"] == "image_patches-2.tif" and doc["labels"] == "image_patches-2_labels.tif"
    with pytest.raises(TamaleInputError, match="not allowed"):
        save_picks(result, tmp_path, name="../escape")


def test_open_levels_reads_tiff_pyramids_npy_and_zarr_lazily(tmp_path: Path):
    vol = np.arange(4 * 32 * 32, dtype=np.uint16).reshape(4, 32, 32)
    with tifffile.TiffWriter(tmp_path / "pyr.ome.tif") as tif:
        tif.write(vol, subifds=1, tile=(16, 16), compression="zlib")
        tif.write(vol[:, ::2, ::2], subfiletype=1, tile=(16, 16), compression="zlib")
    levels = open_levels(tmp_path / "pyr.ome.tif")
    assert [lv.shape for lv in levels] == [(4, 32, 32), (4, 16, 16)]
    np.testing.assert_array_equal(levels[1][1, 2:5, 3:6], vol[1, 4:10:2, 6:12:2])
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("0", data=vol, chunks=(1, 16, 16))
    group.create_array("1", data=vol[:, ::2, ::2], chunks=(1, 16, 16))
    assert [lv.shape for lv in open_levels(tmp_path / "g.zarr")] == [(4, 32, 32), (4, 16, 16)]
    np.save(tmp_path / "v.npy", vol)
    assert isinstance(open_levels(tmp_path / "v.npy")[0], np.memmap)
    with pytest.raises(TamaleInputError, match="cannot read"):
        (tmp_path / "x.png").write_bytes(b"")
        open_levels(tmp_path / "x.png")


def test_read_points_csv_forms(tmp_path: Path):
    (tmp_path / "a.csv").write_text("index,axis-0,axis-1,axis-2,label\n0,1.5,2,3,a\n")
    np.testing.assert_array_equal(read_points_csv(tmp_path / "a.csv", 3), [[1.5, 2, 3]])
    (tmp_path / "b.csv").write_text("4,5\n6,7\n")
    np.testing.assert_array_equal(read_points_csv(tmp_path / "b.csv", 2), [[4, 5], [6, 7]])
    (tmp_path / "c.csv").write_text("y,x\n1,2\n")
    with pytest.raises(TamaleInputError, match="axis-0"):
        read_points_csv(tmp_path / "c.csv", 2)
