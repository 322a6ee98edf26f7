"""Model cards and the model registry."""

from tamale.registry.card import ClassSpec, ModelCard, Norms, WeightsRef, load_card, save_card
from tamale.registry.events import notify_changed, subscribe
from tamale.registry.store import get_card, list_models

__all__ = [
    "ClassSpec",
    "ModelCard",
    "Norms",
    "WeightsRef",
    "get_card",
    "list_models",
    "load_card",
    "notify_changed",
    "save_card",
    "subscribe",
]
