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


def test_real_sample_opens_with_physical_scale_and_its_license(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("tamale", "vnc-sstem")
    image, labels = viewer.layers
    assert image.data.shape == (20, 384, 384) and image.data.dtype == np.uint8
    assert labels.data.dtype == np.uint32 and labels.data.max() > 100
    np.testing.assert_allclose(image.scale, [50.0, 4.6, 4.6])
    assert "CC BY-NC-SA 3.0" in image.metadata["license"]
    assert "10.6084/m9.figshare.856713" in image.metadata["citation"]
