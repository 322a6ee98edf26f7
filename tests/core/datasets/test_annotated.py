"""Storing annotated picks: middle planes of flipbooks, provenance, append without
overwriting (empanada overwrote a patch picked twice at the same place), bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tamale.datasets import (
    PickConfig,
    annotated_planes,
    empty_label_patches,
    pick_patches,
    read_image,
    read_mask,
    scan_training_set,
    store_annotated,
    stored_regions,
)
from tamale.errors import TamaleInputError


def annotated_flipbooks(n: int = 4, seed: int = 0):
    volume = np.random.default_rng(seed).integers(0, 255, (12, 64, 64), dtype=np.uint8)
    result = pick_patches(volume, PickConfig(n_patches=n, patch_size=16, seed=seed), source="em")
    labels = result.labels.copy()
    for i in range(n):
        labels[i, 2, 2 : 6 + i, 3:9] = 1000 + i
        labels[i, 0] = 77  # annotations outside the middle plane are not stored
    return volume, result, labels


def test_flipbooks_store_their_middle_plane_with_provenance(tmp_path: Path):
    volume, result, labels = annotated_flipbooks()
    stored = store_annotated(result.images, labels, tmp_path, "ds", provenance=result.provenance)
    assert stored.source == "em" and stored.total_pairs == 4 and stored.empty_masks == []
    index = scan_training_set(tmp_path / "ds")
    assert [p.name for p in index.pairs] == [f"em_{i:04d}.tif" for i in range(4)]
    for i, pair in enumerate(index.pairs):
        rec = result.provenance[i]
        (r0, r1), (c0, c1) = rec.box
        np.testing.assert_array_equal(read_image(pair.image), volume[rec.plane, r0:r1, c0:c1])
        mask = read_mask(pair.mask)
        assert mask.dtype == np.uint32
        np.testing.assert_array_equal(mask, labels[i, 2])
    regions = stored_regions(tmp_path / "ds", "em")
    assert [(r.plane, r.box) for r in regions] == [(r.plane, r.box) for r in result.provenance]


def test_storing_the_same_picks_twice_appends_and_keeps_the_first(tmp_path: Path):
    _, result, labels = annotated_flipbooks(2)
    store_annotated(result.images, labels, tmp_path, "ds", provenance=result.provenance)
    first = (tmp_path / "ds/em/masks/em_0000.tif").read_bytes()
    labels2 = labels.copy()
    labels2[:, 2] = 5
    again = store_annotated(result.images, labels2, tmp_path, "ds", provenance=result.provenance)
    assert again.names == ["em_0002.tif", "em_0003.tif"] and again.total_pairs == 4
    assert (tmp_path / "ds/em/masks/em_0000.tif").read_bytes() == first


def test_patches_and_a_single_patch_without_provenance(tmp_path: Path):
    images = np.arange(3 * 8 * 8, dtype=np.uint16).reshape(3, 8, 8)
    labels = np.ones((3, 8, 8), np.int64)
    result = store_annotated(images, labels, tmp_path, "ds", source="plain")
    assert result.total_pairs == 3
    np.testing.assert_array_equal(
        read_image(tmp_path / "ds/plain/images/plain_0001.tif"), images[1]
    )
    result = store_annotated(images[0], labels[0], tmp_path, "ds", source="plain")
    assert result.names == ["plain_0003.tif"]
    # provenance as plain dicts (napari metadata after a round trip) is accepted
    recs = [{"source_layer": "dicts", "box": [[0, 8], [0, 8]]}] * 3
    assert store_annotated(images, labels, tmp_path, "ds", provenance=recs).source == "dicts"


def test_empty_labels_are_found_on_the_middle_plane():
    labels = np.zeros((3, 5, 8, 8), np.uint32)
    labels[0, 2, 1, 1] = 1
    labels[1, 0, 1, 1] = 1  # not on the middle plane: still empty
    assert empty_label_patches(labels) == [1, 2]
    assert empty_label_patches(labels[:, 2]) == [1, 2]
    assert empty_label_patches(labels[0, 2]) == []


def test_bad_annotated_input_is_refused_before_anything_is_written(tmp_path: Path):
    _, result, labels = annotated_flipbooks(2)
    with pytest.raises(TamaleInputError, match="different shapes"):
        store_annotated(result.images, labels[:, :, :8], tmp_path, "ds")
    with pytest.raises(TamaleInputError, match="lists 1 patches but the layer holds 2"):
        store_annotated(result.images, labels, tmp_path, "ds", provenance=result.provenance[:1])
    with pytest.raises(TamaleInputError, match="odd number of planes"):
        annotated_planes(np.zeros((2, 4, 8, 8)), np.zeros((2, 4, 8, 8), np.uint32))
    with pytest.raises(TamaleInputError, match="integers"):
        store_annotated(result.images, labels.astype(float), tmp_path, "ds")
    with pytest.raises(TamaleInputError, match=">= 0"):
        store_annotated(result.images, -labels.astype(np.int32), tmp_path, "ds")
    for bad in ("../x", "a/b", ".."):
        with pytest.raises(TamaleInputError, match="not allowed"):
            store_annotated(result.images, labels, tmp_path, bad, provenance=result.provenance)
    assert list(tmp_path.iterdir()) == []


def test_sidecar_of_an_empanada_made_dataset_is_left_alone(tmp_path: Path):
    """Appending into a dataset made by empanada (no sidecar) keeps its files."""
    (tmp_path / "ds/em/images").mkdir(parents=True)
    (tmp_path / "ds/em/masks").mkdir(parents=True)
    tifffile.imwrite(
        tmp_path / "ds/em/images/em-s0-LOC-xy_8-13_0-16_0-16.tiff", np.zeros((16, 16), np.uint8)
    )
    tifffile.imwrite(
        tmp_path / "ds/em/masks/em-s0-LOC-xy_8-13_0-16_0-16.tiff", np.ones((16, 16), np.int32)
    )
    _, result, labels = annotated_flipbooks(1)
    stored = store_annotated(result.images, labels, tmp_path, "ds", provenance=result.provenance)
    assert stored.total_pairs == 2
    sidecar = json.loads((tmp_path / "ds/em/tamale.json").read_text())
    assert list(sidecar["patches"]) == ["em_0000.tif"]
