"""2D inference speed: end to end, forward pass alone, post-processing alone. Prints JSON.

Workload (the one the reference figures in docs/performance.md were measured on): one
synthetic uint8 EM image (default 1024^2) holding about 240 mitochondria. Models have
random weights, registered in a temporary TAMALE_HOME and loaded through the real engine
(cache, inference preparation, int8 quantization). A random network predicts no objects,
so, like the reference measurement, the network's outputs are replaced by synthetic
outputs made from the image's ground truth (``make_targets``; background offsets point
where the nearest object's do, as a trained network's would) after the real forward pass
has run: post-processing then does real work on ~240 objects.

Timings: median of ``--repeats`` runs after ``--warmup`` runs (the first runs of a new
image size are slower while oneDNN builds its kernels). Model loading is reported apart.

    python benchmarks/infer2d.py                       # both R50 presets, float32
    python benchmarks/infer2d.py --quantized           # + int8 Panoptic-DeepLab-R50
    python benchmarks/infer2d.py --postprocess-only    # seconds, no network
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tamale.inference import Inference2DConfig, ModelCache, get_engine, infer_2d
from tamale.inference.engine import Engine
from tamale.postprocess import (
    ClassTable,
    PostprocessConfig,
    RawPrediction,
    make_targets,
    postprocess,
)
from tamale.synthetic import synthetic_em_2d

PRESETS = {"bifpn_r50": "panoptic_bifpn_r50", "deeplab_r50": "panoptic_deeplab_r50"}


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = [round(v, 2) for v in os.getloadavg()]
    return info


def median_time(func, repeats: int, warmup: int) -> tuple[float, list[float], object]:
    result = None
    for _ in range(warmup):
        result = func()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), [round(t, 4) for t in times], result


class SyntheticOutputs:
    """Runs the real network, then answers with outputs made from the ground truth."""

    def __init__(self, model, labels: np.ndarray) -> None:
        self.model = model
        self.padding_factor = model.padding_factor
        self.num_classes = getattr(model, "num_classes", 1)
        self.labels = labels
        self.forward_seconds: list[float] = []
        self._cache: dict[tuple, dict] = {}

    def predict(self, x, upsample=1, fine=False):
        t0 = time.perf_counter()
        out = self.model.predict(x, upsample=upsample, fine=fine)
        self.forward_seconds.append(time.perf_counter() - t0)
        key = (tuple(x.shape), upsample, fine)
        if key not in self._cache:
            h, w = x.shape[-2] * upsample, x.shape[-1] * upsample
            lab = np.zeros((h, w), np.int64)
            lab[: self.labels.shape[0], : self.labels.shape[1]] = self.labels[:h, :w]
            stride = 1 if fine else 4
            small = lab[::upsample, ::upsample]
            t = make_targets(small, stride=stride)
            off = smooth_offsets(t.offsets, small[::stride, ::stride], stride)
            sem = torch.from_numpy((lab > 0).astype(np.float32) * 20 - 10)[None, None]
            self._cache[key] = {
                "sem_logits": sem.expand(x.shape[0], -1, -1, -1),
                "ctr_hmp": torch.from_numpy(t.heatmap)[None, None].expand(x.shape[0], -1, -1, -1),
                "offsets": torch.from_numpy(off)[None].expand(x.shape[0], -1, -1, -1),
            }
        synthetic = self._cache[key]
        assert synthetic["ctr_hmp"].shape == out["ctr_hmp"].shape
        return synthetic


def smooth_offsets(offsets: np.ndarray, grid_labels: np.ndarray, stride: int) -> np.ndarray:
    """Background grid points point where their nearest object's pixels point (as a
    trained network's offsets do near objects), instead of 0."""
    from scipy import ndimage as ndi

    if not grid_labels.any():
        return offsets
    _, (iy, ix) = ndi.distance_transform_edt(grid_labels == 0, return_indices=True)
    gy, gx = np.mgrid[0 : grid_labels.shape[0], 0 : grid_labels.shape[1]]
    out = offsets.copy()
    bg = grid_labels == 0
    out[0][bg] = (offsets[0][iy, ix] + (iy - gy) * stride)[bg]
    out[1][bg] = (offsets[1][iy, ix] + (ix - gx) * stride)[bg]
    return out


