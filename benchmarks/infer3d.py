"""Benchmark 3D inference: stack, ortho-plane, and peak memory with zarr output.

Prints one JSON document. Cases:

``stack``   Panoptic-DeepLab-R50 (random weights), 32x512x512, xy stack (median 3)
``ortho``   the same network, 64x256x256, ortho-plane with consensus
``memory``  a small preset (``tiny``), stack inference to zarr, from 64^3 up to
            512x1024x1024 (``--sizes``), slices cut into tiles (``--tile-size`` 256,
            ``--tile-overlap`` 64; 0 = whole slices); each size runs in a fresh process
            and reports its peak resident memory (the input is generated as a zarr store chunk by chunk)

Realistic outputs: a random-weight network predicts nothing, so -- as in the reference
figures -- its outputs are replaced by ideal ones holding the test objects. The network
still runs on every slice (its cost is measured); the replacement outputs (semantic
probabilities, centre heatmap and offsets) are made from the object ids the input
volume encodes (``tamale.postprocess.make_targets``), so post-processing, the median
filter, linking, consensus and writing do their real work on ~290 objects per 512^2
slice (``--objects``).

Examples::

    python benchmarks/infer3d.py --case stack
    python benchmarks/infer3d.py --case ortho
    python benchmarks/infer3d.py --case memory --sizes 64,64,64 512,1024,1024
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tamale.inference.config3d import Inference3DConfig
from tamale.inference.model_factory import ModelSegmenter, ModelSegmenterFactory, TiledRaw
from tamale.inference.normalize import make_normalizer
from tamale.inference.slice_model import ClassInfo, build_cached
from tamale.postprocess import RawPrediction, make_targets
from tamale.postprocess.pieces import split_pieces
from tamale.registry import ModelCard

# -- a real network whose outputs are replaced by ideal ones -------------------------------


class IdealOutputs(ModelSegmenter):
    """Runs the network on every batch, then returns outputs made from the input's ids."""

    def _ideal(self, ids: np.ndarray) -> RawPrediction:
        t = make_targets(ids.astype(np.int64), stride=4)
        pf = int(self.engine.padding_factor)
        h, w = ids.shape
        gh, gw = -(-h // pf) * pf // 4, -(-w // pf) * pf // 4
        ctr = np.zeros((1, 1, gh, gw), np.float32)
        off = np.zeros((1, 2, gh, gw), np.float32)
        ctr[0, 0, : t.heatmap.shape[0], : t.heatmap.shape[1]] = t.heatmap
        off[0, :, : t.offsets.shape[1], : t.offsets.shape[2]] = t.offsets
        probs = (ids > 0).astype(np.float32)[None, None] * 0.9 + 0.05
        return RawPrediction(
            torch.from_numpy(probs).to(self.device),
            torch.from_numpy(ctr).to(self.device),
            torch.from_numpy(off).to(self.device),
            stride=4,
        )

    def predict(self, images: np.ndarray) -> list[Any]:
        raws = super().predict(images)  # the real forward pass: its cost is what we measure
        out: list[Any] = []
        for img, raw in zip(np.asarray(images), raws):
            if isinstance(raw, TiledRaw):  # tiled slice: ideal outputs tile by tile
                tiles = self.tiles(raw.shape)
                out.append(TiledRaw([self._ideal(img[t.read]) for t in tiles], raw.shape))
            else:
                out.append(self._ideal(img))
        return out


@dataclass(frozen=True)
class IdealFactory(ModelSegmenterFactory):
    def build(self, device: str | None = None) -> ModelSegmenter:
        return IdealOutputs(self, device)


def random_card(preset: str, folder: Path) -> ModelCard:
    from tamale.models import build_model, save_weights

    torch.manual_seed(0)
    model = build_model(preset, num_classes=1)
    sha = save_weights(model, folder / f"{preset}.safetensors")
    card = ModelCard(
        name=f"bench-{preset.replace('_', '-')}",
        architecture=preset,
        weights={"uri": str(folder / f"{preset}.safetensors"), "sha256": sha},
        classes=[{"id": 1, "name": "mitochondria", "kind": "instance"}],
        padding_factor=model.padding_factor,
    )
    return card


def factory(card: ModelCard, config: Inference3DConfig) -> IdealFactory:
    return IdealFactory(
        card=card,
        config=config,
        normalizer=make_normalizer(np.zeros((1, 1), np.uint8), card.norms),
        classes=(ClassInfo(1, "mitochondria", "instance"),),
        label_divisor=config.label_divisor,
    )


# -- test volumes -------------------------------------------------------------------------------


def object_volume(shape: tuple[int, int, int], per_slice: int, seed: int = 0) -> np.ndarray:
    """uint8 ids (1..255, repeating) of ellipsoidal objects, about ``per_slice`` per xy slice."""
    from tamale.synthetic import synthetic_em_3d

    z, y, x = shape
    radius = 0.45 * np.sqrt(y * x / per_slice / np.pi)
    n = int(per_slice * z / (2 * radius * 1.2))
    s = synthetic_em_3d(
        shape,
        spacing=(1, 1, 1),
        object_size=(0.8 * radius, 1.1 * radius),
        n_objects=n,
        touch_fraction=0.3,
        n_vesicles=0,
        seed=seed,
    )
    labels = s.labels.astype(np.int64)
    return np.where(labels > 0, (labels - 1) % 255 + 1, 0).astype(np.uint8)


def lattice_block(
    region: tuple[slice, slice, slice], spacing: int = 48, seed: int = 0
) -> np.ndarray:
    """Procedural objects (jittered spheres on a lattice), computed for one block only."""
    origin = np.array([r.start for r in region])
    shape = tuple(r.stop - r.start for r in region)
    out = np.zeros(shape, np.uint8)
    cells = [range(r.start // spacing - 1, r.stop // spacing + 2) for r in region]
    for cz in cells[0]:
        for cy in cells[1]:
            for cx in cells[2]:
                rng = np.random.default_rng([seed, cz + 10**6, cy + 10**6, cx + 10**6])
                c = (np.array([cz, cy, cx]) + 0.5 + rng.uniform(-0.2, 0.2, 3)) * spacing - origin
                r = rng.uniform(0.25, 0.4) * spacing
                lo = np.maximum(np.floor(c - r).astype(int), 0)
                hi = np.minimum(np.ceil(c + r).astype(int) + 1, shape)
                if np.any(hi <= lo):
                    continue
                zz, yy, xx = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
                inside = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r * r
                view = out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
                view[inside] = (cz * 7 + cy * 13 + cx * 29) % 255 + 1
    return out


def make_zarr_input(path: Path, shape: tuple[int, int, int], chunk: int = 64) -> None:
    import zarr

    arr = zarr.create_array(str(path), shape=shape, chunks=(chunk,) * 3, dtype="uint8")
    for z0 in range(0, shape[0], chunk):
        for y0 in range(0, shape[1], chunk):
            for x0 in range(0, shape[2], chunk):
                region = (
                    slice(z0, min(z0 + chunk, shape[0])),
                    slice(y0, min(y0 + chunk, shape[1])),
                    slice(x0, min(x0 + chunk, shape[2])),
                )
                arr[region] = lattice_block(region)


# -- cases ----------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average": load,
    }


def run_case(
    volume: Any, card: ModelCard, config: Inference3DConfig, **kwargs: Any
) -> dict[str, Any]:
    from tamale.inference.volume import segment_volume

    f = factory(card, config)
    stages: dict[str, float] = {}
    last = {"stage": None, "t": time.perf_counter()}

    def progress(event: Any) -> None:
        now = time.perf_counter()
        if last["stage"] is not None:
            stages[last["stage"]] = stages.get(last["stage"], 0.0) + now - last["t"]
        last.update(stage=event.stage.split(":")[0], t=now)

    t0 = time.perf_counter()
    result = segment_volume(volume, f, config, progress=progress, **kwargs)
    total = time.perf_counter() - t0
    if last["stage"] is not None:
        stages[last["stage"]] = stages.get(last["stage"], 0.0) + time.perf_counter() - last["t"]
    return {
        "seconds": round(total, 2),
        "seconds_by_stage": {k: round(v, 2) for k, v in stages.items()},
        "objects": result.n_objects,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _timed_config(args: argparse.Namespace, **fields: Any) -> Inference3DConfig:
    """The stack and ortho cases' parameters (the reference's filters, the chosen precision)."""
    return Inference3DConfig(
        min_size=100,
        min_extent=3,
        batch_size=args.batch_size,
        use_gpu=not args.cpu,
        use_quantized=args.quantized,
        half_precision=args.half,
        **fields,
    )


def _precision(args: argparse.Namespace) -> str:
    return "int8" if args.quantized else "half" if args.half else "float32"


def case_stack(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    vol = object_volume((8, 128, 128) if args.quick else (32, 512, 512), args.objects)
    card = random_card(args.preset, tmp)
    config = _timed_config(args)
    per_slice = float(np.mean([split_pieces(s).n for s in vol]))
    build_cached(factory(card, config)).predict(vol[:1])  # warm-up (model load, first call)
    res = run_case(vol, card, config)
    return {
        "case": "stack 32x512x512 xy",
        "preset": args.preset,
        "precision": _precision(args),
        "objects_per_xy_slice": per_slice,
        **res,
        "reference_empanada_s": {"no objects": 31.8, "~290 objects": 60.6, "issue 7 figure": 88.5},
    }


def case_ortho(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    vol = object_volume((16, 64, 64) if args.quick else (64, 256, 256), max(1, args.objects // 4))
    card = random_card(args.preset, tmp)
    config = _timed_config(args, plane="ortho")
    build_cached(factory(card, config)).predict(vol[:1])
    res = run_case(vol, card, config)
    return {
        "case": "ortho-plane 64x256x256 with consensus",
        "preset": args.preset,
        "precision": _precision(args),
        **res,
        "reference_empanada_s": {"no objects": 79.9, "with objects": 109.3},
    }


def case_memory_one(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    shape = tuple(int(v) for v in args.shape.split(","))
    src = tmp / "input.zarr"
    t = time.perf_counter()
    make_zarr_input(src, shape)  # type: ignore[arg-type]
    made = time.perf_counter() - t
    card = random_card("tiny", tmp)
    config = Inference3DConfig(
        min_size=50,
        min_extent=3,
        batch_size=args.batch_size,
        use_gpu=not args.cpu,
        tile_size=args.tile_size,
        tile_overlap=args.tile_overlap,
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res = run_case(str(src), card, config, out=tmp / "out.zarr", chunks=64)
    return {
        "shape": shape,
        "input_seconds": round(made, 1),
        "rss_before_run_mib": round(rss_before, 1),
        **res,
    }


def case_memory(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    runs = []
    for size in args.sizes:
        cmd = [
            sys.executable,
            __file__,
            "--case",
            "memory-one",
            "--shape",
            size,
            "--batch-size",
            str(args.batch_size),
            "--tile-size",
            str(args.tile_size),
            "--tile-overlap",
            str(args.tile_overlap),
        ]
        if args.cpu:
            cmd.append("--cpu")
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout)["result"])
    peaks = [r["peak_rss_mib"] for r in runs]
    return {
        "case": "stack inference to zarr, tiny preset, peak RSS per volume size",
        "tile_size": args.tile_size,
        "tile_overlap": args.tile_overlap,
        "runs": runs,
        "peak_growth": round(max(peaks) / min(peaks) - 1, 3),
        "goal": "peak within 20% from the smallest to the largest volume",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--case", choices=("stack", "ortho", "memory", "memory-one"), default="stack"
    )
    parser.add_argument("--objects", type=int, default=290, help="objects per 512^2 xy slice")
    parser.add_argument("--preset", default="panoptic_deeplab_r50", help="network (random weights)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--cpu", action="store_true", help="do not use a GPU")
    parser.add_argument(
        "--quantized", action="store_true", help="int8 model on the CPU (stack and ortho)"
    )
    parser.add_argument(
        "--half", action="store_true", help="bfloat16 where native (stack and ortho)"
    )
    parser.add_argument("--sizes", nargs="+", default=["64,64,64", "64,1024,1024", "512,1024,1024"])
    parser.add_argument("--shape", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="tiny volumes (smoke test)")
    parser.add_argument(
        "--tile-size", type=int, default=256, help="memory case: tile side (model pixels)"
    )
    parser.add_argument(
        "--tile-overlap", type=int, default=64, help="memory case: tile overlap (model pixels)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        case = {
            "stack": case_stack,
            "ortho": case_ortho,
            "memory": case_memory,
            "memory-one": case_memory_one,
        }[args.case]
        result = case(args, tmp)
    print(json.dumps({"benchmark": "infer3d", "machine": machine(), "result": result}, indent=1))


if __name__ == "__main__":
    main()
