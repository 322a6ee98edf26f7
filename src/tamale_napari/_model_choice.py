"""The model dropdown every dock uses: always the registry's current list.

:func:`model_combo` returns a magicgui ``ComboBox`` whose choices are read
from the registry each time they are reset, and which is reset automatically
whenever the registry changes (register, import, archive, hide...), so a model
registered in one dock appears in every other dock without reopening it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
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
            _keep_order(combo)
        except RuntimeError:  # its Qt widget is gone
            _combos.discard(combo)


def _keep_order(combo: ComboBox) -> None:
    """Put the items in the registry's order (magicgui appends new choices at the end)."""
    wanted = [str(name) for name in getattr(combo, "_tamale_source", list_models)()]
    native = combo.native
    shown = [native.itemText(i) for i in range(native.count())]
    if shown == wanted:
        return
    data = {native.itemText(i): native.itemData(i) for i in range(native.count())}
    current = native.currentText()
    blocked = native.blockSignals(True)
    try:
        native.clear()
        for name in wanted:
            native.addItem(name, data.get(name, name))
        native.setCurrentIndex(max(native.findText(current), 0))
    finally:
        native.blockSignals(blocked)


def _ensure_relay() -> _Relay:
    global _relay
    if _relay is None:
        _relay = _Relay()
        _relay.changed.connect(_refresh_all)
        events.subscribe(_relay.changed.emit)
    return _relay


def model_combo(
    label: str = "model",
    tooltip: str = "Model to use (from the model registry)",
    source: Callable[[], list[str]] = list_models,
    **kwargs: Any,
) -> ComboBox:
    """A ComboBox listing the registered models, kept up to date.

    Parameters
    ----------
    label, tooltip : str
        As for any magicgui widget.
    source : callable
        Returns the names to offer, read again after every registry change
        (default: the visible registered models; the archive dock passes
        e.g. :func:`tamale.registry.list_archived`).
    """
    _ensure_relay()
    combo = ComboBox(label=label, choices=lambda _widget=None: source(), tooltip=tooltip, **kwargs)
    combo._tamale_source = source  # type: ignore[attr-defined]
    _combos.add(combo)
    return combo


def apply_recommended(dock: Any, name: str | None, notify: bool = True) -> list[str]:
    """Show model ``name``'s recommended parameters (its card's ``inference`` section) in
    ``dock`` (which has ``to_config`` / ``set_config``); return the names of the
    parameters that changed.

    Parameters the previously chosen model recommended, and ``name`` does not, go back
    to their defaults unless the user changed them since. A card with invalid
    recommendations is reported as an error notification (``notify`` False: silently,
    for a dock's first model).
    """
    from napari.utils.notifications import show_error, show_info

    from tamale.errors import TamaleInputError
    from tamale.inference import recommended_config
    from tamale.registry import get_card

    previous: dict[str, Any] = getattr(dock, "_tamale_recommended", {})
    try:
        current = dock.to_config()
        cls = type(current)
        recommended: dict[str, Any] = {}
        if name:
            card = get_card(name)
            valid = recommended_config(card, cls())  # validates the card's values
            recommended = {k: getattr(valid, k) for k in card.inference if k in cls.model_fields}
    except (TamaleInputError, ValueError) as exc:
        if notify:
            show_error(str(exc))
        return []
    updates = dict(recommended)
    for key, value in previous.items():
        if key not in recommended and getattr(current, key) == value:
            updates[key] = cls.model_fields[key].default
    dock._tamale_recommended = recommended
    wanted = cls(**{**current.model_dump(), **updates})
    changed = [k for k in cls.model_fields if getattr(current, k) != getattr(wanted, k)]
    if changed:
        dock.set_config(wanted)
        if notify and recommended:
            told = [k for k in changed if k in recommended]
            back = [k for k in changed if k not in recommended]
            parts = [", ".join(f"{k.replace('_', ' ')} {getattr(wanted, k)}" for k in told)]
            if back:
                parts.append("defaults again for " + ", ".join(k.replace("_", " ") for k in back))
            show_info(f"model {name!r} recommends: " + "; ".join(p for p in parts if p))
    return changed
