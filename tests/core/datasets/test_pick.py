"""Picking patches and flipbooks: exact crops for every mode, points, multiscale, paired
labels, exclusion of stored regions, spread, and the bad-input catalogue (including the
empanada bugs: P-aligned random grid with duplicates, D >= 9 for flipbooks, "pick all
points" crashing without points)."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tamale.datasets import (
    FLIPBOOK_MIDDLE,
    PatchProvenance,
    PickConfig,
    iter_pick_patches,
    pick_patches,
    region_of,
    store_annotated,
    stored_regions,
)
from tamale.errors import TamaleInputError
from tamale.progress import Cancelled, CancelToken, ProgressEvent


def coded(shape: tuple[int, ...]) -> np.ndarray:
    """Every pixel holds its own flat index: a crop tells exactly where it came from."""
    return np.arange(int(np.prod(shape)), dtype=np.uint32).reshape(shape)


def footprint(rec: PatchProvenance, ndim: int, mode: str) -> tuple[tuple[int, int], ...]:
    """(start, stop) per array axis of everything a pick read (5 planes for flipbooks)."""
    (r0, r1), (c0, c1) = rec.box
    if ndim == 2:
        return ((r0, r1), (c0, c1))
    normal, rows, cols = {"xy": (0, 1, 2), "xz": (1, 0, 2), "yz": (2, 0, 1), None: (0, 1, 2)}[
        rec.axis
    ]
    out = [None, None, None]
    half = 2 if mode == "volume" else 0
    out[normal] = (rec.plane - half, rec.plane - half + (5 if mode == "volume" else 1))
    out[rows], out[cols] = (r0, r1), (c0, c1)
    return tuple(out)


def overlap(a, b) -> bool:
    return all(x0 < y1 and y0 < x1 for (x0, x1), (y0, y1) in zip(a, b))


def expected_crop(array: np.ndarray, rec: PatchProvenance, mode: str) -> np.ndarray:
    fp = footprint(rec, array.ndim, mode)
    block = array[tuple(slice(a, b) for a, b in fp)]
    if mode == "volume":
        normal = {"xy": 0, "xz": 1, "yz": 2}[rec.axis]
        return np.moveaxis(block, normal, 0)
    if mode == "stack":
        return block[0]
    return block


# -- every mode gives exact crops ---------------------------------------------------------


def test_2d_image_patches_are_exact_crops_with_zero_uint32_labels():
    image = coded((100, 120))
    result = pick_patches(image, PickConfig(n_patches=4, patch_size=32, seed=3), source="em")
    assert result.kind == "patch" and result.images.shape == (4, 32, 32)
    assert result.images.dtype == image.dtype
    assert result.labels.dtype == np.uint32 and not result.labels.any()
    assert result.seed == 3 and result.config.seed == 3 and result.n_from_points == 0
    for img, rec in zip(result.images, result.provenance):
        assert rec.source_layer == "em" and rec.kind == "patch"
        assert rec.axis is None and rec.plane is None and rec.level == 0
        assert rec.source_shape == [100, 120]
        np.testing.assert_array_equal(img, expected_crop(image, rec, "image"))


def test_2d_stack_gives_patches_from_its_planes():
    stack = coded((6, 64, 64))
    result = pick_patches(stack, PickConfig(n_patches=6, patch_size=32, stack=True, seed=0))
    assert result.kind == "patch" and result.images.shape == (6, 32, 32)
    for img, rec in zip(result.images, result.provenance):
        assert rec.axis is None and 0 <= rec.plane < 6
        np.testing.assert_array_equal(img, expected_crop(stack, rec, "stack"))
        np.testing.assert_array_equal(img, stack[rec.plane, slice(*rec.box[0]), slice(*rec.box[1])])


@pytest.mark.parametrize("axis", ["xy", "xz", "yz"])
def test_3d_flipbooks_on_each_axis(axis):
    volume = coded((40, 48, 56))
    result = pick_patches(volume, PickConfig(n_patches=3, patch_size=16, axis=axis, seed=1))
    assert result.kind == "flipbook" and result.images.shape == (3, 5, 16, 16)
    assert result.labels.shape == (3, 5, 16, 16) and result.labels.dtype == np.uint32
    for book, rec in zip(result.images, result.provenance):
        assert rec.kind == "flipbook" and rec.axis == axis
        (r0, r1), (c0, c1) = rec.box
        for s in range(5):
            plane = rec.plane - 2 + s
            if axis == "xy":
                want = volume[plane, r0:r1, c0:c1]
            elif axis == "xz":  # rows are Z, columns X
                want = volume[r0:r1, plane, c0:c1]
            else:  # yz: rows Z, columns Y
                want = volume[r0:r1, c0:c1, plane]
            np.testing.assert_array_equal(book[s], want)
        # the provenance names the middle plane: the one to annotate
        np.testing.assert_array_equal(
            book[FLIPBOOK_MIDDLE], expected_crop(volume, rec, "volume")[2]
        )
    assert result.middle[0].shape == (3, 16, 16)


def test_any_axis_mixes_planes_and_skips_those_that_do_not_fit():
    cube = coded((32, 32, 32))
    result = pick_patches(cube, PickConfig(n_patches=12, patch_size=8, axis="any", seed=4))
    assert {r.axis for r in result.provenance} == {"xy", "xz", "yz"}
    for book, rec in zip(result.images, result.provenance):
        np.testing.assert_array_equal(book, expected_crop(cube, rec, "volume"))
    # 5 planes along z of 64 x 64: xz and yz planes (5 x 64) cannot hold 16 px patches
    flat = coded((5, 64, 64))
    result = pick_patches(flat, PickConfig(n_patches=2, patch_size=16, axis="any", seed=0))
    assert {r.axis for r in result.provenance} == {"xy"}


def test_five_planes_are_enough_for_flipbooks():
    """empanada needed D >= 9 (random middle plane randint(2, D // 3) * 3)."""
    volume = coded((5, 32, 32))
    result = pick_patches(volume, PickConfig(n_patches=2, patch_size=16, seed=0))
    assert [r.plane for r in result.provenance] == [2, 2]
    np.testing.assert_array_equal(
        result.images[0], expected_crop(volume, result.provenance[0], "volume")
    )


# -- points -------------------------------------------------------------------------------


def test_points_centre_their_patches_clamped_to_the_image_and_come_first():
    image = coded((100, 100))
    points = np.array([[50.2, 40.7], [3.0, 98.0]])
    result = pick_patches(image, PickConfig(n_patches=3, patch_size=20, seed=0), points=points)
    boxes = [r.box for r in result.provenance]
    assert boxes[0] == [(40, 60), (31, 51)]  # pixel (50, 41) sits at (10, 10) of the patch
    assert boxes[1] == [(0, 20), (80, 100)]  # clamped at the corner
    assert result.points_used.tolist() == [0, 1] and result.n_from_points == 2
    assert len(result) == 3
    assert not overlap(footprint(result.provenance[2], 2, "image"), boxes[0])
    assert not overlap(footprint(result.provenance[2], 2, "image"), boxes[1])


def test_flipbook_points_keep_two_planes_on_each_side():
    volume = coded((12, 40, 40))
    points = np.array([[0.0, 20.0, 20.0], [6.4, 10.0, 30.0], [11.0, 39.0, 0.0]])
    result = pick_patches(volume, PickConfig(n_patches=3, patch_size=16, seed=0), points=points)
    assert [r.plane for r in result.provenance] == [2, 6, 9]
    assert [r.box for r in result.provenance] == [
        [(12, 28), (12, 28)],
        [(2, 18), (22, 38)],
        [(24, 40), (0, 16)],
    ]
    for book, rec in zip(result.images, result.provenance):
        np.testing.assert_array_equal(book, expected_crop(volume, rec, "volume"))


def test_points_on_the_xz_plane_and_in_a_stack():
    volume = coded((30, 30, 30))
    result = pick_patches(
        volume, PickConfig(n_patches=1, patch_size=10, axis="xz", seed=0), points=[[15, 7, 12]]
    )
    rec = result.provenance[0]
    assert (rec.axis, rec.plane, rec.box) == ("xz", 7, [(10, 20), (7, 17)])
    stack = coded((4, 30, 30))
    result = pick_patches(
        stack, PickConfig(n_patches=1, patch_size=10, stack=True), points=[[3, 15, 15]]
    )
    assert (result.provenance[0].plane, result.provenance[0].box) == (3, [(10, 20), (10, 20)])


def test_more_points_than_patches_uses_the_first_ones_and_pick_all_uses_all():
    image = coded((200, 200))
    points = np.array([[30, 30], [100, 100], [170, 170], [30, 170]])
    result = pick_patches(image, PickConfig(n_patches=2, patch_size=20, seed=0), points=points)
    assert result.points_used.tolist() == [0, 1] and len(result) == 2
    result = pick_patches(
        image, PickConfig(n_patches=1, patch_size=20, pick_all_points=True), points=points
    )
    assert result.points_used.tolist() == [0, 1, 2, 3] and len(result) == 4
    assert [r.box[0][0] for r in result.provenance] == [20, 90, 160, 20]


def test_point_patches_may_cover_stored_regions_but_random_ones_never_do():
    image = coded((64, 64))
    stored = [PatchProvenance(source_layer="x", box=[(0, 32), (0, 32)])]
    result = pick_patches(
        image,
        PickConfig(n_patches=2, patch_size=32, seed=0),
        points=[[16, 16]],
        exclude=stored,
    )
    assert result.provenance[0].box == [(0, 32), (0, 32)]  # the user asked for it
    assert not overlap(footprint(result.provenance[1], 2, "image"), ((0, 32), (0, 32)))


# -- multiscale and paired ------------------------------------------------------------------


def test_multiscale_level_reads_that_level_and_maps_points_by_the_shape_ratio():
    level0 = coded((64, 128, 128))
    level1 = np.ascontiguousarray(level0[:, ::2, ::2])  # z not downsampled
    cfg = PickConfig(n_patches=2, patch_size=16, level=1, seed=0)
    result = pick_patches([level0, level1], cfg, points=[[30, 101, 50]])
    first = result.provenance[0]
    assert first.level == 1 and first.source_shape == [64, 64, 64]
    assert first.plane == 30 and first.box == [(42, 58), (17, 33)]  # y 101 -> 50, x 50 -> 25
    for book, rec in zip(result.images, result.provenance):
        np.testing.assert_array_equal(book, expected_crop(level1, rec, "volume"))


def test_paired_labels_are_cropped_identically_and_become_uint32():
    volume = coded((20, 40, 40))
    labels = (volume % 7).astype(np.int32)
    result = pick_patches(volume, PickConfig(n_patches=3, patch_size=16, seed=2), labels=labels)
    assert result.labels.dtype == np.uint32
    for lab, rec in zip(result.labels, result.provenance):
        np.testing.assert_array_equal(lab, expected_crop(labels, rec, "volume"))
    # multiscale pairs and a stack
    pyramid = [volume, volume[:, ::2, ::2]]
    lab_pyramid = [labels, labels[:, ::2, ::2]]
    result = pick_patches(
        pyramid, PickConfig(n_patches=2, patch_size=8, level=1, seed=0), labels=lab_pyramid
    )
    for lab, rec in zip(result.labels, result.provenance):
        np.testing.assert_array_equal(lab, expected_crop(lab_pyramid[1], rec, "volume"))
    result = pick_patches(
        volume, PickConfig(n_patches=2, patch_size=16, stack=True, seed=0), labels=labels
    )
    for lab, rec in zip(result.labels, result.provenance):
        np.testing.assert_array_equal(lab, expected_crop(labels, rec, "stack"))


# -- lazy arrays: only crops are read -------------------------------------------------------


class CountingArray:
    """An array that records every read and refuses large ones."""

    def __init__(self, data: np.ndarray, limit: int) -> None:
        self.data, self.limit = data, limit
        self.shape, self.dtype = data.shape, data.dtype
        self.reads: list[int] = []

    def __getitem__(self, index):
        block = self.data[index]
        assert block.size <= self.limit, f"read {block.shape}"
        self.reads.append(block.size)
        return block


def test_only_the_crops_are_read_from_numpy_like_dask_and_zarr_arrays(tmp_path: Path):
    volume = coded((30, 64, 64))
    counting = CountingArray(volume, limit=5 * 16 * 16)
    result = pick_patches(counting, PickConfig(n_patches=4, patch_size=16, seed=0))
    assert counting.reads == [5 * 16 * 16] * 4
    for source in (
        da.from_array(volume, chunks=(8, 32, 32)),
        zarr.array(volume, chunks=(8, 32, 32)),
    ):
        again = pick_patches(source, PickConfig(n_patches=4, patch_size=16, seed=0))
        np.testing.assert_array_equal(again.images, result.images)


# -- exclusion of stored regions -------------------------------------------------------------


def test_second_round_never_touches_the_first_rounds_stored_planes(tmp_path: Path):
    volume = coded((20, 128, 128))
    first = pick_patches(volume, PickConfig(n_patches=8, patch_size=32, seed=0), source="vol")
    labels = first.labels.copy()
    labels[:, 2, 4:8, 4:8] = 1
    store_annotated(first.images, labels, tmp_path, "ds", provenance=first.provenance)
    stored = stored_regions(tmp_path / "ds", "vol")
    assert len(stored) == 8
    for seed in range(5):
        second = pick_patches(
            volume,
            PickConfig(n_patches=8, patch_size=32, seed=seed),
            exclude=stored,
            source="vol",
        )
        for new in second.provenance:
            for old in stored:  # none of the five planes of a new flipbook meets a stored plane
                assert not overlap(footprint(new, 3, "volume"), [tuple(x) for x in _plane_box(old)])


def _plane_box(rec: PatchProvenance):
    (r0, r1), (c0, c1) = rec.box
    return [(rec.plane, rec.plane + 1), (r0, r1), (c0, c1)]


def test_regions_stored_at_another_level_or_axis_are_excluded_too():
    vol = coded((32, 64, 64))
    at_level1 = PatchProvenance(
        source_layer="v", kind="flipbook", axis="xy", plane=10, box=[(0, 16), (0, 16)],
        level=1, source_shape=[32, 32, 32],
    )  # fmt: skip
    box = region_of(at_level1, vol.shape, level=0)
    assert (box.lo, box.hi) == ((10, 0, 0), (11, 32, 32))
    on_xz = PatchProvenance(
        source_layer="v", kind="flipbook", axis="xz", plane=5, box=[(3, 9), (7, 20)]
    )
    box = region_of(on_xz, vol.shape)
    assert (box.lo, box.hi) == ((3, 5, 7), (9, 6, 20))
    assert region_of(PatchProvenance(source_layer="v", box=[(0, 4), (0, 4)]), vol.shape) is None
    # a volume whose every xy plane but a few is stored: random picks must use the rest
    stored = [
        PatchProvenance(source_layer="v", axis="xy", plane=p, box=[(0, 64), (0, 64)])
        for p in range(32)
        if p not in range(20, 25)
    ]
    result = pick_patches(vol, PickConfig(n_patches=4, patch_size=32, seed=1), exclude=stored)
    assert all(r.plane == 22 for r in result.provenance)


def test_no_room_left_is_a_clear_error():
    image = coded((64, 64))
    stored = [PatchProvenance(source_layer="x", box=[(0, 64), (0, 40)])]
    with pytest.raises(TamaleInputError, match=r"room for only \d+ more non-overlapping"):
        pick_patches(image, PickConfig(n_patches=3, patch_size=32, seed=0), exclude=stored)


# -- spread: never duplicated, never overlapping, not on a P-aligned grid ----------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.tuples(st.integers(5, 30), st.integers(16, 90), st.integers(16, 90)),
    size=st.integers(8, 16),
    n=st.integers(1, 12),
    mode=st.sampled_from(["image", "stack", "volume"]),
    axis=st.sampled_from(["xy", "any"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_patches_never_overlap_and_stay_inside(shape, size, n, mode, axis, seed):
    image = np.zeros(shape[1:] if mode == "image" else shape, np.uint8)
    cfg = PickConfig(
        n_patches=n,
        patch_size=size,
        stack=mode == "stack",
        axis=axis if mode == "volume" else "xy",
        seed=seed,
    )
    try:
        result = pick_patches(image, cfg)
    except TamaleInputError as exc:
        assert "room for only" in str(exc) or "planes along" in str(exc)
        return
    fps = [footprint(r, image.ndim, mode) for r in result.provenance]
    assert len(fps) == n
    for i, a in enumerate(fps):
        assert all(0 <= lo < hi <= s for (lo, hi), s in zip(a, image.shape))
        for b in fps[:i]:
            assert not overlap(a, b)


def test_random_starts_are_not_on_a_patch_aligned_grid_and_cover_the_image():
    """empanada drew starts from arange(0, H - P, P): aligned, never the last rows, duplicates."""
    image = np.zeros((1024, 1024), np.uint8)
    starts = []
    for seed in range(10):
        result = pick_patches(image, PickConfig(n_patches=8, patch_size=128, seed=seed))
        starts += [tuple(lo for lo, _ in r.box) for r in result.provenance]
        assert len(set(starts[-8:])) == 8
    starts = np.array(starts)
    assert np.mean(starts % 128 != 0) > 0.5
    assert starts.max() > 1024 - 128 - 64  # the far edge is reachable
    # spread: every quarter of the image gets patches
    quarters = {(y >= 448, x >= 448) for y, x in starts}
    assert len(quarters) == 4


def test_the_seed_reproduces_a_pick_and_a_drawn_seed_is_recorded():
    volume = coded((20, 64, 64))
    first = pick_patches(volume, PickConfig(n_patches=5, patch_size=16, axis="any"))
    assert first.seed is not None and first.config.seed == first.seed
    again = pick_patches(volume, first.config)
    assert [r.model_dump() for r in again.provenance] == [r.model_dump() for r in first.provenance]
    np.testing.assert_array_equal(again.images, first.images)


def test_progress_and_cancel():
    volume = coded((20, 64, 64))
    events = []
    pick_patches(volume, PickConfig(n_patches=3, patch_size=16, seed=0), progress=events.append)
    assert all(isinstance(e, ProgressEvent) for e in events)
    assert [(e.step, e.total) for e in events if e.stage == "pick"] == [(1, 3), (2, 3), (3, 3)]
    token = CancelToken()
    work = iter_pick_patches(volume, PickConfig(n_patches=3, patch_size=16, seed=0), cancel=token)
    next(work)
    token.cancel()
    with pytest.raises(Cancelled):
        list(work)


# -- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "cfg", "match"),
    [
        ((30, 40), dict(patch_size=32), r"patch size \(32 px\) is larger than the image \(30 x 40"),
        ((3, 30, 40), dict(patch_size=32, stack=True), "larger than the stack's images"),
        (
            (4, 64, 64),
            dict(patch_size=16),
            "4 planes along the xy normal; flipbooks need at least 5",
        ),
        ((4, 64, 64), dict(patch_size=16, axis="any"), "cannot pick flipbooks"),
        ((64, 64), dict(patch_size=16, axis="xz"), "axis 'xz' is for volumes"),
        ((64, 64), dict(patch_size=16, level=1), "level 1 does not exist"),
        ((2, 3, 64, 64), dict(patch_size=16), "expected a 2D image or a 3D"),
    ],
)
def test_bad_images_and_parameters(shape, cfg, match):
    with pytest.raises(TamaleInputError, match=match):
        pick_patches(np.zeros(shape, np.uint8), PickConfig(**cfg))


def test_points_outside_the_image_are_named():
    image = np.zeros((20, 64, 64), np.uint8)
    points = [[10, 10, 10], [10, 70, 10], [-1, 5, 5]]
    with pytest.raises(TamaleInputError, match=r"2 point\(s\) lie outside the image .*#1 at .*#2"):
        pick_patches(image, PickConfig(patch_size=16), points=points)
    with pytest.raises(TamaleInputError, match=r"\(N, 3\) array"):
        pick_patches(image, PickConfig(patch_size=16), points=[[1, 2]])


def test_pick_all_points_without_points_is_a_clear_error():
    """empanada crashed with a TypeError (len(None))."""
    image = np.zeros((64, 64), np.uint8)
    for points in (None, np.zeros((0, 2))):
        with pytest.raises(TamaleInputError, match="'pick all points' needs points"):
            pick_patches(image, PickConfig(patch_size=16, pick_all_points=True), points=points)


def test_paired_labels_must_match_shape_and_multiscale_structure():
    image = np.zeros((20, 64, 64), np.uint8)
    with pytest.raises(TamaleInputError, match="do not match the image"):
        pick_patches(image, PickConfig(patch_size=16), labels=np.zeros((20, 64, 60), np.uint32))
    with pytest.raises(TamaleInputError, match="multiscale level"):
        pick_patches(
            [image, image[:, ::2, ::2]],
            PickConfig(patch_size=16),
            labels=np.zeros((20, 64, 64), np.uint32),
        )
    with pytest.raises(TamaleInputError, match="not integers"):
        pick_patches(image, PickConfig(patch_size=16), labels=np.zeros((20, 64, 64), np.float32))
    with pytest.raises(TamaleInputError, match="negative"):
        pick_patches(
            image, PickConfig(patch_size=16, seed=0), labels=np.full((20, 64, 64), -1, np.int32)
        )


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        PickConfig(n_patches=0)
    with pytest.raises(ValueError):
        PickConfig(axis="xx")
    with pytest.raises(ValueError):
        PickConfig(patch_size=4)


def test_a_huge_lazy_volume_is_sampled_without_reading_it():
    """800 GB of zarr (nothing stored): positions come from a bounded blue-noise draw and
    only the 16 crops are read."""
    huge = zarr.create_array(
        store={}, shape=(2000, 20000, 20000), chunks=(64, 512, 512), dtype="uint8"
    )
    result = pick_patches(huge, PickConfig(n_patches=16, patch_size=256, seed=0))
    assert result.images.shape == (16, 5, 256, 256)
    planes = sorted(r.plane for r in result.provenance)
    assert planes[-1] - planes[0] > 1000  # spread through the whole depth
