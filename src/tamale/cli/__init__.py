"""The ``tamale`` command line: one subcommand per engine capability.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds an ``argparse`` parser whose ``func``
default takes the parsed namespace and returns an exit code. Subcommands call
the same engine functions as the napari plugin and the Python API.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tamale import __version__
from tamale.config import ConfigError
from tamale.errors import TamaleInputError
from tamale.progress import Cancelled

__all__ = ["build_parser", "main"]

# module names (in this package) that provide subcommands, in help order
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "dataset",
    "infer2d",
    "infer3d",
    "models",
    "pick",
    "train",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="tamale",
        description="Panoptic segmentation of electron-microscopy images and volumes.",
    )
    parser.add_argument("--version", action="version", version=f"tamale {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"tamale.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        return int(func(args) or 0)
    except (TamaleInputError, ConfigError, FileNotFoundError, FileExistsError) as exc:
        print(f"tamale: error: {exc}", file=sys.stderr)
        return 2
    except Cancelled:
        print("tamale: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("tamale: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
