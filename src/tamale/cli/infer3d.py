"""``tamale infer3d``: stack or ortho-plane inference of a volume into an OME-Zarr store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tamale.cli._inference_options import add_2d_options, given_options
from tamale.errors import TamaleInputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "infer3d",
        help="segment a volume (stack or ortho-plane) into an OME-Zarr store",
        description=(
            "Segment a 3D volume slice by slice along xy, xz or yz (or all three and keep "
            "their consensus: ortho) and write one labels array per class to an OME-Zarr "
            "store, chunk by chunk. Same engine and defaults as the napari dock '3D "
            "inference'. An existing --out is never overwritten silently: pass --resume to "
            "finish an interrupted run or --overwrite to start again."
        ),
    )
    parser.add_argument(
        "volume",
        help="input volume: a .tif/.tiff or .npy file, a zarr array, or a zarr group "
        "(OME-Zarr: --level; another group: GROUP.zarr/ARRAY)",
    )
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument(
        "--plane", choices=("xy", "xz", "yz", "ortho"), help="slicing plane, or ortho (xy)"
    )
    parser.add_argument("--out", required=True, type=Path, help="output OME-Zarr directory")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--resume", action="store_true", help="finish an interrupted run in --out")
    what.add_argument(
        "--overwrite", action="store_true", help="replace --out (only a tamale store)"
    )
    parser.add_argument(
        "--scheduler",
        help="run slabs on Dask: 'local' (one worker per GPU) or a scheduler address "
        "(tcp://host:8786); default: this process",
    )
    parser.add_argument("--workers", type=int, help="workers of a 'local' cluster")
    parser.add_argument(
        "--scheduler-timeout", type=float, default=10.0, help="seconds to reach the scheduler"
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="YAML parameters (over the model's recommended ones; options given here win)",
    )
    parser.add_argument("--level", type=int, help="pyramid level of a multiscale input (0)")
    parser.add_argument("--channel", type=int, default=0, help="channel of a 4D input (0)")
    parser.add_argument("--voxel-size", help="Z,Y,X voxel size (recorded; warns if anisotropic)")
    parser.add_argument("--unit", help="unit of --voxel-size, e.g. nanometer")
    parser.add_argument("--chunks", help="output chunk size: N or Z,Y,X (64)")
    parser.add_argument("--slab-size", type=int, help="slices per slab (unit of work and resume)")
    g = parser.add_argument_group("2D parameters")
    add_2d_options(g)
    s = parser.add_argument_group("stack and ortho-plane parameters")
    s.add_argument("--median", type=int, help="median filter size in slices: 1,3,...,11 (3)")
    s.add_argument("--min-size", type=int, help="smallest object in voxels (500)")
    s.add_argument("--min-extent", type=int, help="smallest box extent (5)")
    s.add_argument("--vote", type=int, choices=(1, 2, 3), help="ortho voxel vote out of 3 (2)")
    s.add_argument(
        "--permit-single-view",
        action="store_true",
        default=None,
        help="ortho: let objects found in one stack only into the consensus",
    )
    s.add_argument(
        "--panoptic-stacks",
        action="store_true",
        default=None,
        help="ortho: also write the xy, xz and yz panoptic stacks",
    )
    parser.set_defaults(func=run)


_STACK_OPTIONS = {
    "plane": "plane",
    "median": "median_slices",
    "min_size": "min_size",
    "min_extent": "min_extent",
    "vote": "vote_threshold",
    "permit_single_view": "permit_single_view",
    "panoptic_stacks": "return_panoptic",
}
"""argparse destination → configuration field, beyond the 2D options."""


def _numbers(text: str | None, name: str, kind: type, count: tuple[int, ...]) -> tuple | None:
    if text is None:
        return None
    try:
        values = tuple(kind(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) not in count:
        raise TamaleInputError(
            f"{name} must be {' or '.join(map(str, count))} comma-separated numbers, got {text!r}"
        )
    return values


def run(args: argparse.Namespace) -> int:
    from tamale.cli._progress import TerminalProgress
    from tamale.inference.config import layered_config
    from tamale.inference.config3d import Inference3DConfig
    from tamale.inference.volume import segment_volume

    updates = given_options(args, _STACK_OPTIONS)
    config = layered_config(Inference3DConfig, args.model, args.config, updates)
    chunks = _numbers(args.chunks, "--chunks", int, (1, 3))
    voxel = _numbers(args.voxel_size, "--voxel-size", float, (3,))
    if_exists = "resume" if args.resume else "overwrite" if args.overwrite else "error"
    if args.out.exists() and if_exists == "error":
        from tamale.inference.volume_store import free_store_path

        raise FileExistsError(
            f"{args.out} exists: pass --resume to finish an interrupted run, --overwrite to "
            f"start again, or another --out (e.g. {free_store_path(args.out)})"
        )
    from tamale.inference.volume_source import open_volume

    volume = open_volume(args.volume, level=args.level, channel=args.channel)
    # an anisotropy warning is printed on the progress line (warn=False)
    result = segment_volume(
        volume,
        args.model,
        config,
        out=args.out,
        if_exists=if_exists,
        chunks=(chunks[0] if chunks and len(chunks) == 1 else chunks),
        scheduler=args.scheduler,
        n_workers=args.workers,
        scheduler_timeout=args.scheduler_timeout,
        voxel_size=voxel,
        unit=args.unit,
        slab_size=args.slab_size,
        warn=False,
        progress=TerminalProgress(),
    )
    counts = ", ".join(f"{name}: {n}" for name, n in result.n_objects.items())
    print(f"wrote {result.store} ({counts})", file=sys.stderr)
    return 0
