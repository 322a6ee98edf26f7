"""Export: uint32, no singleton axes, file names, never overwrite silently."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from _proofread_data import BACKENDS, as_backend

from tamale.progress import drain
from tamale.proofread import (
    iter_copy_to_zarr,
    iter_export_ome_zarr,
    iter_export_stack,
    iter_export_tiff,
    stack_file_names,
)


def test_file_names_keep_the_source_stems_or_are_numbered():
    assert stack_file_names(["a/img1.png", "b/img2.tiff"], 2) == ["img1.tif", "img2.tif"]
    assert stack_file_names(["x.ome.tif"], 1) == ["x.tif"]
    assert stack_file_names(["x.tif"], 2, stem="my labels") == [
        "my labels_0000.tif",
        "my labels_0001.tif",
    ]
    assert stack_file_names(["s/a.tif", "t/a.tif"], 2)[0] == "labels_0000.tif"  # not unique
    assert stack_file_names(None, 3, stem="../evil")[0] == "_evil_0000.tif"


@pytest.mark.parametrize("kind", BACKENDS)
def test_stack_export_one_uint32_tiff_per_image(kind, tmp_path):
    stack = np.zeros((3, 1, 12, 10), np.int64)  # int64 and a singleton axis, as in issue #14
    stack[:, 0, 2:5, 3:6] = np.array([1, 2, 70000])[:, None, None]
    arr = as_backend(stack, kind, tmp_path, chunks=(1, 1, 6, 5))
    names = ["cell 1.png", "cell 2.png", "cell 10.png"]
    files = drain(iter_export_stack(arr, tmp_path / "out", names))
    assert [f.name for f in files] == ["cell 1.tif", "cell 2.tif", "cell 10.tif"]
    for i, f in enumerate(files):
        data = tifffile.imread(f)
        assert data.dtype == np.uint32 and data.shape == (12, 10)
        np.testing.assert_array_equal(data, stack[i, 0])


def test_export_refuses_existing_files_and_writes_nothing(tmp_path):
    stack = np.ones((2, 4, 4), np.uint32)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "labels_0001.tif").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="already exists"):
        drain(iter_export_stack(stack, tmp_path / "out"))
    assert not (tmp_path / "out" / "labels_0000.tif").exists()
    assert (tmp_path / "out" / "labels_0001.tif").read_bytes() == b"keep me"
    target = tmp_path / "vol.tif"
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        drain(iter_export_tiff(stack, target))
    assert target.read_bytes() == b"old"
    drain(iter_export_tiff(stack, target, overwrite=True))
    np.testing.assert_array_equal(tifffile.imread(target), stack)
    (tmp_path / "v.ome.zarr").mkdir()
    with pytest.raises(FileExistsError):
        drain(iter_export_ome_zarr(stack, tmp_path / "v.ome.zarr"))


@pytest.mark.parametrize("kind", BACKENDS)
def test_volume_tiff_is_uint32_without_singletons(kind, tmp_path):
    vol = np.arange(2 * 1 * 5 * 6 * 7, dtype=np.uint16).reshape(2, 1, 5, 6, 7)
    arr = as_backend(vol, kind, tmp_path, chunks=(1, 1, 2, 3, 7))
    path = drain(iter_export_tiff(arr, tmp_path / "vol.tif"))
    data = tifffile.imread(path)
    assert data.dtype == np.uint32 and data.shape == (2, 5, 6, 7)
    np.testing.assert_array_equal(data, vol[:, 0])
    assert not (tmp_path / "vol.tif.partial").exists()


def test_ome_zarr_export_is_readable(tmp_path):
    import zarr

    vol = np.zeros((1, 6, 8, 9), np.uint16)
    vol[0, 1:3, 2:4, 5:7] = 12
    path = drain(iter_export_ome_zarr(vol, tmp_path / "seg.ome.zarr", scale=(1, 5, 2, 2)))
    root = zarr.open_group(str(path), mode="r")
    ms = root.attrs["ome"]["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [5.0, 2.0, 2.0]
    data = root["0"][...]
    assert data.dtype == np.uint32 and data.shape == (6, 8, 9)
    np.testing.assert_array_equal(data, vol[0])


def test_copy_to_zarr_from_dask_makes_an_editable_store(tmp_path):
    vol = np.zeros((8, 16, 16), np.uint32)
    vol[2:4, 3:9, 3:9] = 4
    arr = as_backend(vol, "dask", tmp_path, chunks=(4, 8, 8))
    out = drain(iter_copy_to_zarr(arr, tmp_path / "copy.zarr"))
    assert out.chunks == (4, 8, 8)
    np.testing.assert_array_equal(out[...], vol)
    out[0, 0, 0] = 3
    with pytest.raises(FileExistsError):
        drain(iter_copy_to_zarr(arr, tmp_path / "copy.zarr"))


def test_ids_beyond_uint32_are_refused_and_partial_output_removed(tmp_path):
    from tamale.errors import TamaleInputError

    vol = np.zeros((3, 4, 4), np.uint64)
    vol[2, 0, 0] = 2**33
    with pytest.raises(TamaleInputError, match="does not fit uint32"):
        drain(iter_export_tiff(vol, tmp_path / "big.tif"))
    assert not (tmp_path / "big.tif").exists()
    assert not (tmp_path / "big.tif.partial").exists()
    with pytest.raises(TamaleInputError):
        drain(iter_export_ome_zarr(vol, tmp_path / "big.ome.zarr"))
    assert not (tmp_path / "big.ome.zarr").exists()


@pytest.mark.parametrize("kind", BACKENDS)
def test_copy_to_numpy_loads_any_backend(kind, tmp_path):
    from tamale.proofread import iter_copy_to_numpy

    vol = np.arange(4 * 6 * 8, dtype=np.uint32).reshape(4, 6, 8)
    out = drain(iter_copy_to_numpy(as_backend(vol, kind, tmp_path, chunks=(2, 3, 8))))
    assert isinstance(out, np.ndarray) and out.flags.writeable
    np.testing.assert_array_equal(out, vol)
