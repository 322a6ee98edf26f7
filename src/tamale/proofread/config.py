"""Typed parameter sets of the proofreading tools (one per dock)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tamale.config import Config

__all__ = [
    "CountConfig",
    "ExportConfig",
    "FilterConfig",
    "MorphConfig",
    "NextLabelConfig",
    "SplitConfig",
]

Scope = Literal["current image", "2D patches", "3D volume"]


class SplitConfig(Config):
    """Parameters of Split labels."""

    min_distance: int = Field(10, ge=1, le=100)
    """Minimum distance (pixels) between watershed seeds: the peaks of the distance
    transform; larger values give fewer pieces."""

    points_as_markers: bool = False
    """Use every point as a seed (at least two per object) instead of distance peaks."""

    apply_3d: bool = False
    """Split the object in the whole volume instead of the current plane."""

    start_id: int | None = Field(None, ge=1)
    """First new label id (optional); every new id must be unused in the whole labels.
    Empty: the ids after the largest id in the whole labels."""

    label_divisor: int = Field(0, ge=0)
    """With a divisor > 0 the new ids are the smallest free ids of the object's class
    (id // divisor), so the pieces stay in their class. 0: no classes."""


class MorphConfig(Config):
    """Parameters of Morph labels."""

    operation: Literal["dilate", "erode", "open", "close", "fill holes"] = "dilate"
    """Morphological operation applied to each object on its own."""

    radius: int = Field(1, ge=1, le=7)
    """Radius of the disk (2D) or ball (3D) footprint, in pixels."""

    hole_size: int = Field(64, ge=1)
    """Fill holes: the largest hole (pixels or voxels) that is filled."""

    apply_3d: bool = False
    """Work in 3D (ball footprint, whole volume) instead of the current plane."""


class FilterConfig(Config):
    """Parameters of Filter labels."""

    remove_small: bool = True
    """Remove objects smaller than the minimum size."""

    min_size: int = Field(100, ge=1)
    """Objects with fewer pixels/voxels than this are removed."""

    remove_border: bool = False
    """Remove objects touching the border of the image (in 3D: of the volume, first and
    last slices included)."""

    apply_to: Scope = "current image"
    """What counts as one image: the current plane, every plane of a stack separately
    (2D patches), or the whole volume (3D)."""

    new_layer: bool = False
    """Put the result in a new labels layer instead of editing in place (undoable)."""


class CountConfig(Config):
    """Parameters of Count labels."""

    apply_to: Scope = "3D volume"
    """Count in the current plane, per image of a stack (2D patches), or in the volume."""

    label_divisor: int = Field(0, ge=0)
    """Panoptic label divisor: class = id // divisor. 0: one class."""

    class_names: str = "1,mitochondria"
    """One 'class_id,name' per line; names may contain spaces."""


class NextLabelConfig(Config):
    """Parameters of Find next available label."""

    class_id: int = Field(1, ge=0)
    """Class whose next free id is wanted."""

    label_divisor: int = Field(0, ge=0)
    """Panoptic label divisor; 0: one class, the smallest unused id >= 1."""


class ExportConfig(Config):
    """Parameters of Export segmentation."""

    export_type: Literal["2D images", "3D image (TIFF)", "3D image (OME-Zarr)"] = "2D images"
    """One TIFF per image of a 2D stack, one TIFF for the volume, or an OME-Zarr."""

    folder_name: str = "segmentation"
    """Name of the file or folder written inside the save directory."""

    overwrite: bool = False
    """Replace existing files (off: an existing file stops the export)."""

    @field_validator("folder_name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        value = value.strip()
        if not value or value in (".", "..") or any(c in value for c in '/\\:*?"<>|'):
            raise ValueError("must be a plain file or folder name (no slashes, no '..', not empty)")
        return value
