"""The volumetric tutorial as one script: segment a volume, write it to OME-Zarr, score it.

    python docs/tutorials/volumetric.py [--model NAME] [--data DIR] [--out OUT.zarr] [--crop Z,Y,X]

``--model`` is any registered model (default: the built-in ``tamale-mito-vnc``; its
card's recommended parameters are used). ``--data`` is a folder with ``image.tif`` and,
optionally, ``mito_instances_3d_cc.tif`` (default: the project's ``vnc_sstem`` dataset,
20 x 1024 x 1024 serial-section TEM at about 4.6 x 4.6 x 45-50 nm). Prints JSON: the
run's object count and time and, when ground truth exists, an object-level F1 at IoU 0.5.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import tifffile

from tamale.inference import recommended_config
from tamale.inference.config3d import Inference3DConfig
from tamale.inference.volume import segment_volume
from tamale.registry import get_card

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "vnc_sstem"


def object_f1(pred: np.ndarray, truth: np.ndarray, iou: float = 0.5) -> dict[str, float]:
    """Objects matched one to one at IoU > ``iou`` (a unique match at IoU > 0.5)."""
    both = (pred > 0) & (truth > 0)
    pairs, inter = np.unique(np.stack([pred[both], truth[both]]), axis=1, return_counts=True)
    p_ids, p_size = np.unique(pred[pred > 0], return_counts=True)
    t_ids, t_size = np.unique(truth[truth > 0], return_counts=True)
    ps = dict(zip(p_ids.tolist(), p_size.tolist()))
    ts = dict(zip(t_ids.tolist(), t_size.tolist()))
    tp = sum(
        1 for (a, b), n in zip(pairs.T.tolist(), inter.tolist()) if n / (ps[a] + ts[b] - n) > iou
    )
    n_p, n_t = len(p_ids), len(t_ids)
    return {
        "predicted": n_p,
        "ground_truth": n_t,
        "matched": tp,
        "f1": round(2 * tp / (n_p + n_t), 4) if n_p + n_t else 1.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="tamale-mito-vnc", help="registered model name")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=Path("vnc_sstem_seg.zarr"))
    parser.add_argument("--crop", help="segment only the first Z,Y,X voxels (a quick try)")
    parser.add_argument("--median", type=int, default=3)
    parser.add_argument("--min-size", type=int, default=500)
    parser.add_argument("--min-extent", type=int, default=5, help="min box extent (voxels)")
    args = parser.parse_args()

    image = tifffile.imread(args.data / "image.tif")
    region = (
        tuple(slice(0, int(v)) for v in args.crop.split(",")) if args.crop else (slice(None),) * 3
    )
    volume = np.asarray(image[region])
    # the model's recommended parameters, then this script's options
    base = recommended_config(get_card(args.model), Inference3DConfig(plane="xy"))
    config = base.model_copy(
        update={
            "median_slices": args.median,
            "min_size": args.min_size,
            "min_extent": args.min_extent,
        }
    )
    start = time.perf_counter()
    result = segment_volume(
        volume,
        args.model,
        config,
        out=args.out,
        if_exists="overwrite",
        voxel_size=(45.0, 4.6, 4.6),
        unit="nanometer",
        name="vnc_sstem",
    )
    report = {
        "model": args.model,
        "shape": list(volume.shape),
        "seconds": round(time.perf_counter() - start, 1),
        "objects": result.n_objects,
        "store": result.store,
    }
    gt_path = args.data / "mito_instances_3d_cc.tif"
    if gt_path.is_file():
        truth = tifffile.imread(gt_path)[region]
        [labels] = result.labels.values()
        report["vs_ground_truth"] = object_f1(np.asarray(labels[:]), truth)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
