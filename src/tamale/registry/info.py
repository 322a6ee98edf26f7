"""Everything a user needs to choose, run and finetune a model, as typed data.

:func:`model_info` gathers it from the card and the files; :func:`format_info`
renders it as Markdown (the dock shows it, ``tamale models info`` prints it).
Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tamale.config import ConfigError
from tamale.errors import TamaleInputError
from tamale.progress import CancelToken, ProgressCallback, ProgressEvent, Work, check, drain
from tamale.registry.card import ModelCard
from tamale.registry.install import read_marker
from tamale.registry.store import get_card, hidden_models, model_location
from tamale.registry.verify import architecture_parameters, count_parameters, load_for_check
from tamale.registry.weights import local_weights_path, weights_refs

__all__ = [
    "ClassInfo",
    "ModelInfo",
    "WeightsInfo",
    "format_info",
    "iter_model_info",
    "labeling_ids",
    "model_info",
]


@dataclass(frozen=True)
class ClassInfo:
    """One class of a model and how to label it in training data."""

    id: int
    name: str
    kind: str
    """``instance`` (each object its own id) or ``semantic`` (one id for the class)."""
    first_label: int
    """The first label id to paint for this class."""
    labeling: str
    """One sentence: which ids to paint."""


@dataclass(frozen=True)
class WeightsInfo:
    """One weights file of a model."""

    role: str
    """``weights`` or ``weights_quantized``."""
    uri: str
    """As written in the card (relative path, absolute path or URL)."""
    path: Path
    """The local file (the download cache for URLs)."""
    available: bool
    """Whether the local file exists (a URL not downloaded yet: False)."""
    format: str
    sha256: str | None
    size_bytes: int | None


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`model_info` reports about a registered model."""

    name: str
    location: str
    """``bundled`` (ships with tamale) or ``user`` (registered or imported)."""
    hidden: bool
    description: str
    architecture: str
    """A tamale preset name, or ``TorchScript`` for empanada-style models."""
    card_format: str
    """``tamale`` or ``empanada`` (the format the card was first written in)."""
    classes: tuple[ClassInfo, ...]
    label_divisor: int | None
    padding_factor: int
    norms: dict[str, float]
    parameters: int | None
    """Parameter count, or None when it could not be counted (see ``parameters_note``)."""
    parameter_parts: dict[str, int]
    """Parameters per part (``encoder``, ``decoders``, ``heads``, ``pointrend``) when the
    architecture is known; empty for TorchScript models."""
    parameters_note: str
    inference: dict[str, Any]
    finetune: dict[str, Any]
    license: str
    training_data: str
    citation: str
    quality: dict[str, float]
    card_path: Path | None
    directory: Path | None
    weights: tuple[WeightsInfo, ...]
    created: dict[str, Any] = field(default_factory=dict)
    """Who made the model directory and how (register, import), when known."""


def labeling_ids(class_id: int, label_divisor: int | None, n: int = 3) -> list[int]:
    """The first ``n`` panoptic label ids of class ``class_id`` (``id * divisor + k``)."""
    if label_divisor is None:
        return list(range(1, n + 1))
    return [class_id * label_divisor + k for k in range(1, n + 1)]


def _class_infos(card: ModelCard) -> tuple[ClassInfo, ...]:
    single = len(card.classes) == 1
    div = card.label_divisor
    out = []
    for c in card.classes:
        if c.kind == "instance":
            ids = labeling_ids(c.id, div)
            text = f"label each {c.name} object with its own id: {', '.join(map(str, ids))}, ..."
            if div is not None:
                text += f" (at most {div - 1} {c.name} objects per image)"
                if single:
                    text += "; a one-class model also accepts any unique ids (1, 2, 3, ...)"
            else:
                text += " (any unique positive ids)"
        else:
            ids = [c.id * div + 1 if div is not None else c.id]
            text = f"label every {c.name} pixel {ids[0]} (one id for the whole class)"
        out.append(ClassInfo(c.id, c.name, c.kind, ids[0], text))
    return tuple(out)


def _weights_infos(card: ModelCard) -> tuple[WeightsInfo, ...]:
    out = []
    for role, ref in weights_refs(card).items():
        path = local_weights_path(card, ref)
        available = path.is_file()
        out.append(
            WeightsInfo(
                role,
                ref.uri,
                path,
                available,
                ref.format,
                ref.sha256,
                path.stat().st_size if available else None,
            )
        )
    return tuple(out)


def _count(
    card: ModelCard, marker: dict[str, Any] | None
) -> tuple[int | None, dict[str, int], str]:
    """(total, parts, note): from the architecture, the registration record, or the weights."""
    try:
        parts = architecture_parameters(card)
    except (TamaleInputError, ConfigError) as exc:
        return None, {}, f"not counted: {exc}"
    if parts is not None:
        total = parts.pop("total")
        return total, {k: v for k, v in parts.items() if v}, ""
    if marker and isinstance(marker.get("parameters"), int):
        return marker["parameters"], {}, ""
    path = local_weights_path(card, card.weights)
    if not path.is_file():
        where = "downloaded" if card.weights.is_url else "found"
        return None, {}, f"not counted: the weights are not {where} yet ({card.weights.uri})"
    local = card.updated(weights={**card.weights.model_dump(), "uri": str(path), "sha256": None})
    try:
        return count_parameters(load_for_check(local)), {}, ""
    except TamaleInputError as exc:
        return None, {}, f"not counted: {exc}"


