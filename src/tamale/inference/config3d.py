"""Parameters of 3D (stack and ortho-plane) inference.

:class:`Inference3DConfig` holds every 2D inference parameter (they apply to
each slice) plus the stack and ortho-plane parameters, with empanada-napari's
defaults (median 3, min size 500, min extent 5, 10000 objects per class,
vote 2 out of 3). Only *what* is computed lives here; *where* it runs and
where it goes (output store, chunks, Dask scheduler) are arguments of
:func:`tamale.inference.volume.segment_volume`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tamale.inference.config import Inference2DConfig

__all__ = ["PLANES", "SLAB_PARAMETERS", "Inference3DConfig"]

PLANES = ("xy", "xz", "yz", "ortho")

SLAB_PARAMETERS = (
    "downsampling",
    "confidence_thr",
    "center_confidence_thr",
    "centers_min_distance",
    "top_k",
    "fine_boundaries",
    "semantic_only",
    "label_divisor",
    "stuff_area",
    "min_area",
    "use_quantized",
    "half_precision",
    "batch_size",
    "tile_size",
    "tile_overlap",
    "median_slices",
    "plane",
)
"""Parameters that change what the slab tasks compute (a run resumes only with equal values)."""


class Inference3DConfig(Inference2DConfig):
    """Stack and ortho-plane inference parameters (2D parameters included).

    Every 2D parameter applies to each slice: slices larger than ``tile_size`` are
    segmented in overlapping tiles (the median filter then works tile by tile), and
    ``batch_size`` is the number of slices (or tiles) per forward pass. ``batch_mode``
    is not used, and ``split_disconnected`` is always on (the pieces of a 2D instance
    are linked separately, then joined again in 3D when they overlap one object).
    """

    plane: Literal["xy", "xz", "yz", "ortho"] = "xy"
    """Slicing plane: segment xy, xz or yz slices, or all three and keep their consensus (ortho)."""
    median_slices: int = Field(default=3, ge=1, le=11)
    """Median filter size: slices over which semantic probabilities are median-filtered (odd, 1-11)."""
    min_size: int = Field(default=500, ge=0)
    """Min size (voxels): smaller objects are removed."""
    min_extent: int = Field(default=5, ge=0)
    """Min box extent: objects whose bounding box is thinner than this along any axis are removed."""
    vote_threshold: int = Field(default=2, ge=1, le=3)
    """Voxel vote threshold out of 3 (ortho-plane): views that must label a voxel for it to be kept."""
    permit_single_view: bool = False
    """Permit detections found in 1 stack into the consensus (ortho-plane), whatever the vote threshold."""
    return_panoptic: bool = False
    """Also return the xy, xz and yz panoptic stacks (ortho-plane)."""
    link_iou: float = Field(default=0.25, gt=0, le=1)
    """IoU from which 2D instances of consecutive slices are the same object."""
    link_ioa: float = Field(default=0.25, gt=0, le=1)
    """Intersection over its own area from which an unmatched instance joins an object (false split)."""
    consensus_iou: float = Field(default=0.25, gt=0, le=1)
    """IoU from which objects of different views are the same object (ortho-plane)."""

    @field_validator("median_slices")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("must be odd (1, 3, 5, 7, 9 or 11)")
        return value

    @property
    def planes(self) -> tuple[str, ...]:
        """The stacks this configuration runs."""
        return ("xy", "xz", "yz") if self.plane == "ortho" else (self.plane,)
