"""Fixtures for registry tests: a scripted empanada-style model and a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

EMPANADA_CARD = """\
class_names:
  1: mito
labels: [1]
thing_list: [1]
model: {model}
padding_factor: 16
norms: {{mean: 0.57571, std: 0.12765}}
description: A scripted test model with empanada's call signature.
FINETUNE:
  criterion: PanopticLoss
  dataset_class: SingleClassInstanceDataset
  engine_params: {{confidence_thr: 0.5, label_divisor: 1000, nms_kernel: 7}}
"""


def _script_model(path: Path, channels: int = 4) -> None:
    import torch

    class Scripted(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, channels, 3, padding=1)

        def forward(
            self, x: torch.Tensor, render_steps: int = 2, interpolate_ins: bool = True
        ) -> dict[str, torch.Tensor]:
            y = self.conv(x)
            return {"sem_logits": y[:, :1], "ctr_hmp": y[:, 1:2], "offsets": y[:, 2:4]}

    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(Scripted()), str(path))


@pytest.fixture(scope="session")
def scripted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small TorchScript model called like empanada's (x, render_steps, interpolate_ins)."""
    path = tmp_path_factory.mktemp("scripted") / "scripted.pth"
    _script_model(path)
    return path


@pytest.fixture(scope="session")
def other_scripted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another TorchScript model (6 output channels) with different weights."""
    path = tmp_path_factory.mktemp("scripted2") / "other.pth"
    _script_model(path, channels=6)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
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
