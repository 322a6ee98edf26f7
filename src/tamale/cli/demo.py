"""``tamale demo``: open napari with a sample EM volume and the tamale docks."""

from __future__ import annotations

import argparse
import importlib

from tamale.errors import TamaleInputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="open napari with a sample EM volume and the tamale docks",
        description="Open napari with a sample EM volume and every tamale dock.",
    )
    parser.add_argument(
        "--sample",
        default="synthetic-3d",
        help="sample to open (default: synthetic-3d; see the napari File > Open Sample menu)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The GUI lives in the plugin package, imported only here so that the
    # engine and every other subcommand run without napari or Qt.
    try:
        demo = importlib.import_module("tamale_napari._demo")
    except ImportError as exc:
        raise TamaleInputError(
            f"`tamale demo` needs napari and a Qt binding: pip install 'tamale[all]' ({exc})"
        ) from None
    demo.launch(sample=args.sample)
    return 0
