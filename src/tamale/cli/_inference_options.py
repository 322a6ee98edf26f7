"""The 2D inference options, shared by ``tamale infer2d`` and ``tamale infer3d``.

Every option defaults to None (not given), so that the run's parameters come from the
layers of :func:`tamale.inference.config.layered_config`: defaults, the model card's
recommendations, ``--config``, then the options given.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["OPTION_TO_FIELD", "add_2d_options", "given_options"]

OPTION_TO_FIELD = {
    "downsampling": "downsampling",
    "confidence_thr": "confidence_thr",
    "center_confidence_thr": "center_confidence_thr",
    "centers_min_distance": "centers_min_distance",
    "fine_boundaries": "fine_boundaries",
    "semantic_only": "semantic_only",
    "max_objects_per_class": "label_divisor",
    "min_area": "min_area",
    "quantized": "use_quantized",
    "half": "half_precision",
    "tile_size": "tile_size",
    "tile_overlap": "tile_overlap",
    "batch_size": "batch_size",
}
"""argparse destination → configuration field."""


def add_2d_options(group: Any) -> None:
    """Add the 2D inference options to a parser or argument group."""
    group.add_argument("--downsampling", type=int, help="image downsampling 1,2,4,...,64 (1)")
    group.add_argument("--confidence-thr", type=float, help="segmentation confidence (0.5)")
    group.add_argument("--center-confidence-thr", type=float, help="center confidence (0.1)")
    group.add_argument("--centers-min-distance", type=int, help="NMS window in heatmap pixels (3)")
    group.add_argument(
        "--fine-boundaries", action="store_true", default=None, help="group at full resolution"
    )
    group.add_argument(
        "--semantic-only", action="store_true", default=None, help="one region per class"
    )
    group.add_argument("--max-objects-per-class", type=int, help="label divisor (10000)")
    group.add_argument("--min-area", type=int, help="drop 2D instances under this many pixels (0)")
    group.add_argument("--cpu", action="store_true", help="do not use a GPU")
    group.add_argument(
        "--quantized", action="store_true", default=None, help="int8 model on the CPU"
    )
    group.add_argument(
        "--half",
        action="store_true",
        default=None,
        help="half precision (bfloat16 on CPUs that have it, float16 on CUDA)",
    )
    group.add_argument("--tile-size", type=int, help="tile side in model pixels; 0: no tiles")
    group.add_argument("--tile-overlap", type=int, help="tile overlap in model pixels (128)")
    group.add_argument("--batch-size", type=int, help="slices or tiles per forward pass (4)")


def given_options(args: argparse.Namespace, extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Configuration updates from the options given (``extra``: more dest → field pairs)."""
    mapping = {**OPTION_TO_FIELD, **(extra or {})}
    updates = {
        field: getattr(args, dest)
        for dest, field in mapping.items()
        if getattr(args, dest) is not None
    }
    if args.cpu:
        updates["use_gpu"] = False
    return updates
