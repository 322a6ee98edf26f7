"""Pick patches of an image or volume to annotate for training.

:func:`pick_patches` (work generator :func:`iter_pick_patches`) cuts square patches
out of a 2D image, a stack of unrelated 2D images, or a volume:

* **2D images and stacks** give patches ``(N, P, P)``;
* **volumes** give *flipbooks* ``(N, 5, P, P)``: five consecutive planes along the
  chosen axis (``xy``, ``xz``, ``yz``, or ``any`` of them per flipbook for nearly
  isotropic data); the middle one (index 2) is the one to annotate. A volume needs at
  least 5 planes along that axis.

Each patch comes with a labels patch: zeros (uint32) to paint, or, when a labels array
is given (*paired* mode), the same crop of those labels. Where patches come from:

1. **points** (in level-0 array coordinates): each point gives a patch centred on it,
   shifted to stay inside the image (and, for flipbooks, a middle plane at least two
   planes from either end); with ``pick_all_points`` every point gives one;
2. **random** patches make up the rest. Their positions are blue noise
   (:func:`tamale.patching.poisson_disk_positions`): well spread, never duplicated,
   and never overlapping each other, a point's patch, or a region listed in
   ``exclude`` (e.g. ``stored_regions(dataset, source)``: the patches already stored
   in a training set), so a second round never re-picks annotated areas. A random
   flipbook keeps all five of its planes away from excluded planes.

Every patch gets a :class:`~tamale.datasets.PatchProvenance` (source, kind, axis,
middle plane, box, level, source shape), which is what storing it needs. Randomness
comes from one seed, drawn and recorded when not given. Only the crops are read, so
large numpy, dask, zarr or memory-mapped arrays, and multiscale pyramids (a list of
arrays, level ``k`` typically downsampled ``2**k``), work without loading them.
"""

from __future__ import annotations

import itertools
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field

from tamale.config import Config
from tamale.datasets.regions import PLANE_AXES, Box, boxes_intersect, plane_axes, region_of
from tamale.datasets.store import PatchProvenance
from tamale.errors import TamaleInputError
from tamale.patching import poisson_disk_positions
from tamale.progress import CancelToken, ProgressEvent, Work, check, drain

__all__ = [
    "FLIPBOOK_DEPTH",
    "FLIPBOOK_MIDDLE",
    "PickConfig",
    "PickResult",
    "iter_pick_patches",
    "pick_patches",
]

FLIPBOOK_DEPTH = 5
"""Planes in a flipbook."""
FLIPBOOK_MIDDLE = 2
"""Index of the plane to annotate in a flipbook."""

Axis = Literal["xy", "xz", "yz", "any"]


class PickConfig(Config):
    """Parameters of :func:`pick_patches` (and of the "Pick training patches" dock)."""

    n_patches: int = Field(default=16, ge=1, le=10_000)
    """Number of patches to pick. Points are used first and random patches make up the
    rest. Ignored when pick_all_points is set."""
    patch_size: int = Field(default=256, ge=8, le=100_000)
    """Side of the square patches, in pixels of the chosen multiscale level."""
    level: int = Field(default=0, ge=0, le=16)
    """Multiscale level to read (level k is usually downsampled 2**k); 0 for plain images."""
    pick_all_points: bool = False
    """One patch per point (every unused point), whatever the number of patches."""
    axis: Axis = "xy"
    """Plane of the flipbooks of a volume: xy, xz, yz, or any of them chosen at random per
    flipbook (only for nearly isotropic voxels). 2D images and stacks use xy."""
    stack: bool = False
    """The 3D image is a stack of unrelated 2D images (e.g. a folder opened as one
    layer): pick 2D patches from its planes instead of flipbooks."""
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    """Seed of the random choices; empty: a new seed, recorded in the result."""


