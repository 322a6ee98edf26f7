"""Panoptic networks: Panoptic-DeepLab and Panoptic-BiFPN, with PointRend.

Both share :class:`PanopticModel`: an encoder, a semantic and an optional
instance decoder producing stride-4 features, three heads (semantic logits,
center heatmap, offsets) and a PointRend head that renders the semantic
logits at input resolution (or above). See :mod:`tamale.models` for the
``predict`` interface and the training outputs.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tamale.errors import TamaleInputError
from tamale.models.bifpn import BiFPN, BiFPNDecoder, Resample
from tamale.models.deeplab import PanopticDeepLabDecoder
from tamale.models.heads import PanopticHead
from tamale.models.pointrend import PointRendSemSegHead

__all__ = ["PanopticBiFPN", "PanopticDeepLab", "PanopticModel", "render_steps"]

OUTPUT_KEYS = ("sem_logits", "ctr_hmp", "offsets")


def render_steps(upsample: int) -> int:
    """PointRend subdivision steps for an upsampling factor: ``2 + log2(upsample)``."""
    if not isinstance(upsample, int) or upsample < 1 or upsample & (upsample - 1):
        raise TamaleInputError(f"upsample must be a power of two (1, 2, 4, ...), got {upsample!r}")
    return 2 + int(math.log2(upsample))


def _up4(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=4.0, mode="bilinear", align_corners=True)


class PanopticModel(nn.Module):
    """Base class of tamale's panoptic networks.

    Subclasses build ``encoder``, their decoders, then call :meth:`_build_heads`,
    and implement :meth:`decode` (encoder features → semantic and instance
    features at stride 4).

    Attributes
    ----------
    padding_factor : int
        Input height and width must be multiples of this.
    num_classes : int
        Channels of ``sem_logits``: 1 (binary, sigmoid) or classes + 1 (softmax).
    architecture : str or None
        Preset name, set by :func:`tamale.models.build_model`.
    options : dict
        Preset options the model was built with.
    """

    def __init__(self) -> None:
        super().__init__()
        self.padding_factor = 1
        self.num_classes = 1
        self.architecture: str | None = None
        self.options: dict[str, Any] = {}
        self.frozen_bn = False
        self.channels_last = False
        self.compute_dtype = torch.float32

    # -- construction ------------------------------------------------------
    def _build_heads(
        self,
        nin: int,
        num_classes: int,
        pointrend: bool,
        num_fc: int,
        train_num_points: int,
        oversample_ratio: int,
        importance_sample_ratio: float,
        subdivision_num_points: int,
    ) -> None:
        if num_classes < 1 or num_classes == 2:
            raise TamaleInputError(
                "num_classes must be 1 (one class, sigmoid) or classes + 1 >= 3 "
                f"(background + classes, softmax), got {num_classes}"
            )
        self.num_classes = num_classes
        self.semantic_head = PanopticHead(nin, num_classes)
        self.ins_center = PanopticHead(nin, 1)
        self.ins_xy = PanopticHead(nin, 2)
        self.semantic_pr = (
            PointRendSemSegHead(
                nin,
                num_classes,
                num_fc,
                train_num_points,
                oversample_ratio,
                importance_sample_ratio,
                subdivision_num_points,
            )
            if pointrend
            else None
        )

    # -- computation -------------------------------------------------------
    def decode(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Semantic and instance features at stride 4."""
        raise NotImplementedError

    def trunk(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The convolutional part: coarse semantic logits, semantic features, centers, offsets.

        All four are at stride 4. This is the part that quantization replaces.
        """
        semantic_x, instance_x = self.decode(self.encoder(x))
        sem = self.semantic_head(semantic_x)
        ctr = self.ins_center(instance_x)
        off = self.ins_xy(instance_x)
        return sem, semantic_x, ctr, off

    def render(self, sem: torch.Tensor, semantic_x: torch.Tensor, steps: int) -> torch.Tensor:
        """Semantic logits at ``2**steps`` times stride-4 resolution (PointRend or bilinear)."""
        if self.semantic_pr is None:
            return F.interpolate(
                sem, scale_factor=float(2**steps), mode="bilinear", align_corners=True
            )
        return self.semantic_pr.render(sem, semantic_x, steps)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`TamaleInputError` unless ``x`` is (N, 1, h, w), floating, h and w padded."""
        check_model_input(x, self.in_channels, self.padding_factor)

    @property
    def in_channels(self) -> int:
        """Input channels (1)."""
        return int(self.encoder.in_channels)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Full-resolution outputs; in train mode also PointRend's point logits and coordinates.

        Keys: ``sem_logits``, ``ctr_hmp``, ``offsets`` (all at input resolution;
        ``sem_logits`` bilinear x4 of the coarse logits in training, PointRend-
        rendered in eval) and, in train mode with PointRend, ``sem_points``
        (N, C, P) and ``point_coords`` (N, P, 2; (x, y) in [0, 1]).
        """
        sem, semantic_x, ctr, off = self.trunk(x)
        out: dict[str, torch.Tensor] = {}
        if self.training:
            out["sem_logits"] = _up4(sem)
            if self.semantic_pr is not None:
                points, coords = self.semantic_pr.sample_train_points(sem, semantic_x)
                out["sem_points"] = points
                out["point_coords"] = coords
        else:
            out["sem_logits"] = self.render(sem.float(), semantic_x, 2)
        out["ctr_hmp"] = _up4(ctr)
        out["offsets"] = _up4(off)
        return out

    def predict(
        self, x: torch.Tensor, upsample: int = 1, fine: bool = False
    ) -> dict[str, torch.Tensor]:
        """Inference outputs (see :mod:`tamale.models`); runs under ``torch.inference_mode``.

        Outputs are float32 whatever the compute precision.
        """
        steps = render_steps(upsample)
        self.check_input(x)
        with torch.inference_mode():
            x = x.to(dtype=self.compute_dtype)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            sem, semantic_x, ctr, off = self.trunk(x)
            out = {"sem_logits": self.render(sem.float(), semantic_x, steps)}
            ctr, off = ctr.float(), off.float()
            if fine:
                ctr, off = _up4(ctr), _up4(off)
            out["ctr_hmp"] = ctr.contiguous()
            out["offsets"] = off.contiguous()
        return out

    def optimize_for_inference(
        self, dtype: torch.dtype = torch.float32, channels_last: bool | None = None
    ) -> PanopticModel:
        """Make this model fast for inference, in place: eval mode, BatchNorm folded into the
        convolutions, channels-last tensors (default on CPU and CUDA), and optionally bfloat16
        (or float16 on GPUs) convolutions. PointRend keeps float32.

        The model can no longer be trained afterwards (no BatchNorm left).
        """
        from tamale.models.fuse import fold_batchnorm

        if dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise TamaleInputError(
                f"inference dtype must be float32, bfloat16 or float16, got {dtype}"
            )
        self.eval()
        fold_batchnorm(self)
        device = next(self.parameters()).device
        if channels_last is None:
            channels_last = device.type in ("cpu", "cuda")
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.to(dtype)
        if self.semantic_pr is not None:
            self.semantic_pr.float()
        self.channels_last = bool(channels_last)
        self.compute_dtype = dtype
        return self

    def train(self, mode: bool = True) -> PanopticModel:
        """Like ``nn.Module.train``, but BatchNorm layers stay in eval mode when ``frozen_bn``."""
        super().train(mode)
        if mode and self.frozen_bn:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self


def check_model_input(x: torch.Tensor, in_channels: int, padding_factor: int) -> None:
    """Validate a model input (shape (N, C, h, w), float, h and w multiples of padding_factor)."""
    if not isinstance(x, torch.Tensor):
        raise TamaleInputError(f"model input must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise TamaleInputError(
            f"model input must have shape (N, {in_channels}, height, width), got {tuple(x.shape)}"
        )
    if x.shape[1] != in_channels:
        raise TamaleInputError(
            f"the model takes {in_channels} input channel(s), got {x.shape[1]} "
            f"(input shape {tuple(x.shape)}); take one channel of multichannel images"
        )
    if not x.is_floating_point():
        raise TamaleInputError(f"model input must be normalised floats, got dtype {x.dtype}")
    h, w = x.shape[-2:]
    if h % padding_factor or w % padding_factor:
        raise TamaleInputError(
            f"input height and width ({h} x {w}) must be multiples of the model's padding "
            f"factor {padding_factor}; pad the image to "
            f"{-(-h // padding_factor) * padding_factor} x {-(-w // padding_factor) * padding_factor}"
        )


class PanopticDeepLab(PanopticModel):
    """Panoptic-DeepLab (Cheng et al. 2020) with separate semantic and instance decoders.

    Parameters are those of the ``panoptic_deeplab*`` presets (see
    :mod:`tamale.models.presets`).
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int = 1,
        decoder_channels: int = 256,
        low_level_stages: tuple[int, ...] = (1,),
        low_level_channels_project: tuple[int, ...] = (32,),
        atrous_rates: tuple[int, int, int] = (2, 4, 6),
        aspp_channels: int | None = None,
        aspp_dropout: float = 0.5,
        ins_decoder: bool = True,
        ins_ratio: float = 0.5,
        pointrend: bool = True,
        num_fc: int = 3,
        train_num_points: int = 1024,
        oversample_ratio: int = 3,
        importance_sample_ratio: float = 0.75,
        subdivision_num_points: int = 8192,
    ) -> None:
        super().__init__()
        if min(low_level_stages) != 1:
            raise TamaleInputError("low_level_stages must include stage 1 (stride-4 outputs)")
        self.encoder = encoder
        widths = list(encoder.widths)
        low_channels = [widths[s - 1] for s in low_level_stages]
        self.semantic_decoder = PanopticDeepLabDecoder(
            widths[-1],
            decoder_channels,
            list(low_level_stages),
            low_channels,
            list(low_level_channels_project),
            tuple(atrous_rates),
            aspp_channels,
            aspp_dropout,
        )
        self.instance_decoder = (
            PanopticDeepLabDecoder(
                widths[-1],
                decoder_channels,
                list(low_level_stages),
                low_channels,
                [int(c * ins_ratio) for c in low_level_channels_project],
                tuple(atrous_rates),
                aspp_channels,
                aspp_dropout,
            )
            if ins_decoder
            else None
        )
        self._build_heads(
            decoder_channels,
            num_classes,
            pointrend,
            num_fc,
            train_num_points,
            oversample_ratio,
            importance_sample_ratio,
            subdivision_num_points,
        )
        self.padding_factor = int(encoder.strides[-1])

    def decode(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        semantic_x = self.semantic_decoder(features)
        if self.instance_decoder is None:
            return semantic_x, semantic_x
        return semantic_x, self.instance_decoder(features)


class PanopticBiFPN(PanopticModel):
    """Panoptic-BiFPN (MitoNet-mini): BiFPN over P3-P7, a climbing decoder, the same heads.

    Inputs must be multiples of 128 (P7 is at stride 128).
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int = 1,
        fpn_dim: int = 128,
        fpn_layers: int = 3,
        ins_decoder: bool = True,
        pointrend: bool = True,
        num_fc: int = 3,
        train_num_points: int = 1024,
        oversample_ratio: int = 3,
        importance_sample_ratio: float = 0.75,
        subdivision_num_points: int = 8192,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        widths = list(encoder.widths)
        self.p2_resample = Resample(widths[0], fpn_dim)
        self.semantic_fpn = BiFPN(widths[1:], fpn_dim, fpn_layers)
        self.semantic_decoder = BiFPNDecoder(fpn_dim)
        if ins_decoder:
            self.instance_fpn: BiFPN | None = BiFPN(widths[1:], fpn_dim, fpn_layers)
            self.instance_decoder: BiFPNDecoder | None = BiFPNDecoder(fpn_dim)
        else:
            self.instance_fpn = None
            self.instance_decoder = None
        self._build_heads(
            fpn_dim,
            num_classes,
            pointrend,
            num_fc,
            train_num_points,
            oversample_ratio,
            importance_sample_ratio,
            subdivision_num_points,
        )
        self.padding_factor = 128

    def decode(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        p2 = self.p2_resample(features[0])
        sem_levels = self.semantic_fpn(features[1:])
        semantic_x = self.semantic_decoder(sem_levels[::-1] + [p2])  # noqa: RUF005
        if self.instance_fpn is None or self.instance_decoder is None:
            return semantic_x, semantic_x
        ins_levels = self.instance_fpn(features[1:])
        return semantic_x, self.instance_decoder(ins_levels[::-1] + [p2])  # noqa: RUF005
