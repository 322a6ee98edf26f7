"""Writing annotated patches into a training set, safely.

``store_patches`` appends image/mask pairs to
``<save_dir>/<dataset_name>/<source>/{images,masks}/<name>.tif`` (the layout
of :mod:`tamale.datasets.layout`, readable by empanada too) and records each
patch's provenance in ``<source>/tamale.json``:

* nothing is ever overwritten: each pair gets a fresh name
  (``<source>_0000.tif``, ``<source>_0001.tif``...), claimed with an atomic
  hard link that fails if the name exists;
* every file is written to a temporary name first, so an interrupted write
  leaves no half-written file and no half-registered pair (the sidecar is
  updated last, atomically);
* masks are stored as uint32; images keep their dtype.

The sidecar lets later rounds of patch picking exclude the regions already
annotated (:func:`stored_regions`).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from tamale._names import check_name
from tamale.config import Config, ConfigError
from tamale.errors import TamaleInputError
from tamale.progress import CancelToken, ProgressEvent, Work, check, drain

__all__ = [
    "SIDECAR",
    "PatchProvenance",
    "StoreResult",
    "iter_store_patches",
    "sanitize_source_name",
    "store_patches",
    "stored_regions",
]

SIDECAR = "tamale.json"
SIDECAR_FORMAT = "tamale-training-set"
SIDECAR_VERSION = 1


class PatchProvenance(Config):
    """Where a stored patch came from."""

    source_layer: str
    """Name of the napari layer (or file) the patch was cut from."""
    kind: Literal["patch", "flipbook"] = "patch"
    """A 2D patch, or the middle slice of a 5-slice flipbook."""
    axis: Literal["xy", "xz", "yz"] | None = None
    """For volumes: the plane the patch lies in; None for 2D images."""
    plane: int | None = None
    """Index of the patch's plane along the axis normal to it (volumes and 2D stacks)."""
    box: list[tuple[int, int]] = Field(min_length=2, max_length=2)
    """(start, stop) of the patch along the plane's two axes (rows, then columns), at ``level``."""
    level: int = Field(default=0, ge=0)
    """Multiscale level the patch was read at (level k is downsampled 2**k)."""
    source_shape: list[int] | None = None
    """Shape of the source array at ``level``."""
    time: str = ""
    """When the patch was stored (ISO 8601, UTC)."""


@dataclass
class StoreResult:
    """What :func:`store_patches` did."""

    dataset_dir: Path
    source: str
    names: list[str] = field(default_factory=list)
    empty_masks: list[str] = field(default_factory=list)
    total_pairs: int = 0
    """Complete pairs in the whole dataset after storing."""


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def sanitize_source_name(name: str) -> str:
    """Turn a layer or file name into a safe source folder name.

    Runs of characters other than letters, digits, '.', '_' and '-' become
    '_', leading dots/underscores are dropped, and '..' cannot survive.
    """
    cleaned = _UNSAFE.sub("_", name).replace("..", "_").strip("._-") or "source"
    return cleaned[:100]


