"""Where tamale keeps user data: the model registry, caches and archives.

Every location is resolved on each call (never at import), so setting the
``TAMALE_HOME`` environment variable at any time redirects everything below it;
without it the platform's user directories are used (``platformdirs``).
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "tamale"
HOME_ENV = "TAMALE_HOME"


def tamale_home() -> Path | None:
    """The directory named by ``TAMALE_HOME``, or None when it is unset or empty."""
    value = os.environ.get(HOME_ENV, "").strip()
    return Path(value).expanduser() if value else None


def user_data_dir() -> Path:
    """Root of tamale's persistent user data (registered models, archives)."""
    home = tamale_home()
    return home if home is not None else Path(platformdirs.user_data_dir(APP_NAME))


def user_cache_dir() -> Path:
    """Root of tamale's re-creatable cache (downloads)."""
    home = tamale_home()
    return home / "cache" if home is not None else Path(platformdirs.user_cache_dir(APP_NAME))


def models_dir() -> Path:
    """Directory holding user model cards and their weights."""
    return user_data_dir() / "models"


def archive_dir() -> Path:
    """Directory holding archived user models."""
    return user_data_dir() / "archived"


def downloads_dir() -> Path:
    """Directory holding downloaded weights (checked by sha256)."""
    return user_cache_dir() / "downloads"


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and return it."""
    path.mkdir(parents=True, exist_ok=True)
    return path
