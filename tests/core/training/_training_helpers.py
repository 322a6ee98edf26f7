"""Helpers shared by the training tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tifffile


def write_set(
    root: Path,
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    source: str = "src",
    names: Sequence[str] | None = None,
) -> Path:
    """Write image/mask pairs in the training-set layout; returns ``root``."""
    names = names or [f"p{k:03d}.tif" for k in range(len(images))]
    for sub in ("images", "masks"):
        (root / source / sub).mkdir(parents=True, exist_ok=True)
    for name, image, mask in zip(names, images, masks):
        tifffile.imwrite(root / source / "images" / name, image)
        tifffile.imwrite(root / source / "masks" / name, mask)
    return root
