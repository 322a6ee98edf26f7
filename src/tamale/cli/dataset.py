"""``tamale dataset``: inspect training sets."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dataset", help="inspect training sets", description="Inspect training sets."
    )
    sub = parser.add_subparsers(title="dataset commands", metavar="ACTION", required=True)
    info = sub.add_parser(
        "info",
        help="counts per source, classes present, unpaired files",
        description="Summarise a training set in the empanada/tamale layout "
        "(<dir>/<source>/images and masks paired by file name).",
    )
    info.add_argument("directory", help="the training-set directory")
    info.add_argument(
        "--divisor",
        type=int,
        default=None,
        help="label divisor of panoptic masks (class * divisor + instance); omit for instance-only masks",
    )
    info.set_defaults(func=run_info)


def run_info(args: argparse.Namespace) -> int:
    from tamale.datasets import summarize_training_set

    summary = summarize_training_set(args.directory, label_divisor=args.divisor)
    print(summary.to_text())
    return 1 if summary.problems else 0
