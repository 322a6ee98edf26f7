"""Ortho-plane consensus: one segmentation from the xy, xz and yz stacks.

Ortho-plane inference segments the volume three times, slicing along each
axis, and keeps what the three *views* agree on. For one instance class:

1. **Overlap table.** One pass over the three label volumes, chunk by chunk,
   counts every distinct voxel triple ``(id_xy, id_xz, id_yz)`` (0 = nothing)
   with its voxel count, bounding box and first voxel. Everything below is
   decided on this table, never on dense volumes, and costs O(number of
   distinct triples), about a few times the number of objects.
2. **Matching across views.** Objects of different views are joined into
   *clusters* greedily by decreasing IoU (only pairs with IoU >=
   ``match_iou``), never putting two objects of the same view into one
   cluster: a view that separated two objects is not overruled by a view that
   merged them. A cluster is one physical object as seen by 1, 2 or 3 views.
3. **Voxels.** A voxel goes to the cluster that most of its three labels
   belong to (ties: the cluster seen by more views, then the earlier one).
   Its *vote* is the number of views that label it at all (0-3).

   * an object of a cluster seen by two or three views keeps the voxels whose
     vote reaches ``vote_threshold`` ("Voxel Vote Thr Out of 3");
   * an object seen by one view only (a *single-view detection*) is left out,
     unless ``permit_single_view`` ("Permit detections found in 1 stack") is
     set: then it enters with all its voxels, whatever the vote threshold.
     (In empanada this option changed nothing unless the vote threshold was
     1; here it does what its name says at every threshold.)

   So lowering the vote threshold grows objects that several views found
   (few new false positives), while permitting single-view detections adds
   objects (more false positives): the trade-off the user guide describes.
4. Objects smaller than ``min_size`` or thinner than ``min_extent`` are
   dropped and the rest numbered ``1..N`` in C order of their first voxel.

Semantic classes are voted voxel by voxel: a voxel belongs to the class when
at least ``vote_threshold`` views say so (:func:`vote_semantic`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from tamale.errors import TamaleInputError

__all__ = [
    "ConsensusPlan",
    "TripleTable",
    "apply_consensus",
    "consensus_labels",
    "iter_blocks",
    "plan_consensus",
    "vote_semantic",
]


def iter_blocks(shape: tuple[int, ...], block: tuple[int, ...]) -> Iterator[tuple[slice, ...]]:
    """Slices of a regular grid of blocks covering ``shape`` (C order)."""
    grids = [range(0, s, b) for s, b in zip(shape, block)]
    for origin in np.ndindex(*[len(g) for g in grids]):
        yield tuple(
            slice(g[i], min(g[i] + b, s)) for g, i, b, s in zip(grids, origin, block, shape)
        )


@dataclass
class TripleTable:
    """Distinct voxel triples of three label volumes, accumulated chunk by chunk.

    Parameters
    ----------
    shape : tuple of int
        Shape of the whole volume (for global voxel indices).
    max_id : int
        Largest object id in any of the three volumes.
    """

    shape: tuple[int, int, int]
    max_id: int
    _parts: list[tuple[np.ndarray, ...]] = field(default_factory=list)
    _pending: int = 0

    def __post_init__(self) -> None:
        self.base = int(self.max_id) + 1
        if float(self.base) ** 3 >= 2**62:
            raise TamaleInputError(
                f"too many objects ({self.max_id}) for the ortho-plane consensus table"
            )

    def encode(self, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        return (a.astype(np.int64) * self.base + b.astype(np.int64)) * self.base + c.astype(
            np.int64
        )

    def decode(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = codes % self.base
        ab = codes // self.base
        return ab // self.base, ab % self.base, c

    def add(self, a: np.ndarray, b: np.ndarray, c: np.ndarray, region: tuple[slice, ...]) -> None:
        """Count the triples of one block (``region`` locates it in the volume)."""
        fg = (a != 0) | (b != 0) | (c != 0)
        if not fg.any():
            return
        codes = self.encode(a[fg], b[fg], c[fg])
        coords = [idx + r.start for idx, r in zip(np.nonzero(fg), region)]
        flat = np.ravel_multi_index(tuple(coords), self.shape)
        self._parts.append(_reduce(codes, np.ones(len(codes), np.int64), coords, flat))
        self._pending += len(self._parts[-1][0])
        if self._pending > 4_000_000:
            self._compact()

    def _compact(self) -> None:
        if len(self._parts) > 1:
            cat = [np.concatenate(col) for col in zip(*self._parts)]
            self._parts = [_merge(*cat)]
        self._pending = len(self._parts[0][0]) if self._parts else 0

    def merge(self, other: TripleTable) -> None:
        """Add another table's triples (e.g. from another worker)."""
        self._parts.extend(other._parts)
        self._compact()

    def columns(self) -> tuple[np.ndarray, ...]:
        """``(codes, counts, lo (n,3), hi (n,3), first)`` with codes sorted and unique."""
        self._compact()
        if not self._parts:
            z = np.zeros(0, np.int64)
            return z, z, np.zeros((0, 3), np.int64), np.zeros((0, 3), np.int64), z
        return self._parts[0]


