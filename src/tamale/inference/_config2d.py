"""Placeholder for the 2D inference parameters until the 2D branch is merged.

The real :class:`Inference2DConfig` comes from the 2D inference modules; this
stand-in has the same user-visible parameters and defaults (empanada-napari's)
so 3D inference can be built and tested meanwhile.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from tamale.config import Config

__all__ = ["Inference2DConfig"]


class Inference2DConfig(Config):
    """2D inference parameters (applied to every slice)."""

    downsampling: int = Field(default=1, ge=1, le=64)
    """Image downsampling factor (power of 2) applied before the network."""
    confidence_thr: float = Field(default=0.5, ge=0.0, le=1.0)
    """Segmentation confidence threshold (binary models)."""
    center_confidence_thr: float = Field(default=0.1, ge=0.0, le=1.0)
    """Minimum height of a centre-heatmap peak to start an object."""
    min_distance_object_centers: int = Field(default=3, ge=1, le=35)
    """Centres min distance: side of the non-maximum suppression window (heatmap pixels)."""
    fine_boundaries: bool = False
    """Group pixels into instances at full resolution instead of 1/4."""
    semantic_only: bool = False
    """Skip instances: every class is one region."""
    label_divisor: int = Field(default=10000, ge=2)
    """Max objects per class: panoptic ids are class * divisor + instance."""
    use_gpu: bool = True
    """Use a GPU when one is available."""
    use_quantized: bool = False
    """Use the int8 quantized model (CPU only)."""

    @field_validator("downsampling")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError("must be a power of 2 (1, 2, 4, ... 64)")
        return value
