from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize(("key", "ndim"), [("synthetic-2d", 2), ("synthetic-3d", 3)])
def test_samples_open_as_image_and_labels(make_napari_viewer, key, ndim):
    viewer = make_napari_viewer()
    viewer.open_sample("tamale", key)
    image, labels = viewer.layers
    assert image.ndim == ndim and labels.ndim == ndim
    assert type(image).__name__ == "Image" and type(labels).__name__ == "Labels"
    assert labels.data.dtype == np.uint32
    assert labels.data.max() > 3
    if ndim == 3:
        np.testing.assert_allclose(image.scale, [5.0, 1.0, 1.0])
        np.testing.assert_allclose(labels.scale, image.scale)
