"""napari sample data: EM images and volumes with ground-truth labels.

Each function returns a list of ``LayerDataTuple`` (image first, then labels)
so that *File > Open Sample > tamale* adds both layers.
"""

from __future__ import annotations

from typing import Any

from tamale.samples import vnc_sstem_crop
from tamale.synthetic import SyntheticEM, synthetic_em_2d, synthetic_em_3d

LayerDataTuple = tuple[Any, dict[str, Any], str]


def _layers(sample: SyntheticEM, name: str) -> list[LayerDataTuple]:
    scale = list(sample.spacing)
    return [
        (
            sample.image,
            {"name": name, "scale": scale, "metadata": {"source": "tamale.synthetic"}},
            "image",
        ),
        (sample.labels, {"name": f"{name} ground truth", "scale": scale, "opacity": 0.5}, "labels"),
    ]


def synthetic_2d() -> list[LayerDataTuple]:
    """A 512x512 synthetic EM image with touching mitochondria."""
    return _layers(synthetic_em_2d((512, 512), seed=0), "synthetic EM 2D")


def synthetic_3d() -> list[LayerDataTuple]:
    """A 48x256x256 anisotropic synthetic EM volume (5x thicker sections)."""
    return _layers(synthetic_em_3d((48, 256, 256), seed=0), "synthetic EM 3D")


def vnc_sstem() -> list[LayerDataTuple]:
    """A real 20x384x384 ssTEM volume (Drosophila larval nerve cord) with mitochondria labels."""
    sample = vnc_sstem_crop()
    meta = {
        "source": "tamale.samples.vnc_sstem_crop",
        "citation": sample.citation,
        "license": sample.license,
    }
    scale = list(sample.spacing)
    return [
        (sample.image, {"name": sample.name, "scale": scale, "metadata": meta}, "image"),
        (
            sample.labels,
            {
                "name": f"{sample.name} mitochondria",
                "scale": scale,
                "opacity": 0.5,
                "metadata": meta,
            },
            "labels",
        ),
    ]
