"""Export labels for other software: TIFF per image, one TIFF, or OME-Zarr.

Every writer produces uint32 with no singleton axes, streams the labels block
by block (a volume larger than RAM is fine), checks every value fits uint32,
and refuses to replace an existing file unless ``overwrite=True``. If writing
fails half way, the partial output this call created is removed.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.progress import ProgressEvent, Throttle, Work, check, drain, run_in_thread

from ._arrays import check_labels_dtype, count_blocks, iter_blocks, read

__all__ = [
    "iter_copy_to_numpy",
    "iter_copy_to_zarr",
    "iter_export_ome_zarr",
    "iter_export_stack",
    "iter_export_tiff",
    "natural_key",
    "squeezed_shape",
    "stack_file_names",
]

UINT32_MAX = int(np.iinfo(np.uint32).max)


def natural_key(name: str) -> list[str | int]:
    """Sort key that orders ``img2`` before ``img10`` (numbers compared as numbers)."""
    return [int(c) if c.isdigit() else c for c in re.split("([0-9]+)", name)]


def squeezed_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """``shape`` without its length-1 axes (at least one axis kept)."""
    kept = tuple(int(s) for s in shape if int(s) != 1)
    return kept or (1,)


def _as_uint32(block: np.ndarray) -> np.ndarray:
    if block.size and block.dtype.kind in "ui" and int(block.max()) > UINT32_MAX:
        raise TamaleInputError(
            f"label id {int(block.max())} does not fit uint32 (largest {UINT32_MAX}); "
            "relabel the objects before exporting"
        )
    return block.astype(np.uint32, copy=False)


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists; choose another name or tick 'overwrite' (nothing was written)"
        )


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def stack_file_names(names: Sequence[str] | None, n: int, stem: str = "labels") -> list[str]:
    """One ``.tif`` file name per image of a stack of ``n`` images.

    ``names`` (e.g. the files a stack was opened from) keep their stem and get
    a ``.tif`` suffix; when they are missing or do not match ``n`` (or are not
    unique), names are ``<stem>_<zero-padded index>.tif``.
    """
    safe_stem = re.sub(r"[^A-Za-z0-9._ -]+", "_", stem).strip(" .") or "labels"
    if names is not None and len(names) == n:
        stems = [Path(str(name)).name for name in names]
        stems = [
            re.sub(r"\.(ome\.)?[A-Za-z0-9]+$", "", s) or f"{safe_stem}_{i}"
            for i, s in enumerate(stems)
        ]
        if len(set(stems)) == n and all(s not in ("", ".", "..") for s in stems):
            return [f"{s}.tif" for s in stems]
    width = max(4, len(str(max(n - 1, 0))))
    return [f"{safe_stem}_{i:0{width}d}.tif" for i in range(n)]


def iter_export_stack(
    labels: Any,
    folder: str | Path,
    names: Sequence[str] | None = None,
    *,
    axis: int = 0,
    stem: str = "labels",
    overwrite: bool = False,
    cancel: Any = None,
) -> Work[list[Path]]:
    """Write each image of a 2D stack (planes along ``axis``) as its own uint32 TIFF.

    ``names`` gives the file names (see :func:`stack_file_names`; ``stem`` names
    them when ``names`` is missing). Every target file is checked before the
    first one is written.
    """
    import tifffile

    check_labels_dtype(labels)
    if labels.ndim < 2:
        raise TamaleInputError("the labels must have at least two axes to export images")
    if labels.ndim == 2:
        n = 1
    else:
        n = int(labels.shape[axis])
    folder = Path(folder)
    files = [folder / f for f in stack_file_names(names, n, stem)]
    for f in files:
        _refuse_existing(f, overwrite)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for i, path in enumerate(files):
            check(cancel)
            if labels.ndim == 2:
                plane = read(labels, tuple(slice(None) for _ in range(2)))
            else:
                index = tuple(
                    slice(i, i + 1) if a == axis else slice(None) for a in range(labels.ndim)
                )
                plane = read(labels, index)
            data = _as_uint32(np.asarray(plane)).reshape(squeezed_shape(plane.shape))
            tifffile.imwrite(path, data, compression="zlib", photometric="minisblack")
            written.append(path)
            yield ProgressEvent("export", i + 1, n, f"writing {path.name}")
    except BaseException:
        for p in written:
            if overwrite is False:
                _remove(p)
        raise
    return written


def _write_tiff(
    labels: Any, target: Path, shape: tuple[int, ...], *, progress: Any, cancel: Any
) -> None:
    import tifffile

    pages = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    throttle = Throttle()

    def counted() -> Iterator[np.ndarray]:
        for i, page in enumerate(_planes_in_order(labels, cancel), start=1):
            if throttle.ready() or i == pages:
                progress(ProgressEvent("export", i, pages, f"writing {target.name}"))
            yield page

    bigtiff = int(np.prod(shape)) * 4 > 2**31
    with tifffile.TiffWriter(target, bigtiff=bigtiff) as tif:
        tif.write(
            counted(), shape=shape, dtype=np.uint32, compression="zlib", photometric="minisblack"
        )


def iter_export_tiff(
    labels: Any, path: str | Path, *, overwrite: bool = False, cancel: Any = None
) -> Work[Path]:
    """Write the labels as one uint32 (Big)TIFF, page by page (bounded memory)."""
    check_labels_dtype(labels)
    path = Path(path)
    _refuse_existing(path, overwrite)
    shape = squeezed_shape(labels.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    try:
        yield from run_in_thread(_write_tiff, labels, tmp, shape, stage="export", cancel=cancel)
        if path.exists():
            _remove(path)
        tmp.replace(path)
    except BaseException:
        _remove(tmp)
        raise
    return path


def _planes_in_order(labels: Any, cancel: Any) -> Iterator[np.ndarray]:
    """Pages in C order, reading one slab of whole pages at a time."""
    shape = tuple(labels.shape)
    keep = [a for a, s in enumerate(shape) if s != 1]
    if len(keep) <= 2:
        data = read(labels, tuple(slice(None) for _ in shape))
        yield _as_uint32(np.asarray(data)).reshape(squeezed_shape(shape))
        return
    first = keep[0]
    page_bytes = int(np.prod([shape[a] for a in keep[1:]])) * 4
    step = max(1, (32 * 2**20) // max(page_bytes, 1))
    for start in range(0, shape[first], step):
        check(cancel)
        index = tuple(
            slice(start, min(start + step, shape[first])) if a == first else slice(None)
            for a in range(len(shape))
        )
        slab = _as_uint32(np.asarray(read(labels, index)))
        sq = slab.reshape(tuple(slab.shape[a] for a in keep))
        yield from sq.reshape(-1, *sq.shape[-2:])


def iter_copy_to_numpy(labels: Any, *, cancel: Any = None) -> Work[np.ndarray]:
    """Load ``labels`` (numpy, dask, zarr) into a new numpy array, block by block."""
    check_labels_dtype(labels)
    out = np.zeros(tuple(labels.shape), dtype=labels.dtype)
    total = count_blocks(labels)
    throttle = Throttle()
    for step, (index, block) in enumerate(iter_blocks(labels), start=1):
        check(cancel)
        out[index] = block
        if throttle.ready() or step == total:
            yield ProgressEvent("load", step, total, "loading the labels into memory")
    return out


def iter_copy_to_zarr(
    labels: Any,
    path: str | Path,
    *,
    chunks: Sequence[int] | None = None,
    dtype: Any = None,
    overwrite: bool = False,
    attributes: dict | None = None,
    cancel: Any = None,
) -> Work[Any]:
    """Copy ``labels`` (numpy, dask, zarr) into a new zarr v3 array, block by block.

    Used to make dask labels editable and to export OME-Zarr. Returns the new
    zarr array (opened for writing).
    """
    import zarr

    check_labels_dtype(labels)
    path = Path(path)
    _refuse_existing(path, overwrite)
    dtype = np.dtype(dtype or labels.dtype)
    shape = tuple(int(s) for s in labels.shape)
    if chunks is None:
        src = getattr(labels, "chunksize", None) or getattr(labels, "chunks", None)
        if src and all(isinstance(c, int) for c in src):
            chunks = tuple(int(c) for c in src)
        else:
            chunks = tuple(min(s, 64 if len(shape) > 2 else 512) for s in shape)
    if path.exists():
        _remove(path)
    out = zarr.create_array(
        str(path),
        shape=shape,
        chunks=tuple(int(min(c, s)) or 1 for c, s in zip(chunks, shape)),
        dtype=dtype,
        fill_value=0,
        attributes=attributes or {},
    )
    total = count_blocks(labels)
    throttle = Throttle()
    try:
        for step, (index, block) in enumerate(iter_blocks(labels), start=1):
            check(cancel)
            if dtype == np.uint32:
                block = _as_uint32(block)
            if block.any():
                out[index] = block.astype(dtype, copy=False)
            if throttle.ready() or step == total:
                yield ProgressEvent("copy", step, total, f"writing {path.name}")
    except BaseException:
        _remove(path)
        raise
    return out


def iter_export_ome_zarr(
    labels: Any,
    path: str | Path,
    *,
    scale: Sequence[float] | None = None,
    axes: Sequence[str] | None = None,
    name: str = "labels",
    overwrite: bool = False,
    cancel: Any = None,
) -> Work[Path]:
    """Write the labels as an OME-Zarr (NGFF 0.5, zarr v3) image with one uint32 level.

    Singleton axes are dropped (with their ``scale`` entries); ``axes``
    defaults to the last of ``t, z, y, x`` matching the remaining dimensions.
    """
    import zarr

    check_labels_dtype(labels)
    path = Path(path)
    _refuse_existing(path, overwrite)
    keep = [a for a, s in enumerate(labels.shape) if s != 1] or [labels.ndim - 1]
    ndim = len(keep)
    if ndim > 5:
        raise TamaleInputError("OME-Zarr holds at most 5 axes")
    scale = [1.0] * labels.ndim if scale is None else [float(s) for s in scale]
    if len(scale) != labels.ndim:
        raise TamaleInputError("give one scale value per axis of the labels")
    scale = [scale[a] for a in keep]
    names = list(axes) if axes is not None else ["t", "c", "z", "y", "x"][-ndim:]
    if ndim == 4 and axes is None:
        names = ["t", "z", "y", "x"]
    if len(names) != ndim:
        raise TamaleInputError(f"give {ndim} axis names for the exported labels")
    kinds = {"t": "time", "c": "channel"}
    ome_axes = [
        {"name": n, "type": kinds.get(n, "space"), **({"unit": "pixel"} if n in "zyx" else {})}
        for n in names
    ]
    if path.exists():
        _remove(path)
    try:
        root = zarr.open_group(str(path), mode="w", zarr_format=3)
        root.attrs["ome"] = {
            "version": "0.5",
            "multiscales": [
                {
                    "name": name,
                    "axes": ome_axes,
                    "datasets": [
                        {
                            "path": "0",
                            "coordinateTransformations": [{"type": "scale", "scale": scale}],
                        }
                    ],
                }
            ],
            "image-label": {"version": "0.5"},
        }
        squeezed = _Squeezed(labels, keep)
        yield from iter_copy_to_zarr(
            squeezed, path / "0", dtype=np.uint32, overwrite=False, cancel=cancel
        )
    except BaseException:
        _remove(path)
        raise
    return path


class _Squeezed:
    """A read-only view of ``labels`` without its singleton axes (lazy)."""

    def __init__(self, labels: Any, keep: list[int]) -> None:
        self._labels = labels
        self._keep = keep
        self.shape = tuple(int(labels.shape[a]) for a in keep)
        self.dtype = labels.dtype
        self.ndim = len(keep)
        src = getattr(labels, "chunksize", None) or getattr(labels, "chunks", None)
        if src and all(isinstance(c, int) for c in src):
            self.chunks = tuple(int(src[a]) for a in keep)

    def __getitem__(self, index: tuple[slice, ...]) -> np.ndarray:
        full: list[slice | int] = [0] * self._labels.ndim
        for a, sl in zip(self._keep, index):
            full[a] = sl
        return np.asarray(
            read(self._labels, tuple(s if isinstance(s, slice) else slice(s, s + 1) for s in full))
        ).reshape(tuple(s.stop - s.start for s in index))


def export_tiff(labels, path, *, overwrite=False, progress=None, cancel=None) -> Path:
    """Plain wrapper of :func:`iter_export_tiff`."""
    return drain(
        iter_export_tiff(labels, path, overwrite=overwrite, cancel=cancel), progress, cancel
    )
