from __future__ import annotations

import numpy as np

from tamale.samples import vnc_sstem_crop


def test_shipped_real_sample_has_labels_on_every_section():
    s = vnc_sstem_crop()
    assert s.image.shape == (20, 384, 384) and s.image.dtype == np.uint8
    assert s.labels.shape == s.image.shape and s.labels.dtype == np.uint32
    per_section = [len(np.unique(z[z > 0])) for z in s.labels]
    assert min(per_section) >= 5, "every section holds labelled mitochondria (none were lost)"
    assert sum(per_section) == 143
    assert s.license == "CC BY-NC-SA 3.0"
