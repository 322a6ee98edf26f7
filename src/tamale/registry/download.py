"""Hash-checked downloads of model weights into tamale's cache.

Downloads go through pooch (``requests`` underneath, SSL verification on, no
process-wide setting touched) into ``tamale._paths.downloads_dir()``:

* the cache file name is derived from the whole URL (a short hash of it plus
  the URL's file name), so two URLs that end in the same file name never
  overwrite each other;
* pooch streams into a temporary file beside the target and moves it into
  place only after the transfer completed and the SHA-256 matched, so a
  failed, interrupted, cancelled or corrupted transfer leaves no file behind;
* any HTTP status other than success (404, 500...) is an error, never a file;
* progress is reported in bytes and Cancel stops the transfer at the next
  block.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from tamale import _paths
from tamale.errors import TamaleInputError
from tamale.progress import (
    Cancelled,
    CancelToken,
    ProgressCallback,
    ProgressEvent,
    Throttle,
    Work,
    drain,
    run_in_thread,
)
from tamale.registry.hashing import sha256_file

__all__ = ["Downloaded", "cache_path", "download", "is_url", "iter_download"]

TIMEOUT_S = 30.0
"""Seconds without a byte from the server before a download fails."""

CHUNK = 1 << 13
"""Bytes read per step (Cancel is checked after each)."""

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def is_url(location: str) -> bool:
    """Whether ``location`` is an http(s) URL."""
    return str(location).lower().startswith(("http://", "https://"))


@dataclass(frozen=True)
class Downloaded:
    """A downloaded (or already cached) file."""

    url: str
    path: Path
    sha256: str
    fetched: bool
    """True when it was transferred now, False when the cache already had it."""


def cache_path(url: str) -> Path:
    """Where the download of ``url`` is (or will be) cached."""
    if not is_url(url):
        raise TamaleInputError(f"not an http(s) URL: {url!r}")
    base = posixpath.basename(unquote(urlparse(url).path)) or "download"
    base = _SAFE.sub("_", base).lstrip(".")[:80] or "download"
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    return _paths.downloads_dir() / f"{key}-{base}"


class _PoochProgress:
    """The tqdm-like object pooch's HTTPDownloader reports to; checks Cancel."""

    def __init__(self, name: str, progress: ProgressCallback, cancel: CancelToken) -> None:
        self.name = name
        self.total = 0
        self.n = 0
        self._progress = progress
        self._cancel = cancel
        self._throttle = Throttle(0.1)

    def update(self, count: int) -> None:
        self._cancel.raise_if_cancelled()
        self.n += count
        if self._throttle.ready() or (self.total and self.n >= self.total):
            total = self.total or None
            step = min(self.n, self.total) if self.total else self.n
            self._progress(ProgressEvent("download", step, total, f"downloading {self.name}"))

    def reset(self) -> None:
        self.n = 0

    def close(self) -> None:
        pass


def _fetch(
    url: str,
    target: Path,
    sha256: str | None,
    *,
    progress: ProgressCallback,
    cancel: CancelToken,
) -> None:
    import pooch  # imported on use: `import tamale.registry` stays light
    import requests

    bar = _PoochProgress(target.name.split("-", 1)[-1], progress, cancel)
    downloader = pooch.HTTPDownloader(progressbar=bar, chunk_size=CHUNK, timeout=TIMEOUT_S)
    try:
        pooch.retrieve(
            url,
            known_hash=None if sha256 is None else f"sha256:{sha256}",
            fname=target.name,
            path=target.parent,
            downloader=downloader,
        )
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise TamaleInputError(
            f"could not download {url}: the server answered HTTP {status}; check the URL"
        ) from None
    except requests.exceptions.RequestException as exc:
        raise TamaleInputError(
            f"could not download {url}: {type(exc).__name__}: {exc}; check the URL and the "
            "network connection, then try again (nothing was kept)"
        ) from None
    except ValueError as exc:
        if "hash" in str(exc).lower():
            raise TamaleInputError(
                f"hash mismatch for {url}: the card expects sha256 {sha256} but the downloaded "
                "file differs (it was not kept). The file on the server changed or the card "
                "is wrong."
            ) from None
        raise


def iter_download(
    url: str, sha256: str | None = None, *, cancel: CancelToken | None = None
) -> Work[Downloaded]:
    """Download ``url`` into the cache (or find it there) and return where it is.

    Parameters
    ----------
    url : str
        An http(s) URL.
    sha256 : str, optional
        Expected SHA-256 (hex). When given, a cached file with another hash is
        downloaded again and a transfer with another hash is an error. When not
        given, the hash of the file is computed and returned.
    cancel : CancelToken, optional
        Stops the transfer at the next block (nothing is kept).

    Raises
    ------
    TamaleInputError
        On an HTTP error status, an unreachable server, an interrupted
        transfer, or a hash mismatch; the cache is left without a partial file.
    """
    target = cache_path(url)
    expected = None if sha256 is None else sha256.lower()
    if target.is_file():
        actual = sha256_file(target, cancel=cancel)
        if expected is None or actual == expected:
            yield ProgressEvent("download", 1, 1, f"{target.name} is already cached")
            return Downloaded(url, target, actual, fetched=False)
    _paths.ensure_dir(target.parent)
    token = cancel if cancel is not None else CancelToken()
    yield ProgressEvent("download", 0, None, f"connecting to {urlparse(url).netloc}")
    yield from run_in_thread(_fetch, url, target, expected, stage="download", cancel=token)
    if token.cancelled:  # pragma: no cover - the thread raises Cancelled first
        raise Cancelled("cancelled by the user")
    actual = expected if expected is not None else sha256_file(target, cancel=cancel)
    return Downloaded(url, target, actual, fetched=True)


def download(
    url: str,
    sha256: str | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Downloaded:
    """Blocking form of :func:`iter_download`."""
    return drain(iter_download(url, sha256, cancel=cancel), progress, cancel)
