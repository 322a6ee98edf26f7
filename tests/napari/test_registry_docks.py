"""The registry docks in a real viewer: register, info, export / import, archive / hide, and
every model list in every open dock following the registry without reopening anything."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest
import yaml
from qtpy.QtWidgets import QApplication

from tamale import _paths
from tamale.registry import get_card, list_archived, list_models, register_model

# these tests count the registry's models exactly: hide the built-in one
pytestmark = pytest.mark.usefixtures("no_bundled_models")

EMPANADA = """\
class_names: {{1: mito}}
labels: [1]
thing_list: [1]
model: {model}
padding_factor: 16
norms: {{mean: 0.5, std: 0.1}}
description: A scripted dock-test model.
FINETUNE:
  engine_params: {{label_divisor: 1000}}
"""


def _scripted(path: Path, channels: int = 4) -> Path:
    import torch

    class Scripted(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, channels, 3, padding=1)

        def forward(
            self, x: torch.Tensor, render_steps: int = 2, interpolate_ins: bool = True
        ) -> dict[str, torch.Tensor]:
            y = self.conv(x)
            return {"sem_logits": y[:, :1], "ctr_hmp": y[:, 1:2], "offsets": y[:, 2:4]}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(Scripted()), str(path))
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return _scripted(tmp_path_factory.mktemp("w") / "net.pth")


@pytest.fixture
def card(tmp_path, weights) -> Path:
    path = tmp_path / "DockNet.yaml"
    path.write_text(EMPANADA.format(model=weights))
    return path


def open_dock(viewer, name: str):
    _, dock = viewer.window.add_plugin_dock_widget("tamale", name)
    return dock


def wait(qtbot, dock_runner) -> None:
    qtbot.waitUntil(lambda: not dock_runner.busy, timeout=30_000)


def test_register_dock_keeps_urls_and_every_open_dock_sees_the_model(
    make_napari_viewer, qtbot, card, weights, tmp_path
):
    viewer = make_napari_viewer()
    register = open_dock(viewer, "Register model")
    info = open_dock(viewer, "Model info")
    transfer = open_dock(viewer, "Export / import model")
    assert list(info.model.choices) == [] and list(transfer.export_model.choices) == []

    # a URL typed into the weights field survives verbatim (empanada's FileEdit broke it)
    url = "https://example.org/models/DockNet.pth?download=1"
    register.weights.value = url
    assert register.weights.value == url
    register.weights.value = ""

    register.card.value = str(card)
    assert register.model_name.value == "DockNet"  # offered from the card
    register.runner.run_button.clicked.emit()
    wait(qtbot, register.runner)
    assert register.runner.last_error is None, register.runner.last_error
    assert list_models() == ["DockNet"]
    # the lists of the two other docks, opened before, follow at once
    qtbot.waitUntil(
        lambda: (
            list(info.model.choices) == ["DockNet"]
            and list(transfer.export_model.choices) == ["DockNet"]
        ),
        timeout=5000,
    )
    # a dock opened afterwards lists it too
    manage = open_dock(viewer, "Archive / restore / hide model")
    assert list(manage.model.choices) == ["DockNet"]
    qtbot.waitUntil(lambda: not info.runner.busy, timeout=30_000)


def test_register_dock_asks_before_replacing(make_napari_viewer, qtbot, card, tmp_path):
    register_model(card)
    sha = get_card("DockNet").weights.sha256
    other = _scripted(tmp_path / "other.pth", channels=6)
    viewer = make_napari_viewer()
    dock = open_dock(viewer, "Register model")
    questions = []
    dock.confirm = lambda q: questions.append(q) or False
    dock.card.value = str(card)
    dock.weights.value = str(other)
    dock.runner.run_button.clicked.emit()
    assert questions and "already registered" in questions[0] and not dock.runner.busy
    assert get_card("DockNet").weights.sha256 == sha
    dock.confirm = lambda q: True
    dock.runner.run_button.clicked.emit()
    wait(qtbot, dock.runner)
    assert get_card("DockNet").weights.sha256 == hashlib.sha256(other.read_bytes()).hexdigest()


def test_register_dock_reports_bad_input(make_napari_viewer, qtbot, card, monkeypatch):
    shown = []
    monkeypatch.setattr("tamale_napari._workers.show_error", shown.append)
    viewer = make_napari_viewer()
    dock = open_dock(viewer, "Register model")
    dock.runner.run_button.clicked.emit()
    assert shown and "choose a model card" in shown[-1]
    dock.card.value = str(card)
    dock.model_name.value = "../evil"
    dock.runner.run_button.clicked.emit()
    wait(qtbot, dock.runner)
    assert "not allowed" in shown[-1] and list_models() == []
    dock.model_name.value = "fine"
    dock.weights.value = "http://127.0.0.1:9/definitely-not-here.pth"
    dock.runner.run_button.clicked.emit()
    wait(qtbot, dock.runner)
    assert "could not download" in shown[-1] and list_models() == []


def test_info_dock_shows_and_copies_the_information(make_napari_viewer, qtbot, card):
    register_model(card)
    viewer = make_napari_viewer()
    dock = open_dock(viewer, "Model info")
    qtbot.waitUntil(lambda: dock.info is not None, timeout=30_000)
    assert dock.markdown.startswith("# DockNet")
    assert "1001, 1002, 1003" in dock.markdown and "Parameters: 40" in dock.markdown
    shown = dock.text.native.toPlainText()
    assert "DockNet" in shown and "divisible by 16" in shown
    dock.copy_button.clicked.emit()
    assert QApplication.clipboard().text() == dock.markdown


def test_export_import_dock_round_trip(make_napari_viewer, qtbot, card, tmp_path, monkeypatch):
    register_model(card)
    viewer = make_napari_viewer()
    dock = open_dock(viewer, "Export / import model")
    archive = tmp_path / "DockNet.zip"
    dock.export_path.value = str(archive)
    dock.export_runner.run_button.clicked.emit()
    wait(qtbot, dock.export_runner)
    assert archive.is_file() and dock.last_export == archive
    # overwriting asks
    questions = []
    dock.confirm = lambda q: questions.append(q) or False
    mtime = archive.stat().st_mtime_ns
    dock.export_runner.run_button.clicked.emit()
    assert "Overwrite" in questions[-1] and archive.stat().st_mtime_ns == mtime

    # import on a fresh home under another name
    monkeypatch.setenv("TAMALE_HOME", str(tmp_path / "elsewhere"))
    dock.import_path.value = str(archive)
    dock.import_name.value = "DockNet-copy"
    dock.import_runner.run_button.clicked.emit()
    wait(qtbot, dock.import_runner)
    assert dock.import_runner.last_error is None, dock.import_runner.last_error
    assert list_models() == ["DockNet-copy"]
    qtbot.waitUntil(lambda: list(dock.export_model.choices) == ["DockNet-copy"], timeout=5000)
    # importing again under the same name asks before replacing
    dock.import_runner.run_button.clicked.emit()
    assert "already registered" in questions[-1] and not dock.import_runner.busy


def test_manage_dock_archives_restores_hides_and_lists_follow(
    make_napari_viewer, qtbot, card, weights, tmp_path, monkeypatch
):
    bundled = tmp_path / "bundled"
    (bundled / "Builtin").mkdir(parents=True)
    (bundled / "Builtin" / "card.yaml").write_text(EMPANADA.format(model=weights))
    monkeypatch.setattr("tamale.registry.store.bundled_dir", lambda: bundled)
    register_model(card)
    viewer = make_napari_viewer()
    manage = open_dock(viewer, "Archive / restore / hide model")
    info = open_dock(viewer, "Model info")
    assert list(manage.model.choices) == ["Builtin", "DockNet"]

    manage.model.value = "Builtin"
    assert manage.hide_button.enabled and not manage.archive_button.enabled
    manage.hide_button.clicked.emit()
    qtbot.waitUntil(lambda: list(info.model.choices) == ["DockNet"], timeout=5000)
    assert list(manage.hidden.choices) == ["Builtin"]
    assert (bundled / "Builtin" / "card.yaml").is_file()  # never moved

    manage.model.value = "DockNet"
    manage.archive_button.clicked.emit()
    qtbot.waitUntil(lambda: list(info.model.choices) == [], timeout=5000)
    assert list(manage.archived.choices) == ["DockNet"] and list_archived() == ["DockNet"]

    manage.restore_button.clicked.emit()
    qtbot.waitUntil(lambda: list(info.model.choices) == ["DockNet"], timeout=5000)
    manage.hidden.value = "Builtin"
    manage.unhide_button.clicked.emit()
    qtbot.waitUntil(lambda: list(info.model.choices) == ["Builtin", "DockNet"], timeout=5000)

    # deleting an archived model asks, and "no" keeps it
    manage.model.value = "DockNet"
    manage.archive_button.clicked.emit()
    manage.confirm = lambda q: False
    manage.delete_button.clicked.emit()
    assert list_archived() == ["DockNet"]
    manage.confirm = lambda q: True
    manage.delete_button.clicked.emit()
    assert list_archived() == [] and not (_paths.archive_dir() / "DockNet").exists()
    assert yaml.safe_load(card.read_text())["model"] == str(weights)  # user's files untouched
    assert weights.is_file()
    qtbot.waitUntil(lambda: not info.runner.busy, timeout=30_000)


def test_a_model_registered_in_one_dock_segments_in_the_2d_dock(
    make_napari_viewer, qtbot, tmp_path
):
    """Registry → 2D inference dock (opened before) without reopening; archive removes it."""
    import torch

    from tamale.models import build_model, save_weights
    from tamale.registry import ModelCard, save_card
    from tamale.synthetic import synthetic_em_2d

    torch.manual_seed(0)
    sha = save_weights(build_model("tiny"), tmp_path / "tiny.safetensors")
    card = ModelCard(
        name="tiny-dock",
        architecture="tiny",
        weights={"uri": "tiny.safetensors", "sha256": sha},
        classes=[{"id": 1, "name": "mitochondria", "kind": "instance"}],
        padding_factor=32,
    )
    card_path = save_card(card, tmp_path / "tiny.yaml")

    viewer = make_napari_viewer()
    viewer.add_image(synthetic_em_2d((96, 96), seed=2).image, name="em")
    infer = open_dock(viewer, "2D inference (parameter testing)")
    register = open_dock(viewer, "Register model")
    manage = open_dock(viewer, "Archive / restore / hide model")
    assert list(infer.model.choices) == []

    register.card.value = str(card_path)
    register.runner.run_button.clicked.emit()
    wait(qtbot, register.runner)
    qtbot.waitUntil(lambda: list(infer.model.choices) == ["tiny-dock"], timeout=5000)

    infer.use_gpu.value = False
    infer.model.value = "tiny-dock"
    infer.runner.run_button.clicked.emit()
    wait(qtbot, infer.runner)
    assert infer.runner.last_error is None, infer.runner.last_error

    manage.model.value = "tiny-dock"
    manage.archive_button.clicked.emit()
    qtbot.waitUntil(lambda: list(infer.model.choices) == [], timeout=5000)
