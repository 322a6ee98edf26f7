"""Inference: devices, cached models, and 2D inference (whole, tiled, batch).

* :func:`choose_device` — CUDA, else Apple MPS, else CPU (with a message when a GPU was
  asked for and is missing);
* :func:`get_engine` / :class:`ModelCache` — loaded models cached by (name, card hash,
  device, precision): the second run loads nothing;
* :func:`make_normalizer` — uint8 through the card's norms, everything else through
  robust percentiles;
* :func:`predict_raw` — step 1 of the pipeline (see :mod:`tamale.postprocess`): network
  outputs as a :class:`~tamale.postprocess.RawPrediction`;
* :func:`iter_infer_2d` / :func:`infer_2d` with :class:`Inference2DConfig` — 2D
  inference end to end; :func:`recommended_config` applies a model card's recommended
  parameters to a configuration.
"""

from tamale.inference.config import DOWNSAMPLING_CHOICES, Inference2DConfig, recommended_config
from tamale.inference.device import DeviceChoice, choose_device, gpu_name
from tamale.inference.engine import (
    Engine,
    ModelCache,
    clear_cache,
    default_cache,
    get_engine,
    half_precision_status,
    quantization_status,
)
from tamale.inference.infer2d import Inference2DResult, check_image, infer_2d, iter_infer_2d
from tamale.inference.normalize import Normalizer, make_normalizer
from tamale.inference.predict import model_input, predict_raw
from tamale.inference.tiling import Tile, plan_tiles, stitch

__all__ = [
    "DOWNSAMPLING_CHOICES",
    "DeviceChoice",
    "Engine",
    "Inference2DConfig",
    "Inference2DResult",
    "ModelCache",
    "Normalizer",
    "Tile",
    "check_image",
    "choose_device",
    "clear_cache",
    "default_cache",
    "get_engine",
    "gpu_name",
    "half_precision_status",
    "infer_2d",
    "iter_infer_2d",
    "make_normalizer",
    "model_input",
    "plan_tiles",
    "predict_raw",
    "quantization_status",
    "recommended_config",
    "stitch",
]
