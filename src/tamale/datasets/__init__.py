"""Training sets on disk: the empanada/tamale directory layout, read and written safely."""

from tamale.datasets.layout import (
    DatasetSummary,
    PatchPair,
    TrainingSetIndex,
    read_image,
    read_mask,
    scan_training_set,
    summarize_training_set,
)
from tamale.datasets.store import (
    PatchProvenance,
    StoreResult,
    iter_store_patches,
    sanitize_source_name,
    store_patches,
    stored_regions,
)

__all__ = [
    "DatasetSummary",
    "PatchPair",
    "PatchProvenance",
    "StoreResult",
    "TrainingSetIndex",
    "iter_store_patches",
    "read_image",
    "read_mask",
    "sanitize_source_name",
    "scan_training_set",
    "store_patches",
    "stored_regions",
    "summarize_training_set",
]
