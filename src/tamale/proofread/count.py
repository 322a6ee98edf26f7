"""Count objects per class under a label divisor.

Panoptic ids are ``class_id * label_divisor + instance``. Class names come as
text, one ``class_id,name`` per line; names may contain spaces and commas
after the first one. The result is a table (one row per class, or per image
and class when counting per plane) that can be written as CSV.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.progress import ProgressEvent, Throttle, Work, check, drain

from ._arrays import Region, count_blocks, iter_blocks

__all__ = ["CountRow", "CountTable", "count_labels", "iter_count_labels", "parse_class_names"]


def parse_class_names(text: str) -> dict[int, str]:
    """Parse ``class_id,name`` lines (blank lines and ``#`` comments skipped).

    Raises
    ------
    TamaleInputError
        A line without a comma, a class id that is not a whole number >= 0, an
        empty name, or a class listed twice.
    """
    names: dict[int, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "," not in line:
            raise TamaleInputError(
                f"class names line {number} ({line!r}) must look like 'class_id,name', "
                "e.g. '1,mitochondria'"
            )
        key, name = line.split(",", 1)
        try:
            class_id = int(key.strip())
        except ValueError:
            raise TamaleInputError(
                f"class names line {number}: {key.strip()!r} is not a class number"
            ) from None
        name = name.strip()
        if class_id < 0 or not name:
            raise TamaleInputError(
                f"class names line {number}: the class number must be >= 0 and the name not empty"
            )
        if class_id in names:
            raise TamaleInputError(f"class {class_id} is listed twice in the class names")
        names[class_id] = name
    return names


@dataclass(frozen=True)
class CountRow:
    """Objects of one class (in one image when counting per plane)."""

    class_id: int
    class_name: str
    count: int
    label_ids: tuple[int, ...]
    image: int | None = None


@dataclass(frozen=True)
class CountTable:
    """The result of :func:`iter_count_labels`."""

    rows: tuple[CountRow, ...]
    label_divisor: int

    @property
    def total(self) -> int:
        return sum(r.count for r in self.rows)

    def to_csv(self, path: str | Path | None = None, *, overwrite: bool = False) -> str:
        """The table as CSV text; also written to ``path`` when given.

        Columns: ``image`` (per-plane counts only), ``class_id``,
        ``class_name``, ``count``, ``label_ids`` (space-separated).
        """
        per_image = any(r.image is not None for r in self.rows)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        header = ["class_id", "class_name", "count", "label_ids"]
        writer.writerow((["image"] if per_image else []) + header)
        for r in self.rows:
            row = [r.class_id, r.class_name, r.count, " ".join(str(i) for i in r.label_ids)]
            writer.writerow(([r.image] if per_image else []) + row)
        text = buffer.getvalue()
        if path is not None:
            path = Path(path)
            if path.exists() and not overwrite:
                raise FileExistsError(
                    f"{path} already exists; choose another file name (nothing was written)"
                )
            path.write_text(text, encoding="utf-8")
        return text


def iter_count_labels(
    labels: Any,
    region: Region | None = None,
    *,
    label_divisor: int = 0,
    class_names: dict[int, str] | None = None,
    per_plane_axis: int | None = None,
    cancel: Any = None,
) -> Work[CountTable]:
    """Count the distinct objects of each class in ``region``.

    Parameters
    ----------
    labels : array
        numpy, zarr or dask labels.
    region : tuple, optional
        Current image, volume, or everything.
    label_divisor : int
        0: every id is one class (class 1, or the only class named). Otherwise
        ``class = id // label_divisor``.
    class_names : dict, optional
        Names per class id; classes found but not named are listed as
        ``class <n>``, named classes with no object as a row with count 0.
    per_plane_axis : int, optional
        Count each plane along this axis separately (a stack of 2D images).
    """
    if label_divisor < 0:
        raise TamaleInputError("the label divisor must be 0 (no classes) or positive")
    names = dict(class_names or {})
    found: dict[int | None, set[int]] = {}
    total = count_blocks(labels, region)
    throttle = Throttle()
    for step, (index, block) in enumerate(iter_blocks(labels, region), start=1):
        check(cancel)
        if per_plane_axis is None:
            items = [(None, block)]
        else:
            start = index[per_plane_axis].start
            items = [
                (start + i, np.take(block, i, axis=per_plane_axis))
                for i in range(block.shape[per_plane_axis])
            ]
        for plane, data in items:
            ids = np.unique(data)
            found.setdefault(plane, set()).update(int(i) for i in ids if i != 0)
        if throttle.ready() or step == total:
            yield ProgressEvent("count", step, total, "counting objects")
    planes = sorted(found, key=lambda p: -1 if p is None else p)
    if not planes:
        planes = [None] if per_plane_axis is None else []
    rows: list[CountRow] = []
    default_class = next(iter(names)) if (label_divisor == 0 and len(names) == 1) else 1
    for plane in planes:
        ids = np.array(sorted(found.get(plane, ())), dtype=np.int64)
        classes = ids // label_divisor if label_divisor else np.full(len(ids), default_class)
        class_ids = sorted(set(classes.tolist()) | set(names))
        if label_divisor == 0:
            class_ids = [default_class]
        for cls in class_ids:
            members = ids[classes == cls]
            rows.append(
                CountRow(
                    int(cls),
                    names.get(int(cls), f"class {cls}"),
                    len(members),
                    tuple(int(i) for i in members),
                    plane,
                )
            )
    return CountTable(tuple(rows), label_divisor)


def count_labels(labels, region=None, *, progress=None, cancel=None, **kwargs) -> CountTable:
    """Plain wrapper of :func:`iter_count_labels`."""
    return drain(iter_count_labels(labels, region, cancel=cancel, **kwargs), progress, cancel)
