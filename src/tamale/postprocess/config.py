"""Parameters of panoptic post-processing (shared by 2D and 3D inference)."""

from __future__ import annotations

from pydantic import Field

from tamale.config import Config

__all__ = ["MAX_LABEL", "PostprocessConfig"]

MAX_LABEL = 2**32 - 1
"""Largest label value (labels are uint32)."""


class PostprocessConfig(Config):
    """How network outputs become panoptic labels (defaults: empanada-napari's)."""

    confidence_thr: float = Field(default=0.5, ge=0.0, le=1.0)
    """Segmentation confidence: minimum foreground probability of a pixel (binary models
    only; multi-class models take the most probable class)."""
    center_confidence_thr: float = Field(default=0.1, ge=0.0, le=1.0)
    """Center confidence: minimum center-heatmap value of an object centre. Higher gives
    fewer centres, hence fewer (larger) objects."""
    centers_min_distance: int = Field(default=3, ge=1, le=35)
    """Centers min distance: side of the window, in center-heatmap pixels, inside which
    only the strongest centre survives (heatmap pixels are 4 input pixels unless fine
    boundaries are on). Raise it when long objects are split into several."""
    top_k: int | None = Field(default=None, ge=1)
    """Keep at most this many centres per image (the strongest); None keeps all."""
    semantic_only: bool = False
    """Semantic only: skip instance grouping; every class becomes one region
    (id ``class * max_objects_per_class``)."""
    label_divisor: int = Field(default=10000, ge=2, le=2**31)
    """Max objects per class: panoptic ids are ``class * label_divisor + k`` with
    ``1 <= k < label_divisor``; more objects than that is an error, never a spill into
    the next class."""
    stuff_area: int = Field(default=64, ge=0)
    """Semantic (stuff) classes covering fewer pixels than this in an image are dropped."""
    split_disconnected: bool = True
    """Give each connected piece (8-connectivity) of an instance its own id."""
