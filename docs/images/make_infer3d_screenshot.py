"""Make docs/images/inference-3d.png: the 3D inference dock in napari (run under Xvfb).

    xvfb-run -a python docs/images/make_infer3d_screenshot.py

A tiny random-weight model is registered in a temporary TAMALE_HOME so that the model
dropdown has an entry; the labels layer shown is the synthetic volume's ground truth
segmented through the dock's engine with a stand-in model that echoes it (no trained
model is bundled yet), so the picture shows what a run produces, not a model's quality.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("TAMALE_HOME", tempfile.mkdtemp())

import numpy as np
import torch

import napari
from tamale._paths import models_dir
from tamale.inference.config3d import Inference3DConfig
from tamale.inference.slice_model import ClassInfo, LabelEchoFactory
from tamale.inference.volume import segment_volume
from tamale.models import build_model, save_weights
from tamale.registry import ModelCard, notify_changed, save_card
from tamale.synthetic import synthetic_em_3d

OUT = Path(__file__).with_name("inference-3d.png")


def register_tiny(name: str = "MitoNet-demo") -> str:
    folder = models_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = build_model("tiny", num_classes=1)
    sha = save_weights(model, folder / "weights.safetensors")
    card = ModelCard(
        name=name,
        architecture="tiny",
        weights={"uri": "weights.safetensors", "sha256": sha},
        classes=[{"id": 1, "name": "mitochondria", "kind": "instance"}],
        padding_factor=model.padding_factor,
    )
    save_card(card, folder / "card.yaml")
    notify_changed()
    return name


def main() -> None:
    name = register_tiny()
    em = synthetic_em_3d((48, 256, 256), spacing=(1, 1, 1), seed=4)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    image = viewer.add_image(em.image, name="fib-sem")
    _, dock = viewer.window.add_plugin_dock_widget("tamale", "3D inference")
    dock.image.value = image
    dock.model.value = name
    dock.output.value = Path(tempfile.mkdtemp()) / "fib-sem_seg.zarr"
    dock.show_advanced.value = True
    pan = np.where(em.labels > 0, 10000 + em.labels, 0).astype(np.uint32)
    echo = LabelEchoFactory(
        classes=(ClassInfo(1, "mitochondria", "instance"),), label_divisor=10000
    )
    result = segment_volume(pan, echo, Inference3DConfig(min_size=200))
    viewer.add_labels(result.labels["mitochondria"], name="fib-sem-mitochondria-prediction")
    viewer.dims.set_point(0, 24)
    dock.runner.status.value = f"{result.n_objects['mitochondria']} mitochondria"
    for _ in range(20):
        napari.qt.get_qapp().processEvents()
    viewer.screenshot(str(OUT), canvas_only=False)
    print(f"wrote {OUT}")
    viewer.close()


if __name__ == "__main__":
    main()
