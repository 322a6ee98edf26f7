"""How a user model directory comes into being, is replaced and is discarded.

A model directory is built completely in a private staging folder
(``<user data>/.staging/``, on the same file system as the registry), checked,
and only then renamed into ``<models dir>/<name>``: a failure or a Cancel
half-way leaves the registry as it was, and a half-written model never appears
in a model list.

Every directory tamale creates carries a marker file (:data:`MARKER`) saying so.
tamale deletes a directory only when it carries that marker *and* the user
asked for it (replacing a model, removing an archived one); a directory without
the marker is moved aside into the archive instead, never deleted.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tamale import __version__, _paths
from tamale._names import check_name
from tamale.errors import TamaleInputError
from tamale.registry.store import bundled_models, model_dir, user_models

__all__ = [
    "MARKER",
    "check_free_name",
    "discard",
    "install",
    "is_tamale_dir",
    "new_staging_dir",
    "read_marker",
    "write_marker",
]

MARKER = "tamale-model.json"
"""File in every model directory tamale created (origin, version, time, parameter count)."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def staging_root() -> Path:
    """Private folder where model directories are assembled."""
    return _paths.user_data_dir() / ".staging"


def new_staging_dir() -> Path:
    """A new, empty, uniquely named folder to assemble a model directory in."""
    return Path(tempfile.mkdtemp(prefix="model-", dir=_paths.ensure_dir(staging_root())))


def write_marker(directory: Path, origin: str, source: str, **extra: Any) -> None:
    """Mark ``directory`` as created by tamale (``origin``: register, import...)."""
    data = {
        "created_by": "tamale",
        "tamale_version": __version__,
        "created": _now(),
        "origin": origin,
        "source": source,
        **extra,
    }
    (directory / MARKER).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def read_marker(directory: Path) -> dict[str, Any] | None:
    """The marker of ``directory``, or None when tamale did not create it."""
    path = Path(directory) / MARKER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("created_by") == "tamale" else None


def is_tamale_dir(directory: Path) -> bool:
    """Whether ``directory`` is a model directory tamale created."""
    return read_marker(directory) is not None


def check_free_name(name: str, replace: bool = False) -> None:
    """Refuse ``name`` if it is invalid, bundled, or taken (unless ``replace``).

    A bundled model's name is refused even with ``replace``: a user model
    never replaces a bundled one.
    """
    check_name(name, "model name")
    if name in bundled_models():
        raise TamaleInputError(
            f"{name!r} is the name of a model bundled with tamale; choose another name "
            "(bundled models cannot be replaced, only hidden)"
        )
    if not replace and (name in user_models() or model_dir(name).exists()):
        raise TamaleInputError(
            f"a model named {name!r} is already registered; choose another name or "
            "replace it (--replace on the command line)"
        )


def _aside_name(name: str, why: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = _paths.ensure_dir(_paths.archive_dir())
    candidate = base / f"{name}.{why}-{stamp}"
    k = 1
    while candidate.exists():
        k += 1
        candidate = base / f"{name}.{why}-{stamp}-{k}"
    return candidate


def discard(directory: Path, name: str) -> Path | None:
    """Get rid of a replaced model directory.

    Deleted when tamale created it; otherwise moved into the archive folder
    (returned) so nothing the user put there is lost.
    """
    if is_tamale_dir(directory):
        shutil.rmtree(directory)
        return None
    aside = _aside_name(name, "replaced")
    shutil.move(str(directory), aside)
    return aside


def install(staging: Path, name: str, *, replace: bool = False) -> Path:
    """Move the assembled ``staging`` directory into the registry as model ``name``.

    With ``replace``, an existing user model of that name is swapped out only
    after the new one is in place (see :func:`discard`).
    """
    check_free_name(name, replace=replace)
    target = model_dir(name)
    _paths.ensure_dir(target.parent)
    if not target.exists():
        os.replace(staging, target)
        return target
    old = staging.with_name(staging.name + "-replaced")
    os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(old, target)
        raise
    discard(old, name)
    return target


def remove_staging(staging: Path) -> None:
    """Delete a staging folder (tamale made it; it never holds user files)."""
    root = staging_root().resolve()
    staging = Path(staging)
    if staging.exists() and staging.resolve().parent == root:
        shutil.rmtree(staging, ignore_errors=True)
