"""Model cards: everything needed to build, run, finetune and cite a model.

A card is a small YAML file. tamale writes its own format (``format_version:
1``) and reads empanada's model YAML as it is, so an existing empanada model
(TorchScript ``.pth`` + YAML) registers and runs unchanged.

tamale format::

    format_version: 1
    name: MitoNet-mini-tamale
    description: Mitochondria instances in EM.
    architecture: panoptic_bifpn_r50        # a tamale preset; null for TorchScript
    architecture_options: {}
    weights: {uri: weights.safetensors, sha256: 9f86d0..., format: safetensors}
    weights_quantized: null
    classes:
      - {id: 1, name: mitochondria, kind: instance}
    label_divisor: 1000
    padding_factor: 128
    norms: {mean: 0.57571, std: 0.12765}
    inference: {confidence_thr: 0.5, centers_min_distance: 3}
    finetune: {patch_size: 256}
    license: CC-BY-NC-SA-3.0
    training_data: ...
    quality: {f1_at_0.5: 0.9}
    citation: ...

empanada format (read only): ``class_names``, ``labels``, ``thing_list``,
``model``, ``model_quantized``, ``padding_factor``, ``norms``,
``description``, ``FINETUNE``.

Weight locations (``uri``) are paths relative to the card's directory,
absolute paths, or http(s) URLs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, PrivateAttr, field_validator, model_validator

from tamale._names import check_name
from tamale.config import Config, ConfigError
from tamale.errors import TamaleInputError

__all__ = [
    "EMPANADA_KEYS",
    "ClassSpec",
    "ModelCard",
    "Norms",
    "WeightsRef",
    "card_from_empanada",
    "card_from_yaml",
    "card_to_yaml",
    "load_card",
    "save_card",
]

CARD_FORMAT_VERSION = 1
EMPANADA_KEYS = frozenset(
    {
        "class_names",
        "labels",
        "thing_list",
        "model",
        "model_quantized",
        "padding_factor",
        "norms",
        "description",
        "FINETUNE",
    }
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ClassSpec(Config):
    """One segmentation class of a model."""

    id: int = Field(ge=1)
    """Class id; panoptic label ids of this class are ``id * label_divisor + k``."""
    name: str = Field(min_length=1)
    """Human-readable class name (may contain spaces)."""
    kind: Literal["instance", "semantic"]
    """``instance``: objects are told apart; ``semantic``: one region per class."""


class Norms(Config):
    """Intensity normalisation, in units of the input dtype's range (empanada's convention)."""

    mean: float = 0.57571
    """Mean intensity of the training data divided by the dtype maximum."""
    std: float = Field(default=0.12765, gt=0)
    """Standard deviation of the training data divided by the dtype maximum."""


class WeightsRef(Config):
    """Where a model's weights are and how to check them."""

    uri: str = Field(min_length=1)
    """Path relative to the card's directory, absolute path, or http(s) URL."""
    sha256: str | None = None
    """Lower-case hex SHA-256 of the file; checked on download and load when given."""
    format: Literal["safetensors", "torchscript"] = "safetensors"
    """``safetensors`` (tamale; loading runs no code) or ``torchscript`` (empanada)."""

    @field_validator("sha256")
    @classmethod
    def _check_sha(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.lower()
        if not _SHA256.match(value):
            raise ValueError("must be 64 hexadecimal characters")
        return value

    @property
    def is_url(self) -> bool:
        """Whether the weights are remote."""
        return self.uri.lower().startswith(("http://", "https://"))


class ModelCard(Config):
    """A typed model card (see module docstring for the YAML layout)."""

    format_version: int = CARD_FORMAT_VERSION
    """Card format version; a card from a newer tamale is refused."""
    name: str
    """Registry name: letters, digits, '.', '_' or '-'."""
    description: str = ""
    """What the model segments, on which data, and how well."""
    architecture: str | None = None
    """tamale architecture preset (e.g. ``panoptic_bifpn_r50``); None for TorchScript models."""
    architecture_options: dict[str, Any] = Field(default_factory=dict)
    """Keyword options for the preset (validated by ``tamale.models``)."""
    weights: WeightsRef
    """The float weights."""
    weights_quantized: WeightsRef | None = None
    """Optional int8 weights (TorchScript) for CPU inference."""
    classes: list[ClassSpec] = Field(min_length=1)
    """Segmentation classes, in model output order (background excluded)."""
    label_divisor: int | None = Field(default=1000, ge=1)
    """Divisor used by the model's training labels (``class * divisor + instance``)."""
    padding_factor: int = Field(default=16, ge=1)
    """Inputs are padded to a multiple of this; patch sizes must be divisible by it."""
    norms: Norms = Field(default_factory=Norms)
    """Intensity normalisation."""
    inference: dict[str, Any] = Field(default_factory=dict)
    """Recommended inference parameters (names as in the inference configs)."""
    finetune: dict[str, Any] = Field(default_factory=dict)
    """Finetuning defaults (names as in the training config; empanada's FINETUNE block as is)."""
    license: str = ""
    """License of the weights, including terms inherited from the training data."""
    training_data: str = ""
    """What the model was trained on, with citations."""
    quality: dict[str, float] = Field(default_factory=dict)
    """Measured quality (e.g. ``f1_at_0.5``, ``pq``) and where it was measured (in description)."""
    citation: str = ""
    """How to cite the model and its training data (papers, DOIs)."""
    source: Literal["tamale", "empanada"] = "tamale"
    """Which card format the card was read from."""

    _path: Path | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        try:
            return check_name(value, "model name")
        except TamaleInputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("format_version")
    @classmethod
    def _check_version(cls, value: int) -> int:
        if value > CARD_FORMAT_VERSION:
            raise ValueError(
                f"card format {value} comes from a newer tamale (this one reads up to "
                f"{CARD_FORMAT_VERSION}); upgrade tamale"
            )
        return value

    @model_validator(mode="after")
    def _check_classes(self) -> ModelCard:
        ids = [c.id for c in self.classes]
        if len(set(ids)) != len(ids):
            raise ValueError(f"class ids must be unique, got {ids}")
        if self.architecture is None and self.weights.format != "torchscript":
            raise ValueError("a card without an architecture needs TorchScript weights")
        return self

    # -- derived views -----------------------------------------------------
    @property
    def path(self) -> Path | None:
        """The YAML file this card was read from, if any."""
        return self._path

    @property
    def thing_list(self) -> list[int]:
        """Ids of the instance classes."""
        return [c.id for c in self.classes if c.kind == "instance"]

    @property
    def class_names(self) -> dict[int, str]:
        """Class id → name."""
        return {c.id: c.name for c in self.classes}

    def resolve(self, ref: WeightsRef) -> str:
        """The weights location as an absolute path or a URL."""
        if ref.is_url:
            return ref.uri
        p = Path(ref.uri).expanduser()
        if not p.is_absolute() and self._path is not None:
            p = self._path.parent / p
        return str(p)

    def updated(self, **changes: Any) -> ModelCard:
        """A validated copy with ``changes`` applied (same card path)."""
        data = {**self.model_dump(), **changes}
        return ModelCard.from_mapping(data).with_path(self._path)

    def with_path(self, path: Path | None) -> ModelCard:
        """Remember where the card lives (relative weight paths resolve against it)."""
        self._path = None if path is None else Path(path).resolve()
        return self


def card_from_empanada(data: dict[str, Any], name: str, path: Path | None = None) -> ModelCard:
    """Convert an empanada model YAML mapping into a :class:`ModelCard`.

    Unknown keys are refused (the message names them). The card keeps
    empanada's ``FINETUNE`` block in ``finetune`` and takes the label divisor
    from it when present.
    """
    unknown = sorted(set(data) - EMPANADA_KEYS)
    if unknown:
        raise ConfigError(
            f"invalid empanada model card{f' in {path}' if path else ''}: unknown key(s) "
            + ", ".join(map(str, unknown))
        )
    for key in ("class_names", "model"):
        if key not in data:
            raise ConfigError(f"invalid empanada model card: missing key {key}")
    try:
        class_names = {int(k): str(v) for k, v in dict(data["class_names"]).items()}
        things = {int(t) for t in data.get("thing_list") or []}
        labels = [int(x) for x in data.get("labels") or class_names]
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"invalid empanada model card: class_names/labels/thing_list: {exc}"
        ) from None
    missing = [lab for lab in labels if lab not in class_names]
    if missing:
        raise ConfigError(
            f"invalid empanada model card: labels {missing} have no class_names entry"
        )
    finetune = dict(data.get("FINETUNE") or {})
    divisor = None
    for block in ("engine_params", "dataset_params"):
        value = (finetune.get(block) or {}).get("label_divisor")
        if value:
            divisor = int(value)
            break
    quantized = data.get("model_quantized")
    mapping = {
        "name": name,
        "description": str(data.get("description") or ""),
        "architecture": None,
        "weights": {"uri": str(data["model"]), "format": "torchscript"},
        "weights_quantized": {"uri": str(quantized), "format": "torchscript"}
        if quantized
        else None,
        "classes": [
            {
                "id": lab,
                "name": class_names[lab],
                "kind": "instance" if lab in things else "semantic",
            }
            for lab in labels
        ],
        "label_divisor": divisor,
        "padding_factor": int(data.get("padding_factor") or 16),
        "norms": dict(data.get("norms") or {}),
        "finetune": finetune,
        "source": "empanada",
    }
    return ModelCard.from_mapping(mapping, source=str(path) if path else "").with_path(path)


