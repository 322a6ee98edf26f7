"""Export a model to one self-contained zip archive, and import such archives.

Archive layout (flat, no folders)::

    tamale-model.json          manifest: format, archive version, tamale version,
                               model name, and the sha256 and size of every file
    card.yaml                  the card (tamale format), weights named by file
    weights.safetensors|.pth   the weights
    weights_quantized.pth      optional quantized weights

Importing is defensive: member names are checked before anything is read
(no folders, no ``..``, no absolute paths, no links, only the files the
manifest lists), sizes are checked against the manifest and the free disk
space, every file is hashed while it is extracted, the model is built to check
its weights, and only then is the assembled directory renamed into the
registry. An existing model is replaced only when asked (``replace=True``),
and nothing outside tamale's own folders is ever written or deleted.

Archives written by empanada-napari's "Export a model" (a zip holding one
YAML card and its ``.pth`` files) import too; their hashes are computed on
import and recorded.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tamale import __version__
from tamale._names import check_name
from tamale.config import ConfigError
from tamale.errors import TamaleInputError
from tamale.progress import (
    CancelToken,
    ProgressCallback,
    ProgressEvent,
    Throttle,
    Work,
    check,
    drain,
)
from tamale.registry.card import ModelCard, card_from_yaml, card_to_yaml, save_card
from tamale.registry.events import notify_changed
from tamale.registry.hashing import BLOCK, check_sha256
from tamale.registry.install import (
    check_free_name,
    install,
    new_staging_dir,
    remove_staging,
    staging_root,
    write_marker,
)
from tamale.registry.register import RegisteredModel, weights_file_name
from tamale.registry.store import CARD_FILE, get_card
from tamale.registry.verify import check_model
from tamale.registry.weights import LABELS, iter_local_card, weights_refs

__all__ = [
    "ARCHIVE_FORMAT",
    "ARCHIVE_VERSION",
    "MANIFEST",
    "ArchiveManifest",
    "export_model",
    "import_model",
    "iter_export_model",
    "iter_import_model",
    "read_manifest",
]

ARCHIVE_FORMAT = "tamale-model-archive"
ARCHIVE_VERSION = 1
MANIFEST = "tamale-model.json"
MAX_MEMBERS = 16
MAX_CARD_BYTES = 1 << 20
MAX_TOTAL_BYTES = 64 << 30
"""Largest archive content accepted (64 GiB): far above any real model."""
MAX_RATIO = 200
"""Largest compression ratio accepted for members over 1 MiB (zip bombs)."""

_MEMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class ArchiveManifest:
    """The manifest of a model archive."""

    name: str
    tamale_version: str
    archive_version: int
    files: dict[str, dict[str, Any]]
    """Member name → ``{"sha256": ..., "size": ...}``."""
    source: str
    """``tamale`` or ``empanada`` (an empanada-napari export, no manifest)."""


# -- versions -----------------------------------------------------------------
def _release(version: str) -> tuple[int, ...]:
    parts = []
    for piece in str(version).split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.group() != piece:
            break
    return tuple(parts)


def _newer(theirs: str, ours: str = __version__) -> bool:
    return _release(theirs) > _release(ours)


# -- export -------------------------------------------------------------------
def _target_path(path: str | Path, name: str, overwrite: bool) -> Path:
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / f"{name}.zip"
    elif not path.suffix:
        path = path.with_suffix(".zip")
    if not path.parent.is_dir():
        raise TamaleInputError(f"folder not found: {path.parent}; create it first")
    if path.exists() and not overwrite:
        raise TamaleInputError(
            f"{path} already exists; choose another file name or allow overwriting"
        )
    if path.exists() and not path.is_file():
        raise TamaleInputError(f"{path} exists and is not a file")
    return path


def _write_member(
    zf: zipfile.ZipFile,
    member: str,
    source: IO[bytes],
    total: int,
    compress: int,
    cancel: CancelToken | None,
    done: list[int],
    grand_total: int,
) -> Work[str]:
    info = zipfile.ZipInfo(member, date_time=_ZIP_DATE)
    info.compress_type = compress
    info.external_attr = 0o644 << 16
    digest = hashlib.sha256()
    throttle = Throttle(0.1)
    with zf.open(info, "w", force_zip64=total > (1 << 31)) as out:
        while block := source.read(BLOCK):
            check(cancel)
            digest.update(block)
            out.write(block)
            done[0] += len(block)
            if throttle.ready():
                yield ProgressEvent("export", done[0], grand_total, f"writing {member}")
    return digest.hexdigest()


def iter_export_model(
    name: str,
    path: str | Path,
    *,
    overwrite: bool = False,
    cancel: CancelToken | None = None,
) -> Work[Path]:
    """Write model ``name`` (card, weights, hashes) into one zip archive.

    Parameters
    ----------
    name : str
        A registered model (bundled or user). Weights that are URLs are
        downloaded (hash-checked) first.
    path : path
        The archive to write; a folder means ``<folder>/<name>.zip``, and a
        name without extension gets ``.zip``.
    overwrite : bool
        Replace an existing file at ``path`` (refused otherwise).

    Returns
    -------
    Path
        The archive written. It appears only when complete: a failure or a
        Cancel leaves no partial file.
    """
    card = get_card(name)
    target = _target_path(path, name, overwrite)
    local = yield from iter_local_card(card, cancel=cancel)
    members: dict[str, tuple[str, Path]] = {}
    for field, ref in weights_refs(local).items():
        members[field] = (weights_file_name(field, ref.format), Path(ref.uri))
    grand_total = sum(p.stat().st_size for _, p in members.values())
    done = [0]

    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        files: dict[str, dict[str, Any]] = {}
        changes: dict[str, Any] = {}
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            for field, (member, src) in members.items():
                size = src.stat().st_size
                with open(src, "rb") as fin:
                    sha = yield from _write_member(
                        zf, member, fin, size, zipfile.ZIP_STORED, cancel, done, grand_total
                    )
                check_sha256(sha, getattr(card, field).sha256, f"{field} of {name} ({src})")
                files[member] = {"sha256": sha, "size": size}
                changes[field] = {**getattr(card, field).model_dump(), "uri": member, "sha256": sha}
            card_text = card_to_yaml(card.updated(**changes)).encode("utf-8")
            zf.writestr(_zinfo(CARD_FILE), card_text)
            files[CARD_FILE] = {
                "sha256": hashlib.sha256(card_text).hexdigest(),
                "size": len(card_text),
            }
            manifest = {
                "format": ARCHIVE_FORMAT,
                "archive_version": ARCHIVE_VERSION,
                "tamale_version": __version__,
                "name": name,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "files": files,
            }
            zf.writestr(_zinfo(MANIFEST), json.dumps(manifest, indent=2) + "\n")
        check(cancel)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    yield ProgressEvent("export", grand_total, grand_total, f"wrote {target.name}")
    return target


def _zinfo(member: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(member, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def export_model(
    name: str,
    path: str | Path,
    *,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Blocking form of :func:`iter_export_model`."""
    return drain(
        iter_export_model(name, path, overwrite=overwrite, cancel=cancel), progress, cancel
    )


