"""empanada's training bugs, each shown absent: pairing by listing order, 16-bit images cut
to 8 bits, a ZeroDivisionError past 320 images (the others: test_freeze.py,
test_fit.py::test_last_iterations_are_saved, test_training_bad_input.py::test_registered_name...,
test_fit.py::test_train_register_and_infer for deprecated AMP calls)."""

from __future__ import annotations

import numpy as np
import tifffile
from _training_helpers import write_set

from tamale.inference.normalize import make_normalizer
from tamale.registry import ClassSpec, Norms
from tamale.training import fit
from tamale.training.data import DatasetSpec, iter_load_dataset


def _load(root, divisor=None):
    work = iter_load_dataset(
        root, DatasetSpec([ClassSpec(id=1, name="m", kind="instance")], divisor), Norms()
    )
    try:
        while True:
            next(work)
    except StopIteration as stop:
        return stop.value


def test_images_and_masks_are_paired_by_name(tmp_path):
    root = tmp_path / "set"
    (root / "s" / "images").mkdir(parents=True)
    (root / "s" / "masks").mkdir(parents=True)
    # written in opposite orders, with stray files in both folders
    for k in (3, 1, 2):
        image = np.full((32, 32), 10 * k, np.uint8)
        tifffile.imwrite(root / "s" / "images" / f"p{k}.tif", image)
    for k in (2, 3, 1):
        mask = np.zeros((32, 32), np.uint32)
        mask[:k, :k] = k
        tifffile.imwrite(root / "s" / "masks" / f"p{k}.tif", mask)
    (root / "s" / "images" / "Thumbs.db").write_bytes(b"\0")
    (root / "s" / "masks" / ".DS_Store").write_bytes(b"\0")
    data = _load(root)
    for item in data.items:
        k = int(item.name[-5])
        assert item.n_objects == 1 and (item.compact > 0).sum() == k * k
        # the image that goes with mask k is image k (value 10 k everywhere)
        assert np.ptp(item.image) == 0


def test_16_bit_images_keep_their_precision(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(1000, 1400, (64, 64)).astype(np.uint16)  # 12-bit-like values
    mask = np.zeros((64, 64), np.uint32)
    mask[10:20, 10:20] = 1
    root = write_set(tmp_path / "u16", [image], [mask])
    item = _load(root).items[0]
    expected = make_normalizer(image, Norms())(image)
    np.testing.assert_array_equal(item.image, expected)
    # distinct 16-bit values stay distinct (an 8-bit cut would merge them)
    assert len(np.unique(item.image)) == len(np.unique(image)) > 256


def test_more_than_320_images_and_few_iterations(tmp_path, make_config):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (32, 32)).astype(np.uint8) for _ in range(330)]
    masks = []
    for _ in range(330):
        m = np.zeros((32, 32), np.uint32)
        m[8:20, 8:20] = 1
        masks.append(m)
    root = write_set(tmp_path / "many", images, masks)
    # empanada derived its validation and save intervals from the image count (0 here)
    result = fit(make_config(train_dir=root, patch_size=32, iterations=2, batch_size=2,
                             register_model=False))  # fmt: skip
    assert result.iterations == 2 and result.checkpoint.is_file()


def test_mixed_precision_uses_the_current_torch_amp_api():
    """empanada called the deprecated torch.cuda.amp.autocast / GradScaler; tamale uses
    torch.autocast and torch.amp.GradScaler (a CPU run raises no warning at all:
    test_fit.py::test_train_register_and_infer)."""
    from pathlib import Path

    import tamale.training

    source = "".join(p.read_text() for p in Path(tamale.training.__file__).parent.glob("*.py"))
    assert "torch.cuda.amp" not in source
    assert "torch.amp.GradScaler(" in source and "torch.autocast(" in source
