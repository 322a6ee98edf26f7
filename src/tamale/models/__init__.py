"""Panoptic segmentation networks in plain torch (no torchvision).

Presets (:func:`available_presets`): ``panoptic_deeplab_r50`` and
``panoptic_bifpn_r50`` (the published MitoNet layouts, same parameter
counts), CPU-friendly ``panoptic_deeplab_r18``, ``panoptic_bifpn_r18``,
``panoptic_bifpn_regnety``, and ``tiny`` / ``tiny_bifpn`` for tests.

The inference interface
-----------------------
Every model the inference engine gets — tamale's eager models, quantized
models and empanada TorchScript models behind :class:`TorchScriptModel` —
offers::

    model.predict(x, upsample: int = 1, fine: bool = False) -> dict[str, Tensor]

``x``: (N, 1, h, w) float32, already normalised, h and w multiples of
``model.padding_factor``. It returns:

``sem_logits``
    (N, C, h*upsample, w*upsample), rendered by PointRend with
    ``2 + log2(upsample)`` subdivision steps (``upsample`` a power of two).
    C = 1 for one class (apply a sigmoid) or classes + 1 (background first;
    apply a softmax).
``ctr_hmp``
    (N, 1, h/4, w/4) center heatmap as trained (no sigmoid), or (N, 1, h, w)
    with ``fine=True`` (bilinear x4, align_corners=True).
``offsets``
    (N, 2, same size as ``ctr_hmp``): (dy, dx) from each pixel to its instance
    centre, in pixels of the model input.

Attributes: ``padding_factor`` (int), ``num_classes`` (C), ``encoder`` (with
stages ``stem``, ``stage1`` .. ``stage4``; a TorchScript model's encoder keeps
empanada's names). ``predict`` runs under ``torch.inference_mode`` and raises
:class:`~tamale.errors.TamaleInputError` on bad input (wrong channel count,
size not a multiple of the padding factor, non-power-of-two upsampling).

Training
--------
``model.train(); out = model(x)`` returns, at input resolution: ``sem_logits``
(coarse logits, bilinear x4, align_corners=True), ``ctr_hmp``, ``offsets``,
and, with PointRend, ``sem_points`` (N, C, P) point logits and
``point_coords`` (N, P, 2) their (x, y) coordinates in [0, 1] (sample the
labels there with nearest ``grid_sample``, align_corners=False). In eval mode
``model(x)`` equals ``predict(x, 1, fine=True)`` but keeps autograd available.

Encoder stages for finetuning: ``encoder.stem``, ``encoder.stage1`` ..
``encoder.stage4`` (ResNet and RegNet alike); see :func:`freeze_encoder`.
"""

from tamale.models.build import build_model, card_num_classes, load_model
from tamale.models.freeze import freeze_encoder
from tamale.models.fuse import fold_batchnorm
from tamale.models.panoptic import PanopticBiFPN, PanopticDeepLab, PanopticModel, render_steps
from tamale.models.params import count_parameters
from tamale.models.presets import PRESETS, available_presets, preset_options
from tamale.models.torchscript import TorchScriptModel, load_torchscript
from tamale.models.weights import file_sha256, load_weights, save_weights

__all__ = [
    "PRESETS",
    "PanopticBiFPN",
    "PanopticDeepLab",
    "PanopticModel",
    "TorchScriptModel",
    "available_presets",
    "build_model",
    "card_num_classes",
    "count_parameters",
    "file_sha256",
    "fold_batchnorm",
    "freeze_encoder",
    "load_model",
    "load_torchscript",
    "load_weights",
    "preset_options",
    "render_steps",
    "save_weights",
]
