"""Run a tutorial's napari steps for real and take its screenshots (under Xvfb).

    xvfb-run -a -s "-screen 0 1920x1200x24" python docs/tutorials/napari_walkthrough.py \
        panoptic --work DIR
    xvfb-run -a -s "-screen 0 1920x1200x24" python docs/tutorials/napari_walkthrough.py \
        finetune --work DIR [--base-card CARD]

``panoptic`` expects ``DIR/vnc_panoptic/{train,val}`` (build_vnc_panoptic_set.py) and
trains through the *Train a model* dock; ``finetune`` builds a one-tile training set from
``panoptic_tile`` and finetunes the built-in model (or the model of ``CARD``) through the
*Finetune a model* dock.
Both then segment with the *2D inference* dock. Screenshots go to ``docs/images``.
Set ``TAMALE_HOME`` to keep the tutorial's models apart from yours.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import tifffile

HERE = Path(__file__).resolve().parent
IMAGES = HERE.parent / "images"
DATA = Path(os.environ.get("TAMALE_SHARED_DATA", HERE.parents[2] / "shared" / "data"))


def wait(app, predicate, timeout_s: float = 36000.0) -> None:
    import time

    end = time.monotonic() + timeout_s
    while not predicate():
        app.processEvents()
        time.sleep(0.05)
        if time.monotonic() > end:
            raise TimeoutError("the step took too long")


def shot(viewer, name: str) -> None:
    viewer.window.screenshot(str(IMAGES / name), canvas_only=False)
    print("screenshot", IMAGES / name, flush=True)


def infer(viewer, app, model: str, layer: str, name: str, downsampling=None, divisor=None):
    """2D inference through the dock; the model's recommended parameters unless given."""
    _, dock = viewer.window.add_plugin_dock_widget("tamale", "2D inference (parameter testing)")
    dock.image.value = viewer.layers[layer]
    dock.model.value = model
    dock.use_gpu.value = False
    if downsampling is not None:
        dock.downsampling.value = downsampling
    if divisor:
        dock.label_divisor.value = divisor
    dock.runner.run_button.clicked.emit()
    wait(app, lambda: not dock.runner.busy)
    if dock.runner.last_error:
        raise dock.runner.last_error
    dock.last_layer.name = name
    return dock


def panoptic(args: argparse.Namespace) -> None:
    import napari

    work = Path(args.work).resolve()
    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1760, 1150)
    app = napari.qt.get_qapp()
    volume = tifffile.imread(DATA / "vnc_sstem" / "image.tif")
    viewer.add_image(volume, name="vnc_sstem")
    viewer.dims.set_current_step(0, 16)
    config = work / "panoptic.yaml"
    config.write_text(
        "architecture_options: {encoder: regnety_400mf, fpn_dim: 32}\n"
        f"val_every: {max(1, args.iterations // 4)}\n"
    )
    _, dock = viewer.window.add_plugin_dock_widget("tamale", "Train a model")
    dock.model_name.value = "vnc-panoptic"
    dock.train_dir.value = str(work / "vnc_panoptic" / "train")
    dock.val_dir.value = str(work / "vnc_panoptic" / "val")
    dock.model_dir.value = str(work / "models")
    dock.dataset_labels.value = "1,membrane,semantic\n2,mitochondria,instance\n3,glia,semantic"
    dock.label_divisor.value = 1000
    dock.architecture.value = "panoptic_bifpn_regnety"
    dock.iterations.value = args.iterations
    dock.patch_size.value = 256
    dock.batch_size.value = 8
    dock.downsampling.value = 2
    dock.use_gpu.value = False
    dock.custom_config.value = str(config)
    dock.description.value = "Membranes, mitochondria and glia in VNC ssTEM (tutorial)."
    dock.runner.run_button.clicked.emit()
    half = args.iterations // 2
    wait(app, lambda: len(dock.plot.series["loss"]) >= half or not dock.runner.busy)
    shot(viewer, "train_dock_running.png")
    wait(app, lambda: not dock.runner.busy)
    if dock.runner.last_error:
        raise dock.runner.last_error
    app.processEvents()
    shot(viewer, "train_dock.png")
    (work / "panoptic_result.json").write_text(json.dumps(dock.last_result.validation, indent=1))
    viewer.window.remove_dock_widget(dock.native.parent())
    infer(viewer, app, "vnc-panoptic", "vnc_sstem", "vnc-panoptic", downsampling=2, divisor=1000)
    viewer.dims.set_current_step(0, 16)
    shot(viewer, "panoptic_result.png")
    viewer.close()


