"""PatchDataset with DataLoader workers: same patches as in the main process."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
import zarr
from torch.utils.data import DataLoader

from tamale.errors import TamaleInputError
from tamale.patching import (
    MultiChannelTargetMsPatchConstr,
    PatchDataset,
    PatchExtractor,
    StratifiedPatching,
    TiledPatching,
    ZarrImageStack,
    stitch_tiles,
)
from tamale.patching.constructor import BasicPatchConstr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (96, 80), dtype=np.uint8)
    labels = rng.integers(0, 5, (96, 80)).astype(np.uint32)
    tifffile.imwrite(root / "image.tif", image)
    z = zarr.create_array(root / "labels.zarr", shape=labels.shape, chunks=(32, 32), dtype="uint32")
    z[...] = labels
    return root, image, labels


def collect(loader):
    out = []
    for batch in loader:
        for i in range(len(batch["index"])):
            out.append(
                (
                    int(batch["index"][i]),
                    tuple(batch["coords"][i].tolist()),
                    batch["input"][i].numpy().copy(),
                    batch["target"][i].numpy().copy(),
                )
            )
    return sorted(out, key=lambda r: r[0])


def test_two_workers_give_the_same_patches_as_the_main_process(files):
    root, image, labels = files
    ds = PatchDataset.from_arrays(
        [root / "image.tif"], [str(root / "labels.zarr")], patch_size=(32, 32), seed=3
    )
    assert isinstance(ds.constructor.target_extractor.image_stacks[0], ZarrImageStack)
    single = collect(DataLoader(ds, batch_size=4, num_workers=0))
    multi = collect(DataLoader(ds, batch_size=4, num_workers=2, shuffle=True))
    assert len(single) == len(ds) == 8
    for a, b in zip(single, multi):
        assert a[0] == b[0] and a[1] == b[1]
        assert np.array_equal(a[2], b[2]) and np.array_equal(a[3], b[3])
        y, x = a[1]
        assert np.array_equal(a[2][0], image[y : y + 32, x : x + 32])
        assert np.array_equal(a[3][0], labels[y : y + 32, x : x + 32])
    # a new epoch reaches persistent workers through the shared epoch
    loader = DataLoader(ds, batch_size=8, num_workers=2, persistent_workers=True)
    first = collect(loader)
    ds.set_epoch(1)
    second = collect(loader)
    ds.set_epoch(0)
    third = collect(loader)
    assert [r[1] for r in first] == [r[1] for r in single] == [r[1] for r in third]
    assert [r[1] for r in second] != [r[1] for r in first]
    main = [tuple(ds.patching_strategy.get_patch_spec(i).coords) for i in range(len(ds))]
    assert main == [r[1] for r in first]


def test_microsplit_constructor_in_workers():
    rng = np.random.default_rng(1)
    data = rng.random((2, 3, 64, 64)).astype(np.float32)
    tgt = PatchExtractor.from_sources([data], axes="SCYX")
    c = MultiChannelTargetMsPatchConstr(
        StratifiedPatching(tgt.shapes, (16, 16), seed=2),
        tgt,
        2,
        "reflect",
        [(0.1, 1.0)] * 3,
        0.5,
        rng=4,
    )
    ds = PatchDataset(c)
    a = [ds[i]["input"] for i in range(len(ds))]
    loader = DataLoader(ds, batch_size=None, num_workers=2)
    b = [item["input"] for item in loader]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_tiles_through_the_dataset_stitch_back():
    image = np.random.default_rng(0).random((1, 1, 50, 70)).astype(np.float32)
    ex = PatchExtractor.from_sources([image], axes="SCYX")
    tiles = TiledPatching(ex.shapes, (32, 32), 8)
    ds = PatchDataset(BasicPatchConstr(tiles, ex))
    items = list(DataLoader(ds, batch_size=None))
    specs = [tiles.get_patch_spec(int(it["index"])) for it in items]
    assert all(
        torch.equal(it["stitch_coords"], torch.tensor(s.stitch_coords))
        for it, s in zip(items, specs)
    )
    out = stitch_tiles([it["input"].numpy() for it in items], specs, data_shape=image.shape)
    assert np.array_equal(out, image)


def test_dataset_bad_inputs():
    ds = PatchDataset.from_arrays([np.zeros((32, 32), np.float32)], patch_size=(16, 16), seed=0)
    with pytest.raises(IndexError):
        ds[len(ds)]
    with pytest.raises(TamaleInputError, match="epoch"):
        ds.set_epoch(-1)
    assert len(list(iter(ds))) == len(ds)  # the sequence protocol stops at the end
