"""Archive, restore, hide, unhide and remove models.

* A **user** model is archived by moving its directory from the models folder
  to the archive folder (``tamale._paths.archive_dir()``); restoring moves it
  back. Its files are untouched either way.
* A **bundled** model lives inside the installed package and is never moved:
  hiding it only writes its name into a list in the user data folder
  (``hidden_models.txt``); unhiding removes it from the list.
* Only an *archived* model can be removed for good, only when the user asks,
  and only when tamale created its directory (see
  :mod:`tamale.registry.install`). Nothing else is ever deleted.

Every operation notifies the registry's subscribers, so every model list in
every dock follows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from tamale import _paths
from tamale._names import check_name
from tamale.errors import TamaleInputError
from tamale.registry.events import notify_changed
from tamale.registry.install import is_tamale_dir
from tamale.registry.store import (
    CARD_FILE,
    bundled_models,
    hidden_models,
    hidden_models_file,
    model_dir,
    user_models,
)

__all__ = [
    "archive_model",
    "archived_dir",
    "hide_model",
    "list_archived",
    "remove_archived_model",
    "restore_model",
    "unhide_model",
]


def archived_dir(name: str) -> Path:
    """Where the archived model ``name`` is (or would be) kept."""
    return _paths.archive_dir() / check_name(name, "model name")


def list_archived() -> list[str]:
    """Names of archived models, sorted."""
    root = _paths.archive_dir()
    if not root.is_dir():
        return []
    names = []
    for sub in root.iterdir():
        try:
            check_name(sub.name)
        except TamaleInputError:
            continue
        if sub.is_dir() and (sub / CARD_FILE).is_file():
            names.append(sub.name)
    return sorted(names, key=lambda n: (n.lower(), n))


def _user_model(name: str, action: str) -> Path:
    check_name(name, "model name")
    if name in bundled_models():
        raise TamaleInputError(
            f"{name!r} is bundled with tamale and cannot be {action}; hide it instead"
        )
    if name not in user_models():
        available = ", ".join(user_models()) or "none"
        raise TamaleInputError(f"no user model named {name!r} (user models: {available})")
    return model_dir(name)


def archive_model(name: str) -> Path:
    """Move user model ``name`` into the archive; returns its new directory."""
    source = _user_model(name, "archived")
    target = archived_dir(name)
    if target.exists():
        raise TamaleInputError(
            f"an archived model named {name!r} already exists; restore or remove it first"
        )
    _paths.ensure_dir(target.parent)
    shutil.move(str(source), target)
    notify_changed()
    return target


def restore_model(name: str) -> Path:
    """Move archived model ``name`` back into the registry; returns its directory."""
    source = archived_dir(name)
    if not (source / CARD_FILE).is_file():
        available = ", ".join(list_archived()) or "none"
        raise TamaleInputError(f"no archived model named {name!r} (archived: {available})")
    if name in bundled_models() or name in user_models() or model_dir(name).exists():
        raise TamaleInputError(
            f"a model named {name!r} is registered; archive or rename it before restoring"
        )
    target = model_dir(name)
    _paths.ensure_dir(target.parent)
    shutil.move(str(source), target)
    notify_changed()
    return target


def remove_archived_model(name: str) -> None:
    """Delete archived model ``name`` for good (only a directory tamale created)."""
    target = archived_dir(name)
    if not (target / CARD_FILE).is_file():
        available = ", ".join(list_archived()) or "none"
        raise TamaleInputError(f"no archived model named {name!r} (archived: {available})")
    if not is_tamale_dir(target):
        raise TamaleInputError(
            f"{target} was not created by tamale, so tamale will not delete it; "
            "delete it yourself if you are sure"
        )
    shutil.rmtree(target)
    notify_changed()


def _write_hidden(names: set[str]) -> None:
    path = hidden_models_file()
    _paths.ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=".hidden_models.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(f"{n}\n" for n in sorted(names)))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def hide_model(name: str) -> None:
    """Hide bundled model ``name`` from model lists (the package is not touched)."""
    check_name(name, "model name")
    if name not in bundled_models():
        if name in user_models():
            raise TamaleInputError(f"{name!r} is a user model; archive it instead of hiding it")
        raise TamaleInputError(
            f"no bundled model named {name!r} (bundled: {', '.join(bundled_models()) or 'none'})"
        )
    hidden = hidden_models()
    if name not in hidden:
        _write_hidden(hidden | {name})
    notify_changed()


def unhide_model(name: str) -> None:
    """Show a hidden bundled model again."""
    check_name(name, "model name")
    hidden = hidden_models()
    if name not in hidden:
        raise TamaleInputError(
            f"{name!r} is not hidden (hidden: {', '.join(sorted(hidden)) or 'none'})"
        )
    _write_hidden(hidden - {name})
    notify_changed()
