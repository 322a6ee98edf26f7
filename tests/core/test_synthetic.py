from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from tamale.errors import TamaleInputError
from tamale.synthetic import synthetic_em, synthetic_em_2d, synthetic_em_3d


def touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    pairs: set[tuple[int, int]] = set()
    for axis in range(labels.ndim):
        a = np.moveaxis(labels, axis, 0)[:-1]
        b = np.moveaxis(labels, axis, 0)[1:]
        m = (a > 0) & (b > 0) & (a != b)
        pairs |= {tuple(sorted(p)) for p in zip(a[m].tolist(), b[m].tolist())}
    return pairs


def test_2d_is_seeded_and_typed():
    a = synthetic_em_2d((256, 256), seed=3)
    b = synthetic_em_2d((256, 256), seed=3)
    c = synthetic_em_2d((256, 256), seed=4)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.image, c.image)
    assert a.image.dtype == np.uint8 and a.image.shape == (256, 256)
    assert a.labels.dtype == np.uint32 and a.labels.shape == (256, 256)
    assert a.spacing == (1.0, 1.0)


def test_labels_are_consecutive_ids_with_texture_inside_and_around():
    s = synthetic_em_2d((512, 512), seed=0)
    ids = np.unique(s.labels)
    assert ids[0] == 0
    np.testing.assert_array_equal(ids[1:], np.arange(1, s.n_objects + 1))
    assert s.n_objects >= 10
    # mitochondria are darker than the cytoplasm around them, walls darker still
    mito = s.image[s.labels > 0].mean()
    cyto = s.image[(s.labels == 0) & ~s.membranes].mean()
    assert mito < cyto - 40
    assert s.image[s.membranes].mean() < cyto - 40


def test_several_instances_touch():
    s = synthetic_em_2d((512, 512), seed=0)
    assert len(touching_pairs(s.labels)) >= 3


def test_every_instance_is_one_connected_object():
    s = synthetic_em_2d((512, 512), seed=1)
    for i, sl in enumerate(ndi.find_objects(s.labels), start=1):
        _, n = ndi.label(s.labels[sl] == i)
        assert n == 1, f"object {i} is in {n} pieces"


def test_3d_is_anisotropic_with_objects_spanning_several_sections():
    v = synthetic_em_3d((24, 128, 128), seed=2)
    assert v.image.shape == (24, 128, 128) and v.spacing == (5.0, 1.0, 1.0)
    assert v.n_objects >= 3
    z_extent = [sl[0].stop - sl[0].start for sl in ndi.find_objects(v.labels) if sl is not None]
    assert max(z_extent) >= 3
    # in-plane extent is much larger than the z extent (in pixels)
    xy_extent = [sl[2].stop - sl[2].start for sl in ndi.find_objects(v.labels) if sl is not None]
    assert np.median(xy_extent) > np.median(z_extent)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"shape": (64,)}, "2 \\(YX\\) or 3"),
        ({"shape": (8, 8)}, "at least 16"),
        ({"shape": (64, 64), "spacing": (1.0,)}, "spacing"),
        ({"shape": (64, 64), "object_size": (5.0, 2.0)}, "object_size"),
    ],
)
def test_bad_arguments_are_explained(kwargs, match):
    with pytest.raises(TamaleInputError, match=match):
        synthetic_em(**kwargs)
