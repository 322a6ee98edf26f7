"""The "Register model" dock: a card plus optional weights (paths or URLs) into the registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from magicgui.widgets import Container, Label, LineEdit

from tamale.config import ConfigError
from tamale.errors import TamaleInputError
from tamale.registry import load_card
from tamale.registry.register import RegisteredModel, iter_register_model
from tamale.registry.store import user_models
from tamale_napari._path_field import PathField, ask_yes_no
from tamale_napari._workers import TaskRunner, report_error

if TYPE_CHECKING:
    import napari

__all__ = ["RegisterModelDock"]

WEIGHTS_HINT = "path or http(s) URL; empty: the location in the card"


class RegisterModelDock(Container):
    """Register a model from a card file and optional weights.

    Weights locations are text fields: a URL stays exactly as typed. Long
    work (downloads, copies, building the model to check it) runs in a worker
    with a progress bar and Cancel. Replacing a registered model asks first.
    """

    def __init__(self, viewer: napari.viewer.Viewer | None = None) -> None:
        self.viewer = viewer
        self.card = PathField(
            "model card",
            filter="Model card (*.yaml *.yml)",
            tooltip="The model's card: a tamale card or an empanada model YAML",
        )
        self.model_name = LineEdit(
            label="model name",
            tooltip="Name in every model list (letters, digits, '.', '_', '-'); "
            "empty: the card's name",
        )
        self.weights = PathField(
            "weights",
            filter="Weights (*.safetensors *.pth *.pt)",
            tooltip="Weights file or URL (downloaded and hash-checked); " + WEIGHTS_HINT,
            placeholder=WEIGHTS_HINT,
        )
        self.weights_quantized = PathField(
            "quantized weights",
            filter="Weights (*.pth *.pt)",
            tooltip="Optional int8 TorchScript weights for CPU inference; " + WEIGHTS_HINT,
            placeholder="optional; " + WEIGHTS_HINT,
        )
        self.result = Label(value="")
        self.runner = TaskRunner("Register", tooltip="Copy or download the weights and register")
        super().__init__(
            widgets=[
                self.card,
                self.model_name,
                self.weights,
                self.weights_quantized,
                self.runner,
                self.result,
            ]
        )
        self.confirm: Callable[[str], bool] = lambda q: ask_yes_no(q, self.native)
        """Asks the user a yes/no question (tests substitute an answer)."""
        self.last_registered: RegisteredModel | None = None
        self._auto_name = ""
        self.card.text.changed.connect(self._card_changed)
        self.runner.run_button.changed.connect(self.register)

    def _card_changed(self) -> None:
        """Offer the card's own name when the user has not typed one."""
        path = self.card.value
        if not path or self.model_name.value not in ("", self._auto_name):
            return
        try:
            name = load_card(path).name
        except (TamaleInputError, ConfigError, OSError):
            return
        self._auto_name = name
        self.model_name.value = name

    def _name(self) -> str:
        if not self.card.value:
            raise TamaleInputError("choose a model card (a .yaml file) first")
        name = str(self.model_name.value).strip()
        return name or load_card(self.card.value).name

    def register(self) -> None:
        """Validate, ask before replacing, and run the registration in a worker."""
        try:
            name = self._name()
        except (TamaleInputError, ConfigError) as exc:
            report_error(exc)
            return
        replace = False
        if name in user_models():
            if not self.confirm(f"A model named {name!r} is already registered. Replace it?"):
                self.result.value = "nothing registered"
                return
            replace = True
        card, weights, quantized = self.card.value, self.weights.value, self.weights_quantized.value
        self.runner.start(
            lambda token: iter_register_model(
                card, name, weights or None, quantized or None, replace=replace, cancel=token
            ),
            on_result=self._registered,
            description=f"register {name}",
        )

    def _registered(self, reg: RegisteredModel) -> None:
        self.last_registered = reg
        self.result.value = f"registered {reg.name} ({reg.parameters:,} parameters)"
