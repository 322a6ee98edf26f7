"""The demo: the packaged EM sample segmented by the built-in model.

:func:`segment_sample` is what ``tamale demo --headless`` runs (and what the napari demo
shows for one slice): 3D stack inference of :func:`tamale.samples.vnc_sstem_crop` with the
built-in model :data:`BUILTIN_MODEL` and the parameters its card recommends, written to
an OME-Zarr store or kept in memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamale.progress import CancelToken, ProgressCallback, drain

__all__ = ["BUILTIN_MODEL", "DemoResult", "demo_config", "segment_sample"]

BUILTIN_MODEL = "tamale-mito-vnc"
"""Name of the built-in mitochondria model (bundled with the package)."""


@dataclass(frozen=True)
class DemoResult:
    """What :func:`segment_sample` found."""

    n_objects: dict[str, int]
    """3D objects per class."""
    objects_per_slice: list[int]
    """2D objects in each slice of the first instance class (sections through objects)."""
    seconds: float
    """Wall time of the inference (model loading included)."""
    shape: tuple[int, int, int]
    store: str | None
    labels: dict[str, Any]
    """Class name → uint32 label volume (zarr arrays when written to a store)."""

    def summary(self) -> str:
        """One paragraph for a terminal."""
        objects = ", ".join(f"{n} {name} objects" for name, n in self.n_objects.items())
        where = f"; labels in {self.store}" if self.store else ""
        z, y, x = self.shape
        return (
            f"segmented the {z} x {y} x {x} sample in {self.seconds:.1f} s: {objects} in 3D, "
            f"{sum(self.objects_per_slice)} sections through them over {z} slices{where}"
        )


def demo_config(model: str = BUILTIN_MODEL) -> Any:
    """3D stack inference parameters (xy plane, CPU or GPU) with ``model``'s recommendations."""
    from tamale.inference import recommended_config
    from tamale.inference.config3d import Inference3DConfig
    from tamale.registry import get_card

    return recommended_config(get_card(model), Inference3DConfig(plane="xy"))


def segment_sample(
    out: str | Path | None = None,
    *,
    model: str = BUILTIN_MODEL,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> DemoResult:
    """Segment the packaged vnc ssTEM crop in 3D with ``model``.

    Parameters
    ----------
    out : path, optional
        OME-Zarr store to write (refused if it exists, unless ``overwrite``); None keeps
        the result in memory.
    """
    import numpy as np

    from tamale.inference.volume import iter_segment_volume
    from tamale.samples import vnc_sstem_crop

    sample = vnc_sstem_crop()
    config = demo_config(model)
    start = time.perf_counter()
    result = drain(
        iter_segment_volume(
            sample.image,
            model,
            config,
            out=out,
            if_exists="overwrite" if overwrite else "error",
            voxel_size=sample.spacing,
            name="vnc_sstem_crop",
        ),
        progress,
        cancel,
    )
    seconds = time.perf_counter() - start
    first = next(iter(result.labels.values()))
    per_slice = [
        int(np.count_nonzero(np.unique(np.asarray(first[z])))) for z in range(first.shape[0])
    ]
    return DemoResult(
        n_objects=dict(result.n_objects),
        objects_per_slice=per_slice,
        seconds=seconds,
        shape=tuple(int(s) for s in sample.image.shape),  # type: ignore[arg-type]
        store=result.store,
        labels=dict(result.labels),
    )
