"""Image stacks: one image source seen as SC(Z)YX, read patch by patch.

An image stack wraps an array in its original axis order (``axes``, letters from
``STCZYX``; S and T are flattened together into the sample axis S, in their order of
appearance) and reads boxes from it without loading or reordering the whole array:

* :class:`ArrayImageStack`: a numpy array, a memory map, a dask array or an open zarr
  array (anything with numpy-style basic indexing);
* :class:`ZarrImageStack`: a zarr (v3) array given by path, opened lazily and
  re-opened in every process (DataLoader workers);
* :class:`TiffImageStack`: a TIFF file, memory-mapped when its pixels are stored
  contiguously, otherwise read tile by tile through tifffile's zarr store; re-opened
  per process.

:meth:`ImageStack.extract_patch` returns float32 C(Z)YX and zero-pads the parts of
the patch outside the image. :func:`image_stack` picks the class for a source.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TypedDict, runtime_checkable

import numpy as np

from tamale.errors import TamaleInputError

__all__ = [
    "ArrayImageStack",
    "ImageMetadata",
    "ImageStack",
    "TiffImageStack",
    "ZarrImageStack",
    "image_stack",
]

_LETTERS = "STCZYX"


class ImageMetadata(TypedDict):
    """What is known about the image a patch came from."""

    source: str
    dtype: str
    data_shape: tuple[int, ...]
    original_data_shape: tuple[int, ...]
    original_axes: str
    additional_metadata: dict[str, Any]


@runtime_checkable
class ImageStack(Protocol):
    """One image source seen as SC(Z)YX."""

    @property
    def source(self) -> str:
        """Where the data comes from (a path or ``"array"``)."""
        ...

    @property
    def data_shape(self) -> tuple[int, ...]:
        """Shape SC(Z)YX."""
        ...

    @property
    def data_dtype(self) -> np.dtype:
        """Dtype of the stored pixels."""
        ...

    def read_box(
        self,
        sample_idx: int,
        channels: Sequence[int] | None,
        start: Sequence[int],
        stop: Sequence[int],
    ) -> np.ndarray:
        """Pixels of an in-image box, C(Z)YX, stored dtype."""
        ...

    def extract_patch(
        self,
        sample_idx: int,
        channels: Sequence[int] | None,
        coords: Sequence[int],
        patch_size: Sequence[int],
    ) -> np.ndarray:
        """A float32 C(Z)YX patch, zero outside the image."""
        ...

    def metadata(self) -> ImageMetadata:
        """Source, dtype and shapes."""
        ...


def parse_axes(axes: str | None, ndim: int) -> str:
    """Validate an axes string (letters from STCZYX) for an array of ``ndim`` dims."""
    if axes is None:
        if ndim == 2:
            return "YX"
        if ndim == 3:
            return "ZYX"
        raise TamaleInputError(
            f"the image has {ndim} dimensions: say what they are with axes=, e.g. 'CYX', "
            "'SZYX' or 'TCZYX' (letters S, T, C, Z, Y, X)"
        )
    if not isinstance(axes, str):
        raise TamaleInputError(f"axes must be a string such as 'ZYX', got {axes!r}")
    axes = axes.upper()
    bad = [a for a in axes if a not in _LETTERS]
    if bad or len(set(axes)) != len(axes) or "Y" not in axes or "X" not in axes:
        raise TamaleInputError(
            f"axes {axes!r} must use each of S, T, C, Z, Y, X at most once and contain Y and X"
        )
    if len(axes) != ndim:
        raise TamaleInputError(
            f"axes {axes!r} names {len(axes)} dimensions but the image has {ndim}"
        )
    return axes


class _AxesImageStack:
    """Shared reading logic over an array in its original axis order."""

    def __init__(self, axes: str, shape: Sequence[int], dtype: Any, source: str) -> None:
        self._axes = axes
        self._shape = tuple(int(s) for s in shape)
        self._dtype = np.dtype(dtype)
        self._source = source
        size = dict(zip(axes, self._shape))
        self._sample_axes = [a for a in axes if a in "ST"]
        self._sample_sizes = [size[a] for a in self._sample_axes]
        n_samples = math.prod(self._sample_sizes)
        n_channels = size.get("C", 1)
        spatial = [size[a] for a in "ZYX" if a in size]
        self._data_shape = (n_samples, n_channels, *spatial)
        # after indexing S/T away, axes left in stored order; transpose them to C(Z)YX
        kept = [a for a in axes if a not in "ST"]
        target = [a for a in "CZYX" if a in kept]
        self._transpose = [kept.index(a) for a in target]
        self._has_c = "C" in kept

    # ---- to be provided by subclasses
    def _get(self, index: tuple[Any, ...]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # ---- protocol
    @property
    def source(self) -> str:
        """Where the data comes from."""
        return self._source

    @property
    def data_shape(self) -> tuple[int, ...]:
        """Shape SC(Z)YX."""
        return self._data_shape

    @property
    def data_dtype(self) -> np.dtype:
        """Dtype of the stored pixels."""
        return self._dtype

    @property
    def original_data_shape(self) -> tuple[int, ...]:
        """Shape in the stored axis order."""
        return self._shape

    @property
    def original_axes(self) -> str:
        """The stored axis order."""
        return self._axes

    @property
    def n_channels(self) -> int:
        """Number of channels (1 when the data has no C axis)."""
        return self._data_shape[1]

    def _additional_metadata(self) -> dict[str, Any]:
        return {}

    def metadata(self) -> ImageMetadata:
        """Source, dtype and shapes."""
        return ImageMetadata(
            source=self._source,
            dtype=str(self._dtype),
            data_shape=self._data_shape,
            original_data_shape=self._shape,
            original_axes=self._axes,
            additional_metadata=self._additional_metadata(),
        )

    def check_channels(self, channels: Sequence[int] | None) -> list[int] | None:
        """Validate a channel selection (``None`` means all)."""
        if channels is None:
            return None
        try:
            chans = [int(c) for c in channels]
        except (TypeError, ValueError):
            raise TamaleInputError(
                f"channels must be a sequence of ints, got {channels!r}"
            ) from None
        n = self._data_shape[1]
        bad = [c for c in chans if not 0 <= c < n]
        if bad or not chans:
            raise TamaleInputError(
                f"channels {chans} are not valid for {self._source} which has {n} channel(s) "
                f"(valid 0..{n - 1})"
            )
        return chans

    def _check_sample(self, sample_idx: int) -> int:
        n = self._data_shape[0]
        if not isinstance(sample_idx, (int, np.integer)) or not 0 <= sample_idx < n:
            raise TamaleInputError(
                f"sample_idx {sample_idx!r} is out of range for {self._source} ({n} samples)"
            )
        return int(sample_idx)

    def read_box(
        self,
        sample_idx: int,
        channels: Sequence[int] | None,
        start: Sequence[int],
        stop: Sequence[int],
    ) -> np.ndarray:
        """Pixels of the box ``[start, stop)`` (inside the image), C(Z)YX, stored dtype."""
        sample_idx = self._check_sample(sample_idx)
        chans = self.check_channels(channels)
        sample_pos = np.unravel_index(sample_idx, self._sample_sizes) if self._sample_axes else ()
        sample_of = dict(zip(self._sample_axes, (int(p) for p in sample_pos)))
        spatial_axes = [a for a in "ZYX" if a in self._axes]
        box = {a: slice(int(b), int(e)) for a, b, e in zip(spatial_axes, start, stop)}
        pick = None
        if chans is None:
            c_index: Any = slice(None)
        else:
            lo, hi = min(chans), max(chans) + 1
            c_index = slice(lo, hi)
            if chans != list(range(lo, hi)):
                pick = [c - lo for c in chans]
        index = []
        for a in self._axes:
            if a in "ST":
                index.append(sample_of[a])
            elif a == "C":
                index.append(c_index)
            else:
                index.append(box[a])
        block = np.asarray(self._get(tuple(index)))
        block = block.transpose(self._transpose)
        if not self._has_c:
            block = block[np.newaxis]
        if pick is not None:
            block = block[pick]
        return block

    def extract_patch(
        self,
        sample_idx: int,
        channels: Sequence[int] | None,
        coords: Sequence[int],
        patch_size: Sequence[int],
    ) -> np.ndarray:
        """A float32 C(Z)YX patch at ``coords``; parts outside the image are 0."""
        spatial = self._data_shape[2:]
        if len(coords) != len(spatial) or len(patch_size) != len(spatial):
            raise TamaleInputError(
                f"patch coords {tuple(coords)} / size {tuple(patch_size)} do not match the "
                f"{len(spatial)} spatial axes of {self._source} (shape {self._data_shape})"
            )
        chans = self.check_channels(channels)
        n_c = self._data_shape[1] if chans is None else len(chans)
        lo = [int(c) for c in coords]
        hi = [c + int(p) for c, p in zip(lo, patch_size)]
        clo = [min(max(c, 0), s) for c, s in zip(lo, spatial)]
        chi = [min(max(c, 0), s) for c, s in zip(hi, spatial)]
        out = np.zeros((n_c, *(int(p) for p in patch_size)), dtype=np.float32)
        if all(b > a for a, b in zip(clo, chi)):
            block = self.read_box(sample_idx, chans, clo, chi)
            dst = (slice(None), *(slice(a - c, b - c) for a, b, c in zip(clo, chi, lo)))
            out[dst] = block
        else:
            self._check_sample(sample_idx)
        return out

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(source={self._source!r}, axes={self._axes!r}, "
            f"data_shape={self._data_shape})"
        )


class ArrayImageStack(_AxesImageStack):
    """An array already at hand: numpy, memory map, dask or an open zarr array.

    Parameters
    ----------
    array : array-like
        Anything with ``shape``, ``dtype`` and numpy basic indexing. Dask blocks are
        computed on read with the synchronous scheduler.
    axes : str, optional
        Axis letters in stored order (from STCZYX). Default: ``"YX"`` for 2D and
        ``"ZYX"`` for 3D arrays; required otherwise.
    source : str, default "array"
        A name for metadata and messages.
    """

    def __init__(self, array: Any, axes: str | None = None, source: str = "array") -> None:
        if not hasattr(array, "shape") or not hasattr(array, "dtype"):
            array = np.asarray(array)
        axes = parse_axes(axes, len(array.shape))
        super().__init__(axes, array.shape, array.dtype, source)
        self._array = array

    @property
    def array(self) -> Any:
        """The wrapped array."""
        return self._array

    def _get(self, index: tuple[Any, ...]) -> np.ndarray:
        block = self._array[index]
        if hasattr(block, "compute"):
            block = block.compute(scheduler="synchronous")
        return np.asarray(block)

    def _additional_metadata(self) -> dict[str, Any]:
        chunks = getattr(self._array, "chunks", None)
        if chunks is not None and all(isinstance(c, int) for c in chunks):
            return {"chunks": tuple(chunks)}
        chunksize = getattr(self._array, "chunksize", None)
        return {"chunks": tuple(chunksize)} if chunksize is not None else {}


class _LazyFileStack(_AxesImageStack):
    """A file-backed stack opened on first read, once per process (fork/spawn safe)."""

    _handle: Any = None
    _pid: int | None = None

    def _open(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def array(self) -> Any:
        """The opened array (re-opened in a new process)."""
        if self._handle is None or self._pid != os.getpid():
            self._handle = self._open()
            self._pid = os.getpid()
        return self._handle

    def _get(self, index: tuple[Any, ...]) -> np.ndarray:
        return np.asarray(self.array[index])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"] = None
        state["_pid"] = None
        return state


class ZarrImageStack(_LazyFileStack):
    """A zarr (v3) array on disk, opened read-only per process.

    Parameters
    ----------
    path : str or Path
        The array's location (a store path or URL understood by ``zarr.open_array``).
    axes : str, optional
        Axis letters in stored order (default ``"YX"`` / ``"ZYX"`` by dimension).
    """

    def __init__(self, path: str | Path, axes: str | None = None) -> None:
        self._path = str(path)
        arr = self._open()
        super().__init__(parse_axes(axes, len(arr.shape)), arr.shape, arr.dtype, self._path)
        self._handle, self._pid = arr, os.getpid()

    def _open(self) -> Any:
        import zarr

        try:
            return zarr.open_array(self._path, mode="r")
        except Exception as exc:  # zarr raises several types for a missing/bad store
            raise TamaleInputError(f"cannot open a zarr array at {self._path}: {exc}") from exc

    def _additional_metadata(self) -> dict[str, Any]:
        arr = self.array
        meta: dict[str, Any] = {"chunks": tuple(arr.chunks)}
        shards = getattr(arr, "shards", None)
        if shards is not None:
            meta["shards"] = tuple(shards)
        return meta


class TiffImageStack(_LazyFileStack):
    """A TIFF file: memory-mapped when possible, else read through tifffile's zarr store.

    Parameters
    ----------
    path : str or Path
        The TIFF file.
    axes : str, optional
        Axis letters in stored order (default ``"YX"`` / ``"ZYX"`` by dimension).
    series : int, default 0
        TIFF series to read.
    """

    def __init__(self, path: str | Path, axes: str | None = None, series: int = 0) -> None:
        self._path = str(path)
        self._series = int(series)
        arr = self._open()
        super().__init__(parse_axes(axes, len(arr.shape)), arr.shape, arr.dtype, self._path)
        self._handle, self._pid = arr, os.getpid()

    @property
    def memory_mapped(self) -> bool:
        """Whether the pixels are read through a memory map."""
        return isinstance(self.array, np.memmap)

    def _open(self) -> Any:
        import tifffile

        if not Path(self._path).is_file():
            raise TamaleInputError(f"TIFF file not found: {self._path}")
        try:
            return tifffile.memmap(self._path, mode="r", series=self._series)
        except ValueError:
            pass  # compressed or tiled: not memory-mappable
        import zarr

        store = tifffile.imread(self._path, aszarr=True, series=self._series)
        return zarr.open_array(store, mode="r")


def image_stack(source: Any, axes: str | None = None) -> ImageStack:
    """An image stack for ``source``.

    Parameters
    ----------
    source : array-like, str or Path
        numpy / dask / zarr array, or a path: ``*.tif`` / ``*.tiff`` opens a
        :class:`TiffImageStack`, anything else a :class:`ZarrImageStack`.
    axes : str, optional
        Axis letters in stored order.
    """
    if isinstance(source, (str, Path)):
        if str(source).lower().endswith((".tif", ".tiff")):
            return TiffImageStack(source, axes)
        return ZarrImageStack(source, axes)
    if isinstance(source, _AxesImageStack):
        return source
    return ArrayImageStack(source, axes)
