"""3D inference: stack (xy, xz or yz) and ortho-plane, in memory or streamed to zarr.

:func:`iter_segment_volume` is the one entry point the plugin, the CLI and
scripts share. A run:

1. opens the input lazily (:func:`~tamale.inference.volume_source.open_volume`)
   and validates everything (shape, channel, model, parameters, output path,
   scheduler) before anything is written;
2. cuts each stack into slabs and segments them
   (:func:`~tamale.inference.slabs.iter_segment_slab`) in this process or on a
   Dask cluster -- the same tasks either way;
3. links the pieces of all slabs into 3D objects, filters them by size and
   extent and numbers them ``1..N`` per class
   (:mod:`~tamale.postprocess.linking`);
4. writes the labels chunk by chunk (:mod:`~tamale.inference.passes`);
   ortho-plane inference then votes the three stacks into one consensus
   (:mod:`~tamale.postprocess.consensus`);
5. marks the store complete.

With an output directory, memory stays bounded by a few slices and chunks
whatever the volume's size, and an interrupted run resumes
(``if_exists="resume"``) without recomputing finished slabs. The result does
not depend on where it ran: one process or many workers give identical labels.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.inference.config3d import SLAB_PARAMETERS, Inference3DConfig
from tamale.inference.executor import InlineExecutor, Task, open_executor
from tamale.inference.passes import (
    ArrayRef,
    block_groups,
    iter_consensus_table,
    iter_consensus_write,
    iter_panoptic,
    iter_relabel,
    slice_lut,
)
from tamale.inference.slabs import (
    PLANE_AXIS,
    SlabResult,
    SlabTask,
    iter_segment_slab,
    plan_slabs,
    slice_shape,
    work_array_path,
)
from tamale.inference.slice_model import ClassInfo, SegmenterFactory
from tamale.inference.volume_source import VolumeSource, open_volume
from tamale.inference.volume_store import (
    IfExists,
    RunLayout,
    ZarrStore,
    open_run_store,
    read_store_info,
)
from tamale.postprocess.consensus import TripleTable, plan_consensus
from tamale.postprocess.linking import (
    StackGraph,
    link_stack,
    piece_luts,
    select_objects,
    summarize_objects,
)
from tamale.postprocess.pieces import overlap_pairs
from tamale.progress import CancelToken, ProgressCallback, ProgressEvent, Work, drain

__all__ = [
    "AnisotropyWarning",
    "VolumeResult",
    "anisotropy_message",
    "iter_segment_volume",
    "segment_volume",
]

MIN_SLICE = 4
"""Smallest slice side (after downsampling) 3D inference accepts."""


class AnisotropyWarning(UserWarning):
    """xz / yz / ortho-plane inference on a volume with anisotropic voxels."""


def anisotropy_message(voxel_size: Any, plane: str, tolerance: float = 1.5) -> str | None:
    """Why xz/yz/ortho-plane inference may be poor on this volume, or None."""
    if voxel_size is None or plane == "xy":
        return None
    z, y, x = (float(v) for v in voxel_size)
    ratio = max(z, y, x) / max(min(z, y, x), 1e-12)
    if ratio <= tolerance:
        return None
    what = "ortho-plane inference" if plane == "ortho" else f"{plane} inference"
    return (
        f"the voxels are anisotropic (size z, y, x = {z:g}, {y:g}, {x:g}; {ratio:.1f}x): "
        f"{what} shows the network slices stretched {ratio:.1f}x along one axis, unlike the "
        "xy images it was trained on, so results are often poor. Prefer xy inference, or "
        "resample the volume to isotropic voxels first."
    )


@dataclass
class VolumeResult:
    """The result of a 3D run.

    Attributes
    ----------
    labels : dict of str -> array
        One uint32 (Z, Y, X) label volume per class, by class name; objects
        ``1..N`` for instance classes, 1 for semantic classes. numpy arrays
        for an in-memory run, zarr arrays (read lazily) with an output store.
    panoptic : dict of str -> array
        Per-plane panoptic stacks (``class * divisor + object``), if asked for.
    classes : tuple of ClassInfo
    n_objects : dict of str -> int
        Objects per class.
    store : str or None
        The output store.
    config : Inference3DConfig
    voxel_size : tuple of float or None
    metadata : dict
        The run's parameters, model and layout (also stored in the output).
    messages : list of str
        Warnings about the run: anisotropic voxels, no GPU, a precision that fell
        back (each was also yielded as a ``"warning"`` progress event).
    """

    labels: dict[str, Any]
    panoptic: dict[str, Any]
    classes: tuple[ClassInfo, ...]
    n_objects: dict[str, int]
    store: str | None
    config: Inference3DConfig
    voxel_size: tuple[float, float, float] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def _normalize_chunks(chunks: Any, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    if chunks is None:
        chunks = 64
    if isinstance(chunks, int):
        chunks = (chunks,) * 3
    chunks = tuple(int(c) for c in chunks)
    if len(chunks) != 3 or min(chunks) < 1:
        raise TamaleInputError(
            f"chunk size must be one positive number or three (z, y, x), got {chunks}"
        )
    return tuple(min(c, s) for c, s in zip(chunks, shape))  # type: ignore[return-value]


def _resolve_factory(
    model: Any, config: Inference3DConfig, source: VolumeSource
) -> SegmenterFactory:
    if isinstance(model, SegmenterFactory):
        return model
    from tamale.inference.model_factory import model_factory

    return model_factory(model, config, source)


def _effective_classes(
    factory: SegmenterFactory, config: Inference3DConfig
) -> tuple[ClassInfo, ...]:
    classes = tuple(factory.classes)
    if config.semantic_only:
        classes = tuple(ClassInfo(c.id, c.name, "semantic") for c in classes)
    keys = [c.key for c in classes]
    if len(set(keys)) != len(keys):
        classes = tuple(ClassInfo(c.id, f"{c.name}-{c.id}", c.kind) for c in classes)
    return classes


def _check_volume(source: VolumeSource, config: Inference3DConfig) -> None:
    for plane in config.planes:
        h, w = slice_shape(source.shape, PLANE_AXIS[plane])
        if min(h, w) // config.downsampling < MIN_SLICE:
            raise TamaleInputError(
                f"the {plane} slices of this volume are {h}x{w} pixels"
                + (
                    f", {h // config.downsampling}x{w // config.downsampling} after downsampling"
                    if config.downsampling > 1
                    else ""
                )
                + f": too small to segment (at least {MIN_SLICE} pixels per side). "
                "Choose another plane or less downsampling."
            )


def _default_slab_size(n: int, workers: int, align: int, inline: bool) -> int:
    if inline:
        size = 128
    else:
        size = min(256, max(2 * align, math.ceil(n / (3 * workers))))
    return max(align, (size // align) * align)


def iter_segment_volume(
    volume: Any,
    model: Any,
    config: Inference3DConfig | None = None,
    *,
    out: str | Path | None = None,
    if_exists: IfExists = "error",
    chunks: int | tuple[int, int, int] | None = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    processes: bool = True,
    scheduler_timeout: float = 10.0,
    voxel_size: tuple[float, float, float] | None = None,
    unit: str | None = None,
    name: str | None = None,
    slab_size: int | None = None,
    warn: bool = True,
    prefetch: bool | None = None,
    cancel: CancelToken | None = None,
) -> Work[VolumeResult]:
    """Segment a volume slice by slice (stack or ortho-plane); see module docstring.

    Parameters
    ----------
    volume : array-like or path
        Anything :func:`~tamale.inference.volume_source.open_volume` accepts.
    model : str, ModelCard or SegmenterFactory
        A registered model name, a model card, or a ready factory.
    config : Inference3DConfig, optional
        Parameters (defaults: empanada-napari's).
    out : path, optional
        OME-Zarr directory to write; None keeps the result in memory.
    if_exists : {"error", "overwrite", "resume"}
        What to do when ``out`` exists (never overwritten silently).
    chunks : int or (int, int, int)
        Chunk shape of the output arrays (default 64 per axis).
    scheduler : None, "local" or address
        Where slabs run: this process, a new local Dask cluster (one worker
        per GPU, or ``n_workers``), or a running Dask scheduler.
    voxel_size : (z, y, x), optional
        Physical voxel size: recorded in the output, and used to warn about
        xz / yz / ortho-plane inference on anisotropic voxels.
    slab_size : int, optional
        Slices per slab (default: 128 in one process, a few slabs per worker).
    prefetch : bool, optional
        Run the network in a producer thread ahead of post-processing (bounded
        queue). Default: on a GPU only (on a CPU both compete for the cores).
    warn : bool
        Raise an :class:`AnisotropyWarning` for xz / yz / ortho-plane inference on
        anisotropic voxels (the message is also yielded as a progress message; the
        plugin and CLI show that one and pass False).
    """
    config = config if config is not None else Inference3DConfig()
    yield ProgressEvent("setup", 0, None, "opening the volume and the model")
    source = open_volume(volume, name=name)
    _check_volume(source, config)
    factory = _resolve_factory(model, config, source)
    classes = _effective_classes(factory, config)
    planes = config.planes
    messages: list[str] = []
    message = anisotropy_message(voxel_size, config.plane)
    if message:
        if warn:
            warnings.warn(message, AnisotropyWarning, stacklevel=2)
        messages.append(message)
    # the device and precision this machine's workers will get (a remote cluster's
    # workers choose on their own machines)
    notes = getattr(factory, "notes", None)
    if notes is not None and scheduler in (None, "local"):
        messages.extend(notes())
    for message in messages:
        yield ProgressEvent("warning", 0, None, message)

    # a run being resumed keeps the layout it started with
    stored = read_store_info(out) if (out is not None and if_exists == "resume") else None
    run_opts = (stored or {}).get("run", {})
    shape = source.shape
    chunks_t = _normalize_chunks(run_opts.get("chunks", chunks), shape)
    align = int(run_opts.get("align") or 1)  # slices per shard of the piece arrays
    batch = config.batch_size

    info: dict[str, Any] = {
        "model": factory.describe(),
        "input": {"name": source.name, "shape": list(shape), "dtype": str(source.dtype)},
        "slab_parameters": {k: getattr(config, k) for k in SLAB_PARAMETERS},
        "parameters": config.model_dump(mode="json"),
        "voxel_size": list(voxel_size) if voxel_size is not None else None,
        "classes": [{"id": c.id, "name": c.name, "kind": c.kind, "key": c.key} for c in classes],
        "planes": list(planes),
    }
    resume_keys = ("model", "input", "slab_parameters", "planes")

    with open_executor(
        scheduler,
        n_workers=n_workers,
        processes=processes,
        timeout=scheduler_timeout,
        cancel=cancel,
    ) as executor:
        inline = isinstance(executor, InlineExecutor)
        slab = int(
            run_opts.get("slab_size")
            or slab_size
            or _default_slab_size(max(shape), executor.n_workers, align, inline)
        )
        slab = max(align, (slab // align) * align)
        info["run"] = {"chunks": list(chunks_t), "align": align, "slab_size": slab}
        layout = RunLayout(
            shape=shape,
            chunks=chunks_t,
            planes=planes,
            classes=classes,
            align=align,
            panoptic_planes=planes if (config.return_panoptic and len(planes) > 1) else (),
        )
        store = open_run_store(
            out,
            layout,
            if_exists=if_exists,
            info=info,
            resume_keys=resume_keys,
            voxel_size=voxel_size,
            unit=unit,
        )
        try:
            result = yield from _run(
                source,
                factory,
                config,
                classes,
                layout,
                store,
                executor,
                batch,
                slab,
                cancel,
                prefetch,
            )
        except BaseException:
            store.fail()
            raise
        result.voxel_size = tuple(voxel_size) if voxel_size is not None else None  # type: ignore[assignment]
        result.messages = messages
        result.metadata = dict(
            info,
            n_objects=result.n_objects,
            executor=executor.description,
            workers_used=sorted(executor.workers_used),
        )
        store.finish(
            {"n_objects": result.n_objects, "parameters": info["parameters"], "run": info["run"]}
        )
        if isinstance(store, ZarrStore):
            import zarr

            group = zarr.open_group(store.path, mode="r")
            result.labels = {c.name: group[f"labels/{c.key}/0"] for c in classes}
            result.panoptic = {p: group[f"labels/panoptic_{p}/0"] for p in layout.panoptic_planes}
        return result


def _ref(store: Any, kind: str, plane: str | None, key: str) -> ArrayRef:
    """An ArrayRef to one of the run's arrays."""
    if isinstance(store, ZarrStore):
        path = {
            "work": lambda: work_array_path(plane, key),
            "plane": lambda: f"_work/{plane}/final/{key}",
            "output": lambda: f"labels/{key}/0",
            "panoptic": lambda: f"labels/panoptic_{plane}/0",
        }[kind]()
        return ArrayRef(store=store.path, path=path)
    array = {
        "work": lambda: store.work(plane, key),
        "plane": lambda: store.plane_labels(plane, key),
        "output": lambda: store.output(key),
        "panoptic": lambda: store.panoptic(plane),
    }[kind]()
    return ArrayRef(array=array)


def _run(
    source: VolumeSource,
    factory: SegmenterFactory,
    config: Inference3DConfig,
    classes: tuple[ClassInfo, ...],
    layout: RunLayout,
    store: Any,
    executor: Any,
    batch: int,
    slab: int,
    cancel: CancelToken | None,
    prefetch: bool | None = None,
) -> Work[VolumeResult]:
    shape = layout.shape
    zarr_store = isinstance(store, ZarrStore)
    inline = isinstance(executor, InlineExecutor)
    # passes over arrays run where the arrays are: the cluster for a store, here for memory
    passes = executor if zarr_store else InlineExecutor(cancel)
    div = config.label_divisor
    planes = layout.planes

    # 1. slabs ------------------------------------------------------------------------
    shared_source: Any = source
    if not inline and source.path is None and hasattr(executor, "client"):
        [shared_source] = executor.client.scatter([source], broadcast=True)
    results: dict[str, dict[int, SlabResult]] = {p: {} for p in planes}
    borders: dict[str, set[int]] = {p: set() for p in planes}

    def add_result(value: SlabResult) -> None:
        plane = value.plane
        results[plane][value.index] = value
        if not zarr_store and not inline:  # pieces came back from a worker
            axis = PLANE_AXIS[plane]
            for c in classes:
                region = [slice(None)] * 3
                region[axis] = slice(value.outputs.start, value.outputs.stop)
                store.work(plane, c.key)[tuple(region)] = value.classes[c.key].pieces
                value.classes[c.key].pieces = None
        _join_borders(results[plane], borders[plane], value.index, classes)

    all_tasks: dict[str, list[Task]] = {}
    for plane in planes:
        axis = PLANE_AXIS[plane]
        n = shape[axis]
        for value in store.done_slabs(plane).values():
            add_result(value)
        tasks = []
        for k, outputs in enumerate(plan_slabs(n, slab, layout.align)):
            if k in results[plane]:
                continue
            task = SlabTask(
                plane=plane,
                index=k,
                outputs=outputs,
                length=n,
                shape=shape,
                median=config.median_slices,
                batch_size=batch,
                align=layout.align,
                classes=classes,
                label_divisor=factory.label_divisor,
                min_area=config.min_area,
                store=store.path if zarr_store else None,
                overlap=prefetch,
            )
            kwargs: dict[str, Any] = {}
            if inline:
                kwargs = {"sink": store.sink(plane), "cancel": cancel}
            tasks.append(
                Task(iter_segment_slab, (task, factory, shared_source), kwargs, weight=len(outputs))
            )
        all_tasks[plane] = tasks
    if inline:  # per-slice progress, plane by plane
        for plane, tasks in all_tasks.items():
            if tasks:
                yield from executor.run(
                    tasks, f"slices:{plane}", on_result=lambda _i, v: add_result(v)
                )
    else:  # every slab of every plane at once: the cluster stays busy
        tasks = [t for ts in all_tasks.values() for t in ts]
        if tasks:
            stage = "slabs:" + "+".join(p for p, ts in all_tasks.items() if ts)
            yield from executor.run(tasks, stage, on_result=lambda _i, v: add_result(v))

    # 2. link, filter, number; 3. write per-plane labels ---------------------------------
    n_objects: dict[str, int] = {}
    plane_counts: dict[tuple[str, str], int] = {}
    for plane in planes:
        axis = PLANE_AXIS[plane]
        slabs = [results[plane][k] for k in sorted(results[plane])]
        yield ProgressEvent(f"link:{plane}", 0, len(classes), f"linking {plane} slices")
        relabel_tasks = []
        for ci, c in enumerate(classes):
            graph = StackGraph()
            for s in slabs:
                sc = s.classes[c.key]
                for i in range(len(sc.counts)):
                    graph.append(sc.areas[i], sc.boxes[i], sc.overlaps[i])
            if c.kind == "instance":
                ids = link_stack(graph, config.link_iou, config.link_ioa)
                final = select_objects(
                    summarize_objects(graph, ids),
                    min_size=config.min_size,
                    min_extent=config.min_extent,
                    max_objects=div - 1,
                    class_name=f"{c.name} objects ({plane})",
                )
                luts = piece_luts(ids, final)
                count = len(final)
            else:
                luts = [np.array([0, 1] if len(a) else [0], np.uint32) for a in graph.areas]
                count = 1 if graph.n_pieces else 0
            plane_counts[(plane, c.key)] = count
            table, offsets = slice_lut(luts)
            dest_kind = "output" if len(planes) == 1 else "plane"
            src, dst = _ref(store, "work", plane, c.key), _ref(store, dest_kind, plane, c.key)
            for regions in block_groups(
                shape, layout.output_chunks, 3 * executor.n_workers if not inline else 10**9
            ):
                relabel_tasks.append(
                    Task(
                        iter_relabel, (src, dst, regions, table, offsets, axis), weight=len(regions)
                    )
                )
            yield ProgressEvent(f"link:{plane}", ci + 1, len(classes))
        yield from passes.run(relabel_tasks, f"write:{plane}" if len(planes) > 1 else "write")
        if len(planes) == 1:
            n_objects = {c.name: plane_counts[(plane, c.key)] for c in classes}

    # 4. ortho-plane consensus ------------------------------------------------------------
    if len(planes) > 1:
        groups = block_groups(
            shape, layout.output_chunks, 3 * executor.n_workers if not inline else 10**9
        )
        for c in classes:
            views = tuple(_ref(store, "plane", p, c.key) for p in planes)
            dst = _ref(store, "output", None, c.key)
            if c.kind == "instance":
                max_id = max(plane_counts[(p, c.key)] for p in planes)
                tables = yield from passes.run(
                    [
                        Task(iter_consensus_table, (views, g, shape, max_id), weight=len(g))
                        for g in groups
                    ],
                    f"consensus:{c.name}",
                )
                table = TripleTable(shape, max_id)
                for t in tables:
                    table.merge(t)
                plan = plan_consensus(
                    table,
                    vote_threshold=config.vote_threshold,
                    permit_single_view=config.permit_single_view,
                    match_iou=config.consensus_iou,
                    min_size=config.min_size,
                    min_extent=config.min_extent,
                    max_objects=div - 1,
                    class_name=f"{c.name} objects",
                )
                n_objects[c.name] = plan.n_objects
            else:
                plan = None
                n_objects[c.name] = int(any(plane_counts[(p, c.key)] for p in planes))
            yield from passes.run(
                [
                    Task(
                        iter_consensus_write,
                        (views, dst, g, plan, config.vote_threshold),
                        weight=len(g),
                    )
                    for g in groups
                ],
                f"write:{c.name}",
            )
        for plane in layout.panoptic_planes:
            parts = [
                (_ref(store, "plane", plane, c.key), c.id, c.kind == "instance") for c in classes
            ]
            dst = _ref(store, "panoptic", plane, "")
            yield from passes.run(
                [Task(iter_panoptic, (parts, dst, g, div), weight=len(g)) for g in groups],
                f"panoptic:{plane}",
            )

    labels = {c.name: store.output(c.key) for c in classes} if not zarr_store else {}
    panoptic = {p: store.panoptic(p) for p in layout.panoptic_planes} if not zarr_store else {}
    return VolumeResult(
        labels=labels,
        panoptic=panoptic,
        classes=classes,
        n_objects=n_objects,
        store=store.path if zarr_store else None,
        config=config,
    )


def _join_borders(
    slabs: dict[int, SlabResult], joined: set[int], index: int, classes: tuple[ClassInfo, ...]
) -> None:
    """Overlaps across the borders of slab ``index`` with its neighbours, once both exist.

    The border slices kept in each result are dropped as soon as they are used, so the
    client holds at most a few slices per unfinished border, whatever the volume.
    """
    for k in (index, index + 1):  # border k: between slab k-1 and slab k
        if k in joined or k - 1 not in slabs or k not in slabs:
            continue
        before, after = slabs[k - 1], slabs[k]
        for c in classes:
            a, b = before.classes[c.key], after.classes[c.key]
            if c.kind == "instance" and a.last is not None and b.first is not None:
                b.overlaps[0] = overlap_pairs(a.last, b.first)
        joined.add(k)
    for j in (index - 1, index, index + 1):
        if j not in slabs:
            continue
        for c in classes:
            sc = slabs[j].classes[c.key]
            if j == 0 or j in joined:
                sc.first = None
            if j + 1 in joined:
                sc.last = None


def segment_volume(
    volume: Any,
    model: Any,
    config: Inference3DConfig | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    **kwargs: Any,
) -> VolumeResult:
    """Run :func:`iter_segment_volume` to the end (same arguments)."""
    return drain(
        iter_segment_volume(volume, model, config, cancel=cancel, **kwargs), progress, cancel
    )
