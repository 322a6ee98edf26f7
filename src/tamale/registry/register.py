"""Register a model from a card file plus optional weights (paths or URLs).

What happens, in order (nothing enters the registry before every check passed):

1. the card is read (tamale or empanada format; unknown keys and wrong types
   are named) and the model name is checked: valid, not a bundled model's
   name, not taken unless ``replace``;
2. local weights are *copied* into a staging folder (the user's files are
   never moved or changed) while their SHA-256 is computed; URLs are
   downloaded into the cache; either way the hash is checked against the card
   when the card gives one, and recorded in the stored card when it does not;
3. the model is built from the weights (a mismatch names the layer);
4. the card is written in tamale's format and the staging folder is renamed
   into ``<models dir>/<name>``; every model list is notified.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from tamale._names import check_name
from tamale.errors import TamaleInputError
from tamale.progress import CancelToken, ProgressCallback, ProgressEvent, Work, check, drain
from tamale.registry.card import ModelCard, WeightsRef, load_card, save_card
from tamale.registry.download import is_url, iter_download
from tamale.registry.events import notify_changed
from tamale.registry.hashing import check_sha256, iter_copy_hashed
from tamale.registry.install import (
    check_free_name,
    install,
    new_staging_dir,
    remove_staging,
    write_marker,
)
from tamale.registry.store import CARD_FILE
from tamale.registry.verify import check_model
from tamale.registry.weights import LABELS

__all__ = ["RegisteredModel", "iter_register_model", "register_model", "weights_file_name"]

_TORCHSCRIPT_SUFFIXES = {".pth", ".pt", ".ts", ".jit", ".torchscript"}


@dataclass(frozen=True)
class RegisteredModel:
    """A model that is now in the registry."""

    name: str
    card: ModelCard
    """The stored card (tamale format)."""
    directory: Path
    """``<models dir>/<name>``."""
    parameters: int
    """Number of parameters of the model (counted when it was built to check it)."""


def weights_file_name(field: str, fmt: str) -> str:
    """File name of a weights file inside a model directory."""
    return f"{field}{'.safetensors' if fmt == 'safetensors' else '.pth'}"


def _format_of(location: str, default: str) -> str:
    suffix = Path(urlparse(location).path if is_url(location) else location).suffix.lower()
    if suffix == ".safetensors":
        return "safetensors"
    if suffix in _TORCHSCRIPT_SUFFIXES:
        return "torchscript"
    return default


def _override(ref: WeightsRef | None, location: str | Path | None) -> WeightsRef | None:
    """The weights reference after a user-given path or URL replaced the card's."""
    if location is None or not str(location).strip():
        return ref
    text = str(location).strip()
    if not is_url(text):
        text = str(Path(text).expanduser().resolve())
    default = ref.format if ref is not None else "torchscript"
    return WeightsRef(
        uri=text,
        sha256=ref.sha256 if ref is not None else None,
        format=_format_of(text, default),
    )


def _local_source(card: ModelCard, field: str, ref: WeightsRef) -> Path:
    source = Path(card.resolve(ref))
    if source.is_dir():
        raise TamaleInputError(f"{LABELS[field]} {source} is a folder, not a file")
    if not source.is_file():
        raise TamaleInputError(f"{LABELS[field]} file not found: {source}")
    return source


def _iter_stage_weights(
    card: ModelCard, field: str, ref: WeightsRef, staging: Path, cancel: CancelToken | None
) -> Work[tuple[WeightsRef, WeightsRef]]:
    """Bring one weights file in; returns (reference to store, reference to a local file)."""
    what = f"{LABELS[field]} ({ref.uri})"
    if ref.is_url:
        got = yield from iter_download(ref.uri, ref.sha256, cancel=cancel)
        stored = ref.model_copy(update={"sha256": got.sha256})
        return stored, stored.model_copy(update={"uri": str(got.path)})
    source = _local_source(card, field, ref)
    name = weights_file_name(field, ref.format)
    sha = yield from iter_copy_hashed(source, staging / name, stage="copy", cancel=cancel)
    check_sha256(sha, ref.sha256, what)
    stored = ref.model_copy(update={"uri": name, "sha256": sha})
    return stored, stored.model_copy(update={"uri": str(staging / name)})


def iter_register_model(
    card_path: str | Path,
    name: str | None = None,
    weights: str | Path | None = None,
    weights_quantized: str | Path | None = None,
    *,
    replace: bool = False,
    cancel: CancelToken | None = None,
) -> Work[RegisteredModel]:
    """Register a model (work generator; see the module docstring).

    Parameters
    ----------
    card_path : path
        The model card (tamale or empanada YAML).
    name : str, optional
        Registry name; defaults to the card's ``name`` (empanada cards: the
        file name without extension).
    weights, weights_quantized : path or URL, optional
        Replace the card's weights locations. Paths are copied, http(s) URLs
        downloaded into the cache.
    replace : bool
        Replace a user model of the same name (never a bundled one).
    cancel : CancelToken, optional
        Stops at the next block or step; nothing is registered.

    Raises
    ------
    TamaleInputError
        Invalid or taken name, missing file, failed download, hash mismatch,
        weights that do not fit the architecture.
    ConfigError
        A card with unknown keys or wrong types (the message names the key).
    """
    if name is not None and str(name).strip():
        name = check_name(str(name).strip(), "model name")
    else:
        name = None
    card = load_card(card_path, name=name)
    check_free_name(card.name, replace=replace)
    refs = {
        "weights": _override(card.weights, weights),
        "weights_quantized": _override(card.weights_quantized, weights_quantized),
    }
    # a change of weights format (e.g. a .pth given for a safetensors card) is validated here
    card = card.updated(**refs)
    for field, ref in refs.items():  # missing local files: fail before any download
        if ref is not None and not ref.is_url:
            _local_source(card, field, ref)

    staging = new_staging_dir()
    try:
        stored: dict[str, WeightsRef | None] = {"weights_quantized": None}
        local: dict[str, WeightsRef | None] = {"weights_quantized": None}
        for field, ref in refs.items():
            if ref is not None:
                stored[field], local[field] = yield from _iter_stage_weights(
                    card, field, ref, staging, cancel
                )
        check(cancel)
        yield ProgressEvent("verify", 0, 1, f"building {card.name} to check its weights")
        parameters = check_model(card.updated(**local))
        yield ProgressEvent("verify", 1, 1, f"{parameters:,} parameters")
        final = card.updated(**stored).with_path(staging / CARD_FILE)
        save_card(final, staging / CARD_FILE)
        write_marker(staging, "register", str(Path(card_path).resolve()), parameters=parameters)
        check(cancel)
        directory = install(staging, final.name, replace=replace)
    except BaseException:
        remove_staging(staging)
        raise
    notify_changed()
    yield ProgressEvent("install", 1, 1, f"registered {final.name}")
    return RegisteredModel(
        final.name, final.with_path(directory / CARD_FILE), directory, parameters
    )


def register_model(
    card_path: str | Path,
    name: str | None = None,
    weights: str | Path | None = None,
    weights_quantized: str | Path | None = None,
    *,
    replace: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> RegisteredModel:
    """Register a model and return it (blocking form of :func:`iter_register_model`)."""
    work = iter_register_model(
        card_path, name, weights, weights_quantized, replace=replace, cancel=cancel
    )
    return drain(work, progress, cancel)
