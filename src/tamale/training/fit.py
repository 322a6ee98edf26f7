"""The one training loop, for training from scratch and finetuning alike.

``iter_fit(config)`` is a work generator (``fit`` drains it):

1. **prepare** — the model (:func:`~tamale.training.setup.prepare_model`: a registered
   model to finetune, or a preset), the output folder checks (taken name, existing
   folder, not writable: refused before anything is written), the patch size against the
   model's padding factor, the training and validation sets (read, checked, normalised as
   at inference), the sampler (stratified patches over every training image; too few
   patches for one batch is refused, saying how many are needed);
2. **train** — per iteration: a batch of windows is read, moved to the device, augmented
   there, turned into targets, passed forward (mixed precision on CUDA, ``torch.amp``),
   and the panoptic loss is back-propagated; AdamW steps and the schedule advances. Every
   ``validation_interval`` iterations (and at the end) the model is scored on the
   validation set; every ``checkpoint_interval`` (and at the end) a checkpoint is
   written. Each iteration yields a :class:`~tamale.progress.ProgressEvent` whose
   ``metrics`` carry the loss terms, the learning rate and, after a validation, ``val_iou``,
   ``val_pq`` and ``val_f1`` (for the live plot);
3. **export** — card + safetensors weights in ``<model_dir>/<model_name>/``, registered.

Cancel (the :class:`~tamale.progress.CancelToken`, or closing the generator) stops at the
next iteration and writes a checkpoint first; ``config.resume`` continues from a
checkpoint and gives the same weights as an uninterrupted run (same seed, same sampler
position, same random-number states). Running out of memory is reported with a smaller
batch size to try.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tamale.errors import TamaleInputError
from tamale.inference.device import choose_device
from tamale.progress import Cancelled, CancelToken, ProgressCallback, ProgressEvent, Work, drain
from tamale.registry import ModelCard
from tamale.registry.register import RegisteredModel
from tamale.training.augment import augment_batch
from tamale.training.checkpoint import load_checkpoint, save_checkpoint
from tamale.training.config import TrainConfig
from tamale.training.data import DatasetSpec, LoadedSet, data_norms, iter_load_dataset
from tamale.training.export import check_output, write_model
from tamale.training.freeze import freeze_stages, train_mode, trainable_parameters
from tamale.training.losses import panoptic_loss
from tamale.training.optim import make_optimizer, make_scheduler
from tamale.training.sampler import BatchSampler
from tamale.training.setup import ModelSetup, prepare_model
from tamale.training.targets import batch_targets
from tamale.training.validate import validate

__all__ = ["TrainResult", "fit", "iter_fit"]

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"
# fields that must not change when a run is resumed (they change the maths)
_RUN_FIELDS = (
    "base_model", "architecture", "architecture_options", "classes", "label_divisor",
    "encoder_init", "finetune_layers", "iterations", "patch_size", "batch_size", "seed",
    "downsampling",
    "augment", "loss", "optimizer", "amp",
)  # fmt: skip


@dataclass
class TrainResult:
    """What a finished run produced."""

    model_name: str
    card: ModelCard
    card_path: Path
    output_dir: Path
    checkpoint: Path
    """The last checkpoint."""
    best_checkpoint: Path | None
    """The checkpoint with the best validation score (None without validation)."""
    registered: RegisteredModel | None
    iterations: int
    history: list[dict[str, float]] = field(default_factory=list)
    """One entry per logged iteration: ``iteration``, loss terms, ``lr``, ``seconds``,
    ``cpu_seconds`` and, after validations, ``val_*`` scores."""
    validation: dict[str, float] = field(default_factory=dict)
    """Scores of the validation of the exported weights (the last one, or the best one with
    ``export='best'``; empty without a validation set)."""
    messages: list[str] = field(default_factory=list)
    device: str = "cpu"
    seconds: float = 0.0


def _device(config: TrainConfig) -> tuple[torch.device, list[str]]:
    if config.device == "cpu":
        return torch.device("cpu"), []
    if config.device == "auto":
        choice = choose_device(True)
        return choice.device, [choice.message] if choice.message else []
    if config.device == "cuda" and not torch.cuda.is_available():
        raise TamaleInputError("device 'cuda' was asked for but no CUDA GPU is available")
    if config.device == "mps" and not torch.backends.mps.is_available():
        raise TamaleInputError("device 'mps' was asked for but Apple MPS is not available")
    return torch.device(config.device), []


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
    )


def _oom_message(config: TrainConfig, device: torch.device) -> str:
    smaller = max(1, config.batch_size // 2)
    return (
        f"out of memory on {device} with a batch of {config.batch_size} patches of "
        f"{config.patch_size} x {config.patch_size}: lower the batch size (e.g. {smaller}) "
        "or the patch size, or finetune fewer layers"
    )


def _check_patch_size(config: TrainConfig, padding: int) -> None:
    if config.patch_size % padding:
        lower = max(padding, config.patch_size // padding * padding)
        raise TamaleInputError(
            f"patch size {config.patch_size} is not a multiple of the model's padding factor "
            f"{padding}: use {lower} or {lower + padding}"
        )


def _check_resume(config: TrainConfig, state: dict[str, Any]) -> None:
    saved = TrainConfig.from_mapping(state["config"])
    differ = [f for f in _RUN_FIELDS if getattr(saved, f) != getattr(config, f)]
    if differ:
        raise TamaleInputError(
            f"the checkpoint {config.resume} was written by a run with other "
            f"{', '.join(differ)}; resume with the same parameters (the checkpoint folder "
            "holds them in training.yaml)"
        )


def _rng_state(aug_gen: torch.Generator, device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "augment": aug_gen.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], aug_gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    aug_gen.set_state(state["augment"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _score(scores: dict[str, float]) -> float:
    """Validation score to pick the best checkpoint: PQ, then F1, then IoU."""
    for key in ("pq", "f1", "iou"):
        v = scores.get(key, float("nan"))
        if math.isfinite(v):
            return v
    return float("-inf")


def iter_fit(config: TrainConfig, *, cancel: CancelToken | None = None) -> Work[TrainResult]:
    """Train (or finetune) a model; a work generator (see the module docstring).

    Parameters
    ----------
    config : TrainConfig
        Every parameter of the run.
    cancel : CancelToken, optional
        Checked between iterations (and validation images); a cancelled run writes a
        checkpoint and raises :class:`~tamale.progress.Cancelled`.

    Yields
    ------
    ProgressEvent
        ``read`` (loading the sets), ``train`` (one step per iteration, with metrics),
        ``export``.

    Returns
    -------
    TrainResult

    Raises
    ------
    TamaleInputError
        Bad input (see :mod:`tamale.training`), nothing written; out of memory.
    """
    started = time.perf_counter()
    cpu_started = time.process_time()
    # -- prepare: everything that can be refused, before anything is written --------
    check_output(config)
    resume_state = load_checkpoint(config.resume) if config.resume is not None else None
    if resume_state is not None:
        _check_resume(config, resume_state)
    device, messages = _device(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # the initial weights of a new model
        setup: ModelSetup = prepare_model(config)
    messages += setup.messages
    _check_patch_size(config, setup.padding_factor)
    if config.trainable_layers != "all" and not config.is_finetune and config.encoder_init is None:
        messages.append(
            f"finetunable layers {config.trainable_layers!r} ignored: a new model without "
            "encoder weights trains all layers"
        )
        layers = "all"
    else:
        layers = config.trainable_layers
    spec = DatasetSpec(setup.classes, setup.label_divisor)
    norms = setup.norms
    if norms is None:
        norms = data_norms(config.train_dir)
    train_set: LoadedSet = yield from iter_load_dataset(
        config.train_dir,
        spec,
        norms,
        role="training",
        downsampling=config.downsampling,
        cancel=cancel,
    )
    val_set: LoadedSet | None = None
    # validation scores what 2D inference with the new card's recommendations gives
    validation_parameters = {
        **(setup.base_card.inference if setup.base_card is not None else {}),
        **config.inference,
    }
    if config.val_dir is not None:
        val_set = yield from iter_load_dataset(
            config.val_dir, spec, norms, role="validation", keep_masks=True, cancel=cancel
        )
    aug = config.augment
    sampler = BatchSampler(
        train_set,
        config.patch_size,
        config.batch_size,
        seed=config.seed,
        context=aug.context if aug.enabled else 1.0,
    )
    for name in train_set.empty[:3]:
        messages.append(f"empty mask (used as a negative example): {name}")

    # -- model, optimiser, state -----------------------------------------------------
    model = setup.model
    frozen = freeze_stages(model, layers)
    # channels-last convolutions: 25-32% less time per iteration on the CPU (oneDNN) for
    # every preset measured (docs/performance.md), and the tensor-core layout on CUDA
    channels_last = device.type in ("cpu", "cuda")
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, config.optimizer)
    scheduler = make_scheduler(optimizer, config.optimizer, config.iterations)
    use_amp = bool(config.amp and device.type == "cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    aug_gen = torch.Generator()
    history: list[dict[str, float]] = []
    start_iteration = 0
    best_score = float("-inf")
    last_validation: dict[str, float] = {}
    out_dir = config.output_dir
    ckpt_dir = out_dir / CHECKPOINT_DIR
    best_path: Path | None = None

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        aug_gen.manual_seed(config.seed + 1)
        if resume_state is not None:
            model.load_state_dict(resume_state["model"])
            optimizer.load_state_dict(resume_state["optimizer"])
            scheduler.load_state_dict(resume_state["scheduler"])
            if use_amp and resume_state.get("scaler"):
                scaler.load_state_dict(resume_state["scaler"])
            sampler.load_state_dict(resume_state["sampler"])
            _set_rng_state(resume_state["rng"], aug_gen, device)
            start_iteration = int(resume_state["iteration"])
            history = list(resume_state.get("history", []))
            best_score = float(resume_state.get("best_score", float("-inf")))
            last_validation = dict(resume_state.get("validation", {}))
            messages.append(f"resumed at iteration {start_iteration} from {config.resume}")
            if (ckpt_dir / BEST).is_file():
                best_path = ckpt_dir / BEST

        def checkpoint(iteration: int, path: Path | None = None) -> Path:
            target = path or ckpt_dir / LAST
            save_checkpoint(
                target,
                {
                    "iteration": iteration,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if use_amp else {},
                    "sampler": sampler.state_dict(),
                    "rng": _rng_state(aug_gen, device),
                    "history": history,
                    "best_score": best_score,
                    "validation": last_validation,
                    "config": config.model_dump(mode="json", exclude={"resume", "replace"}),
                    "model_spec": {
                        "architecture": setup.architecture,
                        "options": dict(setup.options),
                        "classes": [c.model_dump() for c in setup.classes],
                        "label_divisor": setup.label_divisor,
                        "padding_factor": setup.padding_factor,
                        "norms": norms.model_dump(),
                    },
                },
            )
            return target

        def write_config() -> None:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            config.to_yaml(ckpt_dir / "training.yaml")

        n_trainable = trainable_parameters(model)
        yield ProgressEvent(
            "train",
            start_iteration,
            config.iterations,
            f"training {n_trainable:,} parameters on {device}"
            f" ({sampler.patches_per_epoch} patches per epoch)",
        )
        iteration = start_iteration
        wrote_config = False
        per_image: dict[str, float] = {}
        try:
            train_mode(model, frozen)
            while iteration < config.iterations:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled("cancelled by the user")
                batch = sampler.next_batch()
                try:
                    images = batch.images.to(device, non_blocking=True)
                    labels = batch.labels.to(device, non_blocking=True)
                    x, lab = augment_batch(images, labels, config.patch_size, aug, norms, aug_gen)
                    if channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    targets = batch_targets(lab, batch.luts, config.loss.heatmap_sigma)
                    with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                        out = model(x)
                    loss, terms = panoptic_loss(out, targets, config.loss)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                except Exception as exc:
                    if _is_oom(exc):
                        raise TamaleInputError(_oom_message(config, device)) from None
                    raise
                lr = float(optimizer.param_groups[0]["lr"])
                scheduler.step()
                iteration += 1
                if not math.isfinite(terms["loss"]):
                    raise TamaleInputError(
                        f"the loss became {terms['loss']} at iteration {iteration}: lower the "
                        "learning rate (optimizer.lr in a custom config)"
                    )
                record: dict[str, float] = {
                    "iteration": float(iteration),
                    **terms,
                    "lr": lr,
                    "seconds": time.perf_counter() - started,
                    "cpu_seconds": time.process_time() - cpu_started,
                }
                at_end = iteration == config.iterations
                if val_set is not None and (iteration % config.validation_interval == 0 or at_end):
                    yield ProgressEvent(
                        "train", iteration, config.iterations, "validating", dict(record)
                    )
                    model.eval()
                    try:
                        result = validate(
                            model,
                            val_set,
                            device,
                            cancel,
                            downsampling=config.downsampling,
                            inference=validation_parameters,
                        )
                    finally:
                        train_mode(model, frozen)
                    last_validation = {
                        **{f"val_{k}": v for k, v in result.scores.items()},
                        **{
                            f"val_{k}@{name}": v
                            for name, scores in result.per_image.items()
                            for k, v in scores.items()
                            if k in ("pq", "f1")
                        },
                    }
                    for k in ("iou", "pq", "f1"):
                        record[f"val_{k}"] = result.scores[k]
                    per_image = {k: v for k, v in last_validation.items() if "@" in k}
                    score = _score(result.scores)
                    if score > best_score:
                        best_score = score
                        if not wrote_config:
                            write_config()
                            wrote_config = True
                        best_path = checkpoint(iteration, ckpt_dir / BEST)
                history.append(record)
                event_metrics = {**record, **per_image} if "val_f1" in record else record
                if iteration % config.checkpoint_interval == 0 or at_end:
                    if not wrote_config:
                        write_config()
                        wrote_config = True
                    checkpoint(iteration)
                message = f"iteration {iteration}/{config.iterations}, loss {terms['loss']:.4g}"
                if "val_f1" in record:
                    message += f", validation F1 {record['val_f1']:.3f} PQ {record['val_pq']:.3f}"
                yield ProgressEvent("train", iteration, config.iterations, message, event_metrics)
        except (Cancelled, GeneratorExit):  # GeneratorExit: closed by drain() on Cancel
            if iteration > start_iteration:
                write_config()
                checkpoint(iteration)
            raise

    # -- export ------------------------------------------------------------------------
    yield ProgressEvent("export", 0, 1, "writing the model")
    if config.export == "best" and best_path is not None:
        best_state = load_checkpoint(best_path)
        model.load_state_dict(best_state["model"])
        # the card's quality is that of the weights it gets
        last_validation = dict(best_state.get("validation", last_validation))
    quality = {k.removeprefix("val_"): v for k, v in last_validation.items() if "@" not in k}
    quality = {k: v for k, v in quality.items() if k in ("iou", "pq", "f1")}
    card_fields = {
        "architecture": setup.architecture,
        "options": setup.options,
        "classes": setup.classes,
        "label_divisor": setup.label_divisor,
        "padding_factor": setup.padding_factor,
        "norms": norms,
        "base": setup.base_card,
        "quality": quality,
    }
    model.eval()
    card, card_path, registered = write_model(model, card_fields, config)
    (out_dir / "history.json").write_text(json.dumps(history, indent=1) + "\n", encoding="utf-8")
    yield ProgressEvent("export", 1, 1, f"model {config.model_name} written to {out_dir}")
    return TrainResult(
        model_name=config.model_name,
        card=card,
        card_path=card_path,
        output_dir=out_dir,
        checkpoint=ckpt_dir / LAST,
        best_checkpoint=best_path,
        registered=registered,
        iterations=iteration,
        history=history,
        validation=last_validation,
        messages=messages,
        device=str(device),
        seconds=time.perf_counter() - started,
    )


def fit(
    config: TrainConfig,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Train or finetune a model (blocking form of :func:`iter_fit`).

    Parameters
    ----------
    config : TrainConfig
        Every parameter of the run (``base_model`` set: finetuning).
    progress : callable, optional
        Called with every :class:`~tamale.progress.ProgressEvent`.
    cancel : CancelToken, optional
        Stops the run at the next iteration (a checkpoint is written first).
    """
    return drain(iter_fit(config, cancel=cancel), progress, cancel)
