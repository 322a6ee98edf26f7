"""Where a 3D run keeps its work and its results: an OME-Zarr directory or memory.

Layout of an output store (zarr v3, OME-Zarr 0.5 metadata)::

    OUT.zarr/
      zarr.json                 attributes["tamale"]: status, model, parameters,
                                input, voxel size, classes, outputs
      labels/
        zarr.json               attributes["ome"]["labels"]: the label images
        <class>/                one OME-Zarr label image per class
          zarr.json             ome.multiscales (axes z, y, x; scale = voxel size),
                                ome.image-label
          0/                    uint32 (Z, Y, X), objects 1..N, chunked
        panoptic_xy/ ...        optional per-plane panoptic stacks (ortho-plane)
      _work/                    only while the run is incomplete:
        <plane>/pieces/<class>  piece images (uint32), written slab by slab
        <plane>/final/<class>   per-plane labels (ortho-plane)
        <plane>/slabs/*.npz     one file per finished slab (resume)

``attributes["tamale"]["status"]`` is ``"incomplete"`` from the moment the
store is created until the last array is written, then ``"complete"``; a
cancelled, failed or killed run leaves an incomplete store that a run with
``if_exists="resume"`` finishes (finished slabs are not recomputed).

An existing path is never overwritten silently: ``if_exists`` must say
``"overwrite"`` (only a tamale store or an empty directory is ever removed)
or ``"resume"``; :func:`free_store_path` proposes a new name.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tamale import __version__
from tamale.errors import TamaleInputError
from tamale.inference.slabs import SlabResult, work_array_path
from tamale.inference.slice_model import ClassInfo

__all__ = [
    "FORMAT",
    "IfExists",
    "MemoryStore",
    "RunLayout",
    "ZarrStore",
    "free_store_path",
    "is_tamale_store",
    "open_run_store",
    "read_store_info",
]

FORMAT = "tamale-volume-segmentation"
FORMAT_VERSION = 1
IfExists = Literal["error", "overwrite", "resume"]


@dataclass(frozen=True)
class RunLayout:
    """Shapes and chunking of a run's arrays."""

    shape: tuple[int, int, int]
    chunks: tuple[int, int, int]
    planes: tuple[str, ...]
    classes: tuple[ClassInfo, ...]
    align: int
    panoptic_planes: tuple[str, ...] = ()

    def work_chunks(self, plane: str) -> tuple[int, int, int]:
        """Chunks of a plane's piece array: ``align`` slices thick, output chunks across."""
        from tamale.inference.slabs import PLANE_AXIS

        c = list(self.output_chunks)
        c[PLANE_AXIS[plane]] = self.align
        return tuple(min(a, s) for a, s in zip(c, self.shape))  # type: ignore[return-value]

    def work_shards(self, plane: str) -> tuple[int, int, int]:
        """Shards of a plane's piece array: ``align`` whole slices per file.

        A slab writes its slices as whole shards (no read-modify-write, no buffering of
        more than ``align`` slices), and reading a block back touches one inner chunk
        per shard.
        """
        from tamale.inference.slabs import PLANE_AXIS

        axis = PLANE_AXIS[plane]
        chunks = self.work_chunks(plane)
        return tuple(
            c if i == axis else -(-s // c) * c for i, (c, s) in enumerate(zip(chunks, self.shape))
        )  # type: ignore[return-value]

    @property
    def output_chunks(self) -> tuple[int, int, int]:
        return tuple(min(a, s) for a, s in zip(self.chunks, self.shape))  # type: ignore[return-value]


def read_store_info(path: str | Path) -> dict[str, Any] | None:
    """The ``tamale`` attributes of a store, or None if ``path`` is not a tamale store."""
    path = Path(path)
    meta = path / "zarr.json"
    if not meta.is_file():
        return None
    import json

    try:
        attrs = json.loads(meta.read_text(encoding="utf-8")).get("attributes", {})
    except (OSError, ValueError):
        return None
    info = attrs.get("tamale")
    if isinstance(info, dict) and info.get("format") == FORMAT:
        return info
    return None


def is_tamale_store(path: str | Path) -> bool:
    """Whether ``path`` is an output store written by tamale's 3D inference."""
    return read_store_info(path) is not None


def free_store_path(path: str | Path) -> Path:
    """``path`` if it does not exist, else the first free ``name-2.zarr``, ``name-3.zarr``..."""
    path = Path(path)
    if not path.exists():
        return path
    stem, suffix = path.stem, path.suffix
    k = 2
    while True:
        candidate = path.with_name(f"{stem}-{k}{suffix}")
        if not candidate.exists():
            return candidate
        k += 1


def _check_writable(path: Path) -> None:
    parent = path.parent
    probe_dir = parent
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir() or not os.access(probe_dir, os.W_OK | os.X_OK):
        raise TamaleInputError(f"cannot write the output {path}: {probe_dir} is not writable")


def _ome_label_attrs(name: str, voxel_size: tuple[float, ...] | None, unit: str | None) -> dict:
    axes = []
    for ax in ("z", "y", "x"):
        entry: dict[str, Any] = {"name": ax, "type": "space"}
        if unit:
            entry["unit"] = unit
        axes.append(entry)
    scale = [float(v) for v in voxel_size] if voxel_size else [1.0, 1.0, 1.0]
    return {
        "ome": {
            "version": "0.5",
            "multiscales": [
                {
                    "name": name,
                    "axes": axes,
                    "datasets": [
                        {
                            "path": "0",
                            "coordinateTransformations": [{"type": "scale", "scale": scale}],
                        }
                    ],
                }
            ],
            "image-label": {"source": {"image": "../../"}},
        }
    }


class MemoryStore:
    """A run kept in memory (numpy arrays); no resume."""

    path: str | None = None

    def __init__(self, layout: RunLayout) -> None:
        self.layout = layout
        self._work: dict[tuple[str, str], np.ndarray] = {}
        self._final: dict[tuple[str, str], np.ndarray] = {}
        self._outputs: dict[str, np.ndarray] = {}
        for plane in layout.planes:
            for c in layout.classes:
                self._work[(plane, c.key)] = np.zeros(layout.shape, np.uint32)

    def work(self, plane: str, key: str) -> np.ndarray:
        return self._work[(plane, key)]

    def sink(self, plane: str) -> dict[str, np.ndarray]:
        """Writable piece arrays for in-process slab tasks."""
        return {c.key: self._work[(plane, c.key)] for c in self.layout.classes}

    def plane_labels(self, plane: str, key: str) -> np.ndarray:
        # ortho-plane: per-plane labels overwrite the pieces in place (blocks cover whole slices)
        return self._work[(plane, key)]

    def output(self, key: str) -> np.ndarray:
        if key not in self._outputs:
            if len(self.layout.planes) == 1:
                # stack: relabel the pieces in place, no second volume
                self._outputs[key] = self._work[(self.layout.planes[0], key)]
            else:
                self._outputs[key] = np.zeros(self.layout.shape, np.uint32)
        return self._outputs[key]

    def panoptic(self, plane: str) -> np.ndarray:
        name = f"panoptic_{plane}"
        if name not in self._outputs:
            self._outputs[name] = np.zeros(self.layout.shape, np.uint32)
        return self._outputs[name]

    def done_slabs(self, plane: str) -> dict[int, SlabResult]:
        return {}

    def in_place(self) -> bool:
        return True

    def finish(self, info: dict[str, Any]) -> None:
        self._work = {}

    def fail(self) -> None:
        self._work = {}


class ZarrStore:
    """A run written to an OME-Zarr directory (see module docstring)."""

    def __init__(self, path: Path, group: Any, layout: RunLayout, info: dict[str, Any]) -> None:
        self.path = str(path)
        self.group = group
        self.layout = layout
        self.info = info

    # -- arrays -------------------------------------------------------------------------
    def work(self, plane: str, key: str) -> Any:
        return self.group[work_array_path(plane, key)]

    def sink(self, plane: str) -> None:
        return None  # slab tasks open the work arrays themselves (also on other machines)

    def plane_labels(self, plane: str, key: str) -> Any:
        return self.group[f"_work/{plane}/final/{key}"]

    def output(self, key: str) -> Any:
        return self.group[f"labels/{key}/0"]

    def panoptic(self, plane: str) -> Any:
        return self.group[f"labels/panoptic_{plane}/0"]

    def in_place(self) -> bool:
        return False

    # -- progress -----------------------------------------------------------------------
    def done_slabs(self, plane: str) -> dict[int, SlabResult]:
        folder = Path(self.path) / "_work" / plane / "slabs"
        keys = [c.key for c in self.layout.classes]
        done = {}
        if folder.is_dir():
            for f in sorted(folder.glob("*.npz")):
                if f.name.endswith(".tmp.npz"):
                    continue
                try:
                    result = SlabResult.from_npz(f, plane, keys)
                except Exception:
                    continue  # a file cut short by a kill: that slab runs again
                done[result.index] = result
        return done

    def finish(self, info: dict[str, Any]) -> None:
        """Record the results, mark the store complete and remove the work arrays."""
        attrs = dict(self.group.attrs.get("tamale", {}))
        attrs.update(info)
        attrs["status"] = "complete"
        attrs["completed"] = _now()
        work = Path(self.path) / "_work"
        if work.is_dir():
            shutil.rmtree(work)
        self.group.attrs["tamale"] = attrs

    def fail(self) -> None:
        pass  # stays incomplete; resume finishes it


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _create_arrays(group: Any, layout: RunLayout, voxel_size: Any, unit: str | None) -> None:
    labels = group.require_group("labels")
    names = [c.key for c in layout.classes] + [f"panoptic_{p}" for p in layout.panoptic_planes]
    labels.attrs["ome"] = {"version": "0.5", "labels": names}
    for name in names:
        g = labels.require_group(name)
        g.attrs.update(_ome_label_attrs(name, voxel_size, unit))
        if "0" not in g:
            g.create_array(
                "0",
                shape=layout.shape,
                chunks=layout.output_chunks,
                dtype="uint32",
                fill_value=0,
                dimension_names=("z", "y", "x"),
            )
    for plane in layout.planes:
        for c in layout.classes:
            path = work_array_path(plane, c.key)
            if path not in group:
                group.create_array(
                    path,
                    shape=layout.shape,
                    chunks=layout.work_chunks(plane),
                    shards=layout.work_shards(plane),
                    dtype="uint32",
                    fill_value=0,
                )
            if len(layout.planes) > 1 and f"_work/{plane}/final/{c.key}" not in group:
                group.create_array(
                    f"_work/{plane}/final/{c.key}",
                    shape=layout.shape,
                    chunks=layout.output_chunks,
                    dtype="uint32",
                    fill_value=0,
                )


def open_run_store(
    out: str | Path | None,
    layout: RunLayout,
    *,
    if_exists: IfExists = "error",
    info: dict[str, Any],
    resume_keys: tuple[str, ...] = (),
    voxel_size: tuple[float, ...] | None = None,
    unit: str | None = None,
) -> MemoryStore | ZarrStore:
    """Create (or reopen, to resume) the store of a run.

    Parameters
    ----------
    out : path or None
        The zarr directory; None keeps everything in memory.
    layout : RunLayout
    if_exists : {"error", "overwrite", "resume"}
        What to do when ``out`` exists.
    info : dict
        Run metadata (JSON-compatible) recorded in the store's attributes.
    resume_keys : tuple of str
        Keys of ``info`` that must be equal to resume (model, parameters,
        input...); a difference is an error naming them.
    """
    if out is None:
        return MemoryStore(layout)
    import zarr

    path = Path(out).expanduser()
    if path.exists():
        existing = read_store_info(path)
        empty_dir = path.is_dir() and not any(path.iterdir())
        if empty_dir:
            pass
        elif if_exists == "error":
            raise FileExistsError(
                f"the output {path} already exists: choose another name, overwrite it, or "
                "resume it (if it is an unfinished run)"
            )
        elif existing is None:
            raise TamaleInputError(
                f"the output {path} exists and is not a tamale segmentation store; "
                "it is left untouched: choose another name"
            )
        elif if_exists == "overwrite":
            shutil.rmtree(path)
        elif if_exists == "resume":
            if existing.get("status") == "complete":
                raise TamaleInputError(
                    f"the run in {path} is already complete: nothing to resume "
                    "(open it, or overwrite it to run again)"
                )
            diffs = [k for k in resume_keys if existing.get(k) != info.get(k)]
            if diffs:
                raise TamaleInputError(
                    f"cannot resume {path}: it was started with different "
                    + ", ".join(diffs)
                    + "; use the same model, input and parameters, or overwrite it"
                )
            group = zarr.open_group(str(path), mode="r+")
            # outputs asked for only now (e.g. the panoptic stacks) are added
            _create_arrays(group, layout, voxel_size, unit)
            return ZarrStore(path, group, layout, existing)
        else:
            raise ValueError(
                f"if_exists must be 'error', 'overwrite' or 'resume', not {if_exists!r}"
            )
    elif if_exists == "resume":
        raise TamaleInputError(f"cannot resume {path}: it does not exist")
    _check_writable(path)
    try:
        group = zarr.open_group(str(path), mode="w")
    except OSError as exc:
        raise TamaleInputError(f"cannot write the output {path}: {exc}") from None
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tamale_version": __version__,
        "status": "incomplete",
        "created": _now(),
        **info,
    }
    group.attrs["tamale"] = record
    _create_arrays(group, layout, voxel_size, unit)
    return ZarrStore(path, group, layout, record)
