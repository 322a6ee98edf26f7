"""Blue-noise (Poisson-disk) patch positions, restricted by a mask.

Positions are integer patch top-lefts drawn over the whole image with Bridson's
algorithm (2007) from an explicit numpy Generator, then bucketed into chunks (so there
is no chunk-periodic pattern). Distances are measured in units of the patch size per
axis, on the final integer positions:

* ``allow_overlap=False``: no two patches overlap (for every pair, some axis has
  ``|a - b| >= patch``; Chebyshev distance >= 1 in patch units);
* ``allow_overlap=True``: patch corners are at least one patch size apart
  (Euclidean distance >= 1 in patch units), so neighbouring patches may overlap.

A position is accepted only if the mask covers at least ``min_area`` of the *whole*
patch footprint (exact, see :mod:`tamale.patching.mask_coverage`). Growth restarts
from every valid seed of a half-patch lattice that no accepted patch blocks, so every
valid part of the mask gets patches. Memory is O(image area / patch area).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from tamale.errors import TamaleInputError
from tamale.patching.image_collection import ImageCollection, Window
from tamale.patching.samplers import PatchSampler

__all__ = ["BlueNoisePatchSampler", "poisson_disk_positions"]


_BLOCK = 4096  # points per vectorised step: bounds temporary memory on large images


def _blocks(pts: np.ndarray) -> list[np.ndarray]:
    return [pts[i : i + _BLOCK] for i in range(0, len(pts), _BLOCK)]


class _Grid:
    """Background grid with at most one point per cell, for O(1) neighbour tests."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, ps: np.ndarray, overlap: bool) -> None:
        d = len(ps)
        self.overlap = overlap
        self.ps = ps.astype(np.float64)
        self.lo = lo
        # cell side: patch / sqrt(d) (Euclidean r = 1) or patch (Chebyshev r = 1), in px
        self.cell = self.ps / math.sqrt(d) if overlap else self.ps.copy()
        self.reach = 2 if overlap else 1
        shape = np.floor((hi - lo) / self.cell).astype(np.int64) + 1 + 2 * self.reach
        self.cells = np.full(tuple(shape), -1, dtype=np.int64)
        self.points = np.zeros((16, d), dtype=np.int64)
        self.n = 0
        rng = range(-self.reach, self.reach + 1)
        self.offsets = np.array(np.meshgrid(*([rng] * d), indexing="ij")).reshape(d, -1).T

    def cell_of(self, pts: np.ndarray) -> np.ndarray:
        return np.floor((pts - self.lo) / self.cell).astype(np.int64) + self.reach

    def conflicts(self, pts: np.ndarray) -> np.ndarray:
        """(K,) bool: a point lies closer than 1 (patch units) to an accepted point."""
        if self.n == 0 or len(pts) == 0:
            return np.zeros(len(pts), dtype=bool)
        if len(pts) > _BLOCK:
            return np.concatenate([self.conflicts(b) for b in _blocks(pts)])
        near = self.cell_of(pts)[:, None, :] + self.offsets[None]
        ids = self.cells[tuple(near.transpose(2, 0, 1))]
        other = self.points[np.maximum(ids, 0)]
        delta = np.abs(other - pts[:, None, :]) / self.ps
        if self.overlap:
            close = (delta**2).sum(axis=2) < 1.0
        else:
            close = (delta < 1.0).all(axis=2)
        return (close & (ids >= 0)).any(axis=1)

    def add(self, pts: np.ndarray) -> None:
        """Add points that conflict neither with the grid nor with each other."""
        m = len(pts)
        while self.n + m > len(self.points):
            self.points = np.concatenate([self.points, np.zeros_like(self.points)])
        self.points[self.n : self.n + m] = pts
        self.cells[tuple(self.cell_of(pts).T)] = np.arange(self.n, self.n + m)
        self.n += m


