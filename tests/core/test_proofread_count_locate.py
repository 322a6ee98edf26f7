"""Count labels, jump to label (locate) and next free label."""

from __future__ import annotations

import numpy as np
import pytest
from _proofread_data import BACKENDS, as_backend

from tamale.errors import TamaleInputError
from tamale.progress import drain
from tamale.proofread import (
    count_labels,
    iter_allocate_ids,
    iter_locate_label,
    locate_label,
    next_free_label,
    parse_class_names,
)

PANOPTIC = np.array(
    [
        [1001, 1001, 0, 2001, 2002],
        [0, 1002, 0, 2003, 2003],
        [3001, 0, 0, 0, 7],
    ],
    dtype=np.uint32,
)


def test_class_names_may_contain_spaces_and_commas():
    text = "1,outer membrane\n\n# comment\n2, mitochondria, fragmented \n3,nuclear envelope"
    assert parse_class_names(text) == {
        1: "outer membrane",
        2: "mitochondria, fragmented",
        3: "nuclear envelope",
    }
    for bad, message in [
        ("mito", "class_id,name"),
        ("x,mito", "not a class number"),
        ("1,", "not empty"),
        ("1,a\n1,b", "twice"),
    ]:
        with pytest.raises(TamaleInputError, match=message):
            parse_class_names(bad)


@pytest.mark.parametrize("kind", BACKENDS)
def test_count_per_class_with_a_divisor(kind, tmp_path):
    arr = as_backend(PANOPTIC, kind, tmp_path, chunks=(2, 2))
    names = parse_class_names("1,cell wall\n2,mitochondria\n4,lipid droplet")
    table = count_labels(arr, None, label_divisor=1000, class_names=names)
    rows = {r.class_id: r for r in table.rows}
    assert rows[0].count == 1 and rows[0].class_name == "class 0"  # id 7: below the divisor
    assert (rows[1].count, rows[1].class_name, rows[1].label_ids) == (2, "cell wall", (1001, 1002))
    assert rows[2].count == 3 and rows[3].count == 1 and rows[3].class_name == "class 3"
    assert rows[4].count == 0 and rows[4].class_name == "lipid droplet"
    assert table.total == 7


def test_count_without_divisor_and_per_image(tmp_path):
    table = count_labels(PANOPTIC, None, class_names={1: "mito"})
    assert [(r.class_id, r.class_name, r.count) for r in table.rows] == [(1, "mito", 7)]
    stack = np.stack([PANOPTIC, np.where(PANOPTIC > 2000, PANOPTIC, 0)])
    table = count_labels(stack, None, label_divisor=1000, per_plane_axis=0)
    per_image = {(r.image, r.class_id): r.count for r in table.rows}
    assert per_image[(0, 2)] == 3 and per_image[(1, 2)] == 3 and per_image[(1, 3)] == 1
    assert (1, 1) not in per_image
    text = table.to_csv(tmp_path / "counts.csv")
    lines = text.splitlines()
    assert lines[0] == "image,class_id,class_name,count,label_ids"
    assert "0,2,class 2,3,2001 2002 2003" in lines
    assert (tmp_path / "counts.csv").read_text() == text
    with pytest.raises(FileExistsError, match="already exists"):
        table.to_csv(tmp_path / "counts.csv")


def test_count_csv_quotes_names_with_commas(tmp_path):
    table = count_labels(PANOPTIC, None, label_divisor=1000, class_names={2: "mito, big"})
    assert '2,"mito, big",3,2001 2002 2003' in table.to_csv()


# -- locate (jump to label) -------------------------------------------------------------
@pytest.mark.parametrize("kind", BACKENDS)
def test_locate_finds_box_centroid_and_central_slice(kind, tmp_path):
    vol = np.zeros((20, 16, 16), np.uint32)
    vol[4:13, 2:6, 8:12] = 5  # z 4..12: central slice 8
    arr = as_backend(vol, kind, tmp_path, chunks=(4, 8, 8))
    where = locate_label(arr, 5)
    assert where.voxels == 9 * 16
    assert where.bbox_lo == (4, 2, 8) and where.bbox_hi == (13, 6, 12)
    np.testing.assert_allclose(where.centroid, (8.0, 3.5, 9.5))
    assert where.anchor[0] == 8 and vol[where.anchor] == 5


def test_locate_anchor_lies_on_a_curved_object():
    vol = np.zeros((10, 30, 30), np.uint32)
    yy, xx = np.mgrid[:30, :30]
    ring = (np.hypot(yy - 15, xx - 15) < 12) & (np.hypot(yy - 15, xx - 15) > 9)
    vol[3:7][:, ring] = 2
    where = locate_label(vol, 2)
    assert vol[where.anchor] == 2  # the centroid (the ring's hole) is not on it
    assert vol[tuple(round(c) for c in where.centroid)] == 0