def iter_model_info(
    name: str, *, count: bool = True, cancel: CancelToken | None = None
) -> Work[ModelInfo]:
    """Gather :class:`ModelInfo` for model ``name`` (work generator).

    Parameters
    ----------
    name : str
        A registered model (hidden bundled models too).
    count : bool
        Count parameters (builds the model when its registration did not
        record the count; nothing is downloaded).
    """
    location = model_location(name)
    card = get_card(name)
    directory = card.path.parent if card.path is not None else None
    marker = read_marker(directory) if directory is not None else None
    check(cancel)
    if count:
        yield ProgressEvent("info", 0, 1, f"counting the parameters of {name}")
        parameters, parts, note = _count(card, marker)
    else:
        parameters, parts, note = None, {}, "not counted"
    yield ProgressEvent("info", 1, 1, name)
    return ModelInfo(
        name=name,
        location=location,
        hidden=name in hidden_models(),
        description=card.description,
        architecture=card.architecture or "TorchScript",
        card_format=card.source,
        classes=_class_infos(card),
        label_divisor=card.label_divisor,
        padding_factor=card.padding_factor,
        norms={"mean": card.norms.mean, "std": card.norms.std},
        parameters=parameters,
        parameter_parts=parts,
        parameters_note=note,
        inference=dict(card.inference),
        finetune=dict(card.finetune),
        license=card.license,
        training_data=card.training_data,
        citation=card.citation,
        quality=dict(card.quality),
        card_path=card.path,
        directory=directory,
        weights=_weights_infos(card),
        created=dict(marker or {}),
    )


def model_info(
    name: str,
    *,
    count: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ModelInfo:
    """:class:`ModelInfo` for model ``name`` (blocking form of :func:`iter_model_info`)."""
    return drain(iter_model_info(name, count=count, cancel=cancel), progress, cancel)


# -- rendering ---------------------------------------------------------------
def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _patch_sizes(pf: int) -> str:
    sizes = [s for s in (128, 256, 384, 512, 768, 1024) if s % pf == 0][:4] or [pf, 2 * pf]
    return ", ".join(map(str, sizes))


def _mapping(data: dict[str, Any], indent: str = "") -> list[str]:
    lines = []
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"{indent}- {key}:")
            lines.extend(_mapping(value, indent + "  "))
        else:
            lines.append(f"{indent}- {key}: {value}")
    return lines


def format_info(info: ModelInfo) -> str:
    """Render ``info`` as Markdown (readable as plain text too)."""
    where = "bundled with tamale" if info.location == "bundled" else "user model"
    if info.hidden:
        where += ", hidden"
    lines = [f"# {info.name}", "", f"*{where}; {info.architecture}; {info.card_format} card*", ""]
    if info.description:
        lines += [info.description.strip(), ""]

    lines += ["## Classes and how to label them", ""]
    for c in info.classes:
        lines.append(f"- **{c.name}** (class {c.id}, {c.kind}): {c.labeling}")
    if info.label_divisor is not None:
        lines.append(
            f"- Use a label divisor of {info.label_divisor} (panoptic ids are "
            f"class * {info.label_divisor} + object number; set *max objects per class* to "
            f"{info.label_divisor})."
        )
    else:
        lines.append("- Label divisor: none (any unique id per object works).")
    lines.append("")

    lines += [
        "## Input",
        "",
        f"- Patch and crop sizes must be divisible by {info.padding_factor} "
        f"(e.g. {_patch_sizes(info.padding_factor)}); images are padded to a multiple of "
        f"{info.padding_factor}.",
        f"- Intensity normalisation: mean {info.norms['mean']:g}, std {info.norms['std']:g} "
        "(fractions of the image type's maximum).",
    ]
    if info.parameters is not None:
        parts = ", ".join(f"{k} {v:,}" for k, v in info.parameter_parts.items())
        lines.append(f"- Parameters: {info.parameters:,}" + (f" ({parts})" if parts else ""))
    else:
        lines.append(f"- Parameters: {info.parameters_note}")
    lines.append("")

    if info.inference:
        lines += ["## Recommended inference parameters", "", *_mapping(info.inference), ""]
    if info.finetune:
        lines += ["## Finetuning defaults", "", *_mapping(info.finetune), ""]
    if info.quality:
        lines += ["## Measured quality", ""]
        lines += [f"- {k}: {v:g}" for k, v in info.quality.items()]
        lines.append("")
    lines += [
        "## Training data and license",
        "",
        f"- Training data: {info.training_data.strip() or 'not stated in the card'}",
        f"- License: {info.license.strip() or 'not stated in the card'}",
        *([f"- Cite: {info.citation.strip()}"] if info.citation.strip() else []),
        "",
        "## Files",
        "",
        f"- Card: {info.card_path}",
    ]
    for w in info.weights:
        role = "Weights" if w.role == "weights" else "Quantized weights"
        state = _size(w.size_bytes) if w.available else "not downloaded yet"
        lines.append(f"- {role} ({w.format}, {state}): {w.path}")
        if w.uri != w.path.name and w.uri != str(w.path):
            lines.append(f"  - from: {w.uri}")
        lines.append(f"  - sha256: {w.sha256 or 'not recorded'}")
    if info.created:
        lines.append(
            f"- Added by tamale {info.created.get('tamale_version', '?')} "
            f"({info.created.get('origin', '?')}, {info.created.get('created', '?')})"
        )
    return "\n".join(lines).rstrip() + "\n"
