"""Slabs: the unit of work of stack inference, on one device or many.

A stack along axis ``a`` (xy: 0, xz: 1, yz: 2) is cut into slabs of
consecutive slices. A slab task:

1. reads the slices it needs -- its own plus a halo of ``median // 2`` slices
   on each side for the median filter -- in blocks aligned with the input's
   chunks (a yz slab of a z-chunked zarr reads each chunk once, not once per
   slice);
2. runs the 2D model on batches of slices -- on a GPU in a producer thread that
   hands raw predictions to the consumer through a bounded queue (two batches),
   so the device keeps working while the CPU filters, post-processes and links
   (on a CPU both would compete for the same cores, so it runs in line);
   batches are aligned to multiples of ``batch_size`` in the whole stack, so a
   slice is always predicted in the same batch whatever the slab layout
   (results do not depend on how the volume was cut);
3. filters the semantic probabilities with the true median
   (:class:`~tamale.postprocess.median.StreamingMedian`), turns each slice
   into panoptic labels, splits every class into pieces and records piece
   areas, boxes and the overlaps with the previous slice;
4. writes the piece images to the run's work arrays slice by slice (each slice
   is one whole shard: no read-modify-write, nothing buffered), and returns the compact
   :class:`SlabResult`, which a zarr run also saves in the store (resume).

The driver then links all slabs' pieces at once (the overlap between two
slabs' border slices comes from the border piece images each result carries)
so the numbering is the same as a single pass over the whole stack.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tamale.inference.slice_model import ClassInfo, SegmenterFactory, build_cached
from tamale.inference.volume_source import VolumeSource
from tamale.postprocess import drop_small_instances
from tamale.postprocess.median import StreamingMedian
from tamale.postprocess.pieces import overlap_pairs, split_pieces
from tamale.progress import CancelToken, ProgressEvent, Work, check

__all__ = [
    "PLANE_AXIS",
    "SlabResult",
    "SlabTask",
    "iter_segment_slab",
    "plan_slabs",
    "slice_shape",
]

PLANE_AXIS = {"xy": 0, "xz": 1, "yz": 2}
_READ_BYTES = 32 * 2**20  # largest input block read at once


def slice_shape(shape: tuple[int, int, int], axis: int) -> tuple[int, int]:
    """Shape of one slice across ``axis`` (the other two axes, in order)."""
    rest = [s for i, s in enumerate(shape) if i != axis]
    return rest[0], rest[1]


def plan_slabs(n: int, slab_size: int, align: int = 1) -> list[range]:
    """Consecutive slabs covering ``range(n)``; sizes are multiples of ``align``."""
    size = max(align, (max(1, slab_size) // align) * align)
    return [range(s, min(s + size, n)) for s in range(0, n, size)]


@dataclass(frozen=True)
class SlabTask:
    """Everything a worker needs to segment one slab (picklable)."""

    plane: str
    index: int
    outputs: range
    length: int
    shape: tuple[int, int, int]
    median: int
    batch_size: int
    align: int
    classes: tuple[ClassInfo, ...]
    label_divisor: int
    min_area: int = 0
    """Instances smaller than this (pixels of a slice) are dropped before linking."""
    store: str | None = None
    """Zarr store of the run: pieces go to its work arrays, the result is saved there."""
    device: str | None = None
    overlap: bool | None = None
    """Predict in a producer thread while post-processing (None: only on a GPU; on a CPU
    both would compete for the same cores)."""

    @property
    def axis(self) -> int:
        return PLANE_AXIS[self.plane]

    @property
    def stage(self) -> str:
        return f"slices:{self.plane}"


@dataclass
class SlabClass:
    """Per-class output of one slab (see :class:`SlabResult`)."""

    counts: list[int] = field(default_factory=list)
    areas: list[np.ndarray] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    overlaps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    first: np.ndarray | None = None
    last: np.ndarray | None = None
    pieces: np.ndarray | None = None


@dataclass
class SlabResult:
    """What a slab task returns: piece statistics, overlaps, border slices.

    ``classes[key].overlaps[i]`` pairs slice ``outputs[i] - 1`` with slice
    ``outputs[i]``; the first entry is empty (the previous slab's last slice is
    not known to this slab -- the driver fills it from the border slices).
    ``pieces`` holds the piece images only when there is no store to write to.
    """

    plane: str
    index: int
    outputs: range
    classes: dict[str, SlabClass]

    # -- persistence (resume) ----------------------------------------------------
    def to_npz(self, path: Path) -> None:
        """Save atomically (write a temporary file, then rename)."""
        arrays: dict[str, np.ndarray] = {
            "meta": np.array([self.index, self.outputs.start, self.outputs.stop], np.int64)
        }
        for key, c in self.classes.items():
            arrays[f"{key}/counts"] = np.asarray(c.counts, np.int64)
            arrays[f"{key}/areas"] = _cat(c.areas, np.int64)
            arrays[f"{key}/boxes"] = _cat(c.boxes, np.int32, (0, 4))
            arrays[f"{key}/ov_counts"] = np.asarray([len(o[0]) for o in c.overlaps], np.int64)
            for j, name in enumerate(("ov_prev", "ov_cur", "ov_n")):
                arrays[f"{key}/{name}"] = _cat([o[j] for o in c.overlaps], np.int64)
            arrays[f"{key}/first"] = c.first
            arrays[f"{key}/last"] = c.last
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)

    @classmethod
    def from_npz(cls, path: Path, plane: str, keys: list[str]) -> SlabResult:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
            index, start, stop = (int(v) for v in data["meta"])
            classes = {}
            for key in keys:
                counts = data[f"{key}/counts"]
                ov_counts = data[f"{key}/ov_counts"]
                classes[key] = SlabClass(
                    counts=[int(v) for v in counts],
                    areas=_split(data[f"{key}/areas"], counts),
                    boxes=_split(data[f"{key}/boxes"], counts),
                    overlaps=list(
                        zip(
                            *(
                                _split(data[f"{key}/{n}"], ov_counts)
                                for n in ("ov_prev", "ov_cur", "ov_n")
                            )
                        )
                    ),
                    first=data[f"{key}/first"],
                    last=data[f"{key}/last"],
                )
        return cls(plane, index, range(start, stop), classes)


def _cat(parts: list[np.ndarray], dtype: Any, empty_shape: tuple[int, ...] = (0,)) -> np.ndarray:
    if not parts:
        return np.zeros(empty_shape, dtype)
    return np.concatenate([np.asarray(p, dtype) for p in parts])


def _split(values: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    return np.split(values, np.cumsum(counts)[:-1]) if len(counts) else []


# -- reading ------------------------------------------------------------------------------


def _slab_batches(needed: list[int], batch_size: int, length: int) -> list[list[int]]:
    """Globally aligned batches covering the needed slices."""
    groups = sorted({i // batch_size for i in needed})
    return [list(range(g * batch_size, min(length, (g + 1) * batch_size))) for g in groups]


class _BlockReader:
    """Serves slices along ``axis`` from blocks aligned with the input's chunks.

    A block is read band by band (one chunk row of the first in-plane axis at a time),
    so the input's decoded chunks never take much more memory than the block itself.
    """

    def __init__(self, source: VolumeSource, axis: int, batch: int) -> None:
        self.source = source
        self.axis = axis
        chunks = source.chunks
        along = chunks[axis] if chunks else 1
        plane = int(np.prod(slice_shape(source.shape, axis))) * source.dtype.itemsize
        cap = max(batch, _READ_BYTES // max(1, plane))
        self.block = max(batch, min(cap, max(along, batch)))
        self.along = along if along <= self.block else 1
        self.band_axis = next(a for a in range(3) if a != axis)
        self.band = chunks[self.band_axis] if chunks else source.shape[self.band_axis]
        self._range = range(0)
        self._data: np.ndarray | None = None

    def _read(self, start: int, stop: int) -> np.ndarray:
        shape = list(self.source.shape)
        shape[self.axis] = stop - start
        out = np.empty(shape, self.source.dtype)
        region = [slice(None)] * 3
        region[self.axis] = slice(start, stop)
        n = self.source.shape[self.band_axis]
        for b0 in range(0, n, self.band):
            region[self.band_axis] = slice(b0, min(b0 + self.band, n))
            index = [slice(None)] * 3
            index[self.band_axis] = region[self.band_axis]
            out[tuple(index)] = self.source.read(tuple(region))  # type: ignore[arg-type]
        return out

    def read(self, indices: list[int]) -> np.ndarray:
        lo, hi = indices[0], indices[-1] + 1
        if not (lo >= self._range.start and hi <= self._range.stop and self._data is not None):
            start = lo - lo % self.along if self.along > 1 else lo
            stop = min(self.source.shape[self.axis], max(hi, start + self.block))
            self._data = None  # free the previous block first
            self._data = np.moveaxis(self._read(start, stop), self.axis, 0)
            self._range = range(start, stop)
        return self._data[lo - self._range.start : hi - self._range.start]


_DONE = object()


def _predictions(
    task: SlabTask, source: VolumeSource, segmenter: Any, needed: list[int]
) -> Iterator[tuple[int, Any]]:
    """Read batches, run the model, yield ``(index, raw)`` for the needed slices in order."""
    per_call = task.batch_size
    slices_per_call = getattr(segmenter, "slices_per_call", None)
    if slices_per_call is not None:  # e.g. 1 when slices are tiled (tiles make the batches)
        per_call = max(1, min(per_call, slices_per_call(slice_shape(task.shape, task.axis))))
    reader = _BlockReader(source, task.axis, per_call)
    wanted = set(needed)
    for batch in _slab_batches(needed, per_call, task.length):
        images = reader.read(batch)
        for i, raw in zip(batch, segmenter.predict(images)):
            if i in wanted:
                yield i, raw


def _produce(items: Iterator[tuple[int, Any]], out: queue.Queue, stop: threading.Event) -> None:
    """Producer thread: run ``items`` ahead of the consumer, at most ``maxsize`` ahead."""
    try:
        for item in items:
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if stop.is_set():
                return
        out.put(_DONE)
    except BaseException as exc:  # handed to the consumer
        out.put(exc)


class _Prefetch:
    """Iterate ``items`` in a producer thread through a bounded queue."""

    def __init__(
        self, items: Iterator[Any], size: int, name: str, cancel: CancelToken | None
    ) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, size))
        self.stop = threading.Event()
        self.cancel = cancel
        self.thread = threading.Thread(
            target=_produce, args=(items, self.queue, self.stop), name=name, daemon=True
        )
        self.thread.start()

    def __iter__(self) -> Iterator[Any]:
        while True:
            check(self.cancel)
            try:
                item = self.queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self.stop.set()
        while self.thread.is_alive():
            try:
                self.queue.get_nowait()
            except queue.Empty:
                self.thread.join(timeout=0.05)


def _wants_overlap(task: SlabTask, segmenter: Any) -> bool:
    if task.overlap is not None:
        return task.overlap
    device = getattr(segmenter, "device", None)
    return device is not None and getattr(device, "type", str(device)) != "cpu"


# -- writing ------------------------------------------------------------------------------


class _PieceWriter:
    """Buffers piece slices and writes them ``align`` at a time."""

    def __init__(self, task: SlabTask, sink: Any) -> None:
        self.task = task
        self.sink = sink
        self.buffers: dict[str, list[np.ndarray]] = {c.key: [] for c in task.classes}
        self.start = task.outputs.start

    def add(self, key: str, pieces: np.ndarray) -> None:
        self.buffers[key].append(pieces)

    def flush(self, force: bool = False) -> None:
        n = len(next(iter(self.buffers.values()))) if self.buffers else 0
        if n == 0 or (n < self.task.align and not force):
            return
        for key, parts in self.buffers.items():
            block = np.moveaxis(np.stack(parts), 0, self.task.axis)
            region = [slice(None)] * 3
            region[self.task.axis] = slice(self.start, self.start + n)
            self.sink[key][tuple(region)] = block
            self.buffers[key] = []
        self.start += n


class _Collect:
    """A sink that keeps the pieces (no store): returned inside the result."""

    def __init__(self, task: SlabTask) -> None:
        shape = list(task.shape)
        shape[task.axis] = len(task.outputs)
        self.arrays = {c.key: np.zeros(shape, np.uint32) for c in task.classes}
        self.offset = task.outputs.start
        self.axis = task.axis

    def __getitem__(self, key: str) -> Any:
        return _Shifted(self.arrays[key], self.axis, self.offset)


class _Shifted:
    def __init__(self, array: np.ndarray, axis: int, offset: int) -> None:
        self.array, self.axis, self.offset = array, axis, offset

    def __setitem__(self, region: tuple[slice, ...], value: np.ndarray) -> None:
        r = list(region)
        s = r[self.axis]
        r[self.axis] = slice(s.start - self.offset, s.stop - self.offset)
        self.array[tuple(r)] = value


def work_array_path(plane: str, key: str) -> str:
    """Path of a work array (piece images) inside a run's store."""
    return f"_work/{plane}/pieces/{key}"


