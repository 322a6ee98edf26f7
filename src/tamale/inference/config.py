"""Parameters of 2D inference (the "2D inference (parameter testing)" dock, the CLI).

Defaults and ranges are empanada-napari's (its 2D module), plus what tamale adds:
tiling of large images and the forward batch size. 3D inference extends this class.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from tamale.postprocess.config import PostprocessConfig

__all__ = ["DOWNSAMPLING_CHOICES", "Inference2DConfig"]

DOWNSAMPLING_CHOICES = (1, 2, 4, 8, 16, 32, 64)


class Inference2DConfig(PostprocessConfig):
    """Every parameter of 2D inference (post-processing ones included)."""

    downsampling: int = 1
    """Image downsampling: shrink the image by this factor (1, 2, 4, ..., 64) before the
    network; the semantic result is rendered back to full size (PointRend) and instances
    follow by nearest upsampling. Use the largest factor that still gives good results:
    it is faster and can reduce over-splitting."""
    fine_boundaries: bool = False
    """Fine boundaries: group pixels into objects at the model's input resolution
    instead of 1/4 of it. Smoother borders between touching objects, about 16x more
    work in grouping."""
    batch_mode: bool = False
    """Batch mode: segment every slice of a stack as an independent 2D image (the result
    has the stack's shape)."""
    use_gpu: bool = True
    """Use GPU: run on a CUDA GPU or Apple's MPS when there is one; otherwise the CPU is
    used and a message says so."""
    use_quantized: bool = False
    """Use quantized model: an int8 version of the model for the CPU (built locally from
    the float model when the card has none). Faster on CPU, slightly less accurate;
    ignored when a GPU is used."""
    tile_size: int = Field(default=2048, ge=0)
    """Images larger than this (in model-input pixels, after downsampling) are segmented
    in overlapping tiles of this size, bounding memory; 0 never tiles. Objects crossing
    tile borders keep one id."""
    tile_overlap: int = Field(default=128, ge=0)
    """Overlap between neighbouring tiles, in model-input pixels."""
    batch_size: int = Field(default=4, ge=1, le=256)
    """Images (slices or tiles) per forward pass."""

    @field_validator("downsampling")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value not in DOWNSAMPLING_CHOICES:
            raise ValueError(
                f"image downsampling must be a power of two from 1 to 64 "
                f"({', '.join(map(str, DOWNSAMPLING_CHOICES))}), got {value}"
            )
        return value

    @property
    def precision(self) -> str:
        """``"int8"`` when the quantized model is asked for, else ``"float32"``."""
        return "int8" if self.use_quantized else "float32"
