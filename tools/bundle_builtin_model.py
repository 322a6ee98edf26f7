"""Put a trained model into the package as the built-in model ``tamale-mito-vnc``.

    python tools/bundle_builtin_model.py TRAINED/card.yaml --tune tune.json [--evaluate eval.json]

1. copies the trained weights (safetensors) beside a new card in
   ``src/tamale/registry/bundled/tamale-mito-vnc/``;
2. writes the card: architecture, norms, the recommended parameters chosen on the
   training slices (``benchmarks/builtin_model.py tune``), license, training data and
   citation;
3. with ``--evaluate``, records the held-out quality measured by
   ``benchmarks/builtin_model.py evaluate`` (run it after step 2, on the bundled card,
   then run this again with its JSON).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NAME = "tamale-mito-vnc"
DEST = ROOT / "src" / "tamale" / "registry" / "bundled" / NAME
CITATION = (
    "Gerhard S., Funke J., Martel J., Cardona A., Fetter R. (2013). Segmented anisotropic "
    "ssTEM dataset of neural tissue. figshare. doi:10.6084/m9.figshare.856713"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("card", type=Path)
    parser.add_argument("--tune", type=Path, required=True)
    parser.add_argument("--evaluate", type=Path)
    args = parser.parse_args()

    from tamale.registry.card import load_card
    from tamale.registry.hashing import sha256_file

    trained = load_card(args.card)
    tune = json.loads(args.tune.read_text())
    best = tune["best"]
    DEST.mkdir(parents=True, exist_ok=True)
    weights = DEST / "weights.safetensors"
    source = (args.card.parent / trained.weights.uri).resolve()
    if source != weights.resolve():
        shutil.copyfile(source, weights)
    inference = {
        "downsampling": int(tune["downsampling"]),
        "confidence_thr": best["confidence_thr"],
        "center_confidence_thr": best["center_confidence_thr"],
        "centers_min_distance": best["centers_min_distance"],
        "min_area": best["min_area"],
    }
    quality: dict[str, float] = {}
    description = (
        "Mitochondria instances in 2D EM images and volumes. Trained by tamale from scratch "
        "on serial-section TEM of the Drosophila first-instar larva ventral nerve cord "
        "(about 4.6 nm pixels, 45-50 nm sections; slices 0-13 of the Gerhard et al. "
        "volume), at half resolution (image downsampling 2): 2000 iterations from scratch, then "
        "1000 and 1500 more at a lower learning rate, then 1500 with the training slices' false "
        "detections and misses sampled more often (docs/builtin-model.md). A small CPU-friendly "
        "Panoptic-BiFPN with a RegNetY-400MF encoder. Recommended parameters were chosen "
        "on the training slices; quality is measured on the held-out slices 14-19 "
        "(benchmarks/builtin_model.py evaluate). For other microscopes, tissues or pixel "
        "sizes, finetune it on a few annotated patches."
    )
    if args.evaluate:
        ev = json.loads(args.evaluate.read_text())
        for z, scores in ev["per_slice"].items():
            quality[f"f1@0.5_slice{int(z)}"] = scores["f1"]
            quality[f"pq_slice{int(z)}"] = scores["pq"]
        quality.update(
            {
                "f1@0.5_min_slice": ev["min_slice_f1"],
                "f1@0.5": ev["pooled"]["f1"],
                "pq": ev["pooled"]["pq"],
                "iou": ev["pooled"]["iou"],
            }
        )
    card = {
        "format_version": trained.format_version,
        "name": NAME,
        "description": description,
        "architecture": trained.architecture,
        "architecture_options": dict(trained.architecture_options),
        "weights": {"uri": weights.name, "sha256": sha256_file(weights), "format": "safetensors"},
        "classes": [c.model_dump() for c in trained.classes],
        "label_divisor": trained.label_divisor,
        "padding_factor": trained.padding_factor,
        "norms": trained.norms.model_dump(),
        "inference": inference,
        "finetune": {k: v for k, v in trained.finetune.items() if k != "base_model"},
        "license": (
            "CC BY-NC-SA 3.0 (Creative Commons Attribution-NonCommercial-ShareAlike 3.0), "
            "inherited from the training data: non-commercial use, attribution to the data's "
            "authors, derivatives under the same terms. tamale's code is BSD-3-Clause."
        ),
        "training_data": (
            f"{CITATION}; slices 0-13 (training), 14-19 held out. Mitochondria instances: the "
            "dataset's per-slice connected components, with the empty slices 1 and 7 rebuilt "
            "from its label map (benchmarks/vnc_sstem.py)."
        ),
        "quality": quality,
        "citation": CITATION,
        "source": "tamale",
    }
    (DEST / "card.yaml").write_text(yaml.safe_dump(card, sort_keys=False, width=92))
    print(f"wrote {DEST / 'card.yaml'} ({weights.stat().st_size / 2**20:.1f} MiB of weights)")


if __name__ == "__main__":
    main()
