"""Step 1 of the pipeline: normalised images → :class:`~tamale.postprocess.RawPrediction`.

``predict_raw`` downsamples a batch of normalised images by ``f`` (area average over
``f x f`` blocks, after replicating the last row/column so that the size is a multiple
of ``f``: downsampled pixel ``i`` is exactly original pixels ``f*i .. f*i+f-1``), pads
it with zeros (the training mean) at the bottom and right to the model's padding factor,
runs the network, and returns semantic probabilities rendered back to the original
resolution (padding cropped) with the center heatmap and offsets on the model's grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tamale.errors import TamaleInputError
from tamale.postprocess import RawPrediction

__all__ = ["model_input", "predict_raw"]


def model_input(images: torch.Tensor, downsampling: int, padding_factor: int) -> torch.Tensor:
    """(N, H, W) normalised images → (N, 1, h, w) network input (downsampled, padded)."""
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got {tuple(images.shape)}")
    x = images[:, None].float()
    f = int(downsampling)
    if f > 1:
        h, w = x.shape[-2:]
        ph, pw = -h % f, -w % f
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        x = F.avg_pool2d(x, kernel_size=f, stride=f)
    h, w = x.shape[-2:]
    ph, pw = -h % padding_factor, -w % padding_factor
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph))
    return x


def predict_raw(
    model: object, images: torch.Tensor, *, downsampling: int = 1, fine: bool = False
) -> RawPrediction:
    """Run ``model`` on a batch and return step-1 outputs.

    Parameters
    ----------
    model : object
        Has ``predict(x, upsample, fine)`` and ``padding_factor`` (see
        :mod:`tamale.models`).
    images : Tensor, shape (N, H, W)
        Normalised images on the model's device.
    downsampling : int
        Power of two; the semantic output is rendered back up by this factor.
    fine : bool
        Heatmap and offsets at the model input's resolution instead of 1/4 of it.
    """
    if downsampling < 1 or downsampling & (downsampling - 1):
        raise TamaleInputError(
            f"image downsampling must be a power of two from 1 to 64, got {downsampling}"
        )
    height, width = images.shape[-2:]
    padding = int(getattr(model, "padding_factor", 1))
    x = model_input(images, downsampling, padding)
    out = model.predict(x, upsample=downsampling, fine=fine)
    logits = out["sem_logits"][..., :height, :width].float()
    probs = torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)
    ctr, off = out["ctr_hmp"].float(), out["offsets"].float()
    stride = x.shape[-2] // ctr.shape[-2]
    return RawPrediction(probs, ctr, off, stride=stride, downsampling=downsampling)