def finetune(args: argparse.Namespace) -> None:
    import napari
    from tamale.datasets import store_patches
    from tamale.demo import BUILTIN_MODEL
    from tamale.registry import register_model

    work = Path(args.work).resolve()
    base = register_model(args.base_card, "mito-vnc").name if args.base_card else BUILTIN_MODEL
    image = tifffile.imread(DATA / "panoptic_tile" / "image.tif")
    mito = tifffile.imread(DATA / "panoptic_tile" / "mito_instances.tif").astype(np.uint32)
    (work / "tile_set").mkdir(parents=True, exist_ok=True)
    store_patches(work / "tile_set", "mito_tile", "panoptic_tile", [image], [mito])

    viewer = napari.Viewer()
    viewer.window._qt_window.resize(1760, 1150)
    app = napari.qt.get_qapp()
    viewer.add_image(image, name="panoptic_tile")
    viewer.add_labels(mito, name="annotation", visible=False)
    _, info = viewer.window.add_plugin_dock_widget("tamale", "Model info")
    info.model.value = base
    wait(app, lambda: not info.runner.busy)
    shot(viewer, "finetune_model_info.png")
    viewer.window.remove_dock_widget(info.native.parent())
    d = infer(viewer, app, base, "panoptic_tile", "before finetuning")
    shot(viewer, "finetune_before.png")
    scores = {"before": _tile_scores(d.last_layer.data, mito)}
    viewer.window.remove_dock_widget(d.native.parent())
    _, dock = viewer.window.add_plugin_dock_widget("tamale", "Finetune a model")
    dock.base_model.value = base
    dock.model_name.value = "mito-tile"
    dock.train_dir.value = str(work / "tile_set" / "mito_tile")
    dock.val_dir.value = str(work / "tile_set" / "mito_tile")
    dock.model_dir.value = str(work / "models")
    dock.finetune_layers.value = "all"
    dock.iterations.value = args.iterations
    dock.patch_size.value = 128
    dock.batch_size.value = 4
    dock.use_gpu.value = False
    cfg = work / "finetune.yaml"
    cfg.write_text(f"val_every: {max(1, args.iterations // 5)}\n")
    dock.custom_config.value = str(cfg)
    dock.runner.run_button.clicked.emit()
    wait(app, lambda: not dock.runner.busy)
    if dock.runner.last_error:
        raise dock.runner.last_error
    app.processEvents()
    shot(viewer, "finetune_dock.png")
    (work / "finetune_result.json").write_text(json.dumps(dock.last_result.validation, indent=1))
    viewer.window.remove_dock_widget(dock.native.parent())
    viewer.layers["before finetuning"].visible = False
    d = infer(viewer, app, "mito-tile", "panoptic_tile", "after finetuning")
    shot(viewer, "finetune_result.png")
    scores["after"] = _tile_scores(d.last_layer.data, mito)
    (work / "finetune_scores.json").write_text(json.dumps(scores, indent=1))
    print(json.dumps(scores, indent=1), flush=True)
    viewer.close()


def _tile_scores(labels, truth) -> dict:
    """F1@0.5, PQ, semantic IoU and object counts of one-class labels against the tile's."""
    from tamale.training.metrics import score_labels

    s = score_labels(np.asarray(labels), truth)
    out = {k: round(float(s[k]), 3) for k in ("f1", "pq", "iou", "tp", "fp", "fn")}
    out["objects"] = int(len(np.unique(np.asarray(labels))) - 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=["panoptic", "finetune"])
    parser.add_argument("--work", required=True)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--base-card", help="card of the model to finetune (default: built-in)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    IMAGES.mkdir(exist_ok=True)
    panoptic(args) if args.scenario == "panoptic" else finetune(args)


if __name__ == "__main__":
    main()
