"""Stratified patching: random patches whose positions are spread evenly.

Layout (per sample, per spatial axis, patch size ``ps`` and size ``s``):

* valid patch starts are ``0 .. s - ps``; the *region* ``g`` holds the starts in
  ``[g*ps, g*ps + ps)``, so a region's patches touch the pixel box ``[g*ps, g*ps + 2*ps - 1)``
  (the "sampling region of twice the patch size"); regions at the far edge are thin;
* the *cells* ``[g*ps, (g+1)*ps)`` (the patch-size grid from the origin) are what
  :meth:`StratifiedPatching.exclude_patches` removes: afterwards no returned patch
  overlaps an excluded cell. Inside a region, a start whose offset along an axis is 0
  touches one cell along that axis and any other offset touches two, so a region splits
  into ``2**ndim`` sub-boxes and an exclusion removes exactly the sub-boxes that touch it.

Sampling: regions (weighted by their number of selectable starts times their
probability, :meth:`StratifiedPatching.set_region_probs`) are laid end to end in raster
order on ``[0, W)``. Index ``i`` of ``n`` draws ``u = (i + U) * W / n`` with ``U`` uniform
in [0, 1) from ``(seed, epoch, i)``; ``u`` picks the region and the start inside it. Each
point of ``[0, W)`` belongs to exactly one index, so every selectable start is drawn
``n * p / W`` times per epoch in expectation (uniform sampling's first moment) while an
index always lands in the same small neighbourhood (stratification). With ``n`` about
``prod(shape / ps)``, the mean over pixels of the expected selections per epoch is 1.

Set-up and updates are O(number of regions) numpy work; a lookup is a binary search.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tamale.errors import TamaleInputError
from tamale.patching._random import uniforms
from tamale.patching._validate import (
    check_data_shapes,
    check_patch_size,
    check_probability,
    check_too_small,
)
from tamale.patching.specs import PatchSpecs, PatchSpecsBatch
from tamale.patching.strategy import SampleIndexedPatching

__all__ = ["StratifiedPatching", "grid_cells_overlapping"]


class _Table:
    """Sampling table of one sample; shared by the unmodified samples of one shape.

    Arrays run over all regions of the region grid (raster order); regions with
    weight 0 leave a flat step in ``cum`` that a lookup never lands on.
    """

    __slots__ = (
        "area",
        "areas",
        "cum",
        "cum_list",
        "cumsub",
        "excluded",
        "last",
        "n",
        "probs",
        "probs_grid",
        "scale",
        "total",
    )

    areas: np.ndarray  # (2**d, R) int64: selectable starts per sub-box, 0 when removed
    cumsub: np.ndarray  # (2**d, R) int64: cumulative sub-box areas
    area: np.ndarray  # (R,) int64: selectable starts per region
    probs: np.ndarray | None  # (R,) float64 region probabilities, None when all are 1
    probs_grid: np.ndarray | None  # the same on the region grid
    excluded: np.ndarray | None  # cell grid, bool
    cum: np.ndarray  # (R + 1,) float64 cumulative weights (area * probability)
    cum_list: list[float] | None  # the same as a list, built on first scalar lookup
    total: float
    last: int  # last region with weight > 0
    n: int
    scale: float  # total / n


def _bits(k: int, d: int) -> tuple[int, ...]:
    return tuple((k >> (d - 1 - i)) & 1 for i in range(d))


def _region_grid(shape: Sequence[int], ps: Sequence[int]) -> tuple[int, ...]:
    return tuple(max(s, p) // p for s, p in zip(shape, ps))


def _cell_grid(shape: Sequence[int], ps: Sequence[int]) -> tuple[int, ...]:
    return tuple(-(-s // p) for s, p in zip(shape, ps))


class _ShapeBase:
    """Geometry of one spatial shape: sub-box areas and region coordinates."""

    def __init__(self, shape: tuple[int, ...], ps: tuple[int, ...]) -> None:
        d = len(ps)
        self.shape = shape
        self.ps = ps
        self.rg = _region_grid(shape, ps)
        lens = []
        for s, p, g in zip(shape, ps, self.rg):
            idx = np.arange(g, dtype=np.int64)
            lens.append((np.ones(g, np.int64), np.clip(max(s, p) - p - idx * p, 0, p - 1)))
        n_sub = 2**d
        self.areas = np.empty((n_sub, math.prod(self.rg)), dtype=np.int64)
        for k in range(n_sub):
            bits = _bits(k, d)
            a = lens[0][bits[0]]
            for i in range(1, d):
                a = np.multiply.outer(a, lens[i][bits[i]])
            self.areas[k] = a.ravel()
        self.grid = np.stack(np.unravel_index(np.arange(self.areas.shape[1]), self.rg), 1)
        self.grid = self.grid.astype(np.int64)
        # sub-box k contains sub-box j's "touches" pattern when j <= k bitwise
        self.below = [[j for j in range(n_sub) if j & k == j] for k in range(n_sub)]

    def table(self) -> _Table:
        """The table of an unmodified sample."""
        t = _Table()
        t.areas = self.areas
        t.cumsub = np.cumsum(self.areas, axis=0)
        t.area = t.cumsub[-1]
        t.probs = t.probs_grid = t.excluded = None
        _finish(t, self)
        return t


def _own_copy(t: _Table) -> _Table:
    c = _Table()
    c.areas = t.areas.copy()
    c.cumsub = t.cumsub.copy()
    c.area = c.cumsub[-1]
    c.probs = None if t.probs is None else t.probs.copy()
    c.probs_grid = None if t.probs_grid is None else t.probs_grid.copy()
    c.excluded = None if t.excluded is None else t.excluded.copy()
    c.cum, c.total, c.last, c.n, c.scale = t.cum, t.total, t.last, t.n, t.scale
    c.cum_list = t.cum_list
    return c


def _apply_exclusion(t: _Table, base: _ShapeBase, cells: np.ndarray) -> None:
    """Remove the sub-boxes touching newly excluded ``cells`` (already set in t.excluded)."""
    assert t.excluded is not None
    d = len(base.rg)
    rg = np.asarray(base.rg)
    padded = np.zeros(tuple(g + 1 for g in base.rg), dtype=bool)
    common = tuple(slice(0, min(c, g + 1)) for c, g in zip(t.excluded.shape, base.rg))
    padded[common] = t.excluded[common]
    offsets = np.array([_bits(j, d) for j in range(2**d)], dtype=np.int64)
    near = (cells[:, None, :] - offsets[None]).reshape(-1, d)
    near = near[((near >= 0) & (near < rg)).all(axis=1)]
    if not len(near):
        return
    flat = np.unique(np.ravel_multi_index(tuple(near.T), base.rg))
    g = base.grid[flat]
    touched = [padded[tuple((g + offsets[j]).T)] for j in range(2**d)]
    for k in range(2**d):
        blocked = np.zeros(len(flat), dtype=bool)
        for j in base.below[k]:
            blocked |= touched[j]
        t.areas[k, flat] = np.where(blocked, 0, base.areas[k, flat])
    t.cumsub[:, flat] = np.cumsum(t.areas[:, flat], axis=0)


def _finish(t: _Table, base: _ShapeBase) -> None:
    """Weights, cumulative weights and the number of patches of a table."""
    weight = t.area.astype(np.float64)
    if t.probs is not None:
        weight *= t.probs
    t.cum = np.empty(len(weight) + 1)
    t.cum[0] = 0.0
    np.cumsum(weight, out=t.cum[1:])
    t.total = float(t.cum[-1])
    t.cum_list = None
    positive = np.flatnonzero(weight > 0)
    t.last = int(positive[-1]) if len(positive) else 0
    # number of patches: prod(shape / ps) minus (1 - p) per region minus excluded cells
    n_real = math.prod(base.shape) / math.prod(base.ps)
    ex_region = None
    if t.excluded is not None:
        n_real -= int(np.count_nonzero(t.excluded))
        ex_region = t.excluded[tuple(slice(0, g) for g in base.rg)]
    if t.probs_grid is not None:
        miss = 1.0 - t.probs_grid
        if ex_region is not None:
            miss = np.where(ex_region, 0.0, miss)
        n_real -= float(miss.sum())
    t.n = 0 if t.total <= 0 else max(1, math.ceil(n_real - 1e-9))
    t.scale = t.total / t.n if t.n else 0.0


def grid_cells_overlapping(
    coords: Sequence[int], size: Sequence[int], patch_size: Sequence[int]
) -> list[tuple[int, ...]]:
    """The patch-size grid cells that a box touches.

    Use it to exclude an arbitrary box (e.g. a patch already stored in a training
    set) from a :class:`StratifiedPatching`:
    ``strategy.exclude_patches(d, s, grid_cells_overlapping(start, size, ps))``.

    Parameters
    ----------
    coords : sequence of int
        Top-left(-front) corner of the box, (Z)YX. Negative parts are ignored.
    size : sequence of int
        Size of the box.
    patch_size : sequence of int
        The strategy's patch size (the grid spacing).

    Returns
    -------
    list of tuple of int
        Grid coordinates of every cell the box overlaps, in raster order.
    """
    if not len(coords) == len(size) == len(patch_size):
        raise TamaleInputError(
            f"coords {tuple(coords)}, size {tuple(size)} and patch_size "
            f"{tuple(patch_size)} must have the same number of axes"
        )
    ranges = []
    for c, s, p in zip(coords, size, patch_size):
        lo = max(int(c), 0) // int(p)
        hi = (int(c) + int(s) - 1) // int(p)
        if s < 1 or hi < lo:
            return []
        ranges.append(np.arange(lo, hi + 1))
    mesh = np.meshgrid(*ranges, indexing="ij")
    return [tuple(int(v) for v in row) for row in np.stack([m.ravel() for m in mesh], 1)]


class StratifiedPatching(SampleIndexedPatching):
    """Stratified random patches, with grid cells that can be excluded.

    Parameters
    ----------
    data_shapes : sequence of sequence of int
        Shapes of the image stacks, axes SC(Z)YX.
    patch_size : sequence of int
        Patch size per spatial axis, (Y, X) or (Z, Y, X).
    seed : int, optional
        Seed of the random draws. ``None`` draws one from the operating system (the
        drawn value is kept, so copies in DataLoader workers agree).
    allow_incomplete_patches : bool, default False
        When an image is smaller than the patch along an axis, use one start at 0
        along it (the extractor zero-pads) instead of raising.

    Notes
    -----
    The same ``(seed, epoch, index)`` always gives the same patch; :meth:`set_epoch`
    changes the draw. Index ``i`` returns a patch from the same few neighbouring
    regions in every epoch. Every selectable start is drawn ``n * p / W`` times per
    epoch in expectation (see :meth:`expected_start_counts`).
    """

    def __init__(
        self,
        data_shapes: Sequence[Sequence[int]],
        patch_size: Sequence[int],
        seed: int | None = None,
        *,
        allow_incomplete_patches: bool = False,
    ) -> None:
        ps = check_patch_size(patch_size)
        shapes = check_data_shapes(data_shapes, len(ps))
        check_too_small(shapes, ps, allow_incomplete_patches)
        super().__init__(shapes, seed)
        self._ps = ps
        self._allow_incomplete = bool(allow_incomplete_patches)
        # one table per distinct spatial shape; modified samples get their own
        self._shape_tables: dict[tuple[int, ...], _Table] = {}
        self._bases: dict[tuple[int, ...], _ShapeBase] = {}
        self._own_tables: dict[int, _Table] = {}
        counts = np.empty(len(self._gs_stack), dtype=np.int64)
        for d, shape in enumerate(shapes):
            spatial = shape[2:]
            if spatial not in self._shape_tables:
                self._bases[spatial] = _ShapeBase(spatial, ps)
                self._shape_tables[spatial] = self._bases[spatial].table()
            first, last = self._stack_first[d], self._stack_first[d + 1]
            counts[first:last] = self._shape_tables[spatial].n
        self._set_counts(counts)
        self._table_list: list[tuple[_Table, tuple[int, ...]]] = []
        shape_id: dict[tuple[int, ...], int] = {}
        for spatial, table in self._shape_tables.items():
            shape_id[spatial] = len(self._table_list)
            self._table_list.append((table, spatial))
        self._gs_table_id = np.asarray(
            [shape_id[shapes[d][2:]] for d in self._gs_stack], dtype=np.int64
        )
        self._gs_info = [
            (self._bases[sp], sp, int(d), int(s))
            for sp, d, s in zip(
                (shapes[d][2:] for d in self._gs_stack), self._gs_stack, self._gs_sample
            )
        ]

    # ------------------------------------------------------------------ helpers
    @property
    def patch_size(self) -> tuple[int, ...]:
        """Patch size per spatial axis."""
        return self._ps

    def _spatial(self, gs: int) -> tuple[int, ...]:
        return self._data_shapes[int(self._gs_stack[gs])][2:]

    def _table(self, gs: int) -> _Table:
        own = self._own_tables.get(gs)
        return own if own is not None else self._shape_tables[self._spatial(gs)]

    def _own_table(self, gs: int) -> _Table:
        own = self._own_tables.get(gs)
        if own is None:
            spatial = self._spatial(gs)
            own = self._own_tables[gs] = _own_copy(self._shape_tables[spatial])
            self._gs_table_id[gs] = len(self._table_list)
            self._table_list.append((own, spatial))
        return own

    def _update_count(self, gs: int, table: _Table) -> None:
        _finish(table, self._bases[self._spatial(gs)])
        counts = self._counts.copy()
        counts[gs] = table.n
        self._set_counts(counts)

    def region_grid_shape(self, data_idx: int) -> tuple[int, ...]:
        """Shape of the grid of sampling regions of stack ``data_idx``."""
        data_idx = self._check_data_idx(data_idx)
        return _region_grid(self._data_shapes[data_idx][2:], self._ps)

    def cell_grid_shape(self, data_idx: int) -> tuple[int, ...]:
        """Shape of the patch-size grid of cells that can be excluded (cells touching the image)."""
        data_idx = self._check_data_idx(data_idx)
        return _cell_grid(self._data_shapes[data_idx][2:], self._ps)

    # ------------------------------------------------------------------ mutation
    def exclude_patches(
        self, data_idx: int, sample_idx: int, grid_coords: Sequence[Sequence[int]]
    ) -> None:
        """Never return a patch that overlaps the given grid cells.

        Cell ``g`` is the pixel box ``[g * patch_size, (g + 1) * patch_size)`` of a grid
        anchored at the origin. The number of patches drops by one per newly excluded
        cell; excluding a cell twice changes nothing.

        Parameters
        ----------
        data_idx : int
            Image stack.
        sample_idx : int
            Sample of that stack.
        grid_coords : sequence of tuple of int
            Grid coordinates ((Z,)Y,X) of the cells to exclude, each in
            ``[0, cell_grid_shape(data_idx))``.
        """
        gs = self._global_sample(data_idx, sample_idx)
        cg = _cell_grid(self._spatial(gs), self._ps)
        coords = self._check_grid_coords(grid_coords, cg, "exclude_patches", "cell")
        if not len(coords):
            return
        table = self._own_table(gs)
        if table.excluded is None:
            table.excluded = np.zeros(cg, dtype=bool)
        new = np.unique(coords[~table.excluded[tuple(coords.T)]], axis=0)
        if len(new):
            table.excluded[tuple(new.T)] = True
            _apply_exclusion(table, self._bases[self._spatial(gs)], new)
        self._update_count(gs, table)

    def set_region_probs(
        self,
        data_idx: int,
        sample_idx: int,
        probs: Mapping[tuple[int, ...], float] | np.ndarray,
    ) -> None:
        """Set the relative probability of sampling regions (replaces earlier values).

        A region with probability ``p`` is drawn ``p`` times as often per start as a
        region with probability 1, and the number of patches drops by ``1 - p`` per
        region (so down-weighted background shortens the epoch).

        Parameters
        ----------
        data_idx : int
            Image stack.
        sample_idx : int
            Sample of that stack.
        probs : dict of tuple to float, or ndarray
            Probability in [0, 1] per region grid coordinate, or an array of shape
            ``region_grid_shape(data_idx)`` with one probability per region.
        """
        gs = self._global_sample(data_idx, sample_idx)
        rg = _region_grid(self._spatial(gs), self._ps)
        current = self._table(gs).probs_grid
        grid = np.ones(rg, dtype=np.float64) if current is None else current.copy()
        if isinstance(probs, np.ndarray):
            if probs.shape != rg:
                raise TamaleInputError(
                    f"set_region_probs: the probability array has shape {probs.shape} but "
                    f"the region grid of stack {data_idx} has shape {rg}"
                )
            values = probs.astype(np.float64)
            if not np.all((values >= 0) & (values <= 1)):
                raise TamaleInputError(
                    "set_region_probs: probabilities must be in [0, 1]; got values from "
                    f"{np.nanmin(values)} to {np.nanmax(values)}"
                )
            grid = values.copy()
        else:
            if not isinstance(probs, Mapping):
                raise TamaleInputError(
                    "set_region_probs: probs must be a dict {grid_coord: probability} or an "
                    f"array of the region grid's shape {rg}"
                )
            keys = list(probs.keys())
            values = [check_probability(probs[k], f"the probability of region {k}") for k in keys]
            coords = self._check_grid_coords(keys, rg, "set_region_probs", "region")
            if len(coords):
                grid[tuple(coords.T)] = values
        table = self._own_table(gs)
        table.probs_grid = grid
        table.probs = grid.ravel()
        self._update_count(gs, table)

    def _check_grid_coords(
        self, grid_coords: Any, grid: tuple[int, ...], where: str, what: str
    ) -> np.ndarray:
        d = len(grid)
        try:
            rows = [tuple(c) for c in grid_coords]
        except TypeError:
            raise TamaleInputError(
                f"{where}: grid coordinates must be a sequence of {d}-tuples, got {grid_coords!r}"
            ) from None
        for c in rows:
            if len(c) != d or not all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in c
            ):
                raise TamaleInputError(
                    f"{where}: grid coordinate {c!r} must be {d} ints (grid indices, not "
                    f"pixels: pixel p lies in cell p // patch_size)"
                )
            if not all(0 <= v < g for v, g in zip(c, grid)):
                raise TamaleInputError(
                    f"{where}: grid coordinate {tuple(int(v) for v in c)} is outside the {what} "
                    f"grid of shape {grid} (cells are patch_size={self._ps} apart from the "
                    "origin; use grid_cells_overlapping() to convert a pixel box)"
                )
        return np.array(rows, dtype=np.int64).reshape(len(rows), d)

    # ------------------------------------------------------------------ grids
    def get_all_grid_coords(self) -> dict[tuple[int, int], list[tuple[int, ...]]]:
        """Grid coordinates of every sampling region, per ``(data_idx, sample_idx)``."""
        out: dict[tuple[int, int], list[tuple[int, ...]]] = {}
        for gs in range(len(self._gs_stack)):
            rg = _region_grid(self._spatial(gs), self._ps)
            key = (int(self._gs_stack[gs]), int(self._gs_sample[gs]))
            out[key] = [tuple(int(v) for v in c) for c in np.ndindex(*rg)]
        return out

    def get_included_grid_coords(self) -> dict[tuple[int, int], list[tuple[int, ...]]]:
        """Grid coordinates of the regions whose cell is not excluded (raster order).

        A patch never overlaps ``[g * patch_size, (g + 1) * patch_size)`` for a grid
        coordinate ``g`` missing here.
        """
        out = self.get_all_grid_coords()
        for gs, table in self._own_tables.items():
            mask = table.excluded
            if mask is None:
                continue
            key = (int(self._gs_stack[gs]), int(self._gs_sample[gs]))
            out[key] = [c for c in out[key] if not mask[c]]
        return out

    # ------------------------------------------------------------------ sampling
    def get_patch_spec(self, index: int) -> PatchSpecs:
        """The patch for ``index`` (same index, seed and epoch: same patch).

        Parameters
        ----------
        index : int
            Patch index in ``[0, n_patches)``.

        Returns
        -------
        PatchSpecs
        """
        gs, local = self._locate(index)
        base, spatial, data_idx, sample_idx = self._gs_info[gs]
        table = self._own_tables.get(gs) or self._shape_tables[spatial]
        t = (local + uniforms(self._key, index, 0)) * table.scale
        cum = table.cum_list
        if cum is None:
            cum = table.cum_list = table.cum.tolist()
        r = min(max(bisect_right(cum, t) - 1, 0), table.last)
        if table.probs is None:
            rank = math.floor(t - cum[r])
        else:
            rank = math.floor((t - cum[r]) / float(table.probs[r]))
        row = table.cumsub[:, r].tolist()
        rank = min(max(rank, 0), row[-1] - 1)
        k = 0
        while row[k] <= rank:
            k += 1
        rem = rank - (row[k - 1] if k else 0)
        ps = self._ps
        d = len(ps)
        g = [0] * d
        rest = r
        for i in range(d - 1, -1, -1):
            rest, g[i] = divmod(rest, base.rg[i])
        coords = [0] * d
        for i in range(d - 1, -1, -1):
            b = (k >> (d - 1 - i)) & 1
            p = ps[i]
            if b:
                length = min(max(max(spatial[i], p) - p - g[i] * p, 0), p - 1)
                coords[i] = g[i] * p + 1 + rem % length
                rem //= length
            else:
                coords[i] = g[i] * p
        return PatchSpecs(data_idx, sample_idx, tuple(coords), ps)

    def get_patch_specs(self, indices: Any) -> PatchSpecsBatch:
        """The patches for many indices at once; equal to calling :meth:`get_patch_spec`.

        Parameters
        ----------
        indices : array-like of int
            Patch indices in ``[0, n_patches)``.

        Returns
        -------
        PatchSpecsBatch
        """
        idx, gs, local = self._locate_many(indices)
        d = len(self._ps)
        coords = np.empty((len(idx), d), dtype=np.int64)
        u = uniforms(self._key, idx, 0)
        # group by table: all unmodified samples of one shape share one
        table_id = self._gs_table_id[gs]
        for tid in np.unique(table_id):
            sel = np.flatnonzero(table_id == tid)
            table, spatial = self._table_list[int(tid)]
            coords[sel] = self._lookup(table, spatial, local[sel], u[sel])
        n = len(idx)
        return PatchSpecsBatch(
            data_idx=self._gs_stack[gs],
            sample_idx=self._gs_sample[gs],
            coords=coords,
            patch_size=np.broadcast_to(np.asarray(self._ps, dtype=np.int64), (n, d)),
        )

    def _lookup(
        self, table: _Table, spatial: tuple[int, ...], local: np.ndarray, u: np.ndarray
    ) -> np.ndarray:
        t = (local + u) * table.scale
        r = np.clip(np.searchsorted(table.cum, t, side="right") - 1, 0, table.last)
        if table.probs is None:
            rank = np.floor(t - table.cum[r])
        else:
            rank = np.floor((t - table.cum[r]) / table.probs[r])
        rank = np.clip(rank, 0, table.area[r] - 1).astype(np.int64)
        cs = table.cumsub[:, r]
        k = (cs <= rank).sum(axis=0)
        prev = np.where(k > 0, cs[np.maximum(k - 1, 0), np.arange(len(k))], 0)
        rem = rank - prev
        g = self._bases[spatial].grid[r]
        d = len(self._ps)
        out = np.empty((len(local), d), dtype=np.int64)
        for i in range(d - 1, -1, -1):
            b = (k >> (d - 1 - i)) & 1
            p = self._ps[i]
            s = max(spatial[i], p)
            length = np.where(b == 0, 1, np.clip(s - p - g[:, i] * p, 0, p - 1))
            out[:, i] = g[:, i] * p + b + rem % length
            rem = rem // length
        return out

    # ------------------------------------------------------------------ expectations
    def expected_start_counts(self, data_idx: int, sample_idx: int) -> np.ndarray:
        """Expected number of draws per epoch of every patch start (exact, dense).

        Returns
        -------
        ndarray of float64
            Shape ``max(shape, ps) - ps + 1`` per spatial axis; entry ``x`` is how many
            times per epoch, in expectation, a patch starts at ``x``. It is
            ``n * p / W`` for selectable starts (``n`` patches of this sample, ``p`` the
            region's probability, ``W`` the total weight) and 0 elsewhere; the sum is ``n``.
        """
        gs = self._global_sample(data_idx, sample_idx)
        table = self._table(gs)
        spatial = self._spatial(gs)
        axes = [np.arange(max(s, p) - p + 1) for s, p in zip(spatial, self._ps)]
        mesh = np.meshgrid(*axes, indexing="ij")
        g = tuple(m // p for m, p in zip(mesh, self._ps))
        k = np.zeros(mesh[0].shape, dtype=np.int64)
        for m, p in zip(mesh, self._ps):
            k = k * 2 + (m % p != 0)
        if table.n == 0:
            return np.zeros(mesh[0].shape)
        flat = np.ravel_multi_index(g, _region_grid(spatial, self._ps))
        active = table.areas[k, flat] > 0
        prob = 1.0 if table.probs_grid is None else table.probs_grid[g]
        return np.where(active, table.n * prob / table.total, 0.0)

    def expected_coverage(self, data_idx: int, sample_idx: int) -> np.ndarray:
        """Expected number of times per epoch each pixel lies in a patch (exact, dense).

        Returns
        -------
        ndarray of float64
            Spatial shape of the sample. Its mean is ``n * prod(ps) / prod(shape)``,
            which is 1 when the shape is a multiple of the patch size and nothing is
            excluded or down-weighted.
        """
        starts = self.expected_start_counts(data_idx, sample_idx)
        spatial = self._data_shapes[data_idx][2:]
        out = starts
        for axis, (s, p) in enumerate(zip(spatial, self._ps)):
            c = np.cumsum(out, axis=axis)
            c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
            n = out.shape[axis]
            y = np.arange(s)
            hi = np.minimum(y + 1, n)
            lo = np.clip(y + 1 - p, 0, n)
            out = np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)
        return out

    def __repr__(self) -> str:
        return (
            f"StratifiedPatching(n_stacks={len(self._data_shapes)}, patch_size={self._ps}, "
            f"n_patches={self.n_patches}, seed={self._seed}, epoch={self._epoch})"
        )
