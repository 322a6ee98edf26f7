"""The patching engine: turn images into training and prediction patches.

* **specifications** (:mod:`~tamale.patching.specs`): :class:`PatchSpecs`,
  :class:`TileSpecs`, :class:`UncorrelatedPatchSpecs`, :class:`PatchSpecsBatch`;
* **strategies** (index -> spec, :class:`Patching` protocol):
  :class:`StratifiedPatching`, :class:`RandomPatching`, :class:`SequentialPatching`,
  :class:`TiledPatching` (+ :func:`stitch_tiles`), :class:`WholeSamplePatching`,
  :class:`FixedPatching`;
* **image stacks and extraction**: :class:`ArrayImageStack`, :class:`ZarrImageStack`,
  :class:`TiffImageStack`, :func:`image_stack`, :class:`PatchExtractor`;
* **constructors** (index -> input, target, spec): :class:`BasicPatchConstr`,
  :class:`MultiChannelTargetMsPatchConstr`, :class:`IndependentTargetsMsPatchConstr`,
  :class:`PairedInputTargetMsPatchConstr`, :class:`PredMsPatchConstr`,
  :func:`extract_lateral_context`;
* **mask-driven samplers**: :class:`ImageCollection`, :class:`PatchSampler`,
  :class:`BlueNoisePatchSampler`;
* **torch**: :class:`PatchDataset` (imported on first use, so importing this package
  does not import torch).

See ``docs/patching.md``.
"""

from __future__ import annotations

from typing import Any

from tamale.patching._validate import PatchIndexError
from tamale.patching.blue_noise import BlueNoisePatchSampler, poisson_disk_positions
from tamale.patching.constructor import BasicPatchConstr, PatchConstr
from tamale.patching.extractor import PatchExtractor
from tamale.patching.fixed import FixedPatching
from tamale.patching.image_collection import ImageCollection
from tamale.patching.image_stack import (
    ArrayImageStack,
    ImageMetadata,
    ImageStack,
    TiffImageStack,
    ZarrImageStack,
    image_stack,
)
from tamale.patching.lateral_context import extract_lateral_context
from tamale.patching.mask_coverage import MaskCoverage
from tamale.patching.microsplit import (
    IndependentTargetsMsPatchConstr,
    MultiChannelTargetMsPatchConstr,
    PairedInputTargetMsPatchConstr,
    PredMsPatchConstr,
)
from tamale.patching.random_patching import RandomPatching
from tamale.patching.samplers import PatchSampler
from tamale.patching.sequential import SequentialPatching
from tamale.patching.specs import (
    PatchSpecs,
    PatchSpecsBatch,
    TileSpecs,
    UncorrelatedPatchSpecs,
    is_tile_specs,
    is_uncorrelated_specs,
)
from tamale.patching.strategy import Patching
from tamale.patching.stratified import StratifiedPatching, grid_cells_overlapping
from tamale.patching.tiled import TiledPatching, stitch_tiles
from tamale.patching.whole_sample import WholeSamplePatching

__all__ = [
    "ArrayImageStack",
    "BasicPatchConstr",
    "BlueNoisePatchSampler",
    "FixedPatching",
    "ImageCollection",
    "ImageMetadata",
    "ImageStack",
    "IndependentTargetsMsPatchConstr",
    "MaskCoverage",
    "MultiChannelTargetMsPatchConstr",
    "PairedInputTargetMsPatchConstr",
    "PatchConstr",
    "PatchDataset",
    "PatchExtractor",
    "PatchIndexError",
    "PatchSampler",
    "PatchSpecs",
    "PatchSpecsBatch",
    "Patching",
    "PredMsPatchConstr",
    "RandomPatching",
    "SequentialPatching",
    "StratifiedPatching",
    "TiffImageStack",
    "TileSpecs",
    "TiledPatching",
    "UncorrelatedPatchSpecs",
    "WholeSamplePatching",
    "ZarrImageStack",
    "extract_lateral_context",
    "grid_cells_overlapping",
    "image_stack",
    "is_tile_specs",
    "is_uncorrelated_specs",
    "poisson_disk_positions",
    "stitch_tiles",
]


def __getattr__(name: str) -> Any:
    if name == "PatchDataset":
        from tamale.patching.dataset import PatchDataset

        return PatchDataset
    raise AttributeError(f"module 'tamale.patching' has no attribute {name!r}")
