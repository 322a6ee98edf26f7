"""Training benchmarks; each prints JSON on stdout.

``python benchmarks/train.py speed``
    Seconds per training iteration (forward, loss, backward, AdamW step, plus batch
    reading, augmentation and targets) of the published-architecture presets
    (``panoptic_deeplab_r50``, ``panoptic_bifpn_r50``) at batch 16 of 256 x 256, encoder
    frozen (``finetune_layers=none``) and all layers trained, on synthetic data, through
    :func:`tamale.training.fit` itself. Compared with the reference pipeline's published
    figures (empanada-napari on a CPU; see docs/performance.md).

``python benchmarks/train.py quality --out DIR``
    The quality run: a small CPU-friendly model trained from scratch on the VNC ssTEM
    slices 0-13 and validated on slices 14-19 (``../shared/data/vnc_sstem``), logging
    per-slice F1@0.5 and PQ against wall and CPU minutes (``DIR/log.jsonl``), keeping the
    best checkpoint and writing the final card + weights in ``DIR``. Run again with the
    same arguments to resume after an interruption.

Both set ``torch.set_num_threads`` (``--threads``, default 2).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REFERENCE_S_PER_IT = {  # empanada-napari on a CPU, batch 16 of 256^2 (docs/performance.md)
    ("panoptic_bifpn_r50", "none"): 6.55,
    ("panoptic_bifpn_r50", "all"): 9.4,
    ("panoptic_deeplab_r50", "none"): 11.6,
}


def _machine() -> dict[str, object]:
    import torch

    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover
        load = (float("nan"),) * 3
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:  # pragma: no cover
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average_1_5_15": [round(v, 2) for v in load],
    }


def _synthetic_set(root: Path, n: int, size: int) -> Path:
    import tifffile

    from tamale.synthetic import synthetic_em_2d

    for k in range(n):
        em = synthetic_em_2d((size, size), seed=k)
        for sub, arr in (("images", em.image), ("masks", em.labels)):
            (root / "syn" / sub).mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(root / "syn" / sub / f"p{k:03d}.tif", arr)
    return root


def _speed_one(preset: str, layers: str, iterations: int, batch_size: int) -> dict[str, object]:
    """One (preset, finetunable layers) case, timed through ``fit`` (run in its own process)."""
    import resource

    from tamale.models import build_model, save_weights
    from tamale.registry import ModelCard, register_model, save_card
    from tamale.training import TrainConfig, fit

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TAMALE_HOME"] = str(Path(tmp) / "home")
        data = _synthetic_set(Path(tmp) / "data", 4, 512)
        # a registered base model to finetune, so that "none" really freezes the encoder
        folder = Path(tmp) / "base"
        folder.mkdir()
        model = build_model(preset)
        sha = save_weights(model, folder / "weights.safetensors")
        card = ModelCard(
            name="base",
            architecture=preset,
            weights={"uri": "weights.safetensors", "sha256": sha},
            classes=[{"id": 1, "name": "mito", "kind": "instance"}],
            padding_factor=model.padding_factor,
        )
        register_model(save_card(card, folder / "card.yaml"))
        del model
        times: list[float] = []
        cpu: list[float] = []
        last = [time.perf_counter(), time.process_time()]

        def on_event(event) -> None:
            now, now_cpu = time.perf_counter(), time.process_time()
            if event.stage == "train" and event.step > 0 and "loss" in event.metrics:
                times.append(now - last[0])
                cpu.append(now_cpu - last[1])
            last[0], last[1] = now, now_cpu

        config = TrainConfig(
            model_name="bench",
            train_dir=data,
            model_dir=Path(tmp) / "out",
            base_model="base",
            finetune_layers=layers,
            iterations=iterations,
            patch_size=256,
            batch_size=batch_size,
            register_model=False,
            device="cpu",
        )
        fit(config, progress=on_event)
    steady = times[1:] if len(times) > 1 else times
    steady_cpu = cpu[1:] if len(cpu) > 1 else cpu
    ref = REFERENCE_S_PER_IT.get((preset, layers))
    s_it = float(np.median(steady))
    return {
        "preset": preset,
        "finetune_layers": layers,
        "batch": batch_size,
        "patch": 256,
        "iterations_timed": len(steady),
        "s_per_it_median": round(s_it, 2),
        "s_per_it_all": [round(t, 2) for t in times],
        "cpu_s_per_it_median": round(float(np.median(steady_cpu)), 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "reference_s_per_it": ref,
        "ratio_to_reference": round(s_it / ref, 2) if ref else None,
    }


def speed(args: argparse.Namespace) -> dict[str, object]:
    import subprocess

    results = []
    for preset in args.presets:
        for layers in args.layers:
            cmd = [sys.executable, __file__, "--threads", str(args.threads), "speed-one",
                   preset, layers, str(args.iterations), str(args.batch_size)]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results.append(json.loads(out))
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    return {"benchmark": "train-speed", "machine": _machine(), "results": results}


# -- quality run ------------------------------------------------------------------------


def _vnc_sets(out: Path, fill: bool) -> tuple[Path, Path, list[int]]:
    import tifffile

    from vnc_sstem import VNC, load_vnc_sstem

    if fill:  # the repaired ground truth (see benchmarks/vnc_sstem.py)
        image, labels, filled = load_vnc_sstem()
    else:
        image = tifffile.imread(VNC / "image.tif")
        labels = tifffile.imread(VNC / "mito_instances_2d_cc.tif").astype(np.uint32)
        filled = []
    train, val = out / "data" / "train", out / "data" / "val"
    for root, zs in ((train, range(0, 14)), (val, range(14, 20))):
        for sub in ("images", "masks"):
            (root / "vnc" / sub).mkdir(parents=True, exist_ok=True)
        for z in zs:
            name = f"slice_{z:02d}.tif"
            if not (root / "vnc" / "images" / name).exists():
                tifffile.imwrite(root / "vnc" / "images" / name, image[z])
                tifffile.imwrite(root / "vnc" / "masks" / name, labels[z])
    return train, val, filled


def quality(args: argparse.Namespace) -> dict[str, object]:
    from tamale.training import TrainConfig, fit

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["TAMALE_HOME"] = str(out / "tamale_home")
    train, val, filled = _vnc_sets(out, not args.no_fill)
    options = json.loads(args.options)
    name = args.name
    ckpt = out / "models" / name / "checkpoints" / "last.pt"
    config = TrainConfig(
        model_name=name,
        train_dir=train,
        val_dir=val,
        model_dir=out / "models",
        architecture=args.architecture,
        architecture_options=options,
        classes="1,mitochondria,instance",
        iterations=args.iterations,
        patch_size=args.patch_size,
        batch_size=args.batch_size,
        downsampling=args.downsampling,
        val_every=args.val_every,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        device="cpu",
        export="best",
        augment={"scale": tuple(args.scale)},
        optimizer={"lr": args.lr},
        inference=json.loads(args.inference),
        description=(
            "Mitochondria instances in serial-section TEM (Drosophila larva VNC, ~4.6 nm "
            "pixels), trained from scratch by tamale's quality benchmark."
        ),
        license="CC-BY-NC-SA-3.0 (inherited from the training data)",
        training_data=(
            "Gerhard S., Funke J., Martel J., Cardona A., Fetter R. Segmented anisotropic "
            "ssTEM dataset of neural tissue. figshare 2013, doi:10.6084/m9.figshare.856713; "
            "slices 0-13 (training), 14-19 (validation)"
        ),
        resume=ckpt if ckpt.is_file() else None,
    )
    log = open(out / "log.jsonl", "a", encoding="utf-8")
    log.write(json.dumps({"event": "start", "time": time.time(), "filled_slices": filled,
                          "config": config.model_dump(mode="json"), "machine": _machine()}) + "\n")  # fmt: skip
    log.flush()

    def on_event(event) -> None:
        if event.stage == "train" and event.metrics:
            log.write(json.dumps({"event": "iteration", **event.metrics}) + "\n")
            log.flush()
            if "val_f1" in event.metrics:
                m = event.metrics
                print(
                    f"it {int(m['iteration'])} cpu {m['cpu_seconds'] / 60:.1f} min "
                    f"wall {m['seconds'] / 60:.1f} min loss {m['loss']:.3f} "
                    f"F1 {m['val_f1']:.3f} PQ {m['val_pq']:.3f} IoU {m['val_iou']:.3f}",
                    file=sys.stderr,
                    flush=True,
                )

    result = fit(config, progress=on_event)
    summary = {
        "benchmark": "train-quality",
        "model": name,
        "card": str(result.card_path),
        "best_checkpoint": str(result.best_checkpoint),
        "filled_slices": filled,
        "validation": result.validation,
        "machine": _machine(),
    }
    log.write(json.dumps({"event": "end", **summary}) + "\n")
    log.close()
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    sub = parser.add_subparsers(dest="what", required=True)
    sp = sub.add_parser("speed")
    sp.add_argument("--presets", nargs="+", default=["panoptic_bifpn_r50", "panoptic_deeplab_r50"])
    sp.add_argument("--layers", nargs="+", default=["none", "all"])
    sp.add_argument("--iterations", type=int, default=3)
    sp.add_argument("--batch-size", type=int, default=16)
    one = sub.add_parser("speed-one")
    one.add_argument("preset")
    one.add_argument("layers")
    one.add_argument("iterations", type=int)
    one.add_argument("batch_size", type=int)
    q = sub.add_parser("quality")
    q.add_argument("--out", required=True)
    q.add_argument("--name", default="tamale-mito-vnc")
    q.add_argument("--architecture", default="tiny")
    q.add_argument("--options", default="{}", help="preset options as JSON")
    q.add_argument("--iterations", type=int, default=600)
    q.add_argument("--patch-size", type=int, default=256)
    q.add_argument("--batch-size", type=int, default=8)
    q.add_argument("--val-every", type=int, default=50)
    q.add_argument("--checkpoint-every", type=int, default=25)
    q.add_argument("--lr", type=float, default=3e-3)
    q.add_argument("--downsampling", type=int, default=1, choices=[1, 2, 4])
    q.add_argument("--scale", type=float, nargs=2, default=[0.6, 1.6])
    q.add_argument("--seed", type=int, default=0)
    q.add_argument(
        "--inference",
        default="{}",
        help="recommended inference parameters as JSON (card; used by validation)",
    )
    q.add_argument("--no-fill", action="store_true", help="leave unlabelled slices empty")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    if args.what == "speed-one":
        print(json.dumps(_speed_one(args.preset, args.layers, args.iterations, args.batch_size)))
        return
    result = speed(args) if args.what == "speed" else quality(args)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
