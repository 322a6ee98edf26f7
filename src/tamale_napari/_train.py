"""The "Train a model" dock: a new panoptic model from a training set.

Every parameter of :class:`tamale.training.TrainConfig` for a new model — dataset labels
(``id,name,semantic|instance`` per line), label divisor, architecture preset, encoder
initialisation from a registered model or a weights file, finetunable layers, iterations,
patch and batch size, custom config, description — with the field's docstring as
tooltip; a live plot; Cancel keeps a checkpoint. The new model is registered at once and
appears in every dock's model list; its information is shown at the end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, SpinBox, TextEdit

from tamale.errors import TamaleInputError
from tamale.models import available_presets
from tamale.registry import list_models
from tamale.training import DEFAULT_ARCHITECTURE, TrainConfig, format_dataset_labels
from tamale_napari._model_choice import model_combo
from tamale_napari._path_field import PathField
from tamale_napari._training_dock import TrainingDockBase, tip

if TYPE_CHECKING:
    import napari

__all__ = ["TrainDock"]


class TrainDock(TrainingDockBase):
    """Train a new model (semantic and instance classes) from annotated patches."""

    default_iterations = 500
    run_text = "Start training"

    def __init__(self, viewer: napari.viewer.Viewer | None = None) -> None:
        self.viewer = viewer
        self._common_widgets()
        self.model_name.value = "NewModel"
        self.dataset_labels = TextEdit(value="1,mitochondria,instance", tooltip=tip("classes"))
        self.dataset_labels.label = "dataset labels"
        self.dataset_labels.native.setMaximumHeight(80)
        self.label_divisor = SpinBox(
            label="label divisor",
            value=0,
            min=0,
            max=2**31 - 1,
            tooltip=tip("label_divisor") + " 0: none.",
        )
        self.architecture = ComboBox(
            label="architecture",
            choices=available_presets(),
            value=DEFAULT_ARCHITECTURE,
            tooltip=tip("architecture"),
        )
        self.encoder_model = model_combo(
            label="encoder from model",
            tooltip="Initialise the encoder from this registered model (same encoder type); "
            "empty: random initialisation, or the weights file below",
            source=lambda: ["", *list_models()],
        )
        self.encoder_file = PathField(
            "encoder weights file",
            filter="Weights (*.safetensors *.pth *.pt *.tar)",
            tooltip=tip("encoder_init"),
            placeholder="optional: .safetensors or PyTorch state dict",
        )
        self.downsampling = ComboBox(
            label="image downsampling", choices=[1, 2, 4], value=1, tooltip=tip("downsampling")
        )
        self.description = TextEdit(value="", tooltip=tip("description"))
        self.description.label = "description"
        self.description.native.setMaximumHeight(60)
        super().__init__(
            widgets=[
                self.model_name,
                self.train_dir,
                self.val_dir,
                self.model_dir,
                self.dataset_labels,
                self.label_divisor,
                self.architecture,
                self.encoder_model,
                self.encoder_file,
                self.finetune_layers,
                self.iterations,
                self.patch_size,
                self.batch_size,
                self.downsampling,
                self.use_gpu,
                self.custom_config,
                self.description,
                self.runner,
                self.plot_widget(),
                self.result,
                self.info,
            ]
        )
        self._finish_init()
        self.encoder_model.changed.connect(lambda _v=None: self.show_info(self.encoder_model.value))

    def _specific_values(self) -> dict[str, Any]:
        model, path = self.encoder_model.value, self.encoder_file.value
        if model and path:
            raise TamaleInputError(
                "initialise the encoder from a registered model or from a weights file, not both"
            )
        return {
            "classes": str(self.dataset_labels.value),
            "label_divisor": int(self.label_divisor.value) or None,
            "architecture": self.architecture.value,
            "encoder_init": model or path or None,
            "description": str(self.description.value),
            "downsampling": int(self.downsampling.value),
        }

    def _set_specific(self, config: TrainConfig) -> None:
        self.dataset_labels.value = format_dataset_labels(config.classes)
        self.label_divisor.value = config.label_divisor or 0
        self.architecture.value = config.architecture or DEFAULT_ARCHITECTURE
        init = config.encoder_init or ""
        if init in list_models():
            self.encoder_model.value = init
            self.encoder_file.value = ""
        else:
            self.encoder_model.value = ""
            self.encoder_file.value = init
        self.description.value = config.description
        self.downsampling.value = config.downsampling
