"""``tamale demo``: segment the packaged EM sample with the built-in model.

Without options it opens napari on the sample volume with every tamale dock, the
built-in model chosen, and a 2D segmentation of the current slice. ``--headless --out
DIR.zarr`` segments the whole sample in 3D without a display and prints what it found.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from tamale.demo import BUILTIN_MODEL
from tamale.errors import TamaleInputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="segment the sample EM volume with the built-in model (napari, or --headless)",
        description=(
            "Open napari on the sample EM volume with every tamale dock and the built-in "
            "mitochondria model, and segment the current slice; with --headless, segment "
            "the whole sample in 3D without a display and print what was found."
        ),
    )
    parser.add_argument(
        "--sample",
        default="vnc-sstem",
        help="sample to open in napari (default: vnc-sstem, the real ssTEM crop; "
        "also synthetic-2d, synthetic-3d)",
    )
    parser.add_argument(
        "--model", default=BUILTIN_MODEL, help=f"registered model to use ({BUILTIN_MODEL})"
    )
    parser.add_argument(
        "--headless", action="store_true", help="no window: 3D inference of the sample"
    )
    parser.add_argument(
        "--out", type=Path, help="with --headless: OME-Zarr store to write (default: in memory)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="with --headless: replace an existing --out"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.headless:
        return _headless(args)
    if args.out is not None or args.overwrite:
        raise TamaleInputError("--out and --overwrite go with --headless")
    # The GUI lives in the plugin package, imported only here so that the
    # engine and every other subcommand run without napari or Qt.
    try:
        demo = importlib.import_module("tamale_napari._demo")
    except ImportError as exc:
        raise TamaleInputError(
            f"`tamale demo` needs napari and a Qt binding: pip install 'tamale[all]' ({exc})"
        ) from None
    demo.launch(sample=args.sample, model=args.model)
    return 0


def _headless(args: argparse.Namespace) -> int:
    from tamale.cli._progress import TerminalProgress
    from tamale.demo import segment_sample

    if args.sample != "vnc-sstem":
        raise TamaleInputError("--headless segments the vnc-sstem sample only")
    if args.out is not None:
        if args.out.exists() and not args.overwrite:
            raise FileExistsError(f"{args.out} exists; choose another --out or pass --overwrite")
        if not args.out.parent.is_dir():
            raise FileNotFoundError(f"the folder of --out does not exist: {args.out.parent}")
    result = segment_sample(
        args.out, model=args.model, overwrite=args.overwrite, progress=TerminalProgress()
    )
    print(result.summary())
    print("objects per slice: " + " ".join(str(n) for n in result.objects_per_slice))
    sys.stdout.flush()
    return 0
