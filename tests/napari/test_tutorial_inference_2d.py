"""The console steps of docs/tutorials/inference-2d.md run, in order, in a real viewer
with the built-in model on the packaged sample, and give what the tutorial says."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import tifffile

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorials" / "inference-2d.md"


def test_tutorial_console_steps(make_napari_viewer, tutorial_code, tmp_path, capsys):
    code = tutorial_code("inference-2d.md")
    code, n_out = re.subn(r"^OUT = .*$", f"OUT = Path({str(tmp_path)!r})", code, flags=re.M)
    assert n_out == 1
    viewer = make_napari_viewer()
    exec(compile(code, str(TUTORIAL), "exec"), {"viewer": viewer})
    out = capsys.readouterr().out
    for factor in (1, 2, 4):
        assert re.search(rf"downsampling {factor}: \{{'mitochondria': \d+\}} in", out)
    assert [layer.name for layer in viewer.layers] == ["vnc ssTEM crop", "slice 10", "batch"]
    one = viewer.layers["slice 10"]
    assert one.data.shape == (1, 384, 384) and one.translate[0] == 10 * 50.0
    stack = viewer.layers["batch"].data
    assert stack.shape == (20, 384, 384) and stack.dtype == np.uint32
    # after the filter, no 2D object is smaller than 500 pixels in any slice
    for plane in stack:
        sizes = np.bincount(plane.ravel())[1:]
        assert not ((sizes > 0) & (sizes < 500)).any()
    written = tifffile.imread(tmp_path / "vnc_mito_2d.tif")
    np.testing.assert_array_equal(written, stack)
    assert "wrote" in out
