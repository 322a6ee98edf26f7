"""Parameters of training and finetuning: one typed config for both.

:class:`TrainConfig` holds every parameter of :func:`tamale.training.fit`. Finetuning is
a config with ``base_model`` set (the classes, divisor, architecture and norms then come
from that model's card); training from scratch names the ``architecture`` and the
dataset ``classes`` instead. Hyperparameters the docks do not show live in three nested
blocks (:class:`AugmentConfig`, :class:`LossConfig`, :class:`OptimizerConfig`); a
"custom config" YAML file may set any field, and unknown keys are errors naming the key
(:func:`load_train_config`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from tamale.config import Config, ConfigError
from tamale.errors import TamaleInputError
from tamale.registry.card import ClassSpec

__all__ = [
    "DEFAULT_ARCHITECTURE",
    "FINETUNE_LAYERS",
    "AugmentConfig",
    "LossConfig",
    "OptimizerConfig",
    "TrainConfig",
    "format_dataset_labels",
    "load_train_config",
    "parse_dataset_labels",
]

FINETUNE_LAYERS = ("none", "stage4", "stage3", "stage2", "stage1", "all")
"""Choices of ``finetune_layers``: which encoder stages train (``stageN``: N..4)."""

DEFAULT_ARCHITECTURE = "panoptic_deeplab_r50"
"""Architecture preset used when training from scratch without one (MitoNet_v1's)."""

FinetuneLayers = Literal["none", "stage4", "stage3", "stage2", "stage1", "all"]


class AugmentConfig(Config):
    """Augmentations applied to every training batch, on the training device."""

    enabled: bool = True
    """Augment at all; off, patches are plain crops (useful to check targets)."""
    scale: tuple[float, float] = (0.5, 2.0)
    """Range of the random zoom factor (uniform); below 1 shows more of the image."""
    rotation: float = Field(default=180.0, ge=0.0, le=180.0)
    """Largest rotation in degrees (uniform in [-rotation, rotation])."""
    flips: bool = True
    """Random horizontal and vertical flips."""
    brightness: float = Field(default=0.3, ge=0.0, le=1.0)
    """Largest brightness shift, as a fraction of the intensity range."""
    contrast: float = Field(default=0.3, ge=0.0, le=1.0)
    """Largest relative contrast change."""
    context: float = Field(default=2.0, ge=1.0, le=4.0)
    """Side of the window read around each patch, in patch sizes: zooming out and
    rotating then show real image instead of padding (outside the image: padding)."""

    @field_validator("scale")
    @classmethod
    def _check_scale(cls, value: tuple[float, float]) -> tuple[float, float]:
        lo, hi = value
        if not 0.05 <= lo <= hi <= 10.0:
            raise ValueError(
                f"scale must be (low, high) with 0.05 <= low <= high <= 10, got {value}"
            )
        return value


class LossConfig(Config):
    """Loss terms and their weights (defaults: empanada's ``PanopticLoss``)."""

    ce_weight: float = Field(default=1.0, ge=0.0)
    """Weight of the bootstrapped cross-entropy of the semantic logits."""
    mse_weight: float = Field(default=200.0, ge=0.0)
    """Weight of the mean squared error of the center heatmap."""
    l1_weight: float = Field(default=0.01, ge=0.0)
    """Weight of the L1 error of the offsets (summed, per instance pixel)."""
    pr_weight: float = Field(default=1.0, ge=0.0)
    """Weight of the PointRend point cross-entropy."""
    top_k_percent: float = Field(default=0.2, gt=0.0, le=1.0)
    """Fraction of the hardest pixels the cross-entropy averages (bootstrapping)."""
    heatmap_sigma: float = Field(default=6.0, gt=0.0)
    """Standard deviation of the center Gaussians, in pixels."""


class OptimizerConfig(Config):
    """AdamW and the learning-rate schedule."""

    lr: float = Field(default=3e-3, gt=0.0)
    """Learning rate (the peak of the one-cycle schedule)."""
    weight_decay: float = Field(default=0.1, ge=0.0)
    """AdamW weight decay (never applied to biases and normalisation weights)."""
    schedule: Literal["one_cycle", "constant"] = "one_cycle"
    """``one_cycle``: warm up to ``lr`` then anneal (cosine); ``constant``: ``lr`` throughout."""
    pct_start: float = Field(default=0.3, gt=0.0, lt=1.0)
    """Fraction of the iterations spent warming up (one-cycle)."""


class TrainConfig(Config):
    """Every parameter of :func:`tamale.training.fit` (training and finetuning)."""

    model_name: str
    """Name of the new model in every model list (letters, digits, '.', '_', '-')."""
    train_dir: Path
    """Training set: ``<source>/images`` and ``<source>/masks`` with identical file names
    (what *Store training patches* writes; empanada's layout too)."""
    val_dir: Path | None = None
    """Validation set in the same layout (may be the training directory); empty: no
    validation."""
    model_dir: Path
    """Where the model is written: ``<model_dir>/<model_name>/`` gets the card, the
    weights, the training log and the checkpoints. Created if needed."""
    base_model: str | None = None
    """Finetune this registered model (its architecture, classes, label divisor and
    normalisation are kept). Empty: train a new model from scratch."""
    architecture: str | None = None
    """Architecture preset for a new model (``tamale.models.available_presets()``); empty:
    ``panoptic_deeplab_r50`` (finetuning: the base model's)."""
    architecture_options: dict[str, Any] = Field(default_factory=dict)
    """Options of the preset (e.g. ``{encoder: regnety_400mf, fpn_dim: 32}``)."""
    classes: list[ClassSpec] = Field(default_factory=list)
    """Dataset labels of a new model, one class per entry (``id``, ``name``, ``kind``
    instance or semantic); text ``id,name,kind`` per line is accepted. Empty: one
    instance class, every nonzero mask value is an object."""
    label_divisor: int | None = Field(default=None, ge=2)
    """Label divisor of the masks (``class * divisor + instance``); needed with several
    classes. Empty: every nonzero value is one object of the only class."""
    encoder_init: str | None = None
    """Initialise the encoder of a new model from a registered model (its name) or a
    weights file (.safetensors or a PyTorch state dict), e.g. self-supervised EM weights."""
    finetune_layers: FinetuneLayers | None = None
    """Encoder stages that train: ``none``, ``stage4`` (stage 4 only), ``stage3``
    (stages 3-4), ..., ``all``; frozen stages also keep their batch-norm statistics.
    Empty: ``none`` when finetuning, ``all`` for a new model."""
    iterations: int = Field(default=500, ge=1, le=1_000_000)
    """Number of training iterations (one batch each)."""
    patch_size: int = Field(default=256, ge=32, le=4096)
    """Side of the square training patches, in pixels; a multiple of the model's padding
    factor (16 for Panoptic-DeepLab, 128 for Panoptic-BiFPN)."""
    batch_size: int = Field(default=16, ge=1, le=1024)
    """Patches per iteration; lower it when memory runs out."""
    downsampling: Literal[1, 2, 4] = 1
    """Train at 1/downsampling of the images' resolution (images area-averaged, masks
    sampled), for objects large enough to be seen smaller: each patch then covers
    downsampling^2 times the area. Validation runs 2D inference with the same image
    downsampling, which the model's card recommends; 1 for a finetuned model (it keeps
    the base model's recommendation)."""
    val_every: int | None = Field(default=None, ge=1)
    """Validate every this many iterations (and at the end); empty: 5 times per run."""
    checkpoint_every: int | None = Field(default=None, ge=1)
    """Write a checkpoint every this many iterations (and at the end and on Cancel);
    empty: as often as validation."""
    seed: int = Field(default=0, ge=0)
    """Seed of every random choice: the same config gives the same model."""
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    """Where to train: ``auto`` takes a GPU (CUDA, then Apple MPS) when there is one."""
    amp: bool = True
    """Mixed precision on CUDA GPUs (float16 with gradient scaling); never on the CPU."""
    export: Literal["last", "best"] = "last"
    """Which weights the model gets: those of the last iteration, or those with the best
    validation score (PQ, then F1) among the validations."""
    description: str = ""
    """What the model segments, on which data; shown in Model info."""
    license: str = ""
    """License of the weights (finetuning: empty inherits the base model's)."""
    training_data: str = ""
    """What the model was trained on, with citations (goes into the card)."""
    inference: dict[str, Any] = Field(default_factory=dict)
    """Recommended inference parameters for the new model's card (names as in the
    inference configs, e.g. ``min_area``, ``centers_min_distance``), over those of the
    base model when finetuning. Validation during training uses them, so its scores are
    those of 2D inference with the card's recommendations."""
    replace: bool = False
    """Replace a model of the same name (registered or in the model directory)."""
    register_model: bool = True
    """Register the model at the end, so that every dock lists it."""
    resume: Path | None = None
    """Continue the run saved in this checkpoint (same parameters): the result equals
    an uninterrupted run."""
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    """Augmentations."""
    loss: LossConfig = Field(default_factory=LossConfig)
    """Loss weights."""
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    """Optimiser and schedule."""

    @field_validator("classes", mode="before")
    @classmethod
    def _parse_classes(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return [c.model_dump() for c in parse_dataset_labels(value)]
            except TamaleInputError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("inference")
    @classmethod
    def _check_inference(cls, value: dict[str, Any]) -> dict[str, Any]:
        from tamale.inference.config import Inference2DConfig
        from tamale.inference.config3d import Inference3DConfig

        unknown = sorted(set(value) - set(Inference3DConfig.model_fields))
        if unknown:
            raise ValueError(f"unknown inference parameters: {', '.join(unknown)}")
        if "downsampling" in value:
            raise ValueError("the inference downsampling is the training's `downsampling`")
        Inference2DConfig(**{k: v for k, v in value.items() if k in Inference2DConfig.model_fields})
        return value

    @field_validator("model_name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        from tamale._names import check_name

        try:
            return check_name(value, "model name")
        except TamaleInputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator(
        "val_dir", "resume", "base_model", "architecture", "encoder_init", mode="before"
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        if value is None or (isinstance(value, (str, Path)) and not str(value).strip()):
            return None
        return value

    @model_validator(mode="after")
    def _check_mode(self) -> TrainConfig:
        if self.base_model is not None:
            given = [
                name
                for name, value in (
                    ("architecture", self.architecture),
                    ("architecture_options", self.architecture_options),
                    ("classes", self.classes),
                    ("label_divisor", self.label_divisor),
                    ("encoder_init", self.encoder_init),
                )
                if value
            ]
            if given:
                raise ValueError(
                    f"finetuning {self.base_model!r} keeps its own {', '.join(given)}; "
                    "leave them empty (or train a new model without base_model)"
                )
        ids = [c.id for c in self.classes]
        if len(set(ids)) != len(ids):
            raise ValueError(f"class ids must be unique, got {ids}")
        if len(self.classes) > 1 and self.label_divisor is None:
            raise ValueError(
                "several classes need a label divisor (masks hold class * divisor + instance)"
            )
        return self

    # -- derived -------------------------------------------------------------
    @property
    def is_finetune(self) -> bool:
        """Whether this run finetunes a registered model."""
        return self.base_model is not None

    @property
    def trainable_layers(self) -> str:
        """``finetune_layers`` with its default filled in."""
        if self.finetune_layers is not None:
            return self.finetune_layers
        return "none" if self.is_finetune else "all"

    @property
    def validation_interval(self) -> int:
        """Iterations between validations."""
        return self.val_every or max(1, self.iterations // 5)

    @property
    def checkpoint_interval(self) -> int:
        """Iterations between checkpoints."""
        return self.checkpoint_every or self.validation_interval

    @property
    def output_dir(self) -> Path:
        """``<model_dir>/<model_name>``."""
        return Path(self.model_dir).expanduser() / self.model_name


def parse_dataset_labels(text: str) -> list[ClassSpec]:
    """Parse dataset labels: one ``id,name,semantic|instance`` per line.

    Blank lines and lines starting with ``#`` are skipped. Raises
    :class:`TamaleInputError` naming the offending line.
    """
    classes: list[ClassSpec] = []
    for number, raw in enumerate(str(text).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            raise TamaleInputError(
                f"dataset labels line {number} ({line!r}) must be 'id,name,kind' "
                "(e.g. '1,mito,instance')"
            )
        cid, name, kind = parts
        try:
            class_id = int(cid)
        except ValueError:
            raise TamaleInputError(
                f"dataset labels line {number}: class id {cid!r} is not an integer"
            ) from None
        if class_id < 1:
            raise TamaleInputError(
                f"dataset labels line {number}: class id must be 1 or more (0 is background)"
            )
        if kind.lower() not in ("semantic", "instance"):
            raise TamaleInputError(
                f"dataset labels line {number}: kind {kind!r} must be 'semantic' or 'instance'"
            )
        if not name:
            raise TamaleInputError(f"dataset labels line {number}: the class has no name")
        classes.append(ClassSpec(id=class_id, name=name, kind=kind.lower()))  # type: ignore[arg-type]
    ids = [c.id for c in classes]
    if len(set(ids)) != len(ids):
        raise TamaleInputError(f"dataset labels: class ids must be unique, got {ids}")
    return classes


def format_dataset_labels(classes: list[ClassSpec]) -> str:
    """The inverse of :func:`parse_dataset_labels`."""
    return "\n".join(f"{c.id},{c.name},{c.kind}" for c in classes)


def load_train_config(path: str | Path | None = None, **values: Any) -> TrainConfig:
    """A :class:`TrainConfig` from a YAML file (may be partial) plus explicit values.

    Values given here win over the file's (``None`` values are ignored). Unknown keys,
    in the file or here, are errors naming the key.

    Raises
    ------
    ConfigError
        Unreadable file, unknown keys, wrong types.
    """
    data: dict[str, Any] = {}
    source = ""
    if path is not None and str(path).strip():
        p = Path(path)
        source = str(p)
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except IsADirectoryError:
            raise ConfigError(f"{p} is a folder; choose a YAML file") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p} must hold a mapping of keys to values")
        data.update(loaded)
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return TrainConfig.from_mapping(data, source=source)
