"""Synthetic electron-microscopy images and volumes with exact instance labels.

One generator serves 2D images and (anisotropic) 3D volumes: the geometry is
built in physical units, then sampled on the pixel grid, so a 3D volume with
``spacing=(5, 1, 1)`` looks like serial-section EM (thick sections, sharp in
plane).

What is drawn:

* **cells**: a Voronoi partition of space whose walls are dark, membrane-like
  bands (a plasma-membrane look);
* **mitochondria**: randomly oriented ellipsoids (ellipses in 2D) with a dark
  double outer membrane, a darker matrix and lighter cristae stripes across the
  long axis; several touch each other. They are the labelled instances:
  ``labels`` holds ids ``1..N`` (uint32) and every labelled pixel is inside
  exactly one object;
* **vesicles**: small dark rings that are *not* labelled (distractors);
* low-frequency cytoplasm texture, a slight blur and Gaussian noise.

Everything derives from ``seed``: the same arguments give the same arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from tamale.errors import TamaleInputError

__all__ = ["SyntheticEM", "synthetic_em", "synthetic_em_2d", "synthetic_em_3d"]


@dataclass(frozen=True)
class SyntheticEM:
    """A synthetic EM image or volume and its ground truth.

    Attributes
    ----------
    image : ndarray of uint8
        The EM-like image, axes YX or ZYX.
    labels : ndarray of uint32
        Mitochondria instances, ids ``1..n_objects``, 0 elsewhere.
    membranes : ndarray of bool
        Cell walls (not labelled as instances).
    spacing : tuple of float
        Physical size of a pixel along each axis, in units of the in-plane
        pixel (e.g. ``(5.0, 1.0, 1.0)`` for 5x thicker sections).
    """

    image: np.ndarray
    labels: np.ndarray
    membranes: np.ndarray
    spacing: tuple[float, ...]

    @property
    def n_objects(self) -> int:
        """Number of labelled mitochondria."""
        return int(self.labels.max())


def _random_rotation(rng: np.random.Generator, ndim: int) -> np.ndarray:
    """A uniformly random rotation matrix (2x2 or 3x3)."""
    if ndim == 2:
        theta = rng.uniform(0, np.pi)
        c, s = np.cos(theta), np.sin(theta)
        return np.array([[c, -s], [s, c]])
    q, r = np.linalg.qr(rng.normal(size=(ndim, ndim)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _cell_walls(
    shape: tuple[int, ...], spacing: np.ndarray, cell_size: float, rng: np.random.Generator
) -> np.ndarray:
    """Boolean mask of Voronoi cell walls about 2 in-plane pixels thick."""
    extent = np.asarray(shape) * spacing
    n_cells = max(2, round(float(np.prod(extent)) / cell_size ** len(shape)))
    seeds = np.zeros(shape, dtype=bool)
    idx = tuple(rng.integers(0, s, size=n_cells) for s in shape)
    seeds[idx] = True
    # nearest seed for every pixel, in physical distance
    _, nearest = ndi.distance_transform_edt(~seeds, sampling=spacing, return_indices=True)
    flat = np.ravel_multi_index(tuple(nearest), shape)
    walls = np.zeros(shape, dtype=bool)
    for axis in range(len(shape)):
        if spacing[axis] > 1.5:  # thick sections: walls come from in-plane neighbours only
            continue
        lo = [slice(None)] * len(shape)
        hi = [slice(None)] * len(shape)
        lo[axis] = slice(None, -1)
        hi[axis] = slice(1, None)
        differs = flat[tuple(lo)] != flat[tuple(hi)]
        walls[tuple(lo)] |= differs
        walls[tuple(hi)] |= differs
    return walls


def _place_ellipsoid(
    center: np.ndarray,
    semi_axes: np.ndarray,
    rotation: np.ndarray,
    shape: tuple[int, ...],
    spacing: np.ndarray,
) -> tuple[tuple[slice, ...], np.ndarray, np.ndarray, np.ndarray] | None:
    """Rasterise one ellipsoid inside its bounding box.

    Returns the box, the normalised radius ``rho`` (< 1 inside), the
    coordinate along the long axis and the coordinate along the short axis,
    all in physical units; None if the box misses the image.
    """
    reach = float(semi_axes.max())
    lo = np.floor((center - reach) / spacing).astype(int)
    hi = np.ceil((center + reach) / spacing).astype(int) + 1
    lo = np.maximum(lo, 0)
    hi = np.minimum(hi, shape)
    if np.any(hi <= lo):
        return None
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    grids = np.meshgrid(
        *[(np.arange(a, b) * s - c) for a, b, s, c in zip(lo, hi, spacing, center)],
        indexing="ij",
    )
    coords = np.stack(grids, axis=-1) @ rotation  # body frame
    rho = np.sqrt(np.sum((coords / semi_axes) ** 2, axis=-1))
    return box, rho, coords[..., 0], coords[..., -1]


def synthetic_em(
    shape: Sequence[int],
    *,
    spacing: Sequence[float] | None = None,
    n_objects: int | None = None,
    object_size: tuple[float, float] = (10.0, 22.0),
    cell_size: float = 160.0,
    n_vesicles: int | None = None,
    touch_fraction: float = 0.35,
    noise: float = 0.05,
    seed: int = 0,
) -> SyntheticEM:
    """Generate a synthetic EM image (2D) or volume (3D) with mitochondria labels.

    Parameters
    ----------
    shape : sequence of int
        ``(Y, X)`` or ``(Z, Y, X)``; each at least 16.
    spacing : sequence of float, optional
        Physical pixel size per axis in units of the in-plane pixel. Default
        1 everywhere in 2D and ``(5, 1, 1)`` in 3D (anisotropic sections).
    n_objects : int, optional
        Mitochondria to try to place; default scales with the volume. Fewer may
        be placed when the image is crowded.
    object_size : (float, float)
        Range of the mitochondria's short semi-axis, in in-plane pixels; the
        long semi-axis is 1.3-2.5 times the short one.
    cell_size : float
        Typical cell diameter (in-plane pixels) of the membrane partition.
    n_vesicles : int, optional
        Unlabelled dark vesicles (distractors); default scales with the area.
    touch_fraction : float
        Share of mitochondria placed against an already placed one, so that
        touching instances (which must be told apart) are common.
    noise : float
        Standard deviation of the additive Gaussian noise (intensity 0-1).
    seed : int
        Seed of the random generator: same seed, same result.

    Returns
    -------
    SyntheticEM
    """
    shape = tuple(int(s) for s in shape)
    ndim = len(shape)
    if ndim not in (2, 3):
        raise TamaleInputError(f"shape must have 2 (YX) or 3 (ZYX) axes, got {shape}")
    if min(shape) < 4 or (ndim == 2 and min(shape) < 16) or min(shape[-2:]) < 16:
        raise TamaleInputError(f"each in-plane axis must be at least 16 pixels, got {shape}")
    if spacing is None:
        spacing = (1.0,) * ndim if ndim == 2 else (5.0, 1.0, 1.0)
    sp = np.asarray(spacing, dtype=float)
    if sp.shape != (ndim,) or np.any(sp <= 0):
        raise TamaleInputError(f"spacing must hold {ndim} positive numbers, got {spacing}")
    lo_size, hi_size = object_size
    if not 0 < lo_size <= hi_size:
        raise TamaleInputError(
            f"object_size must be (min, max) with 0 < min <= max, got {object_size}"
        )

    rng = np.random.default_rng(seed)
    extent = np.asarray(shape) * sp
    volume = float(np.prod(extent))
    mean_r = 0.5 * (lo_size + hi_size)
    if n_objects is None:
        # about 12% of the space occupied by mitochondria
        unit = (np.pi * mean_r**2 * 1.9) if ndim == 2 else (4 / 3 * np.pi * mean_r**3 * 1.9 * 1.2)
        n_objects = max(1, int(0.12 * volume / unit))
    if n_vesicles is None:
        n_vesicles = int(np.prod(extent[-2:]) / 900)

    walls = _cell_walls(shape, sp, cell_size, rng)

    labels = np.zeros(shape, dtype=np.uint32)
    intensity = np.full(shape, 0.68, dtype=np.float32)
    # cytoplasm texture: smooth low-frequency variation
    texture = ndi.gaussian_filter(rng.normal(size=shape).astype(np.float32), sigma=6.0 / sp)
    texture /= max(float(texture.std()), 1e-6)
    intensity += 0.05 * texture
    intensity[walls] = 0.28

    placed_objects: list[tuple[np.ndarray, float]] = []
    next_id = 1
    attempts = 0
    while next_id <= n_objects and attempts < 20 * n_objects:
        attempts += 1
        short = rng.uniform(lo_size, hi_size)
        semi = np.array(
            [short * rng.uniform(1.3, 2.5), short]
            + ([short * rng.uniform(0.9, 1.2)] if ndim == 3 else [])
        )
        # order: long axis first, then the others; keep the long axis as body x0
        rotation = _random_rotation(rng, ndim)
        if placed_objects and rng.uniform() < touch_fraction:
            # put it against an existing object so that instances touch
            other_center, other_short = placed_objects[rng.integers(len(placed_objects))]
            direction = rng.normal(size=ndim) * (1.0 / sp)
            direction /= np.linalg.norm(direction)
            center = other_center + direction * 0.97 * (other_short + short)
        else:
            center = rng.uniform(0, 1, size=ndim) * extent
        placed = _place_ellipsoid(center, semi, rotation, shape, sp)
        if placed is None:
            continue
        box, rho, along, across = placed
        inside = rho < 1.0
        n_inside = int(inside.sum())
        if n_inside < 20:
            continue
        region = labels[box]
        taken = region[inside] > 0
        if taken.mean() > 0.04 or walls[box][inside].mean() > 0.03:
            continue
        free = inside & (region == 0)
        region[free] = next_id
        placed_objects.append((center, short))
        # appearance: dark matrix, lighter cristae across the long axis, dark rim
        period = rng.uniform(5.0, 8.0)
        cristae = 0.5 + 0.5 * np.cos(2 * np.pi * along / period + rng.uniform(0, 2 * np.pi))
        cristae *= np.abs(across) < 0.8 * short  # cristae stop short of the rim
        look = 0.36 + 0.16 * cristae
        rim = rho > 1.0 - 2.2 / short
        look = np.where(rim, 0.16, look).astype(np.float32)
        target = intensity[box]
        target[free] = look[free]
        next_id += 1

    # vesicles: unlabelled dark rings in the cytoplasm
    for _ in range(n_vesicles):
        radius = rng.uniform(2.5, 5.0)
        center = rng.uniform(0, 1, size=ndim) * extent
        placed = _place_ellipsoid(center, np.full(ndim, radius), np.eye(ndim), shape, sp)
        if placed is None:
            continue
        box, rho, _, _ = placed
        ring = (rho > 0.6) & (rho < 1.0) & (labels[box] == 0)
        intensity[box][ring] = 0.3

    intensity = ndi.gaussian_filter(intensity, sigma=0.7 / sp)
    intensity += rng.normal(scale=noise, size=shape).astype(np.float32)
    image = np.clip(np.rint(intensity * 255), 0, 255).astype(np.uint8)
    return SyntheticEM(
        image=image, labels=labels, membranes=walls, spacing=tuple(float(s) for s in sp)
    )


def synthetic_em_2d(shape: Sequence[int] = (512, 512), *, seed: int = 0, **kwargs) -> SyntheticEM:
    """A synthetic 2D EM image (see :func:`synthetic_em`)."""
    if len(shape) != 2:
        raise TamaleInputError(f"a 2D image needs a (Y, X) shape, got {tuple(shape)}")
    return synthetic_em(shape, seed=seed, **kwargs)


def synthetic_em_3d(
    shape: Sequence[int] = (32, 256, 256),
    *,
    spacing: Sequence[float] = (5.0, 1.0, 1.0),
    seed: int = 0,
    **kwargs,
) -> SyntheticEM:
    """A synthetic anisotropic 3D EM volume (see :func:`synthetic_em`)."""
    if len(shape) != 3:
        raise TamaleInputError(f"a volume needs a (Z, Y, X) shape, got {tuple(shape)}")
    return synthetic_em(shape, spacing=spacing, seed=seed, **kwargs)