@dataclass
class PickResult:
    """Picked patches, their labels and where they came from.

    Attributes
    ----------
    images : ndarray
        ``(N, P, P)`` patches or ``(N, 5, P, P)`` flipbooks, in the image's dtype.
    labels : ndarray of uint32
        Same shape: zeros, or the crops of the paired labels.
    provenance : list of PatchProvenance
        One record per patch (flipbooks: their middle plane).
    kind : {"patch", "flipbook"}
    source : str
        Name of the source (layer or file) recorded in the provenance.
    seed : int
        The seed used (drawn if the config had none).
    config : PickConfig
        The parameters, with the seed filled in.
    points_used : ndarray of int
        Indices (into the points given) of the points patches ``0 .. len - 1`` came from.
    """

    images: np.ndarray
    labels: np.ndarray
    provenance: list[PatchProvenance]
    kind: Literal["patch", "flipbook"]
    source: str
    seed: int
    config: PickConfig
    points_used: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.provenance)

    @property
    def n_from_points(self) -> int:
        """How many patches (the first ones) came from points."""
        return len(self.points_used)

    @property
    def middle(self) -> tuple[np.ndarray, np.ndarray]:
        """The patches to annotate and their labels: flipbooks' middle planes, else all."""
        if self.kind == "flipbook":
            return self.images[:, FLIPBOOK_MIDDLE], self.labels[:, FLIPBOOK_MIDDLE]
        return self.images, self.labels


# ------------------------------------------------------------------ geometry
@dataclass(frozen=True)
class _Plan:
    """One patch to cut: plane axis, middle plane, top-left (rows, cols)."""

    axis: str | None
    plane: int | None
    row: int
    col: int


@dataclass(frozen=True)
class _Geometry:
    shape: tuple[int, ...]
    mode: Literal["image", "stack", "volume"]
    size: int

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def depth(self) -> int:
        return FLIPBOOK_DEPTH if self.mode == "volume" else 1

    def footprint_size(self, axis: str | None) -> tuple[int, ...]:
        normal, rows, cols = plane_axes(axis, self.ndim)
        size = [0] * self.ndim
        size[rows] = size[cols] = self.size
        if normal is not None:
            size[normal] = self.depth
        return tuple(size)

    def footprint(self, plan: _Plan) -> Box:
        """Everything the patch reads (all five planes of a flipbook)."""
        normal, rows, cols = plane_axes(plan.axis, self.ndim)
        lo = [0] * self.ndim
        lo[rows], lo[cols] = plan.row, plan.col
        if normal is not None:
            lo[normal] = plan.plane - (FLIPBOOK_MIDDLE if self.mode == "volume" else 0)
        size = self.footprint_size(plan.axis)
        return Box(tuple(lo), tuple(a + s for a, s in zip(lo, size)))

    def plan_from_start(self, axis: str | None, start: Sequence[int]) -> _Plan:
        normal, rows, cols = plane_axes(axis, self.ndim)
        plane = None
        if normal is not None:
            plane = int(start[normal]) + (FLIPBOOK_MIDDLE if self.mode == "volume" else 0)
        return _Plan(axis, plane, int(start[rows]), int(start[cols]))

    def axis_problem(self, axis: str | None) -> str | None:
        """Why patches cannot be cut in this plane, or None."""
        normal, rows, cols = plane_axes(axis, self.ndim)
        name = {"image": "image", "stack": "stack's images", "volume": f"{axis} planes"}[self.mode]
        if self.shape[rows] < self.size or self.shape[cols] < self.size:
            return (
                f"the patch size ({self.size} px) is larger than the {name} "
                f"({self.shape[rows]} x {self.shape[cols]} px)"
            )
        if self.mode == "volume" and self.shape[normal] < FLIPBOOK_DEPTH:
            return (
                f"the volume has {self.shape[normal]} planes along the {axis} normal; flipbooks "
                f"need at least {FLIPBOOK_DEPTH}"
            )
        return None


