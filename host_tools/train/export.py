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


def tflite_reconstruction_error(model: bytes, source: str, x: np.ndarray,
                                target: np.ndarray | None = None) -> np.ndarray:
    """Per-sample mean squared error between an INT8 model's dequantized output (TFLM) and its float input (an
    autoencoder) or ``target`` (regression, [N, output values]): the loss the board's EVAL reports for MSE."""
    import numpy as np  # noqa: PLC0415

    from converter.pipeline import quantize_inputs  # noqa: PLC0415
    from converter.tflite_reader import parse_tflite  # noqa: PLC0415
    from converter.tflm import tflm_run  # noqa: PLC0415

    g = parse_tflite(model, source)
    scale, zero_point = g.input.qparams()
    out_scale, out_zp = g.output.qparams()
    ys = np.asarray(tflm_run(model, quantize_inputs(x, scale, zero_point)), np.float64).reshape(len(x), -1)
    recon = (ys - out_zp) * out_scale
    ref = x if target is None else target
    return np.mean((recon - np.asarray(ref, np.float64).reshape(len(x), -1)) ** 2, axis=1)
