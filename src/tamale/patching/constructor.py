"""Patch constructors: turn a dataset index into model input and target patches.

A constructor combines a patching strategy (index -> :class:`PatchSpecs`) with patch
extractors (spec -> pixels). :class:`BasicPatchConstr` reads an input patch and,
optionally, the target patch at the same place; the MicroSplit constructors
(:mod:`tamale.patching.microsplit`) add lateral context and channel mixing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tamale.errors import TamaleInputError
from tamale.patching._random import new_seed
from tamale.patching._validate import check_epoch
from tamale.patching.extractor import PatchExtractor
from tamale.patching.image_stack import ImageMetadata
from tamale.patching.specs import PatchSpecs
from tamale.patching.strategy import Patching

__all__ = ["BasicPatchConstr", "PatchConstr", "check_strategy_matches"]


@runtime_checkable
class PatchConstr(Protocol):
    """What every patch constructor offers."""

    @property
    def n_patches(self) -> int:
        """Number of patches (dataset length)."""
        ...

    @property
    def input_shapes(self) -> Sequence[Sequence[int]]:
        """Shapes SC(Z)YX of the input images."""
        ...

    @property
    def target_shapes(self) -> Sequence[Sequence[int]] | None:
        """Shapes SC(Z)YX of the target images, or None."""
        ...

    def construct_patch(self, index: int) -> tuple[np.ndarray, np.ndarray | None, PatchSpecs]:
        """Input patch, target patch (or None) and the specification used."""
        ...

    def get_principal_input(self, input_patch: np.ndarray) -> np.ndarray:
        """The part of the input used for normalisation statistics, C(Z)YX."""
        ...

    def get_input_image_metadata(self, patch_spec: PatchSpecs) -> ImageMetadata:
        """Metadata of the input image of a patch."""
        ...

    def get_target_image_metadata(self, patch_spec: PatchSpecs) -> ImageMetadata | None:
        """Metadata of the target image of a patch, or None."""
        ...

    def get_patch_indices(self, data_idx: int) -> Sequence[int]:
        """Indices whose (principal) patch comes from image stack ``data_idx``."""
        ...

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch of the random draws."""
        ...


def check_strategy_matches(strategy: Patching, extractor: PatchExtractor, what: str) -> None:
    """The strategy's data shapes must be the extractor's (channels aside)."""
    shapes = list(strategy.data_shapes)
    ext = extractor.shapes
    if len(shapes) != len(ext):
        raise TamaleInputError(
            f"the patching strategy knows {len(shapes)} image stack(s) but the {what} "
            f"extractor has {len(ext)}: build the strategy from extractor.shapes"
        )
    for i, (a, b) in enumerate(zip(shapes, ext)):
        if len(a) != len(b) or a[0] != b[0] or tuple(a[2:]) != tuple(b[2:]):
            raise TamaleInputError(
                f"image stack {i}: the patching strategy has shape {tuple(a)} but the {what} "
                f"extractor has {tuple(b)} (samples and spatial sizes must agree; build the "
                "strategy from extractor.shapes)"
            )


def resolve_seed(rng: np.random.Generator | int | None) -> int:
    """A base seed from an explicit generator, an int or the OS."""
    if rng is None:
        return new_seed()
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63 - 1))
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return int(rng)
    raise TamaleInputError(
        f"rng must be a numpy Generator, a non-negative int or None, got {rng!r}"
    )


class BasicPatchConstr:
    """Input patches and, optionally, target patches at the same place.

    Parameters
    ----------
    patching_strategy : Patching
        Maps indices to patch specifications (its data shapes must be the input
        extractor's shapes).
    input_extractor : PatchExtractor
        Extractor of the inputs.
    target_extractor : PatchExtractor, optional
        Extractor of the targets (same samples and spatial sizes as the inputs; the
        channels may differ), or None for prediction / self-supervision.
    channels : sequence of int, optional
        Input channels to read (``None``: all).
    """

    def __init__(
        self,
        patching_strategy: Patching,
        input_extractor: PatchExtractor,
        target_extractor: PatchExtractor | None = None,
        channels: Sequence[int] | None = None,
    ) -> None:
        check_strategy_matches(patching_strategy, input_extractor, "input")
        if target_extractor is not None:
            check_strategy_matches(patching_strategy, target_extractor, "target")
        if channels is not None:
            channels = input_extractor.image_stacks[0].check_channels(channels)  # type: ignore[attr-defined]
        self.patching_strategy = patching_strategy
        self.input_extractor = input_extractor
        self.target_extractor = target_extractor
        self.channels = channels

    @property
    def n_patches(self) -> int:
        """Number of patches."""
        return self.patching_strategy.n_patches

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        """Shapes SC(Z)YX of the input images."""
        return self.input_extractor.shapes

    @property
    def target_shapes(self) -> list[tuple[int, ...]] | None:
        """Shapes SC(Z)YX of the target images, or None."""
        return None if self.target_extractor is None else self.target_extractor.shapes

    def set_epoch(self, epoch: int) -> None:
        """Forward the epoch to the strategy."""
        self.patching_strategy.set_epoch(check_epoch(epoch))

    def construct_patch(self, index: int) -> tuple[np.ndarray, np.ndarray | None, PatchSpecs]:
        """Input (float32 C(Z)YX), target (float32 C(Z)YX or None) and the spec."""
        spec = self.patching_strategy.get_patch_spec(index)
        x = self.input_extractor.extract(spec, self.channels)
        y = None if self.target_extractor is None else self.target_extractor.extract(spec)
        return x, y, spec

    def get_principal_input(self, input_patch: np.ndarray) -> np.ndarray:
        """The input itself (C(Z)YX)."""
        return input_patch

    def get_input_image_metadata(self, patch_spec: PatchSpecs) -> ImageMetadata:
        """Metadata of the input stack of the patch."""
        return self.input_extractor.metadata(patch_spec.data_idx)

    def get_target_image_metadata(self, patch_spec: PatchSpecs) -> ImageMetadata | None:
        """Metadata of the target stack of the patch, or None."""
        if self.target_extractor is None:
            return None
        return self.target_extractor.metadata(patch_spec.data_idx)

    def get_patch_indices(self, data_idx: int) -> Sequence[int]:
        """Indices whose patches come from stack ``data_idx``."""
        return self.patching_strategy.get_patch_indices(data_idx)

    def __repr__(self) -> str:
        return f"BasicPatchConstr({self.patching_strategy!r}, targets={self.target_extractor is not None})"


def as_float_pair(value: Any, name: str) -> tuple[float, float]:
    """A ``(low, high)`` pair with ``0 <= low <= high``."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise TamaleInputError(
            f"{name} must be a (low, high) pair of numbers, got {value!r}"
        ) from None
    if not 0 <= low <= high:
        raise TamaleInputError(f"{name} must satisfy 0 <= low <= high, got ({low}, {high})")
    return low, high
