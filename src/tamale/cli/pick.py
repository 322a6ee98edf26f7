"""``tamale pick``: pick patches or flipbooks of an image file to annotate elsewhere."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pick",
        help="pick patches or flipbooks of an image or volume to annotate",
        description=(
            "Pick square patches (2D images, --stack) or 5-plane flipbooks (volumes) to "
            "annotate, as TIFFs with empty uint32 label files and a JSON of where each "
            "patch came from. Annotate the labels (the middle plane, index 2, of each "
            "flipbook) in any tool, then store them with 'tamale dataset add'. Random "
            "patches are spread out, never overlap, and avoid earlier picks in --out and "
            "the patches stored in --exclude. Files are never overwritten. Same engine as "
            "the napari dock 'Pick training patches'."
        ),
    )
    parser.add_argument("image", type=Path, help="image or volume (.tif, .tiff, .npy, .zarr)")
    parser.add_argument("--out", required=True, type=Path, help="folder for the picked files")
    parser.add_argument("--n", type=int, default=None, help="number of patches (16)")
    parser.add_argument("--size", type=int, default=None, help="patch side in pixels (256)")
    parser.add_argument(
        "--axis",
        choices=["xy", "xz", "yz", "any"],
        default=None,
        help="flipbook plane of a volume; 'any': a random plane per flipbook, for nearly "
        "isotropic voxels (xy)",
    )
    parser.add_argument(
        "--stack",
        action="store_true",
        default=None,
        help="the 3D image is a stack of unrelated 2D images: 2D patches, no flipbooks",
    )
    parser.add_argument(
        "--level", type=int, default=None, help="multiscale level of a pyramid file (0)"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="random seed (default: new, printed)"
    )
    parser.add_argument(
        "--points",
        type=Path,
        help="CSV of points to centre patches on (napari's points CSV, or rows of z,y,x / y,x "
        "in full-resolution pixels)",
    )
    parser.add_argument(
        "--all-points",
        action="store_true",
        default=None,
        help="one patch per point, whatever --n says",
    )
    parser.add_argument(
        "--labels",
        type=Path,
        help="labels of the image (same shape): crop them too (paired patches)",
    )
    parser.add_argument(
        "--exclude",
        type=Path,
        action="append",
        default=[],
        help="a training set (DIR/NAME) whose stored patches of this source to avoid (repeatable)",
    )
    parser.add_argument(
        "--name", help="source name recorded and file prefix (default: the image file's stem)"
    )
    parser.add_argument(
        "--config", type=Path, help="YAML file with pick parameters (options given here win)"
    )
    parser.set_defaults(func=run)


_OPTION_TO_FIELD = {
    "n": "n_patches",
    "size": "patch_size",
    "axis": "axis",
    "stack": "stack",
    "level": "level",
    "seed": "seed",
    "all_points": "pick_all_points",
}


def run(args: argparse.Namespace) -> int:
    from tamale.cli._progress import TerminalProgress
    from tamale.datasets import PickConfig, pick_patches, stored_regions
    from tamale.datasets.pick_files import picked_regions, save_picks
    from tamale.datasets.volumes import open_levels, read_points_csv

    base = PickConfig.from_yaml(args.config) if args.config else PickConfig()
    updates = {
        field: getattr(args, opt)
        for opt, field in _OPTION_TO_FIELD.items()
        if getattr(args, opt) is not None
    }
    config = PickConfig.from_mapping({**base.model_dump(), **updates}, source="options")
    source = args.name or args.image.stem
    levels = open_levels(args.image)
    labels = open_levels(args.labels) if args.labels else None
    if labels is not None and len(labels) == 1 and len(levels) == 1:
        labels = labels[0]
    points = read_points_csv(args.points, len(levels[0].shape)) if args.points else None
    exclude = picked_regions(args.out, source)
    for dataset in args.exclude:
        exclude += stored_regions(dataset, source)
    result = pick_patches(
        levels if len(levels) > 1 else levels[0],
        config,
        points=points,
        labels=labels,
        exclude=exclude,
        source=source,
        progress=TerminalProgress(),
    )
    files = save_picks(result, args.out, args.name)
    what = "flipbooks" if result.kind == "flipbook" else "patches"
    print(
        f"picked {len(result)} {what} of {result.config.patch_size} px "
        f"({result.n_from_points} at points, {len(result) - result.n_from_points} random), "
        f"seed {result.seed}"
    )
    print(f"  images: {files.images}")
    print(f"  labels: {files.labels}")
    print(f"  where they came from: {files.sidecar}")
    if result.kind == "flipbook":
        print("annotate plane 2 (the middle one) of each flipbook in the labels file, then run:")
    else:
        print("annotate the labels file, then run:")
    print(f"  tamale dataset add {files.images} {files.labels} --dataset DIR/NAME")
    return 0
