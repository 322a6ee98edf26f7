"""The console steps of docs/tutorials/annotate-training-set.md run, in order, in a real
viewer on the real volume, and give what the tutorial says."""

from __future__ import annotations

import re
from pathlib import Path

from tamale.datasets import scan_training_set

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorials" / "annotate-training-set.md"


def test_tutorial_console_steps(
    make_napari_viewer, tutorial_code, tmp_path, shared_data: Path, capsys
):
    code = tutorial_code("annotate-training-set.md")
    code, n_data = re.subn(
        r"^DATA = .*$", f"DATA = Path({str(shared_data / 'vnc_sstem')!r})", code, flags=re.M
    )
    code, n_training = re.subn(
        r"^TRAINING = .*$", f"TRAINING = Path({str(tmp_path)!r})", code, flags=re.M
    )
    assert n_data == n_training == 1
    viewer = make_napari_viewer()
    exec(compile(code, str(TUTORIAL), "exec"), {"viewer": viewer})
    out = capsys.readouterr().out
    assert "the training set now has 16 patches" in out
    index = scan_training_set(tmp_path / "mito")
    assert len(index.pairs) == 16 and {p.source for p in index.pairs} == {"image"}
    assert [layer.name for layer in viewer.layers] == [
        "image", "Points", "image_flipbooks", "image_flipbooks_labels",
    ]  # fmt: skip
