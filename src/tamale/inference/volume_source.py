"""Volumes to segment, read lazily: numpy, dask, zarr, TIFF, ``.npy`` or a pyramid level.

:func:`open_volume` accepts whatever a user has and returns a
:class:`VolumeSource`, a 3D (ZYX) view that reads only the region asked for.
Nothing is loaded whole: zarr and dask are read block by block, TIFF files are
memory-mapped (or, when compressed, read strip by strip through tifffile's
zarr store), ``.npy`` files are memory-mapped.

Channel axes: a 4D array is accepted when its channel axis is obvious -- an
axis of length 1, or a first or last axis of 2-4 channels while the other
axes are longer; channel ``channel`` (default 0) is then used. Anything else
(a 2D image, a 4D array with no obvious channel axis, 5D) is refused with a
message that says what to pass instead.

A source opened from a path pickles as that path (workers of a Dask cluster
reopen the file instead of receiving the data).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError

__all__ = ["VolumeSource", "open_volume"]

_TIFF = (".tif", ".tiff")


@dataclass
class VolumeSource:
    """A lazily read 3D volume.

    Attributes
    ----------
    name : str
        A short name (file or layer name) for metadata and output naming.
    shape : tuple of int
        ``(Z, Y, X)``.
    dtype : numpy dtype
    channel_axis, channel : int or None
        Where the channel axis of the underlying array is, and which channel is used.
    path, key, level : optional
        How to reopen the array (set when opened from a path).
    """

    array: Any
    name: str
    shape: tuple[int, int, int]
    dtype: np.dtype
    channel_axis: int | None = None
    channel: int = 0
    path: str | None = None
    key: str | None = None
    level: int | None = None

    def read(self, region: tuple[slice, slice, slice]) -> np.ndarray:
        """The voxels of ``region`` (three slices in ZYX) as a numpy array."""
        index: list[Any] = list(region)
        if self.channel_axis is not None:
            index.insert(self.channel_axis, self.channel)
        block = self.array[tuple(index)]
        if hasattr(block, "compute"):
            block = block.compute()
        return np.asarray(block)

    @property
    def chunks(self) -> tuple[int, int, int] | None:
        """Chunk shape of the underlying array along Z, Y, X, when it is chunked."""
        chunks = getattr(self.array, "chunks", None)
        if chunks is None:
            return None
        if chunks and isinstance(chunks[0], tuple):  # dask: tuples of block sizes
            chunks = tuple(c[0] for c in chunks)
        chunks = list(chunks)
        if self.channel_axis is not None:
            chunks.pop(self.channel_axis)
        return tuple(int(c) for c in chunks)  # type: ignore[return-value]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.path is not None:
            state["array"] = None  # reopened from the path on the other side
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.array is None and self.path is not None:
            self.array = _open_path(Path(self.path), self.key, self.level)[0]


def _open_zarr(path: Path, key: str | None, level: int | None) -> tuple[Any, str | None]:
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise TamaleInputError(f"cannot open {path} as zarr: {exc}") from None
    if isinstance(node, zarr.Array):
        return node, None
    if key is not None:
        try:
            arr = node[key]
        except KeyError:
            raise TamaleInputError(f"{path} has no array {key!r}") from None
        return arr, key
    attrs = node.attrs.asdict()
    ome = attrs.get("ome", attrs)
    multiscales = ome.get("multiscales") if isinstance(ome, dict) else None
    if multiscales:
        datasets = multiscales[0].get("datasets", [])
        lvl = 0 if level is None else level
        if not 0 <= lvl < len(datasets):
            raise TamaleInputError(
                f"{path} has {len(datasets)} pyramid levels; level {lvl} does not exist"
            )
        k = datasets[lvl]["path"]
        return node[k], k
    arrays = sorted(name for name, _ in node.arrays())
    if len(arrays) == 1:
        return node[arrays[0]], arrays[0]
    raise TamaleInputError(
        f"{path} is a zarr group with {len(arrays)} arrays ({', '.join(arrays) or 'none'}); "
        "name the one to segment (PATH/ARRAY)"
    )


def _open_path(path: Path, key: str | None, level: int | None) -> tuple[Any, str | None]:
    suffix = path.suffix.lower()
    if suffix in _TIFF:
        import tifffile

        try:
            return tifffile.memmap(str(path), mode="r"), None
        except (ValueError, OSError):
            import zarr

            store = tifffile.imread(str(path), aszarr=True)
            return zarr.open(store, mode="r"), None
    if suffix == ".npy":
        return np.load(str(path), mmap_mode="r"), None
    if path.is_dir() or suffix == ".zarr" or (path.parent.suffix == ".zarr"):
        return _open_zarr(path, key, level)
    raise TamaleInputError(
        f"cannot read {path}: use a zarr directory, a TIFF file (.tif, .tiff) or a .npy file"
    )


def _channel_layout(shape: tuple[int, ...], channel_axis: int | None) -> tuple[int | None, str]:
    """Where the channel axis of an N-D array is (None for 3D), or an explanation."""
    ndim = len(shape)
    if ndim == 3:
        return None, ""
    if ndim == 4:
        if channel_axis is not None:
            return channel_axis % 4, ""
        ones = [i for i, s in enumerate(shape) if s == 1]
        if len(ones) == 1:
            return ones[0], ""
        small = [
            i
            for i in (0, 3)
            if 2 <= shape[i] <= 4 and min(shape[j] for j in range(4) if j != i) > 4
        ]
        if len(small) == 1:
            return small[0], ""
    return None, "bad"


def open_volume(
    data: Any,
    *,
    name: str | None = None,
    level: int | None = None,
    channel: int = 0,
    channel_axis: int | None = None,
) -> VolumeSource:
    """Wrap ``data`` as a lazily read ZYX volume (see module docstring).

    Parameters
    ----------
    data : array-like, path, or list of arrays
        numpy / dask / zarr array; a path to a zarr array or group (an OME-Zarr
        multiscale group uses ``level``; ``group.zarr/NAME`` picks an array), a
        TIFF or a ``.npy`` file; or a list of arrays (a pyramid, level ``level``).
    name : str, optional
        Name for metadata (defaults to the file name).
    level : int, optional
        Pyramid level (default 0, full resolution).
    channel, channel_axis : int
        Which channel of a 4D array to use, and (optionally) its axis.
    """
    if isinstance(data, VolumeSource):
        return data
    path = key = None
    if isinstance(data, (str, Path)):
        p = Path(data).expanduser()
        if not p.exists():
            # group.zarr/array_name
            if p.parent.exists() and p.parent.suffix.lower() == ".zarr":
                key = p.name
                p = p.parent
            else:
                raise TamaleInputError(f"the volume {p} does not exist")
        array, key = _open_path(p, key, level)
        path = str(p)
        name = name or p.stem
    elif isinstance(data, (list, tuple)):
        lvl = 0 if level is None else level
        if not 0 <= lvl < len(data):
            raise TamaleInputError(
                f"the pyramid has {len(data)} levels; level {lvl} does not exist"
            )
        array = data[lvl]
    else:
        array = data
    if not hasattr(array, "shape") or not hasattr(array, "dtype"):
        raise TamaleInputError(f"cannot segment a {type(array).__name__}: pass an array or a path")
    shape = tuple(int(s) for s in array.shape)
    if len(shape) == 2:
        raise TamaleInputError(
            f"3D inference needs a volume (Z, Y, X); this is a 2D image of shape {shape}. "
            "Use 2D inference for single images."
        )
    c_axis, problem = _channel_layout(shape, channel_axis)
    if problem:
        raise TamaleInputError(
            f"cannot tell the channel axis of a {len(shape)}D array of shape {shape}: 3D inference "
            "needs a ZYX volume, or a 4D array whose first or last axis holds 1-4 channels. "
            "Select one channel (or time point) first."
        )
    if c_axis is not None:
        n_channels = shape[c_axis]
        if not 0 <= channel < n_channels:
            raise TamaleInputError(f"channel {channel} does not exist (the array has {n_channels})")
        shape = tuple(s for i, s in enumerate(shape) if i != c_axis)
    dtype = np.dtype(array.dtype)
    if dtype.kind not in "uif" and dtype != np.bool_:
        raise TamaleInputError(f"cannot segment an array of type {dtype}")
    return VolumeSource(
        array=array,
        name=name or "volume",
        shape=shape,  # type: ignore[arg-type]
        dtype=dtype,
        channel_axis=c_axis,
        channel=channel,
        path=path,
        key=key,
        level=level,
    )