def test_locate_in_2d():
    """empanada's jump asserted 3D data."""
    lab = np.zeros((20, 30), np.uint32)
    lab[4:8, 10:20] = 3
    where = locate_label(lab, 3)
    assert where.anchor in ((5, 14), (5, 15), (6, 14), (6, 15))
    np.testing.assert_allclose(where.centroid, (5.5, 14.5))


def test_locate_in_4d_and_missing_ids():
    stack = np.zeros((3, 4, 8, 8), np.uint32)
    stack[2, 1:3, 2:4, 2:4] = 9
    where = locate_label(stack, 9)
    assert where.anchor[0] == 2 and where.anchor[1] in (1, 2)
    with pytest.raises(TamaleInputError, match="does not exist"):
        locate_label(stack, 10)
    with pytest.raises(TamaleInputError, match="1 or more"):
        locate_label(stack, 0)


def test_locate_reads_a_zarr_volume_chunk_by_chunk(tmp_path):
    """Bounded memory: no read is bigger than a block, every chunk decoded once."""
    vol = np.zeros((64, 64, 64), np.uint32)
    vol[40:44, 10:20, 30:34] = 77
    arr = as_backend(vol, "zarr", tmp_path, chunks=(16, 16, 16))
    reads: list[int] = []

    class Spy:
        def __init__(self, inner):
            self._inner = inner
            self.shape, self.dtype, self.ndim = inner.shape, inner.dtype, inner.ndim
            self.chunks = inner.chunks
            self.shards = None

        def __getitem__(self, index):
            block = self._inner[index]
            reads.append(block.size)
            return block

    Spy.__module__ = "zarr.spy"  # treated like a zarr array (chunked reads)
    from tamale.proofread import _arrays

    monkey_target = 4 * 16**3 * 4  # 4 chunks per block
    blocks = list(_arrays.iter_blocks(Spy(arr), None, target_bytes=monkey_target))
    assert len(blocks) == 64 // 4 and max(reads) == 4 * 16**3
    reads.clear()
    where = drain(iter_locate_label(Spy(arr), 77))
    assert where.voxels == 4 * 10 * 4
    assert max(reads) * 4 <= _arrays.BLOCK_BYTES
    assert sum(reads[: len(reads)]) >= vol.size  # first pass read everything once


# -- ids ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", BACKENDS)
def test_next_free_label_scans_the_whole_volume(kind, tmp_path):
    vol = np.zeros((4, 8, 8), np.uint32)
    vol[0, 0, 0:3] = [1001, 1002, 1004]
    vol[3, 7, 7] = 1003  # in another plane
    vol[2, 4, 4] = 2001
    arr = as_backend(vol, kind, tmp_path)
    assert next_free_label(arr, class_id=1, label_divisor=1000) == 1005
    assert next_free_label(arr, class_id=2, label_divisor=1000) == 2002
    assert next_free_label(arr, class_id=5, label_divisor=1000) == 5001
    assert next_free_label(arr) == 1


def test_next_free_label_overflow_is_an_error():
    lab = np.arange(1, 10, dtype=np.uint32).reshape(3, 3) + 10  # 11..19: class 1 full
    with pytest.raises(TamaleInputError, match="no free id"):
        next_free_label(lab, class_id=1, label_divisor=10)
    with pytest.raises(TamaleInputError, match="beyond the largest id"):
        next_free_label(np.zeros((2, 2), np.uint16), class_id=7, label_divisor=10_000)
    with pytest.raises(TamaleInputError, match="beyond the largest id"):
        next_free_label(np.zeros((2, 2), np.uint32), class_id=500_000, label_divisor=10_000)


def test_allocate_ids_modes():
    lab = np.array([[1, 5, 1003]], np.uint32)
    assert drain(iter_allocate_ids(lab, 2)) == [1004, 1005]
    assert drain(iter_allocate_ids(lab, 3, class_id=0, label_divisor=1000)) == [2, 3, 4]
    assert drain(iter_allocate_ids(lab, 2, start_id=6)) == [6, 7]
    with pytest.raises(TamaleInputError, match="already exist"):
        drain(iter_allocate_ids(lab, 2, start_id=4))
    with pytest.raises(TamaleInputError, match="outside class"):
        drain(iter_allocate_ids(lab, 2, start_id=999, class_id=0, label_divisor=1000))
