"""Forward-pass speed of tamale's model presets, float32 / bfloat16 / int8, on this machine.

Prints one JSON document: for each preset, precision and image size, the
median wall time (and process CPU time) of ``model.predict(x)`` on a
synthetic EM image after a warm-up, parameter counts, the time int8
quantization took, and how closely bfloat16 / int8 outputs follow float32
(untrained networks with BatchNorm statistics estimated on synthetic EM:
see ``tamale.models.testing``). The load average before and after is
recorded: other work on the machine slows every figure.

Usage::

    python benchmarks/models.py                      # published presets + small ones
    python benchmarks/models.py --presets panoptic_bifpn_r50 --sizes 1024 --repeats 5
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
import warnings

import torch

from tamale.models import (
    available_presets,
    bfloat16_available,
    build_model,
    count_parameters,
    prepare_for_inference,
    quantization_available,
)
from tamale.models.testing import lively_model, synthetic_batch

DEFAULT_PRESETS = [
    "panoptic_deeplab_r50",
    "panoptic_bifpn_r50",
    "panoptic_deeplab_r18",
    "panoptic_bifpn_r18",
    "panoptic_bifpn_regnety",
]


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _time(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def _agreement(out: dict, ref: dict) -> dict[str, float]:
    res = {
        "sem_sign_agreement": float(
            ((out["sem_logits"] > 0) == (ref["sem_logits"] > 0)).float().mean()
        )
    }
    for k in ("sem_logits", "ctr_hmp", "offsets"):
        a, b = out[k].flatten(), ref[k].flatten()
        res[f"{k}_corr"] = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    return {k: round(v, 4) for k, v in res.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--presets", nargs="+", default=DEFAULT_PRESETS, choices=available_presets()
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16", "int8"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (0: torch's default); 1 gives contention-free CPU "
        "figures on a busy machine",
    )
    parser.add_argument(
        "--small-sizes",
        nargs="+",
        type=int,
        default=[1024],
        help="sizes for the presets other than the two published ones",
    )
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    result: dict = {
        "benchmark": "models",
        "machine": {
            "cpu": _cpu_name(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "loadavg_start": os.getloadavg(),
        },
        "int8": quantization_available(),
        "bfloat16": bfloat16_available("cpu"),
        "command": "python benchmarks/models.py "
        + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
        ),
        "runs": [],
    }
    calib = [synthetic_batch(256, 1, seed=s) for s in (100, 101)]
    for name in args.presets:
        base = build_model(name)
        params = count_parameters(base)
        base = lively_model(base, [synthetic_batch(256, 2, seed=50)])
        published = name in ("panoptic_deeplab_r50", "panoptic_bifpn_r50")
        sizes = args.sizes if published else args.small_sizes
        for precision in args.precisions:
            if precision == "int8" and not result["int8"][0]:
                continue
            if precision == "bfloat16" and not result["bfloat16"][0]:
                continue
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = prepare_for_inference(
                    copy.deepcopy(base), precision, calibration_batches=calib
                )
            prep = time.perf_counter() - t0
            for size in sizes:
                x = synthetic_batch(size, 1, seed=7)
                wall, cpu = _time(lambda m=model, x=x: m.predict(x), args.repeats)
                run = {
                    "preset": name,
                    "precision": precision,
                    "size": size,
                    "predict_s": round(wall, 3),
                    "predict_cpu_s": round(cpu, 3),
                    "prepare_s": round(prep, 2),
                    "parameters": params["total"],
                }
                if precision != "float32":
                    run["agreement_with_float32"] = _agreement(model.predict(x), base.predict(x))
                result["runs"].append(run)
                print(json.dumps(run), flush=True, file=sys.stderr)
        result.setdefault("parameters", {})[name] = {
            k: v
            for k, v in params.items()
            if k in ("total", "encoder", "decoders", "heads", "pointrend")
        }
    result["machine"]["loadavg_end"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
