"""napari reader for the OME-Zarr stores written by tamale's 3D inference.

Dropping ``OUT.zarr`` on napari (or *File > Open Folder*) opens one labels layer
per class, plus the per-plane panoptic stacks when the store has them. Layers
are backed by the zarr arrays themselves: nothing is read until napari draws
it. The voxel size recorded in the store becomes the layers' scale. A store of
an unfinished run opens too, its layer names marked "(incomplete)".

Other zarr directories are left to other readers (the reader declines them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tamale.inference.volume_store import read_store_info

__all__ = ["get_reader", "read_segmentation"]

LayerData = tuple[Any, dict[str, Any], str]


def _one_path(path: str | list[str]) -> str | None:
    if isinstance(path, (list, tuple)):
        return str(path[0]) if len(path) == 1 else None
    return str(path)


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """The reader for ``path`` if it is a tamale segmentation store, else None."""
    single = _one_path(path)
    if single is None or read_store_info(single) is None:
        return None
    return read_segmentation


def read_segmentation(path: str | list[str]) -> list[LayerData]:
    """Labels layers (lazy, zarr-backed) for every class and panoptic stack of a store."""
    import zarr

    single = _one_path(path)
    if single is None:
        return []
    info = read_store_info(single) or {}
    group = zarr.open_group(single, mode="r")
    source = (info.get("input") or {}).get("name") or Path(single).stem
    suffix = "" if info.get("status") == "complete" else " (incomplete)"
    scale = info.get("voxel_size")
    meta = {"tamale": info, "store": single}
    layers: list[LayerData] = []
    for c in info.get("classes", []):
        key = f"labels/{c['key']}/0"
        if key not in group:
            continue
        kwargs: dict[str, Any] = {
            "name": f"{source}-{c['name']}-prediction{suffix}",
            "metadata": meta,
        }
        if scale:
            kwargs["scale"] = tuple(scale)
        layers.append((group[key], kwargs, "labels"))
    for plane in info.get("planes", []):
        key = f"labels/panoptic_{plane}/0"
        if key in group:
            kwargs = {"name": f"{source}-panoptic-stack-{plane}{suffix}", "metadata": meta}
            if scale:
                kwargs["scale"] = tuple(scale)
            layers.append((group[key], kwargs, "labels"))
    return layers
