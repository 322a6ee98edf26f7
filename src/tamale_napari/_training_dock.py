"""What the "Finetune a model" and "Train a model" docks share.

Both are thin forms over one :class:`tamale.training.TrainConfig` (``to_config`` /
``set_config``), run :func:`tamale.training.iter_fit` through the shared
:class:`~tamale_napari._workers.TaskRunner` (progress bar with iterations and time left,
Cancel that lets the run write its checkpoint first), draw the loss and validation scores
live (:class:`~tamale_napari._training_plot.TrainingPlot`), and show a model's
information (:func:`tamale.registry.format_info`). Before replacing a registered model or
an existing model folder they ask (``self.confirm``, replaceable in tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, Container, Label, LineEdit, SpinBox, TextEdit
from napari.qt.threading import create_worker
from napari.utils.notifications import show_info
from pydantic import ValidationError

from tamale.config import ConfigError, format_validation_error
from tamale.errors import TamaleInputError
from tamale.inference import gpu_name
from tamale.progress import ProgressEvent
from tamale.registry import format_info, list_models, model_info
from tamale.training import FINETUNE_LAYERS, TrainConfig, TrainResult, iter_fit, load_train_config
from tamale_napari._path_field import PathField, ask_yes_no
from tamale_napari._training_plot import TrainingPlot, plot_container
from tamale_napari._workers import TaskRunner, report_error

__all__ = ["TrainingDockBase", "tip"]


def tip(field: str) -> str:
    """The tooltip of a config field (its docstring)."""
    return TrainConfig.model_fields[field].description or ""


class TrainingDockBase(Container):
    """Common controls; subclasses add theirs and implement :meth:`_specific_values`."""

    finetune = False
    default_iterations = 500
    run_text = "Train"

    def _common_widgets(self) -> None:
        self.model_name = LineEdit(label="model name", tooltip=tip("model_name"))
        self.train_dir = PathField("train directory", mode="folder", tooltip=tip("train_dir"))
        self.val_dir = PathField(
            "validation directory",
            mode="folder",
            tooltip=tip("val_dir"),
            placeholder="optional; may be the train directory",
        )
        self.model_dir = PathField("model directory", mode="folder", tooltip=tip("model_dir"))
        self.finetune_layers = ComboBox(
            label="finetunable layers",
            choices=list(FINETUNE_LAYERS),
            value="none" if self.finetune else "all",
            tooltip=tip("finetune_layers"),
        )
        self.iterations = SpinBox(
            label="iterations",
            value=self.default_iterations,
            min=1,
            max=100000,
            step=100,
            tooltip=tip("iterations"),
        )
        self.patch_size = SpinBox(
            label="patch size (pixels)",
            value=256,
            min=32,
            max=2048,
            step=16,
            tooltip=tip("patch_size"),
        )
        self.batch_size = SpinBox(
            label="batch size", value=16, min=1, max=1024, tooltip=tip("batch_size")
        )
        gpu = gpu_name()
        self.use_gpu = CheckBox(
            text=f"use GPU ({gpu})" if gpu else "use GPU (none found)",
            value=gpu is not None,
            tooltip="Train on a CUDA GPU or Apple MPS when there is one (mixed precision on "
            "CUDA); otherwise on the CPU",
        )
        self.custom_config = PathField(
            "custom config",
            filter="YAML (*.yaml *.yml)",
            tooltip="Optional YAML file setting any other training parameter (augmentations, "
            "loss weights, learning rate, seed, validation and checkpoint intervals...); "
            "unknown keys are errors. The values in this dock win over the file's.",
            placeholder="optional: default config",
        )
        self.runner = TaskRunner(
            self.run_text, tooltip="Start the run; Cancel stops it at the next iteration "
            "and keeps a checkpoint"
        )  # fmt: skip
        self.plot = TrainingPlot()
        self.result = Label(value="")
        self.info = TextEdit(value="", tooltip="Information about the model (Model info)")
        self.info.read_only = True
        self.info.native.setMinimumHeight(160)
        self.confirm: Callable[[str], bool] = lambda q: ask_yes_no(q, self.native)
        """Asks the user a yes/no question (tests substitute an answer)."""
        self.last_result: TrainResult | None = None
        self.events: list[ProgressEvent] = []
        self.info_markdown = ""

    def _finish_init(self) -> None:
        self.runner.run_button.changed.connect(self.start)

    def plot_widget(self) -> Container:
        return plot_container(self.plot)

    # -- model info ----------------------------------------------------------------------
    def show_info(self, name: str | None) -> None:
        """Show the information of model ``name`` (gathered in a worker)."""
        if not name or name not in list_models(include_hidden=True):
            self._set_info("")
            return
        worker = create_worker(model_info, name, _start_thread=False)
        worker.returned.connect(lambda info: self._set_info(format_info(info)))
        worker.errored.connect(lambda exc: self._set_info(f"**cannot read {name}**: {exc}"))
        worker.start()

    def _set_info(self, markdown: str) -> None:
        self.info_markdown = markdown
        try:
            self.info.native.setMarkdown(markdown)
        except RuntimeError:  # the dock was closed meanwhile
            pass

    # -- config round trip ----------------------------------------------------------------
    def _specific_values(self) -> dict[str, Any]:
        raise NotImplementedError

    def _set_specific(self, config: TrainConfig) -> None:
        raise NotImplementedError

    def to_config(self) -> TrainConfig:
        """The run's parameters: the custom config file, overridden by the controls."""
        values: dict[str, Any] = {
            "model_name": str(self.model_name.value).strip(),
            "train_dir": self.train_dir.value or None,
            "val_dir": self.val_dir.value or None,
            "model_dir": self.model_dir.value or None,
            "finetune_layers": self.finetune_layers.value,
            "iterations": int(self.iterations.value),
            "patch_size": int(self.patch_size.value),
            "batch_size": int(self.batch_size.value),
            "device": "auto" if self.use_gpu.value else "cpu",
            **self._specific_values(),
        }
        for key, what in (
            ("model_name", "a model name"),
            ("train_dir", "a train directory"),
            ("model_dir", "a model directory"),
        ):
            if not values[key]:
                raise TamaleInputError(f"choose {what}")
        try:
            return load_train_config(self.custom_config.value or None, **values)
        except ValidationError as exc:  # pragma: no cover - load_train_config wraps these
            raise TamaleInputError(format_validation_error(exc, "training")) from None

    def set_config(self, config: TrainConfig) -> None:
        """Show ``config``'s values in the controls."""
        self.model_name.value = config.model_name
        self.train_dir.value = str(config.train_dir)
        self.val_dir.value = str(config.val_dir) if config.val_dir else ""
        self.model_dir.value = str(config.model_dir)
        self.finetune_layers.value = config.trainable_layers
        self.iterations.value = config.iterations
        self.patch_size.value = config.patch_size
        self.batch_size.value = config.batch_size
        self.use_gpu.value = config.device != "cpu" and gpu_name() is not None
        self._set_specific(config)

    # -- running ---------------------------------------------------------------------------
    def _ask_replace(self, config: TrainConfig) -> TrainConfig | None:
        """Ask before replacing a registered model or an existing model folder."""
        taken = config.model_name in list_models(include_hidden=True)
        exists = config.output_dir.exists() and any(config.output_dir.iterdir())
        if not (taken or exists):
            return config
        what = []
        if taken:
            what.append(f"a model named {config.model_name!r} is already registered")
        if exists:
            what.append(f"{config.output_dir} already exists")
        question = " and ".join(what).capitalize() + ". Replace it?"
        if not self.confirm(question):
            self.result.value = "nothing started (choose another model name)"
            return None
        return config.model_copy(update={"replace": True})

    def start(self, _value: Any = None) -> None:
        """Validate, ask before replacing anything, and start the run in a worker."""
        try:
            config = self.to_config()
        except (TamaleInputError, ConfigError) as exc:
            report_error(exc)
            return
        config = self._ask_replace(config)
        if config is None:
            return
        self.plot.clear(config.iterations)
        self.events = []
        self.result.value = ""
        self.runner.start(
            lambda token: iter_fit(config, cancel=token),
            on_result=self._finished,
            on_event=self._on_event,
            description=f"{'finetune' if self.finetune else 'train'} {config.model_name}",
            cooperative_cancel=True,
        )

    def _on_event(self, event: ProgressEvent) -> None:
        self.events.append(event)
        if event.stage == "train" and event.metrics:
            self.plot.add(event.metrics, event.total)

    def _finished(self, result: TrainResult) -> None:
        self.last_result = result
        scores = result.validation
        text = f"{result.model_name}: {result.iterations} iterations"
        if "val_f1" in scores:
            text += f"; validation F1@0.5 {scores['val_f1']:.3f}, PQ {scores['val_pq']:.3f}"
        text += "; registered" if result.registered else "; written (not registered)"
        self.result.value = text
        for message in result.messages:
            show_info(message)
        if result.registered:
            self.show_info(result.model_name)
