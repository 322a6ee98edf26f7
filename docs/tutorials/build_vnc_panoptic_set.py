"""Build the small panoptic training set of the tutorial from the VNC ssTEM volume.

Classes (label divisor 1000), from the source's merged label map ``all_labels_merged.tif``:
1 membrane (semantic: membranes 0/32/64/96 and junctions 128) -> 1001,
2 mitochondria (instance: 4-connected pieces of 191, at least 100 pixels) -> 2001, 2002, ...,
3 glia / extracellular space (semantic: 159) -> 3001.
Three 256 x 256 patches per slice: slices 0-13 -> ``train``, slices 14-19 -> ``val``.

Usage: python build_vnc_panoptic_set.py DATA_DIR OUT_DIR
(DATA_DIR holds vnc_sstem/; OUT_DIR gets vnc_panoptic/train and vnc_panoptic/val).
"""

import sys
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi

from tamale.datasets import PatchProvenance, store_patches


def panoptic_slice(merged: np.ndarray) -> np.ndarray:
    out = np.zeros(merged.shape, np.uint32)
    out[np.isin(merged, [0, 32, 64, 96, 128])] = 1001
    out[merged == 159] = 3001
    mito, n = ndi.label(merged == 191)
    sizes = np.bincount(mito.ravel())
    keep = np.flatnonzero(sizes >= 100)
    keep = keep[keep > 0]
    lut = np.zeros(n + 1, np.uint32)
    lut[keep] = 2001 + np.arange(len(keep))
    out[mito > 0] = 0
    out = np.where(lut[mito] > 0, lut[mito], out)
    return out


def main(data_dir: Path, out_dir: Path) -> None:
    image = tifffile.imread(data_dir / "vnc_sstem" / "image.tif")
    merged = tifffile.imread(data_dir / "vnc_sstem" / "all_labels_merged.tif")
    corners = [(0, 0), (256, 512), (640, 256)]  # three patches per slice
    (out_dir / "vnc_panoptic").mkdir(parents=True, exist_ok=True)
    for name, slices in (("train", range(0, 14)), ("val", range(14, 20))):
        images, masks, records = [], [], []
        for z in slices:
            labels = panoptic_slice(merged[z])
            for y, x in corners:
                patch = labels[y : y + 256, x : x + 256]
                # number the mitochondria of each patch 2001, 2002, ...
                is_mito = (patch // 1000) == 2
                _, rank = np.unique(patch[is_mito], return_inverse=True)
                patch = patch.copy()
                patch[is_mito] = 2001 + rank
                images.append(image[z, y : y + 256, x : x + 256])
                masks.append(patch)
                records.append(PatchProvenance(source_layer="vnc_sstem", axis="xy", plane=z,
                                               box=[(y, y + 256), (x, x + 256)]))  # fmt: skip
        store_patches(out_dir / "vnc_panoptic", name, "vnc_sstem", images, masks, records)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
