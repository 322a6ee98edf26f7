"""Where inference runs: the one place that picks a torch device.

Order of preference: CUDA (the first GPU), then Apple's Metal (MPS), then the CPU.
Asking for a GPU where there is none is not an error: the work runs on the CPU and
:class:`DeviceChoice` carries a message saying so, for the caller to show.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["DeviceChoice", "choose_device", "gpu_name"]


@dataclass(frozen=True)
class DeviceChoice:
    """A device and, when the request could not be honoured, why.

    Attributes
    ----------
    device : torch.device
        Where to run.
    message : str
        Empty when the device is what was asked for; otherwise a sentence for the user.
    """

    device: torch.device
    message: str = ""

    @property
    def is_gpu(self) -> bool:
        return self.device.type in ("cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def gpu_name() -> str | None:
    """``"cuda"`` or ``"mps"`` when a usable GPU exists, else None."""
    if torch.cuda.is_available():
        return "cuda"
    if _mps_available():
        return "mps"
    return None


def choose_device(use_gpu: bool = True) -> DeviceChoice:
    """The device to run on.

    Parameters
    ----------
    use_gpu : bool
        Use a GPU when there is one (CUDA first, then Apple MPS). False always gives the
        CPU.

    Returns
    -------
    DeviceChoice
        With a message when a GPU was asked for but none is available.
    """
    if not use_gpu:
        return DeviceChoice(torch.device("cpu"))
    kind = gpu_name()
    if kind == "cuda":
        return DeviceChoice(torch.device("cuda", torch.cuda.current_device()))
    if kind == "mps":
        return DeviceChoice(torch.device("mps"))
    return DeviceChoice(
        torch.device("cpu"), "no GPU found (neither CUDA nor Apple MPS): running on the CPU"
    )
