"""Benchmark the patching engine; prints one JSON document.

Cases (goals on the 2-core reference machine; CAREamics / zarrdataset figures on the
same machine in brackets, from ../shared/reference/patching.md):

* StratifiedPatching set-up, one 12288^2 image, 64^2 patches: <= 50 ms [2.3 s]
* cost per patch spec: <= 15 us (scalar) or a faster vectorised batch [339 us]
* excluding one cell: <= 5 ms [1.9 s]
* PatchSampler, 4096^2 image, 1024^2 mask, 64^2 patches: <= 1 s [351 s]
* BlueNoisePatchSampler on the same: <= 2 s and < 500 MB [fails asking for 75 GiB]

Times are medians of ``--repeats`` runs. Peak memory is measured in a fresh
subprocess per sampler case (peak RSS, and the tracemalloc peak of the sampling call).

Usage: ``python benchmarks/patching.py [--repeats 7]``
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tamale.patching import (
    BlueNoisePatchSampler,
    ImageCollection,
    PatchSampler,
    StratifiedPatching,
)

IMAGE = 4096
MASK = 1024
PATCH = 64


LAST_MIN: list[float] = []


def median_time(fn, repeats: int, setup=None) -> float:
    """Median wall time of ``fn(setup())`` over ``repeats`` runs (the minimum goes to LAST_MIN)."""
    times = []
    for _ in range(repeats):
        arg = setup() if setup is not None else None
        t0 = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t0)
    LAST_MIN[:] = [min(times)]
    return statistics.median(times)


@functools.cache
def disk_mask() -> np.ndarray:
    """A 1024^2 mask: a disk covering about half of the image."""
    yy, xx = np.mgrid[:MASK, :MASK]
    return (yy - MASK / 2) ** 2 + (xx - MASK / 2) ** 2 < (0.4 * MASK) ** 2


@functools.cache
def image(kind: str):
    """A one-chunk numpy image (as the reference measured) or a zarr image in 512^2 chunks."""
    if kind.endswith("zarr"):
        import zarr

        return zarr.create_array(store={}, shape=(IMAGE, IMAGE), chunks=(512, 512), dtype="uint8")
    return np.zeros((IMAGE, IMAGE), np.uint8)


@functools.cache
def mask(kind: str) -> np.ndarray:
    return np.ones((MASK, MASK), bool) if kind == "full" else disk_mask()


def make_collection(kind: str) -> ImageCollection:
    """``full`` or ``disk`` mask over a numpy image; ``disk_zarr`` over a chunked zarr image."""
    return ImageCollection(image(kind), mask(kind))


def run_grid(coll: ImageCollection) -> int:
    sampler = PatchSampler(PATCH)
    return sum(len(sampler.compute_patches(coll, c)) for c in sampler.compute_chunks(coll))


def run_blue_noise(coll: ImageCollection, overlap: bool = False) -> int:
    sampler = BlueNoisePatchSampler(PATCH, allow_overlap=overlap, rng=0)
    return sum(len(sampler.compute_patches(coll, c)) for c in sampler.compute_chunks(coll))


def stratified(repeats: int) -> dict:
    shapes = [(1, 1, 12288, 12288)]
    setup = median_time(lambda _: StratifiedPatching(shapes, (64, 64), seed=0), repeats)
    s = StratifiedPatching(shapes, (64, 64), seed=0)
    n = s.n_patches
    k = 20000
    scalar = median_time(lambda _: [s.get_patch_spec(i) for i in range(k)], repeats) / k
    scalar_min = LAST_MIN[0] / k
    all_idx = np.arange(n)
    batch = median_time(lambda _: s.get_patch_specs(all_idx), repeats) / n
    exclude_first = median_time(
        lambda st: st.exclude_patches(0, 0, [(100, 100)]),
        repeats,
        setup=lambda: StratifiedPatching(shapes, (64, 64), seed=0),
    )
    s.exclude_patches(0, 0, [(10, 10)])
    cells = iter((50 + i, 60) for i in range(10_000))
    exclude_more = median_time(lambda _: s.exclude_patches(0, 0, [next(cells)]), repeats)
    big = StratifiedPatching(shapes, (64, 64), seed=0)
    big.set_region_probs(0, 0, np.random.default_rng(0).random((192, 192)))
    probs = median_time(
        lambda st: st.set_region_probs(0, 0, np.full((192, 192), 0.5)),
        repeats,
        setup=lambda: StratifiedPatching(shapes, (64, 64), seed=0),
    )
    return {
        "image": [12288, 12288],
        "patch": [64, 64],
        "n_regions": 192 * 192,
        "n_patches": n,
        "setup_s": setup,
        "spec_scalar_us": scalar * 1e6,
        "spec_scalar_min_us": scalar_min * 1e6,
        "spec_batch_us": batch * 1e6,
        "exclude_one_cell_first_s": exclude_first,
        "exclude_one_more_cell_s": exclude_more,
        "set_region_probs_all_s": probs,
        "goals": {"setup_s": 0.05, "spec_us": 15, "exclude_s": 0.005},
    }


def memory_case(case: str) -> dict:
    """Run one sampler case (``sampler:kind``) in this fresh process; report its peak memory.

    The traced peak covers building the collection (the mask's summed-area table) and
    sampling; the RSS peak is the whole process's, imports included.
    """
    import tracemalloc

    sampler, kind = case.split(":")
    image(kind), mask(kind)  # the user's data exist before sampling starts
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    coll = make_collection(kind)
    if sampler == "grid":
        n = run_grid(coll)
    else:
        n = run_blue_noise(coll, overlap=sampler == "bluenoise_overlap")
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "case": case,
        "patches": n,
        "tracemalloc_peak_mb": traced / 2**20,
        "rss_peak_mb": peak / 1024,
        "rss_after_imports_mb": base / 1024,
    }


def in_subprocess(case: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-case", case],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def samplers(repeats: int) -> dict:
    results = {}
    for kind in ("full", "disk", "disk_zarr"):
        coll_setup = lambda k=kind: make_collection(k)  # noqa: E731
        results[f"grid_{kind}"] = {
            "time_s": median_time(run_grid, repeats, setup=coll_setup),
            "time_includes": "mask summed-area table + compute_chunks + compute_patches",
            "patches": run_grid(make_collection(kind)),
            **{k: v for k, v in in_subprocess(f"grid:{kind}").items() if k.endswith("mb")},
        }
        for overlap in (False, True):
            sampler = "bluenoise_overlap" if overlap else "bluenoise"
            name = f"{sampler}_{kind}"
            results[name] = {
                "time_s": median_time(
                    lambda c, o=overlap: run_blue_noise(c, o), repeats, setup=coll_setup
                ),
                "time_includes": "mask summed-area table + positions + chunks + patches",
                "patches": run_blue_noise(make_collection(kind), overlap),
                **{k: v for k, v in in_subprocess(f"{sampler}:{kind}").items() if k.endswith("mb")},
            }
    return {
        "image": [IMAGE, IMAGE],
        "mask": [MASK, MASK],
        "patch": [PATCH, PATCH],
        "cases": results,
        "goals": {"grid_s": 1.0, "bluenoise_s": 2.0, "bluenoise_mb": 500},
    }


def machine() -> dict:
    mem = None
    try:
        with open("/proc/meminfo") as fh:
            mem = int(fh.readline().split()[1]) / 2**20
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "memory_gib": mem,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "load_average_start": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--memory-case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_case:
        print(json.dumps(memory_case(args.memory_case)))
        return
    info = machine()
    result = {
        "machine": info,
        "repeats": args.repeats,
        "stratified": stratified(args.repeats),
        "samplers": samplers(args.repeats),
    }
    result["machine"]["load_average_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
