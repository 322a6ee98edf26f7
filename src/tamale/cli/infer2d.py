"""``tamale infer2d``: 2D inference on an image file (or every slice of a stack)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tamale.cli._inference_options import add_2d_options, given_options
from tamale.errors import TamaleInputError

_SUFFIXES = (".tif", ".tiff", ".npy")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "infer2d",
        help="segment a 2D image (or each slice of a stack) with a registered model",
        description=(
            "Segment a 2D image, or each slice of a stack with --batch, and write uint32 "
            "panoptic labels (class * max-objects-per-class + object). Same engine and "
            "defaults as the napari dock '2D inference (parameter testing)'."
        ),
    )
    parser.add_argument("image", type=Path, help="input image (.tif, .tiff or .npy)")
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument(
        "--out", required=True, type=Path, help="output labels (.tif, .tiff or .npy)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace --out if it exists (refused otherwise)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="YAML file with parameters (over the model's recommended ones; options given here win)",
    )
    parser.add_argument(
        "--batch", action="store_true", help="the image is a stack: segment each slice"
    )
    parser.add_argument(
        "--channel",
        type=int,
        help="take this channel of a multi-channel image (axis: --channel-axis)",
    )
    parser.add_argument(
        "--channel-axis", type=int, default=-1, help="channel axis for --channel (default -1)"
    )
    add_2d_options(parser)
    parser.add_argument("--roi", help="only segment Y0:Y1,X0:X1")
    parser.set_defaults(func=run)


def _read(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        return tifffile.imread(path)
    raise TamaleInputError(f"cannot read {path.name}: use a .tif, .tiff or .npy file")


def _write(path: Path, labels: np.ndarray) -> None:
    if path.suffix.lower() == ".npy":
        np.save(path, labels)
        return
    import tifffile

    tifffile.imwrite(path, labels, compression="zlib")


def _parse_roi(text: str) -> tuple[int, int, int, int]:
    try:
        ys, xs = text.split(",")
        y0, y1 = (int(v) for v in ys.split(":"))
        x0, x1 = (int(v) for v in xs.split(":"))
    except ValueError:
        raise TamaleInputError(
            f"--roi must look like Y0:Y1,X0:X1 (e.g. 0:512,100:612), got {text!r}"
        ) from None
    return y0, y1, x0, x1


def run(args: argparse.Namespace) -> int:
    from tamale.cli._progress import TerminalProgress
    from tamale.inference import Inference2DConfig, infer_2d
    from tamale.inference.config import layered_config

    out: Path = args.out
    if out.suffix.lower() not in _SUFFIXES:
        raise TamaleInputError(f"--out must end in .tif, .tiff or .npy, got {out.name}")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; choose another --out or pass --overwrite")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"the folder of --out does not exist: {out.parent}")

    updates = given_options(args)
    if args.batch:
        updates["batch_mode"] = True
    config = layered_config(Inference2DConfig, args.model, args.config, updates)

    image = _read(args.image)
    if args.channel is not None:
        axis = args.channel_axis
        if not -image.ndim <= axis < image.ndim or not 0 <= args.channel < image.shape[axis]:
            raise TamaleInputError(
                f"--channel {args.channel} on axis {axis} does not exist in an image of shape "
                f"{image.shape}"
            )
        image = np.take(image, args.channel, axis=axis)
    roi = _parse_roi(args.roi) if args.roi else None

    result = infer_2d(image, args.model, config, roi=roi, progress=TerminalProgress())
    for message in result.messages:
        print(f"tamale: {message}", file=sys.stderr)
    if out.exists() and not args.overwrite:  # appeared while we were running
        raise FileExistsError(f"{out} appeared while segmenting; nothing written")
    _write(out, result.labels)
    counts = ", ".join(f"{n} {name}" for name, n in result.object_counts().items()) or "nothing"
    print(
        f"tamale: wrote {out} ({result.labels.shape}, uint32): {counts}; model "
        f"{result.model_name} on {result.device} ({result.precision}) in {result.seconds:.1f} s",
        file=sys.stderr,
    )
    return 0
