"""Training sets on disk: the empanada/tamale directory layout, read and written safely."""

from tamale.datasets.annotated import (
    MIN_TRAINING_PATCHES,
    annotated_planes,
    empty_label_patches,
    iter_store_annotated,
    store_annotated,
)
from tamale.datasets.layout import (
    DatasetSummary,
    PatchPair,
    TrainingSetIndex,
    read_image,
    read_mask,
    scan_training_set,
    summarize_training_set,
)
from tamale.datasets.pick import (
    FLIPBOOK_DEPTH,
    FLIPBOOK_MIDDLE,
    PickConfig,
    PickResult,
    iter_pick_patches,
    pick_patches,
)
from tamale.datasets.regions import Box, region_of
from tamale.datasets.store import (
    PatchProvenance,
    StoreResult,
    iter_store_patches,
    sanitize_source_name,
    store_patches,
    stored_regions,
)

__all__ = [
    "FLIPBOOK_DEPTH",
    "FLIPBOOK_MIDDLE",
    "MIN_TRAINING_PATCHES",
    "Box",
    "DatasetSummary",
    "PatchPair",
    "PatchProvenance",
    "PickConfig",
    "PickResult",
    "StoreResult",
    "TrainingSetIndex",
    "annotated_planes",
    "empty_label_patches",
    "iter_pick_patches",
    "iter_store_annotated",
    "iter_store_patches",
    "pick_patches",
    "read_image",
    "read_mask",
    "region_of",
    "sanitize_source_name",
    "scan_training_set",
    "store_annotated",
    "store_patches",
    "stored_regions",
    "summarize_training_set",
]
