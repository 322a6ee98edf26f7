"""Training and finetuning panoptic models: one loop, live feedback, safe outputs.

:func:`fit` (blocking) / :func:`iter_fit` (work generator) train a model from a
:class:`TrainConfig`: from scratch (an architecture preset and the dataset's classes) or
by finetuning a registered model (``base_model``). See the module docstrings:

* :mod:`~tamale.training.config` — :class:`TrainConfig` and its blocks, dataset labels;
* :mod:`~tamale.training.data` — reading and checking training sets;
* :mod:`~tamale.training.sampler` — stratified patches, batch by batch;
* :mod:`~tamale.training.augment` — augmentation on the training device;
* :mod:`~tamale.training.targets` — semantic, center and offset targets, vectorised;
* :mod:`~tamale.training.losses` — the panoptic loss;
* :mod:`~tamale.training.metrics` — IoU, PQ, F1@0.5;
* :mod:`~tamale.training.freeze` — finetunable layers, frozen batch-norm statistics;
* :mod:`~tamale.training.fit` — the loop, checkpoints, resume, Cancel;
* :mod:`~tamale.training.export` — card, weights, registration.
"""

from tamale.training.checkpoint import load_checkpoint, save_checkpoint
from tamale.training.config import (
    DEFAULT_ARCHITECTURE,
    FINETUNE_LAYERS,
    AugmentConfig,
    LossConfig,
    OptimizerConfig,
    TrainConfig,
    format_dataset_labels,
    load_train_config,
    parse_dataset_labels,
)
from tamale.training.fit import TrainResult, fit, iter_fit
from tamale.training.freeze import freeze_stages, train_mode, trainable_parameters
from tamale.training.metrics import SegmentationScores, score_labels, segment_keys
from tamale.training.targets import BatchTargets, batch_targets

__all__ = [
    "DEFAULT_ARCHITECTURE",
    "FINETUNE_LAYERS",
    "AugmentConfig",
    "BatchTargets",
    "LossConfig",
    "OptimizerConfig",
    "SegmentationScores",
    "TrainConfig",
    "TrainResult",
    "batch_targets",
    "fit",
    "format_dataset_labels",
    "freeze_stages",
    "iter_fit",
    "load_checkpoint",
    "load_train_config",
    "parse_dataset_labels",
    "save_checkpoint",
    "score_labels",
    "segment_keys",
    "train_mode",
    "trainable_parameters",
]
