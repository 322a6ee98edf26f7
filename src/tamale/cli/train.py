"""``tamale train`` and ``tamale finetune``: the same training loop as the napari docks.

Both build one :class:`tamale.training.TrainConfig` from, in increasing priority: the
configuration stored in ``--resume``'s checkpoint, a ``--config`` YAML file (any field of
the config; unknown keys are errors naming the key), and the options given on the command
line; then run :func:`tamale.training.fit` with a progress bar on stderr. Ctrl-C stops at
the next iteration and leaves a checkpoint to ``--resume`` from.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tamale.progress import CancelToken

__all__ = ["register"]


def _common(parser: argparse.ArgumentParser, finetune: bool) -> None:
    parser.add_argument("--config", type=Path, help="YAML file with any training parameters")
    parser.add_argument(
        "--model-name", help="name of the new model (letters, digits, '.', '_', '-')"
    )
    parser.add_argument("--train-dir", type=Path, help="training set (<source>/images, masks)")
    parser.add_argument(
        "--val-dir", type=Path, help="validation set (may be the training set); none: no validation"
    )
    parser.add_argument(
        "--model-dir", type=Path, help="where <model-name>/ (card, weights, checkpoints) is written"
    )
    parser.add_argument(
        "--finetune-layers",
        choices=["none", "stage4", "stage3", "stage2", "stage1", "all"],
        help="encoder stages that train (default: "
        + ("none" if finetune else "all")
        + "); frozen stages keep their batch-norm statistics",
    )
    parser.add_argument(
        "--iterations", type=int, help=f"training iterations ({100 if finetune else 500})"
    )
    parser.add_argument("--patch-size", type=int, help="patch side in pixels (256)")
    parser.add_argument("--batch-size", type=int, help="patches per iteration (16)")
    parser.add_argument(
        "--downsampling",
        type=int,
        choices=[1, 2, 4],
        help="train at 1/N of the images' resolution (1); the card recommends it for inference",
    )
    parser.add_argument("--val-every", type=int, help="validate every N iterations (5 per run)")
    parser.add_argument("--checkpoint-every", type=int, help="checkpoint every N iterations")
    parser.add_argument("--seed", type=int, help="random seed (0)")
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda", "mps"], help="where to train (auto)"
    )
    parser.add_argument(
        "--export", choices=["last", "best"], help="weights to keep: last iteration or best"
    )
    parser.add_argument("--description", help="what the model segments (goes into its card)")
    parser.add_argument("--resume", type=Path, help="continue the run saved in this checkpoint")
    parser.add_argument(
        "--replace", action="store_true", default=None, help="replace a model of the same name"
    )
    parser.add_argument(
        "--no-register",
        action="store_true",
        help="write card and weights without registering the model",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    t = subparsers.add_parser(
        "train",
        help="train a new panoptic model from a training set",
        description=(
            "Train a new model (instance and semantic classes) from a training set in "
            "tamale's or empanada's layout, then register it. Same engine and defaults as "
            "the napari dock 'Train a model'."
        ),
    )
    _common(t, finetune=False)
    t.add_argument(
        "--labels",
        help="dataset labels: 'id,name,semantic|instance' per class, separated by ';' or "
        "newlines (default: one instance class)",
    )
    t.add_argument("--labels-file", type=Path, help="dataset labels, one class per line")
    t.add_argument("--label-divisor", type=int, help="class * divisor + instance (panoptic masks)")
    t.add_argument("--architecture", help="preset (default panoptic_deeplab_r50)")
    t.add_argument(
        "--architecture-options", help="preset options as JSON, e.g. '{\"fpn_dim\": 64}'"
    )
    t.add_argument("--encoder-init", help="registered model name or weights file for the encoder")
    t.set_defaults(func=run_train)

    f = subparsers.add_parser(
        "finetune",
        help="finetune a registered model on a training set",
        description=(
            "Finetune a registered model (tamale or empanada) on a training set, then "
            "register the result under a new name. Same engine and defaults as the napari "
            "dock 'Finetune a model'."
        ),
    )
    f.add_argument("--model", dest="base_model", help="the registered model to finetune")
    _common(f, finetune=True)
    f.set_defaults(func=run_finetune)


_FIELDS = (
    "model_name", "train_dir", "val_dir", "model_dir", "finetune_layers", "iterations",
    "patch_size", "batch_size", "downsampling", "val_every", "checkpoint_every", "seed", "device", "export",
    "description", "resume", "replace",
)  # fmt: skip


def _cli_values(args: argparse.Namespace, finetune: bool) -> dict[str, Any]:
    from tamale.errors import TamaleInputError

    values = {f: getattr(args, f) for f in _FIELDS if getattr(args, f, None) is not None}
    if args.no_register:
        values["register_model"] = False
    if finetune:
        if args.base_model is not None:
            values["base_model"] = args.base_model
        return values
    if args.labels is not None and args.labels_file is not None:
        raise TamaleInputError("give --labels or --labels-file, not both")
    if args.labels is not None:
        values["classes"] = args.labels.replace(";", "\n")
    if args.labels_file is not None:
        values["classes"] = Path(args.labels_file).read_text(encoding="utf-8")
    for f in ("label_divisor", "architecture", "encoder_init"):
        if getattr(args, f) is not None:
            values[f] = getattr(args, f)
    if args.architecture_options is not None:
        try:
            values["architecture_options"] = json.loads(args.architecture_options)
        except json.JSONDecodeError as exc:
            raise TamaleInputError(f"--architecture-options is not JSON: {exc}") from None
    return values


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    from tamale.config import ConfigError

    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a mapping of keys to values")
    return loaded


def build_config(args: argparse.Namespace, finetune: bool) -> Any:
    """The run's :class:`~tamale.training.TrainConfig`: checkpoint < --config < options."""
    from tamale.config import ConfigError
    from tamale.training import TrainConfig, load_checkpoint

    merged: dict[str, Any] = {}
    layers = []
    if args.resume is not None:
        layers.append(
            {k: v for k, v in load_checkpoint(args.resume)["config"].items() if v is not None}
        )
    if args.config is not None:
        layers.append(_read_yaml(args.config))
    layers.append(_cli_values(args, finetune))
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    missing = [k for k in ("model_name", "train_dir", "model_dir") if k not in merged]
    if finetune and "base_model" not in merged:
        missing.insert(0, "model")
    if missing:
        raise ConfigError(
            "missing "
            + ", ".join(f"--{k.replace('_', '-')}" for k in missing)
            + " (or set them in --config)"
        )
    merged.setdefault("iterations", 100 if finetune else 500)
    return TrainConfig.from_mapping(merged, source=str(args.config or "options"))


def _run(args: argparse.Namespace, finetune: bool) -> int:
    from tamale.cli._progress import TerminalProgress
    from tamale.training import fit

    config = build_config(args, finetune)
    token = CancelToken()
    try:
        result = fit(config, progress=TerminalProgress(), cancel=token)
    except KeyboardInterrupt:  # pragma: no cover - interactive
        token.cancel()
        raise
    for message in result.messages:
        print(f"tamale: {message}", file=sys.stderr)
    scores = result.validation
    summary = (
        f"validation F1@0.5 {scores['val_f1']:.3f}, PQ {scores['val_pq']:.3f}, "
        f"IoU {scores['val_iou']:.3f}"
        if "val_f1" in scores
        else "no validation set"
    )
    where = f"registered as {result.model_name}" if result.registered else "not registered"
    print(
        f"tamale: {'finetuned' if finetune else 'trained'} {result.model_name} in "
        f"{result.iterations} iterations ({result.seconds:.0f} s on {result.device}); "
        f"{summary}; card {result.card_path}; {where}",
        file=sys.stderr,
    )
    return 0


def run_train(args: argparse.Namespace) -> int:
    return _run(args, finetune=False)


def run_finetune(args: argparse.Namespace) -> int:
    return _run(args, finetune=True)
