"""Open images and volumes from files lazily, as a list of multiscale levels.

Used by the command line: nothing is loaded until a crop is read.

* ``.tif`` / ``.tiff``: every pyramid level of the first series (one level for a
  plain TIFF), memory-mapped when possible, else through tifffile's zarr store;
* ``.npy``: memory-mapped;
* ``.zarr`` (or any directory zarr opens): an array, or a group with OME-Zarr
  ``multiscales`` metadata or arrays named ``0``, ``1``, ...
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError

__all__ = ["open_levels", "read_points_csv"]


def _tiff_levels(path: Path) -> list[Any]:
    import tifffile
    import zarr

    with tifffile.TiffFile(path) as tif:
        n_levels = len(tif.series[0].levels) if tif.series else 0
    if n_levels == 0:
        raise TamaleInputError(f"{path} holds no image")
    if n_levels == 1:
        try:
            return [tifffile.memmap(path, mode="r")]
        except ValueError:
            pass  # compressed or tiled: read through the zarr store
    return [
        zarr.open_array(tifffile.imread(path, aszarr=True, series=0, level=k), mode="r")
        for k in range(n_levels)
    ]


def _zarr_levels(path: Path) -> list[Any]:
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a missing or bad store
        raise TamaleInputError(f"cannot open {path} as zarr: {exc}") from None
    if hasattr(node, "shape"):
        return [node]
    multiscales = node.attrs.get("multiscales") or node.attrs.get("ome", {}).get("multiscales")
    if multiscales:
        paths = [d["path"] for d in multiscales[0]["datasets"]]
    else:
        paths = sorted((k for k in node.array_keys() if k.isdigit()), key=int)
    if not paths:
        raise TamaleInputError(
            f"{path} is a zarr group without multiscale arrays (expected OME-Zarr "
            "'multiscales' metadata or arrays named 0, 1, ...)"
        )
    return [node[p] for p in paths]


def open_levels(path: str | Path) -> list[Any]:
    """The image at ``path`` as a list of arrays, full resolution first (see module doc)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return _tiff_levels(path)
    if suffix == ".npy":
        return [np.load(path, mmap_mode="r", allow_pickle=False)]
    if suffix == ".zarr" or path.is_dir():
        return _zarr_levels(path)
    raise TamaleInputError(f"cannot read {path.name}: use a .tif, .tiff, .npy or .zarr image")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def read_points_csv(path: str | Path, ndim: int) -> np.ndarray:
    """Point coordinates (pixels, image axis order) from a CSV file.

    Reads napari's points CSV (header ``index,axis-0,axis-1,...`` plus any feature
    columns) or plain rows of ``ndim`` numbers (``z,y,x`` or ``y,x``, no header).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"points file not found: {path}")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    if not rows:
        return np.zeros((0, ndim))
    header = rows[0] if any(_number(c) is None for c in rows[0]) else None
    body = rows[1:] if header else rows
    if header:
        names = [c.strip() for c in header]
        cols = [names.index(f"axis-{i}") for i in range(ndim) if f"axis-{i}" in names]
        if len(cols) != ndim:
            raise TamaleInputError(
                f"{path.name}: expected columns axis-0 .. axis-{ndim - 1} (napari's points CSV)"
            )
    else:
        cols = list(range(ndim))
    out = []
    for k, row in enumerate(body, start=2 if header else 1):
        if not header and len(row) != ndim:
            raise TamaleInputError(
                f"{path.name} line {k}: expected {ndim} numbers (image axis order), got {len(row)}"
            )
        values = [_number(row[c]) if c < len(row) else None for c in cols]
        if any(v is None for v in values):
            raise TamaleInputError(f"{path.name} line {k}: not a number in {row}")
        out.append(values)
    return np.asarray(out, dtype=float).reshape(-1, ndim)