def slab_result_path(store: str | Path, plane: str, index: int) -> Path:
    return Path(store) / "_work" / plane / "slabs" / f"{index:06d}.npz"


class _ZarrSink:
    def __init__(self, store: str, plane: str) -> None:
        import zarr

        self.group = zarr.open_group(store, mode="r+")
        self.plane = plane
        self._arrays: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._arrays:
            self._arrays[key] = self.group[work_array_path(self.plane, key)]
        return self._arrays[key]


# -- the task -----------------------------------------------------------------------------


def iter_segment_slab(
    task: SlabTask,
    factory: SegmenterFactory,
    source: VolumeSource,
    *,
    sink: Any = None,
    cancel: CancelToken | None = None,
) -> Work[SlabResult]:
    """Segment one slab (see module docstring); yields per-slice progress.

    ``sink`` maps class keys to writable arrays of the whole volume (numpy
    work arrays of an in-memory run). Without a sink, the task writes to the
    zarr store named in ``task.store``, or keeps the pieces in the result.
    """
    if task.device is None:
        from tamale.inference.executor import worker_device

        device = worker_device()
        if device is not None:
            task = replace(task, device=device)
    median = StreamingMedian(task.length, task.median, outputs=task.outputs)
    needed = median.needed_inputs()
    if sink is None:
        sink = _ZarrSink(task.store, task.plane) if task.store else _Collect(task)
    writer = _PieceWriter(task, sink)
    div = task.label_divisor
    min_area = task.min_area
    things = frozenset(c.id for c in task.classes if c.kind == "instance")
    result = SlabResult(
        task.plane, task.index, task.outputs, {c.key: SlabClass() for c in task.classes}
    )
    previous: dict[str, np.ndarray] = {}
    held: dict[int, Any] = {}

    segmenter = build_cached(factory, task.device)
    items: Any = _predictions(task, source, segmenter, needed)
    prefetch = None
    if _wants_overlap(task, segmenter):
        # the device predicts the next batches while this thread post-processes
        prefetch = _Prefetch(
            items, 2 * task.batch_size, f"tamale-slab-{task.plane}-{task.index}", cancel
        )
        items = prefetch
    done = 0
    try:
        for index, raw in items:
            check(cancel)
            if index in task.outputs:
                held[index] = raw
            for out_index, probs in median.push(index, segmenter.probabilities(raw)):
                pan = np.asarray(segmenter.panoptic(held.pop(out_index), probs))
                pan = drop_small_instances(pan, things, div, min_area)
                for c in task.classes:
                    in_class = (pan >= c.id * div) & (pan < (c.id + 1) * div)
                    if c.kind == "instance":
                        pieces = split_pieces(np.where(in_class, pan, 0))
                    else:
                        pieces = split_pieces(in_class, connected=False)
                    data = result.classes[c.key]
                    prev = previous.get(c.key)
                    overlap = (
                        overlap_pairs(prev, pieces.labels)
                        if prev is not None and c.kind == "instance"
                        else (np.zeros(0, np.int64),) * 3
                    )
                    data.counts.append(pieces.n)
                    data.areas.append(pieces.areas)
                    data.boxes.append(pieces.boxes)
                    data.overlaps.append(overlap)
                    if data.first is None:
                        data.first = pieces.labels
                    data.last = pieces.labels
                    previous[c.key] = pieces.labels
                    writer.add(c.key, pieces.labels)
                writer.flush()
                done += 1
                yield ProgressEvent(task.stage, done, len(task.outputs))
        writer.flush(force=True)
    finally:
        if prefetch is not None:
            prefetch.close()
    if isinstance(sink, _Collect):
        for key, arr in sink.arrays.items():
            result.classes[key].pieces = arr
    if task.store:
        path = slab_result_path(task.store, task.plane, task.index)
        path.parent.mkdir(parents=True, exist_ok=True)
        result.to_npz(path)
    return result
