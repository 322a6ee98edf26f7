"""``tamale infer3d`` end to end with the tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr

from tamale.cli import main
from tamale.inference.config3d import Inference3DConfig
from tamale.inference.volume import segment_volume
from tamale.inference.volume_store import read_store_info
from tamale.progress import Cancelled, CancelToken
from tamale.synthetic import synthetic_em_3d

LIVELY = [
    "--confidence-thr",
    "0.49996",
    "--center-confidence-thr",
    "0",
    "--min-size",
    "0",
    "--min-extent",
    "0",
]


@pytest.fixture
def volume_tif(tmp_path):
    path = tmp_path / "vol.tif"
    tifffile.imwrite(path, synthetic_em_3d((8, 48, 48), seed=1).image)
    return path


def test_infer3d_writes_a_store(tiny_model, volume_tif, tmp_path, capsys):
    out = tmp_path / "seg.zarr"
    code = main(
        [
            "infer3d",
            str(volume_tif),
            "--model",
            tiny_model,
            "--out",
            str(out),
            "--chunks",
            "8,16,16",
            *LIVELY,
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "slices:xy" in err and "wrote" in err
    info = read_store_info(out)
    assert info["status"] == "complete" and info["model"]["name"] == tiny_model
    arr = zarr.open_array(str(out / "labels" / "mitochondria" / "0"), mode="r")
    assert arr.shape == (8, 48, 48) and arr.chunks == (8, 16, 16)
    expected = segment_volume(
        tifffile.imread(volume_tif),
        tiny_model,
        Inference3DConfig(
            confidence_thr=0.49996, center_confidence_thr=0, min_size=0, min_extent=0
        ),
    )
    np.testing.assert_array_equal(arr[:], expected.labels["mitochondria"])


def test_existing_output_needs_resume_or_overwrite(tiny_model, volume_tif, tmp_path, capsys):
    out = tmp_path / "seg.zarr"
    assert (
        main(["infer3d", str(volume_tif), "--model", tiny_model, "--out", str(out), *LIVELY]) == 0
    )
    capsys.readouterr()
    assert main(["infer3d", str(volume_tif), "--model", tiny_model, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "--overwrite" in err and "seg-2.zarr" in err
    assert (
        main(
            [
                "infer3d",
                str(volume_tif),
                "--model",
                tiny_model,
                "--out",
                str(out),
                "--overwrite",
                "--plane",
                "ortho",
                *LIVELY,
            ]
        )
        == 0
    )
    assert read_store_info(out)["planes"] == ["xy", "xz", "yz"]


def test_resume_finishes_an_interrupted_run(tiny_model, volume_tif, tmp_path):
    out = tmp_path / "seg.zarr"
    config = Inference3DConfig(
        confidence_thr=0.49996, center_confidence_thr=0, min_size=0, min_extent=0
    )
    token = CancelToken()

    def stop_after_first_slab(event):
        if event.stage.startswith("slices") and event.step >= 4:
            token.cancel()

    with pytest.raises(Cancelled):
        segment_volume(
            volume_tif,
            tiny_model,
            config,
            out=out,
            slab_size=4,
            cancel=token,
            progress=stop_after_first_slab,
        )
    assert read_store_info(out)["status"] == "incomplete"
    assert (
        main(
            [
                "infer3d",
                str(volume_tif),
                "--model",
                tiny_model,
                "--out",
                str(out),
                "--resume",
                *LIVELY,
            ]
        )
        == 0
    )
    assert read_store_info(out)["status"] == "complete"
    full = segment_volume(volume_tif, tiny_model, config)
    np.testing.assert_array_equal(
        zarr.open_array(str(out / "labels/mitochondria/0"))[:], full.labels["mitochondria"]
    )


def test_bad_input_and_scheduler(tiny_model, tmp_path, capsys):
    flat = tmp_path / "flat.tif"
    tifffile.imwrite(flat, np.zeros((32, 32), np.uint8))
    assert (
        main(["infer3d", str(flat), "--model", tiny_model, "--out", str(tmp_path / "a.zarr")]) == 2
    )
    assert "2D image" in capsys.readouterr().err
    assert not (tmp_path / "a.zarr").exists()
    vol = tmp_path / "v.npy"
    np.save(vol, np.zeros((8, 32, 32), np.uint8))
    code = main(
        [
            "infer3d",
            str(vol),
            "--model",
            tiny_model,
            "--out",
            str(tmp_path / "b.zarr"),
            "--scheduler",
            "tcp://127.0.0.1:9",
            "--scheduler-timeout",
            "2",
        ]
    )
    assert code == 2
    assert "could not reach the Dask scheduler" in capsys.readouterr().err
    assert not (tmp_path / "b.zarr").exists()
    assert (
        main(
            [
                "infer3d",
                str(vol),
                "--model",
                tiny_model,
                "--out",
                str(tmp_path / "c.zarr"),
                "--chunks",
                "1,2",
            ]
        )
        == 2
    )
    assert "--chunks" in capsys.readouterr().err


def test_anisotropy_warning_on_stderr(tiny_model, tmp_path, capsys):
    vol = tmp_path / "v.npy"
    np.save(vol, np.zeros((8, 32, 32), np.uint8))
    code = main(
        [
            "infer3d",
            str(vol),
            "--model",
            tiny_model,
            "--out",
            str(tmp_path / "w.zarr"),
            "--plane",
            "xz",
            "--voxel-size",
            "40,8,8",
            "--unit",
            "nanometer",
        ]
    )
    assert code == 0
    assert "anisotropic" in capsys.readouterr().err


def test_help_lists_infer3d(capsys):
    with pytest.raises(SystemExit):
        main(["infer3d", "--help"])
    out = capsys.readouterr().out
    assert "--scheduler" in out and "--resume" in out and "ortho" in out
