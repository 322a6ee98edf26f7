"""Parameters of 2D inference (the "2D inference (parameter testing)" dock, the CLI).

Defaults and ranges are empanada-napari's (its 2D module), plus what tamale adds:
tiling of large images and the forward batch size. 3D inference extends this class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from tamale.config import format_validation_error
from tamale.errors import TamaleInputError
from tamale.postprocess.config import PostprocessConfig

__all__ = ["DOWNSAMPLING_CHOICES", "Inference2DConfig", "layered_config", "recommended_config"]

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
    half_precision: bool = False
    """Half precision: bfloat16 convolutions on CPUs that have native bfloat16 (AVX512-BF16
    or AMX), float16 on CUDA GPUs. About twice as fast; outputs within about 1% of
    float32. Where it is not available, float32 is used and a message says so."""
    min_area: int = Field(default=0, ge=0)
    """Min area: instances smaller than this many pixels (of the full-resolution image)
    are removed from each 2D result; 0 keeps them all. Removes small false detections.
    In 3D inference it applies to each slice before the slices are linked (the 3D
    objects are then filtered by their size in voxels)."""
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


def recommended_config(card: Any, base: PostprocessConfig | None = None) -> Any:
    """``base`` (default: :class:`Inference2DConfig`'s defaults) with the parameters the
    model's card recommends (its ``inference`` section) applied.

    Only the card's keys that are parameters of ``base``'s class are used (a card may
    recommend 3D parameters that 2D inference does not have). The result is validated.

    Raises
    ------
    TamaleInputError
        When a recommended value is invalid (the message names the card).
    """
    base = base if base is not None else Inference2DConfig()
    cls = type(base)
    wanted = {k: v for k, v in dict(card.inference or {}).items() if k in cls.model_fields}
    try:
        return cls(**{**base.model_dump(), **wanted})
    except ValidationError as exc:
        raise TamaleInputError(
            format_validation_error(exc, f"the parameters recommended by model {card.name!r}")
        ) from None


def layered_config(
    cls: type[Any],
    model: str,
    path: str | Path | None = None,
    updates: dict[str, Any] | None = None,
) -> Any:
    """The parameters of a command-line run: ``cls``'s defaults, then what registered
    model ``model``'s card recommends, then the keys of the YAML file ``path``, then
    ``updates`` (the options given), each layer winning over the previous ones."""
    from tamale.registry import get_card

    data = recommended_config(get_card(model), cls()).model_dump()
    if path is not None:
        data.update(cls.yaml_mapping(path))
    data.update(updates or {})
    return cls.from_mapping(data, str(path) if path is not None else "options")
