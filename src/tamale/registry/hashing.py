"""SHA-256 of files, and copies that hash what they copy.

Weights are checked by their SHA-256 everywhere the registry touches them:
downloads, registration of local files, export and import. Both functions here
read in blocks, report progress in bytes and stop at the next block when
cancelled.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tamale.errors import TamaleInputError
from tamale.progress import CancelToken, ProgressEvent, Throttle, Work, check

__all__ = ["BLOCK", "check_sha256", "iter_copy_hashed", "sha256_file"]

BLOCK = 1 << 20  # 1 MiB


def sha256_file(path: str | Path, *, cancel: CancelToken | None = None) -> str:
    """Lower-case hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            check(cancel)
            digest.update(block)
    return digest.hexdigest()


def check_sha256(actual: str, expected: str | None, what: str) -> None:
    """Raise :class:`TamaleInputError` if ``expected`` is given and differs from ``actual``."""
    if expected is not None and actual != expected.lower():
        raise TamaleInputError(
            f"hash mismatch for {what}: the card expects sha256 {expected}, the file has "
            f"{actual}. The file is damaged or is not the file the card describes; "
            "download it again, or remove the sha256 from the card if you meant other weights."
        )


def iter_copy_hashed(
    src: str | Path,
    dst: str | Path,
    *,
    stage: str = "copy",
    cancel: CancelToken | None = None,
) -> Work[str]:
    """Copy ``src`` to the new file ``dst`` and return the SHA-256 of what was copied.

    ``src`` is only read (never moved or changed). ``dst`` must not exist; it
    is removed again if the copy fails or is cancelled. Yields progress in
    bytes.
    """
    src, dst = Path(src), Path(dst)
    try:
        total = src.stat().st_size
        fin = open(src, "rb")
    except FileNotFoundError:
        raise TamaleInputError(f"weights file not found: {src}") from None
    except IsADirectoryError:
        raise TamaleInputError(f"{src} is a folder, not a weights file") from None
    digest = hashlib.sha256()
    done = 0
    throttle = Throttle(0.1)
    try:
        with fin, open(dst, "xb") as fout:
            while block := fin.read(BLOCK):
                check(cancel)
                digest.update(block)
                fout.write(block)
                done += len(block)
                if throttle.ready():
                    yield ProgressEvent(stage, done, total, f"copying {src.name}")
            fout.flush()
            os.fsync(fout.fileno())
    except BaseException:
        dst.unlink(missing_ok=True)
        raise
    yield ProgressEvent(stage, total, total, f"copied {src.name}")
    return digest.hexdigest()
