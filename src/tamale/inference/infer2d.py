"""2D inference: one image, or every slice of a stack (batch mode), whole or tiled.

``iter_infer_2d`` is the work generator behind the 2D dock and ``tamale infer2d``:

1. checks the input (2D image, or (N, H, W) stack in batch mode; RGB and
   other multi-channel images are refused with instructions; NaN/inf refused);
2. picks the device (:func:`~tamale.inference.device.choose_device`) and gets the model
   from the cache (:func:`~tamale.inference.engine.get_engine`): the second run loads
   nothing;
3. cuts the image (or the confinement box) into tiles when it is larger than
   ``tile_size`` (see :mod:`tamale.inference.tiling`), normalises each slice once
   (:mod:`tamale.inference.normalize`), and runs batches of ``batch_size`` slices or
   tiles through the network (:func:`~tamale.inference.predict.predict_raw`) and the
   post-processing (:mod:`tamale.postprocess`) on the model's device;
4. stitches tiles, applies the confinement mask, splits disconnected pieces and numbers
   objects per class, and returns uint32 labels of the input's shape.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from tamale.errors import TamaleInputError
from tamale.inference.config import Inference2DConfig
from tamale.inference.device import choose_device
from tamale.inference.engine import (
    Engine,
    ModelCache,
    choose_precision,
    get_engine,
)
from tamale.inference.normalize import make_normalizer
from tamale.inference.predict import predict_raw
from tamale.inference.tiling import Tile, plan_tiles, stitch
from tamale.postprocess import (
    ClassTable,
    RawPrediction,
    drop_small_instances,
    panoptic_labels,
    postprocess,
    renumber_instances,
)
from tamale.progress import ProgressCallback, ProgressEvent, Work, check, drain
from tamale.registry import ModelCard, get_card

__all__ = ["Inference2DResult", "check_image", "infer_2d", "iter_infer_2d", "resolve_box"]


@dataclass(frozen=True)
class Inference2DResult:
    """What 2D inference returns.

    Attributes
    ----------
    labels : ndarray of uint32
        Panoptic labels, same shape as the input image (or stack): ``class *
        label_divisor + k`` for objects, ``class * label_divisor`` for semantic classes,
        0 for background and outside the confinement region.
    model_name, device, precision : str
        What ran.
    label_divisor : int
    class_names : dict of int -> str
        Class id -> name, from the model card.
    messages : tuple of str
        Things the user should know (e.g. "no GPU found: running on the CPU").
    n_tiles : int
        Tiles per image (1 = not tiled).
    normalization : str
        How intensities were normalised (of the first image).
    seconds : float
        Wall time of the whole run, model loading included.
    """

    labels: np.ndarray
    model_name: str
    device: str
    precision: str
    label_divisor: int
    class_names: dict[int, str] = field(default_factory=dict)
    messages: tuple[str, ...] = ()
    n_tiles: int = 1
    normalization: str = ""
    seconds: float = 0.0

    def object_counts(self) -> dict[str, int]:
        """Number of distinct labels (objects, or semantic regions) per class name."""
        ids = np.unique(self.labels)
        ids = ids[ids > 0]
        classes = ids // self.label_divisor
        return {
            self.class_names.get(int(c), str(int(c))): int((classes == c).sum())
            for c in np.unique(classes)
        }


def check_image(image: Any, batch_mode: bool) -> tuple[int, ...]:
    """Validate the image's shape and type for 2D inference; return its shape.

    Raises
    ------
    TamaleInputError
        With what to do: for RGB / multi-channel images, 3D images without batch mode,
        empty images and non-numeric types.
    """
    shape = tuple(int(s) for s in getattr(image, "shape", np.shape(image)))
    dtype = np.dtype(getattr(image, "dtype", np.asarray(image).dtype))
    if dtype == np.bool_ or not (
        np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)
    ):
        raise TamaleInputError(
            f"cannot segment an image of type {dtype}: use integer or float intensities"
        )
    looks_rgb = len(shape) >= 3 and shape[-1] in (3, 4) and min(shape[-3:-1]) > 4
    if looks_rgb and len(shape) == (4 if batch_mode else 3):
        raise TamaleInputError(
            f"the image has shape {shape}: its last axis looks like {shape[-1]} colour channels "
            "(RGB). The models take one grey channel: split the channels (napari: right-click "
            "the layer > Split RGB; CLI: --channel) and run on one of them"
        )
    want = 3 if batch_mode else 2
    if len(shape) != want:
        if batch_mode:
            raise TamaleInputError(
                f"batch mode needs a stack of 2D images (N, Y, X); got shape {shape}"
            )
        if len(shape) == 3:
            raise TamaleInputError(
                f"the image is 3D {shape}: turn on batch mode to segment every slice, or run "
                "on one slice (the 2D dock uses the plane the viewer shows)"
            )
        raise TamaleInputError(
            f"2D inference needs a 2D image (Y, X); got shape {shape}. Take one channel or "
            "one plane first"
        )
    if min(shape) == 0:
        raise TamaleInputError(f"the image is empty (shape {shape})")
    return shape


def resolve_box(
    shape: tuple[int, int],
    roi: tuple[slice, slice] | Sequence[int] | None,
    mask: np.ndarray | None,
) -> tuple[tuple[slice, slice], np.ndarray | None]:
    """The box to process (roi ∩ bounding box of mask) and the mask cropped to it."""
    h, w = shape
    if roi is None:
        ys, xs = slice(0, h), slice(0, w)
    else:
        if len(roi) == 4:
            y0, y1, x0, x1 = (int(v) for v in roi)  # type: ignore[arg-type]
            ys, xs = slice(y0, y1), slice(x0, x1)
        elif len(roi) == 2 and all(isinstance(s, slice) for s in roi):
            ys, xs = roi  # type: ignore[misc]
        else:
            raise TamaleInputError("roi must be (y0, y1, x0, x1) or a pair of slices")
        ys = slice(*ys.indices(h)[:2])
        xs = slice(*xs.indices(w)[:2])
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (h, w):
            raise TamaleInputError(
                f"the confinement mask has shape {mask.shape} but the image is {(h, w)}"
            )
        inside = np.zeros_like(mask)
        inside[ys, xs] = True
        rows = np.flatnonzero((mask & inside).any(axis=1))
        cols = np.flatnonzero((mask & inside).any(axis=0))
        if rows.size == 0:
            raise TamaleInputError(
                "the confinement region is empty: draw a shape over the image (or turn "
                "confinement off)"
            )
        ys = slice(int(rows[0]), int(rows[-1]) + 1)
        xs = slice(int(cols[0]), int(cols[-1]) + 1)
        mask = mask[ys, xs]
    if ys.stop <= ys.start or xs.stop <= xs.start:
        raise TamaleInputError(f"the region {ys.start}:{ys.stop}, {xs.start}:{xs.stop} is empty")
    return (ys, xs), mask


def iter_infer_2d(
    image: Any,
    model: str | ModelCard | Engine,
    config: Inference2DConfig | None = None,
    *,
    roi: tuple[slice, slice] | Sequence[int] | None = None,
    mask: np.ndarray | None = None,
    cache: ModelCache | None = None,
    cancel: Any = None,
) -> Work[Inference2DResult]:
    """Segment a 2D image (or each slice of a stack in batch mode).

    Parameters
    ----------
    image : array-like
        (Y, X), or (N, Y, X) with ``config.batch_mode``; numpy, dask or zarr; any
        integer or float type (see :mod:`tamale.inference.normalize`).
    model : str, ModelCard or Engine
        A registered model's name, a card, or an already loaded engine.
    config : Inference2DConfig, optional
        Parameters (defaults: empanada's).
    roi : (y0, y1, x0, x1) or (slice, slice), optional
        Only segment this box (e.g. the viewport); the rest of the result is 0.
    mask : ndarray of bool (Y, X), optional
        Only keep objects' pixels inside the mask (e.g. rasterised polygons); the image
        is processed over the mask's bounding box.
    cache : ModelCache, optional
        Where loaded models are kept (default: the process-wide cache).
    cancel : CancelToken, optional
        Checked between batches.

    Yields
    ------
    ProgressEvent
        ``"load"`` (model), then ``"infer"`` (one step per slice or tile).

    Returns
    -------
    Inference2DResult
    """
    started = time.perf_counter()
    cfg = config or Inference2DConfig()
    shape = check_image(image, cfg.batch_mode)
    n_images = shape[0] if cfg.batch_mode else 1
    plane = shape[-2:]
    box, box_mask = resolve_box(plane, roi, mask)

    messages: list[str] = []
    choice = choose_device(cfg.use_gpu)
    if choice.message:
        messages.append(choice.message)
    if isinstance(model, str):
        model = get_card(model)  # unknown names fail here, before anything loads
    card = model.card if isinstance(model, Engine) else model
    precision, note = choose_precision(cfg, choice.device, card)
    if note:
        messages.append(note)

    check(cancel)
    yield ProgressEvent("load", 0, None, "loading the model")
    engine = get_engine(model, choice.device, precision, cache)
    classes = engine.classes
    classes.check_divisor(cfg.label_divisor)
    things = frozenset() if cfg.semantic_only else classes.things
    yield ProgressEvent("load", 1, 1, f"model {engine.card.name} on {engine.device}")

    box_shape = (box[0].stop - box[0].start, box[1].stop - box[1].start)
    align = math.lcm(engine.padding_factor, 4)
    tiles = plan_tiles(
        box_shape,
        downsampling=cfg.downsampling,
        tile_size=cfg.tile_size,
        overlap=cfg.tile_overlap,
        align=align,
    )
    tiled = len(tiles) > 1
    # tiles keep every stuff pixel; small stuff is dropped over the whole image after
    # stitching (a region that only touches a tile must not leave a gap there)
    tile_cfg = cfg.model_copy(update={"stuff_area": 0}) if tiled else cfg
    out = np.zeros(shape, dtype=np.uint32)
    total = n_images * len(tiles)
    done = 0
    normalization = ""

    tile_preds: dict[int, list[np.ndarray | None]] = {}
    pending: list[tuple[int, int, np.ndarray]] = []

    def finish_image(n: int, labels: np.ndarray) -> None:
        kept = labels if box_mask is None else np.where(box_mask, labels, 0)
        kept = drop_small_instances(kept, things, cfg.label_divisor, cfg.min_area)
        if kept is not labels:  # confined or objects dropped: number 1..N again
            labels = renumber_instances(
                kept, things, cfg.label_divisor, split=cfg.split_disconnected
            )
        target = out[n] if cfg.batch_mode else out
        target[box] = labels

    def flush() -> None:
        nonlocal done
        by_shape: dict[tuple[int, int], list[tuple[int, int, np.ndarray]]] = {}
        for item in pending:
            by_shape.setdefault(item[2].shape, []).append(item)
        pending.clear()
        for items in by_shape.values():
            batch = torch.from_numpy(np.stack([it[2] for it in items])).to(engine.device)
            with torch.inference_mode():
                raw = predict_raw(
                    engine.model, batch, downsampling=cfg.downsampling, fine=cfg.fine_boundaries
                )
                labels = _postprocess_on_device(raw, tile_cfg, classes, final=not tiled)
            for (n, t, _), lab in zip(items, labels):
                if not tiled:
                    finish_image(n, lab)
                    continue
                preds = tile_preds.setdefault(n, [None] * len(tiles))
                preds[t] = lab
                if all(p is not None for p in preds):
                    stitched = stitch(tiles, preds, box_shape, things, cfg.label_divisor)  # type: ignore[arg-type]
                    stitched = _drop_small_stuff(stitched, things, cfg)
                    finish_image(
                        n,
                        renumber_instances(
                            stitched,
                            things,
                            cfg.label_divisor,
                            split=cfg.split_disconnected,
                        ),
                    )
                    del tile_preds[n]
            done += len(items)

    for n in range(n_images):
        check(cancel)
        region = image[n] if cfg.batch_mode else image
        array = np.asarray(region[box])
        normalizer = make_normalizer(array, engine.card.norms)
        if not normalization:
            normalization = normalizer.description
        for t, tile in enumerate(tiles):
            pending.append((n, t, normalizer(array[tile.read])))
            if len(pending) >= cfg.batch_size:
                flush()
                check(cancel)
                yield ProgressEvent("infer", done, total, _progress_text(cfg, n, n_images, tiles))
        del array
    if pending:
        flush()
        yield ProgressEvent(
            "infer", done, total, _progress_text(cfg, n_images - 1, n_images, tiles)
        )

    return Inference2DResult(
        labels=out,
        model_name=engine.card.name,
        device=str(engine.device),
        precision=engine.precision,
        label_divisor=cfg.label_divisor,
        class_names=dict(classes.names),
        messages=tuple(messages),
        n_tiles=len(tiles),
        normalization=normalization,
        seconds=time.perf_counter() - started,
    )


def _drop_small_stuff(
    labels: np.ndarray, things: frozenset[int], cfg: Inference2DConfig
) -> np.ndarray:
    """Zero stuff classes covering fewer than ``cfg.stuff_area`` pixels of the image."""
    if cfg.stuff_area <= 0:
        return labels
    cls = labels // cfg.label_divisor
    stuff = (labels % cfg.label_divisor == 0) & (cls > 0) & ~np.isin(cls, sorted(things))
    if not stuff.any():
        return labels
    area = np.bincount(cls[stuff].ravel())
    small = np.flatnonzero((area > 0) & (area < cfg.stuff_area))
    if small.size == 0:
        return labels
    return np.where(stuff & np.isin(cls, small), 0, labels)


def _postprocess_on_device(
    raw: RawPrediction, cfg: Inference2DConfig, classes: ClassTable, final: bool
) -> np.ndarray:
    """Post-process where the outputs are; on Apple MPS, fall back to the CPU for an
    operation MPS lacks (the result is the same, only slower)."""

    def run(r: RawPrediction) -> np.ndarray:
        if final:
            return postprocess(r, cfg, classes)
        return panoptic_labels(r, cfg, classes).cpu().numpy()

    if raw.sem_probs.device.type != "mps":
        return run(raw)
    try:
        return run(raw)
    except (NotImplementedError, RuntimeError):
        cpu = RawPrediction(
            raw.sem_probs.cpu(), raw.ctr_hmp.cpu(), raw.offsets.cpu(), raw.stride, raw.downsampling
        )
        return run(cpu)


def _progress_text(cfg: Inference2DConfig, n: int, n_images: int, tiles: list[Tile]) -> str:
    if cfg.batch_mode:
        return f"slice {n + 1} of {n_images}"
    if len(tiles) > 1:
        return f"{len(tiles)} tiles"
    return "segmenting"


def infer_2d(
    image: Any,
    model: str | ModelCard | Engine,
    config: Inference2DConfig | None = None,
    *,
    roi: tuple[slice, slice] | Sequence[int] | None = None,
    mask: np.ndarray | None = None,
    cache: ModelCache | None = None,
    progress: ProgressCallback | None = None,
    cancel: Any = None,
) -> Inference2DResult:
    """Run :func:`iter_infer_2d` to completion (see it for the parameters)."""
    return drain(
        iter_infer_2d(image, model, config, roi=roi, mask=mask, cache=cache, cancel=cancel),
        progress,
        cancel,
    )
