"""The "Train a model" and "Finetune a model" docks in a real viewer (Xvfb): a tiny run with
progress and a live plot, Cancel keeping a checkpoint, the new model in another dock's
list, the model-info view, asking before replacing, and the config round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import tifffile
import torch

from tamale.registry import get_card, list_models
from tamale.synthetic import synthetic_em_2d
from tamale.training import TrainConfig, load_checkpoint

# these tests count the registry's models exactly: hide the built-in one
pytestmark = pytest.mark.usefixtures("no_bundled_models")


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def train_dir(tmp_path: Path) -> Path:
    for s in range(2):
        em = synthetic_em_2d((128, 128), seed=s)
        for sub, arr in (("images", em.image), ("masks", em.labels)):
            (tmp_path / "train" / "syn" / sub).mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(tmp_path / "train" / "syn" / sub / f"p{s}.tif", arr)
    return tmp_path / "train"


@pytest.fixture
def fast_config(tmp_path: Path) -> Path:
    path = tmp_path / "fast.yaml"
    path.write_text("val_every: 2\nseed: 3\n")
    return path


def open_dock(viewer, name: str):
    _, dock = viewer.window.add_plugin_dock_widget("tamale", name)
    return dock


def _fill(dock, train_dir, tmp_path, fast_config, iterations=4):
    dock.train_dir.value = str(train_dir)
    dock.val_dir.value = str(train_dir)
    dock.model_dir.value = str(tmp_path / "models")
    dock.iterations.value = iterations
    dock.patch_size.value = 64
    dock.batch_size.value = 4
    dock.use_gpu.value = False
    dock.custom_config.value = str(fast_config)


def test_train_dock_runs_plots_and_the_model_appears_elsewhere(
    make_napari_viewer, qtbot, train_dir, tmp_path, fast_config
):
    viewer = make_napari_viewer()
    infer = open_dock(viewer, "2D inference (parameter testing)")
    dock = open_dock(viewer, "Train a model")
    assert "NewTiny" not in list(infer.model.choices)
    _fill(dock, train_dir, tmp_path, fast_config)
    dock.model_name.value = "NewTiny"
    dock.architecture.value = "tiny"
    dock.dataset_labels.value = "1,mito,instance"
    dock.description.value = "made in a test"
    dock.runner.run_button.clicked.emit()
    assert dock.runner.busy, (dock.runner.last_error, dock.runner.status.value)
    qtbot.waitUntil(lambda: not dock.runner.busy, timeout=120_000)
    assert dock.runner.last_error is None, dock.runner.last_error
    # progress: iterations with their total; the plot got every loss and both validations
    steps = [e.step for e in dock.events if e.stage == "train" and "loss" in e.metrics]
    assert steps[-1] == 4 and dock.events[-1].stage == "export"
    assert [x for x, _ in dock.plot.series["loss"]] == [1, 2, 3, 4]
    assert [x for x, _ in dock.plot.series["val_f1"]] == [2, 4]
    assert "NewTiny: 4 iterations" in dock.result.value and "registered" in dock.result.value
    # registered, described, and listed by the dock opened before (no reopening)
    assert get_card("NewTiny").description == "made in a test"
    qtbot.waitUntil(lambda: "NewTiny" in list(infer.model.choices), timeout=5000)
    qtbot.waitUntil(lambda: "NewTiny" in dock.info_markdown, timeout=30_000)
    image = dock.plot.grab()
    assert image.width() > 100 and image.height() >= 170


def test_cancel_stops_and_keeps_a_checkpoint(
    make_napari_viewer, qtbot, train_dir, tmp_path, fast_config
):
    viewer = make_napari_viewer()
    dock = open_dock(viewer, "Train a model")
    _fill(dock, train_dir, tmp_path, fast_config, iterations=500)
    dock.model_name.value = "Cancelled"
    dock.architecture.value = "tiny"
    dock.runner.run_button.clicked.emit()
    qtbot.waitUntil(lambda: len(dock.plot.series["loss"]) >= 1, timeout=60_000)
    dock.runner.cancel_button.clicked.emit()
    qtbot.waitUntil(lambda: not dock.runner.busy, timeout=60_000)
    assert dock.runner.status.value == "cancelled"
    state = load_checkpoint(tmp_path / "models" / "Cancelled" / "checkpoints" / "last.pt")
    assert 1 <= state["iteration"] < 500
    assert "Cancelled" not in list_models()


def test_finetune_dock_info_replace_question_and_round_trip(
    make_napari_viewer, qtbot, train_dir, tmp_path, fast_config, make_tiny_model
):
    make_tiny_model(name="base-mito")
    viewer = make_napari_viewer()
    dock = open_dock(viewer, "Finetune a model")
    assert dock.base_model.value == "base-mito"
    qtbot.waitUntil(lambda: "base-mito" in dock.info_markdown, timeout=30_000)
    assert dock.finetune_layers.value == "none" and dock.iterations.value == 100
    _fill(dock, train_dir, tmp_path, fast_config, iterations=2)
    dock.finetune_layers.value = "stage4"
    dock.model_name.value = "base-mito"  # taken: ask, and do nothing on "no"
    questions = []
    dock.confirm = lambda q: questions.append(q) or False
    dock.runner.run_button.clicked.emit()
    assert questions and "already registered" in questions[0] and not dock.runner.busy
    assert "nothing started" in dock.result.value
    dock.model_name.value = "ft-mito"
    dock.runner.run_button.clicked.emit()
    qtbot.waitUntil(lambda: not dock.runner.busy, timeout=120_000)
    assert dock.runner.last_error is None, dock.runner.last_error
    card = get_card("ft-mito")
    assert card.finetune["base_model"] == "base-mito"
    assert card.finetune["finetune_layers"] == "stage4"

    config = dock.to_config()
    assert config.seed == 3 and config.val_every == 2  # from the custom config
    assert config.base_model == "base-mito"
    other = config.model_copy(update={"model_name": "again", "iterations": 7, "patch_size": 96,
                                      "finetune_layers": "all"})  # fmt: skip
    dock.set_config(other)
    assert dock.to_config() == other


def test_train_dock_round_trip_and_bad_input(make_napari_viewer, train_dir, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("tamale_napari._workers.show_error", shown.append)
    viewer = make_napari_viewer()
    dock = open_dock(viewer, "Train a model")
    dock.runner.run_button.clicked.emit()
    assert shown and "choose a train directory" in shown[-1]
    config = TrainConfig(
        model_name="RoundTrip",
        train_dir=train_dir,
        val_dir=train_dir,
        model_dir=tmp_path / "m",
        classes="1,er,semantic\n2,mito,instance\n3,nucleus,semantic",
        label_divisor=1000,
        architecture="panoptic_bifpn_r18",
        finetune_layers="stage2",
        iterations=1234,
        patch_size=384,
        batch_size=8,
        downsampling=2,
        device="cpu",
        description="three classes",
    )
    dock.set_config(config)
    assert dock.to_config() == config
    dock.dataset_labels.value = "1,mito,thing"
    dock.runner.run_button.clicked.emit()
    assert "must be 'semantic' or 'instance'" in shown[-1]
    assert not dock.runner.busy and not (tmp_path / "m").exists()
