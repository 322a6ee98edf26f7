"""Run empanada's TorchScript models through tamale's ``predict`` interface.

empanada exported its models with ``torch.jit.script``; they are called as
``model(x, render_steps, interpolate_ins)`` and return a dict with
``sem_logits``, ``ctr_hmp`` and ``offsets``. ``torch.jit.load`` is deprecated
in torch 2.x but still works; its DeprecationWarning is silenced locally while
loading (no global warning filter is changed). Loading TorchScript runs the
archive's TorchScript code (not arbitrary Python); load only files you trust,
and prefer :func:`tamale.models.convert_empanada` to get a safetensors model.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from tamale.errors import TamaleInputError
from tamale.models.panoptic import OUTPUT_KEYS, check_model_input, render_steps

__all__ = ["TorchScriptModel", "load_torchscript"]


def load_torchscript(
    path: str | Path, device: str | torch.device = "cpu"
) -> torch.jit.ScriptModule:
    """``torch.jit.load`` with its deprecation warning silenced and errors made readable."""
    path = Path(path)
    if not path.is_file():
        raise TamaleInputError(f"TorchScript model not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            return torch.jit.load(str(path), map_location=device)
    except RuntimeError as exc:
        raise TamaleInputError(f"{path} is not a loadable TorchScript model: {exc}") from None


class TorchScriptModel(nn.Module):
    """Adapter giving a TorchScript empanada model the ``predict`` interface.

    Parameters
    ----------
    module : ScriptModule
        Called as ``module(x, render_steps, interpolate_ins)``.
    padding_factor : int
        From the model card.
    num_classes : int
        Channels of ``sem_logits`` (1, or classes + 1).
    """

    def __init__(
        self, module: torch.jit.ScriptModule, padding_factor: int, num_classes: int
    ) -> None:
        super().__init__()
        self.module = module
        self.padding_factor = int(padding_factor)
        self.num_classes = int(num_classes)
        self.architecture = None
        self.in_channels = 1

    @property
    def encoder(self) -> nn.Module | None:
        """The scripted encoder, if the archive has one (its stages keep empanada's names)."""
        return getattr(self.module, "encoder", None)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Full-resolution outputs (``render_steps=2``, ``interpolate_ins=True``)."""
        return self._call(x, 2, True)

    def _call(self, x: torch.Tensor, steps: int, fine: bool) -> dict[str, torch.Tensor]:
        out = self.module(x, steps, fine)
        missing = [k for k in OUTPUT_KEYS if k not in out]
        if missing:
            raise TamaleInputError(
                f"the TorchScript model returned no {', '.join(missing)}; it is not a "
                "panoptic model exported by empanada"
            )
        return {k: out[k].float() for k in OUTPUT_KEYS}

    def predict(
        self, x: torch.Tensor, upsample: int = 1, fine: bool = False
    ) -> dict[str, torch.Tensor]:
        """See :mod:`tamale.models` (same contract as tamale's own models)."""
        steps = render_steps(upsample)
        check_model_input(x, 1, self.padding_factor)
        with torch.inference_mode():
            return self._call(x, steps, bool(fine))