def _reduce(
    codes: np.ndarray, counts: np.ndarray, coords: list[np.ndarray], flat: np.ndarray
) -> tuple[np.ndarray, ...]:
    lo = np.stack(coords, axis=1).astype(np.int64)
    return _merge(codes, counts, lo, lo + 1, flat.astype(np.int64))


def _merge(
    codes: np.ndarray, counts: np.ndarray, lo: np.ndarray, hi: np.ndarray, first: np.ndarray
) -> tuple[np.ndarray, ...]:
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    return (
        codes[starts],
        np.add.reduceat(counts[order], starts),
        np.minimum.reduceat(lo[order], starts, axis=0),
        np.maximum.reduceat(hi[order], starts, axis=0),
        np.minimum.reduceat(first[order], starts),
    )


@dataclass(frozen=True)
class ConsensusPlan:
    """Which final object every voxel triple becomes.

    Attributes
    ----------
    base : int
        Encoding base of the triples (``max_id + 1``).
    codes : ndarray of int64
        Sorted triple codes.
    final : ndarray of uint32
        Final object id of each triple (0: left out).
    n_objects : int
        Number of final objects.
    """

    base: int
    codes: np.ndarray
    final: np.ndarray
    n_objects: int


class _UnionFind:
    def __init__(self, views: np.ndarray) -> None:
        self.parent = np.arange(len(views))
        self.views = views.copy()

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union_if_compatible(self, x: int, y: int) -> None:
        rx, ry = self.find(x), self.find(y)
        if rx == ry or self.views[rx] & self.views[ry]:
            return
        if ry < rx:
            rx, ry = ry, rx
        self.parent[ry] = rx
        self.views[rx] |= self.views[ry]


