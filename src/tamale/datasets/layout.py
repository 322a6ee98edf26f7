"""Reading training sets in the empanada / tamale directory layout.

A training set is a directory of *sources*, each holding paired images and
masks with identical file names::

    <root>/<source>/images/<name>.tif
    <root>/<source>/masks/<name>.tif
    <root>/<source>/tamale.json          (optional provenance sidecar, tamale only)

Pairs are matched by **file name** (never by listing order). Files that are
not images (``Thumbs.db``, ``.DS_Store``, notes...) and hidden files are
ignored. An image without a mask, or a mask without an image, is reported by
name. This reads datasets written by empanada-napari and by tamale alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tamale.errors import TamaleInputError

__all__ = [
    "IMAGE_SUFFIXES",
    "DatasetSummary",
    "PatchPair",
    "TrainingSetIndex",
    "read_image",
    "read_mask",
    "scan_training_set",
    "summarize_training_set",
]

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class PatchPair:
    """One image and its mask."""

    source: str
    name: str
    image: Path
    mask: Path


@dataclass
class TrainingSetIndex:
    """What a training-set directory holds.

    Attributes
    ----------
    root : Path
        The directory scanned.
    pairs : list of PatchPair
        Every complete image/mask pair, sorted by source then name.
    images_without_masks, masks_without_images : list of str
        ``source/name`` of unpaired files.
    """

    root: Path
    pairs: list[PatchPair] = field(default_factory=list)
    images_without_masks: list[str] = field(default_factory=list)
    masks_without_images: list[str] = field(default_factory=list)

    @property
    def sources(self) -> dict[str, list[PatchPair]]:
        """Pairs grouped by source, in order."""
        out: dict[str, list[PatchPair]] = {}
        for pair in self.pairs:
            out.setdefault(pair.source, []).append(pair)
        return out

    @property
    def problems(self) -> list[str]:
        """Human-readable description of every unpaired file."""
        return [f"image without mask: {n}" for n in self.images_without_masks] + [
            f"mask without image: {n}" for n in self.masks_without_images
        ]

    def raise_for_problems(self) -> None:
        """Raise :class:`TamaleInputError` naming every unpaired file, if any."""
        problems = self.problems
        if problems:
            shown = "; ".join(problems[:10]) + (
                f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
            )
            raise TamaleInputError(
                f"training set {self.root} has unpaired files (images and masks are paired by "
                f"identical file name): {shown}"
            )


def _image_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {
        p.name: p
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    }


def scan_training_set(root: str | Path) -> TrainingSetIndex:
    """Index a training-set directory (see module docstring).

    Raises
    ------
    TamaleInputError
        If ``root`` is not a directory or holds no source with an
        ``images``/``masks`` pair of folders.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise TamaleInputError(f"training set directory not found: {root}")
    index = TrainingSetIndex(root=root)
    found_source = False
    for source_dir in sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
    ):
        if not (source_dir / "images").is_dir() and not (source_dir / "masks").is_dir():
            continue
        found_source = True
        images = _image_files(source_dir / "images")
        masks = _image_files(source_dir / "masks")
        for name in sorted(images.keys() & masks.keys()):
            index.pairs.append(PatchPair(source_dir.name, name, images[name], masks[name]))
        index.images_without_masks += [
            f"{source_dir.name}/{n}" for n in sorted(images.keys() - masks.keys())
        ]
        index.masks_without_images += [
            f"{source_dir.name}/{n}" for n in sorted(masks.keys() - images.keys())
        ]
    if not found_source:
        raise TamaleInputError(
            f"{root} is not a training set: expected <source>/images and <source>/masks folders inside it"
        )
    return index


def read_image(path: str | Path) -> np.ndarray:
    """Read a 2D image in its own dtype (TIFF via tifffile, others via imageio)."""
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        array = tifffile.imread(path)
    else:
        import imageio.v3 as iio

        array = iio.imread(path)
    array = np.asarray(array)
    if (
        array.ndim == 3
        and array.shape[-1] in (3, 4)
        and path.suffix.lower() not in (".tif", ".tiff")
    ):
        array = array[..., 0]  # grayscale saved as RGB(A)
    array = np.squeeze(array)
    if array.ndim != 2:
        raise TamaleInputError(f"{path} is not a 2D grayscale image (shape {array.shape})")
    return array


def read_mask(path: str | Path) -> np.ndarray:
    """Read a mask as uint32 labels; negative or fractional values are an error."""
    array = read_image(path)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise TamaleInputError(
                f"mask {path} holds non-integer values; masks must be integer labels"
            )
    if array.dtype.kind in "if" and array.size and array.min() < 0:
        raise TamaleInputError(f"mask {path} holds negative values; masks must be labels >= 0")
    if array.size and array.max() > np.iinfo(np.uint32).max:
        raise TamaleInputError(f"mask {path} holds values above the uint32 range")
    return array.astype(np.uint32, copy=False)


@dataclass
class DatasetSummary:
    """Counts per source and the classes present in a training set."""

    root: Path
    pairs_per_source: dict[str, int]
    label_divisor: int | None
    classes: dict[int, int]
    """class id → number of patches containing it (with a divisor); without a
    divisor every nonzero id is an instance of class 1."""
    instances: int
    """Distinct nonzero ids summed over patches."""
    empty_masks: list[str]
    problems: list[str]

    @property
    def total(self) -> int:
        return sum(self.pairs_per_source.values())

    def to_text(self) -> str:
        """A short report for the CLI and the docks."""
        lines = [f"training set {self.root}: {self.total} image/mask pairs"]
        lines += [f"  {src}: {n}" for src, n in self.pairs_per_source.items()]
        if self.label_divisor:
            present = ", ".join(
                f"class {c} in {n} patches" for c, n in sorted(self.classes.items())
            )
            lines.append(f"label divisor {self.label_divisor}: {present or 'no labels'}")
        lines.append(f"{self.instances} labelled objects/regions in total")
        if self.empty_masks:
            lines.append(
                f"{len(self.empty_masks)} masks are empty: " + ", ".join(self.empty_masks[:5])
            )
        lines += [f"problem: {p}" for p in self.problems]
        return "\n".join(lines)


def summarize_training_set(root: str | Path, label_divisor: int | None = None) -> DatasetSummary:
    """Count pairs per source and the classes present (reads every mask once)."""
    index = scan_training_set(root)
    classes: dict[int, int] = {}
    instances = 0
    empty: list[str] = []
    for pair in index.pairs:
        ids = np.unique(read_mask(pair.mask))
        ids = ids[ids > 0]
        if ids.size == 0:
            empty.append(f"{pair.source}/{pair.name}")
            continue
        instances += int(ids.size)
        present = np.unique(ids // label_divisor) if label_divisor else np.array([1])
        for c in present.tolist():
            classes[int(c)] = classes.get(int(c), 0) + 1
    return DatasetSummary(
        root=index.root,
        pairs_per_source={src: len(p) for src, p in index.sources.items()},
        label_divisor=label_divisor,
        classes=classes,
        instances=instances,
        empty_masks=empty,
        problems=index.problems,
    )
