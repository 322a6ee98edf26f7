"""The model dropdown every dock uses: always the registry's current list.

:func:`model_combo` returns a magicgui ``ComboBox`` whose choices are read
from the registry each time they are reset, and which is reset automatically
whenever the registry changes (register, import, archive, hide...), so a model
registered in one dock appears in every other dock without reopening it.
"""

from __future__ import annotations

import weakref
from typing import Any

from magicgui.widgets import ComboBox
from qtpy.QtCore import QObject, Signal

from tamale.registry import events, list_models

__all__ = ["model_combo"]


class _Relay(QObject):
    """Carries registry notifications (any thread) to the GUI thread."""

    changed = Signal()


_relay: _Relay | None = None
_combos: weakref.WeakSet[ComboBox] = weakref.WeakSet()


def _refresh_all() -> None:
    for combo in list(_combos):
        try:
            combo.reset_choices()
        except RuntimeError:  # its Qt widget is gone
            _combos.discard(combo)


def _ensure_relay() -> _Relay:
    global _relay
    if _relay is None:
        _relay = _Relay()
        _relay.changed.connect(_refresh_all)
        events.subscribe(_relay.changed.emit)
    return _relay


def _choices(_widget: Any = None) -> list[str]:
    return list_models()


def model_combo(
    label: str = "model", tooltip: str = "Model to use (from the model registry)", **kwargs: Any
) -> ComboBox:
    """A ComboBox listing the registered models, kept up to date."""
    _ensure_relay()
    combo = ComboBox(label=label, choices=_choices, tooltip=tooltip, **kwargs)
    _combos.add(combo)
    return combo
