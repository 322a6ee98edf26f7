"""``tamale demo --headless``: the built-in model segments the packaged sample in 3D.

Ground truth of the shipped crop (``tamale.samples.vnc_sstem_crop``): 143 mitochondria
sections over 20 slices, which form 12 objects in 3D (26-connected components of the
labelled pixels larger than 100 voxels; one 3-voxel speck left out). The demo must find
a number of 3D objects within 8..18 of these 12, a number of sections within 100..190
of the 143, and cover the labelled pixels with a Dice score of at least 0.75.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from scipy import ndimage as ndi

import tamale
from tamale.demo import BUILTIN_MODEL
from tamale.registry import list_models
from tamale.samples import vnc_sstem_crop

GT_OBJECTS_3D = 12
GT_SECTIONS = 143


def run_demo(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    src = str(Path(tamale.__file__).parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "tamale.cli", "demo", "--headless", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_ground_truth_figures_of_the_shipped_crop():
    gt = vnc_sstem_crop().labels
    assert sum(len(np.unique(s)) - 1 for s in gt) == GT_SECTIONS
    cc, n = ndi.label(gt > 0, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(cc.ravel())[1:]
    assert n == 13 and int((sizes > 100).sum()) == GT_OBJECTS_3D


def test_the_built_in_model_is_bundled_and_listed():
    assert BUILTIN_MODEL in list_models()


@pytest.mark.slow
def test_headless_demo_finds_the_mitochondria_of_the_sample(tmp_path):
    out = tmp_path / "demo.zarr"
    proc = run_demo("--out", str(out))
    assert proc.returncode == 0, proc.stderr
    found = re.search(r"(\d+) mitochondria objects in 3D, (\d+) sections", proc.stdout)
    assert found, proc.stdout
    n_objects, n_sections = int(found.group(1)), int(found.group(2))
    assert 8 <= n_objects <= 18, proc.stdout
    assert 100 <= n_sections <= 190, proc.stdout
    assert re.search(r"in \d+\.\d s", proc.stdout)

    labels = zarr.open_group(str(out), mode="r")["labels/mitochondria/0"][:]
    assert labels.dtype == np.uint32 and labels.shape == (20, 384, 384)
    assert len(np.unique(labels)) - 1 == n_objects
    truth = vnc_sstem_crop().labels > 0
    pred = labels > 0
    dice = 2 * np.logical_and(truth, pred).sum() / (truth.sum() + pred.sum())
    assert dice >= 0.75, dice

    # never overwritten silently; --overwrite replaces it
    again = run_demo("--out", str(out))
    assert again.returncode == 2 and "exists" in again.stderr
    assert run_demo("--out", str(out), "--overwrite").returncode == 0


def test_headless_demo_refuses_bad_options(tmp_path):
    proc = run_demo("--out", str(tmp_path / "missing" / "demo.zarr"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc = run_demo("--model", "no-such-model")
    assert proc.returncode == 2 and "no-such-model" in proc.stderr
