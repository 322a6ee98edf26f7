"""The "Pick training patches" and "Store training set" docks in a real viewer (Xvfb):
the full round on the real ssTEM volume, world->data mapping of points on scaled and
translated layers, used points marked (not deleted), the live count, and bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tamale.datasets import PickConfig, read_image, read_mask, scan_training_set, stored_regions
from tamale.synthetic import synthetic_em_3d

PICK = "Pick training patches"
STORE = "Store training set"


@pytest.fixture
def docks(make_napari_viewer):
    viewer = make_napari_viewer()
    _, pick = viewer.window.add_plugin_dock_widget("tamale", PICK)
    _, store = viewer.window.add_plugin_dock_widget("tamale", STORE)
    return viewer, pick, store


@pytest.fixture
def errors(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr("tamale_napari._workers.show_error", shown.append)
    return shown


def run(dock, qtbot) -> None:
    dock.runner.run_button.clicked.emit()
    qtbot.waitUntil(lambda: not dock.runner.busy, timeout=60_000)


def overlap(a, b) -> bool:
    return all(x0 < y1 and y0 < x1 for (x0, x1), (y0, y1) in zip(a, b))


# -- the whole round on the real volume -----------------------------------------------------


def test_pick_paint_store_reopen_and_pick_again_on_the_real_volume(
    docks, qtbot, tmp_path, shared_data: Path
):
    viewer, pick, store = docks
    volume = tifffile.imread(shared_data / "vnc_sstem" / "image.tif")
    truth = tifffile.imread(shared_data / "vnc_sstem" / "mito_instances_2d_cc.tif")
    scale = (45.0, 4.6, 4.6)
    image = viewer.add_image(volume, name="vnc", scale=scale)
    points = viewer.add_points(
        np.array([[10 * 45.0, 500 * 4.6, 300 * 4.6], [3 * 45.0, 1000 * 4.6, 20 * 4.6]]),
        name="hard spots",
        ndim=3,
    )
    assert pick.image.value is image and pick.points.value is points
    assert pick.count.value.startswith("2 points placed; 16 flipbooks will be picked: 2 at points")

    pick.target_fields.save_dir.value = str(tmp_path)
    pick.target_fields.dataset_name.value = "mito"
    assert store.target_fields.save_dir.value == str(tmp_path)  # shared with the store dock
    assert store.target_fields.dataset_name.value == "mito"
    pick.set_config(PickConfig(n_patches=16, patch_size=256, seed=11))
    run(pick, qtbot)
    assert pick.runner.last_error is None
    books, labels = pick.last_layers
    assert books.name == "vnc_flipbooks" and labels.name == "vnc_flipbooks_labels"
    assert books.data.shape == labels.data.shape == (16, 5, 256, 256)
    assert labels.data.dtype == np.uint32 and not labels.data.any()
    records = books.metadata["tamale"]["provenance"]
    assert len(records) == 16 and labels.metadata["tamale"]["provenance"] == records
    # point 0 is data (10, 500, 300): the patch is centred on it; point 1 is clamped
    assert (records[0].plane, records[0].box) == (10, [(372, 628), (172, 428)])
    assert (records[1].plane, records[1].box) == (3, [(768, 1024), (0, 256)])
    for book, rec in zip(books.data, records):
        (r0, r1), (c0, c1) = rec.box
        np.testing.assert_array_equal(book, volume[rec.plane - 2 : rec.plane + 3, r0:r1, c0:c1])
    # the viewer shows flipbook 0, plane 2; used points are marked, not deleted
    shown = labels.world_to_data(viewer.dims.point)
    assert np.round(shown[:2]).tolist() == [0, 2]
    assert books.scale.tolist() == [1.0, 1.0, 4.6, 4.6]  # the source's pixel size in xy
    assert len(points.data) == 2 and points.features["used"].tolist() == [True, True]
    np.testing.assert_allclose(points.face_color[:, :3], 0.5)
    assert "2 points placed (2 used); 16 flipbooks will be picked: 0 at points" in pick.count.value
    # the store dock offers the new layers (the dock holds napari's proxies of them)
    assert store.image.value.name == books.name and store.labels_layer.value.name == labels.name

    # paint the middle plane of every flipbook like a brush would (the ground truth there)
    painted = []
    for i, rec in enumerate(records):
        (r0, r1), (c0, c1) = rec.box
        crop = truth[rec.plane, r0:r1, c0:c1].astype(np.uint32)
        if not crop.any():
            crop[100:120, 100:130] = 77  # a brush stroke on an empty patch
        if i == 0:  # napari's own brush on flipbook 0, plane 2, then the rest
            labels.brush_size = 9
            labels.paint((0, 2, 50, 50), 5, refresh=True)
            assert labels.data[0, 2, 50, 50] == 5 and not labels.data[0, 1].any()
            labels.data[0, 2] = np.where(labels.data[0, 2] > 0, labels.data[0, 2], crop)
            painted.append(labels.data[0, 2].copy())
        else:
            labels.data[i, 2] = crop
            painted.append(crop)
    labels.refresh()
    asked: list[str] = []
    store.confirm = lambda q: asked.append(q) or True
    run(store, qtbot)
    assert store.runner.last_error is None and asked == []
    assert "the training set now has 16" in store.result.value

    index = scan_training_set(tmp_path / "mito")
    assert len(index.pairs) == 16 and index.problems == []
    for pair, rec, mask in zip(index.pairs, records, painted):
        assert pair.source == "vnc"
        np.testing.assert_array_equal(read_mask(pair.mask), mask)
        (r0, r1), (c0, c1) = rec.box
        np.testing.assert_array_equal(read_image(pair.image), volume[rec.plane, r0:r1, c0:c1])

    # second round: the pick dock knows what is stored and keeps away from it
    assert "16 patches of this image are stored" in pick.count.value
    pick.set_config(PickConfig(n_patches=8, patch_size=256, seed=3))
    run(pick, qtbot)
    assert pick.runner.last_error is None
    stored = stored_regions(tmp_path / "mito", "vnc")
    assert len(stored) == 16
    second = pick.last_layers[0].metadata["tamale"]["provenance"]
    assert pick.last_layers[0].name == "vnc_flipbooks [1]"
    for new in second:
        book = [(new.plane - 2, new.plane + 3), *new.box]
        for old in stored:
            assert not overlap(book, [(old.plane, old.plane + 1), *old.box])


# -- points on scaled and translated layers ---------------------------------------------------


def test_points_map_through_scale_and_translate(docks, qtbot, errors):
    """empanada scaled points twice and asserted translate == 0."""
    viewer, pick, _ = docks
    data = np.arange(12 * 80 * 90, dtype=np.uint32).reshape(12, 80, 90)
    viewer.add_image(data, name="em", scale=(5.0, 2.0, 3.0), translate=(100.0, -40.0, 7.0))
    # a point at data (6, 50, 60) -> world (130, 60, 187)
    viewer.add_points(np.array([[130.0, 60.0, 187.0]]), name="pts", ndim=3)
    pick.set_config(PickConfig(n_patches=1, patch_size=16, seed=0))
    run(pick, qtbot)
    assert errors == []
    rec = pick.last_result.provenance[0]
    assert (rec.plane, rec.box) == (6, [(42, 58), (52, 68)])
    np.testing.assert_array_equal(pick.last_layers[0].data[0, 2], data[6, 42:58, 52:68])


def test_a_points_layer_with_its_own_transform(docks, qtbot, errors):
    viewer, pick, _ = docks
    viewer.add_image(np.zeros((64, 64), np.uint8), name="em2d", scale=(2, 2))
    # the points layer is itself scaled: its data (10, 20) is world (40, 80) = image (20, 40)
    viewer.add_points(np.array([[10.0, 20.0]]), name="p", scale=(4, 4))
    pick.set_config(PickConfig(n_patches=2, patch_size=16, seed=0))
    run(pick, qtbot)
    assert errors == []
    assert pick.last_result.kind == "patch"
    assert pick.last_result.provenance[0].box == [(12, 28), (32, 48)]
    assert pick.last_layers[0].name == "em2d_patches"
    assert pick.last_layers[0].scale.tolist() == [1.0, 2.0, 2.0]
    assert round(pick.last_layers[0].world_to_data(viewer.dims.point)[0]) == 0


# -- count, used points, config ------------------------------------------------------------------


def test_count_updates_live_and_used_points_are_skipped_then_unmarked(docks, qtbot, errors):
    viewer, pick, _ = docks
    em = synthetic_em_3d((12, 64, 64), seed=0)
    viewer.add_image(em.image, name="em")
    assert pick.count.value == "no points layer: 16 random flipbooks"
    layer = viewer.add_points(ndim=3, name="pts")
    assert pick.points.value is layer
    assert pick.count.value.startswith("0 points placed; 16 flipbooks")
    layer.add(np.array([[6.0, 20.0, 20.0], [6.0, 40.0, 40.0], [3, 50, 10]]))
    assert pick.count.value.startswith("3 points placed; 16 flipbooks will be picked: 3 at points")
    pick.n_patches.value = 2
    assert "2 flipbooks will be picked: 2 at points, 0 random" in pick.count.value
    pick.pick_all_points.value = True
    assert "3 flipbooks will be picked: 3 at points" in pick.count.value
    pick.pick_all_points.value = False
    pick.patch_size.value = 16
    pick.seed.value = "1"
    run(pick, qtbot)
    assert pick.last_result.points_used.tolist() == [0, 1]
    assert layer.features["used"].tolist() == [True, True, False]
    assert "3 points placed (2 used); 2 flipbooks will be picked: 1 at points" in pick.count.value
    # the next pick starts with the unused point
    run(pick, qtbot)
    first = pick.last_result.provenance[0]
    assert (first.plane, first.box) == (3, [(42, 58), (2, 18)])
    assert layer.features["used"].tolist() == [True, True, True]
    # pick all points with every point used: a clear message, nothing picked
    pick.pick_all_points.value = True
    n_layers = len(viewer.layers)
    run(pick, qtbot)
    assert errors and "needs points" in errors[-1] and len(viewer.layers) == n_layers
    # new points are unused; unmarking restores all
    layer.add(np.array([[5.0, 5.0, 5.0]]))
    assert layer.features["used"].tolist() == [True, True, True, False]
    pick.unmark_button.clicked.emit()
    assert not layer.features["used"].any()
    np.testing.assert_allclose(layer.face_color, 1.0)


def test_config_round_trip(docks):
    _, pick, _ = docks
    cfg = PickConfig(
        n_patches=7, patch_size=128, level=2, pick_all_points=True, axis="any", stack=True, seed=5
    )
    pick.set_config(cfg)
    assert pick.to_config() == cfg
    cfg = PickConfig(axis="yz")
    pick.set_config(cfg)
    assert pick.to_config() == cfg and pick.seed.value == ""


# -- other modes through the dock -------------------------------------------------------------------


def test_stack_multiscale_and_paired_through_the_dock(docks, qtbot, errors):
    viewer, pick, _ = docks
    em = synthetic_em_3d((8, 64, 64), seed=1)
    viewer.add_image([em.image, em.image[:, ::2, ::2]], name="pyr", multiscale=True)
    viewer.add_labels([em.labels, em.labels[:, ::2, ::2]], name="gt")
    pick.paired.value = True
    pick.labels_layer.value = viewer.layers["gt"]
    pick.set_config(PickConfig(n_patches=3, patch_size=16, level=1, stack=True, seed=2))
    run(pick, qtbot)
    assert errors == []
    result = pick.last_result
    assert result.kind == "patch" and result.images.shape == (3, 16, 16)
    for img, lab, rec in zip(result.images, result.labels, result.provenance):
        (r0, r1), (c0, c1) = rec.box
        assert rec.level == 1
        np.testing.assert_array_equal(img, em.image[rec.plane, ::2, ::2][r0:r1, c0:c1])
        np.testing.assert_array_equal(lab, em.labels[rec.plane, ::2, ::2][r0:r1, c0:c1])
    assert pick.last_layers[1].name == "pyr_patches_labels"
    assert viewer.layers["gt"].visible is False and viewer.layers["pyr"].visible is False


# -- bad input: a clear notification, nothing lost --------------------------------------------------


def test_bad_pick_input(docks, qtbot, errors):
    viewer, pick, _ = docks
    run(pick, qtbot)
    assert "choose an image layer" in errors[-1]
    thin = viewer.add_image(np.zeros((4, 64, 64), np.uint8), name="thin")
    pick.set_config(PickConfig(patch_size=16, seed=0))
    run(pick, qtbot)
    assert "4 planes along the xy normal" in errors[-1] and "2D stack" in errors[-1]
    thin.data = np.zeros((12, 64, 64), np.uint8)
    pick.patch_size.value = 128
    run(pick, qtbot)
    assert "larger than the xy planes" in errors[-1]
    pick.patch_size.value = 16
    pick.pick_all_points.value = True
    run(pick, qtbot)
    assert "needs a points layer" in errors[-1]
    pick.pick_all_points.value = False
    pts = viewer.add_points(np.array([[5.0, 200.0, 10.0]]), ndim=3)
    run(pick, qtbot)
    assert "outside the image" in errors[-1]
    assert len(pts.data) == 1 and not pts.features.get("used", np.zeros(1)).any()
    pts.data = np.zeros((0, 3))
    pick.paired.value = True
    pick.labels_layer.value = None
    run(pick, qtbot)
    assert "needs a labels layer" in errors[-1]
    viewer.add_labels(np.zeros((12, 64, 60), np.uint32), name="wrong")
    pick.labels_layer.value = viewer.layers["wrong"]
    run(pick, qtbot)
    assert "do not match the image" in errors[-1]
    pyramid = [np.zeros((12, 64, 64), np.uint32), np.zeros((12, 32, 32), np.uint32)]
    viewer.add_labels(pyramid, name="pyramid labels")
    pick.labels_layer.value = viewer.layers["pyramid labels"]
    run(pick, qtbot)
    assert "multiscale" in errors[-1]
    pick.paired.value = False
    pick.target_fields.dataset_name.value = "../up"
    pick.target_fields.save_dir.value = "/tmp"
    run(pick, qtbot)
    assert "not allowed" in errors[-1]
    pick.seed.value = "abc"
    run(pick, qtbot)
    assert "seed must be a whole number" in errors[-1]
    assert [lay.name for lay in viewer.layers] == [
        "thin", "Points", "wrong", "pyramid labels",
    ]  # fmt: skip


def test_bad_store_input_and_empty_labels(docks, qtbot, errors, tmp_path):
    viewer, pick, store = docks
    viewer.add_image(synthetic_em_3d((12, 64, 64), seed=0).image, name="em")
    pick.set_config(PickConfig(n_patches=3, patch_size=16, seed=0))
    run(pick, qtbot)
    _, labels = pick.last_layers
    run(store, qtbot)
    assert "choose a save directory" in errors[-1]
    store.target_fields.save_dir.value = str(tmp_path)
    store.target_fields.dataset_name.value = "a/b"
    run(store, qtbot)
    assert "not allowed" in errors[-1]
    store.target_fields.dataset_name.value = "ds"
    # empty labels: warned, asked; "No" stores nothing
    asked: list[str] = []
    store.confirm = lambda q: asked.append(q) or False
    labels.data[0, 2, 3:6, 3:6] = 1
    run(store, qtbot)
    assert "2 of 3 patches have empty labels (on the middle plane): 1, 2" in asked[-1]
    assert store.result.value == "nothing stored" and not (tmp_path / "ds").exists()
    # "Yes" stores all of them
    store.confirm = lambda q: True
    run(store, qtbot)
    assert store.last_result.total_pairs == 3 and len(store.last_result.empty_masks) == 2
    assert "annotate 13 more" in store.result.value
    # image and labels of different shapes
    viewer.add_labels(np.zeros((3, 5, 16, 8), np.uint32), name="other")
    store.labels_layer.value = viewer.layers["other"]
    run(store, qtbot)
    assert "different shapes" in errors[-1]
    # an unwritable save directory
    store.labels_layer.value = labels
    if os.geteuid() == 0:
        store.target_fields.save_dir.value = "/proc"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        store.target_fields.save_dir.value = str(locked)
    run(store, qtbot)
    assert "not writable" in errors[-1] or "cannot create" in errors[-1]
    assert len(scan_training_set(tmp_path / "ds").pairs) == 3


def test_plain_layers_without_provenance_are_stored_under_their_name(docks, qtbot, tmp_path):
    viewer, _, store = docks
    images = viewer.add_image(np.full((2, 32, 32), 9, np.uint8), name="my patches")
    labels = viewer.add_labels(np.ones((2, 32, 32), np.uint32), name="my labels")
    store.image.value, store.labels_layer.value = images, labels
    store.target_fields.save_dir.value = str(tmp_path)
    store.target_fields.dataset_name.value = "plain"
    run(store, qtbot)
    assert store.last_result.source == "my_patches" and store.last_result.total_pairs == 2


def test_xz_and_any_plane_flipbooks_through_the_dock(docks, qtbot, errors):
    viewer, pick, _ = docks
    cube = np.arange(24 * 40 * 48, dtype=np.uint32).reshape(24, 40, 48)
    viewer.add_image(cube, name="cube", scale=(3.0, 2.0, 1.0))
    pick.set_config(PickConfig(n_patches=2, patch_size=16, axis="xz", seed=0))
    run(pick, qtbot)
    books = pick.last_layers[0]
    assert books.scale.tolist() == [1.0, 1.0, 3.0, 1.0]  # rows Z (3), columns X (1)
    for book, rec in zip(books.data, pick.last_result.provenance):
        (r0, r1), (c0, c1) = rec.box
        np.testing.assert_array_equal(book[2], cube[r0:r1, rec.plane, c0:c1])
    pick.set_config(PickConfig(n_patches=6, patch_size=16, axis="any", seed=1))
    run(pick, qtbot)
    assert errors == []
    assert len({r.axis for r in pick.last_result.provenance}) > 1
    assert pick.last_layers[0].scale.tolist() == [1.0, 1.0, 2.0, 1.0]  # mixed: xy pixel sizes
