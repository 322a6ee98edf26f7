"""Turn a registered model (name or card) into a picklable slice-segmenter factory.

Filled in when the 2D inference engine is merged; until then only
:class:`~tamale.inference.slice_model.SegmenterFactory` objects are accepted.
"""

from __future__ import annotations

from typing import Any

from tamale.errors import TamaleInputError

__all__ = ["model_factory"]


def model_factory(model: Any, config: Any) -> Any:
    raise TamaleInputError(
        f"cannot run model {model!r}: 2D inference is not available in this build"
    )
