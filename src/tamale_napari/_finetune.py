"""The "Finetune a model" dock: a registered model, a training set, one click.

Every parameter of :class:`tamale.training.TrainConfig` that finetuning uses, with the
field's docstring as tooltip; the chosen model's information (classes, how to label,
padding factor, ...) below it; a live plot of the loss and the validation scores; Cancel
keeps a checkpoint. The finetuned model is registered at once and appears in every dock's
model list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tamale.training import TrainConfig
from tamale_napari._model_choice import model_combo
from tamale_napari._training_dock import TrainingDockBase, tip

if TYPE_CHECKING:
    import napari

__all__ = ["FinetuneDock"]


class FinetuneDock(TrainingDockBase):
    """Finetune a registered model (tamale or empanada) on annotated patches."""

    finetune = True
    default_iterations = 100
    run_text = "Start finetuning"

    def __init__(self, viewer: napari.viewer.Viewer | None = None) -> None:
        self.viewer = viewer
        self.base_model = model_combo(label="model to finetune", tooltip=tip("base_model"))
        self._common_widgets()
        self.model_name.value = "FinetunedModel"
        super().__init__(
            widgets=[
                self.base_model,
                self.model_name,
                self.train_dir,
                self.val_dir,
                self.model_dir,
                self.finetune_layers,
                self.iterations,
                self.patch_size,
                self.batch_size,
                self.use_gpu,
                self.custom_config,
                self.runner,
                self.plot_widget(),
                self.result,
                self.info,
            ]
        )
        self._finish_init()
        self.base_model.changed.connect(self._base_changed)
        self._base_changed()

    def _base_changed(self, _value: Any = None) -> None:
        name = self.base_model.value
        self.show_info(name)
        if name:
            from tamale.registry import get_card

            try:
                card = get_card(name)
            except Exception:  # an unreadable card: the info view says why
                return
            size = int(card.finetune.get("patch_size", 0) or 0)
            if size and size % card.padding_factor == 0:
                self.patch_size.value = size
            elif self.patch_size.value % card.padding_factor:
                self.patch_size.value = max(card.padding_factor, 256 // card.padding_factor
                                            * card.padding_factor)  # fmt: skip

    def _specific_values(self) -> dict[str, Any]:
        from tamale.errors import TamaleInputError

        name = self.base_model.value
        if not name:
            raise TamaleInputError("no model to finetune: register one first and choose it")
        return {"base_model": name}

    def _set_specific(self, config: TrainConfig) -> None:
        if config.base_model:
            self.base_model.value = config.base_model