def plan_consensus(
    table: TripleTable,
    *,
    vote_threshold: int = 2,
    permit_single_view: bool = False,
    match_iou: float = 0.25,
    min_size: int = 0,
    min_extent: int = 0,
    max_objects: int | None = None,
    class_name: str = "objects",
) -> ConsensusPlan:
    """Decide the consensus from a :class:`TripleTable` (see module docstring)."""
    if vote_threshold not in (1, 2, 3):
        raise TamaleInputError(f"the voxel vote threshold must be 1, 2 or 3, got {vote_threshold}")
    codes, counts, lo, hi, first = table.columns()
    base = table.base
    if len(codes) == 0:
        return ConsensusPlan(base, codes, np.zeros(0, np.uint32), 0)
    ids = np.stack(table.decode(codes), axis=1)  # (n, 3): id in xy, xz, yz

    # nodes: (view, id) -> index; sizes
    node_key = ids + np.arange(3) * base  # distinct per view
    present = np.unique(node_key[ids > 0])
    node = np.full(ids.shape, -1, np.int64)
    node[ids > 0] = np.searchsorted(present, node_key[ids > 0])
    views = (1 << (present // base)).astype(np.int64)
    sizes = np.zeros(len(present), np.int64)
    for v in range(3):
        m = node[:, v] >= 0
        np.add.at(sizes, node[m, v], counts[m])

    # cross-view overlaps and their IoU, then greedy matching
    edges_u, edges_v, inter = [], [], []
    for v1, v2 in ((0, 1), (0, 2), (1, 2)):
        m = (node[:, v1] >= 0) & (node[:, v2] >= 0)
        if not m.any():
            continue
        pair = node[m, v1] * len(present) + node[m, v2]
        up, inv = np.unique(pair, return_inverse=True)
        edges_u.append(up // len(present))
        edges_v.append(up % len(present))
        inter.append(np.bincount(inv, weights=counts[m]))
    uf = _UnionFind(views)
    if edges_u:
        eu = np.concatenate(edges_u)
        ev = np.concatenate(edges_v)
        ei = np.concatenate(inter)
        iou = ei / (sizes[eu] + sizes[ev] - ei)
        ok = iou >= match_iou
        eu, ev, iou = eu[ok], ev[ok], iou[ok]
        for k in np.lexsort((ev, eu, -iou)):
            uf.union_if_compatible(int(eu[k]), int(ev[k]))
    cluster_of_node = np.array([uf.find(i) for i in range(len(present))], np.int64)
    cluster_views = np.array([bin(int(uf.views[c])).count("1") for c in range(len(present))])

    # per triple: the cluster most of its labels belong to
    k = np.where(node >= 0, cluster_of_node[np.maximum(node, 0)], -1)  # (n, 3)
    support = np.zeros(k.shape, np.int64)
    for v in range(3):
        support[:, v] = (k == k[:, [v]]).sum(axis=1) * (k[:, v] >= 0)
    nviews = np.where(k >= 0, cluster_views[np.maximum(k, 0)], 0)
    big = len(present) + 1
    score = (support * 4 + nviews) * big + (big - 1 - np.maximum(k, 0))
    score[k < 0] = -1
    chosen = k[np.arange(len(k)), np.argmax(score, axis=1)]
    votes = (ids > 0).sum(axis=1)
    chosen_views = cluster_views[chosen]
    keep = ((chosen_views >= 2) & (votes >= vote_threshold)) | (
        (chosen_views == 1) & permit_single_view
    )

    # final objects: one per cluster with kept voxels; filters; C-order numbering
    final = np.zeros(len(codes), np.uint32)
    kept = np.flatnonzero(keep)
    if len(kept):
        clusters, inv = np.unique(chosen[kept], return_inverse=True)
        n = len(clusters)
        size = np.bincount(inv, weights=counts[kept], minlength=n)
        order = np.argsort(inv, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(inv[order]) != 0])
        obj_lo = np.minimum.reduceat(lo[kept][order], starts, axis=0)
        obj_hi = np.maximum.reduceat(hi[kept][order], starts, axis=0)
        obj_first = np.minimum.reduceat(first[kept][order], starts)
        good = (size >= min_size) & np.all(obj_hi - obj_lo >= min_extent, axis=1)
        good_idx = np.flatnonzero(good)
        good_idx = good_idx[np.argsort(obj_first[good_idx], kind="stable")]
        if max_objects is not None and len(good_idx) > max_objects:
            raise TamaleInputError(
                f"found {len(good_idx)} {class_name} in the ortho-plane consensus, more than the "
                f"{max_objects} allowed by 'max objects per class'; raise it, or raise min size"
            )
        number = np.zeros(n, np.uint32)
        number[good_idx] = np.arange(1, len(good_idx) + 1, dtype=np.uint32)
        final[kept] = number[inv]
        n_objects = len(good_idx)
    else:
        n_objects = 0
    return ConsensusPlan(base, codes, final, n_objects)


def apply_consensus(plan: ConsensusPlan, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Final labels (uint32) of one block of the three views."""
    out = np.zeros(a.shape, np.uint32)
    fg = (a != 0) | (b != 0) | (c != 0)
    if not fg.any() or len(plan.codes) == 0:
        return out
    codes = (a[fg].astype(np.int64) * plan.base + b[fg].astype(np.int64)) * plan.base + c[
        fg
    ].astype(np.int64)
    pos = np.clip(np.searchsorted(plan.codes, codes), 0, len(plan.codes) - 1)
    hit = plan.codes[pos] == codes
    out[fg] = np.where(hit, plan.final[pos], 0)
    return out


def vote_semantic(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, vote_threshold: int = 2
) -> np.ndarray:
    """Semantic consensus of one block: 1 where >= ``vote_threshold`` views say so."""
    votes = (a != 0).astype(np.uint8) + (b != 0) + (c != 0)
    return (votes >= vote_threshold).astype(np.uint32)


def consensus_labels(
    xy: np.ndarray,
    xz: np.ndarray,
    yz: np.ndarray,
    *,
    vote_threshold: int = 2,
    permit_single_view: bool = False,
    match_iou: float = 0.25,
    min_size: int = 0,
    min_extent: int = 0,
    block: tuple[int, int, int] = (64, 64, 64),
) -> np.ndarray:
    """Consensus of three in-memory label volumes (block by block)."""
    shape = tuple(np.shape(xy))
    if np.shape(xz) != shape or np.shape(yz) != shape:
        raise TamaleInputError("the three stacks must have the same shape")
    max_id = max(int(np.max(v)) if np.size(v) else 0 for v in (xy, xz, yz))
    table = TripleTable(shape, max_id)  # type: ignore[arg-type]
    for region in iter_blocks(shape, block):
        table.add(xy[region], xz[region], yz[region], region)
    plan = plan_consensus(
        table,
        vote_threshold=vote_threshold,
        permit_single_view=permit_single_view,
        match_iou=match_iou,
        min_size=min_size,
        min_extent=min_extent,
    )
    out = np.zeros(shape, np.uint32)
    for region in iter_blocks(shape, block):
        out[region] = apply_consensus(plan, xy[region], xz[region], yz[region])
    return out
