"""Sample data shipped with tamale (no download needed).

``vnc_sstem_crop()`` returns a small real serial-section TEM volume with mitochondria
labels (CC BY-NC-SA 3.0; see ``README.md`` beside this module for the citation);
the synthetic generator in :mod:`tamale.synthetic` provides data of any size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["CITATION", "LICENSE", "SampleVolume", "vnc_sstem_crop"]

HERE = Path(__file__).parent
CITATION = (
    "Gerhard S., Funke J., Martel J., Cardona A., Fetter R. (2013). Segmented anisotropic "
    "ssTEM dataset of neural tissue. figshare. doi:10.6084/m9.figshare.856713"
)
LICENSE = "CC BY-NC-SA 3.0"


@dataclass(frozen=True)
class SampleVolume:
    """A sample EM volume and its ground truth."""

    image: np.ndarray
    """uint8, ZYX."""
    labels: np.ndarray
    """uint32 mitochondria instances per section (ZYX)."""
    spacing: tuple[float, float, float]
    """Voxel size (z, y, x) in nanometres."""
    name: str
    citation: str
    license: str


def vnc_sstem_crop() -> SampleVolume:
    """20 x 384 x 384 ssTEM crop of a Drosophila larval nerve cord with mitochondria labels."""
    import tifffile

    return SampleVolume(
        image=tifffile.imread(HERE / "vnc_sstem_crop.tif"),
        labels=tifffile.imread(HERE / "vnc_sstem_crop_mito.tif"),
        spacing=(50.0, 4.6, 4.6),
        name="vnc ssTEM crop",
        citation=CITATION,
        license=LICENSE,
    )
