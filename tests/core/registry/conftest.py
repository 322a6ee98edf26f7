"""Fixtures for registry tests: a scripted empanada-style model and a local HTTP server."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from registry_helpers import EMPANADA_CARD, LocalHTTPServer, script_model


@pytest.fixture(scope="session")
def scripted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small TorchScript model called like empanada's (x, render_steps, interpolate_ins)."""
    path = tmp_path_factory.mktemp("scripted") / "scripted.pth"
    script_model(path)
    return path


@pytest.fixture(scope="session")
def other_scripted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another TorchScript model (6 output channels) with different weights."""
    path = tmp_path_factory.mktemp("scripted2") / "other.pth"
    script_model(path, channels=6)
    return path


@pytest.fixture
def empanada_card(tmp_path: Path, scripted_model: Path) -> Path:
    """An empanada YAML card whose `model` is the scripted file (absolute path)."""
    card = tmp_path / "user_files" / "TestNet.yaml"
    card.parent.mkdir()
    card.write_text(EMPANADA_CARD.format(model=scripted_model))
    return card


@dataclass
class Server:
    """A local HTTP server (127.0.0.1) serving ``files`` by path."""

    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server_state: Server

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        state = self.server.state  # type: ignore[attr-defined]
        state.requests.append(self.path)
        path = self.path.split("?", 1)[0].lstrip("/")
        mode, _, rest = path.partition("/")
        if mode == "truncated" and rest in state.files:
            body = state.files[rest]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "slow" and rest in state.files:
            body = state.files[rest]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(0, len(body), 1024):
                try:
                    self.wfile.write(body[i : i + 1024])
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.05)
            return
        if path in state.files:
            body = state.files[path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_error(404, "Not Found")


@pytest.fixture
def http_server() -> Iterator[Server]:
    """A threaded HTTP server on 127.0.0.1 (random port), stopped after the test."""
    httpd = LocalHTTPServer(("127.0.0.1", 0), _Handler)
    state = Server(base=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def cache_files(tamale_home: Path):
    """A function listing every file in the download cache (temporaries included)."""

    def files() -> list[str]:
        root = tamale_home / "cache" / "downloads"
        return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []

    return files


@pytest.fixture(autouse=True)
def _only_test_models(no_bundled_models):
    """Registry tests count models exactly: the built-in model is hidden from them."""
    return no_bundled_models