def _read_sidecar(source_dir: Path) -> dict[str, Any]:
    path = source_dir / SIDECAR
    if not path.is_file():
        return {"format": SIDECAR_FORMAT, "version": SIDECAR_VERSION, "patches": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TamaleInputError(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    if data.get("format") != SIDECAR_FORMAT or not isinstance(data.get("patches"), dict):
        raise TamaleInputError(f"{path} is not a tamale training-set sidecar")
    if int(data.get("version", 0)) > SIDECAR_VERSION:
        raise TamaleInputError(f"{path} was written by a newer tamale; upgrade tamale")
    return data


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_tiff_tmp(folder: Path, array: np.ndarray) -> Path:
    import tifffile

    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tif.tmp", dir=folder)
    os.close(fd)
    try:
        tifffile.imwrite(tmp, array, compression="zlib")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _claim(tmp: Path, final: Path) -> bool:
    """Give ``tmp`` the name ``final`` unless ``final`` exists; True on success."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    except OSError:  # no hard links here: reserve the name exclusively, then replace
        try:
            fd = os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        os.close(fd)
        os.replace(tmp, final)
        return True
    tmp.unlink()
    return True


def _check_pair(image: np.ndarray, mask: np.ndarray, i: int) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    mask = np.asarray(mask)
    if image.ndim != 2:
        raise TamaleInputError(f"patch {i}: images must be 2D, got shape {image.shape}")
    if mask.shape != image.shape:
        raise TamaleInputError(
            f"patch {i}: image shape {image.shape} and labels shape {mask.shape} differ"
        )
    if mask.dtype.kind == "f" and (not np.all(np.isfinite(mask)) or np.any(mask != np.round(mask))):
        raise TamaleInputError(f"patch {i}: labels must be integers")
    if mask.dtype.kind in "if" and mask.size and mask.min() < 0:
        raise TamaleInputError(f"patch {i}: labels must be >= 0")
    return image, mask.astype(np.uint32)


def iter_store_patches(
    save_dir: str | Path,
    dataset_name: str,
    source: str,
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    provenance: Sequence[PatchProvenance] | None = None,
    *,
    cancel: CancelToken | None = None,
) -> Work[StoreResult]:
    """Append image/mask pairs to a training set (work generator).

    Parameters
    ----------
    save_dir : path
        Directory that holds (or will hold) the dataset folder.
    dataset_name : str
        Dataset folder name (letters, digits, '.', '_', '-'); created if missing,
        appended to otherwise.
    source : str
        Source name (e.g. the image layer's name); sanitised into a folder name.
    images, masks : sequences of 2D arrays
        The patches and their labels, same shapes pairwise. For flipbooks pass
        the middle slices.
    provenance : sequence of PatchProvenance, optional
        One record per patch, stored in the sidecar.
    cancel : CancelToken, optional
        Checked between patches; pairs already written stay (complete).

    Returns
    -------
    StoreResult
    """
    check_name(dataset_name, "dataset name")
    if len(images) != len(masks):
        raise TamaleInputError(f"{len(images)} images but {len(masks)} label patches")
    if len(images) == 0:
        raise TamaleInputError("there are no patches to store")
    if provenance is not None and len(provenance) != len(images):
        raise TamaleInputError(f"{len(images)} patches but {len(provenance)} provenance records")
    pairs = [_check_pair(im, m, i) for i, (im, m) in enumerate(zip(images, masks))]

    save_dir = Path(save_dir).expanduser()
    if not save_dir.is_dir():
        raise TamaleInputError(f"save directory does not exist: {save_dir}")
    if not os.access(save_dir, os.W_OK):
        raise TamaleInputError(f"save directory is not writable: {save_dir}")
    source_name = sanitize_source_name(source)
    dataset_dir = save_dir / dataset_name
    source_dir = dataset_dir / source_name
    image_dir, mask_dir = source_dir / "images", source_dir / "masks"
    try:
        image_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TamaleInputError(f"cannot create {source_dir}: {exc}") from None
    sidecar = _read_sidecar(source_dir)

    result = StoreResult(dataset_dir=dataset_dir, source=source_name)
    counter = 0
    stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    for i, (image, mask) in enumerate(pairs):
        check(cancel)
        tmp_image = _write_tiff_tmp(image_dir, image)
        try:
            tmp_mask = _write_tiff_tmp(mask_dir, mask)
        except BaseException:
            tmp_image.unlink(missing_ok=True)
            raise
        try:
            while True:
                name = f"{source_name}_{counter:04d}.tif"
                counter += 1
                if (image_dir / name).exists() or (mask_dir / name).exists():
                    continue
                if not _claim(tmp_mask, mask_dir / name):
                    continue
                if not _claim(tmp_image, image_dir / name):  # lost a race for the image name
                    (mask_dir / name).unlink(missing_ok=True)
                    tmp_mask = _write_tiff_tmp(mask_dir, mask)
                    continue
                break
        finally:
            tmp_image.unlink(missing_ok=True)
            tmp_mask.unlink(missing_ok=True)
        result.names.append(name)
        if not np.any(mask):
            result.empty_masks.append(name)
        record = (
            provenance[i]
            if provenance is not None
            else PatchProvenance(
                source_layer=source, box=[(0, image.shape[0]), (0, image.shape[1])]
            )
        )
        record = record.model_copy(update={"time": record.time or stamp})
        sidecar["patches"][name] = record.model_dump(mode="json")
        _write_json_atomic(source_dir / SIDECAR, sidecar)
        yield ProgressEvent("store", i + 1, len(pairs), message=f"stored {name}")

    from tamale.datasets.layout import scan_training_set

    result.total_pairs = len(scan_training_set(dataset_dir).pairs)
    return result


def store_patches(
    *args: Any, progress=None, cancel: CancelToken | None = None, **kwargs: Any
) -> StoreResult:
    """Append image/mask pairs to a training set; see :func:`iter_store_patches`."""
    return drain(iter_store_patches(*args, cancel=cancel, **kwargs), progress, cancel)


def stored_regions(dataset_dir: str | Path, source: str | None = None) -> list[PatchProvenance]:
    """Provenance of every patch stored in a dataset (optionally one source).

    Patches stored without a sidecar (e.g. by empanada) have no recorded
    region and are not returned. ``source`` is sanitised like in
    :func:`store_patches`, so a layer name can be passed directly.
    """
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        return []
    wanted = sanitize_source_name(source) if source is not None else None
    records: list[PatchProvenance] = []
    for source_dir in sorted(p for p in dataset_dir.iterdir() if p.is_dir()):
        if wanted is not None and source_dir.name != wanted:
            continue
        for name, data in _read_sidecar(source_dir)["patches"].items():
            try:
                records.append(PatchProvenance.model_validate(data))
            except Exception as exc:
                raise ConfigError(
                    f"{source_dir / SIDECAR}: entry {name} is invalid: {exc}"
                ) from None
    return records