# -- reading archives safely --------------------------------------------------
def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.exists():
        raise TamaleInputError(f"model archive not found: {path}")
    if not path.is_file():
        raise TamaleInputError(f"{path} is not a file; choose a model archive (.zip)")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise TamaleInputError(
            f"{path.name} is not a readable model archive (corrupt or not a zip file: {exc})"
        ) from None


def _check_members(zf: zipfile.ZipFile, archive: Path) -> dict[str, zipfile.ZipInfo]:
    """Refuse unsafe member names and oversized content before reading anything."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise TamaleInputError(
            f"{archive.name} holds {len(infos)} files; a model archive holds at most {MAX_MEMBERS}"
        )
    names = [info.filename for info in infos]
    yamls = [n for n in names if n.lower().endswith((".yaml", ".yml"))]
    if MANIFEST not in names and len(yamls) != 1:
        raise TamaleInputError(
            f"{archive.name} is not a tamale model archive, or it is corrupt (no {MANIFEST} inside)"
        )
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
        if not _MEMBER.match(name) or ".." in name or info.is_dir() or is_link:
            raise TamaleInputError(
                f"{archive.name} contains an unsafe entry {name!r} (folders, links, '..' and "
                "absolute paths are refused); the archive was not imported"
            )
        if name in members:
            raise TamaleInputError(f"{archive.name} contains {name!r} twice; not imported")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > (1 << 20) and ratio > MAX_RATIO:
            raise TamaleInputError(
                f"{archive.name}: {name!r} expands {ratio:.0f}-fold; refused as unsafe"
            )
        members[name] = info
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise TamaleInputError(f"{archive.name} would expand to {total} bytes; refused")
    return members


def _read_small(zf: zipfile.ZipFile, info: zipfile.ZipInfo, archive: Path) -> bytes:
    if info.file_size > MAX_CARD_BYTES:
        raise TamaleInputError(f"{archive.name}: {info.filename} is too large for a card")
    try:
        with zf.open(info) as f:
            return f.read(MAX_CARD_BYTES + 1)[:MAX_CARD_BYTES]
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
        raise TamaleInputError(f"{archive.name} is corrupt ({info.filename}: {exc})") from None


def _manifest(
    zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], archive: Path
) -> ArchiveManifest:
    if MANIFEST not in members:
        yamls = [m for m in members if m.lower().endswith((".yaml", ".yml"))]
        if len(yamls) == 1:  # empanada-napari export: one card + its .pth files
            return ArchiveManifest(
                name=Path(yamls[0]).stem,
                tamale_version="0",
                archive_version=0,
                files={m: {} for m in members},
                source="empanada",
            )
        raise TamaleInputError(
            f"{archive.name} is not a tamale model archive (no {MANIFEST} inside)"
        )
    try:
        data = json.loads(_read_small(zf, members[MANIFEST], archive).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise TamaleInputError(f"{archive.name} is corrupt: {MANIFEST} is not valid JSON") from None
    if not isinstance(data, dict) or data.get("format") != ARCHIVE_FORMAT:
        raise TamaleInputError(f"{archive.name} is not a tamale model archive")
    version = str(data.get("tamale_version", "?"))
    archive_version = data.get("archive_version")
    if not isinstance(archive_version, int) or not isinstance(data.get("files"), dict):
        raise TamaleInputError(f"{archive.name} is corrupt: its manifest is incomplete")
    if archive_version > ARCHIVE_VERSION or _newer(version):
        raise TamaleInputError(
            f"{archive.name} was made by tamale {version}, newer than this tamale "
            f"({__version__}); upgrade tamale to import it"
        )
    files = data["files"]
    listed = set(files) | {MANIFEST}
    unexpected = sorted(set(members) - listed)
    missing = sorted(listed - set(members))
    if unexpected or missing:
        raise TamaleInputError(
            f"{archive.name} does not match its manifest"
            + (f"; unexpected: {', '.join(unexpected)}" if unexpected else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    if CARD_FILE not in files:
        raise TamaleInputError(f"{archive.name} holds no {CARD_FILE}")
    for member, meta in files.items():
        if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str):
            raise TamaleInputError(f"{archive.name}: the manifest gives no sha256 for {member}")
        if members[member].file_size != meta.get("size", members[member].file_size):
            raise TamaleInputError(f"{archive.name}: {member} is not the size the manifest says")
    return ArchiveManifest(
        name=str(data.get("name", "")),
        tamale_version=version,
        archive_version=archive_version,
        files={k: dict(v) for k, v in files.items()},
        source="tamale",
    )


def read_manifest(path: str | Path) -> ArchiveManifest:
    """Read and check the manifest of a model archive (nothing is extracted)."""
    path = Path(path).expanduser()
    with _open_zip(path) as zf:
        return _manifest(zf, _check_members(zf, path), path)


def _card_member(manifest: ArchiveManifest) -> str:
    if manifest.source == "tamale":
        return CARD_FILE
    return next(m for m in manifest.files if m.lower().endswith((".yaml", ".yml")))


def _iter_extract(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    dst: Path,
    archive: Path,
    cancel: CancelToken | None,
    done: list[int],
    grand_total: int,
) -> Work[str]:
    digest = hashlib.sha256()
    throttle = Throttle(0.1)
    written = 0
    try:
        with zf.open(info) as fin, open(dst, "xb") as fout:
            while block := fin.read(BLOCK):
                check(cancel)
                written += len(block)
                if written > info.file_size:
                    raise TamaleInputError(
                        f"{archive.name}: {info.filename} is larger than declared"
                    )
                digest.update(block)
                fout.write(block)
                done[0] += len(block)
                if throttle.ready():
                    yield ProgressEvent(
                        "import", done[0], grand_total, f"extracting {info.filename}"
                    )
    except (zipfile.BadZipFile, EOFError, RuntimeError, zlib.error) as exc:
        raise TamaleInputError(f"{archive.name} is corrupt ({info.filename}: {exc})") from None
    return digest.hexdigest()


def _check_space(total: int, archive: Path) -> None:
    root = staging_root()
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if total > free:
        raise TamaleInputError(
            f"not enough disk space to import {archive.name}: it needs {total} bytes, "
            f"{free} are free under {root}"
        )


def _imported_card(
    text: bytes, manifest: ArchiveManifest, name: str | None, archive: Path
) -> ModelCard:
    try:
        card = card_from_yaml(
            text.decode("utf-8"),
            name,
            source=f"{archive.name}:{_card_member(manifest)}",
            default_name=manifest.name,
        )
    except UnicodeDecodeError:
        raise TamaleInputError(f"{archive.name}: the card is not text") from None
    except ConfigError as exc:
        raise ConfigError(f"{archive.name}: {exc}") from None
    for field, ref in weights_refs(card).items():
        member = Path(ref.uri).name if manifest.source == "empanada" else ref.uri
        if ref.is_url or member not in manifest.files or member == _card_member(manifest):
            raise TamaleInputError(
                f"{archive.name}: the card's {LABELS[field]} ({ref.uri}) is not a file "
                "inside the archive"
            )
    return card


def iter_import_model(
    path: str | Path,
    name: str | None = None,
    *,
    replace: bool = False,
    cancel: CancelToken | None = None,
) -> Work[RegisteredModel]:
    """Import a model archive (from :func:`export_model` or empanada-napari) as ``name``.

    Parameters
    ----------
    path : path
        The archive.
    name : str, optional
        Name in this registry (default: the name it was exported under).
    replace : bool
        Replace a user model of the same name (refused otherwise).

    Raises
    ------
    TamaleInputError
        Missing, corrupt or unsafe archive, an archive from a newer tamale, a
        hash mismatch, a taken name, weights that do not fit the card.
    """
    archive = Path(path).expanduser()
    if name is not None and str(name).strip():
        name = check_name(str(name).strip(), "model name")
    else:
        name = None
    with _open_zip(archive) as zf:
        members = _check_members(zf, archive)
        manifest = _manifest(zf, members, archive)
        card_text = _read_small(zf, members[_card_member(manifest)], archive)
        card = _imported_card(card_text, manifest, name, archive)
        check_free_name(card.name, replace=replace)
        wanted = {field: (Path(ref.uri).name, ref) for field, ref in weights_refs(card).items()}
        grand_total = sum(members[m].file_size for m, _ in wanted.values())
        _check_space(grand_total, archive)

        staging = new_staging_dir()
        try:
            done = [0]
            stored: dict[str, Any] = {"weights_quantized": None}
            for field, (member, ref) in wanted.items():
                file_name = weights_file_name(field, ref.format)
                sha = yield from _iter_extract(
                    zf, members[member], staging / file_name, archive, cancel, done, grand_total
                )
                expected = manifest.files[member].get("sha256")
                if expected is not None and sha != expected:
                    raise TamaleInputError(
                        f"{archive.name} is damaged: {member} has sha256 {sha}, the manifest "
                        f"says {expected}"
                    )
                check_sha256(sha, ref.sha256, f"{field} in {archive.name}")
                stored[field] = {**ref.model_dump(), "uri": file_name, "sha256": sha}
            if manifest.source == "tamale":
                card_sha = hashlib.sha256(card_text).hexdigest()
                if card_sha != manifest.files[CARD_FILE]["sha256"]:
                    raise TamaleInputError(f"{archive.name} is damaged: the card's hash differs")
            final = card.updated(**stored).with_path(staging / CARD_FILE)
            check(cancel)
            yield ProgressEvent("verify", 0, 1, f"building {final.name} to check its weights")
            parameters = check_model(final)
            yield ProgressEvent("verify", 1, 1, f"{parameters:,} parameters")
            save_card(final, staging / CARD_FILE)
            write_marker(
                staging,
                "import",
                str(archive.resolve()),
                parameters=parameters,
                archive_tamale_version=manifest.tamale_version,
            )
            check(cancel)
            directory = install(staging, final.name, replace=replace)
        except BaseException:
            remove_staging(staging)
            raise
    notify_changed()
    yield ProgressEvent("install", 1, 1, f"imported {final.name}")
    return RegisteredModel(
        final.name, final.with_path(directory / CARD_FILE), directory, parameters
    )


def import_model(
    path: str | Path,
    name: str | None = None,
    *,
    replace: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> RegisteredModel:
    """Blocking form of :func:`iter_import_model`."""
    return drain(iter_import_model(path, name, replace=replace, cancel=cancel), progress, cancel)
