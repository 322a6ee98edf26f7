"""Registry change notifications.

Anything that shows a list of models (every dock's model dropdown, a CLI
session) subscribes here; every registry operation that adds, removes,
archives or hides a model calls :func:`notify_changed`. Callbacks may be
called from any thread: GUI subscribers must hop to their own thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["notify_changed", "subscribe"]

_lock = threading.Lock()
_subscribers: list[Callable[[], None]] = []


def subscribe(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback()`` after every registry change; returns an unsubscribe function."""
    with _lock:
        _subscribers.append(callback)

    def unsubscribe() -> None:
        with _lock:
            if callback in _subscribers:
                _subscribers.remove(callback)

    return unsubscribe


def notify_changed() -> None:
    """Tell every subscriber that the set of models changed."""
    with _lock:
        callbacks = list(_subscribers)
    for callback in callbacks:
        callback()
