"""Helpers shared by the registry tests (imported by name: the test folder is on sys.path)."""

from __future__ import annotations

import hashlib
import http.server
import socketserver
import warnings
from pathlib import Path

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


def script_model(path: Path, channels: int = 4) -> None:
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
    with warnings.catch_warnings():  # torch deprecates TorchScript; empanada models use it
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(Scripted()), str(path))


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class LocalHTTPServer(http.server.ThreadingHTTPServer):
    """No reverse DNS lookup of 127.0.0.1 on start (it can take seconds offline)."""

    daemon_threads = True

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]
