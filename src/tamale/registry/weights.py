"""Local files for a card's weights: downloaded (hash-checked) when they are URLs.

A registered card may keep an http(s) URL as its weights location (with the
SHA-256 recorded at registration); the file itself lives in the download
cache. :func:`iter_local_card` returns a copy of a card whose weights are local
files, downloading what is missing, so code that loads models never deals
with URLs.
"""

from __future__ import annotations

from pathlib import Path

from tamale.errors import TamaleInputError
from tamale.progress import CancelToken, ProgressCallback, Work, drain
from tamale.registry.card import ModelCard, WeightsRef
from tamale.registry.download import cache_path, iter_download

__all__ = ["LABELS", "iter_local_card", "local_card", "local_weights_path", "weights_refs"]

LABELS = {"weights": "weights", "weights_quantized": "quantized weights"}
"""How each weights field of a card is called in messages."""


def weights_refs(card: ModelCard) -> dict[str, WeightsRef]:
    """``{"weights": ref, "weights_quantized": ref}`` (the quantized entry only when present)."""
    refs = {"weights": card.weights}
    if card.weights_quantized is not None:
        refs["weights_quantized"] = card.weights_quantized
    return refs


def local_weights_path(card: ModelCard, ref: WeightsRef) -> Path:
    """Where the file of ``ref`` is (or will be, for a URL not downloaded yet)."""
    return cache_path(ref.uri) if ref.is_url else Path(card.resolve(ref))


def iter_local_card(card: ModelCard, *, cancel: CancelToken | None = None) -> Work[ModelCard]:
    """A copy of ``card`` whose weights are local files (URLs downloaded, hash-checked).

    Raises
    ------
    TamaleInputError
        When a local weights file is missing or a download fails.
    """
    changes = {}
    for field, ref in weights_refs(card).items():
        if ref.is_url:
            got = yield from iter_download(ref.uri, ref.sha256, cancel=cancel)
            changes[field] = ref.model_copy(update={"uri": str(got.path), "sha256": got.sha256})
        else:
            path = Path(card.resolve(ref))
            if not path.is_file():
                raise TamaleInputError(f"{LABELS[field]} of model {card.name!r} not found: {path}")
            changes[field] = ref.model_copy(update={"uri": str(path)})
    return card.updated(**changes)


def local_card(
    card: ModelCard,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ModelCard:
    """Blocking form of :func:`iter_local_card`."""
    return drain(iter_local_card(card, cancel=cancel), progress, cancel)
