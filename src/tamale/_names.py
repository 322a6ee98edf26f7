"""Validation of names typed by users that become file or directory names."""

from __future__ import annotations

import re

from tamale.errors import TamaleInputError

__all__ = ["check_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is safe as a single file-system component.

    Allowed: letters, digits, ``.``, ``_`` and ``-``, starting with a letter or
    digit, at most 100 characters, and no ``..``. Anything else (path
    separators, spaces, ``..``, empty) raises :class:`TamaleInputError`.
    """
    if not isinstance(name, str) or not name.strip():
        raise TamaleInputError(f"{what} must not be empty")
    if ".." in name or not _NAME.match(name):
        raise TamaleInputError(
            f"{what} {name!r} is not allowed: use letters, digits, '.', '_' or '-' "
            "(no spaces, no path separators, no '..', at most 100 characters)"
        )
    return name
