"""The built-in model's quality on the vnc ssTEM volume (``../shared/data/vnc_sstem``).

``python benchmarks/builtin_model.py tune CARD``
    Post-processing parameters chosen on the TRAINING slices 0-13 only: the network runs
    once per slice (at the card's recommended downsampling), then a grid of centre
    confidence, NMS distance and min area is scored (pooled F1@0.5 over the slices). Prints
    every combination and the best one as JSON.

``python benchmarks/builtin_model.py evaluate [CARD]``
    The held-out score: 2D inference exactly as a user runs it (``infer_2d`` with the
    card's recommended parameters) on slices 14-19, scored per slice and pooled
    (instance F1 at IoU 0.5, PQ, semantic IoU; :mod:`tamale.training.metrics`) against
    the repaired ground truth (``benchmarks/vnc_sstem.py``). Default CARD: the bundled
    built-in model.

``python benchmarks/builtin_model.py harden CARD OUT``
    One round of hard-example finetuning (how the bundled weights were made from the
    previous ones): the CARD model segments the TRAINING slices 0-13 with its
    recommended parameters; a 512 x 512 crop centred on each of its false detections
    and misses there joins the 14 slices as a second training source (``OUT/data``),
    and the model is finetuned on both (all layers, 1500 iterations of 8 x 256^2 at its
    downsampling, learning rate 1e-3, seed 3, last weights exported to
    ``OUT/models/vnc-hard``). Slices 14-19 are only the validation curve. Then run
    ``tune`` on the new card.

The first training run is ``benchmarks/train.py quality`` (see docs/performance.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vnc_sstem import load_vnc_sstem

TUNE_SLICES = range(0, 14)
HELD_OUT = range(14, 20)
DIV = 65536


def _keys(labels: np.ndarray) -> np.ndarray:
    """Segment keys of one-class instance labels (ids taken modulo the divisor)."""
    from tamale.training.metrics import segment_keys

    return segment_keys(np.asarray(labels).astype(np.int64) % DIV, None, (1,))


def _card(path: str | None):
    from tamale.demo import BUILTIN_MODEL
    from tamale.registry import get_card
    from tamale.registry.card import load_card

    return load_card(path) if path else get_card(BUILTIN_MODEL)


def tune(args: argparse.Namespace) -> dict:
    import torch

    from tamale.inference import get_engine, make_normalizer, predict_raw, recommended_config
    from tamale.postprocess import PostprocessConfig, drop_small_instances, postprocess
    from tamale.training.metrics import SegmentationScores

    card = _card(args.card)
    ds = recommended_config(card).downsampling
    engine = get_engine(card)
    image, gt, _ = load_vnc_sstem()
    raws = []
    with torch.inference_mode():
        for z in TUNE_SLICES:
            x = torch.from_numpy(make_normalizer(image[z], card.norms)(image[z]))[None]
            raws.append((z, predict_raw(engine.model, x, downsampling=ds)))
    grid = {
        "confidence_thr": [0.5, 0.6, 0.7],
        "center_confidence_thr": [0.1, 0.2],
        "centers_min_distance": [5, 7, 11],
        "min_area": [400, 600, 800, 1000],
    }
    results = []
    for conf, cc, nms, area in itertools.product(*grid.values()):
        cfg = PostprocessConfig(
            confidence_thr=conf,
            center_confidence_thr=cc,
            centers_min_distance=nms,
            label_divisor=DIV,
        )
        scores = SegmentationScores(things=frozenset({1}))
        for z, raw in raws:
            labels = postprocess(raw, cfg, engine.classes)[0]
            labels = drop_small_instances(labels, {1}, DIV, area)
            scores.add(_keys(labels), _keys(gt[z]))
        s = scores.summary()
        row = {
            "confidence_thr": conf,
            "center_confidence_thr": cc,
            "centers_min_distance": nms,
            "min_area": area,
            **{k: round(float(s[k]), 4) for k in ("f1", "pq", "iou", "tp", "fp", "fn")},
        }
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    best = max(results, key=lambda r: (r["f1"], r["pq"]))
    return {"benchmark": "builtin-tune", "slices": list(TUNE_SLICES), "downsampling": ds,
            "best": best}  # fmt: skip


def evaluate(args: argparse.Namespace) -> dict:
    import torch

    from tamale.inference import infer_2d, recommended_config
    from tamale.training.metrics import SegmentationScores

    torch.set_num_threads(args.threads)
    card = _card(args.card)
    config = recommended_config(card).model_copy(update={"label_divisor": DIV})
    image, gt, repaired = load_vnc_sstem()
    pooled = SegmentationScores(things=frozenset({1}))
    per_slice = {}
    seconds = []
    for z in HELD_OUT:
        start = time.perf_counter()
        labels = infer_2d(image[z], card, config).labels
        seconds.append(time.perf_counter() - start)
        pred, truth = _keys(labels), _keys(gt[z])
        pooled.add(pred, truth)
        one = SegmentationScores(things=frozenset({1})).add(pred, truth).summary()
        per_slice[z] = {k: round(float(one[k]), 4) for k in ("f1", "pq", "iou", "tp", "fp", "fn")}
    s = pooled.summary()
    return {
        "benchmark": "builtin-evaluate",
        "model": card.name,
        "parameters": {k: getattr(config, k) for k in card.inference},
        "slices": list(HELD_OUT),
        "ground_truth_repaired_slices": repaired,
        "per_slice": per_slice,
        "min_slice_f1": min(v["f1"] for v in per_slice.values()),
        "pooled": {k: round(float(s[k]), 4) for k in ("f1", "pq", "iou", "tp", "fp", "fn")},
        "seconds_per_slice_median": round(float(np.median(seconds[1:] or seconds)), 3),
    }


def _misses(pred: np.ndarray, truth: np.ndarray) -> list[tuple[float, float]]:
    """Centres of the objects of ``pred`` without a match (IoU >= 0.5) in ``truth``."""
    from scipy import ndimage as ndi

    centres = []
    for i in np.unique(pred)[1:]:
        m = pred == i
        best = 0.0
        for j in np.unique(truth[m]):
            if j:
                t = truth == j
                best = max(best, float((m & t).sum() / (m | t).sum()))
        if best < 0.5:
            centres.append(ndi.center_of_mass(m))
    return centres


def harden(args: argparse.Namespace) -> dict:
    import os

    import tifffile

    from tamale.inference import infer_2d, recommended_config

    out = Path(args.out).resolve()
    os.environ["TAMALE_HOME"] = str(out / "tamale_home")
    from tamale.registry import get_card, register_model
    from tamale.training import TrainConfig, fit
    from train import _vnc_sets

    card = _card(None)
    if args.card:  # a trained model's card: registered under TAMALE_HOME to finetune it
        register_model(args.card, name="hard-base", replace=True)
        card = get_card("hard-base")
    train, val, _ = _vnc_sets(out, True)
    hard = train / "hard"
    image, gt, _ = load_vnc_sstem()
    if not (hard / "done").exists():
        (hard / "images").mkdir(parents=True, exist_ok=True)
        (hard / "masks").mkdir(parents=True, exist_ok=True)
        config = recommended_config(card).model_copy(update={"label_divisor": DIV})
        n = 0
        for z in TUNE_SLICES:
            pred = np.asarray(infer_2d(image[z], card, config).labels) % DIV
            for cy, cx in _misses(pred, gt[z]) + _misses(gt[z], pred):
                h, w = gt[z].shape
                y0 = int(np.clip(round(cy) - 256, 0, h - 512))
                x0 = int(np.clip(round(cx) - 256, 0, w - 512))
                name = f"z{z:02d}_{n:03d}.tif"
                tifffile.imwrite(hard / "images" / name, image[z, y0 : y0 + 512, x0 : x0 + 512])
                tifffile.imwrite(hard / "masks" / name, gt[z, y0 : y0 + 512, x0 : x0 + 512])
                n += 1
        (hard / "done").write_text(str(n))
    n_crops = int((hard / "done").read_text())
    ckpt = out / "models" / "vnc-hard" / "checkpoints" / "last.pt"
    config = TrainConfig(
        model_name="vnc-hard", train_dir=train, val_dir=val, model_dir=out / "models",
        base_model=card.name, finetune_layers="all", iterations=args.iterations,
        patch_size=256, batch_size=8, downsampling=recommended_config(card).downsampling,
        val_every=500, checkpoint_every=50, seed=3, export="last",
        augment={"scale": (0.6, 1.6)}, optimizer={"lr": 1e-3},
        inference={k: v for k, v in card.inference.items() if k != "downsampling"},
        resume=ckpt if ckpt.is_file() else None,
    )  # fmt: skip
    result = fit(config)
    return {"benchmark": "builtin-harden", "hard_crops": n_crops,
            "validation": result.validation, "card": str(result.card_path)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("tune")
    t.add_argument("card")
    e = sub.add_parser("evaluate")
    e.add_argument("card", nargs="?")
    h = sub.add_parser("harden")
    h.add_argument("card", help="card of the model to improve ('' for the built-in model)")
    h.add_argument("out")
    h.add_argument("--iterations", type=int, default=1500)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    result = {"tune": tune, "evaluate": evaluate, "harden": harden}[args.what](args)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
