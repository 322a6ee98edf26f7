"""``tamale infer2d`` in a subprocess, on real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

import tamale
from tamale.cli import main
from tamale.synthetic import synthetic_em_2d


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    src = str(Path(tamale.__file__).parents[1])  # the tamale under test, not another install
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "tamale.cli", "infer2d", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_infer2d_writes_uint32_labels_and_reports_on_stderr(tiny_model, tmp_path):
    image = tmp_path / "img.tif"
    tifffile.imwrite(image, synthetic_em_2d((96, 128), seed=0).image)
    out = tmp_path / "labels.tif"
    proc = run_cli(str(image), "--model", tiny_model, "--out", str(out), "--cpu")
    assert proc.returncode == 0, proc.stderr
    labels = tifffile.imread(out)
    assert labels.shape == (96, 128) and labels.dtype == np.uint32
    assert "infer" in proc.stderr and f"wrote {out}" in proc.stderr
    assert proc.stdout == ""


def test_existing_output_is_never_overwritten_silently(tiny_model, tmp_path):
    image = tmp_path / "img.npy"
    np.save(image, np.zeros((64, 64), np.uint8))
    out = tmp_path / "labels.tif"
    out.write_bytes(b"precious")
    proc = run_cli(str(image), "--model", tiny_model, "--out", str(out))
    assert proc.returncode == 2 and "exists" in proc.stderr and "--overwrite" in proc.stderr
    assert out.read_bytes() == b"precious"
    proc = run_cli(str(image), "--model", tiny_model, "--out", str(out), "--overwrite", "--cpu")
    assert proc.returncode == 0, proc.stderr
    assert tifffile.imread(out).shape == (64, 64)


def test_batch_channels_options_and_config_file(tiny_model, tmp_path):
    stack = np.stack([synthetic_em_2d((64, 64), seed=i).image for i in range(3)])
    rgb = np.repeat(stack[..., None], 3, axis=-1)  # (3, 64, 64, 3)
    image = tmp_path / "stack.tif"
    tifffile.imwrite(image, rgb)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("confidence_thr: 0.3\ncenters_min_distance: 5\n")
    out = tmp_path / "out.npy"
    code = main(
        [
            "infer2d", str(image), "--model", tiny_model, "--out", str(out), "--batch",
            "--channel", "0", "--config", str(cfg), "--downsampling", "2", "--cpu",
            "--fine-boundaries", "--max-objects-per-class", "1000",
        ]
    )  # fmt: skip
    assert code == 0
    assert np.load(out).shape == (3, 64, 64)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--downsampling", "3"], "power of two"),
        (["--model", "missing"], "no model named"),
        (["--roi", "nonsense"], "Y0:Y1,X0:X1"),
        (["--channel", "70"], "does not exist"),
    ],
)
def test_bad_options_exit_2_with_a_message(tiny_model, tmp_path, capsys, args, message):
    image = tmp_path / "img.tif"
    tifffile.imwrite(image, np.zeros((4, 64, 64), np.uint8))
    base = ["infer2d", str(image), "--model", tiny_model, "--out", str(tmp_path / "o.tif")]
    assert main([*base, "--batch", "--cpu", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "tamale: error:" in err
    assert not (tmp_path / "o.tif").exists()


def test_rgb_without_channel_is_refused(tiny_model, tmp_path, capsys):
    image = tmp_path / "rgb.tif"
    tifffile.imwrite(image, np.zeros((64, 64, 3), np.uint8))
    assert (
        main(["infer2d", str(image), "--model", tiny_model, "--out", str(tmp_path / "o.tif")]) == 2
    )
    assert "--channel" in capsys.readouterr().err


def test_missing_image_and_unknown_format(tiny_model, tmp_path, capsys):
    assert (
        main(
            [
                "infer2d",
                str(tmp_path / "no.tif"),
                "--model",
                tiny_model,
                "--out",
                str(tmp_path / "o.tif"),
            ]
        )
        == 2
    )
    assert "not found" in capsys.readouterr().err
    assert (
        main(
            [
                "infer2d",
                str(tmp_path / "no.tif"),
                "--model",
                tiny_model,
                "--out",
                str(tmp_path / "o.png"),
            ]
        )
        == 2
    )
    assert ".npy" in capsys.readouterr().err