def poisson_disk_positions(
    lo: Sequence[int],
    hi: Sequence[int],
    patch_size: Sequence[int],
    rng: np.random.Generator,
    *,
    allow_overlap: bool = False,
    valid: Callable[[np.ndarray], np.ndarray] | None = None,
    k: int = 30,
) -> np.ndarray:
    """Poisson-disk integer positions in the box ``[lo, hi]`` (inclusive).

    Parameters
    ----------
    lo, hi : sequence of int
        Inclusive bounds of the positions per axis.
    patch_size : sequence of int
        Distance unit per axis.
    rng : numpy.random.Generator
        Source of randomness.
    allow_overlap : bool, default False
        False: Chebyshev distance >= 1 patch (disjoint patches); True: Euclidean >= 1.
    valid : callable, optional
        ``valid(points (K, ndim)) -> bool (K,)``; only valid positions are accepted.
    k : int, default 30
        Candidates per active point (Bridson's k).

    Returns
    -------
    ndarray of int64, shape (N, ndim), sorted lexicographically.
    """
    lo_a = np.asarray(lo, dtype=np.int64)
    hi_a = np.asarray(hi, dtype=np.int64)
    ps = np.asarray(patch_size, dtype=np.int64)
    psf = ps.astype(np.float64)
    d = len(ps)
    if np.any(hi_a < lo_a):
        return np.zeros((0, d), dtype=np.int64)
    grid = _Grid(lo_a, hi_a, ps, allow_overlap)

    def inside(pts: np.ndarray) -> np.ndarray:
        return np.all((pts >= lo_a) & (pts <= hi_a), axis=1)

    def ok(pts: np.ndarray) -> np.ndarray:
        keep = inside(pts)
        if valid is not None and keep.any():
            keep[keep] = np.concatenate([valid(b) for b in _blocks(pts[keep])])
        return keep

    def mutually_close(pts: np.ndarray) -> np.ndarray:
        delta = np.abs(pts[:, None, :] - pts[None, :, :]) / psf
        if allow_overlap:
            return (delta**2).sum(axis=2) < 1.0
        return (delta < 1.0).all(axis=2)

    # seeds: a half-patch lattice (plus the far edge), valid ones, in random order
    axes = []
    for a, b, p in zip(lo_a, hi_a, ps):
        ticks = np.arange(a, b + 1, max(1, int(p) // 2), dtype=np.int64)
        if ticks[-1] != b:
            ticks = np.append(ticks, b)
        axes.append(ticks)
    seeds = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, d)
    seeds = seeds[ok(seeds)]
    seeds = seeds[rng.permutation(len(seeds))]
    while len(seeds):
        grid.add(seeds[:1])
        active = [grid.n - 1]
        while active:
            j = int(rng.integers(len(active)))
            centre = grid.points[active[j]]
            active[j] = active[-1]
            active.pop()
            if allow_overlap:
                direction = rng.normal(size=(k, d))
                direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
                radius = (rng.random(k) * (2.0**d - 1.0) + 1.0) ** (1.0 / d)
                unit = direction * radius[:, None]
            else:
                unit = rng.uniform(-2.0, 2.0, size=(k, d))
            cand = centre + np.rint(unit * psf).astype(np.int64)
            cand = cand[inside(cand)]
            cand = cand[~grid.conflicts(cand)]
            if valid is not None and len(cand):
                cand = cand[valid(cand)]
            if not len(cand):
                continue
            if len(cand) > 1:
                close = mutually_close(cand).tolist()
                chosen: list[int] = []
                for i in range(len(cand)):
                    if not any(close[i][c] for c in chosen):
                        chosen.append(i)
                cand = cand[chosen]
            first = grid.n
            grid.add(cand)
            active.extend(range(first, grid.n))
        seeds = seeds[1:]
        if len(seeds):
            seeds = seeds[~grid.conflicts(seeds)]
    pts = grid.points[: grid.n]
    return pts[np.lexsort(pts.T[::-1])] if len(pts) else pts


class BlueNoisePatchSampler(PatchSampler):
    """Patches at blue-noise (Poisson-disk) positions inside a mask.

    Parameters
    ----------
    patch_size : int, sequence of int or dict
        Patch size per axis of ``spatial_axes``.
    resample_positions : bool, default False
        Draw new positions on every :meth:`compute_chunks` call (e.g. once per epoch)
        instead of keeping the first draw for an image.
    allow_overlap : bool, default False
        False: patches never overlap. True: patch corners are at least one patch
        size apart (Euclidean), so neighbours may overlap.
    rng : numpy.random.Generator or int, optional
        Generator (or seed) of the positions; ``None`` seeds from the OS.
    **kwargs
        ``pad``, ``min_area``, ``spatial_axes``, ``allow_incomplete_patches`` as in
        :class:`PatchSampler`.
    """

    def __init__(
        self,
        patch_size: int | Sequence[int] | Mapping[str, int],
        resample_positions: bool = False,
        allow_overlap: bool = False,
        *,
        rng: np.random.Generator | int | None = None,
        **kwargs,
    ) -> None:
        if "stride" in kwargs:
            raise TamaleInputError("BlueNoisePatchSampler has no stride: positions are random")
        super().__init__(patch_size, **kwargs)
        self._resample_positions = bool(resample_positions)
        self._allow_overlap = bool(allow_overlap)
        self._rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self._positions: weakref.WeakKeyDictionary[ImageCollection, np.ndarray] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def allow_overlap(self) -> bool:
        """Whether neighbouring patches may overlap."""
        return self._allow_overlap

    def compute_sampling_positions(
        self, image_collection: ImageCollection, force: bool = False
    ) -> np.ndarray:
        """Blue-noise top-lefts of the image's patches, int64 (N, ndim).

        Parameters
        ----------
        image_collection : ImageCollection
            The image and its mask.
        force : bool, default False
            Draw new positions even if some were drawn for this image already.
        """
        coll = image_collection
        if not force and coll in self._positions:
            return self._positions[coll]
        self._check_mask(coll)
        axes, shape, ps, _, _ = self._geometry(coll)
        hi = self._last_start(shape, ps, axes)
        if self._allow_incomplete:
            hi = [max(0, n - p) for n, p in zip(shape, ps)]
        threshold = self._threshold(coll, ps)
        cov = coll.coverage
        # a full mask covers every patch inside the image: no test needed
        everywhere = cov.n_true == math.prod(cov.mask_shape) and not self._allow_incomplete

        def valid(pts: np.ndarray) -> np.ndarray:
            return cov.coverage_points(pts, ps) >= threshold

        pos = poisson_disk_positions(
            [0] * len(shape),
            hi,
            ps,
            self._rng,
            allow_overlap=self._allow_overlap,
            valid=None if everywhere else valid,
        )
        if len(pos) == 0:
            self._no_patches(coll)
        self._positions[coll] = pos
        return pos

    def compute_chunks(self, image_collection: ImageCollection) -> list[Window]:
        """Chunk windows holding at least one position (new positions if resampling)."""
        coll = image_collection
        pos = self.compute_sampling_positions(coll, force=self._resample_positions)
        axes, shape, _, st, _ = self._geometry(coll)
        size = np.asarray(self._chunk_size(coll, axes, st))
        corners = np.unique(pos // size, axis=0) * size
        return [
            {a: slice(int(c), int(min(c + s, n))) for a, c, s, n in zip(axes, row, size, shape)}
            for row in corners
        ]

    def compute_toplefts(
        self, image_collection: ImageCollection, chunk_tlbr: Mapping[str, slice] | None = None
    ) -> np.ndarray:
        """Positions whose top-left lies in ``chunk_tlbr`` (default: all)."""
        pos = self.compute_sampling_positions(image_collection)
        if chunk_tlbr is None:
            return pos
        axes = image_collection.spatial_axes
        keep = np.ones(len(pos), dtype=bool)
        for i, a in enumerate(axes):
            sl = chunk_tlbr.get(a)
            if sl is not None:
                lo = -np.inf if sl.start is None else sl.start
                hi = np.inf if sl.stop is None else sl.stop
                keep &= (pos[:, i] >= lo) & (pos[:, i] < hi)
        return pos[keep]