def _levels(image: Any) -> list[Any]:
    levels = list(image) if isinstance(image, (list, tuple)) else [image]
    if not levels:
        raise TamaleInputError("the image has no multiscale levels")
    for i, lv in enumerate(levels):
        if not hasattr(lv, "shape") or not hasattr(lv, "__getitem__"):
            raise TamaleInputError(f"multiscale level {i} is not an array")
    return levels


def _read(array: Any, box: Box) -> np.ndarray:
    block = array[box.slices]
    if hasattr(block, "compute"):
        block = block.compute()
    return np.asarray(block)


def _as_labels(block: np.ndarray, i: int) -> np.ndarray:
    if block.dtype.kind == "b":
        return block.astype(np.uint32)
    if block.dtype.kind not in "iu":
        raise TamaleInputError(
            f"the paired labels are {block.dtype}, not integers: use a labels layer"
        )
    if block.dtype.kind == "i" and block.size and block.min() < 0:
        raise TamaleInputError(f"the paired labels of patch {i} hold negative values")
    if block.size and int(block.max()) > np.iinfo(np.uint32).max:
        raise TamaleInputError(f"the paired labels of patch {i} exceed the uint32 range")
    return block.astype(np.uint32, copy=False)


def _check_labels(image_levels: list[Any], labels: Any, level: int) -> Any:
    label_levels = list(labels) if isinstance(labels, (list, tuple)) else [labels]
    image_shapes = [tuple(int(s) for s in lv.shape) for lv in image_levels]
    label_shapes = [tuple(int(s) for s in np.shape(lv)) for lv in label_levels]
    if len(label_levels) != len(image_levels):
        raise TamaleInputError(
            f"the paired labels have {len(label_levels)} multiscale level(s) but the image has "
            f"{len(image_levels)}: pair labels with the same multiscale structure"
        )
    if label_shapes != image_shapes:
        raise TamaleInputError(
            f"the paired labels (shape {' / '.join(map(str, label_shapes))}) do not match the "
            f"image (shape {' / '.join(map(str, image_shapes))}): pair an image with its own "
            "labels"
        )
    return label_levels[level]


# ------------------------------------------------------------------ points
def _point_plans(
    geo: _Geometry,
    points: np.ndarray,
    level0_shape: tuple[int, ...],
    axes: list[str | None],
    rng: np.random.Generator,
) -> list[_Plan]:
    ratio = np.asarray(geo.shape, float) / np.asarray(level0_shape, float)
    idx = np.floor((points + 0.5) * ratio).astype(np.int64)
    idx = np.minimum(np.maximum(idx, 0), np.asarray(geo.shape) - 1)
    plans = []
    half = geo.size // 2
    for p in idx:
        axis = axes[int(rng.integers(len(axes)))] if len(axes) > 1 else axes[0]
        normal, rows, cols = plane_axes(axis, geo.ndim)
        plane = None
        if normal is not None:
            plane = int(p[normal])
            if geo.mode == "volume":
                plane = min(max(plane, FLIPBOOK_MIDDLE), geo.shape[normal] - 1 - FLIPBOOK_MIDDLE)
        row = min(max(int(p[rows]) - half, 0), geo.shape[rows] - geo.size)
        col = min(max(int(p[cols]) - half, 0), geo.shape[cols] - geo.size)
        plans.append(_Plan(axis, plane, row, col))
    return plans


def _check_points(points: Any, level0_shape: tuple[int, ...]) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    ndim = len(level0_shape)
    if pts.size == 0:
        return np.zeros((0, ndim))
    if pts.ndim != 2 or pts.shape[1] != ndim:
        raise TamaleInputError(
            f"points must be an (N, {ndim}) array of coordinates for this {ndim}D image, got "
            f"shape {pts.shape}"
        )
    if not np.all(np.isfinite(pts)):
        raise TamaleInputError("some points have non-finite coordinates")
    pix = np.floor(pts + 0.5)
    outside = np.flatnonzero(np.any((pix < 0) | (pix >= np.asarray(level0_shape)), axis=1))
    if len(outside):
        shown = ", ".join(f"#{i} at ({', '.join(f'{v:.1f}' for v in pts[i])})" for i in outside[:5])
        more = f" and {len(outside) - 5} more" if len(outside) > 5 else ""
        raise TamaleInputError(
            f"{len(outside)} point(s) lie outside the image (shape {level0_shape}): {shown}{more}. "
            "Move or delete them (points are numbered from 0)."
        )
    return pts


