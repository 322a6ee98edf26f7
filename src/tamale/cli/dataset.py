"""``tamale dataset``: inspect training sets and add annotated patches to them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dataset",
        help="inspect training sets, add annotated patches",
        description="Inspect training sets and add annotated patches to them.",
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

    add = sub.add_parser(
        "add",
        help="store annotated patches or flipbooks (e.g. from 'tamale pick') in a training set",
        description="Append annotated patches to a training set in the empanada/tamale layout "
        "(DIR/NAME/<source>/images and masks, uint32 masks, never overwriting). Flipbooks "
        "(N, 5, P, P) store only their middle plane. The picks JSON written by 'tamale pick' "
        "next to IMAGES gives the source and the region of every patch.",
    )
    add.add_argument("images", type=Path, help="patches (N, P, P) or flipbooks (N, 5, P, P) TIFF")
    add.add_argument("labels", type=Path, help="their annotated labels (same shape)")
    add.add_argument(
        "--dataset", required=True, type=Path, help="the training set, DIR/NAME (created if new)"
    )
    add.add_argument("--source", help="source folder name (default: from the picks JSON)")
    add.add_argument(
        "--allow-empty",
        action="store_true",
        help="store patches whose labels are empty too (refused otherwise)",
    )
    add.set_defaults(func=run_add)


def run_info(args: argparse.Namespace) -> int:
    from tamale.datasets import summarize_training_set

    summary = summarize_training_set(args.directory, label_divisor=args.divisor)
    print(summary.to_text())
    return 1 if summary.problems else 0


def run_add(args: argparse.Namespace) -> int:
    from tamale.cli._progress import TerminalProgress
    from tamale.datasets import MIN_TRAINING_PATCHES, empty_label_patches, store_annotated
    from tamale.datasets.pick_files import read_picks
    from tamale.datasets.volumes import open_levels
    from tamale.errors import TamaleInputError

    sidecar = args.images.with_suffix(".json")
    picks = read_picks(sidecar) if sidecar.is_file() else None
    images = open_levels(args.images)[0]
    labels = open_levels(args.labels)[0]
    kind = picks.kind if picks else None
    empty = empty_label_patches(labels, kind=kind) if images.shape == labels.shape else []
    if empty and not args.allow_empty:
        raise TamaleInputError(
            f"{len(empty)} patch(es) have empty labels (numbered from 0: "
            f"{', '.join(map(str, empty[:10]))}{' ...' if len(empty) > 10 else ''}): annotate "
            "them, or pass --allow-empty to store them as background-only examples"
        )
    if not args.dataset.parent.exists():
        args.dataset.parent.mkdir(parents=True)
    result = store_annotated(
        images,
        labels,
        args.dataset.parent,
        args.dataset.name,
        source=args.source,
        provenance=picks.provenance if picks else None,
        kind=kind,
        progress=TerminalProgress(),
    )
    print(
        f"stored {len(result.names)} patches in {result.dataset_dir} "
        f"(source {result.source}); the training set now has {result.total_pairs}"
    )
    if result.empty_masks:
        print(f"{len(result.empty_masks)} of them have empty masks", file=sys.stderr)
    if result.total_pairs < MIN_TRAINING_PATCHES:
        print(
            f"finetuning needs at least {MIN_TRAINING_PATCHES} patches: annotate "
            f"{MIN_TRAINING_PATCHES - result.total_pairs} more"
        )
    return 0
