"""Proofreading docks in a real viewer: opened through the manifest, real clicks, undo."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from magicgui.widgets import Container, Label, ProgressBar

PLUGIN = "tamale"
DOCKS = [
    "Merge labels",
    "Delete labels",
    "Split labels",
    "Morph labels",
    "Filter labels",
    "Count labels",
    "Jump to label",
    "Find next available label",
    "Export segmentation",
]


def squares(shape=(64, 96)) -> np.ndarray:
    lab = np.zeros(shape, np.uint32)
    lab[10:30, 10:30] = 3
    lab[10:30, 40:60] = 5
    lab[40:50, 70:90] = 8
    return lab


def dumbbell(shape=(40, 70)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[10:30, 10:30] = True
    mask[10:30, 36:56] = True
    mask[18:22, 30:36] = True
    return mask


def open_dock(viewer, name):
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    return dock


def click(dock, qtbot):
    dock.runner.run_button.clicked.emit()
    qtbot.waitUntil(lambda: not dock.runner.busy, timeout=30_000)


@pytest.fixture
def errors(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr("tamale_napari._workers.show_error", shown.append)
    return shown


def all_widgets(container):
    for w in container:
        yield w
        if isinstance(w, Container):
            yield from all_widgets(w)


@pytest.mark.parametrize("name", DOCKS)
def test_every_dock_opens_from_the_manifest_with_tooltips(make_napari_viewer, name):
    viewer = make_napari_viewer()
    viewer.add_labels(squares(), name="labels")
    dock = open_dock(viewer, name)
    assert dock.labels_layer.value is viewer.layers["labels"]
    missing = [
        getattr(w, "label", "") or getattr(w, "text", "") or type(w).__name__
        for w in all_widgets(dock)
        if not isinstance(w, Container)
        and not isinstance(w, (Label, ProgressBar))  # text shown, not controls
        and not w.tooltip
    ]
    assert missing == []


def test_merge_through_the_manifest_then_undo(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    original = squares()
    labels = viewer.add_labels(original.copy(), name="labels")
    points = viewer.add_points([[20, 20], [20, 50]], name="picks")
    dock = open_dock(viewer, "Merge labels")
    dock.labels_layer.value = labels
    dock.points_layer.value = points
    click(dock, qtbot)
    assert dock.runner.last_error is None, dock.runner.last_error
    expected = original.copy()
    expected[expected == 5] = 3
    np.testing.assert_array_equal(labels.data, expected)
    assert len(points.data) == 0  # picks cleared for the next edit
    labels.undo()
    np.testing.assert_array_equal(labels.data, original)


def test_merge_with_a_line_and_scaled_translated_layers(make_napari_viewer, qtbot):
    """Labels at scale 2 / offset 100 and points at scale 1: picks map through world."""
    viewer = make_napari_viewer()
    original = squares()
    labels = viewer.add_labels(original.copy(), scale=(2, 2), translate=(100, 100))
    # data (20, 20) of the labels is world (140, 140); a unit-scale points layer there
    points = viewer.add_points([[140, 140]], name="picks")
    # a path through world (140, 190) -> (190, 190) -> (190, 260), i.e. data (20, 45) ->
    # (45, 45) -> (45, 80): it crosses 5 and 8
    shapes = viewer.add_shapes([np.array([[140, 190], [190, 190], [190, 260]])], shape_type="path")
    dock = open_dock(viewer, "Merge labels")
    dock.labels_layer.value = labels
    dock.points_layer.value = points
    dock.shapes_layer.value = shapes
    click(dock, qtbot)
    assert dock.runner.last_error is None, dock.runner.last_error
    assert set(np.unique(labels.data)) == {0, 3}
    labels.undo()
    np.testing.assert_array_equal(labels.data, original)


def test_merge_on_the_current_plane_of_a_volume_and_a_4d_stack(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    vol = np.stack([squares() + 0] * 3).astype(np.uint32)
    stack = np.stack([vol, vol])
    labels = viewer.add_labels(stack.copy())
    viewer.dims.set_point(0, 1)
    viewer.dims.set_point(1, 2)
    points = viewer.add_points([[1, 2, 20, 20], [1, 2, 20, 50]])
    dock = open_dock(viewer, "Merge labels")
    dock.labels_layer.value = labels
    dock.points_layer.value = points
    click(dock, qtbot)
    expected = stack.copy()
    expected[1, 2][expected[1, 2] == 5] = 3
    np.testing.assert_array_equal(labels.data, expected)
    # apply in 3D: the whole current flipbook, never the other one
    points.data = [[1, 0, 20, 20], [1, 0, 45, 80]]
    viewer.dims.set_point(1, 0)
    dock.apply_3d.value = True
    click(dock, qtbot)
    expected[1][expected[1] == 8] = 3
    np.testing.assert_array_equal(labels.data, expected)
    np.testing.assert_array_equal(labels.data[0], stack[0])


def test_merge_in_a_transposed_view_edits_the_displayed_xz_plane(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    vol = np.zeros((10, 12, 20), np.uint32)
    vol[2:5, 6, 2:6] = 1
    vol[2:5, 6, 10:14] = 2
    vol[2:5, 7, 10:14] = 2  # id 2 continues on the next y plane: must stay there
    labels = viewer.add_labels(vol.copy())
    viewer.dims.order = (1, 0, 2)  # show z-x planes, slide along y
    viewer.dims.set_point(1, 6)
    points = viewer.add_points([[3, 6, 3], [3, 6, 11]])
    dock = open_dock(viewer, "Merge labels")
    dock.labels_layer.value = labels
    dock.points_layer.value = points
    click(dock, qtbot)
    assert dock.runner.last_error is None, dock.runner.last_error
    expected = vol.copy()
    expected[:, 6][expected[:, 6] == 2] = 1
    np.testing.assert_array_equal(labels.data, expected)


def test_delete_in_3d_then_undo(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    vol = np.stack([squares()] * 4)
    labels = viewer.add_labels(vol.copy())
    viewer.dims.set_point(0, 1)
    points = viewer.add_points([[1, 20, 20]])
    dock = open_dock(viewer, "Delete labels")
    dock.labels_layer.value = labels
    dock.points_layer.value = points
    dock.apply_3d.value = True
    click(dock, qtbot)
    assert not (labels.data == 3).any()
    labels.undo()
    np.testing.assert_array_equal(labels.data, vol)


def test_split_assigns_unused_ids_and_undo_restores(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    vol = np.zeros((3, 40, 70), np.uint32)
    vol[1][dumbbell()] = 4
    vol[2, 0:3, 0:3] = 40  # the largest id lives on another plane
    labels = viewer.add_labels(vol.copy())
    viewer.dims.set_point(0, 1)
    points = viewer.add_points([[1, 20, 20]])
    dock = open_dock(viewer, "Split labels")
    dock.labels_layer.value = labels
    dock.points_layer.value = points
    dock.min_distance.value = 5
    click(dock, qtbot)
    assert dock.runner.last_error is None, dock.runner.last_error
    assert set(np.unique(labels.data[1])) == {0, 41, 42}
    labels.undo()
    np.testing.assert_array_equal(labels.data, vol)


def test_split_with_one_marker_is_refused(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    lab = np.where(dumbbell(), 4, 0).astype(np.uint32)
    labels = viewer.add_labels(lab.copy())
    points = viewer.add_points([[20, 20]])
    dock = open_dock(viewer, "Split labels")
    dock.labels_layer.value = labels
    dock.points_layer.value = points
    dock.points_as_markers.value = True
    click(dock, qtbot)
    assert errors and "fewer than two markers" in errors[0]
    np.testing.assert_array_equal(labels.data, lab)
    assert len(points.data) == 1  # kept so the user can add the second


def test_morph_all_objects_and_undo(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    lab = squares()
    labels = viewer.add_labels(lab.copy())
    dock = open_dock(viewer, "Morph labels")
    dock.labels_layer.value = labels
    dock.points_layer.value = None
    dock.operation.value = "erode"
    dock.radius.value = 2
    click(dock, qtbot)
    assert dock.runner.last_error is None, dock.runner.last_error
    assert (labels.data == 3).sum() == 16 * 16
    labels.undo()
    np.testing.assert_array_equal(labels.data, lab)


def test_filter_in_place_undo_and_new_layer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    lab = squares()
    labels = viewer.add_labels(lab.copy(), name="labels")
    dock = open_dock(viewer, "Filter labels")
    dock.labels_layer.value = labels
    dock.min_size.value = 300
    click(dock, qtbot)
    assert set(np.unique(labels.data)) == {0, 3, 5}
    assert "removed 1 of 3" in dock.runner.status.value
    labels.undo()
    np.testing.assert_array_equal(labels.data, lab)
    dock.new_layer.value = True
    dock.remove_border.value = True
    click(dock, qtbot)
    np.testing.assert_array_equal(labels.data, lab)  # untouched
    out = viewer.layers["labels filtered"]
    assert set(np.unique(out.data)) == {0, 3, 5}


def test_count_shows_a_table_and_saves_csv(make_napari_viewer, qtbot, tmp_path, errors):
    viewer = make_napari_viewer()
    lab = squares()
    lab[lab == 8] = 2001
    labels = viewer.add_labels(lab)
    dock = open_dock(viewer, "Count labels")
    dock.labels_layer.value = labels
    dock.label_divisor.value = "1000"
    dock.class_names.value = "0,outer membrane\n2,mitochondria"
    click(dock, qtbot)
    assert dock.table.data.to_list() == [[0, "outer membrane", 2], [2, "mitochondria", 1]]
    dock.csv_path.value = tmp_path / "counts.csv"
    dock.save_button.clicked.emit()
    text = (tmp_path / "counts.csv").read_text()
    assert text.splitlines()[1] == "0,outer membrane,2,3 5"
    dock.save_button.clicked.emit()  # never overwrites silently
    assert errors and "already exists" in errors[0]


def test_jump_to_label_moves_centres_and_selects(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    vol = np.zeros((30, 64, 64), np.uint32)
    vol[18:25, 40:50, 10:20] = 7
    labels = viewer.add_labels(vol, scale=(2, 1, 1))
    dock = open_dock(viewer, "Jump to label")
    dock.labels_layer.value = labels
    dock.label_id.value = "7"
    click(dock, qtbot)
    assert dock.runner.last_error is None, dock.runner.last_error
    assert viewer.dims.current_step[0] == 21  # central slice of z 18..24
    scene = getattr(viewer, "scene", None)
    camera = scene.camera if scene is not None else viewer.camera
    np.testing.assert_allclose(camera.center[-2:], (44.5, 14.5))
    assert labels.selected_label == 7


def test_jump_to_a_missing_label_tells_the_user(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    viewer.add_labels(squares())
    dock = open_dock(viewer, "Jump to label")
    dock.label_id.value = "99"
    click(dock, qtbot)
    assert errors and "99 does not exist" in errors[0]


def test_next_free_label_selects_it(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    lab = squares()
    lab[lab == 3] = 1001
    lab[lab == 5] = 1002
    labels = viewer.add_labels(lab)
    dock = open_dock(viewer, "Find next available label")
    dock.labels_layer.value = labels
    dock.label_divisor.value = "1000"
    click(dock, qtbot)
    assert labels.selected_label == 1003
    labels.data_setitem((np.array([0]), np.array([0])), 1003)  # paint with it
    click(dock, qtbot)
    assert labels.selected_label == 1004  # never stale: the labels are scanned every time
    dock.label_divisor.value = "2"  # class 1 = ids 3..3 (instance 0 is class*divisor)
    click(dock, qtbot)
    assert labels.selected_label == 3
    dock.class_id.value = "4000000000"  # divisor overflow
    click(dock, qtbot)
    assert errors and "beyond the largest id" in errors[-1]


def test_export_2d_stack_with_names_from_open_folder(make_napari_viewer, qtbot, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("img10.tif", "img2.tif", "img1.tif"):
        tifffile.imwrite(folder / name, np.zeros((16, 16), np.uint8))
    viewer = make_napari_viewer()
    [image] = viewer.open(str(folder), stack=True)
    assert image.data.shape == (3, 16, 16)
    seg = np.zeros((3, 1, 16, 16), np.int64)  # singleton axis, int64
    seg[:, 0, 2:6, 2:6] = [[[1]], [[2]], [[3]]]
    labels = viewer.add_labels(seg, name="seg")
    dock = open_dock(viewer, "Export segmentation")
    dock.image_layer.value = image
    dock.labels_layer.value = labels
    dock.save_dir.value = tmp_path
    dock.folder_name.value = "masks"
    click(dock, qtbot)
    assert dock.runner.last_error is None, dock.runner.last_error
    files = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert files == ["img1.tif", "img10.tif", "img2.tif"]
    data = tifffile.imread(tmp_path / "masks" / "img2.tif")
    assert data.dtype == np.uint32 and data.shape == (16, 16) and data.max() == 2
    # a second export refuses to overwrite
    click(dock, qtbot)
    assert isinstance(dock.runner.last_error, FileExistsError)


def test_export_single_image_keeps_the_name_from_metadata(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    viewer.add_labels(squares(), name="seg", metadata={"filenames": ["/data/cell_07.png"]})
    dock = open_dock(viewer, "Export segmentation")
    dock.save_dir.value = tmp_path
    click(dock, qtbot)
    assert dock.runner.last_error is None, dock.runner.last_error
    data = tifffile.imread(tmp_path / "segmentation" / "cell_07.tif")
    assert data.dtype == np.uint32
    np.testing.assert_array_equal(data, squares())


def test_export_volume_as_tiff_and_ome_zarr(make_napari_viewer, qtbot, tmp_path):
    import zarr

    viewer = make_napari_viewer()
    vol = np.zeros((4, 16, 16), np.uint16)
    vol[1:3, 4:8, 4:8] = 9
    viewer.add_labels(vol, name="seg", scale=(5, 1, 1))
    dock = open_dock(viewer, "Export segmentation")
    dock.save_dir.value = tmp_path
    dock.export_type.value = "3D image (TIFF)"
    click(dock, qtbot)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "segmentation.tif"), vol)
    dock.export_type.value = "3D image (OME-Zarr)"
    click(dock, qtbot)
    root = zarr.open_group(str(tmp_path / "segmentation.ome.zarr"), mode="r")
    np.testing.assert_array_equal(root["0"][...], vol)


# -- zarr and dask backed labels ---------------------------------------------------------
def make_zarr(path, data, chunks):
    import zarr

    arr = zarr.create_array(str(path), shape=data.shape, chunks=chunks, dtype=data.dtype)
    arr[...] = data
    return arr


def test_zarr_labels_edit_on_disk_and_undo_on_disk(make_napari_viewer, qtbot, tmp_path):
    import zarr

    vol = np.stack([squares()] * 4)
    store = tmp_path / "labels.zarr"
    labels = None
    viewer = make_napari_viewer()
    labels = viewer.add_labels(make_zarr(store, vol, (2, 32, 32)))
    points = viewer.add_points([[0, 20, 20], [0, 20, 50]])
    dock = open_dock(viewer, "Merge labels")
    dock.labels_layer.value = labels
    dock.points_layer.value = points
    dock.apply_3d.value = True
    click(dock, qtbot)
    expected = vol.copy()
    expected[expected == 5] = 3
    np.testing.assert_array_equal(zarr.open_array(str(store), mode="r")[...], expected)
    labels.undo()
    np.testing.assert_array_equal(zarr.open_array(str(store), mode="r")[...], vol)


def test_large_edits_are_written_directly_with_a_warning(
    make_napari_viewer, qtbot, tmp_path, monkeypatch
):
    import zarr

    warned: list[str] = []
    monkeypatch.setattr("tamale_napari.proofreading._common.UNDO_LIMIT", 100)
    monkeypatch.setattr("tamale_napari.proofreading._common.show_warning", warned.append)
    vol = np.stack([squares()] * 4)
    store = tmp_path / "labels.zarr"
    viewer = make_napari_viewer()
    labels = viewer.add_labels(make_zarr(store, vol, (2, 32, 32)))
    points = viewer.add_points([[0, 20, 20]])
    dock = open_dock(viewer, "Delete labels")
    dock.labels_layer.value = labels
    dock.points_layer.value = points
    dock.apply_3d.value = True
    click(dock, qtbot)
    assert warned and "cannot be undone" in warned[0]
    assert not (zarr.open_array(str(store), mode="r")[...] == 3).any()


@pytest.mark.parametrize("choice", ["numpy", "zarr"])
def test_dask_labels_offer_a_conversion_then_edit(make_napari_viewer, qtbot, tmp_path, choice):
    import dask.array as da
    from napari.utils.notifications import notification_manager

    lab = squares()
    viewer = make_napari_viewer()
    labels = viewer.add_labels(da.from_array(lab.copy(), chunks=(32, 32)))
    points = viewer.add_points([[20, 20], [20, 50]])
    dock = open_dock(viewer, "Merge labels")
    dock.labels_layer.value = labels
    dock.points_layer.value = points
    before = len(notification_manager.records)
    click(dock, qtbot)
    assert "read-only" in dock.runner.status.value
    offered = notification_manager.records[before:]
    assert offered and "read-only" in offered[-1].message
    assert [a[0] for a in offered[-1].actions] == ["Convert to numpy", "Convert to zarr..."]
    np.testing.assert_array_equal(np.asarray(labels.data), lab)  # nothing changed yet
    if choice == "zarr":
        monkeypatch_path = str(tmp_path / "converted.zarr")
        dock.ask_zarr_path = lambda: monkeypatch_path
    dock.pending_conversion[choice]()
    qtbot.waitUntil(lambda: not dock.runner.busy and len(points.data) == 0, timeout=30_000)
    expected = lab.copy()
    expected[expected == 5] = 3
    np.testing.assert_array_equal(np.asarray(labels.data[...]), expected)
    assert type(labels.data).__module__.split(".")[0] == choice
    labels.undo()
    np.testing.assert_array_equal(np.asarray(labels.data[...]), lab)


# -- bad input -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("points", "message"),
    [
        (None, "choose a points layer"),
        ([], "points layer is empty"),
        ([[1, 1], [2, 2]], "background"),
        ([[20, 20], [500, 20]], "outside the labels"),
    ],
)
def test_bad_picks_notify_and_change_nothing(make_napari_viewer, qtbot, errors, points, message):
    viewer = make_napari_viewer()
    lab = squares()
    labels = viewer.add_labels(lab.copy())
    dock = open_dock(viewer, "Merge labels")
    dock.labels_layer.value = labels
    if points is not None:
        layer = viewer.add_points(np.array(points, float).reshape(-1, 2))
        dock.points_layer.value = layer
    else:
        dock.points_layer.value = None
    click(dock, qtbot)
    assert errors and message in errors[0], errors
    np.testing.assert_array_equal(labels.data, lab)


def test_negative_labels_are_refused(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    lab = squares().astype(np.int32)
    lab[0, 0] = -1
    labels = viewer.add_labels(lab.copy())
    dock = open_dock(viewer, "Filter labels")
    dock.labels_layer.value = labels
    click(dock, qtbot)
    assert errors and "negative" in errors[0]
    np.testing.assert_array_equal(labels.data, lab)


# -- config round trips -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "config"),
    [
        (
            "Split labels",
            {
                "min_distance": 7,
                "points_as_markers": True,
                "apply_3d": True,
                "start_id": 50,
                "label_divisor": 1000,
            },
        ),
        (
            "Morph labels",
            {"operation": "fill holes", "radius": 3, "hole_size": 10, "apply_3d": True},
        ),
        (
            "Filter labels",
            {
                "remove_small": False,
                "min_size": 7,
                "remove_border": True,
                "apply_to": "2D patches",
                "new_layer": True,
            },
        ),
        (
            "Count labels",
            {"apply_to": "current image", "label_divisor": 1000, "class_names": "1,a b\n2,c"},
        ),
        ("Find next available label", {"class_id": 3, "label_divisor": 100}),
        (
            "Export segmentation",
            {"export_type": "3D image (TIFF)", "folder_name": "x y", "overwrite": True},
        ),
    ],
)
def test_config_round_trips_through_the_dock(make_napari_viewer, name, config):
    viewer = make_napari_viewer()
    dock = open_dock(viewer, name)
    cfg = type(dock.to_config()).from_mapping(config)
    dock.set_config(cfg)
    assert dock.to_config() == cfg


def test_layers_menu_has_a_proofreading_submenu_that_opens_docks(make_napari_viewer):
    from napari._app_model import get_app_model

    viewer = make_napari_viewer()
    app = get_app_model()
    assert "tamale.proofreading" in [
        getattr(i, "submenu", None) for i in app.menus.get_menu("napari/layers/annotate")
    ]
    commands = [i.command.id for i in app.menus.get_menu("tamale.proofreading")]
    assert len(commands) == len(DOCKS)
    app.commands.execute_command("tamale.split_labels").result()
    assert "Split labels (tamale)" in viewer.window.dock_widgets


def test_current_region_follows_the_view(make_napari_viewer):
    from tamale_napari._layers import current_region

    viewer = make_napari_viewer()
    layer = viewer.add_labels(np.zeros((2, 3, 8, 8), np.uint32))
    viewer.dims.set_point(0, 1)
    viewer.dims.set_point(1, 2)
    full = slice(None)
    assert current_region(viewer, layer) == (1, 2, full, full)
    assert current_region(viewer, layer, in_3d=True) == (1, full, full, full)
    viewer.dims.ndisplay = 3  # the 3D view shows the flipbook volume: never all flipbooks
    assert current_region(viewer, layer) == (1, full, full, full)
    assert current_region(viewer, layer, in_3d=True) == (1, full, full, full)
    viewer.dims.ndisplay = 2
    viewer.dims.order = (0, 2, 1, 3)  # slide along y, show z-x planes
    viewer.dims.set_point(2, 5)
    assert current_region(viewer, layer) == (1, full, 5, full)
    assert current_region(viewer, layer, in_3d=True) == (1, full, full, full)
