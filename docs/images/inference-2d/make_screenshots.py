"""Screenshots of the 2D inference dock for docs/inference-2d.md (run under Xvfb).

    xvfb-run -a python docs/images/inference-2d/make_screenshots.py

No trained model ships with tamale yet, so the dock's engine call is redirected to a
*simulated network*: its outputs are made from the synthetic image's ground truth, with
two close centre peaks on long objects (as a real network's heatmap often has), so that the
parameters have the effect they have on real outputs (see ``SimulatedNetwork``). Everything after the network
(normalisation, post-processing, placement, the dock) is the real code.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage
from PIL import ImageDraw
from skimage.measure import regionprops

OUT = Path(__file__).resolve().parent
os.environ.setdefault("TAMALE_HOME", tempfile.mkdtemp())


class SimulatedNetwork:
    """Ground-truth outputs with a real network's ambiguity: a long object gets two centre
    peaks close together (heights 0.9 and 0.4) with each half of it pointing at its own
    peak, and background offsets point where the nearest object's pixels point."""

    padding_factor = 32
    num_classes = 1

    def __init__(self) -> None:
        self.labels: np.ndarray | None = None

    def outputs(self, lab: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
        from scipy import ndimage as ndi

        from tamale.postprocess import make_targets

        t = make_targets(lab, stride=stride, sigma=4.0)
        gh, gw = t.heatmap.shape
        yy, xx = np.mgrid[0:gh, 0:gw] * stride
        hmp = np.zeros((gh, gw), np.float32)
        off = t.offsets.copy()
        grid = lab[::stride, ::stride]

        def bump(cy: float, cx: float, height: float) -> np.ndarray:
            d2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / 16.0
            return (height * np.exp(-d2 / 2)).astype(np.float32)

        for region in regionprops(lab):
            cy, cx = region.centroid
            inside = grid == region.label
            if region.major_axis_length < 70:
                hmp = np.maximum(hmp, bump(cy, cx, 1.0))
                continue
            dy, dx = np.cos(region.orientation), np.sin(region.orientation)
            half = 0.08 * region.major_axis_length
            peaks = [(cy - dy * half, cx - dx * half, 0.9), (cy + dy * half, cx + dx * half, 0.4)]
            for py, px, h in peaks:
                hmp = np.maximum(hmp, bump(py, px, h))
            side = ((yy - cy) * dy + (xx - cx) * dx) > 0
            for k, (py, px, _) in enumerate(peaks):
                sel = inside & (side == bool(k))
                off[0][sel] = (py - yy)[sel]
                off[1][sel] = (px - xx)[sel]
        if grid.any():
            _, (iy, ix) = ndi.distance_transform_edt(grid == 0, return_indices=True)
            bg = grid == 0
            gy, gx = np.mgrid[0:gh, 0:gw]
            off[0][bg] = (off[0][iy, ix] + (iy - gy) * stride)[bg]
            off[1][bg] = (off[1][iy, ix] + (ix - gx) * stride)[bg]
        return hmp, off

    def predict(self, x, upsample=1, fine=False):
        h, w = x.shape[-2:]
        lab = np.zeros((h * upsample, w * upsample), np.int64)
        src = self.labels
        lab[: src.shape[0], : src.shape[1]] = src[: lab.shape[0], : lab.shape[1]]
        hmp, off = self.outputs(lab[::upsample, ::upsample], 1 if fine else 4)
        sem = torch.from_numpy((lab > 0).astype(np.float32) * 8 - 4)[None, None]
        n = x.shape[0]
        return {
            "sem_logits": sem.expand(n, -1, -1, -1),
            "ctr_hmp": torch.from_numpy(hmp)[None, None].expand(n, -1, -1, -1),
            "offsets": torch.from_numpy(off)[None].expand(n, -1, -1, -1),
        }


def register_demo_model() -> str:
    from tamale._paths import models_dir
    from tamale.models import build_model, save_weights
    from tamale.registry import ModelCard, save_card

    name = "MitoDemo"
    folder = models_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    sha = save_weights(build_model("tiny"), folder / "weights.safetensors")
    card = ModelCard(
        name=name,
        architecture="tiny",
        weights={"uri": "weights.safetensors", "sha256": sha},
        classes=[{"id": 1, "name": "mitochondria", "kind": "instance"}],
        padding_factor=32,
    )
    save_card(card, folder / "card.yaml")
    return name


def caption(png: np.ndarray, text: str) -> PILImage.Image:
    img = PILImage.fromarray(png[..., :3])
    canvas = PILImage.new("RGB", (img.width, img.height + 28), "white")
    canvas.paste(img, (0, 28))
    ImageDraw.Draw(canvas).text((8, 6), text, fill="black")
    return canvas


def side_by_side(panels: list[PILImage.Image], path: Path) -> None:
    width = sum(p.width for p in panels) + 8 * (len(panels) - 1)
    height = max(p.height for p in panels)
    out = PILImage.new("RGB", (width, height), "white")
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + 8
    out.save(path)
    print("wrote", path)


def main() -> int:
    from qtpy.QtWidgets import QApplication

    import napari
    import tamale_napari._infer2d as dock_module
    from tamale.inference import Engine, get_engine
    from tamale.synthetic import synthetic_em_2d, synthetic_em_3d

    name = register_demo_model()
    network = SimulatedNetwork()
    real_iter = dock_module.iter_infer_2d

    def simulated(image, model, config, **kwargs):
        card = get_engine(model).card
        engine = Engine(card=card, model=network, device=torch.device("cpu"))
        return real_iter(image, engine, config, **kwargs)

    dock_module.iter_infer_2d = simulated

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 900)
    _, dock = viewer.window.add_plugin_dock_widget("tamale", "2D inference (parameter testing)")
    dock.model.value = name
    dock.use_gpu.value = False

    def run() -> None:
        dock.runner.run_button.clicked.emit()
        app = QApplication.instance()
        while dock.runner.busy:
            app.processEvents()
        for _ in range(20):
            app.processEvents()

    sample = synthetic_em_2d((512, 512), seed=1, n_objects=45, touch_fraction=0.6)
    network.labels = sample.labels.astype(np.int64)
    image = viewer.add_image(sample.image, name="EM image")
    dock.image.value = image
    run()
    viewer.reset_view()
    QApplication.instance().processEvents()
    viewer.screenshot(str(OUT / "dock.png"), canvas_only=False)
    print("wrote", OUT / "dock.png")

    # coarse vs fine boundaries, zoomed on touching objects
    camera = getattr(viewer, "scene", viewer).camera
    camera.center = (250, 250)
    camera.zoom = 3.0
    panels = []
    for fine in (False, True):
        for layer in list(viewer.layers)[1:]:
            viewer.layers.remove(layer)
        dock.fine_boundaries.value = fine
        run()
        panels.append(
            caption(
                viewer.screenshot(canvas_only=True),
                f"fine boundaries {'on' if fine else 'off'} (grouping at "
                f"{'full' if fine else '1/4'} resolution)",
            )
        )
    dock.fine_boundaries.value = False
    side_by_side(panels, OUT / "fine-boundaries.png")

    # centers min distance and center confidence on long objects
    viewer.reset_view()
    panels = []
    for distance, confidence in ((1, 0.1), (3, 0.1), (9, 0.1), (3, 0.5)):
        for layer in list(viewer.layers)[1:]:
            viewer.layers.remove(layer)
        dock.centers_min_distance.value = distance
        dock.center_confidence_thr.value = confidence
        run()
        n = dock.last_result.object_counts().get("mitochondria", 0)
        panels.append(
            caption(
                viewer.screenshot(canvas_only=True),
                f"min distance {distance}, center conf. {confidence}: {n} objects",
            )
        )
    dock.centers_min_distance.value = 3
    dock.center_confidence_thr.value = 0.1
    side_by_side(panels[:2], OUT / "min-distance-1-3.png")
    side_by_side(panels[2:], OUT / "min-distance-9-confidence-05.png")

    # a transposed volume: the xz plane the viewer shows
    viewer.layers.clear()
    vol = synthetic_em_3d((48, 256, 256), seed=0)
    network.labels = None
    vimage = viewer.add_image(vol.image, name="EM volume", scale=vol.spacing)
    viewer.dims.order = (1, 0, 2)
    viewer.dims.set_point(1, 128)
    network.labels = vol.labels[:, 128, :].astype(np.int64)
    dock.image.value = vimage
    dock.fine_boundaries.value = True
    run()
    viewer.reset_view()
    QApplication.instance().processEvents()
    viewer.screenshot(str(OUT / "xz-plane.png"), canvas_only=False)
    print("wrote", OUT / "xz-plane.png")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