def is_empanada_card(data: dict[str, Any]) -> bool:
    """Whether a YAML mapping looks like an empanada model card."""
    return "format_version" not in data and "class_names" in data and "model" in data


def load_card(path: str | Path, name: str | None = None) -> ModelCard:
    """Read a model card (tamale or empanada format) with ``yaml.safe_load``.

    Parameters
    ----------
    path : path
        The YAML file.
    name : str, optional
        Name to give the model (required for empanada cards unless the file
        name is a valid model name; defaults to the card's own name).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TamaleInputError(f"model card not found: {path}") from None
    except IsADirectoryError:
        raise TamaleInputError(f"{path} is a folder; choose the card's YAML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text (YAML) file") from None
    card = card_from_yaml(text, name, source=str(path), default_name=path.stem)
    return card.with_path(path)


def card_to_yaml(card: ModelCard) -> str:
    """``card`` as YAML text in tamale's format."""
    return yaml.safe_dump(card.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def card_from_yaml(
    text: str, name: str | None = None, source: str = "", default_name: str | None = None
) -> ModelCard:
    """Parse card YAML text (tamale or empanada format) with ``yaml.safe_load``.

    ``name`` overrides the card's name; empanada cards, which have none, take
    ``name`` or else ``default_name``. The card has no path: relative weights
    locations stay relative.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source or 'model card'} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source or 'model card'} must hold a mapping of keys to values")
    if is_empanada_card(data):
        name = name or default_name
        if name is None:
            raise TamaleInputError("an empanada model card needs a model name")
        return card_from_empanada(data, name)
    if name is not None:
        data = {**data, "name": name}
    return ModelCard.from_mapping(data, source=source)


def save_card(card: ModelCard, path: str | Path) -> Path:
    """Write ``card`` in tamale's format (YAML) and return the path."""
    path = Path(path)
    path.write_text(card_to_yaml(card), encoding="utf-8")
    return path
