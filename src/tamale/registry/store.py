"""Where model cards live and how they are found.

* **Bundled** models ship inside the package: ``tamale/registry/bundled/<name>/card.yaml``
  (plus their weights beside the card). They are never moved or deleted.
* **User** models live under the user data directory (``TAMALE_HOME``
  overrides; resolved on every call): ``<models_dir>/<name>/card.yaml`` plus weights.

Listing order is stable: bundled models first, then user models, each by
name. A user model never silently replaces a bundled one (registering a
bundled name is refused).
"""

from __future__ import annotations

from pathlib import Path

from tamale import _paths
from tamale._names import check_name
from tamale.errors import TamaleInputError
from tamale.registry.card import ModelCard, load_card

__all__ = [
    "CARD_FILE",
    "bundled_dir",
    "bundled_models",
    "get_card",
    "hidden_models",
    "list_models",
    "model_dir",
    "model_location",
    "user_card_path",
    "user_models",
]

CARD_FILE = "card.yaml"


def bundled_dir() -> Path:
    """Directory of the models shipped with tamale."""
    return Path(__file__).parent / "bundled"


def _cards_in(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        return {}
    found = {}
    for sub in sorted(root.iterdir(), key=lambda p: (p.name.lower(), p.name)):
        card = sub / CARD_FILE
        if sub.is_dir() and card.is_file() and _valid(sub.name):
            found[sub.name] = card
    return found


def _valid(name: str) -> bool:
    try:
        check_name(name)
    except TamaleInputError:
        return False
    return True


def bundled_models() -> dict[str, Path]:
    """Name → card path of the bundled models."""
    return _cards_in(bundled_dir())


def user_models() -> dict[str, Path]:
    """Name → card path of the user's registered models."""
    return _cards_in(_paths.models_dir())


def hidden_models_file() -> Path:
    """The file listing the bundled models the user hid (one name per line)."""
    return _paths.user_data_dir() / "hidden_models.txt"


def hidden_models() -> set[str]:
    """Bundled models the user chose to hide (see :func:`tamale.registry.hide_model`)."""
    path = hidden_models_file()
    if not path.is_file():
        return set()
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def list_models(include_hidden: bool = False) -> list[str]:
    """Names of all available models: bundled first, then user models, each sorted."""
    hidden = set() if include_hidden else hidden_models()
    bundled_all = bundled_models()
    bundled = [n for n in bundled_all if n not in hidden]
    user = [n for n in user_models() if n not in bundled_all]
    return bundled + user


def model_location(name: str) -> str:
    """``"bundled"`` or ``"user"``; raises :class:`TamaleInputError` for an unknown name."""
    if name in bundled_models():
        return "bundled"
    if name in user_models():
        return "user"
    available = ", ".join(list_models()) or "none"
    raise TamaleInputError(f"no model named {name!r} is registered (available: {available})")


def user_card_path(name: str) -> Path:
    """Where the card of user model ``name`` is (or would be) stored."""
    return model_dir(name) / CARD_FILE


def model_dir(name: str) -> Path:
    """The directory of user model ``name`` (the name is validated)."""
    return _paths.models_dir() / check_name(name, "model name")


def get_card(name: str) -> ModelCard:
    """The card of model ``name`` (bundled or user).

    Raises
    ------
    TamaleInputError
        If no such model is registered (the message lists what is).
    """
    where = model_location(name)
    path = bundled_models()[name] if where == "bundled" else user_models()[name]
    return load_card(path, name=name)
