"""Build the real-EM sample shipped with tamale (``src/tamale/samples/``).

A 20 x 384 x 384 crop of the vnc_sstem volume (Drosophila L3 VNC, ssTEM), with its
per-slice mitochondria instance labels (repaired as described in
``benchmarks/vnc_sstem.py``). Run from the repository root::

    python tools/make_vnc_sample.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tifffile
from skimage.segmentation import relabel_sequential

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from vnc_sstem import load_vnc_sstem  # noqa: E402

# the 384 x 384 window with the most mitochondria (117 2D objects in 20 slices)
Y0, X0, SIZE = 640, 384, 384


def main() -> None:
    image, labels, _ = load_vnc_sstem()
    crop = np.ascontiguousarray(image[:, Y0 : Y0 + SIZE, X0 : X0 + SIZE])
    mito = relabel_sequential(labels[:, Y0 : Y0 + SIZE, X0 : X0 + SIZE])[0].astype(np.uint32)
    out = ROOT / "src" / "tamale" / "samples"
    tifffile.imwrite(out / "vnc_sstem_crop.tif", crop, compression="zlib", metadata={"axes": "ZYX"})
    tifffile.imwrite(
        out / "vnc_sstem_crop_mito.tif", mito, compression="zlib", metadata={"axes": "ZYX"}
    )
    per_slice = [len(np.unique(s[s > 0])) for s in mito]
    print(f"crop {crop.shape}; objects per slice {per_slice} (total {sum(per_slice)})")


if __name__ == "__main__":
    main()
