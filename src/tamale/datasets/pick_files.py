"""Picked patches as files, for annotation in another tool (``tamale pick``).

:func:`save_picks` writes three files next to each other and never replaces one::

    <name>_flipbooks.tif          (N, 5, P, P) in the image's dtype (or <name>_patches.tif)
    <name>_flipbooks_labels.tif   (N, 5, P, P) uint32 labels to paint (zeros, or paired crops)
    <name>_flipbooks.json         provenance of every patch, the seed and the parameters

A second round into the same folder gets ``<name>_flipbooks-2.*`` and so on.
:func:`read_picks` reads the JSON back (``tamale dataset add`` uses it to store the
annotated middle planes with their provenance), and :func:`picked_regions` lists the
regions of every earlier round in a folder, so the next round can avoid them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamale._names import check_name
from tamale.datasets.pick import PickResult
from tamale.datasets.store import PatchProvenance, sanitize_source_name
from tamale.errors import TamaleInputError

__all__ = ["PICKS_FORMAT", "PickFiles", "PickSidecar", "picked_regions", "read_picks", "save_picks"]

PICKS_FORMAT = "tamale-picks"
PICKS_VERSION = 1


@dataclass(frozen=True)
class PickFiles:
    """The files :func:`save_picks` wrote."""

    images: Path
    labels: Path
    sidecar: Path


@dataclass(frozen=True)
class PickSidecar:
    """What a picks JSON file says."""

    path: Path
    kind: str
    source: str
    seed: int | None
    images: Path
    labels: Path
    provenance: list[PatchProvenance]
    config: dict[str, Any]


def _stems(out_dir: Path, base: str) -> list[tuple[Path, Path, Path]]:
    found = []
    for k in range(1, 10_000):
        stem = base if k == 1 else f"{base}-{k}"
        files = (
            out_dir / f"{stem}.tif",
            out_dir / f"{stem}_labels.tif",
            out_dir / f"{stem}.json",
        )
        if not any(f.exists() for f in files):
            found.append(files)
            if len(found) >= 3:
                break
    return found


def save_picks(result: PickResult, out_dir: str | Path, name: str | None = None) -> PickFiles:
    """Write picked patches, empty (or paired) labels and their provenance.

    Parameters
    ----------
    result : PickResult
        From :func:`~tamale.datasets.pick_patches`.
    out_dir : path
        Folder to write into (created if missing).
    name : str, optional
        File-name prefix; default: the result's source, made safe.

    Returns
    -------
    PickFiles
        The three paths. Existing files are never replaced: a free ``-2``, ``-3``...
        suffix is used instead.
    """
    import tifffile

    out_dir = Path(out_dir)
    prefix = check_name(name, "name") if name else sanitize_source_name(result.source)
    base = f"{prefix}_{'flipbooks' if result.kind == 'flipbook' else 'patches'}"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TamaleInputError(f"cannot create {out_dir}: {exc}") from None
    if not os.access(out_dir, os.W_OK):
        raise TamaleInputError(f"output folder is not writable: {out_dir}")
    axes = "TZYX" if result.kind == "flipbook" else "QYX"
    doc = {
        "format": PICKS_FORMAT,
        "version": PICKS_VERSION,
        "kind": result.kind,
        "source": result.source,
        "seed": result.seed,
        "config": result.config.model_dump(mode="json"),
        "patches": [r.model_dump(mode="json") for r in result.provenance],
    }
    for images, labels, sidecar in _stems(out_dir, base):
        written: list[Path] = []
        try:  # exclusive creation: an existing file is never replaced
            with open(images, "xb") as fh:
                written.append(images)
                tifffile.imwrite(
                    fh, result.images, photometric="minisblack", metadata={"axes": axes}
                )
            with open(labels, "xb") as fh:
                written.append(labels)
                tifffile.imwrite(
                    fh,
                    result.labels,
                    photometric="minisblack",
                    compression="zlib",
                    metadata={"axes": axes},
                )
            with open(sidecar, "xb") as fh:
                written.append(sidecar)
                text = json.dumps({**doc, "images": images.name, "labels": labels.name}, indent=1)
                fh.write(text.encode("utf-8"))
        except FileExistsError:  # another process took the name meanwhile: try the next
            for path in written:
                path.unlink(missing_ok=True)
            continue
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return PickFiles(images, labels, sidecar)
    raise TamaleInputError(f"no free file name for {base} in {out_dir}")


def read_picks(path: str | Path) -> PickSidecar:
    """Read a picks JSON (``path`` may also be the patches TIFF beside it)."""
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        path = path.with_suffix(".json")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"picks file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise TamaleInputError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != PICKS_FORMAT:
        raise TamaleInputError(f"{path} is not a tamale picks file")
    if int(doc.get("version", 0)) > PICKS_VERSION:
        raise TamaleInputError(f"{path} was written by a newer tamale; upgrade tamale")
    try:
        records = [PatchProvenance.model_validate(r) for r in doc["patches"]]
        return PickSidecar(
            path=path,
            kind=str(doc["kind"]),
            source=str(doc["source"]),
            seed=doc.get("seed"),
            images=path.parent / doc["images"],
            labels=path.parent / doc["labels"],
            provenance=records,
            config=dict(doc.get("config") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise TamaleInputError(f"{path} is not a valid tamale picks file: {exc}") from None


def picked_regions(folder: str | Path, source: str | None = None) -> list[PatchProvenance]:
    """Provenance of every patch picked into ``folder`` earlier (optionally one source)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    records: list[PatchProvenance] = []
    for path in sorted(folder.glob("*.json")):
        try:
            picks = read_picks(path)
        except TamaleInputError:
            continue  # some other JSON file
        if source is None or sanitize_source_name(picks.source) == sanitize_source_name(source):
            records += picks.provenance
    return records
