"""The training set the pick and store docks of one viewer work on.

Both docks show a save directory and a dataset name. They edit one shared
:class:`TrainingSetTarget` per viewer, so typing in one dock updates the other:
the store dock writes to that dataset, and the pick dock keeps new patches away
from the regions already stored in it.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

from magicgui.widgets import Container, LineEdit
from psygnal import Signal

from tamale._names import check_name
from tamale.errors import TamaleInputError
from tamale_napari._path_field import PathField

__all__ = ["TargetFields", "TrainingSetTarget", "target_for"]


class TrainingSetTarget:
    """A save directory and a dataset name; ``changed`` fires when either changes or a
    store into the dataset finished."""

    changed = Signal()

    def __init__(self) -> None:
        self.save_dir = ""
        self.dataset_name = ""

    def update(self, save_dir: str | None = None, dataset_name: str | None = None) -> None:
        """Set either value (stripped); emits ``changed`` if something changed."""
        new_dir = self.save_dir if save_dir is None else str(save_dir).strip()
        new_name = self.dataset_name if dataset_name is None else str(dataset_name).strip()
        if (new_dir, new_name) != (self.save_dir, self.dataset_name):
            self.save_dir, self.dataset_name = new_dir, new_name
            self.changed.emit()

    def dataset_dir(self, required: bool = False) -> Path | None:
        """``save_dir / dataset_name``; None when unset (an error if ``required``).

        Raises
        ------
        TamaleInputError
            If the name is unsafe (path separators, ``..``), or a value is missing and
            ``required``.
        """
        if not self.save_dir or not self.dataset_name:
            if required:
                missing = "a save directory" if not self.save_dir else "a dataset name"
                raise TamaleInputError(f"choose {missing} for the training set")
            return None
        check_name(self.dataset_name, "dataset name")
        return Path(self.save_dir).expanduser() / self.dataset_name


_TARGETS: weakref.WeakKeyDictionary[Any, TrainingSetTarget] = weakref.WeakKeyDictionary()


def target_for(viewer: Any) -> TrainingSetTarget:
    """The target shared by the docks of ``viewer`` (a private one for no viewer)."""
    if viewer is None:
        return TrainingSetTarget()
    if viewer not in _TARGETS:
        _TARGETS[viewer] = TrainingSetTarget()
    return _TARGETS[viewer]


class TargetFields(Container):
    """Save-directory and dataset-name fields bound to a :class:`TrainingSetTarget`."""

    def __init__(self, target: TrainingSetTarget, dir_tooltip: str, name_tooltip: str) -> None:
        self.target = target
        self.save_dir = PathField("save directory", mode="folder", tooltip=dir_tooltip)
        self.dataset_name = LineEdit(label="dataset name", tooltip=name_tooltip)
        super().__init__(widgets=[self.save_dir, self.dataset_name])
        self.margins = (0, 0, 0, 0)
        self._pull()
        self.save_dir.text.changed.connect(self._push)
        self.dataset_name.changed.connect(self._push)
        target.changed.connect(self._pull)
        self.native.destroyed.connect(lambda *_: self._disconnect())

    def _disconnect(self) -> None:
        try:
            self.target.changed.disconnect(self._pull)
        except (TypeError, ValueError, RuntimeError):
            pass

    def _push(self) -> None:
        self.target.update(self.save_dir.value, str(self.dataset_name.value))

    def _pull(self) -> None:
        if self.save_dir.value != self.target.save_dir:
            self.save_dir.value = self.target.save_dir
        if str(self.dataset_name.value).strip() != self.target.dataset_name:
            self.dataset_name.value = self.target.dataset_name