# ------------------------------------------------------------------ random
_SPREAD_TARGET = 64
"""Draw about max(4 n, this) candidate positions, so a random choice among them is
spread over the whole image however large it is."""
_MAX_SEEDS = 1_000_000
"""Largest blue-noise seed lattice drawn (bounds time and memory on huge volumes)."""
_MAX_GRID = 200_000
"""Largest grid of disjoint footprints tried when blue noise finds too few."""


def _expected(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """About how many Poisson-disk positions ``spacing`` apart fit (saturating per axis)."""
    return 0.4 * math.prod(max(1.0, n / d) for n, d in zip(shape, spacing))


def _seeds(shape: Sequence[int], spacing: Sequence[float]) -> float:
    return math.prod(n / max(1.0, d / 2) + 2 for n, d in zip(shape, spacing))


def _pool(
    geo: _Geometry,
    axis: str | None,
    blocked: list[Box],
    n_wanted: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Blue-noise footprint starts in one plane orientation avoiding ``blocked``.

    Positions are at least one footprint apart (so never overlap), and farther apart on
    large images: about ``max(4 n, 64)`` of them cover the whole image. When blocked
    regions leave too few, the spacing shrinks down to one footprint, and then a
    shifted grid (the densest packing) is tried.
    """
    size = geo.footprint_size(axis)
    hi = [n - s for n, s in zip(geo.shape, size)]

    def valid(pts: np.ndarray) -> np.ndarray:
        return ~boxes_intersect(pts, size, blocked)

    target = max(4 * n_wanted, _SPREAD_TARGET)
    spread = 1.0
    while _expected(geo.shape, [f * spread for f in size]) > target:
        spread *= 1.25
    pos = np.zeros((0, geo.ndim), dtype=np.int64)
    while True:
        spacing = [max(f, round(f * spread)) for f in size]
        if _seeds(geo.shape, spacing) > _MAX_SEEDS:
            break
        pos = poisson_disk_positions([0] * geo.ndim, hi, spacing, rng, valid=valid)
        if len(pos) >= n_wanted or spread == 1.0:
            break
        spread = max(1.0, spread / 4)  # the blocked regions took too much room
    if len(pos) < n_wanted and math.prod(n // f for n, f in zip(geo.shape, size)) <= _MAX_GRID:
        grid = _grid_starts(geo.shape, size, valid, rng)  # a grid packs more than blue noise
        if len(grid) > len(pos):
            pos = grid
    return pos


def _grid_starts(
    shape: Sequence[int],
    size: Sequence[int],
    valid: Any,
    rng: np.random.Generator,
    tries: int = 32,
) -> np.ndarray:
    """Valid starts of the densest grid of disjoint footprints, over several grid shifts."""
    slack = [n - (n // s) * s for n, s in zip(shape, size)]
    if math.prod(k + 1 for k in slack) <= tries:
        shifts = list(itertools.product(*(range(k + 1) for k in slack)))
    else:
        shifts = [tuple(int(rng.integers(k + 1)) for k in slack) for _ in range(tries)]
    best = np.zeros((0, len(shape)), dtype=np.int64)
    for shift in shifts:
        ticks = [o + s * np.arange(n // s, dtype=np.int64) for o, n, s in zip(shift, shape, size)]
        grid = np.stack(np.meshgrid(*ticks, indexing="ij"), axis=-1).reshape(-1, len(shape))
        grid = grid[valid(grid)]
        if len(grid) > len(best):
            best = grid
    return best


def _random_plans(
    geo: _Geometry,
    axes: list[str | None],
    n: int,
    blocked: list[Box],
    rng: np.random.Generator,
) -> list[_Plan]:
    if n <= 0:
        return []
    pools = {axis: _pool(geo, axis, blocked, n, rng) for axis in axes}
    sizes = {axis: geo.footprint_size(axis) for axis in axes}
    plans: list[_Plan] = []
    while len(plans) < n:
        alive = [a for a in axes if len(pools[a])]
        if not alive:
            break
        axis = alive[int(rng.integers(len(alive)))]
        pick = pools[axis][int(rng.integers(len(pools[axis])))]
        plan = geo.plan_from_start(axis, pick)
        plans.append(plan)
        taken = [geo.footprint(plan)]
        for a in axes:  # positions of one pool never overlap; across pools they may
            pools[a] = pools[a][~boxes_intersect(pools[a], sizes[a], taken)]
    if len(plans) < n:
        raise TamaleInputError(
            f"found room for only {len(plans)} more non-overlapping random patches of "
            f"{geo.size} px (outside the stored regions and the points' patches), but "
            f"{n} are needed: ask for fewer patches, use a smaller patch size, or place points"
        )
    return plans


# ------------------------------------------------------------------ main
def iter_pick_patches(
    image: Any,
    config: PickConfig | None = None,
    *,
    points: Any = None,
    labels: Any = None,
    exclude: Sequence[PatchProvenance] = (),
    source: str = "image",
    cancel: CancelToken | None = None,
) -> Work[PickResult]:
    """Pick patches (or flipbooks) to annotate (work generator).

    Parameters
    ----------
    image : array-like or list of array-like
        A 2D image (YX), a 2D stack or a volume (ZYX): numpy, dask, zarr or anything
        sliceable; a list is a multiscale pyramid (level 0 first).
    config : PickConfig, optional
        The parameters (default ``PickConfig()``).
    points : array-like, optional
        ``(K, ndim)`` positions in level-0 array coordinates (napari data
        coordinates). Used in order: the first ``n_patches`` (all with
        ``pick_all_points``).
    labels : array-like or list of array-like, optional
        Paired labels with exactly the image's shape (and multiscale structure): the
        labels patches are their crops instead of zeros.
    exclude : sequence of PatchProvenance
        Regions random patches must not touch (e.g. :func:`stored_regions`).
    source : str
        Source name recorded in the provenance (the layer or file name).
    cancel : CancelToken, optional
        Checked between patches.

    Returns
    -------
    PickResult
    """
    cfg = config if config is not None else PickConfig()
    levels = _levels(image)
    if not 0 <= cfg.level < len(levels):
        raise TamaleInputError(
            f"the image has {len(levels)} multiscale level(s); level {cfg.level} does not exist"
            + ("" if len(levels) > 1 else " (it is not multiscale: use level 0)")
        )
    array = levels[cfg.level]
    shape = tuple(int(s) for s in array.shape)
    level0_shape = tuple(int(s) for s in levels[0].shape)
    if len(shape) not in (2, 3) or len(level0_shape) != len(shape):
        raise TamaleInputError(
            f"expected a 2D image or a 3D stack/volume (one channel), got shape {shape}"
        )
    mode: Literal["image", "stack", "volume"] = (
        "image" if len(shape) == 2 else "stack" if cfg.stack else "volume"
    )
    geo = _Geometry(shape, mode, cfg.patch_size)
    label_array = _check_labels(levels, labels, cfg.level) if labels is not None else None

    if mode == "volume":
        wanted = list(PLANE_AXES) if cfg.axis == "any" else [cfg.axis]
        problems = {a: geo.axis_problem(a) for a in wanted}
        axes: list[str | None] = [a for a in wanted if problems[a] is None]
        if not axes:
            detail = "; ".join(p for p in problems.values() if p)
            hint = " (or tick 'image is a 2D stack' if the planes are unrelated images)"
            raise TamaleInputError(f"cannot pick flipbooks: {detail}{hint}")
    else:
        if cfg.axis != "xy":
            raise TamaleInputError(
                f"a {'2D image' if mode == 'image' else 'stack of 2D images'} has only xy "
                f"patches; axis {cfg.axis!r} is for volumes"
            )
        problem = geo.axis_problem(None if mode == "image" else "xy")
        if problem:
            raise TamaleInputError(f"cannot pick patches: {problem}")
        axes = [None if mode == "image" else "xy"]

    pts = _check_points(points, level0_shape) if points is not None else np.zeros((0, len(shape)))
    if cfg.pick_all_points:
        if len(pts) == 0:
            raise TamaleInputError(
                "'pick all points' needs points: choose a points layer with at least one "
                "(unused) point, or untick 'pick all points'"
            )
        n_total = len(pts)
    else:
        n_total = cfg.n_patches
    used = np.arange(min(len(pts), n_total), dtype=np.int64)

    seed = cfg.seed if cfg.seed is not None else secrets.randbits(31)
    cfg = cfg.model_copy(update={"seed": seed})
    rng = np.random.default_rng(seed)

    yield ProgressEvent("pick:positions", 0, None, message="choosing positions")
    plans = _point_plans(geo, pts[used], level0_shape, axes, rng)
    blocked = [b for r in exclude if (b := region_of(r, shape, cfg.level)) is not None]
    blocked += [geo.footprint(p) for p in plans]
    check(cancel)
    plans += _random_plans(geo, axes, n_total - len(plans), blocked, rng)

    kind: Literal["patch", "flipbook"] = "flipbook" if mode == "volume" else "patch"
    out_shape = (len(plans), *((FLIPBOOK_DEPTH,) if kind == "flipbook" else ()), geo.size, geo.size)
    images = np.zeros(out_shape, dtype=np.dtype(array.dtype))
    out_labels = np.zeros(out_shape, dtype=np.uint32)
    records: list[PatchProvenance] = []
    for i, plan in enumerate(plans):
        check(cancel)
        box = geo.footprint(plan)
        normal, _, _ = plane_axes(plan.axis, geo.ndim)
        block = _read(array, box)
        if mode == "volume":
            block = np.moveaxis(block, normal, 0)
        elif mode == "stack":
            block = block[0]
        images[i] = block
        if label_array is not None:
            lab = _read(label_array, box)
            lab = np.moveaxis(lab, normal, 0) if mode == "volume" else lab.reshape(block.shape)
            out_labels[i] = _as_labels(lab, i)
        records.append(
            PatchProvenance(
                source_layer=source,
                kind=kind,
                axis=plan.axis if mode == "volume" else None,
                plane=plan.plane,
                box=[(plan.row, plan.row + geo.size), (plan.col, plan.col + geo.size)],
                level=cfg.level,
                source_shape=list(shape),
            )
        )
        yield ProgressEvent("pick", i + 1, len(plans), message=f"read patch {i + 1}")
    return PickResult(
        images=images,
        labels=out_labels,
        provenance=records,
        kind=kind,
        source=source,
        seed=seed,
        config=cfg,
        points_used=used,
    )


def pick_patches(
    image: Any,
    config: PickConfig | None = None,
    *,
    points: Any = None,
    labels: Any = None,
    exclude: Sequence[PatchProvenance] = (),
    source: str = "image",
    progress=None,
    cancel: CancelToken | None = None,
) -> PickResult:
    """Pick patches (or flipbooks) to annotate; see :func:`iter_pick_patches`."""
    return drain(
        iter_pick_patches(
            image,
            config,
            points=points,
            labels=labels,
            exclude=exclude,
            source=source,
            cancel=cancel,
        ),
        progress,
        cancel,
    )
