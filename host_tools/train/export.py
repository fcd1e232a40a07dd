"""Exporting trained weights: the INT8 .tflite's accuracy under TFLM."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def tflite_accuracy(model: bytes, source: str, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of an INT8 .tflite on float inputs, run with TFLM (inputs quantized as TFLite's Quantize)."""
    import numpy as np  # noqa: PLC0415

    from converter.pipeline import quantize_inputs  # noqa: PLC0415
    from converter.tflite_reader import parse_tflite  # noqa: PLC0415
    from converter.tflm import tflm_run  # noqa: PLC0415

    scale, zero_point = parse_tflite(model, source).input.qparams()
    ys = tflm_run(model, quantize_inputs(x, scale, zero_point))
    return float(np.mean(np.asarray(ys).reshape(len(y), -1).argmax(1) == y))
