"""Exceptions that carry a message meant for the user.

Engine functions raise :class:`TamaleInputError` (a ``ValueError``) for bad
input: the text says what is wrong and how to fix it, and the napari plugin
shows it as a notification without a traceback. Anything else escaping engine
work is a bug and is reported with its traceback.
"""

from __future__ import annotations

__all__ = ["TamaleInputError"]


class TamaleInputError(ValueError):
    """Bad input from the user; the message is shown as-is."""
