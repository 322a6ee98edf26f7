"""Proofreading on a zarr volume: speed and peak memory of merge, delete, filter, jump.

Builds a uint32 zarr volume (default 512^3, 64^3 chunks) holding about 20,000
ellipsoidal objects, written chunk by chunk into a temporary directory, then
runs each operation several times, each run in a fresh subprocess on a fresh
copy of the store, and reports wall time and the subprocess's peak resident
memory (``ru_maxrss``, which includes the ~100 MB of Python, numpy and zarr).

Operations (engine calls, as the plugin runs them in its worker):

* ``merge``: two objects picked with points, whole volume ("apply in 3D"):
  read the picks, build the edit, find the voxels (the plugin's undoable
  path) and write them into the store;
* ``delete``: the same for three objects;
* ``filter``: remove every object smaller than 100 voxels in one block-wise
  pass, written chunk by chunk;
* ``jump``: find one object (box, centroid, central voxel) by scanning chunks.

Usage::

    python benchmarks/proofread.py [--size 512] [--objects 20000] [--repeats 3]

Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
import numpy as np
import zarr
from tamale.progress import drain
from tamale.proofread import (
    apply_edit, delete_labels, filter_labels, iter_locate_label, iter_materialize,
    merge_labels, resolve_picks,
)

op, store, picks = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
labels = zarr.open_array(store, mode="r+")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
info = {}
if op in ("merge", "delete"):
    coords = picks["merge"] if op == "merge" else picks["delete"]
    p = resolve_picks(labels, coords, None)
    edit = merge_labels(labels, p, None) if op == "merge" else delete_labels(labels, p, None)
    sparse = drain(iter_materialize(labels, edit, limit=5_000_000))
    info["voxels"] = int(sparse.size)
    apply_edit(labels, sparse)
elif op == "filter":
    result = filter_labels(labels, None, min_size=100)
    info["objects"] = result.n_objects
    info["removed"] = result.n_removed
    info["voxels"] = apply_edit(labels, result.edit)
elif op == "jump":
    where = drain(iter_locate_label(labels, picks["jump"]))
    info["voxels"] = where.voxels
    info["anchor"] = list(where.anchor)
else:
    raise SystemExit(f"unknown op {op}")
elapsed = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": elapsed, "peak_rss_mb": peak / 1024, "rss_before_mb": base / 1024, **info}))
"""


def build_volume(path: Path, size: int, n_objects: int, chunk: int, seed: int = 0) -> dict:
    """Write ``size^3`` uint32 labels with about ``n_objects`` ellipsoids, chunk by chunk."""
    import zarr

    per_axis = max(1, round(n_objects ** (1 / 3)))
    cell = size / per_axis
    rng = np.random.default_rng(seed)
    n = per_axis**3
    ids = rng.permutation(n).astype(np.uint32) + 1
    radii = rng.uniform(1.5, cell / 2 - 1, size=(n, 3))
    jitter = rng.uniform(-1, 1, size=(n, 3)) * (cell / 2 - radii)
    centres = (np.stack(np.unravel_index(np.arange(n), (per_axis,) * 3), axis=1) + 0.5) * cell
    centres += jitter
    arr = zarr.create_array(
        str(path), shape=(size,) * 3, chunks=(chunk,) * 3, dtype=np.uint32, fill_value=0
    )
    for z in range(0, size, chunk):
        for y in range(0, size, chunk):
            for x in range(0, size, chunk):
                grid = np.stack(
                    np.meshgrid(
                        np.arange(z, min(z + chunk, size)) + 0.0,
                        np.arange(y, min(y + chunk, size)) + 0.0,
                        np.arange(x, min(x + chunk, size)) + 0.0,
                        indexing="ij",
                    )
                )
                c = np.minimum((grid / cell).astype(np.int64), per_axis - 1)
                k = np.ravel_multi_index(tuple(c), (per_axis,) * 3)
                d = ((grid - np.moveaxis(centres[k], -1, 0)) / np.moveaxis(radii[k], -1, 0)) ** 2
                block = np.where(d.sum(axis=0) <= 1.0, ids[k], 0).astype(np.uint32)
                arr[z : z + chunk, y : y + chunk, x : x + chunk] = block
    # pick objects near the centre (big enough to be seen) for merge/delete/jump
    order = np.argsort(np.abs(centres - size / 2).sum(axis=1))
    big = [i for i in order if radii[i].min() > 3][:5]
    points = [[int(np.round(v)) for v in centres[i]] for i in big]
    values = [int(arr[tuple(p)]) for p in points]
    return {
        "shape": [size] * 3,
        "chunks": [chunk] * 3,
        "objects": n,
        "store_mb": round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1),
        "picks": {"merge": points[:2], "delete": points[2:5], "jump": values[0]},
        "picked_ids": values,
    }


def run(op: str, store: Path, picks: dict, env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, op, str(store), json.dumps(picks)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="edge of the cubic volume")
    parser.add_argument("--objects", type=int, default=20_000, help="about this many objects")
    parser.add_argument("--chunk", type=int, default=64, help="zarr chunk edge")
    parser.add_argument("--repeats", type=int, default=3, help="runs per operation")
    parser.add_argument("--ops", default="merge,delete,filter,jump")
    parser.add_argument("--workdir", default=None, help="where to build the volume (temp dir)")
    args = parser.parse_args()

    import psutil
    import zarr

    import tamale

    work = Path(tempfile.mkdtemp(prefix="tamale-bench-", dir=args.workdir))
    env = dict(os.environ)
    src = Path(__file__).resolve().parents[1] / "src"
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    try:
        t0 = time.perf_counter()
        master = work / "labels.zarr"
        volume = build_volume(master, args.size, args.objects, args.chunk)
        volume["build_seconds"] = round(time.perf_counter() - t0, 1)
        results = {}
        for op in args.ops.split(","):
            runs = []
            for _ in range(args.repeats):
                copy = work / f"{op}.zarr"
                if copy.exists():
                    shutil.rmtree(copy)
                if op == "jump":
                    copy = master  # read-only
                else:
                    shutil.copytree(master, copy)
                runs.append(run(op, copy, volume["picks"], env))
            results[op] = {
                "median_seconds": round(statistics.median(r["seconds"] for r in runs), 2),
                "median_peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs)),
                "rss_before_op_mb": round(statistics.median(r["rss_before_mb"] for r in runs)),
                "seconds": [round(r["seconds"], 2) for r in runs],
                "peak_rss_mb": [round(r["peak_rss_mb"]) for r in runs],
                **{
                    k: v
                    for k, v in runs[-1].items()
                    if k not in ("seconds", "peak_rss_mb", "rss_before_mb")
                },
            }
        report = {
            "benchmark": "proofread",
            "command": "python benchmarks/proofread.py " + " ".join(sys.argv[1:]),
            "volume": volume,
            "results": results,
            "machine": {
                "cpus": os.cpu_count(),
                "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                "load_average_1min": round(os.getloadavg()[0], 2),
                "python": platform.python_version(),
                "numpy": np.__version__,
                "zarr": zarr.__version__,
                "tamale": tamale.__version__,
            },
        }
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