def register(preset: str, home: Path) -> str:
    from tamale.models import build_model, save_weights
    from tamale.registry import ModelCard, save_card

    folder = home / "models" / preset
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = build_model(preset)
    sha = save_weights(model, folder / "weights.safetensors")
    card = ModelCard(
        name=preset,
        architecture=preset,
        weights={"uri": "weights.safetensors", "sha256": sha},
        classes=[{"id": 1, "name": "mitochondria", "kind": "instance"}],
        padding_factor=model.padding_factor,
    )
    save_card(card, folder / "card.yaml")
    return preset


def bench_model(name, preset, precision, image, labels, args) -> dict:
    cache = ModelCache()
    t0 = time.perf_counter()
    engine = get_engine(preset, "cpu", precision, cache)
    load_s = time.perf_counter() - t0
    wrapped = SyntheticOutputs(engine.model, labels)
    fake = Engine(card=engine.card, model=wrapped, device=engine.device, precision=precision)
    cfg = Inference2DConfig(use_gpu=False, use_quantized=precision == "int8")
    med, runs, result = median_time(lambda: infer_2d(image, fake, cfg), args.repeats, args.warmup)
    fwd = wrapped.forward_seconds[args.warmup :]
    n_objects = int(len(np.unique(result.labels)) - 1)
    return {
        "model": name,
        "preset": preset,
        "precision": precision,
        "load_seconds": round(load_s, 3),
        "end_to_end_seconds": round(med, 3),
        "end_to_end_runs": runs,
        "forward_seconds": round(statistics.median(fwd), 3),
        "objects_found": n_objects,
    }


def bench_postprocess(labels: np.ndarray, args) -> list[dict]:
    out = []
    full = make_targets(labels)
    probs = torch.from_numpy((full.semantic > 0).astype(np.float32))[None, None]
    for fine in (False, True):
        stride = 1 if fine else 4
        grid = full if fine else make_targets(labels, stride=4)
        off = smooth_offsets(grid.offsets, labels[::stride, ::stride], stride)
        raw = RawPrediction(
            probs,
            torch.from_numpy(grid.heatmap)[None, None],
            torch.from_numpy(off)[None],
            stride=1 if fine else 4,
        )
        med, runs, res = median_time(
            lambda raw=raw: postprocess(raw, PostprocessConfig(), ClassTable.binary()),
            args.repeats * 2 + 1,
            args.warmup,
        )
        out.append(
            {
                "fine_boundaries": fine,
                "seconds": round(med, 4),
                "runs": runs,
                "objects_found": int(len(np.unique(res)) - 1),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--objects", type=int, default=240)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--models", nargs="*", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--quantized", action="store_true", help="also int8 deeplab_r50")
    parser.add_argument("--postprocess-only", action="store_true")
    args = parser.parse_args(argv)

    sample = synthetic_em_2d((args.size, args.size), seed=0, n_objects=args.objects)
    report: dict = {
        "benchmark": "infer2d",
        "machine": machine(),
        "image": {"shape": list(sample.image.shape), "dtype": "uint8", "objects": sample.n_objects},
        "repeats": args.repeats,
        "warmup": args.warmup,
    }
    report["postprocess"] = bench_postprocess(sample.labels.astype(np.int64), args)
    if not args.postprocess_only:
        with tempfile.TemporaryDirectory() as home:
            os.environ["TAMALE_HOME"] = home
            runs = [(m, "float32") for m in args.models]
            if args.quantized:
                runs.append(("deeplab_r50", "int8"))
            report["models"] = []
            for name, precision in runs:
                preset = PRESETS[name]
                register(preset, Path(home))
                report["models"].append(
                    bench_model(name, preset, precision, sample.image, sample.labels, args)
                )
                print(json.dumps(report["models"][-1]), file=sys.stderr)
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
