"""How much bfloat16 and int8 change a (briefly) trained model's outputs.

No trained weights can be downloaded here, so this trains a preset for a few
hundred steps on synthetic EM (``tamale.synthetic``: mitochondria instances)
with a plain loss (BCE on the semantic logits and on PointRend's points, MSE
on the center heatmap, L1 on the offsets, as in Panoptic-DeepLab), then compares float32, bfloat16 and
int8 predictions on a held-out 512^2 synthetic image: IoU of the semantic
masks with float32 and with the truth, correlation of the outputs, and the
center-heatmap / offset differences. Prints one JSON document.

Usage::

    python benchmarks/models_quality.py --preset panoptic_bifpn_r18 --steps 200
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from tamale.models import available_presets, build_model, prepare_for_inference
from tamale.registry.card import Norms
from tamale.synthetic import synthetic_em_2d


def sample(seed: int, size: int, sigma: float = 6.0):
    """Normalised image and targets (semantic mask, center heatmap, offsets) of one image."""
    norms = Norms()
    s = synthetic_em_2d((size, size), seed=seed)
    x = (torch.from_numpy(s.image).float() / 255 - norms.mean) / norms.std
    lab = s.labels
    ids = np.unique(lab)
    ids = ids[ids > 0]
    centres = ndi.center_of_mass(np.ones_like(lab), lab, ids) if len(ids) else []
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    ctr = np.zeros((size, size), np.float32)
    off = np.zeros((2, size, size), np.float32)
    for i, (cy, cx) in zip(ids, centres):
        ctr = np.maximum(ctr, np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2)))
        m = lab == i
        off[0][m] = cy - yy[m]
        off[1][m] = cx - xx[m]
    sem = torch.from_numpy(lab > 0).float()
    return x[None], sem[None], torch.from_numpy(ctr)[None], torch.from_numpy(off)


def train(name: str, steps: int, size: int, batch: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(name)
    data = [sample(1000 + i, size) for i in range(16)]
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    rng = np.random.default_rng(0)
    for _ in range(steps):
        idx = rng.choice(len(data), batch, replace=False)
        x, sem, ctr, off = (torch.stack([data[i][k] for i in idx]) for k in range(4))
        out = model(x)
        loss = (
            F.binary_cross_entropy_with_logits(out["sem_logits"], sem)
            + 200 * F.mse_loss(out["ctr_hmp"], ctr)
            + 0.01 * (out["offsets"] - off).abs().mean()
        )
        if "sem_points" in out:  # PointRend: labels sampled (nearest) at the points
            grid = 2 * out["point_coords"].unsqueeze(2) - 1
            labels = F.grid_sample(sem, grid, mode="nearest", align_corners=False).squeeze(3)
            loss = loss + F.binary_cross_entropy_with_logits(out["sem_points"], labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum() / (a | b).sum().clamp(min=1))


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="panoptic_bifpn_r18", choices=available_presets())
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--size", type=int, default=256, help="training patch size")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = train(args.preset, args.steps, args.size, args.batch)
    result: dict = {
        "benchmark": "models_quality",
        "args": vars(args),
        "train_s": round(time.perf_counter() - t0, 1),
    }
    x, sem, _, _ = sample(7, 512)
    x = x[None]
    truth = sem[0] > 0
    ref = model.predict(x)
    float_mask = ref["sem_logits"][0, 0] > 0
    result["float32"] = {"iou_truth": round(_iou(float_mask, truth), 4)}
    calib = [sample(2000 + s, 256)[0][None] for s in range(2)]
    for precision in ("bfloat16", "int8"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = prepare_for_inference(copy.deepcopy(model), precision, calibration_batches=calib)
            out = m.predict(x)
        mask = out["sem_logits"][0, 0] > 0
        result[precision] = {
            "iou_float32": round(_iou(mask, float_mask), 4),
            "iou_truth": round(_iou(mask, truth), 4),
            "corr": {k: round(_corr(out[k], ref[k]), 4) for k in ref},
            "ctr_hmp_max_abs_diff": round(float((out["ctr_hmp"] - ref["ctr_hmp"]).abs().max()), 4),
            "offsets_mean_abs_diff_px": round(
                float((out["offsets"] - ref["offsets"]).abs().mean()), 4
            ),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
